"""``planner train --model value``: an outcome model from a best-of-K outcome dataset.

For every action tuple the network predicts P(pass), the expected wall time and the expected
cost. It learns only from the actions that were tried: each row contributes one term per tried
candidate (a masked loss); an untried action is unknown, not a failure. Issue and action meet in
one shared representation: the issue's bag of ids goes through the same embedding-bag trunk as
the classification policies, each action through a learned embedding of its bins (one per head,
swarm × candidates and swarm × minutes crossings, and the whole tuple), and a small network
reads their sum; so what the bench learns about ``speculate_vote|2|…`` on one issue informs the
neighbouring actions and issues. P(pass) is temperature-scaled on the validation split (ECE
before and after in the bundle). The bundle is exported to ONNX at once (softplus heads, the
temperature and the output scales inside the graph) and checked against torch on a probe.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
import numpy.typing as npt

from swarm_planner.core.action_space import HEADS, ActionSpace
from swarm_planner.core.bundle import git_revision, seal, write_json
from swarm_planner.core.contracts import dump
from swarm_planner.core.dataset import DatasetError
from swarm_planner.core.jsonconv import json_field, positive
from swarm_planner.core.metrics import expected_calibration_error, reliability_table
from swarm_planner.core.outcomes import OutcomeRow, read_outcome_meta, read_outcome_rows
from swarm_planner.core.progress import Progress
from swarm_planner.plugins.encoders.compositional import CompositionalEncoder, CompositionalOptions
from swarm_planner.plugins.models.fitting import LoopConfig, TrainingError, fit

SPLITS = ("train", "val", "test")
VALUE_OUTPUTS = ("p_pass", "duration_ms", "cost_usd")


@attrs.frozen
class ValueConfig:
    """Everything that decides the trained outcome model; stored in the bundle's metadata."""

    dim: int = json_field(default=32, validator=positive)
    hidden: tuple[int, ...] = (128, 64)
    action_dim: int = json_field(default=64, validator=positive)
    reader: Literal["bag", "transformer"] = "bag"
    """How the issue is read: the embedding bag (with ``hidden``'s trunk) or the transformer
    policy's token encoder (``dim`` wide, ``layers``, ``heads``, feed-forward ``hidden[0]``)."""
    layers: int = json_field(default=2, validator=positive)
    heads: int = json_field(default=4, validator=positive)
    lr: float = 3e-3
    weight_decay: float = 1e-4
    batch_size: int = json_field(default=128, validator=positive)
    max_epochs: int = json_field(default=60, validator=positive)
    patience: int = json_field(default=6, validator=positive)
    seed: int = 0
    regression_weight: float = 0.5
    encoder: CompositionalOptions = attrs.field(factory=CompositionalOptions)


def _reader_layers(config: ValueConfig) -> dict[str, Any]:
    """What sizes a transformer reader (recorded in config.json, checked by --init)."""
    if config.reader != "transformer":
        return {}
    return {"reader": "transformer", "layers": config.layers, "heads": config.heads}


def action_features(space: ActionSpace) -> npt.NDArray[np.float32]:
    """``[A, F]`` one-hot features of every action tuple: each head's bin, swarm × candidates,
    swarm × minutes, and the tuple itself."""
    actions = space.all_actions()
    columns: dict[str, int] = {}

    def col(name: str) -> int:
        return columns.setdefault(name, len(columns))

    cells: list[list[int]] = []
    for a in actions:
        parts = a.text.split("|")
        names = [f"{h}={v}" for h, v in zip(HEADS, parts, strict=True)]
        names += [f"swarm_candidates={parts[0]}|{parts[1]}", f"swarm_minutes={parts[0]}|{parts[2]}"]
        names.append(f"tuple={a.text}")
        cells.append([col(n) for n in names])
    phi = np.zeros((len(actions), len(columns)), dtype=np.float32)
    for i, row in enumerate(cells):
        phi[i, row] = 1.0
    return phi


@attrs.frozen
class OutcomeTensors:
    """One split: padded ids/weights, masks, and the tried candidates (index −1 = padding)."""

    ids: npt.NDArray[np.int64]
    weights: npt.NDArray[np.float32]
    mask: npt.NDArray[np.bool_]
    tried: npt.NDArray[np.int64]
    passed: npt.NDArray[np.float32]
    duration: npt.NDArray[np.float32]
    cost: npt.NDArray[np.float32]
    known: npt.NDArray[np.bool_]
    """The candidate's duration and cost are known (the field may leave them null)."""

    def __len__(self) -> int:
        return int(self.tried.shape[0])


