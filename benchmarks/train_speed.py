"""Benchmark: training time and quality of the mlp and joint policies on 16,000 rows.

Simulates `planner simulate --issues 20000 --seed 1`, builds its dataset (train split = 16,000
rows), then trains each model and prints wall time (encoding, fitting, calibration and
evaluation included), epochs, and the test-split figures the issue targets: exact match against
the heuristic's, post-calibration ECE, and action collapse.

    python benchmarks/train_speed.py                       # simulate + build + train both
    python benchmarks/train_speed.py --dataset DIR         # reuse a dataset

Target (issue 4): the mlp trains on 16,000 rows in <= 60 s on this 2-core CPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=None)
    parser.add_argument("--models", nargs="+", default=["mlp", "joint"])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    import torch

    from swarm_planner.core.dataset import build_dataset
    from swarm_planner.plugins.models.training import TrainConfig, train
    from swarm_planner.sim.generate import SimConfig, simulate

    work = Path(tempfile.mkdtemp(prefix="planner-train-bench-"))
    dataset = args.dataset
    if dataset is None:
        simulate(work / "root", SimConfig(runs=20_000, seed=args.seed))
        dataset = work / "dataset"
        build_dataset(work / "root", dataset)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, dataset {dataset}")
    header = (
        "model",
        "train rows",
        "epochs",
        "seconds",
        "s/epoch",
        "exact",
        "heur exact",
        "ECE before",
        "ECE after",
        "missed >1%",
    )
    print("  ".join(f"{h:>10}" for h in header))
    for model in args.models:
        started = time.perf_counter()
        result = train(dataset, work / model, TrainConfig(model=model))  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        m = result.metrics
        test = m["splits"]["test"]
        epochs = m["training"]["epochs_run"]
        cells = (
            model,
            m["training"]["rows"]["train"],
            epochs,
            f"{seconds:.1f}",
            f"{seconds / epochs:.2f}",
            f"{test['model']['exact_match']:.3f}",
            f"{test['heuristic']['exact_match']:.3f}",
            f"{m['calibration']['test_ece_before']:.4f}",
            f"{m['calibration']['test_ece_after']:.4f}",
            len(test["model"]["label_actions_over_1pct_missed"]),
        )
        print("  ".join(f"{c!s:>10}" for c in cells))


if __name__ == "__main__":
    main()
