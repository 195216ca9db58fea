"""The best-of-K bench: baseline first, lossless and resumable, budgets kept, failures recorded,
outputs in the field's shapes, and outcome datasets from our benches and the field's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from swarm_planner.core.action_space import JointAction
from swarm_planner.core.bench.log import LOG_FILE, BenchError
from swarm_planner.core.bench.runner import run_bench
from swarm_planner.core.bench.setup import BenchRequest, prepare_bench
from swarm_planner.core.config import PlannerConfig
from swarm_planner.core.contracts import dump
from swarm_planner.core.outcomes import build_outcome_dataset, read_outcome_rows
from swarm_planner.core.plugins import PluginHost
from swarm_planner.core.protocols import CandidateOutcome
from swarm_planner.sim.world import World

COMMANDS = Path(__file__).parent / "bench_commands"


def _bench(host: PluginHost, out: Path, **changes: Any) -> tuple[Any, list[Any]]:
    request = BenchRequest(out=out, world="sim", issues=changes.pop("issues", 40), **changes)
    cases, settings, plugins, names, jobs = prepare_bench(request, PlannerConfig(), host)
    return run_bench(out, cases, settings, plugins, jobs=jobs, names=names)


def _log_keys(out: Path) -> list[tuple[str, int]]:
    lines = (out / LOG_FILE).read_text().splitlines()
    return [(json.loads(line)["case_id"], json.loads(line)["slot"]) for line in lines]


def test_a_sim_bench_runs_the_baseline_first_and_records_the_worlds_outcomes(
    host: PluginHost, tmp_path: Path
) -> None:
    summary, results = _bench(host, tmp_path / "b", k=3, sampler="random")
    assert summary.cases == 40 and summary.ran == 120 and summary.resumed == 0
    world = World(0)
    for result in results:
        x = result.case.planner_input
        assert result.lines[0].joint_action == result.case.baseline
        assert len({line.joint_action for line in result.lines}) == 3
        for line in result.lines:
            truth = world.run_action(
                x.issue, x.job_type, line.joint_action, attempt=x.issue.dk_attempts, salt="bench"
            )
            assert (line.verified, line.duration_ms, line.cost_usd) == (
                truth.verified,
                truth.duration_ms,
                truth.cost_usd,
            )
        if result.winner is not None:
            assert result.lines[result.winner].verified
        else:
            assert not any(line.verified for line in result.lines)
    records = json.loads((tmp_path / "b/results/best_of_k.json").read_text())
    report = json.loads((tmp_path / "b/bench_report.json").read_text())
    assert report["schema_version"] == "cyntra.planner_best_of_k_bench.v1"
    assert report["case_count"] == len(records) == 40
    first = records[0]
    assert set(first) >= {
        "bench_config_hash",
        "issue_id",
        "title",
        "job_type",
        "candidates",
        "winner",
    }
    assert set(first["candidates"][0]) == {
        "action",
        "verified",
        "status",
        "duration_ms",
        "cost_usd",
        "workcell_id",
        "details",
    }
    winners = [r for r in records if r["winner"]]
    manifest = tmp_path / "b/archives" / winners[0]["winner"]["workcell_id"] / "manifest.json"
    assert set(json.loads(manifest.read_text())["planner"]) >= {
        "planner_input",
        "planner_action",
        "executed_plan",
    }


def test_a_rerun_resumes_and_changes_nothing(host: PluginHost, tmp_path: Path) -> None:
    _bench(host, tmp_path / "b")
    before = (tmp_path / "b/results/best_of_k.json").read_text()
    summary, _ = _bench(host, tmp_path / "b")
    assert summary.resumed == summary.candidates == 160
    after = json.loads((tmp_path / "b/results/best_of_k.json").read_text())
    assert [r["candidates"] for r in after] == [r["candidates"] for r in json.loads(before)]


def test_a_changed_config_refuses_to_resume_and_names_the_change(
    host: PluginHost, tmp_path: Path
) -> None:
    _bench(host, tmp_path / "b", k=2)
    with pytest.raises(BenchError, match=r"k: 2 -> 3.*new --out"):
        _bench(host, tmp_path / "b", k=3)
    with pytest.raises(BenchError, match=r"selector"):
        _bench(host, tmp_path / "b", k=2, selector="cheapest_pass")


def test_a_torn_last_line_is_dropped_and_its_candidate_run_again(
    host: PluginHost, tmp_path: Path
) -> None:
    _bench(host, tmp_path / "b", k=2)
    log = tmp_path / "b" / LOG_FILE
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-3]) + lines[-3][:25])  # killed inside a write
    summary, _ = _bench(host, tmp_path / "b", k=2)
    assert summary.torn_bytes == 25
    assert summary.resumed == len(lines) - 3
    keys = _log_keys(tmp_path / "b")
    assert len(keys) == len(set(keys)) == 80


def test_a_sigkilled_bench_resumes_with_every_candidate_exactly_once(tmp_path: Path) -> None:
    """The real thing: `planner bench` killed with SIGKILL mid-run, then run again."""
    command, out = bench_command(tmp_path, "0.02", "--jobs", "2")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done_before = kill_mid_run(command, out, env, within=30)
    assert 20 <= done_before < 90, "the kill should land mid-run"
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    keys = _log_keys(out)
    assert len(keys) == len(set(keys)) == 90
    records = json.loads((out / "results/best_of_k.json").read_text())
    assert sum(len(r["candidates"]) for r in records) == 90


def bench_command(tmp_path: Path, sleep: str, *extra: str) -> tuple[list[str], Path]:
    """`planner bench` over 30 cases × K=3 with the command executor sleeping ``sleep`` s."""
    config = tmp_path / "kernel.yaml"
    config.write_text(
        "planner:\n  bench:\n    executor: command\n    executor_options:\n"
        f"      command: [{json.dumps(sys.executable)}, {json.dumps(str(COMMANDS / 'echo_outcome.py'))}]\n"
        f"      env: {{BENCH_SLEEP: '{sleep}'}}\n"
    )
    cases = tmp_path / "cases.jsonl"
    _write_cases(cases, 30)
    out = tmp_path / "b"
    command = [sys.executable, "-c", "from swarm_planner.cli.app import main; main()", "bench"]
    command += ["--issues", str(cases), "--config", str(config), "--k", "3", "--out", str(out)]
    return [*command, "-q", *extra], out


def kill_mid_run(command: list[str], out: Path, env: dict[str, str], within: float) -> int:
    """Start the bench, SIGKILL it once 20 candidates are logged; how many were logged."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        log = out / LOG_FILE
        if log.exists() and log.read_bytes().count(b"\n") >= 20:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return (out / LOG_FILE).read_bytes().count(b"\n")


