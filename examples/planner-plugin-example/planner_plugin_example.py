"""An example third-party swarm-planner plugin: one plugin of every kind.

It registers, through the ``swarm_planner`` entry-point group, exactly as the built-ins do:

- the ``riskcap`` **policy**: today's risk rule with a cap on candidates and minutes, answering
  with a distribution that keeps ``confidence`` on its choice and spreads the rest;
- the ``cheapest_first`` **sampler**: the baseline, then the valid actions by estimated cost;
- the ``cheapest`` **selector**: among verified candidates the cheapest wins (a team that pays
  per token may prefer that to the fastest); with none verified, the fastest;
- the ``always_serial`` **fallback**: one serial agent with a configurable timeout bin, for teams
  that never want speculation when the model abstains;
- the ``keywords`` **encoder**: tags and keywords hashed into buckets (a deliberately small
  encoder, to show the protocol);
- the ``dry_run`` **executor**: a pretend run whose outcome follows the issue's size, for trying
  a bench before wiring a real kernel.

Every object below is a plain class with the method its protocol names
(``swarm_planner.core.protocols``); options are attrs classes, checked strictly from config.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from swarm_planner import hookimpl
from swarm_planner.core.action_space import NA, Bin, JointAction
from swarm_planner.core.contracts import PlannerInput
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.jsonconv import json_field, positive, validator
from swarm_planner.core.protocols import (
    ActionDistribution,
    CandidateOutcome,
    FeatureBatch,
    Features,
)

# -- policy -----------------------------------------------------------------------------------


# Validators from swarm_planner.core.jsonconv name the option's key path in config errors
# (``--policy riskcap.max_candidates: 0 is below 1``).
_probability = validator(lambda v: None if 0.0 < v <= 1.0 else f"{v!r} is not within (0, 1]")


@attrs.frozen
class RiskCapOptions:
    max_candidates: int = json_field(default=2, validator=positive)
    max_minutes: Bin = NA
    confidence: float = json_field(default=0.9, validator=_probability)


@attrs.frozen
class RiskCapPolicy:
    """critical → speculate ×3, high → ×2, else serial, with candidates capped (a cap of 1
    means serial) and minutes set to ``max_minutes``."""

    options: RiskCapOptions

    def choose(self, planner_input: PlannerInput) -> JointAction:
        wanted = {"critical": 3, "high": 2}.get(planner_input.issue.dk_risk, 1)
        candidates = min(wanted, self.options.max_candidates)
        swarm = "speculate_vote" if candidates > 1 else "serial_handoff"
        iterations: Bin = NA if planner_input.job_type == "code" else 1
        action = JointAction(swarm, candidates, self.options.max_minutes, iterations)
        # The input's own action space decides what is valid (bins and rules are data).
        return planner_input.action_space.check(action, planner_input.job_type)

    def predict(self, planner_input: PlannerInput) -> ActionDistribution:
        # A distribution is over the valid actions of the job type, in canonical order.
        actions = planner_input.action_space.valid_actions(planner_input.job_type)
        chosen = self.choose(planner_input)
        probs = np.zeros(len(actions), dtype=np.float64)
        if len(actions) == 1:
            probs[0] = 1.0
        else:
            probs[:] = (1.0 - self.options.confidence) / (len(actions) - 1)
            probs[actions.index(chosen)] = self.options.confidence
        return ActionDistribution(actions, probs)


# -- sampler ----------------------------------------------------------------------------------


def _estimated_cost(action: JointAction) -> tuple[float, str]:
    candidates = 3 if action.max_candidates_bin == NA else int(action.max_candidates_bin)
    minutes = 120 if action.max_minutes_bin == NA else int(action.max_minutes_bin)
    return (float(candidates * minutes), action.text)


@attrs.frozen
class CheapestFirstSampler:
    def sample(
        self, planner_input: PlannerInput, baseline: JointAction, k: int
    ) -> tuple[JointAction, ...]:
        valid = planner_input.action_space.valid_actions(planner_input.job_type)
        rest = sorted((a for a in valid if a != baseline), key=_estimated_cost)
        first = [baseline] if baseline in valid else []
        return tuple([*first, *rest][:k])


# -- selector ---------------------------------------------------------------------------------


@attrs.frozen
class CheapestSelector:
    def select(self, outcomes: Sequence[CandidateOutcome]) -> int:
        if not outcomes:
            raise ValueError("cannot select a winner among zero outcomes")
        return min(
            range(len(outcomes)),
            key=lambda i: (
                not outcomes[i].verified,
                outcomes[i].cost_usd if outcomes[i].verified else 0.0,
                outcomes[i].duration_ms,
                outcomes[i].action.text,
            ),
        )


# -- fallback ---------------------------------------------------------------------------------


@attrs.frozen
class AlwaysSerialOptions:
    max_minutes: Bin = NA


@attrs.frozen
class AlwaysSerialFallback:
    options: AlwaysSerialOptions

    def decide(self, planner_input: PlannerInput) -> JointAction:
        iterations: Bin = NA if planner_input.job_type == "code" else 1
        action = JointAction("serial_handoff", 1, self.options.max_minutes, iterations)
        return planner_input.action_space.check(action, planner_input.job_type)


# -- encoder ----------------------------------------------------------------------------------


@attrs.frozen
class KeywordsOptions:
    buckets: int = json_field(default=1024, validator=positive)


class KeywordsEncoder:
    """Tags and keywords, each hashed (sha256, never Python's ``hash()``) into a bucket."""

    def __init__(self, options: KeywordsOptions) -> None:
        self.options = options
        self.n_features = options.buckets

    def config(self) -> dict[str, Any]:
        return {"name": "keywords", "options": {"buckets": self.options.buckets}}

    def _ids(self, planner_input: PlannerInput) -> npt.NDArray[np.int64]:
        issue = planner_input.issue
        words = [f"tag={t}" for t in issue.tags] + [f"kw={k}" for k in issue.keywords or ()]
        ids = {
            int.from_bytes(hashlib.sha256(w.encode()).digest()[:8], "little") % self.n_features
            for w in words
        }
        return np.array(sorted(ids), dtype=np.int64)

    def encode(
        self, planner_input: PlannerInput, *, mask: npt.NDArray[np.bool_] | None = None
    ) -> Features:
        ids = self._ids(planner_input)
        if mask is None:
            mask = planner_input.action_space.job_mask(planner_input.job_type)
        return Features(ids, np.ones(len(ids), dtype=np.float32), mask)

    def encode_batch(
        self, inputs: Sequence[PlannerInput], *, masks: npt.NDArray[np.bool_] | None = None
    ) -> FeatureBatch:
        return FeatureBatch.stack(
            [self.encode(x, mask=None if masks is None else masks[i]) for i, x in enumerate(inputs)]
        )


# -- executor ---------------------------------------------------------------------------------

_NEEDED_MINUTES = {"XS": 10, "S": 20, "M": 40, "L": 80, "XL": 160}


@attrs.frozen
class DryRunOptions:
    usd_per_agent_minute: float = 0.01


@attrs.frozen
class DryRunExecutor:
    """Passes when the action gives the issue the minutes its size needs; each candidate costs
    its minutes. Deterministic: the same action on the same issue always ends the same way."""

    options: DryRunOptions

    def run(self, planner_input: PlannerInput, action: JointAction) -> CandidateOutcome:
        needed = _NEEDED_MINUTES[planner_input.issue.dk_size]
        given = 240 if action.max_minutes_bin == NA else int(action.max_minutes_bin)
        candidates = 3 if action.max_candidates_bin == NA else int(action.max_candidates_bin)
        minutes = min(needed, given)
        verified = given >= needed
        return CandidateOutcome(
            action=action,
            verified=verified,
            status="success" if verified else "timeout",
            duration_ms=minutes * 60_000,
            cost_usd=round(candidates * minutes * self.options.usd_per_agent_minute, 6),
        )


# -- registration -----------------------------------------------------------------------------


@hookimpl
def register_policies(register: Register) -> None:
    register("riskcap", RiskCapPolicy, options=RiskCapOptions)


@hookimpl
def register_samplers(register: Register) -> None:
    register("cheapest_first", CheapestFirstSampler)


@hookimpl
def register_selectors(register: Register) -> None:
    register("cheapest", CheapestSelector)


@hookimpl
def register_fallbacks(register: Register) -> None:
    register("always_serial", AlwaysSerialFallback, options=AlwaysSerialOptions)


@hookimpl
def register_encoders(register: Register) -> None:
    register("keywords", KeywordsEncoder, options=KeywordsOptions)


@hookimpl
def register_executors(register: Register) -> None:
    register("dry_run", DryRunExecutor, options=DryRunOptions)
