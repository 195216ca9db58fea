"""Per-issue seeding shared by the samplers.

A sampler's draw for an issue depends only on the seed and the issue's ``input_hash``, never on
how many issues were sampled before, so a bench can be resumed or sharded without changing
which candidates an issue gets.
"""

from __future__ import annotations

import attrs
import numpy as np
from swarm_planner.core.contracts import PlannerInput


@attrs.frozen
class SeedOptions:
    seed: int = 0


def issue_rng(seed: int, planner_input: PlannerInput) -> np.random.Generator:
    digest = int(planner_input.input_hash()[:16], 16)
    return np.random.default_rng([seed & 0xFFFFFFFF, digest >> 32, digest & 0xFFFFFFFF])
