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


def lexicographic_key(outcome: CandidateOutcome) -> tuple[bool, int, float, str]:
    """The field's order: verified, shorter, cheaper, then the action text (lower is better)."""
    return (not outcome.verified, outcome.duration_ms, outcome.cost_usd, outcome.action.text)


@attrs.frozen
class LexicographicSelector:
    def select(self, outcomes: Sequence[CandidateOutcome]) -> int:
        if not outcomes:
            raise ValueError("cannot select a winner among zero outcomes")
        return min(range(len(outcomes)), key=lambda i: lexicographic_key(outcomes[i]))


@hookimpl
def register_selectors(register: Register) -> None:
    register("lexicographic", LexicographicSelector)
