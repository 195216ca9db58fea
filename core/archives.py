"""Read a kernel repo root into run summaries, issue metadata and the universe.

Layout read: ``.cyntra/archives/<workcell_id>/`` (``rollout.json`` when its schema_version is
``cyntra.rollout.v1``, otherwise ``proof.json`` with ``manifest.json``), ``.beads/issues.jsonl``
and ``universes/<id>/{universe,swarms}.yaml`` (or ``.cyntra/universes/<id>/``). What each file
holds is :mod:`swarm_planner.core.kernel_files`; every file is read by
:mod:`swarm_planner.core.documents`. docs/formats.md describes them all.

Why runs are repaired rather than skipped: archives come from many kernel versions, and the
runs that look odd (a crashed run's ``error`` status, a recorded input in another kernel's rule
form) are often the most informative ones. So a run is skipped only when it cannot yield a start
time and a label: no outcome at all (no ``proof.json`` and no v1 rollout), an outcome file that
cannot be read, or a run id already read. Everything else is read, each value that does not fit
is dropped or defaulted, and every such repair is counted by kind in the :class:`ReadReport`
with a few examples. ``strict=True`` turns the first skip into an :class:`ArchiveError`.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs

from swarm_planner.core.action_space import ActionSpace
from swarm_planner.core.contracts import (
    EXECUTED_PLAN_V1,
    ActionExecuted,
    ExecutedPlan,
    Gate,
    Issue,
    Outcome,
    PlannerInput,
    RunSummary,
    Runtime,
    Status,
    SystemState,
    UniverseDefaults,
    domain_of,
    load,
    repair_issue_fields,
)
from swarm_planner.core.documents import (
    DocumentError,
    iter_json_lines,
    read_json,
    read_yaml,
    short_repr,
)
from swarm_planner.core.errors import ContractError, PlannerError
from swarm_planner.core.jsonconv import RepairLog, recording_repairs, structure_repairing
from swarm_planner.core.kernel_files import (
    ROLLOUT_V1,
    IssueLine,
    Manifest,
    PlannerSection,
    Proof,
    Rollout,
    SwarmsFile,
    UniverseFile,
)
from swarm_planner.core.progress import Progress
from swarm_planner.core.recording import ms_from_rfc3339, rfc3339_from_ms

T = TypeVar("T")

PROOF_STATUSES = ("success", "partial", "failed", "timeout")

MAX_ITEMS = 64
"""Tags, fail codes and gates kept per run (and tags per issue): a run's summary travels in the
history of many later rows, so one archive with 100,000 fail codes must not make every later
row megabytes long. The rest are cut off and counted."""
MAX_TEXT = {"title": 1_000, "description": 20_000}
"""Characters kept of an issue's title and description (cut, counted)."""
DEFAULT_SWARMS: tuple[str, ...] = ("serial_handoff", "speculate_vote")


class ArchiveError(PlannerError, ValueError):
    """A problem in a kernel root, raised in strict mode (otherwise it is a :class:`Skip`)."""


class _SkipRun(Exception):
    """Internal: the run (or line) at hand is skipped; the message is ``kind: detail``."""


@attrs.frozen
class Skip:
    """One skipped run or line: where, and why."""

    path: str
    reason: str

    @property
    def kind(self) -> str:
        """The reason without its specifics, for counting (``malformed JSON``, ...)."""
        return self.reason.split(":", 1)[0]


MAX_LISTED_SKIPS = 1_000
"""Skips listed one by one per kind (all are counted): a root of a million bad lines must not
become a report of a million lines."""


