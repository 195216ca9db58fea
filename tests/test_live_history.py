"""Decision-time history: the dataset builder's retrieval, kept up to date run by run."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from swarm_planner.core.archives import read_root
from swarm_planner.core.config import HistoryConfig, parse_config
from swarm_planner.core.contracts import Issue, dump
from swarm_planner.core.dataset import build_dataset, iter_dataset
from swarm_planner.core.history import SCORERS, HistoryIndex
from swarm_planner.kernel_integration.live_history import LiveHistory
from swarm_planner.kernel_integration.service import PlannerService


@pytest.fixture(scope="module")
def built(sim_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("live") / "dataset"
    build_dataset(sim_root, out)
    return out


def test_serving_builds_the_inputs_training_saw(sim_root: Path, built: Path) -> None:
    kernel = read_root(sim_root)
    live = LiveHistory.from_root(sim_root)
    runs = {r.summary.run_id: r for r in kernel.runs}
    rows = list(iter_dataset(built))
    assert len(rows) == len(kernel.runs)
    for row in rows:
        run = runs[row.run_id]
        issue = kernel.issues.get(row.planner_input.issue.issue_id) or row.planner_input.issue
        served = live.input_for(
            issue,
            job_type=row.planner_input.job_type,
            system_state=run.system_state,
            now_ms=row.started_ms,
        )
        assert dump(served) == dump(row.planner_input), row.run_id


def test_runs_added_one_by_one_answer_as_a_built_index(sim_root: Path) -> None:
    kernel = read_root(sim_root)
    summaries = [r.summary for r in kernel.runs]
    built = HistoryIndex(summaries)
    grown = HistoryIndex()
    for run in summaries:
        grown.add(run)
    scorer = SCORERS["signals"]
    for run in summaries[::7]:
        query = dict(
            job_type=run.job_type,
            before_ms=run.started_ms,
            n=8,
            scorer=scorer,
            tags=run.tags or (),
            issue_id=run.issue_id,
        )
        assert grown.similar(**query) == built.similar(**query)  # type: ignore[arg-type]
        assert grown.attempts(run.issue_id, run.started_ms) == built.attempts(
            run.issue_id, run.started_ms
        )


def test_a_run_that_lands_late_is_found_by_the_next_decision(sim_root: Path) -> None:
    kernel = read_root(sim_root)
    summaries = [r.summary for r in kernel.runs]
    live = LiveHistory()
    for run in summaries[:-1]:
        live.add(run)
    last = summaries[-1]
    late = attrs.evolve(
        last, run_id="late-run", started_ms=summaries[0].started_ms + 1, tags=("late-tag",)
    )
    live.add(late)  # started long ago, finished only now
    assert not live.index.in_order
    issue = Issue("NEW-1", tags=("late-tag",))
    served = live.input_for(issue, job_type=late.job_type, now_ms=last.started_ms + 10)
    ids = [r.run_id for r in served.history.last_n_similar_runs]
    assert "late-run" in ids
    earlier = live.input_for(issue, job_type=late.job_type, now_ms=late.started_ms)
    assert "late-run" not in [r.run_id for r in earlier.history.last_n_similar_runs]


def test_an_archive_that_lands_is_added_without_a_rescan(sim_root: Path, tmp_path: Path) -> None:
    import shutil

    kernel = read_root(sim_root)
    live = LiveHistory(HistoryConfig(n_similar=4))
    first, *rest = kernel.runs
    live.add_archive(first.directory)
    copy = tmp_path / "wc-landed"
    shutil.copytree(rest[0].directory, copy)
    summary = live.add_archive(copy)
    assert len(live) == 2 and live.index.runs[-1].run_id == summary.run_id


def test_decide_issue_retrieves_the_history_and_decides(sim_root: Path) -> None:
    kernel = read_root(sim_root)
    config = parse_config({"mode": "enforce", "model": {"type": "heuristic"}})
    live = LiveHistory.from_root(sim_root, config.history)
    service = PlannerService(config, history=live)
    last = kernel.runs[-1].summary
    issue = next(iter(kernel.issues.values()))
    decision = service.decide_issue(issue, job_type="code", now_ms=last.started_ms + 1)
    assert decision.planner_input is not None
    history = decision.planner_input.history.last_n_similar_runs
    assert len(history) == config.history.n_similar
    assert decision.planner_input.issue.dk_attempts == live.index.attempts(
        issue.issue_id, last.started_ms + 1
    )
    assert decision.reason == "model"
