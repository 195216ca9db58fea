"""The ``onnx`` policy: an exported bundle served with onnxruntime alone (no torch).

One session per policy, ``intra_op_num_threads=1`` and spinning off (a kernel process has other
work; a spinning thread would burn a core between decisions), warmed up at load so the first
decision is not the slow one. :meth:`OnnxPolicy.decide` is the kernel's fast path: encode, run,
read the chosen tuple and its calibrated confidence from the graph's outputs.

Why I/O binding on the fast path: ``InferenceSession.run`` checks and converts its feed and
allocates its outputs on every call, which costs about as much as running this small graph.
Each thread keeps preallocated inputs and outputs per padded width, bound once; a decision
writes its ids into them and runs the binding. Padding is id 0 at weight 0, which adds nothing
to the bag.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from swarm_planner import hookimpl
from swarm_planner.core.action_space import JointAction
from swarm_planner.core.bundle import BundleError, load_served
from swarm_planner.core.contracts import PlannerInput, check_input, no_valid_action
from swarm_planner.core.errors import ContractError, InferenceError
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.protocols import ActionDistribution, FeatureBatch, Features
from swarm_planner.plugins.models.bundled import BundleOptions, check_space, load_encoder

_MIN_WIDTH = 64
"""Narrowest bound input."""

_STEPS_PER_DOUBLING = 8
"""Bound widths between two powers of two: an input is padded by at most an eighth."""


def padded_width(n: int) -> int:
    """The bound width an input of ``n`` ids runs at: at least :data:`_MIN_WIDTH`, else the
    next of eight steps between the powers of two around ``n`` (72, 80, ... 128, 144, ...).
    Why not the next power of two: a transformer's attention costs the square of the width,
    and inputs of 129 to 256 ids all padded to 256 paid up to four times the attention they
    needed; eight steps a doubling bound the padding to 1/8 and the bindings a thread keeps
    to eight per doubling."""
    if n <= _MIN_WIDTH:
        return _MIN_WIDTH
    octave = 1 << (n - 1).bit_length() - 1  # the power of two just below n (n > octave)
    step = max(1, octave // _STEPS_PER_DOUBLING)
    return -(-n // step) * step


_CHUNK = 128
"""Inputs per run on the batch path."""

_MASK_MEMO_SIZE = 256
"""Job types whose masks are kept (a mask is the one object per job type the buffers compare)."""

_NOTHING_VALID = np.zeros(0, dtype=bool)
"""Stands for the mask of a job type the rules allow nothing for."""

_MASS_TOLERANCE = 1e-3
"""How far from 1 a float32 answer's probabilities may sum."""


_add = np.add.reduce


def _check_answers(
    probs: npt.NDArray[np.float32],
    action: npt.NDArray[np.int64],
    confidence: npt.NDArray[np.float32],
    masks: npt.NDArray[np.bool_],
    path: Path,
) -> None:
    """:func:`_check_answer` for a batch, in a few array operations."""
    inside = (action >= 0) & (action < masks.shape[1])
    rows = np.flatnonzero(inside)
    chosen = np.zeros(len(action), dtype=bool)
    chosen[inside] = masks[rows, action[inside]]
    picked = np.full(len(action), np.nan, dtype=np.float64)
    picked[inside] = probs[rows, action[inside]]
    valid_mass = np.add.reduce(probs, axis=1, where=masks, dtype=np.float64)
    total = np.add.reduce(probs, axis=1, dtype=np.float64)
    good = (
        chosen
        & (np.abs(valid_mass - 1.0) <= _MASS_TOLERANCE)
        & (np.abs(total - 1.0) <= _MASS_TOLERANCE)
        & (probs.min(axis=1) >= 0.0)
        & (np.abs(picked - confidence) <= _MASS_TOLERANCE)
    )
    if not good.all():
        row = int(np.flatnonzero(~good)[0])
        _check_answer(probs[row], int(action[row]), float(confidence[row]), masks[row], path)


