"""Benchmark: `build-dataset` wall time and peak memory over simulated roots of growing size.

Each build runs in a fresh child process so its peak resident memory (ru_maxrss) is its own.
Prints one row per size so the growth is visible, and checks that a rebuild gives the same hash.

    python benchmarks/dataset_build.py                 # 1k, 5k, 20k runs
    python benchmarks/dataset_build.py --sizes 1000 2000 --workdir /tmp/bench

Targets (issue 3): 20,000 archives in <= 60 s wall and <= 1 GiB peak on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from swarm_planner.core.dataset import build_dataset, DatasetOptions
t = time.perf_counter()
result = build_dataset(sys.argv[1], sys.argv[2], DatasetOptions(n_similar=8))
wall = time.perf_counter() - t
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"wall_s": wall, "peak_mib": peak_kib / 1024, "hash": result.meta["dataset_hash"],
                  "rows": result.meta["example_count"]}))
"""


def simulate(root: Path, runs: int, seed: int) -> float:
    from swarm_planner.sim.generate import SimConfig, simulate

    t = time.perf_counter()
    simulate(root, SimConfig(runs=runs, seed=seed))
    return time.perf_counter() - t


def build(root: Path, out: Path) -> dict[str, float | str | int]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float | str | int] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="planner-bench-"))
    header = ("runs", "simulate s", "build s", "us/run", "peak MiB", "rebuild same hash")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (7, 11, 8, 7, 9, 18), strict=True)))
    rows = []
    for runs in args.sizes:
        root = workdir / f"root-{runs}"
        shutil.rmtree(root, ignore_errors=True)
        sim_s = simulate(root, runs, args.seed)
        first = build(root, workdir / f"ds-{runs}-a")
        second = build(root, workdir / f"ds-{runs}-b")
        same = first["hash"] == second["hash"]
        wall = float(first["wall_s"])
        print(
            f"{runs:>7} {sim_s:>11.1f} {wall:>8.1f} {1e6 * wall / runs:>7.0f} "
            f"{float(first['peak_mib']):>9.0f} {same!s:>18}"
        )
        rows.append((runs, wall))
    if len(rows) >= 2:
        (n0, t0), (n1, t1) = rows[0], rows[-1]
        print(
            f"growth: {n1 / n0:.0f}x runs -> {t1 / t0:.1f}x time (linear would be {n1 / n0:.0f}x)"
        )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"children peak RSS (max over builds): {peak:.0f} MiB")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
