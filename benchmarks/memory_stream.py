"""Benchmark: resident memory of the onnx policy over a long stream of inputs that never repeat.

A kernel process lives for weeks. Every memo on the decision path must be bounded, so memory
must level off however varied the inputs are. This streams N decisions (default 250,000) where
every input is new: a unique tag, unique history run ids with unique fail codes, and every
third input a job type never seen before. It prints the resident set size (VmRSS) as it goes,
the peak, and decisions per second, and a verdict against the target (RSS <= 150 MiB).

    python benchmarks/memory_stream.py --bundle BUNDLE --dataset DATASET [--decisions 250000]
    python benchmarks/memory_stream.py            # simulate, build, train, export first

Runs in a fresh process (the figure is that process's memory, not the caller's).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from inference_latency import prepare  # the same bundle and dataset (benchmarks/ is on the path)

TARGET_MIB = 150.0

CHILD = r"""
import json, sys, time
import attrs
from swarm_planner.core.dataset import iter_dataset
from swarm_planner.plugins.models.onnx_policy import OnnxPolicy

bundle, dataset, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

def rss_mib():
    with open("/proc/self/status") as handle:
        return int(handle.read().split("VmRSS:")[1].split()[0]) / 1024

policy = OnnxPolicy(bundle)
base = [r.planner_input for r in iter_dataset(dataset) if r.split == "test"][:200]
marks, peak, started = [], 0.0, time.perf_counter()
report_every = max(1, n // 10)
for i in range(n):
    x = base[i % len(base)]
    runs = tuple(
        attrs.evolve(
            run,
            run_id=f"{run.run_id}-{i}",
            outcome=attrs.evolve(
                run.outcome, fail_codes=(*run.outcome.fail_codes, f"code-{i}-{j}")
            ),
        )
        for j, run in enumerate(x.history.last_n_similar_runs)
    )
    x = attrs.evolve(
        x,
        job_type=f"job-{i}" if i % 3 == 0 else x.job_type,
        issue=attrs.evolve(x.issue, tags=(*x.issue.tags, f"tag-{i}"), issue_id=f"issue-{i}"),
        history=attrs.evolve(x.history, last_n_similar_runs=runs),
    )
    policy.decide(x)
    if (i + 1) % report_every == 0 or i == 0:
        now = rss_mib()
        peak = max(peak, now)
        marks.append({"decisions": i + 1, "rss_mib": round(now, 1)})
elapsed = time.perf_counter() - started
print(json.dumps({"marks": marks, "peak_mib": round(peak, 1), "final_mib": marks[-1]["rss_mib"],
                  "decisions_per_s": round(n / elapsed)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle")
    parser.add_argument("--dataset")
    parser.add_argument("--decisions", type=int, default=250_000)
    args = parser.parse_args()
    bundle, dataset = prepare(args)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(bundle), str(dataset), str(args.decisions)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    print(f"bundle {bundle}; {args.decisions:,} decisions, every input new")
    print(f"{'decisions':>10}  {'RSS MiB':>8}")
    for mark in result["marks"]:
        print(f"{mark['decisions']:>10,}  {mark['rss_mib']:>8.1f}")
    print(
        f"peak RSS {result['peak_mib']:.1f} MiB, final {result['final_mib']:.1f} MiB, "
        f"{result['decisions_per_s']:,} decisions/s"
    )
    verdict = "meets" if result["peak_mib"] <= TARGET_MIB else "MISSES"
    print(f"{verdict} the target: RSS <= {TARGET_MIB:.0f} MiB after the stream")


if __name__ == "__main__":
    main()
