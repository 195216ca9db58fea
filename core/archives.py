"""Read a kernel repo root into run summaries, issue metadata and the universe (CONTRACTS.md).

Layout read: ``.cyntra/archives/<workcell_id>/`` (``rollout.json`` when its schema_version is
``cyntra.rollout.v1``, otherwise ``manifest.json`` + ``proof.json``), ``.beads/issues.jsonl`` and
``universes/<id>/{universe,swarms}.yaml``.

Nothing crashes and nothing disappears silently: a malformed or truncated file, a missing proof,
an unknown status or a bad field skips that run (or issue line) with a :class:`Skip` naming the
file, the field and the problem; ``strict=True`` turns the first such problem into an
:class:`ArchiveError`. Tolerated dirt (string ``dk_attempts``, missing or unknown enums) is
coerced and counted in the report.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml

from swarm_planner.core.contracts import (
    PRIORITIES,
    RISKS,
    SIZES,
    ActionExecuted,
    ExecutedPlan,
    Gate,
    Issue,
    Outcome,
    PlannerInput,
    RunSummary,
    Runtime,
    SystemState,
    UniverseDefaults,
    domain_of,
    load,
)
from swarm_planner.core.errors import ContractError, PlannerError
from swarm_planner.core.jsonconv import CoercionLog, recording_coercions
from swarm_planner.core.progress import Progress
from swarm_planner.core.recording import ms_from_rfc3339

ROLLOUT_V1 = "cyntra.rollout.v1"
PROOF_STATUSES = ("success", "partial", "failed", "timeout")
ISSUE_DEFAULTS = {"dk_priority": "P2", "dk_risk": "medium", "dk_size": "M"}
_ISSUE_ENUMS = {"dk_priority": PRIORITIES, "dk_risk": RISKS, "dk_size": SIZES}


class ArchiveError(PlannerError, ValueError):
    """A problem in a kernel root, raised in strict mode (otherwise it is a :class:`Skip`)."""


class _SkipRun(Exception):
    """Internal: the run (or line) at hand is skipped for this reason."""


@attrs.frozen
class Skip:
    """One skipped run or line: where, and why."""

    path: str
    reason: str

    @property
    def kind(self) -> str:
        """The reason without its specifics, for counting (``malformed JSON``, ...)."""
        return self.reason.split(":", 1)[0]


@attrs.define
class ReadReport:
    """What was read, what was skipped and why, and what was coerced."""

    root: str
    runs_read: int = 0
    issues_read: int = 0
    skipped: list[Skip] = attrs.field(factory=list)
    coercions: CoercionLog = attrs.field(factory=CoercionLog)

    def skip_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(s.kind for s in self.skipped).items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "runs_read": self.runs_read,
            "issues_read": self.issues_read,
            "skipped_count": len(self.skipped),
            "skip_counts": self.skip_counts(),
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "coercions": dict(sorted(self.coercions.counts.items())),
        }


@attrs.frozen
class ArchivedRun:
    """One archived run: its summary plus what the kernel recorded about the decision."""

    summary: RunSummary
    directory: str
    outcome_source: str
    action_source: str
    executed_plan: ExecutedPlan | None = None
    system_state: SystemState | None = None
    timeout_seconds_override: int | None = None


@attrs.frozen
class Universe:
    universe_id: str
    defaults: UniverseDefaults
    swarm_ids: tuple[str, ...]


@attrs.frozen
class KernelRoot:
    """Everything read from one root; runs in time order ``(started_ms, run_id)``."""

    runs: tuple[ArchivedRun, ...]
    issues: dict[str, Issue]
    universe: Universe
    report: ReadReport


# -- small typed accessors that raise _SkipRun with the path ----------------------------------


def _at(doc: Mapping[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _typed(doc: Mapping[str, Any], dotted: str, kind: type | tuple[type, ...], file: str) -> Any:
    value = _at(doc, dotted)
    if value is None:
        return None
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise _SkipRun(f"bad field: {file}: {dotted}: expected a number, got {value!r}")
    if not isinstance(value, kind):
        names = "/".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise _SkipRun(f"bad field: {file}: {dotted}: expected {names}, got {value!r}")
    return value


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _SkipRun(f"unreadable file: {path.name}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise _SkipRun(f"malformed JSON: {path.name}: not UTF-8 ({exc.reason})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _SkipRun(
            f"malformed JSON: {path.name}: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    if not isinstance(data, dict):
        raise _SkipRun(
            f"malformed JSON: {path.name}: expected an object, got {type(data).__name__}"
        )
    return data


def _time_ms(doc: Mapping[str, Any], dotted: str, file: str) -> int | None:
    value = _typed(doc, dotted, str, file)
    if value is None:
        return None
    try:
        return ms_from_rfc3339(value)
    except ValueError as exc:
        raise _SkipRun(f"bad field: {file}: {dotted}: {value!r} is not RFC3339") from exc


def _dedupe(codes: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(codes))


def _str_list(doc: Mapping[str, Any], dotted: str, file: str) -> list[str]:
    value = _typed(doc, dotted, list, file) or []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _SkipRun(f"bad field: {file}: {dotted}[{i}]: expected a string, got {item!r}")
    return list(value)


# -- one run ------------------------------------------------------------------------------------


def _planner_section(
    doc: Mapping[str, Any] | None, file: str
) -> tuple[ExecutedPlan | None, PlannerInput | None, int | None]:
    """``executed_plan``, ``planner_input`` and the override from a ``planner`` section."""
    if doc is None:
        return None, None, None
    section = doc.get("planner")
    if section is None:
        return None, None, None
    if not isinstance(section, Mapping):
        raise _SkipRun(f"bad field: {file}: planner: expected an object")
    try:
        plan = None
        if section.get("executed_plan") is not None:
            plan = load(section["executed_plan"], ExecutedPlan, source=f"{file}: planner")
        recorded = None
        if section.get("planner_input") is not None:
            recorded = load(section["planner_input"], PlannerInput, source=f"{file}: planner")
    except ContractError as exc:
        first = exc.problems[0]
        where = "executed_plan" if plan is None else "planner_input"
        raise _SkipRun(f"bad field: {file}: planner.{where}.{first}") from exc
    override = _typed(section, "timeout_seconds_override", int, file)
    return plan, recorded, override


def _action(
    manifest: Mapping[str, Any] | None, plan: ExecutedPlan | None, file: str
) -> tuple[ActionExecuted, str]:
    if plan is not None:
        minutes = (
            None
            if plan.timeout_seconds_executed is None
            else int(plan.timeout_seconds_executed / 60)
        )
        return (
            ActionExecuted(
                plan.swarm_id_executed,
                plan.max_candidates_executed,
                minutes,
                plan.max_iterations_executed,
            ),
            "executed_plan",
        )
    manifest = manifest or {}
    speculate = _typed(manifest, "speculate_mode", bool, file)
    if speculate:
        parallelism = _typed(manifest, "control.speculate_parallelism", int, file)
        return ActionExecuted("speculate_vote", parallelism, None, None), "legacy"
    return ActionExecuted("serial_handoff", 1, None, None), "legacy"


def _identity(
    directory: Path,
    manifest: Mapping[str, Any],
    doc: Mapping[str, Any],
    file: str,
    time_fields: tuple[str, ...],
) -> tuple[str, int]:
    """``run_id``: the document's workcell id → the manifest's → the directory name;
    ``started_ms``: the first of ``time_fields`` present → the directory's mtime."""
    run_id = (
        _typed(doc, "workcell_id", str, file)
        or _typed(manifest, "workcell_id", str, "manifest.json")
        or directory.name
    )
    for field in time_fields:
        started = _time_ms(doc, field, file)
        if started is not None:
            return run_id, started
    return run_id, int(os.stat(directory).st_mtime * 1000)


