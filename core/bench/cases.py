"""Where a bench's issues come from: a kernel root, the embedded world, or a cases file.

A case is built exactly as the dataset builder builds a row's input (one path: the same history
retrieval, the same issue repairs), at the time the run was dispatched, so a policy trained on
archives and a policy trained on bench outcomes see inputs of one kind. The baseline is today's
rule as the config names it (``planner.model.fallback``), decided on that input.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from swarm_planner.core.action_space import JointAction
from swarm_planner.core.archives import read_root
from swarm_planner.core.bench.log import BenchError
from swarm_planner.core.bench.records import BenchCase, CaseLine
from swarm_planner.core.contracts import load
from swarm_planner.core.dataset import DatasetOptions, iter_rows
from swarm_planner.core.documents import iter_json_lines
from swarm_planner.core.errors import ContractError, InvalidActionError
from swarm_planner.core.progress import Progress
from swarm_planner.core.protocols import Fallback

CASES_FILE = "cases.jsonl"


def cases_from_root(
    root: Path | str,
    baseline: Fallback,
    *,
    limit: int | None = None,
    options: DatasetOptions | None = None,
    progress: Progress | None = None,
) -> list[BenchCase]:
    """One case per archived run, in time order (the first ``limit``)."""
    kernel = read_root(root, progress=progress)
    counters: dict[str, Counter[str]] = {"excluded": Counter(), "repairs": Counter()}
    cases: list[BenchCase] = []
    for run, planner_input, _ in iter_rows(kernel, options or DatasetOptions(), counters):
        if limit is not None and len(cases) >= limit:
            break
        cases.append(
            BenchCase(
                run.summary.run_id,
                planner_input,
                baseline.decide(planner_input),
                run.summary.started_ms,
            )
        )
    return cases


def read_cases(
    path: Path | str, baseline: Fallback, *, limit: int | None = None
) -> list[BenchCase]:
    """Cases from a JSON lines file of :class:`CaseLine` (every bad line reported at once)."""
    cases: list[BenchCase] = []
    problems: list[str] = []
    seen: set[str] = set()
    for line in iter_json_lines(path):
        where = f"{path}:{line.number}"
        if line.error is not None:
            problems.append(str(line.error))
            continue
        try:
            raw = load(line.value, CaseLine, source=where)
            planner_input = raw.planner_input
            if raw.baseline is None:
                action = baseline.decide(planner_input)
            else:
                action = JointAction.from_list(raw.baseline)
                planner_input.action_space.check(action, planner_input.job_type)
        except (ContractError, InvalidActionError, ValueError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        case_id = raw.case_id or planner_input.input_hash()[:16]
        if case_id in seen:
            problems.append(f"{where}: case_id {case_id!r} repeats an earlier line")
            continue
        seen.add(case_id)
        cases.append(BenchCase(case_id, planner_input, action, raw.started_ms or 0))
        if limit is not None and len(cases) >= limit:
            break
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise BenchError(f"{path}: {len(problems)} bad case line(s):\n  {shown}{more}")
    if not cases:
        raise BenchError(f"{path}: no cases")
    return cases
