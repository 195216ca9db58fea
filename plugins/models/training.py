"""``planner train``: dataset → trained, calibrated, evaluated ``mlp`` or ``joint`` bundle.

AdamW with early stopping on validation loss; seeded and deterministic on CPU; optional
balanced class weights; a progress bar; feasibility checks that stop with a clear message
(a NaN/inf loss or gradient, a validation loss not below the uniform baseline); temperature
scaling fitted on the validation split with ECE before and after; metrics on every split for the
model and for the ``heuristic`` on the same rows. torch is imported here, never by the kernel
path.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
import numpy.typing as npt

from swarm_planner.core.action_space import HEADS, ActionSpace
from swarm_planner.core.bundle import git_revision, seal, write_json
from swarm_planner.core.calibration import fit_temperature, masked_softmax
from swarm_planner.core.contracts import PlannerInput, dump
from swarm_planner.core.dataset import DatasetError, DatasetRow, read_meta, read_split_rows
from swarm_planner.core.errors import PlannerError
from swarm_planner.core.evaluation import policy_probs
from swarm_planner.core.heuristic import HeuristicRules
from swarm_planner.core.jsonconv import json_field, positive
from swarm_planner.core.metrics import head_index, score
from swarm_planner.core.progress import Progress
from swarm_planner.plugins.encoders.compositional import CompositionalEncoder, CompositionalOptions

SPLITS = ("train", "val", "test")


class TrainingError(PlannerError, RuntimeError):
    """Training stopped on a failed feasibility check; the message says which and why."""


@attrs.frozen
class TrainConfig:
    """Everything that decides the trained model; stored in the bundle's metadata."""

    model: Literal["mlp", "joint"] = "mlp"
    dim: int = json_field(default=32, validator=positive)
    hidden: tuple[int, ...] = (128, 64)
    lr: float = 3e-3
    weight_decay: float = 1e-4
    batch_size: int = json_field(default=256, validator=positive)
    max_epochs: int = json_field(default=40, validator=positive)
    patience: int = json_field(default=4, validator=positive)
    seed: int = 0
    class_weights: bool = False
    encoder: CompositionalOptions = attrs.field(factory=CompositionalOptions)


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
    progress: Progress | None = None,
) -> TrainResult:
    """Train, calibrate, evaluate and write a bundle to ``out``."""
    import torch

    from swarm_planner.plugins.models.nets import PlannerNet, masked_log_softmax

    config = config or TrainConfig()
    started = time.perf_counter()
    meta = read_meta(dataset, verify=True)
    splits, space = load_splits(dataset)
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
    )
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)

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
    generator = torch.Generator().manual_seed(config.seed)
    best_loss, best_state, best_epoch, stale = math.inf, None, -1, 0
    history: list[dict[str, float]] = []
    n_train = len(data["train"])
    for epoch in range(config.max_epochs):
        net.train()
        order = torch.randperm(n_train, generator=generator)
        total = 0.0
        for b, start in enumerate(range(0, n_train, config.batch_size)):
            rows = order[start : start + config.batch_size]
            loss = loss_of(tuple(t[rows] for t in train_t))
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"the training loss became {loss.item()} at epoch {epoch}, batch {b}; "
                    "lower --lr or check the dataset for extreme values"
                )
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            for name, param in net.named_parameters():
                if param.grad is not None and not torch.isfinite(param.grad).all():
                    raise TrainingError(
                        f"a non-finite gradient appeared in {name} at epoch {epoch}, batch {b}"
                    )
            optimizer.step()
            total += loss.item() * len(rows)
        net.eval()
        with torch.no_grad():
            val_loss = float(loss_of(val_t).item())
        history.append({"epoch": epoch, "train_loss": total / n_train, "val_loss": val_loss})
        if progress is not None:
            progress(epoch + 1, config.max_epochs)
        if val_loss < best_loss - 1e-5:
            best_loss, best_epoch, stale = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= config.patience:
                break
    assert best_state is not None
    net.load_state_dict(best_state)
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
            "dataset_hash": meta.dataset_hash,
            "dataset": {
                "example_count": meta.example_count,
                "n_similar_runs": meta.n_similar_runs,
                "universe_id": meta.universe_id,
            },
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