def _from_proof(
    directory: Path, manifest: Mapping[str, Any], proof: Mapping[str, Any]
) -> tuple[RunSummary, str]:
    run_id, started = _identity(
        directory, manifest, proof, "proof.json", ("metadata.started_at", "metadata.completed_at")
    )
    status_text = _typed(proof, "status", str, "proof.json")
    if status_text not in PROOF_STATUSES:
        raise _SkipRun(
            f"unknown status: proof.json: status: {status_text!r} is not one of "
            f"{'|'.join(PROOF_STATUSES)}"
        )
    all_passed = bool(_typed(proof, "verification.all_passed", bool, "proof.json"))
    if status_text == "timeout":
        status = "timeout"
    elif status_text in ("success", "partial") and all_passed:
        status = "success"
    else:
        status = "failed"
    gates_doc = _typed(proof, "verification.gates", Mapping, "proof.json") or {}
    gates, codes = [], []
    for name, gate in gates_doc.items():
        where = f"verification.gates.{name}"
        if not isinstance(gate, Mapping):
            raise _SkipRun(f"bad field: proof.json: {where}: expected an object")
        passed = _typed(gate, "passed", bool, "proof.json")
        score = _typed(gate, "score", (int, float), "proof.json")
        gates.append(Gate(str(name), bool(passed), None if score is None else float(score)))
        codes.extend(_str_list(gate, "fail_codes", f"proof.json: {where}"))
    codes.extend(_str_list(proof, "verification.blocking_failures", "proof.json"))
    job_type = _typed(manifest, "job_type", str, "manifest.json") or "code"
    tags = tuple(_str_list(manifest, "issue.tags", "manifest.json"))
    cost = _typed(proof, "metadata.cost_usd", (int, float), "proof.json")
    summary = RunSummary(
        run_id=run_id,
        started_ms=started,
        job_type=job_type,
        domain=domain_of(job_type, tags),
        action_executed=ActionExecuted("serial_handoff"),  # replaced by the caller
        outcome=Outcome(status, _dedupe(codes), tuple(gates)),  # type: ignore[arg-type]
        runtime=Runtime(_typed(proof, "metadata.duration_ms", int, "proof.json")),
        tags=tags,
        issue_id=_issue_id(manifest, "issue.id", "manifest.json"),
        cost_usd_est=None if cost is None else float(cost),
        tokens_in=_typed(proof, "metadata.tokens_used", int, "proof.json"),
    )
    return summary, "proof"


