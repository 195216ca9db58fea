"""The ``cheapest_pass`` selector: the passing candidate that cost least.

Among verified candidates: lower cost, then shorter duration, then the action text. When none
passed it answers as ``lexicographic`` would (the bench then records no winner unless asked to
keep failed winners).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from swarm_planner import hookimpl
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.protocols import CandidateOutcome


@attrs.frozen
class CheapestPassSelector:
    def select(self, outcomes: Sequence[CandidateOutcome]) -> int:
        if not outcomes:
            raise ValueError("cannot select a winner among zero outcomes")
        return min(
            range(len(outcomes)),
            key=lambda i: (
                not outcomes[i].verified,
                outcomes[i].cost_usd,
                outcomes[i].duration_ms,
                outcomes[i].action.text,
            ),
        )


@hookimpl
def register_selectors(register: Register) -> None:
    register("cheapest_pass", CheapestPassSelector)
