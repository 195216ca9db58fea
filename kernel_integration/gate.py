"""The safety gate: what a model's answer must pass before a kernel runs it.

Each check is one function, applied in this order by :class:`~.service.PlannerService`; a check
that fails names its reason (a code from :data:`REASONS`) and the baseline runs instead, a check
that clamps says what it clamped. The rules of what is *safe* (the caps, ``reductions_only``,
the topology changes the config allows, ``force_swarm``) live in :func:`safe_actions`, so that
clamping and exploration draw from the same set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from swarm_planner.core.action_space import NA, ActionSpace, Bin, JointAction
from swarm_planner.core.config import PlannerConfig
from swarm_planner.core.protocols import ActionDistribution

REASONS: dict[str, str] = {
    "model": "the model decided",
    "mode_off": "planner.mode is off: the baseline runs, nothing is loaded",
    "log_only": "planner.mode is log: the decision is recorded, the baseline runs",
    "invalid_input": "the planner_input is not valid",
    "model_unavailable": "the model is not loaded (no bundle, or it failed to load)",
    "job_type_disabled": "the job type is not in planner.flags.enabled_job_types",
    "inference_error": "the policy raised, or answered something that is not a distribution",
    "inference_timeout": "inference took longer than planner.inference.timeout_ms",
    "low_confidence": "the chosen action's probability is below the confidence threshold",
    "prediction_invalid": "the policy answered an object that is not a distribution",
    "prediction_out_of_space": "the chosen action is not a valid action of the job type",
    "swarm_mismatch": "reductions_only: the topology change is not one the config allows",
    "no_safe_action": "no valid action is within the safety caps and the baseline",
    "force_swarm": "planner.flags.force_swarm set the topology",
    "exploration": "safe exploration drew another action of the safe set",
    "fallback_failed": "the fallback plugin failed: the most conservative valid action runs",
    "internal_error": "an unexpected error in the decision service",
}
"""Every reason a decision may carry, with what it means (docs/deploy.md lists them too)."""


@attrs.frozen
class Clamped:
    """An action after the caps and the baseline, and what was clamped (empty: unchanged)."""

    action: JointAction
    clamps: tuple[str, ...]


def _numeric(value: Bin) -> int | None:
    return None if value == NA else int(value)


def _exceeds(value: Bin, limit: int | None) -> bool:
    """Whether a bin is above a limit; no cap (NA) exceeds every numeric limit."""
    if limit is None:
        return False
    number = _numeric(value)
    return number is None or number > limit


def _limits(
    config: PlannerConfig, baseline: JointAction | None
) -> tuple[tuple[str, int | None, str], ...]:
    """(field, limit, why) per budget head: the tighter of the cap and, with
    ``reductions_only``, the baseline's own value (NA baseline: no limit from it)."""
    safety = config.safety
    caps = (
        ("max_candidates_bin", safety.max_candidates_cap, "max_candidates_cap"),
        ("max_minutes_bin", safety.max_minutes_cap, "max_minutes_cap"),
        ("max_iterations_bin", safety.max_iterations_cap, "max_iterations_cap"),
    )
    out = []
    for field, cap, name in caps:
        limit, why = cap, name
        if safety.reductions_only and baseline is not None:
            own = _numeric(getattr(baseline, field))
            if own is not None and own < cap:
                limit, why = own, f"reductions_only:{field}"
        out.append((field, limit, why))
    return tuple(out)


def _allowed(
    action: JointAction,
    config: PlannerConfig,
    baseline: JointAction | None,
    limits: Sequence[tuple[str, int | None, str]],
    forced_na: frozenset[str],
) -> bool:
    if config.flags.force_swarm is not None and action.swarm_id != config.flags.force_swarm:
        return False
    if not swarm_allowed(config, baseline, action.swarm_id):
        return False
    return all(
        field in forced_na or not _exceeds(getattr(action, field), limit)
        for field, limit, _ in limits
    )


def _forced_na(valid: Sequence[JointAction]) -> frozenset[str]:
    """Budget heads whose every valid value is NA (a code job's iterations): no cap applies."""
    fields = ("max_candidates_bin", "max_minutes_bin", "max_iterations_bin")
    return frozenset(f for f in fields if all(getattr(a, f) == NA for a in valid))