def _issue_id(doc: Mapping[str, Any], dotted: str, file: str) -> str | None:
    value = _typed(doc, dotted, (str, int), file)
    return None if value is None else str(value)


def _from_rollout(
    directory: Path, manifest: Mapping[str, Any] | None, rollout: Mapping[str, Any]
) -> tuple[RunSummary, str]:
    manifest = manifest or {}
    run_id, started = _identity(
        directory, manifest, rollout, "rollout.json", ("metadata.started_at",)
    )
    all_passed = _typed(rollout, "outcomes.verification.all_passed", bool, "rollout.json")
    codes = _str_list(rollout, "outcomes.verification.blocking_failures", "rollout.json")
    job_type = (
        _typed(rollout, "job_type", str, "rollout.json")
        or _typed(manifest, "job_type", str, "manifest.json")
        or "code"
    )
    tags = tuple(_str_list(manifest, "issue.tags", "manifest.json"))
    cost = _typed(rollout, "scores.cost_usd", (int, float), "rollout.json")
    summary = RunSummary(
        run_id=run_id,
        started_ms=started,
        job_type=job_type,
        domain=domain_of(job_type, tags),
        action_executed=ActionExecuted("serial_handoff"),
        outcome=Outcome("success" if all_passed else "failed", _dedupe(codes)),
        runtime=Runtime(_typed(rollout, "scores.duration_ms", int, "rollout.json")),
        tags=tags,
        issue_id=_issue_id(rollout, "issue_id", "rollout.json")
        or _issue_id(manifest, "issue.id", "manifest.json"),
        cost_usd_est=None if cost is None else float(cost),
    )
    return summary, "rollout"


