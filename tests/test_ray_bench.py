"""The bench on Ray: the local backend's outputs, resumable across backends and driver kills,
lost workers re-run with every candidate logged exactly once, spend budgets that turn away
waiting tasks and kill running ones when configured.

Runs on a local Ray with 2 CPUs (the tox env ``ray``; skipped where Ray is not installed, unless
``SWARM_PLANNER_EXPECT_RAY=1`` says it must be there)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

if os.environ.get("SWARM_PLANNER_EXPECT_RAY") == "1":
    import ray
else:
    ray = pytest.importorskip("ray")

from test_bench import _log_keys, _write_cases, bench_command, kill_mid_run

from swarm_planner.core.bench.backends import make_backend
from swarm_planner.core.bench.log import ATTEMPTS_FILE, LOG_FILE, BenchError, read_attempts
from swarm_planner.core.bench.ray_backend import KILLED
from swarm_planner.core.bench.runner import run_bench
from swarm_planner.core.bench.setup import (
    BenchRequest,
    bench_backend,
    prepare_bench,
)
from swarm_planner.core.config import PlannerConfig, RayConfig
from swarm_planner.core.plugins import PluginHost
from swarm_planner.core.protocols import CandidateOutcome

COMMANDS = Path(__file__).parent / "bench_commands"


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray with 2 CPUs for the module; its address, for drivers in other processes."""
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
    )
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


def _bench(
    host: PluginHost, out: Path, backend: str = "local", **changes: Any
) -> tuple[Any, list[Any]]:
    config = changes.pop("config", PlannerConfig())
    request = BenchRequest(out=out, backend=backend, **changes)
    cases, settings, plugins, names, jobs = prepare_bench(request, config, host)
    return run_bench(
        out,
        cases,
        settings,
        plugins,
        jobs=jobs,
        names=names,
        backend=bench_backend(request, config),
    )


def _sorted_log(out: Path) -> list[str]:
    return sorted((out / LOG_FILE).read_text().splitlines())


def _command(name: str, **env: str) -> dict[str, Any]:
    return {"command": [sys.executable, str(COMMANDS / f"{name}.py")], "env": env}


def _command_bench(
    host: PluginHost, tmp_path: Path, cases: int, k: int, options: dict[str, Any], **changes: Any
) -> tuple[Any, list[Any]]:
    """A Ray bench of ``cases`` written cases × ``k`` with the command executor."""
    issues = tmp_path / "cases.jsonl"
    _write_cases(issues, cases)
    return _bench(
        host,
        tmp_path / "b",
        backend="ray",
        issues_file=issues,
        k=k,
        executor="command",
        options={"executor": options},
        **changes,
    )


def test_the_ray_backend_gives_the_local_backends_outputs(
    cluster: str, host: PluginHost, tmp_path: Path
) -> None:
    world = {"world": "sim", "issues": 40, "k": 3}
    local, _ = _bench(host, tmp_path / "local", **world)
    on_ray, _ = _bench(host, tmp_path / "ray", backend="ray", **world)
    assert (local.backend, on_ray.backend) == ("local", "ray")
    assert on_ray.ran == local.ran == 120
    assert _sorted_log(tmp_path / "ray") == _sorted_log(tmp_path / "local")
    for name in ("results/best_of_k.json", "cases.jsonl", "bench_config.json"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    assert not (tmp_path / "ray" / ATTEMPTS_FILE).exists()


def test_a_bench_started_locally_resumes_on_ray_with_identical_outputs(
    cluster: str, host: PluginHost, tmp_path: Path
) -> None:
    world = {"world": "sim", "issues": 40, "k": 3}
    _bench(host, tmp_path / "whole", **world)
    shutil.copytree(tmp_path / "whole", tmp_path / "half")
    log = tmp_path / "half" / LOG_FILE
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:50]))
    shutil.rmtree(tmp_path / "half" / "results")
    summary, _ = _bench(host, tmp_path / "half", backend="ray", **world)
    assert (summary.resumed, summary.ran) == (50, 120)
    assert _sorted_log(tmp_path / "half") == _sorted_log(tmp_path / "whole")
    whole = (tmp_path / "whole" / "results/best_of_k.json").read_bytes()
    assert (tmp_path / "half" / "results/best_of_k.json").read_bytes() == whole


