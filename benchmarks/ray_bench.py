"""The bench on Ray against the local backend: throughput, per-candidate overhead, scaling.

    python benchmarks/ray_bench.py [--issues 1000] [--k 4] [--local-jobs 1,2,4] [--ray-cpus 1,2,4]

The same bench (the embedded world's first ISSUES issues x K candidates) with the ``command``
executor running a shell kernel that sleeps 50 ms per candidate: on the local backend at each
``--jobs``, then on a local Ray given each number of CPUs (one CPU per candidate task, so that
many candidates run at once). Prints each run's candidates per second and the overhead per
candidate: wall time x concurrency / candidates, minus the command's own run time measured
directly. The candidates sleep, so the cores are mostly free and throughput should scale with
concurrency until process start-up and the driver fill the machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from swarm_planner.core.bench.backends import Backend, LocalBackend
from swarm_planner.core.bench.runner import run_bench
from swarm_planner.core.bench.setup import BenchRequest, prepare_bench
from swarm_planner.core.config import PlannerConfig, RayConfig
from swarm_planner.core.plugins import get_host

KERNEL = """cat > /dev/null
sleep 0.05
printf '{"verified": true, "status": "success", "duration_ms": 50, "cost_usd": 0.01}'
"""


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def direct_seconds(kernel: Path) -> float:
    """The kernel's own run time, started directly (median of 20)."""
    times = []
    for _ in range(20):
        t = time.perf_counter()
        subprocess.run(["sh", str(kernel)], input=b"{}", capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def one_bench(
    tmp: Path, label: str, issues: int, k: int, kernel: Path, jobs: int | None, backend: Backend
) -> tuple[int, float]:
    out = tmp / label
    request = BenchRequest(
        out=out,
        world="sim",
        issues=issues,
        k=k,
        executor="command",
        options={"executor": {"command": ["sh", str(kernel)]}},
        jobs=jobs,
    )
    cases, settings, plugins, names, _ = prepare_bench(request, PlannerConfig(), get_host())
    t = time.perf_counter()
    summary, _ = run_bench(out, cases, settings, plugins, jobs=jobs, names=names, backend=backend)
    seconds = time.perf_counter() - t
    assert summary.errors == {}, summary.errors
    return summary.ran, seconds


def report(label: str, ran: int, seconds: float, concurrency: int, own: float) -> None:
    overhead = seconds * concurrency / ran - own
    print(
        f"{label:<28} {ran / seconds:7.1f} candidates/s  ({ran} in {seconds:6.1f} s; "
        f"overhead {1000 * overhead:5.1f} ms per candidate at {concurrency} at once)"
    )


def main(argv: list[str] | None = None) -> Any:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=1000)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--local-jobs", default="1,2,4")
    parser.add_argument("--ray-cpus", default="1,2,4")
    args = parser.parse_args(argv)
    import os

    import ray

    from swarm_planner.core.bench.ray_backend import RayBackend

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        kernel = tmp / "kernel.sh"
        kernel.write_text(KERNEL)
        own = direct_seconds(kernel)
        print(
            f"{args.issues} issues x K={args.k}; the kernel alone takes {1000 * own:.1f} ms "
            f"(sleeps 50 ms); {os.cpu_count()} cores"
        )
        for jobs in _ints(args.local_jobs):
            ran, seconds = one_bench(
                tmp, f"local-{jobs}", args.issues, args.k, kernel, jobs, LocalBackend()
            )
            report(f"local backend, --jobs {jobs}", ran, seconds, jobs, own)
        for cpus in _ints(args.ray_cpus):
            t = time.perf_counter()
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
            started = time.perf_counter() - t
            try:
                ran, seconds = one_bench(
                    tmp, f"ray-{cpus}", args.issues, args.k, kernel, None, RayBackend(RayConfig())
                )
            finally:
                ray.shutdown()
            report(f"ray backend, {cpus} CPUs", ran, seconds, cpus, own)
            print(f"{'':<28} (Ray itself took {started:.1f} s to start)")


if __name__ == "__main__":
    main()