@attrs.define
class ReadReport:
    """What was read, what was skipped and why, and what was repaired."""

    root: str
    runs_read: int = 0
    issues_read: int = 0
    skipped: list[Skip] = attrs.field(factory=list)
    """The skips listed one by one (the first :data:`MAX_LISTED_SKIPS` of each kind)."""
    skip_kinds: Counter[str] = attrs.field(factory=Counter)
    """Every skip, counted by kind."""
    repairs: RepairLog = attrs.field(factory=RepairLog)

    def skip(self, where: str, reason: str) -> None:
        entry = Skip(where, reason)
        self.skip_kinds[entry.kind] += 1
        if self.skip_kinds[entry.kind] <= MAX_LISTED_SKIPS:
            self.skipped.append(entry)

    @property
    def skipped_count(self) -> int:
        return sum(self.skip_kinds.values())

    def skip_counts(self) -> dict[str, int]:
        return dict(sorted(self.skip_kinds.items()))

    def to_json(self) -> dict[str, Any]:
        repairs = self.repairs.to_json()
        return {
            "root": self.root,
            "runs_read": self.runs_read,
            "issues_read": self.issues_read,
            "skipped_count": self.skipped_count,
            "skip_counts": self.skip_counts(),
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "skipped_not_listed": self.skipped_count - len(self.skipped),
            "repairs": repairs["counts"],
            "repair_examples": repairs["examples"],
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


# -- reading one document of a run ----------------------------------------------------------------


def _skip_reason(file: str, exc: DocumentError) -> str:
    """``kind: file: problem`` for a file that cannot be read (the kind is what is counted)."""
    kind = {"malformed": "malformed JSON", "missing": "unreadable file"}.get(exc.kind, exc.kind)
    kind = "unreadable file" if kind == "unreadable" else kind
    problem = exc.problem.removeprefix(f"{kind}: ")
    return f"{kind}: {file}: {problem}" if file else f"{kind}: {problem}"


def _document(
    directory: Path, file: str, cls: type[T], repairs: RepairLog, *, required: bool
) -> T | None:
    """A run's file as its record; None when it is absent or, unless ``required`` (then the run
    is skipped), when it cannot be read or is not an object (noted)."""
    path = directory / file
    try:
        raw = read_json(path)
        if not isinstance(raw, dict):
            raise DocumentError(
                str(path), f"expected an object, got {type(raw).__name__}", kind="malformed"
            )
    except DocumentError as exc:
        if exc.kind == "missing":
            return None
        if required:
            raise _SkipRun(_skip_reason(file, exc)) from exc
        repairs.add(f"{file} ignored: {exc.kind}", exc.problem)
        return None
    return structure_repairing(raw, cls, source=file, repairs=repairs)


# -- what the values mean -------------------------------------------------------------------------


def run_status(text: str | None, all_passed: bool, repairs: RepairLog) -> Status:
    """The outcome of a proof: ``timeout`` if it timed out; ``success`` if it succeeded (or
    partly) with every gate passed; anything else ``failed``, an unknown or missing status text
    included (a crashed run's ``error``), noted by its text."""
    if text is None:
        repairs.add("proof status missing -> failed")
        return "failed"
    folded = text.strip().lower()
    if folded != text:
        repairs.add("proof status in another case or padded", repr(text))
    if folded not in PROOF_STATUSES:
        repairs.add(f"unknown proof status {folded!r} -> failed")
        return "failed"
    if folded == "timeout":
        return "timeout"
    return "success" if folded in ("success", "partial") and all_passed else "failed"


def _start_ms(directory: Path, candidates: list[tuple[str, str | None]], repairs: RepairLog) -> int:
    """The first of ``candidates`` (label, RFC3339 text) that parses, else the folder's mtime."""
    for label, text in candidates:
        if text is None:
            continue
        try:
            ms = ms_from_rfc3339(text)
            rfc3339_from_ms(ms)  # a time the rows can be written with (years 1 to 9999)
            return ms
        except (ValueError, OverflowError, OSError):
            repairs.add(f"{label} is not RFC3339: next source used", short_repr(text))
    repairs.add("start time from the folder's mtime")
    return int(os.stat(directory).st_mtime * 1000)


def _dedupe(codes: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(codes))


def _bounded(values: tuple[T, ...], what: str, repairs: RepairLog) -> tuple[T, ...]:
    """At most :data:`MAX_ITEMS` of ``values``, the cut counted."""
    if len(values) <= MAX_ITEMS:
        return values
    repairs.add(f"{what} cut to {MAX_ITEMS}", f"{len(values)} given")
    return values[:MAX_ITEMS]


def _executed_plan(raw: Any, repairs: RepairLog) -> ExecutedPlan | None:
    """The recorded executed plan, repaired value by value; None (noted) when it names no swarm
    or is not an object, so that the legacy fields decide."""
    if not isinstance(raw, dict):
        repairs.add("executed_plan unreadable: legacy action", f"a {type(raw).__name__}")
        return None
    if "schema_version" not in raw:  # the field's bench writes its overrides without one
        repairs.add("executed_plan without schema_version")
        raw = {**raw, "schema_version": EXECUTED_PLAN_V1}
    try:
        return structure_repairing(raw, ExecutedPlan, source="executed_plan", repairs=repairs)
    except ContractError as exc:
        repairs.add("executed_plan unreadable: legacy action", "; ".join(exc.problems))
        return None


def _recorded_state(raw: Any, repairs: RepairLog) -> SystemState | None:
    """The system state of a recorded planner_input. The input is only read for this: when it
    does not validate, its ``system_state`` alone is tried, and the run keeps its label."""
    if raw is None:
        return None
    scratch = RepairLog(where=repairs.where)
    try:
        with recording_repairs(scratch):  # an input that fails counts no repairs of its own
            state = load(raw, PlannerInput, source="planner.planner_input").system_state
    except ContractError as exc:
        problems = exc.problems
    else:
        repairs.merge(scratch)
        return state
    for problem in problems:
        if ".validity_rules[" in problem or problem.startswith("action_space.validity_rules"):
            repairs.add("recorded validity rule not understood", problem)
    state_raw = raw.get("system_state") if isinstance(raw, dict) else None
    state = None
    if state_raw is not None:
        try:
            state = load(state_raw, SystemState, source="planner.planner_input.system_state")
        except ContractError:
            state = None
    kept = "system_state kept" if state is not None else "no system_state"
    repairs.add(f"recorded planner_input unreadable ({kept})", problems[0])
    return state


def _action(
    manifest: Manifest, section: PlannerSection | None, repairs: RepairLog
) -> tuple[ActionExecuted, str, ExecutedPlan | None]:
    plan = None
    if section is not None and section.executed_plan is not None:
        plan = _executed_plan(section.executed_plan, repairs)
    if plan is not None:
        return ActionExecuted(*plan.raw_action()), "executed_plan", plan
    if manifest.speculate_mode:
        parallelism = manifest.control.speculate_parallelism
        if parallelism is not None and parallelism < 1:
            repairs.add("control.speculate_parallelism below 1: no cap", repr(parallelism))
            parallelism = None
        return ActionExecuted("speculate_vote", parallelism), "legacy", None
    return ActionExecuted("serial_handoff", 1), "legacy", None


# -- one run --------------------------------------------------------------------------------------


def read_run(directory: Path, repairs: RepairLog | None = None) -> ArchivedRun:
    """Read one archive directory (repairs noted in ``repairs``); raises ``_SkipRun`` when it
    cannot yield a run."""
    repairs = repairs if repairs is not None else RepairLog()
    with recording_repairs(repairs):
        rollout = _document(directory, "rollout.json", Rollout, repairs, required=False)
        if rollout is not None and rollout.schema_version != ROLLOUT_V1:
            repairs.add("rollout.json not cyntra.rollout.v1: proof read instead")
            rollout = None
        manifest_or_none = _document(directory, "manifest.json", Manifest, repairs, required=False)
        if rollout is not None:
            summary, source = _from_rollout(directory, manifest_or_none, rollout, repairs)
            section = rollout.planner or (manifest_or_none.planner if manifest_or_none else None)
        else:
            proof = _document(directory, "proof.json", Proof, repairs, required=True)
            if proof is None:
                raise _SkipRun("missing proof: no proof.json and no cyntra.rollout.v1 rollout.json")
            if not os.path.lexists(directory / "manifest.json"):
                repairs.add("proof.json without manifest.json: job_type code, legacy action")
            summary, source = _from_proof(directory, manifest_or_none, proof, repairs)
            section = manifest_or_none.planner if manifest_or_none else None
        manifest = manifest_or_none or Manifest()
        action, action_source, plan = _action(manifest, section, repairs)
        state = _recorded_state(section.planner_input, repairs) if section is not None else None
    return ArchivedRun(
        attrs.evolve(summary, action_executed=action),
        str(directory),
        source,
        action_source,
        plan,
        state,
        section.timeout_seconds_override if section is not None else None,
    )


def _from_proof(
    directory: Path, manifest: Manifest | None, proof: Proof, repairs: RepairLog
) -> tuple[RunSummary, str]:
    manifest = manifest or Manifest()
    meta, verification = proof.metadata, proof.verification
    started = _start_ms(
        directory,
        [
            ("proof.json metadata.started_at", meta.started_at),
            ("proof.json metadata.completed_at", meta.completed_at),
        ],
        repairs,
    )
    codes = [code for gate in verification.gates for code in gate.fail_codes]
    codes.extend(verification.blocking_failures)
    job_type = manifest.job_type or "code"
    tags = _bounded(manifest.issue.tags, "manifest.json issue.tags", repairs)
    gates = _bounded(verification.gates, "proof.json verification.gates", repairs)
    summary = RunSummary(
        run_id=proof.workcell_id or manifest.workcell_id or file_name_text(directory.name, repairs),
        started_ms=started,
        job_type=job_type,
        domain=domain_of(job_type, tags),
        action_executed=ActionExecuted("serial_handoff"),  # replaced by the caller
        outcome=Outcome(
            run_status(proof.status, verification.all_passed, repairs),
            _bounded(_dedupe(codes), "proof.json fail codes", repairs),
            tuple(Gate(g.name or "", g.passed, g.score) for g in gates),
        ),
        runtime=Runtime(meta.duration_ms),
        tags=tags,
        issue_id=manifest.issue.id,
        cost_usd_est=meta.cost_usd,
        tokens_in=meta.tokens_used,
    )
    return summary, "proof"


def _from_rollout(
    directory: Path, manifest: Manifest | None, rollout: Rollout, repairs: RepairLog
) -> tuple[RunSummary, str]:
    manifest = manifest or Manifest()
    started = _start_ms(
        directory, [("rollout.json metadata.started_at", rollout.metadata.started_at)], repairs
    )
    verification = rollout.outcomes.verification
    job_type = rollout.job_type or manifest.job_type or "code"
    tags = _bounded(manifest.issue.tags, "manifest.json issue.tags", repairs)
    summary = RunSummary(
        run_id=rollout.workcell_id
        or manifest.workcell_id
        or file_name_text(directory.name, repairs),
        started_ms=started,
        job_type=job_type,
        domain=domain_of(job_type, tags),
        action_executed=ActionExecuted("serial_handoff"),
        outcome=Outcome(
            "success" if verification.all_passed else "failed",
            _bounded(
                _dedupe(list(verification.blocking_failures)), "rollout.json fail codes", repairs
            ),
        ),
        runtime=Runtime(rollout.scores.duration_ms),
        tags=tags,
        issue_id=rollout.issue_id or manifest.issue.id,
        cost_usd_est=rollout.scores.cost_usd,
    )
    return summary, "rollout"


# -- issues and universe --------------------------------------------------------------------------


def read_issues(path: Path, report: ReadReport, *, strict: bool = False) -> dict[str, Issue]:
    """``issues.jsonl`` → issue id → Issue. A line is skipped (with its number) only when it
    cannot be read or names no id; odd values are repaired and counted (the later of two lines
    with one id wins)."""
    issues: dict[str, Issue] = {}
    if path.parent.exists() and not path.parent.is_dir():
        _skip(report, str(path.parent), "not a folder: .beads is a file", strict)
        return issues
    if not os.path.lexists(path):
        return issues
    try:
        lines = list(_issue_lines(path, report, strict=strict))
    except DocumentError as exc:  # the file itself (not a regular file, a loop)
        _skip(report, str(path), _skip_reason(path.name, exc), strict)
        return issues
    for issue in lines:
        if issue.issue_id in issues:
            report.repairs.add("issues.jsonl: duplicate id, last line wins", issue.issue_id)
        issues[issue.issue_id] = issue
    report.issues_read = len(issues)
    return issues


def _issue_lines(path: Path, report: ReadReport, *, strict: bool) -> Iterator[Issue]:
    for line in iter_json_lines(path):
        where = f"{path}:{line.number}"
        log = RepairLog(where=f"issues.jsonl:{line.number}")
        try:
            if line.error is not None:
                raise _SkipRun(_skip_reason("", line.error))
            if not isinstance(line.value, dict):
                raise _SkipRun(
                    f"malformed JSON: expected an object, got {type(line.value).__name__}"
                )
            with recording_repairs(log):
                raw = structure_repairing(line.value, IssueLine, source="issues.jsonl", repairs=log)
                if raw.id is None:
                    raise _SkipRun(
                        f"bad field: id: expected a string, got {line.value.get('id')!r}"
                    )
                fields = repair_issue_fields(
                    _bounded_issue(raw.issue_fields(), log), unknown_too=True
                )
                issue = structure_repairing(fields, Issue, source="issue", repairs=log)
        except _SkipRun as exc:
            _skip(report, where, str(exc), strict)
            continue
        except ContractError as exc:
            _skip(report, where, f"bad field: {exc.problems[0]}", strict)
            continue
        report.repairs.merge(log)  # only lines that were kept count
        yield issue


def _bounded_issue(fields: dict[str, Any], repairs: RepairLog) -> dict[str, Any]:
    """An issue line's tags and texts within bounds (every row of the issue carries them)."""
    fields["tags"] = list(_bounded(tuple(fields["tags"]), "issues.jsonl tags", repairs))
    for key, limit in MAX_TEXT.items():
        text = fields.get(key)
        if isinstance(text, str) and len(text) > limit:
            repairs.add(f"issues.jsonl {key} cut to {limit:,} characters", f"{len(text):,} given")
            fields[key] = text[:limit]
    return fields


def _universes_folder(root: Path) -> Path:
    for base in (root / "universes", root / ".cyntra" / "universes"):
        if base.is_dir():
            return base
    return root / "universes"


def read_universe(
    root: Path, universe_id: str | None = None, report: ReadReport | None = None
) -> Universe:
    """The universe named ``universe_id`` (or the first), with defaults where it says nothing."""
    base = _universes_folder(root)
    candidates = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    if universe_id is None:
        if not candidates:
            return Universe("default", UniverseDefaults(), DEFAULT_SWARMS)
        universe_id = candidates[0]
    elif universe_id not in candidates:
        raise ArchiveError(
            f"{base}: no universe {universe_id!r}; found: {', '.join(candidates) or '(none)'}"
        )
    folder = base / universe_id
    repairs = report.repairs if report is not None else RepairLog()
    universe_id = file_name_text(universe_id, repairs)
    universe_doc = _yaml_record(folder / "universe.yaml", UniverseFile, repairs)
    swarms_doc = _yaml_record(folder / "swarms.yaml", SwarmsFile, repairs)
    defaults = UniverseDefaults()
    if universe_doc is not None:
        defaults = UniverseDefaults(
            universe_doc.defaults.swarm_id, universe_doc.defaults.objective_id
        )
    swarms = DEFAULT_SWARMS
    if swarms_doc is not None:
        if not swarms_doc.swarms:
            raise ArchiveError(f"{folder / 'swarms.yaml'}: swarms: expected a non-empty mapping")
        swarms = tuple(sorted(swarms_doc.swarms))
        try:
            ActionSpace(swarm_ids=swarms)  # the space the dataset will use: checked here
        except (ValueError, TypeError) as exc:
            raise ArchiveError(f"{folder / 'swarms.yaml'}: swarms: {exc}") from exc
    return Universe(universe_id, defaults, swarms)


def file_name_text(name: str, repairs: RepairLog) -> str:
    """A file name as text: a name that is not UTF-8 (its bytes survive as lone surrogates)
    gets U+FFFD in their place, noted, so that it can be written as a run or universe id."""
    if name.isascii() or not any("\udc80" <= ch <= "\udcff" for ch in name):
        return name
    repairs.add("file name not UTF-8: undecodable bytes replaced", ascii(name))
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _yaml_record(path: Path, cls: type[T], repairs: RepairLog) -> T | None:
    if not os.path.lexists(path):  # a symlink loop is read (and refused), not absent
        return None
    try:
        doc = read_yaml(path)
    except DocumentError as exc:
        raise ArchiveError(str(exc)) from exc
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise ArchiveError(f"{path}: expected a mapping at the top, got {type(doc).__name__}")
    try:
        return structure_repairing(doc, cls, source=path.name, repairs=repairs)
    except ContractError as exc:
        raise ArchiveError(str(exc)) from exc


def _skip(report: ReadReport, path: str, reason: str, strict: bool) -> None:
    if strict:
        raise ArchiveError(f"{path}: {reason}")
    report.skip(path, reason)


def _not_a_folder(path: Path) -> str | None:
    """Why an entry of the archives folder is not a workcell folder (None when it is one)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop"
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISDIR(mode):
        return None
    return "a regular file" if stat.S_ISREG(mode) else "not a folder"


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
    universe = read_universe(root, universe_id, report)
    issues = read_issues(root / ".beads" / "issues.jsonl", report, strict=strict)
    entries = sorted(archives.iterdir())
    runs: list[ArchivedRun] = []
    seen: dict[str, str] = {}
    for i, directory in enumerate(entries):
        if progress is not None and (i % 1000 == 0 or i == len(entries) - 1):
            progress(i + 1, len(entries))
        why = _not_a_folder(directory)
        if why is not None:
            _skip(report, str(directory), f"not a workcell folder: {why}", strict)
            continue
        repairs = RepairLog(where=directory.name)
        try:
            run = read_run(directory, repairs)
        except _SkipRun as exc:
            _skip(report, str(directory), str(exc), strict)
            continue
        previous = seen.get(run.summary.run_id)
        if previous is not None:
            _skip(report, str(directory), f"duplicate run_id: also in {previous}", strict)
            continue
        seen[run.summary.run_id] = str(directory)
        report.repairs.merge(repairs)
        runs.append(run)
    runs.sort(key=lambda r: (r.summary.started_ms, r.summary.run_id))
    report.runs_read = len(runs)
    return KernelRoot(tuple(runs), issues, universe, report)