def _check_answer(
    probs: npt.NDArray[np.float32],
    action: int,
    confidence: float,
    mask: npt.NDArray[np.bool_],
    path: Path,
) -> None:
    """The graph's answer is a distribution over the valid actions (its mass on them, none
    negative), its action one of them with the confidence its probability: a NaN, an overflow
    or a tampered graph becomes an InferenceError, never an invalid or unsupported action."""
    ok = 0 <= action < len(mask) and bool(mask[action])
    if ok:
        valid_mass = float(_add(probs, where=mask, dtype=np.float64))
        total = float(_add(probs, dtype=np.float64))
        ok = (
            abs(valid_mass - 1.0) <= _MASS_TOLERANCE  # False for NaN
            and abs(total - 1.0) <= _MASS_TOLERANCE
            and abs(float(probs[action]) - confidence) <= _MASS_TOLERANCE
            and float(probs.min()) >= 0.0
        )
    if not ok:
        raise InferenceError(
            f"{path}: the model's answer is not a distribution over the valid actions "
            f"(action {action}, confidence {confidence!r}, total {float(_add(probs))!r})"
        )


REQUIRED_FILES = (
    "model.onnx",
    "config.json",
    "action_space.json",
    "calibration.json",
    "validation.json",
)


@attrs.frozen
class Decision:
    """The fast path's answer: the chosen valid tuple, its calibrated probability, all probs."""

    action: JointAction
    confidence: float
    probs: npt.NDArray[np.float32]
    mask: npt.NDArray[np.bool_]


class _Bound:
    """One thread's preallocated inputs and outputs of one padded width, bound to the session."""

    def __init__(self, session: Any, width: int, n_actions: int) -> None:
        self.ids = np.zeros((1, width), dtype=np.int64)
        self.weights = np.zeros((1, width), dtype=np.float32)
        self.mask = np.zeros((1, n_actions), dtype=bool)
        self.probs = np.zeros((1, n_actions), dtype=np.float32)
        self.action = np.zeros(1, dtype=np.int64)
        self.confidence = np.zeros(1, dtype=np.float32)
        self.filled = 0
        """Weights past this index are zero."""
        self.mask_of: npt.NDArray[np.bool_] | None = None
        """The mask array last copied in (masks are cached read-only arrays, so identity is
        equality)."""
        self.binding = session.io_binding()
        inputs: dict[str, npt.NDArray[Any]] = {
            "ids": self.ids,
            "weights": self.weights,
            "mask": self.mask,
        }
        outputs: dict[str, npt.NDArray[Any]] = {
            "probs": self.probs,
            "action": self.action,
            "confidence": self.confidence,
        }
        for name, array in inputs.items():
            self.binding.bind_input(
                name, "cpu", 0, array.dtype, list(array.shape), array.ctypes.data
            )
        for name, array in outputs.items():
            self.binding.bind_output(
                name, "cpu", 0, array.dtype, list(array.shape), array.ctypes.data
            )


