"""What the bench reads and writes, as strict records.

A **case** is one issue as the kernel would see it at dispatch time (its planner_input, history
included) with today's rule's action (the baseline). A **candidate line** is one finished (or
budget-skipped) candidate of the log; the log holds nothing else, so a bench is exactly its cases
plus its log. Settings are everything that decides which candidates run and how they are judged;
their hash is recorded, and a bench directory refuses to resume under other settings.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from swarm_planner.core.action_space import JointAction
from swarm_planner.core.canonical import canonical_json, sha256_hex
from swarm_planner.core.contracts import PlannerInput, Status, dump
from swarm_planner.core.jsonconv import json_field, non_negative, positive
from swarm_planner.core.protocols import CandidateOutcome, GateOutcome

BENCH_CONFIG_V1 = "swarm_planner.bench_config.v1"

BudgetMode = Literal["reserve", "spend"]
"""``reserve``: a candidate starts only if its worst case fits (never exceeded); ``spend``: a
candidate starts while the minutes really spent are below the budget (see core/bench/budget.py)."""
OnBudget = Literal["finish", "kill"]
"""In ``spend`` mode, what happens to running candidates when the budget is reached."""
BUDGET_MODES: tuple[str, ...] = ("reserve", "spend")
ON_BUDGET: tuple[str, ...] = ("finish", "kill")
CANDIDATE_LINE_V1 = "swarm_planner.bench_candidate.v1"


@attrs.frozen
class BenchCase:
    """One issue of the bench at its dispatch time."""

    case_id: str
    planner_input: PlannerInput
    baseline: JointAction
    started_ms: int = 0

    @property
    def issue_id(self) -> str:
        return self.planner_input.issue.issue_id


@attrs.frozen
class CaseLine:
    """One line of ``cases.jsonl`` (and of an ``--issues FILE``): ``case_id`` defaults to the
    input's hash, ``baseline`` (``[swarm, candidates, minutes, iterations]``) to today's rule."""

    planner_input: PlannerInput
    case_id: str | None = json_field(optional=True)
    baseline: list[Any] | None = json_field(optional=True)
    started_ms: int | None = json_field(optional=True, validator=non_negative)
    inclusion: dict[str, float] | None = json_field(optional=True)
    """Written by the bench: the sampler's inclusion probability of every valid action."""


@attrs.frozen
class GateLine:
    name: str
    passed: bool


@attrs.frozen
class CandidateLine:
    """One candidate in the log: what ran (``slot`` in the case's sampled order) and how it
    ended, or why it was not run (``skipped``: a budget)."""

    schema_version: str
    case_id: str
    action: list[Any]
    verified: bool
    status: Status
    slot: int = json_field(validator=non_negative)
    duration_ms: int = json_field(validator=non_negative)
    cost_usd: float = json_field(validator=non_negative)
    candidate_minutes: float = json_field(validator=non_negative)
    minutes_estimated: bool = False
    fail_codes: tuple[str, ...] = ()
    gates: tuple[GateLine, ...] = ()
    error: str | None = json_field(optional=True)
    skipped: str | None = json_field(optional=True)
    inclusion: float | None = json_field(optional=True)
    """The chance the sampler had of picking this action for the case (its propensity)."""

    @property
    def joint_action(self) -> JointAction:
        return JointAction.from_list(self.action)

    def outcome(self) -> CandidateOutcome:
        return CandidateOutcome(
            action=self.joint_action,
            verified=self.verified,
            status=self.status,
            duration_ms=self.duration_ms,
            cost_usd=self.cost_usd,
            fail_codes=self.fail_codes,
            gates=tuple(GateOutcome(g.name, g.passed) for g in self.gates),
            candidate_minutes=self.candidate_minutes,
            error=self.error,
        )


ATTEMPT_LINE_V1 = "swarm_planner.bench_attempt.v1"


@attrs.frozen
class AttemptLine:
    """One lost attempt of a candidate (its worker process or node died under it): the
    candidate is run again, and only its last attempt reaches the candidate log."""

    case_id: str
    error: str
    slot: int = json_field(validator=non_negative)
    attempt: int = json_field(validator=positive)
    seconds: float = json_field(validator=non_negative)
    backend: str = "ray"
    schema_version: str = ATTEMPT_LINE_V1


@attrs.frozen
class PluginChoice:
    name: str
    options: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class BenchSettings:
    """Everything that decides a bench's candidates, their outcomes and its winners."""

    sampler: PluginChoice
    selector: PluginChoice
    executor: PluginChoice
    fallback: PluginChoice
    action_space_hash: str
    cases_hash: str
    k: int = json_field(default=4, validator=positive)
    timeout_minutes: int = json_field(default=120, validator=positive)
    uncapped_candidates: int = json_field(default=3, validator=positive)
    budget_minutes: float | None = json_field(optional=True)
    issue_budget_minutes: float | None = json_field(optional=True)
    keep_failed_winners: bool = False
    budget_mode: BudgetMode = "reserve"
    on_budget: OnBudget = "finish"
    schema_version: str = BENCH_CONFIG_V1

    def config_hash(self) -> str:
        return sha256_hex(canonical_json(dump(self)))

    def differences(self, other: BenchSettings) -> list[str]:
        """``key: old -> new`` for every top-level setting that differs (why a resume is
        refused)."""
        mine, theirs = dump(self), dump(other)
        return [
            f"{key}: {canonical_json(mine.get(key))} -> {canonical_json(theirs.get(key))}"
            for key in sorted(set(mine) | set(theirs))
            if mine.get(key) != theirs.get(key)
        ]


@attrs.frozen
class CaseResult:
    """One case after the bench: its candidates in slot order and the winner's slot (None: no
    candidate passed and failed winners are not kept, or nothing ran)."""

    case: BenchCase
    lines: tuple[CandidateLine, ...]
    winner: int | None

    @property
    def ran(self) -> tuple[CandidateLine, ...]:
        return tuple(line for line in self.lines if line.skipped is None)
