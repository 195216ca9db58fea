"""Expected utility: the one rule that weighs passing against spending, in one place.

``utility = pass_value · passed − cost_weight · cost_usd − time_weight · hours`` where hours is
the candidate's wall time. The ``utility`` selector judges bench candidates with it, the
``value`` policy decides by its expectation, and ``eval-outcomes`` sweeps ``cost_weight`` to
draw a policy's cost/pass-rate frontier: one definition, so a policy trained against the bench
is judged by the weights it was asked to serve.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from swarm_planner.core.jsonconv import json_field, validator

_finite_non_negative = validator(
    lambda v: (
        None
        if isinstance(v, int | float) and 0 <= v < float("inf")
        else f"{v!r} is not a finite number >= 0"
    )
)


@attrs.frozen
class UtilityWeights:
    """How much a pass is worth against a dollar and an hour (set in config; no re-training)."""

    pass_value: float = json_field(default=1.0, validator=_finite_non_negative)
    cost_weight: float = json_field(default=0.2, validator=_finite_non_negative)
    """Utility lost per USD spent."""
    time_weight: float = json_field(default=0.0, validator=_finite_non_negative)
    """Utility lost per hour of wall time."""

    def of(self, passed: Any, cost_usd: Any, duration_ms: Any) -> Any:
        """Utility of outcomes (scalars or arrays; expectations give expected utility)."""
        hours = np.asarray(duration_ms, dtype=np.float64) / 3_600_000.0
        value: npt.NDArray[np.float64] = (
            self.pass_value * np.asarray(passed, dtype=np.float64)
            - self.cost_weight * np.asarray(cost_usd, dtype=np.float64)
            - self.time_weight * hours
        )
        return value


def utility_distribution(
    actions: tuple[Any, ...], utility: npt.NDArray[np.float64], temperature: float
) -> Any:
    """The decision of a policy that judges by utility: ``softmax(utility / temperature)`` over
    ``actions`` (the best action's share is its confidence)."""
    from swarm_planner.core.protocols import ActionDistribution

    z = (utility - utility.max()) / temperature
    e: npt.NDArray[np.float64] = np.exp(z)
    return ActionDistribution(actions, e / e.sum())
