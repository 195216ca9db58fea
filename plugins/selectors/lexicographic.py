"""The ``lexicographic`` selector: the field's winner rule.

Verified first, then shorter duration, then lower cost, then the action text (so the choice is
total and reproducible even between identical outcomes).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from swarm_planner import hookimpl
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.protocols import CandidateOutcome


@attrs.frozen
class LexicographicSelector:
    def select(self, outcomes: Sequence[CandidateOutcome]) -> int:
        if not outcomes:
            raise ValueError("cannot select a winner among zero outcomes")
        return min(
            range(len(outcomes)),
            key=lambda i: (
                not outcomes[i].verified,
                outcomes[i].duration_ms,
                outcomes[i].cost_usd,
                outcomes[i].action.text,
            ),
        )


@hookimpl
def register_selectors(register: Register) -> None:
    register("lexicographic", LexicographicSelector)