class OnnxPolicy:
    """Serves an exported bundle with onnxruntime; never imports torch."""

    def __init__(self, path: Path | str) -> None:
        import onnxruntime as ort

        self.bundle = load_served(path, required=REQUIRED_FILES)
        self.path = self.bundle.path
        self.metadata = self.bundle.metadata
        if self.bundle.validation is None or not self.bundle.validation.passed:
            raise BundleError(f"{self.path}: validation.json says the export did not pass")
        self.model_type = self.bundle.model_type
        self.encoder = load_encoder(self.bundle)
        self.space = self.bundle.space
        self.actions = self.space.all_actions()
        self._masks: dict[str, npt.NDArray[np.bool_]] = {}
        self._local = threading.local()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        options.log_severity_level = 4  # its errors reach the caller as BundleErrors, not logs
        try:
            self.session = ort.InferenceSession(
                str(self.path / "model.onnx"), options, providers=["CPUExecutionProvider"]
            )
            self._outputs = ["probs", "action", "confidence"]
            self._check_graph()
            self._warm_up()
        except BundleError:
            raise
        except Exception as exc:  # onnxruntime raises its own types for a graph it cannot run
            raise BundleError(
                f"{self.path / 'model.onnx'}: does not run with this bundle's inputs: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def _check_graph(self) -> None:
        """The graph takes what this bundle's encoder and action space give, and answers as
        the export did: a bundle resealed around another model's file fails here, at load."""
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if set(inputs) != {"ids", "weights", "mask"} or not set(self._outputs) <= outputs:
            raise BundleError(
                f"{self.path / 'model.onnx'}: inputs {sorted(inputs)} and outputs "
                f"{sorted(outputs)} are not those of an exported planner"
            )
        width = inputs["mask"].shape[-1]
        if isinstance(width, int) and width != len(self.actions):
            raise BundleError(
                f"{self.path / 'model.onnx'}: the graph answers over {width} actions, the "
                f"bundle's action space has {len(self.actions)}"
            )
        model = self.bundle.config.model
        if self.encoder.n_features != model.n_features:
            raise BundleError(
                f"{self.path / 'config.json'}: the encoder gives {self.encoder.n_features} "
                f"feature ids, the model was built for {model.n_features}"
            )
        # Every feature id the encoder can give indexes the graph's embedding, and no more:
        # a graph built for another encoder fails here, not with shifted answers.
        probs, _, _ = self._probe(self.encoder.n_features - 1)
        if probs.shape != (1, len(self.actions)):
            raise BundleError(
                f"{self.path / 'model.onnx'}: answers with shape {probs.shape}, expected "
                f"(1, {len(self.actions)})"
            )
        try:
            self._probe(self.encoder.n_features)
        except Exception:  # out of the embedding's bounds: as it should be
            pass
        else:
            raise BundleError(
                f"{self.path / 'model.onnx'}: its embedding has more rows than the "
                f"{self.encoder.n_features} feature ids of the bundle's encoder"
            )
        graph_temperature = (self.bundle.config.onnx or {}).get("temperature_in_graph")
        if graph_temperature is not None and not math.isclose(
            float(graph_temperature), self.bundle.temperature, rel_tol=1e-9
        ):
            raise BundleError(
                f"{self.path}: calibration.json's temperature {self.bundle.temperature!r} is "
                f"not the one in the graph ({graph_temperature!r})"
            )

    def _probe(self, feature_id: int) -> Any:
        return self.session.run(
            self._outputs,
            {
                "ids": np.array([[feature_id]], dtype=np.int64),
                "weights": np.ones((1, 1), np.float32),
                "mask": self._all_valid(),
            },
        )

    def _all_valid(self) -> npt.NDArray[np.bool_]:
        return np.ones((1, len(self.actions)), dtype=bool)

    def _warm_up(self) -> None:
        """Run every path once per common width, so that no decision pays a first-run cost:
        the bound widths of inputs up to 256 ids (17 of them; a transformer's first run at a
        new width costs 100-160 us more), and the plain feed at 1, 64 and 256."""
        mask = self._all_valid()
        for width in (1, 64, 256):
            self.session.run(
                self._outputs,
                {
                    "ids": np.zeros((1, width), dtype=np.int64),
                    "weights": np.zeros((1, width), dtype=np.float32),
                    "mask": mask,
                },
            )
        for width in sorted({padded_width(n) for n in range(1, 257)}):
            self.session.run_with_iobinding(self._bound(width).binding)

    def _bound(self, width: int) -> _Bound:
        """This thread's bound buffers for ``width`` (created on first use)."""
        slots: dict[int, _Bound] | None = getattr(self._local, "slots", None)
        if slots is None:
            slots = self._local.slots = {}
        bound = slots.get(width)
        if bound is None:
            bound = slots[width] = _Bound(self.session, width, len(self.actions))
        return bound

    def _check(self, planner_input: PlannerInput) -> None:
        """Bad input fails here, as a ContractError, before any model work."""
        check_input(planner_input)
        check_space(planner_input, self.space, self.path)

    def run(self, batch: FeatureBatch) -> tuple[Any, Any, Any]:
        """``probs [B, A]``, ``action [B]``, ``confidence [B]`` for encoded inputs, checked."""
        ids, weights = batch.padded()
        try:
            probs, action, confidence = self.session.run(
                self._outputs, {"ids": ids, "weights": weights, "mask": batch.mask}
            )
        except Exception as exc:  # onnxruntime's own error types
            raise InferenceError(
                f"{self.path}: the model failed: {type(exc).__name__}: {exc}"
            ) from exc
        _check_answers(probs, action, confidence, batch.mask, self.path)
        return probs, action, confidence

    def _run_one(self, features: Features) -> tuple[Any, int, float]:
        """One input through this thread's bound buffers of the next width up."""
        n = len(features.ids)
        bound = self._bound(padded_width(n))
        # Past the input's ids only the weights must be zero (an old id at weight 0 adds
        # nothing), and only where an earlier, longer input left them set.
        bound.ids[0, :n] = features.ids
        bound.weights[0, :n] = features.weights
        if bound.filled > n:
            bound.weights[0, n : bound.filled] = 0.0
        bound.filled = n
        if bound.mask_of is not features.mask:  # the policy passes one mask object per job type
            bound.mask[0] = features.mask
            bound.mask_of = features.mask
        try:
            self.session.run_with_iobinding(bound.binding)
        except Exception as exc:  # onnxruntime's own error types
            raise InferenceError(
                f"{self.path}: the model failed: {type(exc).__name__}: {exc}"
            ) from exc
        probs, action, confidence = (
            bound.probs[0].copy(),
            int(bound.action[0]),
            float(bound.confidence[0]),
        )
        _check_answer(probs, action, confidence, features.mask, self.path)
        return probs, action, confidence

    def decide(self, planner_input: PlannerInput) -> Decision:
        """One decision: the best valid tuple and its calibrated confidence. Bad input is a
        ContractError (before any model work); a model that fails or answers something that is
        not a distribution over the valid actions is an InferenceError."""
        self._check(planner_input)
        mask = self._mask(planner_input.job_type)
        if mask is _NOTHING_VALID:
            raise no_valid_action(planner_input)
        features = self.encoder.encode(planner_input, mask=mask)
        probs, action, confidence = self._run_one(features)
        return Decision(self.actions[action], confidence, probs, features.mask)

    def _mask(self, job_type: str) -> npt.NDArray[np.bool_]:
        """The job type's mask, one object per job type (the bound buffers compare identity);
        bounded: a stream of new job types clears it rather than growing it."""
        mask = self._masks.get(job_type)
        if mask is None:
            if len(self._masks) >= _MASK_MEMO_SIZE:
                self._masks.clear()
            mask = self.space.job_mask(job_type)
            if not mask.any():
                mask = _NOTHING_VALID
            self._masks[job_type] = mask
        return mask

    def decide_batch(self, inputs: Iterable[PlannerInput] | Any) -> list[Decision]:
        """Many decisions: the throughput path. The encoder builds a chunk of inputs at once and
        one run serves it; chunks of 128 keep the gathered embeddings in cache (a run over 256
        costs more per input)."""
        if isinstance(inputs, (str, bytes, Mapping)) or not isinstance(inputs, Iterable):
            raise ContractError("inputs", [f"expected planner_inputs, got {type(inputs).__name__}"])
        inputs = list(inputs)
        for planner_input in inputs:
            self._check(planner_input)
            if self._mask(planner_input.job_type) is _NOTHING_VALID:
                raise no_valid_action(planner_input)
        out: list[Decision] = []
        actions = self.actions
        for start in range(0, len(inputs), _CHUNK):
            chunk = inputs[start : start + _CHUNK]
            masks = np.stack([self._mask(x.job_type) for x in chunk])
            probs, action, confidence = self.run(self.encoder.encode_batch(chunk, masks=masks))
            out += [
                Decision(actions[a], c, p, m)
                for a, c, p, m in zip(
                    action.tolist(), confidence.tolist(), probs, masks, strict=True
                )
            ]
        return out

    def predict(self, planner_input: PlannerInput) -> ActionDistribution:
        decision = self.decide(planner_input)
        # The bundle's space (the input's was checked equal): its valid actions are cached.
        actions = self.space.valid_actions(planner_input.job_type)
        kept = decision.probs[decision.mask].astype(np.float64)
        return ActionDistribution(actions, kept / kept.sum())  # checked sums: no division by 0


def _build(options: BundleOptions) -> OnnxPolicy:
    return OnnxPolicy(options.path)


@hookimpl
def register_policies(register: Register) -> None:
    register("onnx", _build, options=BundleOptions)
