"""A bench's output files, in our shape and the field's, and reading any bench back.

Written at the end of every run (and so after a resume): ``results/best_of_k.json`` and
``bench_report.json`` in the shapes the field's ``best-of-k`` command writes (so its tools read
our benches), ``summary.json`` (what ran, skipped, failed and spent), and, for every winner, an
``archives/<workcell_id>/manifest.json`` holding ``planner.{planner_input, planner_action,
executed_plan}`` as the field's outcome-dataset builder expects.

:func:`read_bench` reads our directories and the field's (a ``run_*`` folder, or the base folder
holding them: the newest is read) into one record per issue, counting every repair.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import attrs

from swarm_planner.core.action_space import JointAction
from swarm_planner.core.archives import run_status
from swarm_planner.core.bench.cases import CASES_FILE
from swarm_planner.core.bench.log import BenchError
from swarm_planner.core.bench.records import BenchSettings, CaseLine, CaseResult
from swarm_planner.core.contracts import (
    ManifestPlannerRecord,
    PlannerInput,
    dump,
    load,
)
from swarm_planner.core.documents import (
    DocumentError,
    ReadLimits,
    iter_json_lines,
    read_json,
    read_json_object,
)
from swarm_planner.core.errors import ContractError
from swarm_planner.core.jsonconv import RepairLog
from swarm_planner.core.recording import (
    executed_plan_from_action,
    ms_from_rfc3339,
    now_rfc3339,
    planner_action_for,
    write_json_atomic,
)

BEST_OF_K_REPORT_V1 = "cyntra.planner_best_of_k_bench.v1"
RESULTS_FILE = Path("results") / "best_of_k.json"
REPORT_FILE = "bench_report.json"
SUMMARY_FILE = "summary.json"
RESULTS_MAX_BYTES = 1 << 30
"""The largest ``best_of_k.json`` read (a quarter of a million issues at K=4)."""


def workcell_id(case_id: str, slot: int) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", case_id)[:80]
    return f"bench-{safe}-{slot}"


def _candidate_json(case_id: str, line: Any) -> dict[str, Any]:
    return {
        "action": line.action,
        "verified": line.verified,
        "status": line.status,
        "duration_ms": line.duration_ms,
        "cost_usd": line.cost_usd,
        "workcell_id": workcell_id(case_id, line.slot),
        "details": {
            "slot": line.slot,
            "candidate_minutes": line.candidate_minutes,
            "minutes_estimated": line.minutes_estimated,
            "fail_codes": list(line.fail_codes),
            "gates": [{"name": g.name, "passed": g.passed} for g in line.gates],
            "error": line.error,
            "inclusion": line.inclusion,
        },
    }


def write_outputs(
    out: Path, results: list[CaseResult], settings: BenchSettings, summary: Any
) -> None:
    config_hash = settings.config_hash()
    records: list[dict[str, Any]] = []
    for result in results:
        case = result.case
        issue = case.planner_input.issue
        base = {
            "bench_config_hash": config_hash,
            "case_id": case.case_id,
            "issue_id": issue.issue_id,
            "title": issue.title,
            "job_type": case.planner_input.job_type,
        }
        ran = result.ran
        if not ran:
            reasons = sorted({line.skipped or "" for line in result.lines})
            records.append({**base, "skipped": True, "skip_reason": "; ".join(reasons)})
            continue
        candidates = [_candidate_json(case.case_id, line) for line in ran]
        winner = None
        if result.winner is not None:
            winner = next(c for c in candidates if c["details"]["slot"] == result.winner)
            _write_winner_archive(out, case, result.lines[result.winner].joint_action, winner)
        record = {**base, "candidates": candidates, "winner": winner}
        not_run = [
            {"action": line.action, "reason": line.skipped} for line in result.lines if line.skipped
        ]
        if not_run:
            record["not_run"] = not_run
        records.append(record)
    (out / "results").mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / RESULTS_FILE, records)
    write_json_atomic(
        out / REPORT_FILE,
        {
            "schema_version": BEST_OF_K_REPORT_V1,
            "generated_at": now_rfc3339(),
            "bench_dir": str(out),
            "bench_config_hash": config_hash,
            "k": settings.k,
            "seed": settings.sampler.options.get("seed", 0),
            "sampling": {"sampler": settings.sampler.name, **settings.sampler.options},
            "case_count": len(records),
            "results_path": str(out / RESULTS_FILE),
        },
    )
    write_json_atomic(out / SUMMARY_FILE, {**attrs.asdict(summary), "pass_rate": summary.pass_rate})


def _write_winner_archive(
    out: Path, case: Any, action: JointAction, winner: dict[str, Any]
) -> None:
    folder = out / "archives" / winner["workcell_id"]
    folder.mkdir(parents=True, exist_ok=True)
    record = ManifestPlannerRecord(
        planner_input=case.planner_input,
        planner_action=planner_action_for(
            action,
            created_at=case.planner_input.created_at,
            reason="best_of_k_winner",
            label_source="best_of_k",
        ),
        executed_plan=executed_plan_from_action(action),
    )
    write_json_atomic(
        folder / "manifest.json",
        {"workcell_id": winner["workcell_id"], "issue_id": case.issue_id, "planner": dump(record)},
    )


# -- reading a bench back ----------------------------------------------------------------------


@attrs.frozen
class BenchedCandidate:
    action: JointAction
    verified: bool
    status: str
    duration_ms: int | None
    cost_usd: float | None
    candidate_minutes: float | None
    fail_codes: tuple[str, ...]
    error: str | None
    inclusion: float | None


@attrs.frozen
class BenchedCase:
    """One issue of a bench as read back: its input, its candidates, the winner's index."""

    case_id: str
    started_ms: int
    planner_input: PlannerInput
    candidates: tuple[BenchedCandidate, ...]
    winner: int | None
    inclusion: dict[str, float] | None = None
    """The sampler's inclusion probability of every valid action (ours, when logged)."""


