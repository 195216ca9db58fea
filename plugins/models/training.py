"""``planner train``: dataset → trained, calibrated, evaluated ``mlp`` or ``joint`` bundle.

AdamW with early stopping on validation loss; seeded and deterministic on CPU; optional
balanced class weights; a progress bar; feasibility checks that stop with a clear message
(a NaN/inf loss or gradient, a validation loss not below the uniform baseline); temperature
scaling fitted on the validation split with ECE before and after; metrics on every split for the
model and for the ``heuristic`` on the same rows. torch is imported here, never by the kernel
path.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
import numpy.typing as npt

from swarm_planner.core.action_space import HEADS, ActionSpace
from swarm_planner.core.bundle import git_revision, seal, write_json
from swarm_planner.core.calibration import fit_temperature, masked_softmax
from swarm_planner.core.canonical import canonical_json
from swarm_planner.core.contracts import PlannerInput, dump
from swarm_planner.core.dataset import DatasetError, DatasetRow, read_meta, read_split_rows
from swarm_planner.core.evaluation import policy_probs
from swarm_planner.core.heuristic import HeuristicRules
from swarm_planner.core.jsonconv import json_field, positive
from swarm_planner.core.metrics import head_index, score
from swarm_planner.core.progress import Progress
from swarm_planner.plugins.encoders.compositional import CompositionalEncoder, CompositionalOptions
from swarm_planner.plugins.models.fitting import LoopConfig, TrainingError, fit

SPLITS = ("train", "val", "test")


@attrs.frozen
class TrainConfig:
    """Everything that decides the trained model; stored in the bundle's metadata."""

    model: Literal["mlp", "joint", "transformer", "mlp-ar"] = "mlp"
    dim: int = json_field(default=32, validator=positive)
    """The embedding width (the transformer's model width: a multiple of ``heads``)."""
    hidden: tuple[int, ...] = (128, 64)
    """The trunk's layer widths (the transformer: its feed-forward width, first entry)."""
    layers: int = json_field(default=2, validator=positive)
    """Transformer layers (transformer only)."""
    heads: int = json_field(default=4, validator=positive)
    """Attention heads (transformer only)."""

    @classmethod
    def for_model(cls, model: str, **settings: Any) -> TrainConfig:
        """A config for ``model`` with its own defaults where ``settings`` are silent: the
        transformer's width is 64 with a feed-forward of 128 (the others: 32, trunk 128, 64)."""
        own = TRANSFORMER_DEFAULTS if model == "transformer" else {}
        return cls(model=model, **{**own, **settings})  # type: ignore[arg-type]

    lr: float = 3e-3
    weight_decay: float = 1e-4
    batch_size: int = json_field(default=256, validator=positive)
    max_epochs: int = json_field(default=40, validator=positive)
    patience: int = json_field(default=4, validator=positive)
    seed: int = 0
    class_weights: bool = False
    encoder: CompositionalOptions = attrs.field(factory=CompositionalOptions)


TRANSFORMER_DEFAULTS: dict[str, Any] = {"dim": 64, "hidden": (128,), "lr": 1e-3}
"""Where a transformer starts (a pre-norm encoder trains best with a gentler rate)."""


@attrs.frozen
class Encoded:
    """One split, encoded: padded ids/weights, masks and target tuple indices."""

    ids: npt.NDArray[np.int64]
    weights: npt.NDArray[np.float32]
    mask: npt.NDArray[np.bool_]
    targets: npt.NDArray[np.int64]
    inputs: tuple[PlannerInput, ...]

    def __len__(self) -> int:
        return len(self.targets)


@attrs.frozen
class TrainResult:
    out: str
    metrics: dict[str, Any]
    seconds: float


def load_splits(folder: Path | str) -> tuple[dict[str, list[DatasetRow]], ActionSpace]:
    """Rows by split, and the one action space they all share (every split non-empty)."""
    try:
        splits, space = read_split_rows(folder)
    except DatasetError as exc:
        raise TrainingError(str(exc)) from exc
    for name in SPLITS:
        if not splits[name]:
            raise TrainingError(
                f"{folder}: the {name} split is empty (see `planner check-dataset`)"
            )
    return splits, space


@attrs.frozen
class DatasetSource:
    """The rows a classification policy trains on, and what the bundle records about them."""

    splits: dict[str, list[DatasetRow]]
    space: ActionSpace
    dataset_hash: str
    example_count: int
    n_similar_runs: int | None
    universe_id: str | None
    labels: str


