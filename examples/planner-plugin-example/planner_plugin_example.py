"""An example third-party swarm-planner plugin.

It registers, through the ``swarm_planner`` entry-point group, exactly as the built-ins do:

- the ``cheapest`` selector: among verified candidates the cheapest wins (a team that pays per
  token may prefer that to the fastest); with none verified, the fastest;
- the ``always_serial`` fallback: one serial agent with a configurable timeout bin, for teams
  that never want speculation when the model abstains.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from swarm_planner import hookimpl
from swarm_planner.core.action_space import NA, Bin, JointAction
from swarm_planner.core.contracts import PlannerInput
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.protocols import CandidateOutcome


@attrs.frozen
class CheapestSelector:
    def select(self, outcomes: Sequence[CandidateOutcome]) -> int:
        if not outcomes:
            raise ValueError("cannot select a winner among zero outcomes")
        return min(
            range(len(outcomes)),
            key=lambda i: (
                not outcomes[i].verified,
                outcomes[i].cost_usd if outcomes[i].verified else 0.0,
                outcomes[i].duration_ms,
                outcomes[i].action.text,
            ),
        )


@attrs.frozen
class AlwaysSerialOptions:
    max_minutes: Bin = NA


@attrs.frozen
class AlwaysSerialFallback:
    options: AlwaysSerialOptions

    def decide(self, planner_input: PlannerInput) -> JointAction:
        action = JointAction("serial_handoff", 1, self.options.max_minutes, NA)
        return planner_input.action_space.check(action, planner_input.job_type)


@hookimpl
def register_selectors(register: Register) -> None:
    register("cheapest", CheapestSelector)


@hookimpl
def register_fallbacks(register: Register) -> None:
    register("always_serial", AlwaysSerialFallback, options=AlwaysSerialOptions)
