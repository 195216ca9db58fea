"""One decision of the service, as a typed record: what was answered, what runs, and why.

``planner_action`` is what the deciding policy answered (the model's choice with its
probabilities and confidence, or the fallback's action); ``executed_plan`` is what the kernel
runs after the gate (clamped, forced, explored, or the baseline). ``probs["logging"]`` of the
planner_action holds the probability with which each action would have been *executed* for
this input (the gate and exploration included): the propensities off-policy evaluation needs,
recorded inside the contract's own ``probs`` mapping so that kernels store it unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from swarm_planner.core.action_space import JointAction
from swarm_planner.core.config import Mode
from swarm_planner.core.contracts import (
    ExecutedPlan,
    ManifestPlannerRecord,
    PlannerAction,
    PlannerInput,
    dump,
)

Branch = Literal["off", "model", "fallback", "exploration", "forced"]
LOGGING_KEY = "logging"
"""The key of ``planner_action.probs`` that holds the executed-action propensities."""


@attrs.frozen
class Decision:
    """What :meth:`PlannerService.decide` returns; never raised, always complete."""

    planner_action: PlannerAction
    executed_plan: ExecutedPlan
    executed: JointAction
    """The executed plan in the action space's bins."""
    branch: Branch
    reason: str
    """A code of :data:`gate.REASONS` (``model`` when the model's choice runs)."""
    mode: Mode
    detail: str | None = None
    """The error or the figures behind the reason, for a person."""
    propensity: float = 1.0
    """The probability that this input executes ``executed`` (1 unless exploring)."""
    clamps: tuple[str, ...] = ()
    """The caps that changed the model's action (``max_candidates_cap``, ...)."""
    model: str | None = None
    """Which model answered (checkpoint id with the bundle's seal), or the fallback's name."""
    latency_us: float = 0.0
    timeout_seconds_override: int | None = None
    planner_input: PlannerInput | None = attrs.field(default=None, repr=False)

    def planner_section(self) -> dict[str, Any]:
        """``manifest["planner"]``: the full record when the input was valid; else what ran
        and why (no ``planner_input``), which the archive reader still reads as the run's
        executed plan."""
        if self.planner_input is not None:
            data: dict[str, Any] = dump(self.manifest_record())
            return data
        return {
            "planner_action": dump(self.planner_action),
            "executed_plan": dump(self.executed_plan),
            "timeout_seconds_override": self.timeout_seconds_override,
        }

    def manifest_record(self) -> ManifestPlannerRecord:
        """``manifest["planner"]`` as kernels store it (needs the input the decision was for)."""
        if self.planner_input is None:
            raise ValueError("this decision has no valid planner_input to record")
        return ManifestPlannerRecord(
            self.planner_input,
            self.planner_action,
            self.executed_plan,
            self.timeout_seconds_override,
        )

    def to_json(self) -> dict[str, Any]:
        """The decision as the sidecar answers it."""
        return {
            "planner_action": dump(self.planner_action),
            "executed_plan": dump(self.executed_plan),
            "executed_action": self.executed.text,
            "branch": self.branch,
            "reason": self.reason,
            "detail": self.detail,
            "mode": self.mode,
            "propensity": self.propensity,
            "clamps": list(self.clamps),
            "model": self.model,
            "latency_us": round(self.latency_us, 1),
            "timeout_seconds_override": self.timeout_seconds_override,
        }


@attrs.frozen
class Recorded:
    """What :meth:`PlannerService.record` did: never an exception into the kernel."""

    section: dict[str, Any] | None
    """What ``manifest["planner"]`` holds now (None: nothing was written)."""
    manifest: dict[str, Any] | None = None
    """The updated manifest, when a mapping was given."""
    problem: str | None = None
    """Why nothing was written (an unreadable manifest, a record over the reader's limit)."""
