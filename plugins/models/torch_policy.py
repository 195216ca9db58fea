"""The ``mlp`` and ``joint`` policies: a trained bundle served with torch.

The bundle's ``config.json`` rebuilds the exact encoder used in training (train/serve parity),
``calibration.json`` gives the temperature, ``action_space.json`` the tuples the network
answers over. Importing this module does not import torch; building a policy does (the
kernel path serves the exported ONNX model instead).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from swarm_planner import hookimpl
from swarm_planner.core.action_space import HEADS
from swarm_planner.core.bundle import BundleError, load_served
from swarm_planner.core.contracts import PlannerInput, check_input, no_valid_action
from swarm_planner.core.errors import InferenceError
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.metrics import head_index
from swarm_planner.core.protocols import ActionDistribution, FeatureBatch
from swarm_planner.plugins.models.bundled import BundleOptions, check_space, load_encoder

REQUIRED_FILES = ("model.pt", "config.json", "action_space.json", "calibration.json")


class TorchPolicy:
    """Serves a trained ``mlp``, ``joint`` or ``transformer`` bundle with torch."""

    def __init__(self, path: Path | str, expected_type: str | None = None) -> None:
        import torch

        from swarm_planner.plugins.models.nets import PlannerNet

        self.bundle = load_served(path, required=REQUIRED_FILES)
        self.path = self.bundle.path
        self.metadata = self.bundle.metadata
        model = self.bundle.config.model
        if expected_type is not None and model.type != expected_type:
            raise BundleError(
                f"{self.path}: holds a {model.type!r} model, not {expected_type!r} "
                f"(set planner.model.type: {model.type})"
            )
        self.model_type = model.type
        self.encoder = load_encoder(self.bundle)
        self.space = self.bundle.space
        self.temperature = self.bundle.temperature
        try:
            self.net = PlannerNet(
                kind=model.type,
                n_features=model.n_features,
                head_index=head_index(self.space),
                head_sizes=[len(self.space.head_bins(h)) for h in HEADS],
                dim=model.dim,
                hidden=model.hidden,
                layers=model.layers,
                heads=model.heads,
            )
            state = torch.load(self.path / "model.pt", weights_only=True)
            self.net.load_state_dict(state)
        except Exception as exc:  # torch and pickle raise many types for a bad weights file
            raise BundleError(
                f"{self.path / 'model.pt'}: does not load into the {model.type!r} model of "
                f"config.json: {type(exc).__name__}: {exc}"
            ) from exc
        self.net.eval()
        self._torch = torch

    def probs(self, batch: FeatureBatch) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Calibrated probabilities ``[B, A]`` over every action tuple (0 on invalid ones)."""
        torch = self._torch
        ids, weights = batch.padded()
        with torch.no_grad():
            out = self.net(
                torch.as_tensor(ids),
                torch.as_tensor(weights),
                torch.as_tensor(batch.mask),
                torch.tensor(self.temperature),
            )
        result: np.ndarray[Any, np.dtype[np.float64]] = out.double().numpy()
        return result

    def predict(self, planner_input: PlannerInput) -> ActionDistribution:
        check_input(planner_input)
        check_space(planner_input, self.space, self.path)
        features = self.encoder.encode(planner_input)
        if not features.mask.any():
            raise no_valid_action(planner_input)
        probs = self.probs(FeatureBatch.stack([features]))[0]
        valid = features.mask
        actions = tuple(a for a, ok in zip(self.space.all_actions(), valid, strict=True) if ok)
        kept = probs[valid]
        try:
            with np.errstate(all="ignore"):  # a NaN answer is reported below, not warned about
                share = kept / kept.sum()
            return ActionDistribution(actions, share)
        except (ValueError, ZeroDivisionError, FloatingPointError) as exc:
            raise InferenceError(
                f"{self.path}: the model's answer is not a distribution over the valid "
                f"actions: {exc}"
            ) from exc


def _factory(kind: str) -> Any:
    def build(options: BundleOptions) -> TorchPolicy:
        return TorchPolicy(options.path, expected_type=kind)

    return build


@hookimpl
def register_policies(register: Register) -> None:
    register("mlp", _factory("mlp"), options=BundleOptions)
    register("joint", _factory("joint"), options=BundleOptions)
    register("transformer", _factory("transformer"), options=BundleOptions)
    register("mlp-ar", _factory("mlp-ar"), options=BundleOptions)
