"""The ``heuristic`` policy: today's hand-written rule, scored as a one-hot distribution.

A one-hot distribution lets the rule be evaluated with the same metrics as learned policies.
"""

from __future__ import annotations

import attrs
from swarm_planner import hookimpl
from swarm_planner.core.contracts import PlannerInput
from swarm_planner.core.heuristic import HeuristicOptions, HeuristicRules
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.protocols import ActionDistribution


@attrs.frozen
class HeuristicPolicy:
    rules: HeuristicRules

    @classmethod
    def from_options(cls, options: HeuristicOptions) -> HeuristicPolicy:
        return cls(HeuristicRules(options))

    def predict(self, planner_input: PlannerInput) -> ActionDistribution:
        chosen = self.rules.action_for(planner_input)
        actions = planner_input.action_space.valid_actions(planner_input.job_type)
        return ActionDistribution.one_hot(actions, chosen)


@hookimpl
def register_policies(register: Register) -> None:
    register("heuristic", HeuristicPolicy.from_options, options=HeuristicOptions)