def dataset_source(folder: Path | str) -> DatasetSource:
    """An imitation dataset's rows, or an outcome dataset's winners as rows."""
    from swarm_planner.core.outcomes import (
        is_outcome_dataset,
        read_outcome_meta,
        read_outcome_rows,
        winner_rows,
    )

    if not is_outcome_dataset(folder):
        meta = read_meta(folder, verify=True)
        splits, space = load_splits(folder)
        return DatasetSource(
            splits,
            space,
            meta.dataset_hash,
            meta.example_count,
            meta.n_similar_runs,
            meta.universe_id,
            "executed_plan",
        )
    try:
        outcome_meta = read_outcome_meta(folder)
        rows, space = read_outcome_rows(folder)
    except DatasetError as exc:
        raise TrainingError(str(exc)) from exc
    splits = {name: winner_rows(part) for name, part in rows.items()}
    for name in SPLITS:
        if not splits[name]:
            raise TrainingError(
                f"{folder}: no row of the {name} split has a winner (a candidate that passed)"
            )
    return DatasetSource(
        splits,
        space,
        outcome_meta.dataset_hash,
        outcome_meta.example_count,
        None,
        None,
        "best_of_k_winner",
    )


def start_from(
    net: Any,
    bundle: Path,
    *,
    model_type: str,
    layers: dict[str, Any],
    encoder: CompositionalEncoder,
    space: ActionSpace,
) -> None:
    """Load a bundle's weights into ``net`` (fine-tuning); the bundle must describe this very
    network: its model type, its encoder options, its action space and its layer sizes
    (``layers``: the keys of its config.json ``model`` section that size the network)."""
    import torch

    from swarm_planner.core.bundle import BundleError, load_served, read_bundle_json

    try:
        served = load_served(bundle, required=("model.pt",))
    except BundleError as exc:
        raise TrainingError(f"--init {bundle}: {exc}") from exc
    problems = []
    if served.model_type != model_type:
        problems.append(f"it is a {served.model_type} bundle, not {model_type}")
    if canonical_json(served.config.encoder.options) != canonical_json(encoder.config()["options"]):
        problems.append("its encoder options differ from this training's")
    if not served.space.equivalent(space):
        problems.append("its action space differs from the dataset's")
    theirs = read_bundle_json(bundle, "config.json").get("model", {})
    if any(canonical_json(theirs.get(k)) != canonical_json(v) for k, v in layers.items()):
        problems.append("its layer sizes differ from this training's")
    if problems:
        raise TrainingError(f"--init {bundle}: cannot start from it: {'; '.join(problems)}")
    state = torch.load(bundle / "model.pt", map_location="cpu", weights_only=True)
    net.load_state_dict(state)


def encode_rows(
    rows: list[DatasetRow], encoder: CompositionalEncoder, space: ActionSpace
) -> Encoded:
    index = {a: i for i, a in enumerate(space.all_actions())}
    inputs = tuple(r.planner_input for r in rows)
    batch = encoder.encode_batch(inputs)
    ids, weights = batch.padded()
    targets = np.array([index[r.label_action.action] for r in rows], dtype=np.int64)
    bad = np.flatnonzero(~batch.mask[np.arange(len(rows)), targets])
    if bad.size:
        row = rows[int(bad[0])]
        raise TrainingError(
            f"row {row.run_id}: label {row.label_action.action.text} is invalid for job type "
            f"{row.planner_input.job_type!r}; {bad.size} such rows (rebuild the dataset)"
        )
    return Encoded(ids, weights, batch.mask, targets, inputs)


def _uniform_nll(mask: npt.NDArray[np.bool_]) -> float:
    return float(np.log(mask.sum(axis=1)).mean())


