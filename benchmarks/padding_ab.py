"""Benchmark: what the onnx policy's padding rule costs, against the rule it replaced.

The served graph runs each input at a bound width. The policy pads to eight steps a doubling
(``onnx_policy.padded_width``); it used to pad to the next power of two. This times both on the
same bundle in one process: the kernel stream of ``benchmarks/inference_latency.py`` (every
decision of the dataset in time order from an empty run memo, the test inputs with 8 history
runs timed), the two rules alternating first and second round by round so that a slow spell of
the machine hits both alike; it prints the median and range over rounds.

    python benchmarks/padding_ab.py BUNDLE DATASET [ROUNDS]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import attrs
import numpy as np

from swarm_planner.core.dataset import iter_dataset
from swarm_planner.plugins.models import onnx_policy
from swarm_planner.plugins.models.onnx_policy import OnnxPolicy


def next_power_of_two(n: int) -> int:
    """The rule before: at least 64, else the next power of two."""
    width = 64
    while width < n:
        width *= 2
    return width


def main() -> None:
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    bundle, dataset = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) == 4 else 6
    policy = OnnxPolicy(bundle)
    every = [
        (attrs.evolve(r.planner_input, action_space=policy.space), r.split)
        for r in iter_dataset(dataset)
    ]
    stream = [(x, s == "test" and len(x.history.last_n_similar_runs) == 8) for x, s in every]
    rules: dict[str, Callable[[int], int]] = {
        "next power of two (before)": next_power_of_two,
        "eight steps a doubling (now)": onnx_policy.padded_width,
    }
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in rules}
    try:
        for round_ in range(rounds):
            order = list(rules.items()) if round_ % 2 == 0 else list(rules.items())[::-1]
            for name, rule in order:
                onnx_policy.padded_width = rule  # type: ignore[assignment]
                for x, _ in stream[:300]:  # every width of this rule bound once
                    policy.decide(x)
                policy.encoder.forget_runs()
                samples = []
                for x, measured in stream:
                    started = time.perf_counter()
                    policy.decide(x)
                    if measured:
                        samples.append(time.perf_counter() - started)
                us = np.array(samples) * 1e6
                figures[name].append((np.percentile(us, 50), np.percentile(us, 99)))
    finally:
        onnx_policy.padded_width = rules["eight steps a doubling (now)"]  # type: ignore[assignment]
    print(f"{bundle}: kernel stream, {rounds} rounds, median [range]")
    for name, per_round in figures.items():
        p50s, p99s = zip(*per_round, strict=True)
        print(
            f"  {name:<30} p50 {np.median(p50s):>7.0f} [{min(p50s):.0f}-{max(p50s):.0f}] us   "
            f"p99 {np.median(p99s):>7.0f} [{min(p99s):.0f}-{max(p99s):.0f}] us"
        )


if __name__ == "__main__":
    main()
