"""The embedded world: deterministic, in the archive format, with a truth that rewards planning."""

from __future__ import annotations

import filecmp
import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from swarm_planner.core.action_space import NA, JointAction
from swarm_planner.core.archives import read_root
from swarm_planner.core.contracts import Issue
from swarm_planner.sim.generate import SimConfig, simulate
from swarm_planner.sim.issues import draw_issue
from swarm_planner.sim.routing import Drift, route
from swarm_planner.sim.world import World


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_same_seed_same_root_byte_for_byte(tmp_path: Path) -> None:
    simulate(tmp_path / "a", SimConfig(runs=150, seed=9))
    simulate(tmp_path / "b", SimConfig(runs=150, seed=9))
    simulate(tmp_path / "c", SimConfig(runs=150, seed=10))
    assert _tree_digest(tmp_path / "a") == _tree_digest(tmp_path / "b")
    assert _tree_digest(tmp_path / "a") != _tree_digest(tmp_path / "c")
    assert filecmp.cmp(
        tmp_path / "a/.beads/issues.jsonl", tmp_path / "b/.beads/issues.jsonl", shallow=False
    )


def test_simulate_refuses_a_root_that_already_has_archives(tmp_path: Path) -> None:
    simulate(tmp_path, SimConfig(runs=5, seed=1))
    with pytest.raises(FileExistsError, match="already holds archives"):
        simulate(tmp_path, SimConfig(runs=5, seed=1))
    (tmp_path / "keep.txt").write_text("mine")
    simulate(tmp_path, SimConfig(runs=7, seed=1), replace=True)
    assert len(list((tmp_path / ".cyntra" / "archives").iterdir())) == 7
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_the_root_reads_back_completely_in_the_archive_format(sim_root: Path) -> None:
    kernel = read_root(sim_root)
    assert len(kernel.runs) == 800
    assert kernel.report.skipped == []
    sources = Counter((r.outcome_source, r.action_source) for r in kernel.runs)
    assert set(sources) == {
        ("proof", "legacy"),
        ("proof", "executed_plan"),
        ("rollout", "executed_plan"),
    }
    assert all(
        r.system_state is not None for r in kernel.runs if r.action_source == "executed_plan"
    )
    dirt = kernel.report.repairs.counts
    assert dirt["issue.dk_attempts: string -> int"] > 0
    assert kernel.universe.universe_id == "sim"


def test_lanes_follow_the_collection_playbook(sim_root: Path) -> None:
    kernel = read_root(sim_root)
    first_runs = {}
    for r in kernel.runs:
        first_runs.setdefault(r.summary.issue_id, r)
    risks = Counter(kernel.issues[i].dk_risk for i in first_runs if i in kernel.issues)
    total = sum(risks.values())
    assert 0.5 < (risks["low"] + risks["medium"]) / total < 0.7
    assert 0.2 < risks["high"] / total < 0.4
    assert 0.05 < risks["critical"] / total < 0.16


def test_routing_is_the_risk_rule_with_toolchain_timeouts_and_drift() -> None:
    rng = np.random.default_rng(0)
    issue = Issue("1", dk_risk="high", dk_size="M", dk_priority="P2", tags=("api",))
    early = route(issue, "code", 0, rng, Drift())
    late = route(issue, "code", 6, np.random.default_rng(0), Drift())
    assert (early.swarm_id, early.candidates, early.toolchain) == ("speculate_vote", 2, "codex")
    assert early.timeout_seconds in (1800, 3600, 7200)
    assert late.timeout_seconds in (2700, 3600, 7200)
    critical = route(
        Issue("2", dk_risk="critical", dk_tool_hint="claude"), "fab-world", 0, rng, Drift()
    )
    assert (critical.candidates, critical.toolchain, critical.iterations) == (3, "claude", 3)


def _pass_rate(
    world: World, issues: list[tuple[Issue, str]], action: JointAction, runs: int = 3
) -> float:
    passed = sum(
        world.run_action(issue, job, action, salt=str(k)).verified
        for issue, job in issues
        for k in range(runs)
    )
    return passed / (len(issues) * runs)


def test_the_world_is_deterministic_per_issue_action_and_attempt() -> None:
    world = World(5)
    issue = Issue("X-1", dk_risk="high", dk_size="S", tags=("api",))
    action = JointAction("speculate_vote", 2, 30, NA)
    assert world.run_action(issue, "code", action) == world.run_action(issue, "code", action)
    outcomes = {world.run_action(issue, "code", action, attempt=a).duration_ms for a in range(5)}
    assert len(outcomes) > 1


def test_some_high_risk_issues_pass_serially_at_a_third_of_the_cost() -> None:
    world = World(1)
    rng = np.random.default_rng(1)
    draws = [draw_issue(rng, i, 0.0) for i in range(600)]
    easy = [
        (d.issue, d.job_type)
        for d in draws
        if d.issue.dk_risk == "high" and world.traits(d.issue, "code").easy_despite_risk
    ]
    assert len(easy) > 20
    serial = JointAction("serial_handoff", 1, NA, NA)
    speculate = JointAction("speculate_vote", 3, NA, NA)
    assert _pass_rate(world, easy, serial) > 0.8
    cost = lambda a: np.mean([world.run_action(i, j, a).cost_usd for i, j in easy])  # noqa: E731
    assert cost(speculate) > 2.5 * cost(serial)


def test_some_small_issues_fail_unless_given_more_minutes() -> None:
    world = World(1)
    rng = np.random.default_rng(2)
    draws = [draw_issue(rng, i, 0.0) for i in range(600)]
    slow = [
        (d.issue, d.job_type) for d in draws if world.traits(d.issue, "code").needs_more_minutes
    ]
    assert len(slow) > 20 and all(i.dk_size in ("XS", "S") for i, _ in slow)
    assert _pass_rate(world, slow, JointAction("serial_handoff", 1, 15, NA)) < 0.05
    assert _pass_rate(world, slow, JointAction("serial_handoff", 1, 60, NA)) > 0.4


def test_failures_recur_with_the_same_gate_and_code_on_retries() -> None:
    world = World(4)
    rng = np.random.default_rng(3)
    codes = []
    for i in range(200):
        d = draw_issue(rng, i, 0.0)
        failed = [
            world.run_action(d.issue, "code", JointAction("serial_handoff", 1, NA, NA), attempt=a)
            for a in range(3)
        ]
        seen = {o.fail_codes for o in failed if o.status == "failed"}
        if len(seen) >= 1:
            codes.append(len(seen))
    assert codes and all(n == 1 for n in codes)
