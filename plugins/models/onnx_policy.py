"""The ``onnx`` policy: an exported bundle served with onnxruntime alone (no torch).

One session per policy, ``intra_op_num_threads=1`` and spinning off (a kernel process has other
work; a spinning thread would burn a core between decisions), warmed up at load so the first
decision is not the slow one. :meth:`OnnxPolicy.decide` is the kernel's fast path: encode, run,
read the chosen tuple and its calibrated confidence from the graph's outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from swarm_planner import hookimpl
from swarm_planner.core.action_space import ActionSpace, JointAction
from swarm_planner.core.bundle import BundleError, open_bundle, read_json
from swarm_planner.core.contracts import PlannerInput, load
from swarm_planner.core.errors import InvalidActionError
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.protocols import ActionDistribution, FeatureBatch, Features
from swarm_planner.plugins.models.torch_policy import BundleOptions, load_encoder

REQUIRED_FILES = (
    "model.onnx",
    "config.json",
    "action_space.json",
    "calibration.json",
    "validation.json",
)


@attrs.frozen
class Decision:
    """The fast path's answer: the chosen valid tuple, its calibrated probability, all probs."""

    action: JointAction
    confidence: float
    probs: npt.NDArray[np.float32]
    mask: npt.NDArray[np.bool_]


class OnnxPolicy:
    """Serves an exported bundle with onnxruntime; never imports torch."""

    def __init__(self, path: Path | str) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.metadata = open_bundle(self.path, required=REQUIRED_FILES)
        validation = read_json(self.path, "validation.json")
        if not validation.get("passed"):
            raise BundleError(f"{self.path}: validation.json says the export did not pass")
        config = read_json(self.path, "config.json")
        self.model_type = str(config["model"]["type"])
        self.encoder = load_encoder(config, str(self.path / "config.json"))
        self.space = load(read_json(self.path, "action_space.json"), ActionSpace)
        self.actions = self.space.all_actions()
        self._masks: dict[str, npt.NDArray[np.bool_]] = {}
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(self.path / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self._outputs = ["probs", "action", "confidence"]
        self._warm_up()

    def _warm_up(self) -> None:
        mask = np.ones((1, len(self.actions)), dtype=bool)
        for width in (1, 64, 256):
            self.session.run(
                self._outputs,
                {
                    "ids": np.zeros((1, width), dtype=np.int64),
                    "weights": np.zeros((1, width), dtype=np.float32),
                    "mask": mask,
                },
            )

    def _check_space(self, planner_input: PlannerInput) -> None:
        space = planner_input.action_space
        # A kernel that builds inputs with the bundle's own space object skips the comparison.
        if space is not self.space and space != self.space:
            raise InvalidActionError(
                f"the input's action space differs from the one {self.path} was trained on; "
                "retrain on data with this action space"
            )

    def run(self, batch: FeatureBatch) -> tuple[Any, Any, Any]:
        """``probs [B, A]``, ``action [B]``, ``confidence [B]`` for encoded inputs."""
        ids, weights = batch.padded()
        probs, action, confidence = self.session.run(
            self._outputs, {"ids": ids, "weights": weights, "mask": batch.mask}
        )
        return probs, action, confidence

    def _run_one(self, features: Features) -> tuple[Any, Any, Any]:
        ids = features.ids.reshape(1, -1)
        weights = features.weights.reshape(1, -1)
        probs, action, confidence = self.session.run(
            self._outputs, {"ids": ids, "weights": weights, "mask": features.mask.reshape(1, -1)}
        )
        return probs[0], int(action[0]), float(confidence[0])

    def decide(self, planner_input: PlannerInput) -> Decision:
        """One decision: the best valid tuple and its calibrated confidence."""
        self._check_space(planner_input)
        features = self.encoder.encode(planner_input, mask=self._mask(planner_input.job_type))
        probs, action, confidence = self._run_one(features)
        return Decision(self.actions[action], confidence, probs, features.mask)

    def _mask(self, job_type: str) -> npt.NDArray[np.bool_]:
        mask = self._masks.get(job_type)
        if mask is None:
            mask = self._masks[job_type] = self.space.job_mask(job_type)
        return mask

    def decide_batch(self, inputs: Sequence[PlannerInput]) -> list[Decision]:
        """Many decisions in one run: the throughput path (encodes straight into the padded
        arrays the graph takes)."""
        features = []
        for planner_input in inputs:
            self._check_space(planner_input)
            mask = self._mask(planner_input.job_type)
            features.append(self.encoder.encode(planner_input, mask=mask))
        width = max(len(f.ids) for f in features)
        ids = np.zeros((len(features), width), dtype=np.int64)
        weights = np.zeros((len(features), width), dtype=np.float32)
        masks = np.empty((len(features), len(self.actions)), dtype=bool)
        for r, f in enumerate(features):
            ids[r, : len(f.ids)] = f.ids
            weights[r, : len(f.ids)] = f.weights
            masks[r] = f.mask
        probs, action, confidence = self.session.run(
            self._outputs, {"ids": ids, "weights": weights, "mask": masks}
        )
        return [
            Decision(self.actions[int(a)], float(c), p, m)
            for a, c, p, m in zip(action, confidence, probs, masks, strict=True)
        ]

    def predict(self, planner_input: PlannerInput) -> ActionDistribution:
        decision = self.decide(planner_input)
        valid = decision.mask
        actions = tuple(a for a, ok in zip(self.actions, valid, strict=True) if ok)
        kept = decision.probs[valid].astype(np.float64)
        return ActionDistribution(actions, kept / kept.sum())


def _build(options: BundleOptions) -> OnnxPolicy:
    return OnnxPolicy(options.path)


@hookimpl
def register_policies(register: Register) -> None:
    register("onnx", _build, options=BundleOptions)
