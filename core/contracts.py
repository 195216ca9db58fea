"""The JSON records kernels already write (docs/formats.md), as frozen attrs classes.

Field names, ``schema_version`` strings and optional keys follow the contracts exactly: a document
read and written back is the same document. Optional keys (``json_field(optional=True)``) are
written only when set; nullable keys are always written. Read and write through :func:`load` and
:func:`dump` (one converter, strict, with JSON paths in every error).
"""

from __future__ import annotations

import marshal
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar

import attrs

from swarm_planner.core import jsonconv, validation
from swarm_planner.core.action_space import NA, ActionSpace, Bin, JointAction, minutes_from_timeout
from swarm_planner.core.canonical import canonical_json, sha256_hex
from swarm_planner.core.documents import short_repr
from swarm_planner.core.errors import ContractError
from swarm_planner.core.jsonconv import (
    converter,
    json_field,
    non_negative,
    note_repair,
    positive,
    unit_interval,
    validator,
)

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


_DIGITS = re.compile(r"^[0-9]{1,18}$")
"""Digits a text may hold to be read as a number (ASCII only: ``int`` would take ``"٣"``)."""

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?$"
)
"""A date and a time of day (a space may stand for the ``T``), fractions of a second, and an
offset or ``Z`` (none: UTC, as kernels that write naive times mean it)."""