def encode_outcomes(
    rows: list[OutcomeRow], encoder: CompositionalEncoder, space: ActionSpace, k: int
) -> OutcomeTensors:
    index = {a: i for i, a in enumerate(space.all_actions())}
    batch = encoder.encode_batch([r.planner_input for r in rows])
    ids, weights = batch.padded()
    n = len(rows)
    tried = np.full((n, k), -1, dtype=np.int64)
    passed = np.zeros((n, k), dtype=np.float32)
    duration = np.zeros((n, k), dtype=np.float32)
    cost = np.zeros((n, k), dtype=np.float32)
    known = np.zeros((n, k), dtype=bool)
    for r, row in enumerate(rows):
        for c, cand in enumerate(row.candidates[:k]):
            tried[r, c] = index[cand.joint_action]
            passed[r, c] = float(cand.verified)
            if cand.duration_ms is not None and cand.cost_usd is not None:
                duration[r, c] = cand.duration_ms / 60_000.0
                cost[r, c] = cand.cost_usd
                known[r, c] = True
    return OutcomeTensors(ids, weights, batch.mask, tried, passed, duration, cost, known)


def fit_platt(
    z: npt.NDArray[np.float64], y: npt.NDArray[np.bool_], *, iterations: int = 50
) -> tuple[float, float]:
    """Platt scaling: the ``a, b`` of ``sigmoid(a·z + b)`` with the least log loss on ``(z, y)``
    (Newton steps with a small ridge). Unlike a temperature alone it also removes a bias: a model
    that is over- or under-confident by a constant shifts back."""
    a, b = 1.0, 0.0
    target = y.astype(np.float64)
    for _ in range(iterations):
        p = _sigmoid(a * z + b)
        w = np.maximum(p * (1.0 - p), 1e-9)
        g = np.array([np.sum((p - target) * z) + 1e-3 * (a - 1.0), np.sum(p - target) + 1e-3 * b])
        h = np.array([[np.sum(w * z * z) + 1e-3, np.sum(w * z)], [np.sum(w * z), np.sum(w) + 1e-3]])
        step = np.linalg.solve(h, g)
        a, b = a - float(step[0]), b - float(step[1])
        if float(np.max(np.abs(step))) < 1e-9:
            break
    return a, b


def _sigmoid(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-z))
    return out


@attrs.frozen
class ValueResult:
    out: str
    metrics: dict[str, Any]
    seconds: float