@attrs.frozen
class BenchRead:
    folder: str
    source: str
    """``swarm_planner`` or ``field``."""
    config_hash: str | None
    cases: tuple[BenchedCase, ...]
    skipped: dict[str, int]
    repairs: RepairLog


def resolve_bench_dir(path: Path) -> Path:
    """A bench folder (with ``bench_report.json`` or our ``cases.jsonl``), or the newest
    ``run_*`` folder inside ``path``."""
    if (path / REPORT_FILE).is_file() or (path / CASES_FILE).is_file():
        return path
    if path.is_dir():
        runs = sorted(p for p in path.iterdir() if p.is_dir() and p.name.startswith("run_"))
        if runs and (runs[-1] / REPORT_FILE).is_file():
            return runs[-1]
    raise BenchError(
        f"{path}: not a bench directory (no {REPORT_FILE} or {CASES_FILE}, and no run_* folder "
        "with one)"
    )


def read_bench(path: Path | str) -> BenchRead:
    folder = resolve_bench_dir(Path(path))
    results_path = folder / RESULTS_FILE
    # A bench's results grow with its issues (about 4 kB per issue at K=4): the one large
    # document we read whole, so its limit is a bench's, not a manifest's.
    env = ReadLimits.from_env()
    limits = attrs.evolve(env, max_bytes=max(env.max_bytes, RESULTS_MAX_BYTES))
    try:
        records = read_json(results_path, limits=limits)
    except DocumentError as exc:
        raise BenchError(f"{results_path}: {exc}") from None
    if not isinstance(records, list):
        raise BenchError(f"{results_path}: expected a list of per-issue records")
    report: dict[str, Any] = {}
    if (folder / REPORT_FILE).is_file():
        report = read_json_object(folder / REPORT_FILE)
    ours = (folder / CASES_FILE).is_file()
    inputs = _our_inputs(folder) if ours else {}
    repairs = RepairLog()
    skipped: dict[str, int] = {}
    cases: list[BenchedCase] = []

    def skip(kind: str) -> None:
        skipped[kind] = skipped.get(kind, 0) + 1

    for number, record in enumerate(records):
        where = f"{results_path}[{number}]"
        if not isinstance(record, dict):
            skip("record is not an object")
            continue
        if record.get("skipped") is True:
            skip(f"skipped by the bench: {record.get('skip_reason')}")
            continue
        raw_candidates = record.get("candidates")
        if not isinstance(raw_candidates, list) or not raw_candidates:
            skip("no candidates")
            continue
        candidates = []
        for c, raw in enumerate(raw_candidates):
            candidate = _candidate(raw, f"{where}.candidates[{c}]", repairs)
            if candidate is None:
                repairs.add("candidate unreadable (dropped)", f"{where}.candidates[{c}]")
                continue
            candidates.append(candidate)
        if not candidates:
            skip("no readable candidate")
            continue
        case_id = str(record.get("case_id") or "")
        inclusion = None
        if ours:
            entry = inputs.get(case_id)
            planner_input, started_ms, inclusion = entry if entry else (None, 0, None)
        else:
            planner_input, started_ms, case_id = _field_input(
                folder, record, raw_candidates, repairs
            )
        if planner_input is None:
            skip("no planner_input for the issue")
            continue
        winner = _winner_index(record.get("winner"), raw_candidates, candidates)
        cases.append(
            BenchedCase(case_id, started_ms, planner_input, tuple(candidates), winner, inclusion)
        )
    return BenchRead(
        str(folder),
        "swarm_planner" if ours else "field",
        report.get("bench_config_hash")
        if isinstance(report.get("bench_config_hash"), str)
        else None,
        tuple(cases),
        skipped,
        repairs,
    )


