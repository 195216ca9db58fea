"""The ``onnx`` policy: an exported bundle served with onnxruntime alone (no torch).

One session per policy, ``intra_op_num_threads=1`` and spinning off (a kernel process has other
work; a spinning thread would burn a core between decisions), warmed up at load so the first
decision is not the slow one. :meth:`OnnxPolicy.decide` is the kernel's fast path: encode, run,
read the chosen tuple and its calibrated confidence from the graph's outputs.

Why I/O binding on the fast path: ``InferenceSession.run`` checks and converts its feed and
allocates its outputs on every call, which costs about as much as running this small graph.
Each thread keeps preallocated inputs and outputs per padded width, bound once; a decision
writes its ids into them and runs the binding. Padding is id 0 at weight 0, which adds nothing
to the bag.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from swarm_planner import hookimpl
from swarm_planner.core.action_space import ActionSpace, JointAction
from swarm_planner.core.bundle import BundleError, open_bundle, read_bundle_json
from swarm_planner.core.contracts import PlannerInput, load
from swarm_planner.core.errors import InvalidActionError
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.protocols import ActionDistribution, FeatureBatch, Features
from swarm_planner.plugins.models.torch_policy import BundleOptions, load_encoder

_MIN_WIDTH = 64
"""Narrowest bound input; wider inputs take the next power of two."""

_CHUNK = 128
"""Inputs per run on the batch path."""

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


class _Bound:
    """One thread's preallocated inputs and outputs of one padded width, bound to the session."""

    def __init__(self, session: Any, width: int, n_actions: int) -> None:
        self.ids = np.zeros((1, width), dtype=np.int64)
        self.weights = np.zeros((1, width), dtype=np.float32)
        self.mask = np.zeros((1, n_actions), dtype=bool)
        self.probs = np.zeros((1, n_actions), dtype=np.float32)
        self.action = np.zeros(1, dtype=np.int64)
        self.confidence = np.zeros(1, dtype=np.float32)
        self.filled = 0
        """Weights past this index are zero."""
        self.mask_of: npt.NDArray[np.bool_] | None = None
        """The mask array last copied in (masks are cached read-only arrays, so identity is
        equality)."""
        self.binding = session.io_binding()
        inputs: dict[str, npt.NDArray[Any]] = {
            "ids": self.ids,
            "weights": self.weights,
            "mask": self.mask,
        }
        outputs: dict[str, npt.NDArray[Any]] = {
            "probs": self.probs,
            "action": self.action,
            "confidence": self.confidence,
        }
        for name, array in inputs.items():
            self.binding.bind_input(
                name, "cpu", 0, array.dtype, list(array.shape), array.ctypes.data
            )
        for name, array in outputs.items():
            self.binding.bind_output(
                name, "cpu", 0, array.dtype, list(array.shape), array.ctypes.data
            )


class OnnxPolicy:
    """Serves an exported bundle with onnxruntime; never imports torch."""

    def __init__(self, path: Path | str) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.metadata = open_bundle(self.path, required=REQUIRED_FILES)
        validation = read_bundle_json(self.path, "validation.json")
        if not validation.get("passed"):
            raise BundleError(f"{self.path}: validation.json says the export did not pass")
        config = read_bundle_json(self.path, "config.json")
        self.model_type = str(config["model"]["type"])
        self.encoder = load_encoder(config, str(self.path / "config.json"))
        self.space = load(read_bundle_json(self.path, "action_space.json"), ActionSpace)
        self.actions = self.space.all_actions()
        self._masks: dict[str, npt.NDArray[np.bool_]] = {}
        self._local = threading.local()
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
        """Run every path once per common width, so that no decision pays a first-run cost."""
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
        for width in (_MIN_WIDTH, 2 * _MIN_WIDTH, 4 * _MIN_WIDTH):
            self.session.run_with_iobinding(self._bound(width).binding)

    def _bound(self, width: int) -> _Bound:
        """This thread's bound buffers for ``width`` (created on first use)."""
        slots: dict[int, _Bound] | None = getattr(self._local, "slots", None)
        if slots is None:
            slots = self._local.slots = {}
        bound = slots.get(width)
        if bound is None:
            bound = slots[width] = _Bound(self.session, width, len(self.actions))
        return bound

    def _check_space(self, planner_input: PlannerInput) -> None:
        space = planner_input.action_space
        # A kernel that builds inputs with the bundle's own space object skips the comparison.
        if not space.equivalent(self.space):
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

    def _run_one(self, features: Features) -> tuple[Any, int, float]:
        """One input through this thread's bound buffers of the next width up."""
        n = len(features.ids)
        width = _MIN_WIDTH
        while width < n:
            width *= 2
        bound = self._bound(width)
        # Past the input's ids only the weights must be zero (an old id at weight 0 adds
        # nothing), and only where an earlier, longer input left them set.
        bound.ids[0, :n] = features.ids
        bound.weights[0, :n] = features.weights
        if bound.filled > n:
            bound.weights[0, n : bound.filled] = 0.0
        bound.filled = n
        if bound.mask_of is not features.mask:  # the policy passes one mask object per job type
            bound.mask[0] = features.mask
            bound.mask_of = features.mask
        self.session.run_with_iobinding(bound.binding)
        return bound.probs[0].copy(), int(bound.action[0]), float(bound.confidence[0])

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
        """Many decisions: the throughput path. The encoder builds a chunk of inputs at once and
        one run serves it; chunks of 128 keep the gathered embeddings in cache (a run over 256
        costs more per input)."""
        for planner_input in inputs:
            self._check_space(planner_input)
        out: list[Decision] = []
        actions = self.actions
        for start in range(0, len(inputs), _CHUNK):
            chunk = inputs[start : start + _CHUNK]
            masks = np.stack([self._mask(x.job_type) for x in chunk])
            probs, action, confidence = self.run(self.encoder.encode_batch(chunk, masks=masks))
            out += [
                Decision(actions[a], c, p, m)
                for a, c, p, m in zip(
                    action.tolist(), confidence.tolist(), probs, masks, strict=True
                )
            ]
        return out

    def predict(self, planner_input: PlannerInput) -> ActionDistribution:
        decision = self.decide(planner_input)
        # The bundle's space (the input's was checked equal): its valid actions are cached.
        actions = self.space.valid_actions(planner_input.job_type)
        kept = decision.probs[decision.mask].astype(np.float64)
        return ActionDistribution(actions, kept / kept.sum())


def _build(options: BundleOptions) -> OnnxPolicy:
    return OnnxPolicy(options.path)


@hookimpl
def register_policies(register: Register) -> None:
    register("onnx", _build, options=BundleOptions)
