"""The closed loop (``planner run-world``) and off-policy evaluation of what it logged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from swarm_planner.core.archives import read_root
from swarm_planner.core.config import parse_config
from swarm_planner.core.dataset import build_dataset, iter_dataset
from swarm_planner.kernel_integration.loop import LoopSettings, run_world
from swarm_planner.kernel_integration.offpolicy import (
    LoggedSet,
    estimate,
    read_logged,
    target_actions,
)
from swarm_planner.sim.world import World


def test_the_loop_archives_every_decision_for_the_next_dataset(tmp_path: Path) -> None:
    config = parse_config({"model": {"type": "heuristic"}, "exploration": {"epsilon": 0.2}})
    root = tmp_path / "root"
    phases = run_world(config, root, LoopSettings(issues=150, seed=2))
    assert [p.mode for p in phases] == ["log", "enforce"]
    assert phases[0].reasons == {"log_only": 150}  # shadow: every decision recorded
    assert phases[1].branches.keys() <= {"model", "exploration", "fallback", "forced"}
    kernel = read_root(root)
    assert len(kernel.runs) == 300 and not kernel.report.skip_kinds
    passed = sum(r.summary.outcome.status == "success" for r in kernel.runs)
    assert passed == phases[0].passed + phases[1].passed
    built = build_dataset(root, tmp_path / "dataset")
    assert built.meta["example_count"] == 300
    assert built.meta["label_sources"] == {"executed_plan": 300}
    executed = {r.summary.run_id: r.summary.action_executed for r in kernel.runs if r.executed_plan}
    for row in iter_dataset(tmp_path / "dataset"):
        ran = executed[row.run_id]
        label = row.label_action.action
        space = row.planner_input.action_space
        assert label == space.nearest_action(
            ran.swarm_id, ran.max_candidates, ran.max_minutes, ran.max_iterations
        )


def test_the_loop_refuses_a_root_that_holds_archives(tmp_path: Path) -> None:
    config = parse_config({})
    run_world(config, tmp_path / "root", LoopSettings(issues=3, phases=("off",)))
    with pytest.raises(FileExistsError):
        run_world(config, tmp_path / "root", LoopSettings(issues=3))


def test_the_cli_prints_the_figures_by_phase(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from swarm_planner.cli.app import app

    config = tmp_path / "kernel.yaml"
    config.write_text("planner: {model: {type: heuristic}}\n")
    result = CliRunner().invoke(
        app,
        [
            "run-world",
            "--config",
            str(config),
            "--issues",
            "40",
            "--out",
            str(tmp_path / "r"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    phases = json.loads(result.stdout)
    assert [p["mode"] for p in phases] == ["log", "enforce"]
    assert phases[1]["reasons"] == {"model": 40}  # the rule as the model: the gate lets it run


@pytest.fixture(scope="module")
def logged_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 dispatches of the heuristic with safe exploration (epsilon 0.3)."""
    root = tmp_path_factory.mktemp("logged") / "root"
    config = parse_config(
        {
            "mode": "enforce",
            "model": {"type": "heuristic"},
            "exploration": {"epsilon": 0.3, "seed": 1},
        }
    )
    run_world(config, root, LoopSettings(issues=2000, seed=5, phases=("enforce",)))
    return root


@pytest.fixture(scope="module")
def logged(logged_root: Path) -> LoggedSet:
    return read_logged(logged_root)


CANDIDATES = {
    "the logging rule": {},
    "medium issues on one 60-minute agent": {
        "rules": {"medium": {"swarm_id": "serial_handoff", "max_candidates": 1, "max_minutes": 60}}
    },
    "high issues on one agent": {
        "rules": {"high": {"swarm_id": "serial_handoff", "max_candidates": 1}}
    },
}


@pytest.mark.parametrize("name", list(CANDIDATES))
def test_the_estimate_covers_what_the_candidate_really_does(logged: LoggedSet, name: str) -> None:
    assert len(logged.decisions) == 2000 and logged.skipped == {}
    config = parse_config({"model": {"type": "heuristic", "options": CANDIDATES[name]}})
    targets = target_actions(logged.decisions, config)
    # The truth: the world run with the candidate's action on every logged dispatch.
    world = World(0)
    outcomes = [
        world.run_action(
            d.planner_input.issue,
            d.planner_input.job_type,
            t,
            attempt=d.planner_input.issue.dk_attempts,
        )
        for d, t in zip(logged.decisions, targets, strict=True)
    ]
    true_pass = float(np.mean([o.verified for o in outcomes]))
    true_cpp = sum(o.cost_usd for o in outcomes) / sum(o.verified for o in outcomes)
    result = estimate(logged, targets, name=name, bootstrap=300, seed=0)
    assert result.unsupported == 0 and result.ess > 50
    for estimator in ("snips", "dr"):
        p, c = result.pass_rate[estimator], result.cost_per_pass[estimator]
        assert p.low <= true_pass <= p.high, (estimator, p, true_pass)
        assert c.low <= true_cpp <= c.high, (estimator, c, true_cpp)


def test_the_logged_outcomes_are_the_worlds(logged: LoggedSet) -> None:
    world = World(0)
    replayed = [
        world.run_action(
            d.planner_input.issue,
            d.planner_input.job_type,
            d.action,
            attempt=d.planner_input.issue.dk_attempts,
        ).verified
        for d in logged.decisions[:500]
    ]
    assert replayed == [d.passed for d in logged.decisions[:500]]


def test_log_mode_decisions_give_no_support_for_another_policy(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run_world(
        parse_config({"model": {"type": "heuristic"}}),
        root,
        LoopSettings(issues=60, phases=("log",)),
    )
    logged = read_logged(root)
    config = parse_config(
        {"model": {"type": "heuristic", "options": CANDIDATES["high issues on one agent"]}}
    )
    targets = target_actions(logged.decisions, config)
    result = estimate(logged, targets, bootstrap=20)
    assert result.unsupported > 0
