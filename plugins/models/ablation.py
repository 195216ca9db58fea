"""The history-size ablation (PRODUCT.md point 4): is retrieving N similar runs worth it?

For each N, the dataset is rebuilt from the kernel root its ``meta.json`` names, with the same
retrieval options, then a model is trained and scored on the test split next to the heuristic.
Rebuilding (rather than truncating a large-N history) keeps each variant exactly what
``build-dataset --n-similar N`` would give.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from swarm_planner.core.dataset import DatasetError, DatasetOptions, build_dataset, read_meta
from swarm_planner.core.progress import Progress
from swarm_planner.plugins.models.training import TrainConfig, train


def ablate(
    dataset: Path | str,
    sizes: Sequence[int],
    *,
    model: str = "mlp",
    out: Path | None = None,
    config: TrainConfig | None = None,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """One row per N: test metrics of the model and of the heuristic, and the dataset hash."""
    if not sizes or any(n < 0 for n in sizes):
        raise ValueError(f"history sizes must be a non-empty list of N >= 0, got {list(sizes)}")
    meta = read_meta(dataset)
    if meta.read_report.root is None:
        raise DatasetError(
            f"{dataset}/meta.json: read_report.root: names no kernel root to rebuild from"
        )
    root = Path(meta.read_report.root)
    if not (root / ".cyntra" / "archives").is_dir():
        raise DatasetError(
            f"{dataset}/meta.json names the kernel root {root}, which is not there any more; "
            "the ablation rebuilds the dataset from it"
        )
    out = Path(out) if out is not None else Path(dataset) / "ablate"
    base = config or TrainConfig()
    base = TrainConfig(**{**base.__dict__, "model": model}) if model != base.model else base
    table = []
    for step, n in enumerate(sizes):
        options = DatasetOptions(
            n_similar=n,
            scorer=meta.retrieval.scorer,
            window=meta.retrieval.window,
            include_world=meta.include_world,
            universe_id=meta.universe_id,
        )
        built = build_dataset(root, out / f"n{n}" / "dataset", options)
        result = train(out / f"n{n}" / "dataset", out / f"n{n}" / "bundle", base)
        test = result.metrics["splits"]["test"]
        table.append(
            {
                "n_similar": n,
                "dataset_hash": built.meta["dataset_hash"],
                "model": model,
                "exact_match": test["model"]["exact_match"],
                "head_accuracy": test["model"]["head_accuracy"],
                "nll": test["model"]["nll"],
                "ece": test["model"]["ece"],
                "heuristic_exact_match": test["heuristic"]["exact_match"],
                "train_seconds": result.seconds,
            }
        )
        if progress is not None:
            progress(step + 1, len(sizes))
    return table