def _write_cases(path: Path, n: int) -> None:
    from swarm_planner.core.contracts import Issue
    from swarm_planner.core.recording import build_planner_input

    with path.open("w") as handle:
        for i in range(n):
            x = build_planner_input(
                universe_id="u",
                job_type="code",
                issue=Issue(f"I-{i}", dk_risk=("low", "high")[i % 2], dk_size="M"),
                created_at="2026-01-01T00:00:00Z",
            )
            handle.write(json.dumps({"case_id": f"c{i}", "planner_input": dump(x)}) + "\n")


def test_budgets_are_never_exceeded_and_what_they_stop_is_logged(
    host: PluginHost, tmp_path: Path
) -> None:
    summary, results = _bench(host, tmp_path / "issue", k=4, issue_budget_minutes=200)
    skipped = [line for r in results for line in r.lines if line.skipped]
    assert skipped and all(line.skipped.startswith("issue budget") for line in skipped)
    for r in results:
        assert sum(line.candidate_minutes for line in r.lines) <= 200
    assert summary.skipped == {"issue budget": len(skipped)}
    summary, results = _bench(host, tmp_path / "bench", k=4, budget_minutes=3000)
    assert summary.spent_minutes <= 3000
    assert summary.skipped.get("bench budget", 0) > 0


class _Exploding:
    def run(self, planner_input: Any, action: JointAction) -> CandidateOutcome:
        if action.swarm_id == "serial_handoff":
            raise RuntimeError("kernel lost its workcell")
        return CandidateOutcome(action, True, "failed", 10, 1.0)  # verified but failed: bad


def test_an_executor_that_raises_or_answers_nonsense_fails_the_candidate_not_the_bench(
    host: PluginHost, tmp_path: Path
) -> None:
    request = BenchRequest(out=tmp_path / "b", world="sim", issues=10, k=2)
    cases, settings, plugins, names, _ = prepare_bench(request, PlannerConfig(), host)
    plugins = type(plugins)(plugins.sampler, plugins.selector, _Exploding())
    summary, results = run_bench(tmp_path / "b", cases, settings, plugins, names=names)
    errors = [line.error for r in results for line in r.lines]
    assert all(e for e in errors)
    assert any("raised RuntimeError: kernel lost its workcell" in e for e in errors)
    assert any("verified with status 'failed'" in e for e in errors)
    assert summary.cases_passed == 0 and all(r.winner is None for r in results)


