"""The ``heuristic`` fallback: the rule table decides when the model abstains or fails."""

from __future__ import annotations

import attrs
from swarm_planner import hookimpl
from swarm_planner.core.action_space import JointAction
from swarm_planner.core.contracts import PlannerInput
from swarm_planner.core.heuristic import HeuristicOptions, HeuristicRules
from swarm_planner.core.hookspecs import Register


@attrs.frozen
class HeuristicFallback:
    rules: HeuristicRules

    @classmethod
    def from_options(cls, options: HeuristicOptions) -> HeuristicFallback:
        return cls(HeuristicRules(options))

    def decide(self, planner_input: PlannerInput) -> JointAction:
        return self.rules.action_for(planner_input)


@hookimpl
def register_fallbacks(register: Register) -> None:
    register("heuristic", HeuristicFallback.from_options, options=HeuristicOptions)
