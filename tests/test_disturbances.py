"""Disturbances of the embedded world: off by default, and when on they change only the runs
they strike, in the direction they are meant to."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from swarm_planner.core.action_space import ActionSpace
from swarm_planner.core.plugins import get_host
from swarm_planner.sim.disturbances import Disturbances
from swarm_planner.sim.generate import SimConfig, simulate
from swarm_planner.sim.issues import draw_issue
from swarm_planner.sim.world import World


def runs(world: World, count: int = 150) -> list:
    rng = np.random.default_rng(7)
    space = ActionSpace()
    out = []
    for number in range(1, count + 1):
        draw = draw_issue(rng, number)
        for action in space.valid_actions(draw.job_type)[::9]:
            out.append(world.run_action(draw.issue, draw.job_type, action, salt="bench"))
    return out


def test_a_flaky_gate_fails_only_runs_that_passed_and_a_vote_is_a_second_chance() -> None:
    calm = runs(World(3))
    flaky = runs(World(3, Disturbances(flaky_gates=0.5)))
    struck = [(c, f) for c, f in zip(calm, flaky, strict=True) if c != f]
    assert struck, "a flaky gate at 0.5 strikes somewhere"
    for c, f in struck:
        assert c.verified and not f.verified and f.fail_codes == ("flaky_selector",)
        assert (c.duration_ms, c.cost_usd) == (f.duration_ms, f.cost_usd)  # the same work

    def struck_share(solvers: int) -> float:
        hit = [
            not f.verified
            for c, f in zip(calm, flaky, strict=True)
            if c.verified and sum(r.solved for r in c.candidates) == solvers
        ]
        return sum(hit) / len(hit)

    assert 0.35 < struck_share(1) < 0.65
    assert struck_share(2) < 0.4  # both candidates must meet the flaky gate


def test_an_outage_fails_every_run_at_the_build_gate() -> None:
    for outcome in runs(World(0, Disturbances(toolchain_outage=1.0)), count=30):
        assert outcome.status == "failed" and outcome.fail_codes == ("toolchain_unavailable",)
        assert ("build", False, 0.0) in outcome.gates


def test_queue_pressure_times_out_tight_caps_and_never_rescues_a_run() -> None:
    calm = runs(World(1))
    pressed = runs(World(1, Disturbances(queue_pressure=0.5)))
    assert sum(o.status == "timeout" for o in pressed) > sum(o.status == "timeout" for o in calm)
    assert not any(p.verified and not c.verified for c, p in zip(calm, pressed, strict=True))


def test_a_shifted_system_state_is_busier_and_less_healthy(tmp_path: Path) -> None:
    def states(root: Path, disturbances: Disturbances) -> list[dict]:
        simulate(root, SimConfig(runs=300, seed=2, disturbances=disturbances))
        found = []
        for manifest in (root / ".cyntra" / "archives").glob("*/manifest.json"):
            planner = json.loads(manifest.read_text()).get("planner")
            if planner:
                found.append(planner["planner_input"]["system_state"])
        return found

    calm = states(tmp_path / "calm", Disturbances())
    shifted = states(tmp_path / "shifted", Disturbances(system_shift=0.8))
    assert len(calm) == len(shifted) > 100

    def health(found: list[dict]) -> float:
        return float(np.mean([v for s in found for v in s["toolchain_health"].values()]))

    def busy(found: list[dict]) -> float:
        return float(np.mean([s["queue_depth_bin"] in ("3_5", "6_plus") for s in found]))

    assert health(shifted) < 0.8 * health(calm)
    assert busy(shifted) > busy(calm) + 0.2


def test_the_sim_executor_takes_disturbances_and_refuses_unknown_ones() -> None:
    host = get_host()
    executor = host.create("executor", "sim", {"seed": 0, "disturbances": {"flaky_gates": 0.3}})
    assert executor.world.disturbances == Disturbances(flaky_gates=0.3)
    with pytest.raises(Exception, match="outages"):
        host.create("executor", "sim", {"disturbances": {"outages": 0.3}})
    with pytest.raises(Exception, match="queue_pressure"):
        host.create("executor", "sim", {"disturbances": {"queue_pressure": 2.0}})
