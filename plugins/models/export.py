"""``planner export``: a trained bundle → one self-contained ``model.onnx`` that ships.

The graph takes ``ids [B, L]`` (int64), ``weights [B, L]`` (float32) and ``mask [B, A]`` (bool)
and returns ``probs [B, A]``, ``action [B]`` (the chosen tuple's index) and ``confidence [B]``:
embedding gather and weighted sum, the trunk, one linear layer over action tuples, the validity
mask, the calibration temperature and the softmax are all inside the graph, so serving is
"encode, run, read". The ``mlp``'s four heads are folded into that one linear layer exactly (a
tuple's logit is the sum of its head logits, which is linear in the hidden state).

Weights are stored inside the file; the opset (17) and IR version (8) are set explicitly so
onnxruntime releases from 1.11 on load it. Before the bundle is resealed, torch and
onnxruntime are compared on a frozen probe set of at least 1,000 encoded inputs: max |Δprob|
≤ 1e-5 and full agreement on the chosen action and on abstention, else the export fails and
``validation.json`` says why.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from swarm_planner.core.bundle import (
    BUNDLE_FORMAT,
    EXPORTED_SERVER,
    caller_metadata,
    open_bundle,
    read_bundle_json,
    seal,
    write_json,
)
from swarm_planner.core.dataset import DatasetError, read_split_rows
from swarm_planner.core.errors import PlannerError
from swarm_planner.core.protocols import FeatureBatch, Features
from swarm_planner.plugins.models.torch_policy import REQUIRED_FILES, TorchPolicy

OPSET = 17
IR_VERSION = 8
INPUTS = ("ids", "weights", "mask")
OUTPUTS = ("probs", "action", "confidence")
PROBE_SIZE = 1000
MAX_ABS_DIFF = 1e-5


class ExportError(PlannerError, RuntimeError):
    """The export failed (validation.json in the bundle says why)."""


def _unexported(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata of the bundle without a graph: torch serves it again."""
    kept = caller_metadata(metadata)
    kept.pop("served_by", None)
    kept.pop("onnx", None)
    return kept


def probe_batch(dataset: Path | str, policy: TorchPolicy, size: int = PROBE_SIZE) -> FeatureBatch:
    """At least ``size`` encoded inputs from a dataset: test rows first, then val, then train;
    a dataset with fewer rows is cycled with the history cut short, so every probe differs."""
    try:
        splits, space = read_split_rows(dataset)
    except DatasetError as exc:
        raise ExportError(str(exc)) from exc
    if not space.equivalent(policy.space):
        raise ExportError(
            f"{dataset}: its rows' action space is not the one {policy.path} was trained on; "
            "probe the export with a dataset of this bundle's space"
        )
    rows = [*splits["test"], *splits["val"], *splits["train"]]
    import attrs

    from swarm_planner.core.contracts import History

    features: list[Features] = []
    round_ = 0
    while len(features) < size:
        for row in rows:
            planner_input = row.planner_input
            if round_:
                history = planner_input.history.last_n_similar_runs[: max(0, 8 - round_)]
                planner_input = attrs.evolve(planner_input, history=History(history))
            features.append(policy.encoder.encode(planner_input))
            if len(features) >= size:
                break
        round_ += 1
    return FeatureBatch.stack(features)


