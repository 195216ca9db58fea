"""The JSON records kernels already write (CONTRACTS.md), as frozen attrs classes.

Field names, ``schema_version`` strings and optional keys follow the contracts exactly: a document
read and written back is the same document. Optional keys (``json_field(optional=True)``) are
written only when set; nullable keys are always written. Read and write through :func:`load` and
:func:`dump` (one converter, strict, with JSON paths in every error).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar

import attrs

from swarm_planner.core import jsonconv
from swarm_planner.core.action_space import NA, ActionSpace, Bin, JointAction
from swarm_planner.core.canonical import input_hash
from swarm_planner.core.jsonconv import converter, json_field, note_coercion, validator

T = TypeVar("T")

Priority = Literal["P0", "P1", "P2", "P3"]
Risk = Literal["low", "medium", "high", "critical"]
Size = Literal["XS", "S", "M", "L", "XL"]
Status = Literal["success", "failed", "timeout"]
CountBin = Literal["0", "1_2", "3_5", "6_plus"]

PRIORITIES: tuple[str, ...] = ("P0", "P1", "P2", "P3")
RISKS: tuple[str, ...] = ("low", "medium", "high", "critical")
SIZES: tuple[str, ...] = ("XS", "S", "M", "L", "XL")
STATUSES: tuple[str, ...] = ("success", "failed", "timeout")

PLANNER_INPUT_V1: Literal["cyntra.planner_input.v1"] = "cyntra.planner_input.v1"
PLANNER_ACTION_V1: Literal["cyntra.planner_action.v1"] = "cyntra.planner_action.v1"
EXECUTED_PLAN_V1: Literal["cyntra.executed_plan.v1"] = "cyntra.executed_plan.v1"
RUN_SUMMARY_V1: Literal["cyntra.run_summary.v1"] = "cyntra.run_summary.v1"


def _check_rfc3339(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return f"{value!r} is not an RFC3339 timestamp"
    return None


_rfc3339 = validator(_check_rfc3339)
_non_negative = validator(lambda v: f"{v!r} is negative" if v is not None and v < 0 else None)
_at_least_one = validator(lambda v: f"{v!r} is below 1" if v is not None and v < 1 else None)
_unit_interval = validator(
    lambda v: f"{v!r} is not within [0, 1]" if v is not None and not 0.0 <= v <= 1.0 else None
)
_hour = validator(
    lambda v: f"{v!r} is not an hour 0..23" if v is not None and not 0 <= v <= 23 else None
)


# -- run_summary.v1 ---------------------------------------------------------------------------


@attrs.frozen
class Gate:
    name: str
    passed: bool
    score: float | None = None


@attrs.frozen
class Outcome:
    status: Status
    fail_codes: tuple[str, ...] = ()
    gates: tuple[Gate, ...] = ()


@attrs.frozen
class ActionExecuted:
    """What ran, in raw numbers (``None`` = unknown or uncapped)."""

    swarm_id: str
    max_candidates: int | None = None
    max_minutes: int | None = None
    max_iterations: int | None = None


@attrs.frozen
class Runtime:
    duration_ms: int | None = json_field(default=None, validator=_non_negative)


@attrs.frozen
class RunSummary:
    """One past run, as the history of a planner_input holds it."""

    run_id: str
    started_ms: int
    job_type: str
    domain: str
    action_executed: ActionExecuted
    outcome: Outcome
    runtime: Runtime
    tags: tuple[str, ...] | None = json_field(optional=True)
    issue_id: str | None = json_field(optional=True)
    cost_usd_est: float | None = json_field(optional=True)
    tokens_in: int | None = json_field(optional=True)
    tokens_out: int | None = json_field(optional=True)
    schema_version: Literal["cyntra.run_summary.v1"] | None = json_field(optional=True)


def domain_of(job_type: str, tags: tuple[str, ...] | list[str] | None) -> str:
    """``fab_world`` for fab-world jobs, ``fab_asset`` if a tag starts ``asset:``, else ``code``."""
    if job_type == "fab-world":
        return "fab_world"
    if tags and any(t.startswith("asset:") for t in tags):
        return "fab_asset"
    return "code"


# -- planner_input.v1 -------------------------------------------------------------------------


@attrs.frozen
class UniverseDefaults:
    swarm_id: str | None = None
    objective_id: str | None = None


@attrs.frozen
class Issue:
    """The issue being dispatched. Missing enums default, string attempts are coerced (counted)."""

    issue_id: str
    dk_priority: Priority = "P2"
    dk_risk: Risk = "medium"
    dk_size: Size = "M"
    dk_tool_hint: str | None = None
    dk_attempts: int = json_field(default=0, validator=_non_negative)
    tags: tuple[str, ...] = ()
    title: str | None = json_field(optional=True)
    description: str | None = json_field(optional=True)
    keywords: tuple[str, ...] | None = json_field(optional=True)


_ISSUE_DEFAULTS = {"dk_priority": "P2", "dk_risk": "medium", "dk_size": "M"}


def _structure_issue_fn() -> Any:
    inner = jsonconv._attrs_structure(Issue)

    def structure(value: Any, tp: Any) -> Issue:
        if isinstance(value, Mapping):
            value = dict(value)
            for key, default in _ISSUE_DEFAULTS.items():
                if key not in value:
                    note_coercion(f"issue.{key}: missing -> {default}")
                    value[key] = default
            attempts = value.get("dk_attempts")
            if isinstance(attempts, str) and attempts.strip().isdigit():
                note_coercion("issue.dk_attempts: string -> int")
                value["dk_attempts"] = int(attempts.strip())
        issue: Issue = inner(value, tp)
        return issue

    return structure


converter.register_structure_hook(Issue, _structure_issue_fn())


@attrs.frozen
class History:
    last_n_similar_runs: tuple[RunSummary, ...] = ()


@attrs.frozen
class SystemState:
    """Load and health of the kernel at decision time; every field nullable (logged from now on)."""

    active_workcells_bin: CountBin | None = None
    queue_depth_bin: CountBin | None = None
    available_toolchains: tuple[str, ...] | None = None
    toolchain_health: dict[str, float] | None = None
    hour_bucket: int | None = attrs.field(default=None, validator=_hour)
    budget_remaining_bin: str | None = None


@attrs.frozen
class PlannerInput:
    schema_version: Literal["cyntra.planner_input.v1"]
    created_at: str = attrs.field(validator=_rfc3339)
    universe_id: str
    job_type: str
    universe_defaults: UniverseDefaults
    issue: Issue
    history: History
    action_space: ActionSpace
    system_state: SystemState | None = json_field(optional=True)

    def input_hash(self) -> str:
        return input_hash(dump(self))


# -- planner_action.v1 ------------------------------------------------------------------------


@attrs.frozen
class Budgets:
    max_candidates_bin: Bin
    max_minutes_bin: Bin
    max_iterations_bin: Bin


@attrs.frozen
class ModelRef:
    checkpoint_id: str
    version: str | None = None
    git_sha: str | None = None


@attrs.frozen
class PlannerAction:
    schema_version: Literal["cyntra.planner_action.v1"]
    created_at: str = attrs.field(validator=_rfc3339)
    swarm_id: str
    budgets: Budgets
    probs: dict[str, dict[str, float]] | None = json_field(optional=True)
    confidence: float | None = json_field(optional=True, validator=_unit_interval)
    abstain_to_default: bool | None = json_field(optional=True)
    reason: str | None = json_field(optional=True)
    model: ModelRef | None = json_field(optional=True)
    input_hash: str | None = json_field(optional=True)
    label_source: str | None = json_field(optional=True)

    @property
    def action(self) -> JointAction:
        b = self.budgets
        return JointAction(
            self.swarm_id, b.max_candidates_bin, b.max_minutes_bin, b.max_iterations_bin
        )


def budgets_of(action: JointAction) -> Budgets:
    return Budgets(action.max_candidates_bin, action.max_minutes_bin, action.max_iterations_bin)


# -- executed_plan.v1 -------------------------------------------------------------------------


@attrs.frozen
class ExecutedPlan:
    schema_version: Literal["cyntra.executed_plan.v1"]
    swarm_id_executed: str
    max_candidates_executed: int | None = attrs.field(validator=_at_least_one)
    timeout_seconds_executed: int | None = attrs.field(validator=_at_least_one)
    max_iterations_executed: int | None = attrs.field(validator=_at_least_one)
    fallback_applied: bool = False
    fallback_reason: str | None = None

    def to_action(self, space: ActionSpace) -> JointAction:
        """The bins of what ran (minutes = ``int(timeout_seconds / 60)``, nearest bin)."""
        minutes = (
            None
            if self.timeout_seconds_executed is None
            else int(self.timeout_seconds_executed / 60)
        )
        return space.nearest_action(
            self.swarm_id_executed,
            self.max_candidates_executed,
            minutes,
            self.max_iterations_executed,
        )


@attrs.frozen
class ManifestPlannerRecord:
    """``manifest["planner"]``: what was asked, what was answered, what ran."""

    planner_input: PlannerInput
    planner_action: PlannerAction
    executed_plan: ExecutedPlan
    timeout_seconds_override: int | None = None


# -- one way in, one way out ------------------------------------------------------------------


def load(data: Any, cls: type[T], *, source: str = "<json>") -> T:
    """Read a record from JSON data; a :class:`ContractError` lists every bad path."""
    return jsonconv.structure(data, cls, source=source)


def dump(record: Any) -> Any:
    """The exact JSON data of a record."""
    return jsonconv.unstructure(record)


__all__ = [
    "NA",
    "ActionExecuted",
    "Budgets",
    "ExecutedPlan",
    "Gate",
    "History",
    "Issue",
    "ManifestPlannerRecord",
    "ModelRef",
    "Outcome",
    "PlannerAction",
    "PlannerInput",
    "RunSummary",
    "Runtime",
    "SystemState",
    "UniverseDefaults",
    "budgets_of",
    "domain_of",
    "dump",
    "load",
]
