"""What each kind of plugin must provide, and the records they exchange.

Every policy, factorized or joint, answers with an :class:`ActionDistribution` over the valid
joint actions of the job type, so decoding, confidence, calibration, sampling and logging are
written once, here and in the kernel path, not once per model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np
import numpy.typing as npt

from swarm_planner.core.action_space import JointAction
from swarm_planner.core.contracts import PlannerInput, Status

_SUM_TOLERANCE = 1.1e-5
"""How far from 1 the probabilities may sum (float32 model outputs renormalised in float64)."""


_TEXTS_MEMO = 1024
_texts_of: dict[int, tuple[tuple[JointAction, ...], list[str]]] = {}


def _texts(actions: tuple[JointAction, ...]) -> list[str]:
    """The texts of a tuple of actions (the action spaces' cached tuples: computed once)."""
    global _texts_of
    known = _texts_of.get(id(actions))
    if known is not None and known[0] is actions:
        return known[1]
    texts = [a.text for a in actions]
    if len(_texts_of) >= _TEXTS_MEMO:
        _texts_of = {}
    _texts_of[id(actions)] = (actions, texts)
    return texts


@attrs.frozen(eq=False)
class ActionDistribution:
    """Probabilities over ``actions`` (the valid actions of one job type, canonical order)."""

    actions: tuple[JointAction, ...]
    probs: npt.NDArray[np.float64]

    def __attrs_post_init__(self) -> None:
        if self.probs.shape != (len(self.actions),):
            raise ValueError(
                f"{len(self.actions)} actions but probabilities of shape {self.probs.shape}"
            )
        if len(self.actions) == 0:
            raise ValueError("a distribution needs at least one action")
        # Two reductions (every decision builds one of these): a NaN fails `lowest >= 0`, an
        # infinity makes the sum non-finite.
        lowest, total = float(self.probs.min()), float(self.probs.sum())
        if not (lowest >= 0.0 and math.isfinite(total)):
            raise ValueError("probabilities must be finite and non-negative")
        if abs(total - 1.0) > _SUM_TOLERANCE:
            raise ValueError(f"probabilities sum to {total:.6f}, not 1")

    @classmethod
    def one_hot(cls, actions: Sequence[JointAction], chosen: JointAction) -> ActionDistribution:
        probs = np.zeros(len(actions), dtype=np.float64)
        probs[list(actions).index(chosen)] = 1.0
        return cls(tuple(actions), probs)

    def best(self) -> tuple[JointAction, float]:
        """The most probable action (ties: the first in canonical order) and its probability."""
        i = int(np.argmax(self.probs))
        return self.actions[i], float(self.probs[i])

    def prob_of(self, action: JointAction) -> float:
        try:
            return float(self.probs[self.actions.index(action)])
        except ValueError:
            return 0.0

    def as_joint_probs(self) -> dict[str, dict[str, float]]:
        """The ``probs`` of a planner_action, keyed by action text (non-zero entries only)."""
        texts = _texts(self.actions)
        probs = self.probs.tolist()
        if self.probs.min() > 0.0:  # a softmax's answer: every action has some mass
            return {"joint": dict(zip(texts, probs, strict=True))}
        return {"joint": {t: p for t, p in zip(texts, probs, strict=True) if p > 0.0}}


@attrs.frozen(eq=False)
class Features:
    """One encoded input: sparse feature ids with weights, and the validity mask of its job
    type over every action tuple of its action space (``ActionSpace.all_actions()``)."""

    ids: npt.NDArray[np.int64]
    weights: npt.NDArray[np.float32]
    mask: npt.NDArray[np.bool_]


@attrs.frozen(eq=False)
class FeatureBatch:
    """Many encoded inputs in the flat form an embedding bag takes: input i owns
    ``ids[offsets[i]:offsets[i + 1]]`` (``offsets`` has one more entry than inputs)."""

    ids: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int64]
    weights: npt.NDArray[np.float32]
    mask: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.mask.shape[0])

    @classmethod
    def stack(cls, features: Sequence[Features]) -> FeatureBatch:
        lengths = [len(f.ids) for f in features]
        offsets = np.zeros(len(features) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if not features:
            raise ValueError("cannot stack zero inputs")
        return cls(
            np.concatenate([f.ids for f in features]).astype(np.int64),
            offsets,
            np.concatenate([f.weights for f in features]).astype(np.float32),
            np.stack([f.mask for f in features]),
        )

    def padded(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """``ids [B, L]`` and ``weights [B, L]`` padded with id 0 at weight 0: the dense form
        that an embedding gather plus a weighted sum (and an ONNX graph) takes. One scatter for
        the whole batch (a loop over rows costs more than the model at batch 256)."""
        lengths = np.diff(self.offsets)
        width = max(1, int(lengths.max()) if len(lengths) else 1)
        # Id j of row r goes to flat position r * width + (j - offsets[r]).
        shift = np.arange(len(self), dtype=np.int64) * width - self.offsets[:-1]
        at = np.arange(len(self.ids), dtype=np.int64) + np.repeat(shift, lengths)
        ids = np.zeros((len(self), width), dtype=np.int64)
        weights = np.zeros((len(self), width), dtype=np.float32)
        ids.reshape(-1)[at] = self.ids
        weights.reshape(-1)[at] = self.weights
        return ids, weights

    def take(self, rows: npt.NDArray[np.int64]) -> FeatureBatch:
        """The sub-batch of ``rows`` (in that order)."""
        return FeatureBatch.stack(
            [
                Features(
                    self.ids[self.offsets[r] : self.offsets[r + 1]],
                    self.weights[self.offsets[r] : self.offsets[r + 1]],
                    self.mask[r],
                )
                for r in rows
            ]
        )


@runtime_checkable
class Encoder(Protocol):
    """Turns planner_inputs into sparse features over a fixed id space of ``n_features``."""

    n_features: int

    def config(self) -> dict[str, Any]: ...

    def encode(
        self, planner_input: PlannerInput, *, mask: npt.NDArray[np.bool_] | None = None
    ) -> Features:
        """One input. ``mask``: the job type's validity mask when the caller holds it already
        (a policy that checked the input's action space against its own); else the encoder
        takes it from the input's action space."""
        ...

    def encode_batch(
        self,
        inputs: Sequence[PlannerInput],
        *,
        masks: npt.NDArray[np.bool_] | None = None,
    ) -> FeatureBatch:
        """Many inputs, exactly as :meth:`encode` would give them one by one; ``masks [B, A]``
        as ``mask`` above."""
        ...


@runtime_checkable
class Policy(Protocol):
    """Maps a planner_input to a distribution over the valid joint actions of its job type."""

    def predict(self, planner_input: PlannerInput) -> ActionDistribution: ...


@attrs.frozen(eq=False)
class ActionEstimates:
    """What an outcome model expects of every valid action of one input (canonical order):
    P(pass), wall time and cost. The ``value`` policy decides by the expected utility of these;
    the ``uncertainty`` sampler proposes the actions whose P(pass) is least certain."""

    actions: tuple[JointAction, ...]
    p_pass: npt.NDArray[np.float64]
    duration_ms: npt.NDArray[np.float64]
    cost_usd: npt.NDArray[np.float64]


@runtime_checkable
class OutcomeModel(Protocol):
    """A policy that can also say what each action would do (``value`` bundles)."""

    def estimates(self, planner_input: PlannerInput) -> ActionEstimates: ...


@runtime_checkable
class Fallback(Protocol):
    """Decides when the model abstains or fails; must not depend on a model file."""

    def decide(self, planner_input: PlannerInput) -> JointAction: ...


@runtime_checkable
class Sampler(Protocol):
    """Picks up to ``k`` distinct valid candidate actions for one issue of the bench.

    The bench puts ``baseline`` (today's rule) first whatever a sampler returns, so that every
    issue compares against it. A sampler may also offer ``inclusion(planner_input, baseline, k)
    -> dict[action text, probability]``: the chance that each valid action is among the
    candidates, logged as propensities for off-policy evaluation (absent: not logged).
    """

    def sample(
        self, planner_input: PlannerInput, baseline: JointAction, k: int
    ) -> tuple[JointAction, ...]: ...


@attrs.frozen
class GateOutcome:
    """One verification gate of a candidate."""

    name: str
    passed: bool


@attrs.frozen
class CandidateOutcome:
    """What one of the K candidates did (speculate: duration is the max, cost the sum).

    ``error`` says why a candidate could not be run or read (an executor that crashed, hung,
    exited non-zero or printed garbage): such a candidate is a failure with its reason kept,
    never a crashed bench. ``candidate_minutes`` is the agent time it spent (every parallel
    candidate's minutes summed), the unit of the bench budgets; None when the executor does not
    know, and the bench estimates it from the duration and the action (see ``core.bench``).
    """

    action: JointAction
    verified: bool
    status: Status
    duration_ms: int
    cost_usd: float
    fail_codes: tuple[str, ...] = ()
    gates: tuple[GateOutcome, ...] = ()
    candidate_minutes: float | None = None
    error: str | None = None


@runtime_checkable
class Selector(Protocol):
    """Picks the winner among the K outcomes of one issue; returns its index."""

    def select(self, outcomes: Sequence[CandidateOutcome]) -> int: ...


@runtime_checkable
class Executor(Protocol):
    """Runs one candidate action on one issue and reports its outcome.

    The bench passes ``timeout_seconds`` (the action's minutes cap, or the bench's default for
    an uncapped action) when ``run`` accepts that keyword; an executor is expected to stop the
    candidate by then and report ``status="timeout"``. It may be called from several threads
    at once (``--jobs``).
    """

    def run(self, planner_input: PlannerInput, action: JointAction) -> CandidateOutcome: ...