def _check_rfc3339(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return f"expected an RFC3339 timestamp, got {short_repr(value)}"
    if _RFC3339.match(value) is None:
        return f"{short_repr(value)} is not an RFC3339 timestamp"
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return f"{short_repr(value)} is not an RFC3339 timestamp"
    return None


_rfc3339 = validator(_check_rfc3339)
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
    duration_ms: int | None = json_field(default=None, validator=non_negative)


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
    universe_id: str | None = json_field(optional=True)
    """Fab-world runs of the field's kernel also name their universe, world and objective."""
    world_id: str | None = json_field(optional=True)
    objective_id: str | None = json_field(optional=True)
    outcome_key: tuple[Any, ...] | None = attrs.field(
        init=False, eq=False, repr=False, default=None
    )
    """What the run ran and how it ended, as plain values (status, duration, swarm, candidates,
    minutes, fail codes, failing gates): computed once, when the record is built, since every
    decision whose history shows the run reads it (the encoder's memo keys on it). Not JSON."""

    def __attrs_post_init__(self) -> None:
        try:
            outcome, action = self.outcome, self.action_executed
            gates = outcome.gates
            key: tuple[Any, ...] | None = (
                outcome.status,
                self.runtime.duration_ms,
                action.swarm_id,
                action.max_candidates,
                action.max_minutes,
                tuple(outcome.fail_codes),
                tuple([g.name for g in gates if not g.passed]) if gates else (),
            )
            hash(key)
        except (AttributeError, TypeError):  # a record built with wrong types: the check says
            key = None
        object.__setattr__(self, "outcome_key", key)


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


ISSUE_DEFAULTS: dict[str, str] = {"dk_priority": "P2", "dk_risk": "medium", "dk_size": "M"}
"""What an issue's priority, risk and size are when they are not given (docs/formats.md: unknown →
these too, in an issue file)."""
ISSUE_ENUMS: dict[str, tuple[str, ...]] = {
    "dk_priority": PRIORITIES,
    "dk_risk": RISKS,
    "dk_size": SIZES,
}


def repair_issue_fields(value: Mapping[str, Any], *, unknown_too: bool) -> dict[str, Any]:
    """The repairs an issue may have, each noted: a missing priority, risk or size takes its
    default (with ``unknown_too``, as an issue file is read, so does a null or an unknown
    value), and ``dk_attempts`` given as digits becomes a number (null: 0, with ``unknown_too``).

    The one place these rules live: the planner_input reader and the issue-file reader both
    call it."""
    out = dict(value)
    for key, default in ISSUE_DEFAULTS.items():
        given = out.get(key)
        if key not in out or (unknown_too and given is None):
            note_repair(f"issue.{key}: missing -> {default}")
            out[key] = default
        elif unknown_too and given not in ISSUE_ENUMS[key]:
            note_repair(f"issue.{key}: unknown -> {default}", repr(given))
            out[key] = default
    attempts = out.get("dk_attempts")
    if isinstance(attempts, str) and _DIGITS.match(attempts.strip()):
        note_repair("issue.dk_attempts: string -> int")
        out["dk_attempts"] = int(attempts.strip())
    elif attempts is None and unknown_too:
        out.pop("dk_attempts", None)
    return out


@attrs.frozen
class Issue:
    """The issue being dispatched. Missing enums default, string attempts are coerced (noted)."""

    issue_id: str
    dk_priority: Priority = "P2"
    dk_risk: Risk = "medium"
    dk_size: Size = "M"
    dk_tool_hint: str | None = None
    dk_attempts: int = json_field(default=0, validator=non_negative)
    tags: tuple[str, ...] = ()
    title: str | None = json_field(optional=True)
    description: str | None = json_field(optional=True)
    keywords: tuple[str, ...] | None = json_field(optional=True)


def _structure_issue_fn() -> Any:
    inner = jsonconv._attrs_structure(Issue)

    def structure(value: Any, tp: Any) -> Issue:
        if isinstance(value, Mapping):
            value = repair_issue_fields(value, unknown_too=False)
        issue: Issue = inner(value, tp)
        return issue

    return structure


converter.register_structure_hook(Issue, _structure_issue_fn())


@attrs.frozen
class History:
    last_n_similar_runs: tuple[RunSummary, ...] = ()


def _structure_hour(value: Any, _: Any) -> int | None:
    """An hour 0..23; the field's kernel writes it as two digits (``"09"``), read and noted."""
    if value is None:
        return None
    if isinstance(value, str) and _DIGITS.match(value.strip()):
        note_repair("system_state.hour_bucket: string -> int")
        return int(value.strip())
    hour: int = converter.structure(value, int)
    return hour


@attrs.frozen
class SystemState:
    """Load and health of the kernel at decision time; every field nullable (logged from now on)."""

    active_workcells_bin: CountBin | None = None
    queue_depth_bin: CountBin | None = None
    available_toolchains: tuple[str, ...] | None = None
    toolchain_health: dict[str, float] | None = None
    hour_bucket: int | None = json_field(default=None, validator=_hour, structure=_structure_hour)
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
        """sha256 of the canonical JSON without ``created_at`` (:func:`canonical.input_hash`),
        composed from memoised canonical parts: the action space and each history run are
        serialised once, not on every decision (tests pin it to the plain definition)."""
        return sha256_hex(_canonical_body(self))


_FRAGMENT_MEMO = 16_384
_fragments: dict[int, tuple[Any, str]] = {}
"""id(record) → (record, its canonical JSON): the record is kept so that its id is not reused."""


def _fragment(record: Any) -> str:
    global _fragments
    known = _fragments.get(id(record))
    if known is not None and known[0] is record:
        return known[1]
    text = canonical_json(dump(record))
    if len(_fragments) >= _FRAGMENT_MEMO:
        _fragments = {}
    _fragments[id(record)] = (record, text)
    return text


def _canonical_body(x: PlannerInput) -> str:
    parts = {
        "action_space": _fragment(x.action_space),
        "history": '{"last_n_similar_runs":['
        + ",".join(_fragment(r) for r in x.history.last_n_similar_runs)
        + "]}",
        "issue": canonical_json(dump(x.issue)),
        "job_type": canonical_json(x.job_type),
        "schema_version": canonical_json(x.schema_version),
        "universe_defaults": _fragment(x.universe_defaults),
        "universe_id": canonical_json(x.universe_id),
    }
    if x.system_state is not None:
        parts["system_state"] = _fragment(x.system_state)
    return "{" + ",".join(f'"{k}":{parts[k]}' for k in sorted(parts)) + "}"


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
    confidence: float | None = json_field(optional=True, validator=unit_interval)
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
    max_candidates_executed: int | None = attrs.field(validator=positive)
    timeout_seconds_executed: int | None = attrs.field(validator=positive)
    max_iterations_executed: int | None = attrs.field(validator=positive)
    fallback_applied: bool = False
    fallback_reason: str | None = None

    def to_action(self, space: ActionSpace) -> JointAction:
        """The bins of what ran (minutes from the timeout, nearest bin)."""
        return space.nearest_action(*self.raw_action())

    def raw_action(self) -> tuple[str, int | None, int | None, int | None]:
        """What ran in raw numbers: swarm, candidates, minutes, iterations (None: no cap)."""
        return (
            self.swarm_id_executed,
            self.max_candidates_executed,
            minutes_from_timeout(self.timeout_seconds_executed),
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
    record = jsonconv.structure(data, cls, source=source)
    # Checked here: not walked again before a decision (nor the records it holds, such as a
    # dataset row's planner_input).
    validation.remember_valid(record)
    kind: Any = type(record)
    if attrs.has(kind):
        for field in attrs.fields(kind):
            part = getattr(record, field.name)
            if attrs.has(type(part)):
                validation.remember_valid(part)
    return record


_PARTS_MEMO = 16_384
_parts: dict[tuple[type, bytes], Any] = {}


class _Slow(Exception):
    """The fast path of :func:`load_input` does not apply: the strict converter decides."""


def _memo_part(data: Any, cls: type[T]) -> T:
    """A record that repeats between inputs (a history run, an action space), read by the
    strict converter once per distinct content. The key is the JSON value's ``marshal`` bytes
    (version 2: no shared references), which tell ``true`` from ``1`` and ``1.0`` from ``1`` as
    the converter does; a run seen again with a new outcome is read again."""
    global _parts
    try:
        key = (cls, marshal.dumps(data, 2))
    except ValueError:  # not plain JSON data: the converter says what it is
        return load(data, cls)
    known = _parts.get(key)
    if known is None:
        known = load(data, cls)
        if len(_parts) >= _PARTS_MEMO:
            _parts = {}
        _parts[key] = known
    record: T = known
    return record


_INPUT_FIELDS = frozenset(f.name for f in attrs.fields(PlannerInput))
_INPUT_REQUIRED = frozenset(
    f.name for f in attrs.fields(PlannerInput) if f.default is attrs.NOTHING
)


def load_input(data: Any, *, source: str = "planner_input") -> PlannerInput:
    """``load(data, PlannerInput)`` for a stream of inputs (the sidecar's): history runs, action
    spaces, universe defaults and system states, which repeat from one input to the next, are
    read once per distinct content;
    the rest strictly each time. Anything the fast path does not expect goes through the full
    converter, so a bad input gets the same error naming every bad path (tests pin the two to
    the same records)."""
    try:
        if not isinstance(data, dict) or not (_INPUT_REQUIRED <= data.keys() <= _INPUT_FIELDS):
            raise _Slow
        history = data["history"]
        if not isinstance(history, dict) or not history.keys() <= {"last_n_similar_runs"}:
            raise _Slow
        runs = history.get("last_n_similar_runs", [])
        if not isinstance(runs, list):
            raise _Slow
        state = data.get("system_state")
        if data["schema_version"] != PLANNER_INPUT_V1:
            raise _Slow
        record = PlannerInput(
            schema_version=PLANNER_INPUT_V1,
            created_at=jsonconv.structure(data["created_at"], str),
            universe_id=jsonconv.structure(data["universe_id"], str),
            job_type=jsonconv.structure(data["job_type"], str),
            universe_defaults=_memo_part(data["universe_defaults"], UniverseDefaults),
            issue=load(data["issue"], Issue),
            history=History(tuple(_memo_part(r, RunSummary) for r in runs)),
            action_space=_memo_part(data["action_space"], ActionSpace),
            system_state=None if state is None else _memo_part(state, SystemState),
        )
        validation.remember_valid(record)  # every part was read by the strict converter
        return record
    except Exception:  # the strict converter reports what is wrong (or reads it after all)
        return load(data, PlannerInput, source=source)


def check_input(planner_input: Any, *, source: str = "planner_input") -> PlannerInput:
    """``planner_input`` if it is a valid :class:`PlannerInput`, however it was built; else a
    :class:`ContractError` listing every bad value. Every policy calls it before any model work,
    so that a record built in code with a wrong type, a NaN or a lone surrogate fails here, as
    a contract error, not deep in an encoder or a hash."""
    validation.check_record(planner_input, PlannerInput, source=source)
    checked: PlannerInput = planner_input
    return checked


def no_valid_action(planner_input: PlannerInput, *, source: str = "planner_input") -> ContractError:
    """The error for an input whose action space allows no action for its job type (a policy
    finds it when it takes the job type's mask or valid actions)."""
    return ContractError(
        source,
        [f"action_space: its rules leave no valid action for job_type {planner_input.job_type!r}"],
    )


def dump(record: Any) -> Any:
    """The exact JSON data of a record."""
    return jsonconv.unstructure(record)


__all__ = [
    "ISSUE_DEFAULTS",
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
    "check_input",
    "domain_of",
    "dump",
    "load",
    "load_input",
    "no_valid_action",
    "repair_issue_fields",
]
