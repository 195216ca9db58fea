"""Benchmark: what a transformer's size costs per decision, and what it buys.

Trains the ``transformer`` policy at each size asked for (width x layers, 4 heads, feed-forward
twice the width) on one dataset with the same seed, through the model ablation
(``compare_models``: exported, served by the ``onnx`` policy), then times each bundle's
decisions with ``benchmarks/inference_latency.py`` (its kernel stream: the dataset's inputs in
time order from an empty run memo; median and range over rounds); with ``--outcomes`` also the
outcome figures against the heuristic.

    python benchmarks/transformer_sizes.py --dataset D [--outcomes O --world-seed S]
        [--sizes 64x2,32x1] [--rounds 5] [--out DIR]

Target (issue 16): a transformer within 1 ms p99 per decision here, or a reason why not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from swarm_planner.plugins.models.model_ablation import compare_models


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        width, _, layers = part.strip().partition("x")
        if not (width.isdigit() and layers.isdigit()):
            raise SystemExit(f"--sizes: {part!r} is not WIDTHxLAYERS (e.g. 64x2)")
        if int(width) % 4 or not int(width) or not int(layers):
            raise SystemExit(f"--sizes: {part!r}: the width must split into the 4 heads")
        sizes.append((int(width), int(layers)))
    return sizes


def kernel_stream(bundle: Path, dataset: Path, rounds: int) -> str:
    """The ``kernel stream`` figure of ``benchmarks/inference_latency.py`` for ``bundle`` (the
    one definition of a decision's latency: the dataset's decisions in time order from an
    empty run memo, its test inputs timed; median and range over rounds)."""
    script = Path(__file__).with_name("inference_latency.py")
    command = [sys.executable, str(script), "--bundle", str(bundle), "--dataset", str(dataset)]
    done = subprocess.run(
        [*command, "--rounds", str(rounds)],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in done.stdout.splitlines() if "kernel stream" in x)
    return line.split(")", 1)[1].strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--outcomes", type=Path, default=None)
    parser.add_argument("--world-seed", type=int, default=None)
    parser.add_argument("--sizes", default="64x2,32x1")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    sizes = parse_sizes(args.sizes)
    out = args.out or Path(tempfile.mkdtemp(prefix="transformer-sizes-"))
    rows: dict[str, dict[str, Any]] = {}
    bundles: dict[str, Path] = {}
    heuristic = None
    for width, layers in sizes:
        label = f"{width}x{layers}"
        table = compare_models(
            args.dataset,
            ["transformer"],
            out=out / label,
            outcomes=args.outcomes,
            world_seed=args.world_seed,
            settings={"transformer": {"dim": width, "layers": layers, "hidden": (2 * width,)}},
        )
        (row,) = table["models"]
        rows[label] = row
        bundles[label] = out / label / "transformer"
        if table["outcomes"]:
            policies = table["outcomes"]["policies"]
            rows[label]["outcome"] = policies["transformer"]
            heuristic = policies["heuristic"]
    latency = {label: kernel_stream(b, args.dataset, args.rounds) for label, b in bundles.items()}
    print(f"transformer sizes on {args.dataset} (4 heads, feed-forward 2x width), bundles in {out}")
    print(
        f"{'size':<6} {'exact':>6} {'NLL':>6} {'ECE':>6} {'train s':>8} {'onnx MB':>8}  "
        "outcomes | one decision, kernel stream: median [range] of rounds"
    )
    for label, row in rows.items():
        outcome = ""
        if "outcome" in row:
            p, c = row["outcome"]["pass_rate"], row["outcome"]["cost_per_pass"]
            outcome = f"{100 * p['value']:.1f}% at ${c['value']:.3f} a pass"
        print(
            f"{label:<6} {row['exact_match']:>6.3f} {row['nll']:>6.3f} {row['ece']:>6.3f} "
            f"{row['train_seconds']:>8.1f} {row['onnx_bytes'] / 1e6:>8.2f}  {outcome} | "
            f"{latency[label]}"
        )
    if heuristic is not None:
        p, c = heuristic["pass_rate"], heuristic["cost_per_pass"]
        print(f"heuristic on the same issues: {100 * p['value']:.1f}% at ${c['value']:.3f} a pass")
    for label, line in latency.items():
        p99 = float(line.split("p99", 1)[1].split()[0])
        print(f"target p99 <= 1 ms, {label} (median round): {'met' if p99 <= 1000 else 'NOT met'}")
    (out / "sizes.json").write_text(json.dumps({"rows": rows, "latency": latency}, indent=2))


if __name__ == "__main__":
    main()