def test_a_bench_with_the_command_executor_records_crashes_with_their_reason(
    host: PluginHost, tmp_path: Path
) -> None:
    cases = tmp_path / "cases.jsonl"
    _write_cases(cases, 4)
    request = BenchRequest(
        out=tmp_path / "b",
        issues_file=cases,
        k=2,
        executor="command",
        options={"executor": {"command": [sys.executable, str(COMMANDS / "garbage.py")]}},
    )
    cases_, settings, plugins, names, _ = prepare_bench(request, PlannerConfig(), host)
    summary, results = run_bench(tmp_path / "b", cases_, settings, plugins, names=names)
    assert summary.ran == 8
    assert all(
        "stdout is not the outcome JSON" in (line.error or "") for r in results for line in r.lines
    )


def test_our_bench_becomes_an_outcome_dataset_split_by_issue(
    host: PluginHost, tmp_path: Path
) -> None:
    _bench(host, tmp_path / "b", issues=120, k=3, sampler="random")
    meta = build_outcome_dataset(tmp_path / "b", tmp_path / "o", shares=(0.6, 0.2, 0.2))
    splits, _ = read_outcome_rows(tmp_path / "o")
    issues = {name: {r.issue_id for r in rows} for name, rows in splits.items()}
    assert not issues["train"] & issues["val"] and not issues["train"] & issues["test"]
    assert meta["example_count"] == sum(len(r) for r in splits.values()) == 120
    row = splits["train"][0]
    assert len(row.candidates) == 3
    assert (
        row.action_probs is not None
        and row.action_probs[row.candidates[0].joint_action.text] == 1.0
    )
    assert all(c.propensity is not None for c in row.candidates)
    for r in (r for rows in splits.values() for r in rows):
        if r.winner is not None:
            assert r.candidates[r.winner].verified
            assert (
                r.label_action is not None
                and r.label_action.action == r.candidates[r.winner].joint_action
            )


def write_field_bench(tmp_path: Path) -> Path:
    """A bench as the field's `best-of-k` writes it, in ``tmp_path/bench``: run_<stamp>/ with
    bench_report.json, results/best_of_k.json, candidate archives; nulls, an `error` status,
    a skipped issue. Six issues: the first candidate passes on even ones, the second never."""
    from swarm_planner.core.contracts import Issue
    from swarm_planner.core.recording import build_planner_input

    run = tmp_path / "bench" / "run_20260105T101500Z"
    (run / "results").mkdir(parents=True)
    records = []
    for i in range(6):
        x = build_planner_input(
            universe_id="u",
            job_type="code",
            issue=Issue(f"F-{i}", dk_risk="high"),
            created_at=f"2026-01-0{i + 1}T00:00:00Z",
        )
        wc = f"wc-F-{i}-a"
        (run / "archives" / wc).mkdir(parents=True)
        (run / "archives" / wc / "manifest.json").write_text(
            json.dumps({"planner": {"planner_input": dump(x)}})
        )
        candidates = [
            {
                "action": ["speculate_vote", "NA", "NA", "NA"],
                "verified": i % 2 == 0,
                "status": "success" if i % 2 == 0 else "failed",
                "duration_ms": 600000,
                "cost_usd": 1.5,
                "workcell_id": wc,
                "details": {},
            },
            {
                "action": ["serial_handoff", 1, "NA", "NA"],
                "verified": False,
                "status": "error",
                "duration_ms": None,
                "cost_usd": None,
                "workcell_id": None,
                "details": {},
            },
        ]
        records.append(
            {
                "bench_config_hash": "h",
                "issue_id": f"F-{i}",
                "title": "t",
                "job_type": "code",
                "candidates": candidates,
                "winner": candidates[0],
            }
        )
    records.append(
        {
            "issue_id": "W-1",
            "title": "w",
            "job_type": "fab-world",
            "skipped": True,
            "skip_reason": "best-of-k bench currently supports only code issues",
        }
    )
    (run / "results" / "best_of_k.json").write_text(json.dumps(records))
    (run / "bench_report.json").write_text(
        json.dumps(
            {
                "schema_version": "cyntra.planner_best_of_k_bench.v1",
                "bench_config_hash": "h",
                "k": 2,
                "seed": 0,
                "sampling": {},
                "case_count": 7,
                "results_path": "results/best_of_k.json",
            }
        )
    )
    return tmp_path / "bench"


