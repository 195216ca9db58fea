"""The ``utility`` selector: the candidate with the highest utility (``core.utility``).

Pass, cost and time weighted with the same :class:`UtilityWeights` the ``value`` policy decides
by (options: ``pass_value``, ``cost_weight``, ``time_weight``); ties go to the lexicographic
order, so the choice is total and reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from swarm_planner import hookimpl
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.protocols import CandidateOutcome
from swarm_planner.core.utility import UtilityWeights
from swarm_planner.plugins.selectors.lexicographic import lexicographic_key


@attrs.frozen
class UtilitySelector:
    weights: UtilityWeights = attrs.field(factory=UtilityWeights)

    def select(self, outcomes: Sequence[CandidateOutcome]) -> int:
        if not outcomes:
            raise ValueError("cannot select a winner among zero outcomes")

        def key(i: int) -> tuple[float, tuple[object, ...]]:
            o = outcomes[i]
            return (
                -float(self.weights.of(o.verified, o.cost_usd, o.duration_ms)),
                lexicographic_key(o),
            )

        return min(range(len(outcomes)), key=key)


@hookimpl
def register_selectors(register: Register) -> None:
    register("utility", UtilitySelector, options=UtilityWeights)