def read_run(directory: Path) -> ArchivedRun:
    """Read one archive directory; raises ``_SkipRun`` with the reason when it cannot."""
    rollout_path = directory / "rollout.json"
    manifest_path = directory / "manifest.json"
    manifest = _read_json(manifest_path) if manifest_path.exists() else None
    rollout = _read_json(rollout_path) if rollout_path.exists() else None
    if rollout is not None and rollout.get("schema_version") == ROLLOUT_V1:
        summary, source = _from_rollout(directory, manifest, rollout)
        plan, recorded, override = _planner_section(rollout, "rollout.json")
        if plan is None:
            plan, recorded, override = _planner_section(manifest, "manifest.json")
    else:
        if manifest is None:
            raise _SkipRun("missing manifest: no manifest.json and no cyntra.rollout.v1 rollout")
        proof_path = directory / "proof.json"
        if not proof_path.exists():
            raise _SkipRun("missing proof: manifest.json without proof.json")
        summary, source = _from_proof(directory, manifest, _read_json(proof_path))
        plan, recorded, override = _planner_section(manifest, "manifest.json")
    action, action_source = _action(manifest, plan, "manifest.json")
    summary = attrs.evolve(summary, action_executed=action)
    state = None if recorded is None else recorded.system_state
    return ArchivedRun(summary, str(directory), source, action_source, plan, state, override)


# -- issues and universe ------------------------------------------------------------------------


def _coerce_issue_line(raw: Mapping[str, Any], log: CoercionLog) -> dict[str, Any]:
    """The planner's Issue fields of one issues.jsonl object, with the tolerated dirt fixed."""
    if "id" not in raw or not isinstance(raw["id"], (str, int)) or isinstance(raw["id"], bool):
        raise _SkipRun(f"bad field: id: expected a string, got {raw.get('id')!r}")
    out: dict[str, Any] = {"issue_id": str(raw["id"])}
    for key, allowed in _ISSUE_ENUMS.items():
        value = raw.get(key)
        if value is None:
            log.add(f"issues.jsonl {key}: missing -> {ISSUE_DEFAULTS[key]}")
            value = ISSUE_DEFAULTS[key]
        elif value not in allowed:
            log.add(f"issues.jsonl {key}: unknown -> {ISSUE_DEFAULTS[key]}")
            value = ISSUE_DEFAULTS[key]
        out[key] = value
    attempts = raw.get("dk_attempts", 0)
    if isinstance(attempts, str) and attempts.strip().isdigit():
        log.add("issues.jsonl dk_attempts: string -> int")
        attempts = int(attempts.strip())
    elif attempts is None:
        attempts = 0
    out["dk_attempts"] = attempts
    for key in ("dk_tool_hint", "title", "description"):
        if raw.get(key) is not None:
            out[key] = raw[key]
    out["tags"] = raw.get("tags") or []
    return out


def read_issues(path: Path, report: ReadReport, *, strict: bool = False) -> dict[str, Issue]:
    """``issues.jsonl`` → issue id → Issue; bad lines are skipped with their line number."""
    issues: dict[str, Issue] = {}
    if not path.exists():
        return issues
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise _SkipRun(f"malformed JSON: {exc.msg} (column {exc.colno})") from exc
                if not isinstance(raw, dict):
                    raise _SkipRun("malformed JSON: expected an object")
                line_log = CoercionLog()
                fields = _coerce_issue_line(raw, line_log)
                with recording_coercions(line_log):
                    issue = load(fields, Issue, source=where)
            except ContractError as exc:
                _skip(report, where, f"bad field: {exc.problems[0]}", strict)
                continue
            except _SkipRun as exc:
                _skip(report, where, str(exc), strict)
                continue
            report.coercions.counts.update(line_log.counts)  # only lines that were kept count
            if issue.issue_id in issues:
                report.coercions.add("issues.jsonl: duplicate id, last line wins")
            issues[issue.issue_id] = issue
    report.issues_read = len(issues)
    return issues


