"""How fast the bench runs: the embedded world at scale, and the ``command`` executor's overhead
and scaling with ``--jobs``.

    python benchmarks/bench_speed.py [--issues 1000] [--k 4] [--jobs 2] [--command-candidates 200]

Prints: the sim bench's wall time for ISSUES x K (simulation of the world included) and its
candidates per second; the command executor's overhead per candidate over the command's own run
time (a command that sleeps 50 ms, run directly vs through the executor); and the throughput of
a command bench at --jobs 1, 2, 4 (sleeping commands: the cores are free, so jobs should scale
until the machine's processes are busy).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from swarm_planner.core.bench.runner import run_bench
from swarm_planner.core.bench.setup import BenchRequest, prepare_bench
from swarm_planner.core.config import PlannerConfig
from swarm_planner.core.plugins import get_host

SLEEPER = r"""
import json, sys, time
json.loads(sys.stdin.read())
time.sleep(0.05)
print(json.dumps({"verified": True, "status": "success", "duration_ms": 50, "cost_usd": 0.01}))
"""


def sim_bench(issues: int, k: int, jobs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        request = BenchRequest(out=Path(tmp), world="sim", issues=issues, k=k, jobs=jobs)
        cases, settings, plugins, names, n_jobs = prepare_bench(
            request, PlannerConfig(), get_host()
        )
        prepared = time.perf_counter()
        summary, _ = run_bench(Path(tmp), cases, settings, plugins, jobs=n_jobs, names=names)
        done = time.perf_counter()
    print(
        f"sim bench {issues} issues x K={k}, --jobs {jobs}: {done - started:.1f} s total "
        f"(world + cases {prepared - started:.1f} s, candidates {done - prepared:.1f} s, "
        f"{summary.ran / (done - prepared):,.0f} candidates/s)"
    )


def _cases(path: Path, n: int) -> None:
    import json

    from swarm_planner.core.contracts import Issue, dump
    from swarm_planner.core.recording import build_planner_input

    with path.open("w") as handle:
        for i in range(n):
            x = build_planner_input(
                universe_id="u",
                job_type="code",
                issue=Issue(f"B-{i}"),
                created_at="2026-01-01T00:00:00Z",
            )
            handle.write(json.dumps({"case_id": f"c{i}", "planner_input": dump(x)}) + "\n")


def command_bench(candidates: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "sleeper.py"
        script.write_text(SLEEPER)
        direct = []
        for _ in range(20):
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, str(script)], input=b"{}", capture_output=True, check=True
            )
            direct.append(time.perf_counter() - t)
        base = sorted(direct)[len(direct) // 2]
        host = get_host()
        executor = host.create("executor", "command", {"command": [sys.executable, str(script)]})
        cases_file = Path(tmp) / "cases.jsonl"
        _cases(cases_file, candidates)
        through = []
        cases, settings, *_ = prepare_bench(
            BenchRequest(
                out=Path(tmp) / "x",
                issues_file=cases_file,
                k=1,
                executor="command",
                options={"executor": {"command": [sys.executable, str(script)]}},
            ),
            PlannerConfig(),
            host,
        )
        for case in cases[:20]:
            t = time.perf_counter()
            executor.run(case.planner_input, case.baseline, timeout_seconds=60)
            through.append(time.perf_counter() - t)
        over = sorted(through)[len(through) // 2] - base
        print(
            f"command executor: {1000 * base:.1f} ms for the command run directly, "
            f"{1000 * sorted(through)[len(through) // 2]:.1f} ms through the executor: "
            f"overhead {1000 * over:.1f} ms per candidate (p50 of 20)"
        )
        for jobs in (1, 2, 4):
            out = Path(tmp) / f"jobs{jobs}"
            request = BenchRequest(
                out=out,
                issues_file=cases_file,
                k=1,
                executor="command",
                jobs=jobs,
                options={"executor": {"command": [sys.executable, str(script)]}},
            )
            cases, settings, plugins, names, n = prepare_bench(request, PlannerConfig(), host)
            t = time.perf_counter()
            summary, _ = run_bench(out, cases, settings, plugins, jobs=n, names=names)
            elapsed = time.perf_counter() - t
            print(
                f"command bench --jobs {jobs}: {summary.ran / elapsed:.1f} candidates/s "
                f"({summary.ran} in {elapsed:.1f} s)"
            )
        print(f"(cores: {os.cpu_count()})")


def main(argv: list[str] | None = None) -> Any:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=1000)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--command-candidates", type=int, default=200)
    args = parser.parse_args(argv)
    sim_bench(args.issues, args.k, args.jobs)
    command_bench(args.command_candidates)


if __name__ == "__main__":
    main()
