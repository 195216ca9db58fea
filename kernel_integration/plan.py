"""One decision as a ``planner_action.v1``: what ``planner plan`` prints and a kernel records.

The answer carries the chosen valid joint action, its calibrated probability as ``confidence``,
``abstain_to_default`` when the confidence is below the threshold (the kernel's default then
decides), the probabilities of the valid actions, the model it came from and the input's hash.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from swarm_planner import __version__
from swarm_planner.core.bundle import open_bundle
from swarm_planner.core.contracts import ModelRef, PlannerAction, PlannerInput, check_input
from swarm_planner.core.errors import ConfigError
from swarm_planner.core.protocols import Policy
from swarm_planner.core.recording import planner_action_for


def bundle_policy(path: Path | str) -> Policy:
    """The policy that serves a bundle: ONNX when exported (no torch), else its torch model."""
    path = Path(path)
    if (path / "model.onnx").exists():
        from swarm_planner.plugins.models.onnx_policy import OnnxPolicy

        return OnnxPolicy(path)
    from swarm_planner.plugins.models.torch_policy import TorchPolicy

    return TorchPolicy(path)


def model_ref(path: Path | str) -> ModelRef:
    metadata: dict[str, Any] = open_bundle(path)
    dataset = str(metadata.get("dataset_hash") or "")[:12]
    checkpoint = f"{metadata.get('model_type', 'model')}@{Path(path).name}:{dataset}"
    return ModelRef(checkpoint, __version__, metadata.get("git_revision"))


def plan_action(
    policy: Policy,
    planner_input: PlannerInput,
    *,
    threshold: float,
    model: ModelRef | None = None,
) -> PlannerAction:
    check_input(planner_input)
    if not math.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
        raise ConfigError("threshold", [f"threshold: {threshold!r} is not within [0, 1]"])
    dist = policy.predict(planner_input)
    action, confidence = dist.best()
    abstain = confidence < threshold
    reason = (
        f"confidence {confidence:.3f} below {threshold}: the kernel's default decides"
        if abstain
        else f"model choice with confidence {confidence:.3f}"
    )
    return planner_action_for(
        action,
        probs=dist.as_joint_probs(),
        confidence=min(1.0, max(0.0, confidence)),
        abstain_to_default=abstain,
        reason=reason,
        model=model,
        input_hash=planner_input.input_hash(),
    )
