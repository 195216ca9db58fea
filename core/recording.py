"""Helpers a kernel (or the embedded world) uses to record what it asked, got and ran.

A run's manifest holds ``manifest["planner"] = {planner_input, planner_action, executed_plan,
timeout_seconds_override}``; the archive reader reads these back, so that recorded decisions feed
the next dataset. Timestamps are RFC3339 UTC with milliseconds.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from swarm_planner.core.action_space import NA, ActionSpace, JointAction
from swarm_planner.core.contracts import (
    EXECUTED_PLAN_V1,
    PLANNER_ACTION_V1,
    PLANNER_INPUT_V1,
    ExecutedPlan,
    History,
    Issue,
    ManifestPlannerRecord,
    ModelRef,
    PlannerAction,
    PlannerInput,
    RunSummary,
    SystemState,
    UniverseDefaults,
    budgets_of,
    dump,
)
from swarm_planner.core.documents import ReadLimits, read_bytes, read_json_object
from swarm_planner.core.errors import ContractError
from swarm_planner.core.validation import check_record

_LAST_SECOND: tuple[int, str] = (-1, "")
"""The formatted date and time of the last second asked for (every decision stamps the time:
formatting it once a second, not once a decision)."""


def rfc3339_from_ms(ms: int) -> str:
    """``2025-01-06T09:30:00.250Z`` for epoch milliseconds."""
    global _LAST_SECOND
    second, head = _LAST_SECOND
    if ms // 1000 != second:
        moment = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
        second, head = _LAST_SECOND = (ms // 1000, moment.strftime("%Y-%m-%dT%H:%M:%S."))
    return f"{head}{ms % 1000:03d}Z"


def ms_from_rfc3339(text: str) -> int:
    """Epoch milliseconds of an RFC3339 timestamp (``Z`` or an offset; naive means UTC)."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return round(moment.timestamp() * 1000)


def now_rfc3339() -> str:
    return rfc3339_from_ms(int(datetime.now(tz=timezone.utc).timestamp() * 1000))


def build_planner_input(
    *,
    universe_id: str,
    job_type: str,
    issue: Issue,
    history: list[RunSummary] | tuple[RunSummary, ...] = (),
    action_space: ActionSpace | None = None,
    universe_defaults: UniverseDefaults | None = None,
    system_state: SystemState | None = None,
    created_at: str | None = None,
) -> PlannerInput:
    """A planner_input.v1 from its parts (defaults: the default action space, now)."""
    return PlannerInput(
        schema_version=PLANNER_INPUT_V1,
        created_at=created_at or now_rfc3339(),
        universe_id=universe_id,
        job_type=job_type,
        universe_defaults=universe_defaults or UniverseDefaults(),
        issue=issue,
        history=History(tuple(history)),
        action_space=action_space or ActionSpace(),
        system_state=system_state,
    )


def planner_action_for(
    action: JointAction,
    *,
    created_at: str | None = None,
    probs: dict[str, dict[str, float]] | None = None,
    confidence: float | None = None,
    abstain_to_default: bool | None = None,
    reason: str | None = None,
    model: ModelRef | None = None,
    input_hash: str | None = None,
    label_source: str | None = None,
) -> PlannerAction:
    """A planner_action.v1 for a joint action."""
    return PlannerAction(
        schema_version=PLANNER_ACTION_V1,
        created_at=created_at or now_rfc3339(),
        swarm_id=action.swarm_id,
        budgets=budgets_of(action),
        probs=probs,
        confidence=confidence,
        abstain_to_default=abstain_to_default,
        reason=reason,
        model=model,
        input_hash=input_hash,
        label_source=label_source,
    )


def executed_plan_for(
    *,
    swarm_id: str,
    candidates: int | None,
    timeout_seconds: int | None,
    iterations: int | None,
    fallback_applied: bool = False,
    fallback_reason: str | None = None,
) -> ExecutedPlan:
    """An executed_plan.v1 from the raw numbers the kernel ran with."""
    return ExecutedPlan(
        schema_version=EXECUTED_PLAN_V1,
        swarm_id_executed=swarm_id,
        max_candidates_executed=candidates,
        timeout_seconds_executed=timeout_seconds,
        max_iterations_executed=iterations,
        fallback_applied=fallback_applied,
        fallback_reason=fallback_reason,
    )


def executed_plan_from_action(
    action: JointAction,
    *,
    fallback_applied: bool = False,
    fallback_reason: str | None = None,
) -> ExecutedPlan:
    """What a kernel runs for a binned action: minutes → seconds, ``NA`` → no cap (null)."""

    def raw(value: int | str) -> int | None:
        return None if value == NA else int(value)

    minutes = raw(action.max_minutes_bin)
    return executed_plan_for(
        swarm_id=action.swarm_id,
        candidates=raw(action.max_candidates_bin),
        timeout_seconds=None if minutes is None else minutes * 60,
        iterations=raw(action.max_iterations_bin),
        fallback_applied=fallback_applied,
        fallback_reason=fallback_reason,
    )


def write_json_atomic(
    path: Path, data: Any, *, indent: int | None = 2, durable: bool = False
) -> None:
    """Write JSON through a temporary file and a rename, so a reader never sees half a file.
    A symlink is followed (the file it points to is replaced, the link kept) and an existing
    file keeps its permissions. ``durable``: the content and the rename are on disk before
    this returns (fsync of the file, then of its folder), for pointers that must survive a
    power cut as well as a killed process."""
    path = path.resolve() if path.is_symlink() else path
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            separators = None if indent is not None else (",", ":")
            json.dump(data, handle, indent=indent, sort_keys=True, separators=separators)
            handle.write("\n")
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
        if durable:
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record_in_manifest(manifest_path: Path, record: ManifestPlannerRecord) -> None:
    """Store ``record`` as ``manifest["planner"]``, keeping every other manifest key.

    The record is checked first (a ContractError, nothing written, for a record the archive
    reader would refuse)."""
    check_record(record, ManifestPlannerRecord, source=f"{manifest_path}: planner")
    write_planner_section(manifest_path, dump(record))


def write_planner_section(manifest_path: Path, section: dict[str, Any]) -> None:
    """Store ``section`` as ``manifest["planner"]``. The manifest keeps its other keys and its
    layout (indented if it was, compact if it was not: a compact manifest near the reader's
    size limit must not double), and a manifest the archive reader would not read (over its
    size limit) is a ContractError with nothing written."""
    manifest = read_json_object(manifest_path)
    manifest["planner"] = section
    compact = b"\n " not in read_bytes(manifest_path)[:4096]
    indent = None if compact else 2
    separators = None if indent is not None else (",", ":")
    size = len(json.dumps(manifest, indent=indent, separators=separators).encode("utf-8"))
    limit = ReadLimits.from_env().max_bytes
    if size > limit:  # the archive reader would ignore the whole manifest: write nothing
        raise ContractError(
            f"{manifest_path}: planner",
            [
                f"the manifest would be {size:,} bytes, over the {limit:,} the archive reader "
                "reads (SWARM_PLANNER_MAX_FILE_BYTES); nothing was written"
            ],
        )
    write_json_atomic(manifest_path, manifest, indent=indent)
