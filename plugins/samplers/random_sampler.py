"""The ``random`` sampler: K distinct valid actions drawn uniformly, seeded per issue."""

from __future__ import annotations

import attrs
from swarm_planner import hookimpl
from swarm_planner.core.action_space import JointAction
from swarm_planner.core.contracts import PlannerInput
from swarm_planner.core.hookspecs import Register
from swarm_planner.plugins.samplers.seeding import SeedOptions, issue_rng


@attrs.frozen
class RandomSampler:
    seed: int = 0

    @classmethod
    def from_options(cls, options: SeedOptions) -> RandomSampler:
        return cls(options.seed)

    def sample(
        self, planner_input: PlannerInput, baseline: JointAction, k: int
    ) -> tuple[JointAction, ...]:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        valid = planner_input.action_space.valid_actions(planner_input.job_type)
        picks = issue_rng(self.seed, planner_input).permutation(len(valid))[:k]
        return tuple(valid[i] for i in picks)


@hookimpl
def register_samplers(register: Register) -> None:
    register("random", RandomSampler.from_options, options=SeedOptions)