def test_the_fields_bench_directory_is_read_with_its_quirks(tmp_path: Path) -> None:
    write_field_bench(tmp_path)
    meta = build_outcome_dataset(tmp_path / "bench", tmp_path / "o", shares=(0.5, 0.17, 0.33))
    assert meta["bench"]["source"] == "field" and meta["example_count"] == 6
    assert list(meta["skipped"].values()) == [1]
    counts = meta["repairs"]["counts"]
    assert counts["unknown proof status 'error' -> failed"] == 6
    assert counts["candidate duration_ms missing or invalid (unknown)"] == 6
    splits, _ = read_outcome_rows(tmp_path / "o")
    rows = [r for s in splits.values() for r in s]
    # The field names a winner even when nothing passed; a winner that failed is no label.
    assert sum(r.label_action is not None for r in rows) == 3
    assert all(
        r.candidates[1].duration_ms is None and r.candidates[1].status == "failed" for r in rows
    )


def test_the_ray_backend_without_ray_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli_helpers import run_main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    out = tmp_path / "b"
    code, err = run_main(
        monkeypatch,
        capsys,
        "bench",
        "--world",
        "sim",
        "--issues",
        "5",
        "--out",
        str(out),
        "-q",
        "--backend",
        "ray",
    )
    assert code != 0
    assert 'pip install "swarm-planner[ray]"' in err and "Traceback" not in err
    assert not (out / LOG_FILE).read_text(), "nothing ran"


def test_a_local_bench_never_imports_ray(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from swarm_planner.cli.app import main\n"
        f"sys.argv = ['planner', 'bench', '--world', 'sim', '--issues', '5', '--out', {str(tmp_path / 'b')!r}, '-q']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_ray_capacity_is_what_the_scarcest_requested_resource_allows() -> None:
    from swarm_planner.core.bench.ray_backend import capacity

    cluster = {"CPU": 16.0, "agent_slot": 6.0, "memory": 1e10}
    assert capacity(cluster, {"CPU": 1.0}) == 16
    assert capacity(cluster, {"CPU": 1.0, "agent_slot": 1.0}) == 6
    assert capacity(cluster, {"CPU": 4.0, "agent_slot": 1.0}) == 4
    assert capacity(cluster, {"CPU": 0.0}) == 16  # asks for nothing: as many as the CPUs
    with pytest.raises(BenchError, match=r"no 'licence' resource.*it has: CPU, agent_slot"):
        capacity(cluster, {"CPU": 1.0, "licence": 1.0})


def test_kill_on_budget_is_refused_where_it_cannot_be_done(
    host: PluginHost, tmp_path: Path
) -> None:
    with pytest.raises(BenchError, match="kill needs budget_mode: spend"):
        _bench(host, tmp_path / "a", k=2, issues=5, budget_minutes=10.0, on_budget="kill")
    with pytest.raises(BenchError, match="the local backend runs it in the driver's thread"):
        _bench(
            host,
            tmp_path / "b",
            k=2,
            issues=5,
            budget_minutes=10.0,
            budget_mode="spend",
            on_budget="kill",
        )


def test_a_spend_budget_starts_candidates_until_spent_minutes_reach_it(
    host: PluginHost, tmp_path: Path
) -> None:
    summary, results = _bench(host, tmp_path / "b", k=4, budget_minutes=600.0, budget_mode="spend")
    lines = [line for r in results for line in r.lines]
    ran = [line for line in lines if line.skipped is None]
    spent_before_last = sum(line.candidate_minutes for line in ran[:-1])
    assert spent_before_last < 600 <= summary.spent_minutes, "it starts while below the budget"
    assert all("spent before it started" in line.skipped for line in lines if line.skipped)
    # once reached, nothing more starts (one job: run order is case order)
    first_skip = next(i for i, line in enumerate(lines) if line.skipped)
    assert all(line.skipped for line in lines[first_skip:])
    # reserve mode, same budget: never passed, and a small candidate may still fit later
    reserved, reserved_results = _bench(host, tmp_path / "r", k=4, budget_minutes=600.0)
    assert reserved.spent_minutes <= 600
    order = [line.skipped is None for r in reserved_results for line in r.lines]
    assert order.index(False) < len(order) - 1 - order[::-1].index(True)
