"""What the seeded samplers share: options, construction, the ``k`` check and per-issue seeding.

A sampler's draw for an issue depends only on the seed and the issue's ``input_hash``, never on
how many issues were sampled before, so a bench can be resumed or sharded without changing
which candidates an issue gets.
"""

from __future__ import annotations

from typing import TypeVar

import attrs
import numpy as np

from swarm_planner.core.contracts import PlannerInput

S = TypeVar("S", bound="SeededSampler")


@attrs.frozen
class SeedOptions:
    seed: int = 0


@attrs.frozen
class SeededSampler:
    seed: int = 0

    @classmethod
    def from_options(cls: type[S], options: SeedOptions) -> S:
        return cls(options.seed)

    def rng(self, planner_input: PlannerInput, k: int) -> np.random.Generator:
        """The issue's generator; also rejects a ``k`` below one."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        digest = int(planner_input.input_hash()[:16], 16)
        return np.random.default_rng([self.seed & 0xFFFFFFFF, digest >> 32, digest & 0xFFFFFFFF])
