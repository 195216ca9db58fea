"""A node lost mid-bench: its candidates run again on the node that replaces it, and every
candidate is logged exactly once. A two-node Ray cluster on this machine (Ray's own test
cluster: a head with no CPUs and one worker node, killed and replaced during the bench)."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("SWARM_PLANNER_EXPECT_RAY") == "1":
    import ray
else:
    ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster
from test_bench import _log_keys, _write_cases

from swarm_planner.core.bench.log import ATTEMPTS_FILE, LOG_FILE, read_attempts
from swarm_planner.core.bench.runner import run_bench
from swarm_planner.core.bench.setup import BenchRequest, bench_backend, prepare_bench
from swarm_planner.core.config import PlannerConfig
from swarm_planner.core.plugins import PluginHost

COMMANDS = Path(__file__).parent / "bench_commands"
NODE = {"num_cpus": 2, "resources": {"agent_slot": 2}}


@pytest.fixture()
def nodes() -> Iterator[Any]:
    # a lost node is noticed after 3 missed health checks of 0.5 s (Ray's default waits longer)
    health = {
        "health_check_failure_threshold": 3,
        "health_check_period_ms": 500,
        "health_check_initial_delay_ms": 0,
    }
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "_system_config": health}
    )
    cluster.add_node(**NODE)
    ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_a_node_lost_mid_bench_has_its_candidates_run_again_elsewhere(
    nodes: Any, host: PluginHost, tmp_path: Path
) -> None:
    cases = tmp_path / "cases.jsonl"
    _write_cases(cases, 6)
    out = tmp_path / "b"
    request = BenchRequest(
        out=out,
        issues_file=cases,
        k=2,
        executor="command",
        options={
            "executor": {
                "command": [sys.executable, str(COMMANDS / "echo_outcome.py")],
                "env": {"BENCH_SLEEP": "1.5", "BENCH_STDIN_COPY": str(tmp_path / "started")},
            }
        },
        backend="ray",
        resources={"agent_slot": 1.0},
    )
    config = PlannerConfig()
    kases, settings, plugins, names, jobs = prepare_bench(request, config, host)

    outcome: list[Any] = []

    def bench() -> None:
        outcome.append(
            run_bench(
                out,
                kases,
                settings,
                plugins,
                jobs=jobs,
                names=names,
                backend=bench_backend(request, config),
            )
        )

    # The bench runs in a thread; the node is killed and replaced from the main thread (Ray's
    # test cluster starts nodes from the main thread only). Once a kernel has started (none
    # has finished: each takes 1.5 s) the node dies; a new one joins later.
    runner = threading.Thread(target=bench)
    runner.start()
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # a kernel has started: a candidate is running on the node
    time.sleep(0.2)
    logged_when_lost = _log_keys(out) if (out / LOG_FILE).exists() else []
    (worker,) = [n for n in nodes.list_all_nodes() if n is not nodes.head_node]
    nodes.remove_node(worker, allow_graceful=False)
    time.sleep(1.0)
    nodes.add_node(**NODE)
    runner.join(timeout=120)
    assert not runner.is_alive(), "the bench should finish on the new node"
    assert logged_when_lost == [], "the node should die mid-candidate"
    summary, results = outcome[0]
    keys = _log_keys(out)
    assert len(keys) == len(set(keys)) == 12
    lost = read_attempts(out / ATTEMPTS_FILE)
    # the candidates running on the node when it died (two slots; on a loaded machine the
    # second may not have started yet) were lost once each, and ran again
    assert 1 <= len(lost) == summary.lost_attempts <= 2
    assert all(a.attempt == 1 for a in lost)
    assert len({(a.case_id, a.slot) for a in lost}) == len(lost)
    assert all(line.error is None for r in results for line in r.lines)
