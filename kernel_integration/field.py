"""A drop-in for the field kernel's planner call: same arguments, same stored record.

The field's runner asks its planner with the issue's ``planner_input`` (a JSON mapping), the
baseline topology, the baseline candidate count and the timeout cap in seconds, and stores
``manifest["planner"] = {planner_input, planner_action, executed_plan,
timeout_seconds_override}``. :class:`FieldPlanner` takes the same call and returns that record,
deciding through :class:`~.service.PlannerService`, so a kernel switches by changing an import.

Its ``planner:`` config (``mode``, ``bundle_dir``, ``confidence_threshold``; legacy
``enabled: true`` meaning enforce) maps onto ours; our config keys may be given too. The field
never changes the baseline's topology and never exceeds its candidate count or timeout cap:
the drop-in keeps those rules (``reductions_only`` with no topology change, the cap as the
baseline's minutes), and reports each fallback with the field's reason code
(:data:`FIELD_REASONS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from swarm_planner.core.action_space import NA, ActionSpace, Bin, JointAction
from swarm_planner.core.bundle import EXPORTED_SERVER, BundleError, serving_policy
from swarm_planner.core.config import PlannerConfig, parse_config
from swarm_planner.core.contracts import PlannerInput, dump, load
from swarm_planner.core.errors import PlannerError
from swarm_planner.kernel_integration.decision import Decision
from swarm_planner.kernel_integration.service import PlannerService

FIELD_REASONS: dict[str, str] = {
    "log_only": "log_only",
    "low_confidence": "low_confidence",
    "prediction_invalid": "malformed_prediction",
    "prediction_out_of_space": "prediction_out_of_space",
    "swarm_mismatch": "swarm_mismatch",
    "inference_error": "inference_failed",
    "inference_timeout": "inference_failed",
    "invalid_input": "malformed_prediction",
    "no_safe_action": "max_candidates_exceeds_cap",
}
"""Our reason → the field's. ``model_unavailable`` becomes ``bundle_dir_missing``,
``bundle_dir_not_found:<path>`` or ``bundle_load_failed:<error>``; a reason with no field
counterpart (``job_type_disabled``, ``force_swarm``, ...) is kept as ours."""

_FIELD_KEYS = ("mode", "bundle_dir", "confidence_threshold", "enabled")


def config_from_field(section: Mapping[str, Any] | None) -> PlannerConfig:
    """Our config from the field's ``planner:`` section (our own keys pass through)."""
    section = dict(section or {})
    ours: dict[str, Any] = {k: v for k, v in section.items() if k not in _FIELD_KEYS}
    mode = section.get("mode")
    if mode is None and section.get("enabled") is True:
        mode = "enforce"
    ours["mode"] = mode or "off"
    bundle = section.get("bundle_dir")
    if bundle is not None:
        try:
            kind = serving_policy(str(bundle))
        except (BundleError, OSError):
            kind = EXPORTED_SERVER  # unavailable: the service reports it, the baseline runs
        ours.setdefault("model", {}).update({"path": str(bundle), "type": kind})
    elif "model" not in ours:
        # The field's planner without a bundle has no model: the baseline runs, reported as
        # bundle_dir_missing (an empty path never loads).
        ours["model"] = {"type": EXPORTED_SERVER, "path": ""}
    if "confidence_threshold" in section:
        ours.setdefault("inference", {})["confidence_threshold"] = section["confidence_threshold"]
    safety = ours.setdefault("safety", {})
    safety.setdefault("reductions_only", True)
    safety.setdefault("swarm_changes", [])
    return parse_config(ours, source="planner (field config)")


def floor_bin(value: int | None, bins: tuple[Bin, ...]) -> Bin:
    """The largest numeric bin at or below ``value`` (a cap must not round up); NA for none."""
    if value is None:
        return NA
    below = [b for b in bins if b != NA and isinstance(b, int) and b <= value]
    return max(below) if below else min((b for b in bins if b != NA), default=NA)


class FieldPlanner:
    """The field kernel's planner, answered by ours."""

    def __init__(self, section: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self.config = config_from_field(section)
        self.service = PlannerService(self.config, **kwargs)

    def baseline(
        self,
        space: ActionSpace,
        job_type: str,
        swarm_id: str,
        max_candidates: int | None,
        timeout_cap_seconds: int | None,
    ) -> JointAction:
        minutes = None if timeout_cap_seconds is None else int(timeout_cap_seconds // 60)
        action = JointAction(
            swarm_id,
            floor_bin(max_candidates, space.max_candidates_bins),
            floor_bin(minutes, space.max_minutes_bins),
            NA,
        )
        return space.nearest_valid(action, job_type) or action

    def plan(
        self,
        planner_input: Mapping[str, Any],
        baseline_swarm_id: str,
        baseline_max_candidates: int | None,
        timeout_cap_seconds: int | None,
    ) -> dict[str, Any]:
        """``{planner_input, planner_action, executed_plan, timeout_seconds_override}``: what
        the field's runner stores as ``manifest["planner"]``. Never raises."""
        try:
            x = load(dict(planner_input), PlannerInput, source="planner_input")
            base = self.baseline(
                x.action_space,
                x.job_type,
                baseline_swarm_id,
                baseline_max_candidates,
                timeout_cap_seconds,
            )
        except (PlannerError, ValueError, TypeError) as exc:
            decision = self.service.decide(planner_input)  # the invalid-input fallback
            return self._record(planner_input, decision, str(exc))
        return self._record(planner_input, self.service.decide(x, base), None)

    def _record(
        self, planner_input: Any, decision: Decision, problem: str | None
    ) -> dict[str, Any]:
        plan = dump(decision.executed_plan)
        if plan.get("fallback_applied"):
            plan["fallback_reason"] = field_reason(decision, self.config)
        return {
            "planner_input": planner_input,
            "planner_action": dump(decision.planner_action),
            "executed_plan": plan,
            "timeout_seconds_override": decision.timeout_seconds_override,
        }


def field_reason(decision: Decision, config: PlannerConfig) -> str:
    """The field's code for a decision's fallback reason."""
    reason = decision.reason
    if reason == "model_unavailable":
        path = config.model.path
        if not path:
            return "bundle_dir_missing"
        detail = decision.detail or ""
        if "not a bundle folder" in detail:
            return f"bundle_dir_not_found:{path}"
        return f"bundle_load_failed:{detail}"
    mapped = FIELD_REASONS.get(reason, reason)
    if mapped == "inference_failed":
        return f"inference_failed:{decision.detail or reason}"
    return mapped
