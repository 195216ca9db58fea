"""The ``deterministic`` sampler: the baseline, the other topology, then a seeded shuffle.

Order: the baseline action; the first valid action (canonical order) of the other topology, so
that every bench compares serial against speculation; then the remaining valid actions in a
shuffle seeded per issue. K larger than the valid set returns every valid action.
"""

from __future__ import annotations

import attrs

from swarm_planner import hookimpl
from swarm_planner.core.action_space import JointAction
from swarm_planner.core.contracts import PlannerInput
from swarm_planner.core.hookspecs import Register
from swarm_planner.plugins.samplers.seeding import SeededSampler, SeedOptions


@attrs.frozen
class DeterministicSampler(SeededSampler):
    def sample(
        self, planner_input: PlannerInput, baseline: JointAction, k: int
    ) -> tuple[JointAction, ...]:
        rng = self.rng(planner_input, k)
        space, job_type = planner_input.action_space, planner_input.job_type
        space.check(baseline, job_type)
        valid = space.valid_actions(job_type)
        chosen = [baseline]
        other = next((a for a in valid if a.swarm_id != baseline.swarm_id), None)
        if other is not None:
            chosen.append(other)
        rest = [a for a in valid if a not in chosen]
        chosen.extend(rest[i] for i in rng.permutation(len(rest)))
        return tuple(chosen[:k])

    def inclusion(
        self, planner_input: PlannerInput, baseline: JointAction, k: int
    ) -> dict[str, float]:
        """Exact: 1 for the baseline and the other topology's first action, an equal share of
        the remaining places for every other valid action."""
        valid = planner_input.action_space.valid_actions(planner_input.job_type)
        other = next((a for a in valid if a.swarm_id != baseline.swarm_id), None)
        fixed = [baseline] + ([other] if other is not None else [])
        rest = [a for a in valid if a not in fixed]
        places = max(0, k - len(fixed))
        share = min(1.0, places / len(rest)) if rest else 0.0
        out = {a.text: share for a in rest}
        out.update({a.text: 1.0 if i < k else 0.0 for i, a in enumerate(fixed)})
        return out


@hookimpl
def register_samplers(register: Register) -> None:
    register("deterministic", DeterministicSampler.from_options, options=SeedOptions)
