"""The ``random`` sampler: the baseline plus K-1 distinct valid actions drawn uniformly, seeded
per issue. Inclusion probabilities are exact: 1 for the baseline, (K-1)/(n-1) for every other
valid action, so off-policy estimates can weight its outcomes."""

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
        rest = [a for a in valid if a != baseline]
        return (baseline, *(rest[i] for i in rng.permutation(len(rest))[: k - 1]))

    def inclusion(
        self, planner_input: PlannerInput, baseline: JointAction, k: int
    ) -> dict[str, float]:
        valid = planner_input.action_space.valid_actions(planner_input.job_type)
        rest = [a for a in valid if a != baseline]
        share = min(1.0, (k - 1) / len(rest)) if rest else 0.0
        return {baseline.text: 1.0, **{a.text: share for a in rest}}


@hookimpl
def register_samplers(register: Register) -> None:
    register("random", RandomSampler.from_options, options=SeedOptions)