def _export_module(policy: TorchPolicy) -> Any:
    import torch
    from torch import nn

    net = policy.net

    class Exported(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            with torch.no_grad():
                if net.kind == "joint":
                    weight, bias = net.joint.weight.clone(), net.joint.bias.clone()
                else:
                    heads = [cast(nn.Linear, h) for h in net.heads]
                    pairs = list(zip(net.head_columns, heads, strict=True))
                    weight = torch.stack([h.weight[c] for c, h in pairs]).sum(dim=0)
                    bias = torch.stack([h.bias[c] for c, h in pairs]).sum(dim=0)
            self.out = nn.Linear(weight.shape[1], weight.shape[0])
            with torch.no_grad():
                self.out.weight.copy_(weight)
                self.out.bias.copy_(bias)
            self.register_buffer("inv_temperature", torch.tensor(1.0 / policy.temperature))

        def forward(
            self, ids: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            logits = self.out(self.net.encode(ids, weights)) * self.inv_temperature
            masked = torch.where(mask, logits, torch.full_like(logits, -1e9))
            probs = torch.softmax(masked, dim=-1)
            confidence, action = probs.max(dim=-1)
            return probs, action, confidence

    return Exported().eval()


def _onnx_session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def export_bundle(
    bundle: Path | str,
    dataset: Path | str,
    *,
    threshold: float = 0.6,
) -> dict[str, Any]:
    """Write ``model.onnx`` and ``validation.json`` into a trained bundle and reseal it. On any
    failure the bundle is left sealed and servable (by torch) without a graph: a bad dataset
    fails before anything is written; a failed equivalence check keeps validation.json."""
    bundle = Path(bundle)
    metadata = open_bundle(bundle, required=REQUIRED_FILES, upgrading=True)
    if metadata.get("bundle_format") != BUNDLE_FORMAT:
        seal(bundle, caller_metadata(metadata))  # upgraded first: the torch policy opens it
    policy = TorchPolicy(bundle)
    probe = probe_batch(dataset, policy)  # before anything is written: a bad dataset fails here
    target = bundle / "model.onnx"
    try:
        return _export(bundle, policy, probe, metadata, threshold, target)
    except ExportError:
        raise  # the check failed: _export removed the graph and kept its report
    except BaseException:
        # Anything else (an interrupt, a full disk): no half-written or unchecked graph stays.
        target.unlink(missing_ok=True)
        (bundle / "validation.json").unlink(missing_ok=True)
        seal(bundle, _unexported(metadata))
        raise


def _export(
    bundle: Path,
    policy: TorchPolicy,
    probe: FeatureBatch,
    metadata: dict[str, Any],
    threshold: float,
    target: Path,
) -> dict[str, Any]:
    import onnx
    import torch

    module = _export_module(policy)
    target.unlink(missing_ok=True)
    example = (
        torch.zeros((2, 3), dtype=torch.long),
        torch.ones((2, 3), dtype=torch.float32),
        torch.ones((2, len(policy.space.all_actions())), dtype=torch.bool),
    )
    started = time.perf_counter()
    torch.onnx.export(
        module,
        example,
        str(target),
        input_names=list(INPUTS),
        output_names=list(OUTPUTS),
        dynamic_axes={
            "ids": {0: "batch", 1: "tokens"},
            "weights": {0: "batch", 1: "tokens"},
            "mask": {0: "batch"},
            "probs": {0: "batch"},
            "action": {0: "batch"},
            "confidence": {0: "batch"},
        },
        opset_version=OPSET,
        dynamo=False,
    )
    model = onnx.load(str(target))
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(target), save_as_external_data=False)
    side_files = [
        p.name for p in bundle.iterdir() if p.suffix == ".data" or p.name.endswith(".onnx.data")
    ]
    for name in side_files:
        (bundle / name).unlink()

    ids, weights = probe.padded()
    reference = policy.probs(probe)
    session = _onnx_session(target)
    probs, action, confidence = session.run(
        list(OUTPUTS), {"ids": ids, "weights": weights, "mask": probe.mask}
    )
    diff = float(np.abs(probs.astype(np.float64) - reference).max())
    agree_action = float((action == reference.argmax(axis=1)).mean())
    ref_conf = reference.max(axis=1)
    agree_abstain = float(((confidence >= threshold) == (ref_conf >= threshold)).mean())
    invalid_mass = float(probs[~probe.mask].max()) if (~probe.mask).any() else 0.0
    passed = (
        diff <= MAX_ABS_DIFF
        and agree_action == 1.0
        and agree_abstain == 1.0
        and invalid_mass == 0.0
    )
    validation = {
        "passed": passed,
        "probe": {
            "size": len(probe),
            "dataset_hash": metadata.get("dataset_hash"),
            "features_sha256": _digest(ids, weights, probe.mask),
        },
        "max_abs_prob_diff": diff,
        "max_abs_prob_diff_allowed": MAX_ABS_DIFF,
        "action_agreement": agree_action,
        "abstention_agreement": agree_abstain,
        "abstention_threshold": threshold,
        "max_prob_on_invalid_actions": invalid_mass,
        "onnx": {
            "opset": OPSET,
            "ir_version": IR_VERSION,
            "onnx_version": onnx.__version__,
            "onnxruntime_version": _ort_version(),
            "bytes": target.stat().st_size,
            "export_seconds": time.perf_counter() - started,
        },
    }
    write_json(bundle / "validation.json", validation)
    config = read_bundle_json(bundle, "config.json")
    config["onnx"] = {
        "file": "model.onnx",
        "inputs": {
            "ids": "int64 [batch, tokens]",
            "weights": "float32 [batch, tokens]",
            "mask": "bool [batch, actions]",
        },
        "outputs": {
            "probs": "float32 [batch, actions]",
            "action": "int64 [batch]",
            "confidence": "float32 [batch]",
        },
        "opset": OPSET,
        "ir_version": IR_VERSION,
        "temperature_in_graph": policy.temperature,
    }
    write_json(bundle / "config.json", config)
    if not passed:
        target.unlink()
        seal(bundle, _unexported(metadata))
        raise ExportError(
            f"{bundle}: torch and onnxruntime disagree on the probe set (max |Δprob| {diff:.2e}, "
            f"action agreement {agree_action:.4f}, abstention agreement {agree_abstain:.4f}); "
            "model.onnx was removed, details in validation.json"
        )
    seal(
        bundle,
        {
            **caller_metadata(metadata),
            "onnx": {"opset": OPSET, "ir_version": IR_VERSION},
            "served_by": [EXPORTED_SERVER, metadata["model_type"]],
        },
    )
    return validation


def _digest(*arrays: npt.NDArray[Any]) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


__all__ = ["ExportError", "export_bundle"]