def safe_actions(
    config: PlannerConfig, space: ActionSpace, job_type: str, baseline: JointAction | None
) -> tuple[JointAction, ...]:
    """The valid actions of the job type that the caps, ``reductions_only`` (never more
    candidates, minutes or iterations than the baseline; only the configured topology changes)
    and ``force_swarm`` allow, in canonical order."""
    valid = space.valid_actions(job_type)
    limits = _limits(config, baseline)
    forced = _forced_na(valid)
    return tuple(a for a in valid if _allowed(a, config, baseline, limits, forced))


def _rank(value: Bin, bins: Sequence[Bin]) -> int:
    """A bin's position among the numeric bins (no cap: past the largest)."""
    numeric = sorted(b for b in bins if b != NA)
    return len(numeric) if value == NA else numeric.index(value) if value in numeric else 0


def _distance(
    a: JointAction, b: JointAction, space: ActionSpace
) -> tuple[int, int, int, tuple[Any, ...]]:
    """How far a safe action ``a`` is from the wanted ``b``: a topology change first, then how
    many bins apart the budgets are; ties go to the larger budgets (a clamp takes the most it
    may, not the least)."""
    heads = (
        ("max_candidates_bin", space.max_candidates_bins),
        ("max_minutes_bin", space.max_minutes_bins),
        ("max_iterations_bin", space.max_iterations_bins),
    )
    ranks = [(_rank(getattr(a, f), bins), _rank(getattr(b, f), bins)) for f, bins in heads]
    apart = sum(abs(x - y) for x, y in ranks)
    changed = sum(x != y for x, y in ranks)
    return (a.swarm_id != b.swarm_id, apart, changed, tuple(-x for x, _ in ranks))


def clamp(
    action: JointAction,
    safe: Sequence[JointAction],
    config: PlannerConfig,
    baseline: JointAction | None,
    space: ActionSpace,
) -> Clamped | None:
    """``action`` if it is safe; else the safe action nearest to it (same topology first,
    budgets fewest bins apart, then the larger budgets: an uncapped 120-minute cap becomes
    120 minutes, not 15), with the caps it broke; None when nothing is safe."""
    if action in safe:
        return Clamped(action, ())
    if not safe:
        return None
    nearest = min(safe, key=lambda a: _distance(a, action, space))
    broke = []
    if config.flags.force_swarm is not None and action.swarm_id != config.flags.force_swarm:
        broke.append("force_swarm")
    elif nearest.swarm_id != action.swarm_id:
        broke.append("swarm_change")
    for field, limit, why in _limits(config, baseline):
        if getattr(action, field) != getattr(nearest, field) and _exceeds(
            getattr(action, field), limit
        ):
            broke.append(why)
    return Clamped(nearest, tuple(broke) or ("nearest_safe",))


def swarm_allowed(config: PlannerConfig, baseline: JointAction | None, swarm_id: str) -> bool:
    """``reductions_only``'s topology rule (``force_swarm`` overrides it)."""
    if config.flags.force_swarm is not None or baseline is None:
        return True
    if not config.safety.reductions_only:
        return True
    return config.safety.allows_change(baseline.swarm_id, swarm_id)


def distribution_problem(answer: Any) -> str | None:
    """Why a policy's answer is not a usable distribution (None: it is). Checked again here,
    not trusted from the constructor: a plugin may build one around its checks or change its
    array afterwards."""
    if not isinstance(answer, ActionDistribution):
        return f"expected an ActionDistribution, got {type(answer).__name__}"
    actions, probs = getattr(answer, "actions", None), getattr(answer, "probs", None)
    if not isinstance(actions, tuple) or not actions:
        return "its actions are not a non-empty tuple"
    if any(type(a) is not JointAction for a in actions):
        return "its actions are not all JointActions"
    if not isinstance(probs, np.ndarray) or probs.shape != (len(actions),):
        return f"{len(actions)} actions but probabilities of another shape"
    with np.errstate(all="ignore"):
        lowest, total = float(probs.min()), float(probs.sum())
    if not (lowest >= 0.0 and math.isfinite(total) and abs(total - 1.0) <= 1.1e-5):
        return f"probabilities are not a distribution (lowest {lowest}, sum {total})"
    return None


def best_of(answer: ActionDistribution) -> tuple[JointAction, float]:
    action, confidence = answer.best()
    if not math.isfinite(confidence):
        raise ValueError("the chosen probability is not finite")
    return action, confidence


def exploration_share(epsilon: float, safe: Sequence[JointAction]) -> float:
    """The probability of each safe action being drawn by exploration."""
    return epsilon / len(safe) if safe else 0.0