def test_a_worker_killed_mid_candidate_is_run_again_and_logged_once(
    cluster: str, host: PluginHost, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    killers = ["I-1", "I-4", "I-7"]
    options = _command("kill_worker", BENCH_KILL_ISSUES=",".join(killers), BENCH_MARKS=str(marks))
    summary, results = _command_bench(host, tmp_path, 12, 2, options)
    keys = _log_keys(tmp_path / "b")
    assert len(keys) == len(set(keys)) == 24
    lost = read_attempts(tmp_path / "b" / ATTEMPTS_FILE)
    # every candidate of a killer issue lost its worker once, then ran to its outcome
    assert len(lost) == len(killers) * 2 == summary.lost_attempts == len(list(marks.iterdir()))
    assert {(a.attempt, a.error.split(":")[0]) for a in lost} == {(1, "WorkerCrashedError")}
    by_case = {r.case.planner_input.issue.issue_id: r for r in results}
    assert {by_case[i].case.case_id for i in killers} == {a.case_id for a in lost}
    assert all(line.error is None for r in results for line in r.lines)


def test_a_candidate_lost_on_every_attempt_fails_with_why_after_the_bounded_retries(
    cluster: str, host: PluginHost, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    options = _command(
        "kill_worker", BENCH_KILL_ISSUES="I-0", BENCH_MARKS=str(marks), BENCH_KILL_ALWAYS="1"
    )
    config = PlannerConfig()
    config = attrs.evolve(config, bench=attrs.evolve(config.bench, ray=RayConfig(retries=1)))
    _, results = _command_bench(host, tmp_path, 2, 1, options, config=config)
    doomed = next(r for r in results if r.case.planner_input.issue.issue_id == "I-0")
    (line,) = doomed.lines
    assert line.status == "failed" and not line.verified
    assert line.error is not None and "on all 2 attempts" in line.error
    assert len(read_attempts(tmp_path / "b" / ATTEMPTS_FILE)) == 2


def test_a_killed_driver_resumes_on_ray_without_rerunning_finished_candidates(
    cluster: str, tmp_path: Path
) -> None:
    command, out = bench_command(tmp_path, "0.05", "--backend", "ray", "--address", cluster)
    done_before = kill_mid_run(command, out, dict(os.environ), within=120)
    assert 20 <= done_before < 90, "the kill should land mid-run"
    before = _log_keys(out)
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    keys = _log_keys(out)
    assert len(keys) == len(set(keys)) == 90
    assert keys[: len(before)] == before  # finished candidates kept, not run again
    assert f"({done_before} already in the log)" in rerun.stdout


def _spend_bench(
    host: PluginHost, tmp_path: Path, on_budget: str, jobs: int, **env: str
) -> tuple[Any, list[Any]]:
    return _command_bench(
        host,
        tmp_path,
        12,
        1,
        _command("echo_outcome", **env),
        budget_minutes=4.0 if on_budget == "finish" else 1.0,
        budget_mode="spend",
        on_budget=on_budget,
        jobs=jobs,
    )


def test_a_spent_budget_turns_away_tasks_waiting_for_a_worker_and_lets_running_ones_finish(
    cluster: str, host: PluginHost, tmp_path: Path
) -> None:
    # 6 in flight on 2 CPUs: 4 wait for a worker; the budget (4 cand-min) is reached by the
    # second or third candidate to finish
    summary, results = _spend_bench(host, tmp_path, "finish", 6, BENCH_SLEEP="0.4")
    lines = [line for r in results for line in r.lines]
    waited = [x for x in lines if x.skipped and "while it waited for a worker" in x.skipped]
    later = [x for x in lines if x.skipped and "spent before it started" in x.skipped]
    ran = [x for x in lines if x.skipped is None]
    assert waited, "tasks queued in Ray when the budget was reached are turned away"
    assert later, "issues that had not been submitted are not started"
    assert all(x.error is None for x in ran), "running candidates finish"
    # a serial candidate spends 1.5, a speculate×2 one 3.0: two or three reach the budget; the
    # one running then finishes, and a task starting while the gate is being closed may too
    assert 2 <= len(ran) <= 6 and summary.skipped == {"bench budget": len(lines) - len(ran)}


def test_on_budget_kill_stops_running_candidates_and_logs_them_as_killed(
    cluster: str, host: PluginHost, tmp_path: Path
) -> None:
    # two issues in flight: I-0 answers at once and its 1.5 cand-min reach the budget while
    # I-1 (30 s) runs; I-1 is killed, the rest never start
    summary, results = _spend_bench(
        host,
        tmp_path,
        "kill",
        2,
        BENCH_SLEEP="0.0",
        BENCH_SLOW_ISSUES=",".join(f"I-{i}" for i in range(1, 12)),
        BENCH_SLOW_SLEEP="30.0417",
    )
    lines = {r.case.planner_input.issue.issue_id: r.lines[0] for r in results}
    killed = [x for x in lines.values() if x.error == KILLED]
    assert lines["I-0"].error is None and lines["I-0"].skipped is None
    assert killed == [lines["I-1"]], "the candidate running when the budget was reached"
    assert all(x.status == "failed" and x.minutes_estimated for x in killed)
    assert summary.seconds < 25, "nothing waited for the 30 s candidates"
    time.sleep(0.5)
    assert not _processes_with_env("BENCH_SLOW_SLEEP=30.0417"), "the killed agent is gone"


def _processes_with_env(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_the_budget_is_reached_once_however_many_threads_settle_at_once(
    cluster: str, host: PluginHost, tmp_path: Path
) -> None:
    calls: list[bool] = []
    backend = make_backend("ray", RayConfig())
    original = backend.budget_reached

    def counting(kill: bool) -> None:
        calls.append(kill)
        original(kill)

    backend.budget_reached = counting  # type: ignore[method-assign]
    cases = tmp_path / "cases.jsonl"
    _write_cases(cases, 12)
    request = BenchRequest(
        out=tmp_path / "b",
        issues_file=cases,
        k=1,
        executor="command",
        options={"executor": _command("echo_outcome")},
        budget_minutes=2.0,
        budget_mode="spend",
        jobs=6,
    )
    kases, settings, plugins, names, jobs = prepare_bench(request, PlannerConfig(), host)
    run_bench(tmp_path / "b", kases, settings, plugins, jobs=jobs, names=names, backend=backend)
    assert calls == [False]


class _Unpicklable:
    def __init__(self) -> None:
        self.lock = threading.Lock()

    def run(self, planner_input: Any, action: Any) -> CandidateOutcome:
        raise AssertionError("never run")


def test_an_executor_that_cannot_be_sent_to_workers_is_refused_before_anything_runs(
    cluster: str, host: PluginHost, tmp_path: Path
) -> None:
    import attrs

    request = BenchRequest(out=tmp_path / "b", world="sim", issues=5, k=2)
    cases, settings, plugins, names, _ = prepare_bench(request, PlannerConfig(), host)
    plugins = attrs.evolve(plugins, executor=_Unpicklable())
    with pytest.raises(BenchError, match=r"cannot be sent to Ray workers.*picklable"):
        run_bench(
            tmp_path / "b",
            cases,
            settings,
            plugins,
            names={**names, "executor": "mine"},
            backend=make_backend("ray"),
        )
    assert (tmp_path / "b" / LOG_FILE).read_text() == ""


def test_a_resource_the_cluster_does_not_have_is_refused_naming_it(
    cluster: str, host: PluginHost, tmp_path: Path
) -> None:
    with pytest.raises(BenchError, match="no 'agent_slot' resource"):
        _bench(
            host,
            tmp_path / "b",
            backend="ray",
            world="sim",
            issues=5,
            k=2,
            resources={"agent_slot": 1.0},
            config=PlannerConfig(),
        )
