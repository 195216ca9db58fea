"""The ``coverage`` sampler: the baseline plus the K-1 valid actions tried least so far.

Why: a uniform draw leaves rare actions with few outcomes; a model of outcomes needs every
action tried on enough issues. The sampler counts, across the whole bench, how often each action
of each job type has been proposed, and proposes the least-tried; ties are broken by a key
seeded per issue, so the result is deterministic for a given case order (the bench samples
every case, in order, before running any, so a resumed bench gets the same candidates). No
inclusion probabilities are logged: the choice depends on the bench's history, not on a draw.
"""

from __future__ import annotations

import threading
from collections import Counter

import attrs

from swarm_planner import hookimpl
from swarm_planner.core.action_space import JointAction
from swarm_planner.core.contracts import PlannerInput
from swarm_planner.core.hookspecs import Register
from swarm_planner.plugins.samplers.seeding import SeededSampler, SeedOptions


@attrs.frozen
class CoverageSampler(SeededSampler):
    tried: Counter[tuple[str, str]] = attrs.field(factory=Counter, eq=False, repr=False)
    """(job type, action text) → times proposed: the one mutable part, guarded by the lock."""
    lock: threading.Lock = attrs.field(factory=threading.Lock, eq=False, repr=False)

    @classmethod
    def from_options(cls, options: SeedOptions) -> CoverageSampler:
        return cls(options.seed)

    def sample(
        self, planner_input: PlannerInput, baseline: JointAction, k: int
    ) -> tuple[JointAction, ...]:
        rng = self.rng(planner_input, k)
        job = planner_input.job_type
        valid = planner_input.action_space.valid_actions(job)
        rest = [a for a in valid if a != baseline]
        ties = rng.permutation(len(rest))
        with self.lock:
            order = sorted(
                range(len(rest)), key=lambda i: (self.tried[(job, rest[i].text)], ties[i])
            )
            chosen = (baseline, *(rest[i] for i in order[: k - 1]))
            for action in chosen:
                self.tried[(job, action.text)] += 1
        return chosen


@hookimpl
def register_samplers(register: Register) -> None:
    register("coverage", CoverageSampler.from_options, options=SeedOptions)
