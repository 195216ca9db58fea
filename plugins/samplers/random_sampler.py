"""The ``random`` sampler: K distinct valid actions drawn uniformly, seeded per issue."""

from __future__ import annotations

import attrs

from swarm_planner import hookimpl
from swarm_planner.core.action_space import JointAction
from swarm_planner.core.contracts import PlannerInput
from swarm_planner.core.hookspecs import Register
from swarm_planner.plugins.samplers.seeding import SeededSampler, SeedOptions


@attrs.frozen
class RandomSampler(SeededSampler):
    def sample(
        self, planner_input: PlannerInput, baseline: JointAction, k: int
    ) -> tuple[JointAction, ...]:
        rng = self.rng(planner_input, k)
        valid = planner_input.action_space.valid_actions(planner_input.job_type)
        return tuple(valid[i] for i in rng.permutation(len(valid))[:k])


@hookimpl
def register_samplers(register: Register) -> None:
    register("random", RandomSampler.from_options, options=SeedOptions)
