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

import copy
from collections.abc import Mapping
from typing import Any

from swarm_planner.core.action_space import NA, ActionSpace, Bin, JointAction
from swarm_planner.core.bundle import EXPORTED_SERVER, BundleError, serving_policy
from swarm_planner.core.config import PlannerConfig, parse_config
from swarm_planner.core.contracts import PlannerInput, dump, load
from swarm_planner.core.errors import PlannerError
from swarm_planner.core.recording import executed_plan_for
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
    section = copy.deepcopy(dict(section or {}))  # the caller's config is never changed
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
        model = ours.setdefault("model", {})
        model["path"] = str(bundle)
        model.setdefault("type", kind)  # a type given next to bundle_dir is the caller's
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
    """The largest numeric bin at or below ``value`` (a cap must not round up). NA when there
    is no value, or when every bin is above it: then the kernel's own limit applies (for the
    timeout, the cap itself), and :class:`FieldPlanner` refuses any decision above it."""
    if value is None:
        return NA
    below = [b for b in bins if b != NA and isinstance(b, int) and b <= value]
    return max(below) if below else NA


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
            try:
                x: Any = load(dict(planner_input), PlannerInput, source="planner_input")
                space, job = x.action_space, x.job_type
            except (PlannerError, ValueError, TypeError):
                x, space, job = planner_input, ActionSpace(), "code"  # the invalid-input fallback
            base = self.baseline(
                space, job, baseline_swarm_id, baseline_max_candidates, timeout_cap_seconds
            )
            decision = self.service.decide(x, base)
            return self._record(
                planner_input, decision, base, baseline_max_candidates, timeout_cap_seconds
            )
        except Exception as exc:  # never into the kernel: the baseline as the kernel gave it
            return {
                "planner_input": planner_input,
                "planner_action": None,
                "executed_plan": dump(
                    executed_plan_for(
                        swarm_id=str(baseline_swarm_id),
                        candidates=baseline_max_candidates,
                        timeout_seconds=timeout_cap_seconds,
                        iterations=None,
                        fallback_applied=True,
                        fallback_reason=f"inference_failed:{type(exc).__name__}: {exc}"[:500],
                    )
                ),
                "timeout_seconds_override": None,
            }

    def _record(
        self,
        planner_input: Any,
        decision: Decision,
        base: JointAction,
        max_candidates: int | None,
        cap_seconds: int | None,
    ) -> dict[str, Any]:
        plan = dump(decision.executed_plan)
        override = decision.timeout_seconds_override
        too_long = (
            cap_seconds is not None
            and plan["timeout_seconds_executed"] is not None
            and plan["timeout_seconds_executed"] > cap_seconds
        )
        too_many = (
            max_candidates is not None
            and plan["max_candidates_executed"] is not None
            and plan["max_candidates_executed"] > max_candidates
        )
        if too_long or too_many or plan["swarm_id_executed"] != base.swarm_id:
            # The field's rules are hard: what they refuse runs the baseline as the kernel gave
            # it (its own timeout: the cap), with the field's reason.
            reason = (
                "swarm_mismatch"
                if plan["swarm_id_executed"] != base.swarm_id
                else "timeout_exceeds_cap"
                if too_long
                else "max_candidates_exceeds_cap"
            )
            plan = dump(
                executed_plan_for(
                    swarm_id=base.swarm_id,
                    candidates=max_candidates,
                    timeout_seconds=cap_seconds,
                    iterations=None,
                    fallback_applied=True,
                    fallback_reason=reason,
                )
            )
            override = None
        elif plan.get("fallback_applied"):
            plan["fallback_reason"] = field_reason(decision, self.config)
        return {
            "planner_input": planner_input,
            "planner_action": dump(decision.planner_action),
            "executed_plan": plan,
            "timeout_seconds_override": override,
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