def read_universe(root: Path, universe_id: str | None = None) -> Universe:
    """The universe named ``universe_id`` (or the only / first one), with defaults if absent."""
    base = root / "universes"
    candidates = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    if universe_id is None:
        if not candidates:
            return Universe("default", UniverseDefaults(), ("serial_handoff", "speculate_vote"))
        universe_id = candidates[0]
    elif universe_id not in candidates:
        raise ArchiveError(
            f"{base}: no universe {universe_id!r}; found: {', '.join(candidates) or '(none)'}"
        )
    folder = base / universe_id
    defaults = UniverseDefaults()
    swarms: tuple[str, ...] = ("serial_handoff", "speculate_vote")
    universe_doc = _read_yaml(folder / "universe.yaml")
    if universe_doc is not None:
        section = universe_doc.get("defaults") or {}
        if not isinstance(section, Mapping):
            raise ArchiveError(f"{folder / 'universe.yaml'}: defaults: expected a mapping")
        try:
            defaults = load(
                {k: section.get(k) for k in ("swarm_id", "objective_id")},
                UniverseDefaults,
                source=str(folder / "universe.yaml"),
            )
        except ContractError as exc:
            raise ArchiveError(str(exc)) from exc
    swarms_doc = _read_yaml(folder / "swarms.yaml")
    if swarms_doc is not None:
        catalog = swarms_doc.get("swarms")
        if not isinstance(catalog, Mapping) or not catalog:
            raise ArchiveError(f"{folder / 'swarms.yaml'}: swarms: expected a non-empty mapping")
        swarms = tuple(sorted(str(k) for k in catalog))
    return Universe(universe_id, defaults, swarms)


def _read_yaml(path: Path) -> Mapping[str, Any] | None:
    if not path.exists():
        return None
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ArchiveError(f"{path}: not valid YAML: {exc}") from exc
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise ArchiveError(f"{path}: expected a mapping at the top")
    return doc


def _skip(report: ReadReport, path: str, reason: str, strict: bool) -> None:
    if strict:
        raise ArchiveError(f"{path}: {reason}")
    report.skipped.append(Skip(path, reason))


def read_root(
    root: Path | str,
    *,
    strict: bool = False,
    universe_id: str | None = None,
    progress: Progress | None = None,
) -> KernelRoot:
    """Read a kernel repo root. Runs come back sorted by ``(started_ms, run_id)``."""
    root = Path(root)
    archives = root / ".cyntra" / "archives"
    if not archives.is_dir():
        raise ArchiveError(f"{root}: no .cyntra/archives folder (is this a kernel repo root?)")
    report = ReadReport(str(root))
    universe = read_universe(root, universe_id)
    issues = read_issues(root / ".beads" / "issues.jsonl", report, strict=strict)
    directories = sorted(p for p in archives.iterdir() if p.is_dir())
    runs: list[ArchivedRun] = []
    seen: dict[str, str] = {}
    for i, directory in enumerate(directories):
        try:
            run = read_run(directory)
        except _SkipRun as exc:
            _skip(report, str(directory), str(exc), strict)
            continue
        previous = seen.get(run.summary.run_id)
        if previous is not None:
            _skip(report, str(directory), f"duplicate run_id: also in {previous}", strict)
            continue
        seen[run.summary.run_id] = str(directory)
        runs.append(run)
        if progress is not None and (i % 1000 == 0 or i == len(directories) - 1):
            progress(i + 1, len(directories))
    runs.sort(key=lambda r: (r.summary.started_ms, r.summary.run_id))
    report.runs_read = len(runs)
    return KernelRoot(tuple(runs), issues, universe, report)