def _our_inputs(folder: Path) -> dict[str, tuple[PlannerInput, int, dict[str, float] | None]]:
    out: dict[str, tuple[PlannerInput, int, dict[str, float] | None]] = {}
    for line in iter_json_lines(folder / CASES_FILE):
        where = f"{folder / CASES_FILE}:{line.number}"
        if line.error is not None:
            raise BenchError(str(line.error))
        try:
            case = load(line.value, CaseLine, source=where)
        except ContractError as exc:
            raise BenchError(str(exc)) from None
        out[case.case_id or case.planner_input.input_hash()[:16]] = (
            case.planner_input,
            case.started_ms or 0,
            case.inclusion,
        )
    return out


def _number(value: Any, *, integer: bool) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return int(value) if integer else float(value)


def _candidate(raw: Any, where: str, repairs: RepairLog) -> BenchedCandidate | None:
    if not isinstance(raw, dict):
        return None
    try:
        action = JointAction.from_list(raw.get("action"))
    except ValueError:
        return None
    verified = raw.get("verified") is True
    text = raw.get("status") if isinstance(raw.get("status"), str) else None
    status = run_status(text, verified, repairs)
    if verified and status != "success":
        repairs.add("verified candidate with a failed status -> verified", where)
        status = "success"
    found = raw.get("details")
    details: dict[str, Any] = found if isinstance(found, dict) else {}
    duration = _number(raw.get("duration_ms"), integer=True)
    cost = _number(raw.get("cost_usd"), integer=False)
    if duration is None:
        repairs.add("candidate duration_ms missing or invalid (unknown)")
    if cost is None:
        repairs.add("candidate cost_usd missing or invalid (unknown)")
    codes = details.get("fail_codes")
    return BenchedCandidate(
        action=action,
        verified=verified,
        status=status,
        duration_ms=duration,
        cost_usd=cost,
        candidate_minutes=_number(details.get("candidate_minutes"), integer=False),
        fail_codes=tuple(c for c in codes if isinstance(c, str)) if isinstance(codes, list) else (),
        error=details.get("error") if isinstance(details.get("error"), str) else None,
        inclusion=_number(details.get("inclusion"), integer=False),
    )


def _field_input(
    folder: Path, record: dict[str, Any], raw_candidates: list[Any], repairs: RepairLog
) -> tuple[PlannerInput | None, int, str]:
    """The field keeps each candidate's input in its archive's manifest: the winner's first,
    then any candidate's."""
    winner = record.get("winner") if isinstance(record.get("winner"), dict) else None
    order = ([winner] if winner else []) + [c for c in raw_candidates if isinstance(c, dict)]
    for candidate in order:
        wc = candidate.get("workcell_id")
        if not isinstance(wc, str) or not wc or "/" in wc or wc.startswith("."):
            continue
        manifest_path = folder / "archives" / wc / "manifest.json"
        if not manifest_path.is_file():
            continue
        try:
            planner = read_json_object(manifest_path).get("planner")
            planner_input = load(
                planner.get("planner_input") if isinstance(planner, dict) else None,
                PlannerInput,
                source=f"{manifest_path}: planner.planner_input",
            )
        except (DocumentError, ContractError) as exc:
            repairs.add("candidate manifest unreadable", str(exc).splitlines()[0])
            continue
        try:
            started = ms_from_rfc3339(planner_input.created_at)
        except ValueError:
            started = 0
        return planner_input, started, wc
    return None, 0, ""


def _winner_index(
    winner: Any, raw_candidates: list[Any], candidates: list[BenchedCandidate]
) -> int | None:
    if not isinstance(winner, dict):
        return None
    try:
        action = JointAction.from_list(winner.get("action"))
    except ValueError:
        return None
    for i, c in enumerate(candidates):
        if c.action == action:
            return i
    return None