def train(
    dataset: Path | str,
    out: Path | str,
    config: TrainConfig | None = None,
    *,
    init: Path | str | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train, calibrate, evaluate and write a bundle to ``out``.

    ``dataset`` is an imitation dataset (labels: executed plans) or an outcome dataset (labels:
    the bench's winners, rows without one left out). ``init``: a bundle of the same model type,
    encoder and action space whose weights training starts from (fine-tuning a Stage-A bundle
    on bench winners)."""
    import torch

    from swarm_planner.plugins.models.nets import PlannerNet, masked_log_softmax

    config = config or TrainConfig()
    started = time.perf_counter()
    source = dataset_source(dataset)
    splits, space = source.splits, source.space
    encoder = CompositionalEncoder(config.encoder)
    data = {name: encode_rows(rows, encoder, space) for name, rows in splits.items()}

    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    torch.use_deterministic_algorithms(True)
    heads = head_index(space)
    net = PlannerNet(
        kind=config.model,
        n_features=encoder.n_features,
        head_index=heads,
        head_sizes=[len(space.head_bins(h)) for h in HEADS],
        dim=config.dim,
        hidden=config.hidden,
        layers=config.layers,
        heads=config.heads,
    )
    if init is not None:
        start_from(
            net,
            Path(init),
            model_type=config.model,
            layers={
                "dim": config.dim,
                "hidden": list(config.hidden),
                **(
                    {"layers": config.layers, "heads": config.heads}
                    if config.model == "transformer"
                    else {}
                ),
            },
            encoder=encoder,
            space=space,
        )

    def tensors(e: Encoded) -> tuple[torch.Tensor, ...]:
        return (
            torch.as_tensor(e.ids),
            torch.as_tensor(e.weights),
            torch.as_tensor(e.mask),
            torch.as_tensor(e.targets),
        )

    train_t, val_t = tensors(data["train"]), tensors(data["val"])
    class_weight = None
    if config.class_weights:
        counts = np.bincount(data["train"].targets, minlength=heads.shape[0]).astype(np.float64)
        used = counts > 0
        w = np.zeros_like(counts)
        w[used] = counts[used].sum() / (used.sum() * counts[used])
        class_weight = torch.as_tensor(np.clip(w, 0.2, 5.0), dtype=torch.float32)

    def loss_of(batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        ids, weights, mask, targets = batch
        logp = masked_log_softmax(net.logits(ids, weights), mask)
        picked = -logp.gather(1, targets.unsqueeze(1)).squeeze(1)
        if class_weight is None:
            return picked.mean()
        w = class_weight[targets]
        return (picked * w).sum() / w.sum()

    uniform_val = _uniform_nll(data["val"].mask)
    fitted = fit(
        net,
        train_t,
        val_t,
        loss_of,
        LoopConfig.of(config),
        progress=progress,
    )
    best_loss, best_epoch, history = fitted.best_loss, fitted.best_epoch, fitted.history
    if not best_loss < uniform_val:
        raise TrainingError(
            f"the best validation loss {best_loss:.4f} is not below the uniform baseline "
            f"{uniform_val:.4f} (log of the valid actions): the labels are not learnable from "
            "these inputs; check the dataset with `planner check-dataset`"
        )

    logits: dict[str, npt.NDArray[np.float64]] = {}
    with torch.no_grad():
        for name, e in data.items():
            logits[name] = (
                net.logits(torch.as_tensor(e.ids), torch.as_tensor(e.weights)).double().numpy()
            )
    temperature = fit_temperature(logits["val"], data["val"].mask, data["val"].targets)
    heuristic = HeuristicRules()
    metrics: dict[str, Any] = {"splits": {}}
    for name, e in data.items():
        raw = score(masked_softmax(logits[name], e.mask, 1.0), e.targets, space)
        calibrated = score(masked_softmax(logits[name], e.mask, temperature), e.targets, space)
        baseline = score(policy_probs(heuristic, e.inputs, space), e.targets, space)
        metrics["splits"][name] = {
            "model": calibrated.to_json(),
            "model_uncalibrated": raw.to_json(),
            "heuristic": baseline.to_json(),
        }
    seconds = time.perf_counter() - started
    metrics["training"] = {
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "best_val_loss": best_loss,
        "uniform_val_loss": uniform_val,
        "history": history,
        "seconds": seconds,
        "rows": {name: len(e) for name, e in data.items()},
    }
    val = metrics["splits"]["val"]
    metrics["calibration"] = {
        "temperature": temperature,
        "val_ece_before": val["model_uncalibrated"]["ece"],
        "val_ece_after": val["model"]["ece"],
        "test_ece_before": metrics["splits"]["test"]["model_uncalibrated"]["ece"],
        "test_ece_after": metrics["splits"]["test"]["model"]["ece"],
    }

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale_file in ("model.onnx", "validation.json"):
        (out / stale_file).unlink(missing_ok=True)
    torch.save(net.state_dict(), out / "model.pt")
    write_json(
        out / "config.json",
        {
            "encoder": encoder.config(),
            "model": {
                "type": config.model,
                "dim": config.dim,
                "hidden": list(config.hidden),
                **(
                    {"layers": config.layers, "heads": config.heads}
                    if config.model == "transformer"
                    else {}
                ),
                "n_features": encoder.n_features,
                "n_actions": int(heads.shape[0]),
                "head_sizes": [len(space.head_bins(h)) for h in HEADS],
            },
        },
    )
    write_json(out / "action_space.json", dump(space))
    write_json(
        out / "calibration.json",
        {"method": "temperature_scaling", **metrics["calibration"]},
    )
    write_json(out / "metrics.json", metrics)
    seal(
        out,
        {
            "model_type": config.model,
            "dataset_hash": source.dataset_hash,
            "dataset": {
                "example_count": source.example_count,
                "n_similar_runs": source.n_similar_runs,
                "universe_id": source.universe_id,
                "labels": source.labels,
            },
            "init_from": None if init is None else str(init),
            "training_config": attrs.asdict(config),
            "versions": {"torch": torch.__version__, "numpy": np.__version__},
            "git_revision": git_revision(),
            "metrics": {
                split: {
                    k: metrics["splits"][split]["model"][k] for k in ("exact_match", "nll", "ece")
                }
                for split in SPLITS
            },
        },
    )
    return TrainResult(str(out), metrics, seconds)