def train_value(
    dataset: Path | str,
    out: Path | str,
    config: ValueConfig | None = None,
    *,
    init: Path | str | None = None,
    replay: Sequence[Path | str] = (),
    progress: Progress | None = None,
) -> ValueResult:
    """Train, calibrate, export and write a value bundle to ``out``. ``init``: a value bundle
    of the same encoder, action space and sizes to start from (fine-tuning: a pipeline's next
    stage starts from what the last one learned). ``replay``: earlier outcome datasets whose
    train rows join this one's (rehearsal, so that fine-tuning on a new world does not forget
    the old one); validation, calibration and the test figures stay this dataset's own."""
    import torch

    from swarm_planner.plugins.models.nets import ValueNet

    config = config or ValueConfig()
    started = time.perf_counter()
    try:
        meta = read_outcome_meta(dataset)
        rows, space = read_outcome_rows(dataset)
    except DatasetError as exc:
        raise TrainingError(str(exc)) from exc
    for name in SPLITS:
        if not rows[name]:
            raise TrainingError(f"{dataset}: the {name} split of the outcome dataset is empty")
    replayed = 0
    for earlier in replay:
        try:
            more, their_space = read_outcome_rows(earlier)
        except DatasetError as exc:
            raise TrainingError(f"replay {earlier}: {exc}") from exc
        if not their_space.equivalent(space):
            raise TrainingError(f"replay {earlier}: its action space differs from {dataset}'s")
        rows["train"] = [*rows["train"], *more["train"]]
        replayed += len(more["train"])
    k = max(len(r.candidates) for part in rows.values() for r in part)
    encoder = CompositionalEncoder(config.encoder)
    data = {name: encode_outcomes(part, encoder, space, k) for name, part in rows.items()}
    train_d = data["train"]
    duration_scale = float(train_d.duration[train_d.known].mean()) if train_d.known.any() else 1.0
    cost_scale = float(train_d.cost[train_d.known].mean()) if train_d.known.any() else 1.0
    duration_scale = max(duration_scale, 1e-6)
    cost_scale = max(cost_scale, 1e-6)

    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    torch.use_deterministic_algorithms(True)
    phi = action_features(space)
    net = ValueNet(
        n_features=encoder.n_features,
        action_features=phi,
        dim=config.dim,
        hidden=config.hidden,
        action_dim=config.action_dim,
        reader=config.reader,
        layers=config.layers,
        heads=config.heads,
    )
    if init is not None:
        from swarm_planner.plugins.models.training import start_from

        start_from(
            net,
            Path(init),
            model_type="value",
            layers={
                "dim": config.dim,
                "hidden": list(config.hidden),
                "action_dim": config.action_dim,
                **_reader_layers(config),
            },
            encoder=encoder,
            space=space,
        )

    def tensors(d: OutcomeTensors) -> tuple[torch.Tensor, ...]:
        return (
            torch.as_tensor(d.ids),
            torch.as_tensor(d.weights),
            torch.as_tensor(d.tried),
            torch.as_tensor(d.passed),
            torch.as_tensor(d.duration / duration_scale),
            torch.as_tensor(d.cost / cost_scale),
            torch.as_tensor(d.known),
        )

    def loss_of(batch: Any) -> torch.Tensor:
        ids, weights, tried, passed, duration, cost, known = batch
        used = tried >= 0
        picked: torch.Tensor = net(ids, weights, tried.clamp(min=0))  # [B, K, 3]
        bce = torch.nn.functional.binary_cross_entropy_with_logits(
            picked[..., 0], passed, reduction="none"
        )
        n_used = used.sum().clamp(min=1)
        loss = (bce * used).sum() / n_used
        reg = known & used
        if bool(reg.any()):
            d_err = (torch.nn.functional.softplus(picked[..., 1]) - duration) ** 2
            c_err = (torch.nn.functional.softplus(picked[..., 2]) - cost) ** 2
            loss = loss + config.regression_weight * ((d_err + c_err) * reg).sum() / reg.sum()
        total: torch.Tensor = loss
        return total

    fitted = fit(
        net,
        tensors(train_d),
        tensors(data["val"]),
        loss_of,
        LoopConfig.of(config),
        progress=progress,
    )

    def raw(d: OutcomeTensors) -> npt.NDArray[np.float64]:
        with torch.no_grad():
            result: npt.NDArray[np.float64] = (
                net(torch.as_tensor(d.ids), torch.as_tensor(d.weights)).double().numpy()
            )
            return result

    outputs = {name: raw(d) for name, d in data.items()}

    def tried_logits(name: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        d = data[name]
        used = d.tried >= 0
        rows_i = np.repeat(np.arange(len(d)), d.tried.shape[1]).reshape(d.tried.shape)
        z = outputs[name][rows_i[used], d.tried[used], 0]
        return z, d.passed[used].astype(bool)

    z_val, y_val = tried_logits("val")
    scale, shift = fit_platt(z_val, y_val)
    metrics: dict[str, Any] = {"splits": {}}
    for name in SPLITS:
        z, y = tried_logits(name)
        d = data[name]
        used = d.tried >= 0
        reg = d.known & used
        rows_i = np.repeat(np.arange(len(d)), d.tried.shape[1]).reshape(d.tried.shape)
        pred = outputs[name][rows_i[reg], d.tried[reg]]
        dur_pred = np.logaddexp(0.0, pred[:, 1]) * duration_scale
        cost_pred = np.logaddexp(0.0, pred[:, 2]) * cost_scale
        before, after = _sigmoid(z), _sigmoid(scale * z + shift)
        metrics["splits"][name] = {
            "rows": len(d),
            "candidates": int(used.sum()),
            "pass_rate": float(y.mean()) if y.size else 0.0,
            "ece_before": expected_calibration_error(before, y),
            "ece": expected_calibration_error(after, y),
            "brier": float(np.mean((after - y) ** 2)) if y.size else 0.0,
            "duration_mae_min": float(np.abs(dur_pred - d.duration[reg]).mean())
            if reg.any()
            else None,
            "cost_mae_usd": float(np.abs(cost_pred - d.cost[reg]).mean()) if reg.any() else None,
            "reliability": reliability_table(after, y),
        }
    seconds = time.perf_counter() - started
    metrics["training"] = {
        "epochs_run": len(fitted.history),
        "best_epoch": fitted.best_epoch,
        "best_val_loss": fitted.best_loss,
        "history": fitted.history,
        "seconds": seconds,
        "candidates_per_row": k,
    }
    metrics["calibration"] = {
        "temperature": 1.0 / scale if scale > 0 else 1.0,
        "platt": {"scale": scale, "shift": shift},
        "val_ece_before": metrics["splits"]["val"]["ece_before"],
        "val_ece_after": metrics["splits"]["val"]["ece"],
        "test_ece_before": metrics["splits"]["test"]["ece_before"],
        "test_ece_after": metrics["splits"]["test"]["ece"],
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("model.onnx", "validation.json", "model.pt"):
        (out / stale).unlink(missing_ok=True)
    write_json(
        out / "config.json",
        {
            "encoder": encoder.config(),
            "model": {
                "type": "value",
                "dim": config.dim,
                "hidden": list(config.hidden),
                "action_dim": config.action_dim,
                **_reader_layers(config),
                "n_features": encoder.n_features,
                "n_actions": len(space.all_actions()),
                "outputs": list(VALUE_OUTPUTS),
                "duration_scale_min": duration_scale,
                "cost_scale_usd": cost_scale,
            },
        },
    )
    write_json(out / "action_space.json", dump(space))
    write_json(
        out / "calibration.json", {"method": "temperature_scaling", **metrics["calibration"]}
    )
    write_json(out / "metrics.json", metrics)
    validation = _export(net, out, data["test"], (scale, shift), duration_scale, cost_scale)
    write_json(out / "validation.json", validation)
    torch.save(net.state_dict(), out / "model.pt")  # what a later stage fine-tunes from
    seal(
        out,
        {
            "model_type": "value",
            "served_by": ["value"],
            "dataset_hash": meta.dataset_hash,
            "dataset": {
                "example_count": meta.example_count,
                "kind": "outcomes",
                "bench": meta.bench,
            },
            "training_config": attrs.asdict(config),
            "init_from": None if init is None else str(init),
            "replayed": {"datasets": [str(p) for p in replay], "train_rows": replayed},
            "versions": {"torch": torch.__version__, "numpy": np.__version__},
            "git_revision": git_revision(),
            "metrics": {
                split: {key: metrics["splits"][split][key] for key in ("ece", "brier")}
                for split in SPLITS
            },
        },
    )
    return ValueResult(str(out), metrics, seconds)


def _export(
    net: Any,
    out: Path,
    probe: OutcomeTensors,
    platt: tuple[float, float],
    duration_scale: float,
    cost_scale: float,
) -> dict[str, Any]:
    """Write ``model.onnx`` (ids, weights, mask → p_pass, duration_ms, cost_usd) and check it
    against torch on up to 256 probe rows."""
    import onnxruntime as ort
    import torch

    from swarm_planner.plugins.models.export import IR_VERSION, OPSET

    class Exported(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.scale, self.shift = float(platt[0]), float(platt[1])
            self.duration_ms = float(duration_scale * 60_000.0)
            self.cost_usd = float(cost_scale)

        def forward(
            self, ids: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            raw = self.net(ids, weights)
            zero = torch.zeros_like(raw[..., 0])
            p = torch.where(mask, torch.sigmoid(raw[..., 0] * self.scale + self.shift), zero)
            d = torch.where(
                mask, torch.nn.functional.softplus(raw[..., 1]) * self.duration_ms, zero
            )
            c = torch.where(mask, torch.nn.functional.softplus(raw[..., 2]) * self.cost_usd, zero)
            return p, d, c

    module = Exported().eval()
    n = min(256, len(probe))
    ids = torch.as_tensor(probe.ids[:n])
    weights = torch.as_tensor(probe.weights[:n])
    mask = torch.as_tensor(probe.mask[:n])
    path = out / "model.onnx"
    torch.onnx.export(
        module,
        (ids, weights, mask),
        str(path),
        input_names=["ids", "weights", "mask"],
        output_names=list(VALUE_OUTPUTS),
        dynamic_axes={
            "ids": {0: "batch", 1: "width"},
            "weights": {0: "batch", 1: "width"},
            "mask": {0: "batch"},
            **{name: {0: "batch"} for name in VALUE_OUTPUTS},
        },
        opset_version=OPSET,
        dynamo=False,
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {"ids": ids.numpy(), "weights": weights.numpy(), "mask": mask.numpy()})
    with torch.no_grad():
        want = [t.numpy() for t in module(ids, weights, mask)]
    diffs = [
        float(np.max(np.abs(g - w) / (1.0 + np.abs(w)))) for g, w in zip(got, want, strict=True)
    ]
    passed = max(diffs) < 1e-4
    if not passed:
        raise TrainingError(
            f"{path}: ONNX answers differ from torch by {max(diffs):.2e} (relative)"
        )
    return {
        "passed": passed,
        "probe": {"size": n},
        "max_rel_diff": dict(zip(VALUE_OUTPUTS, diffs, strict=True)),
        "onnx": {"bytes": path.stat().st_size, "opset": OPSET, "ir_version": IR_VERSION},
    }
