"""The ``uncertainty`` sampler: the baseline plus the K-1 actions an outcome model is least sure
will pass.

Why: once a ``value`` bundle exists, the next bench is best spent where it is unsure (P(pass)
near 1/2, the largest p·(1−p)), not where it already knows the answer. Options: ``bundle`` (a
value bundle folder), ``policy`` (the plugin that opens it, ``value`` by default; any policy
offering ``estimates()``) and ``seed`` (ties). Deterministic; no inclusion probabilities.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from swarm_planner import hookimpl
from swarm_planner.core.action_space import JointAction
from swarm_planner.core.contracts import PlannerInput
from swarm_planner.core.errors import ConfigError
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.jsonconv import json_field, validator
from swarm_planner.core.protocols import OutcomeModel
from swarm_planner.plugins.samplers.seeding import SeededSampler


@attrs.frozen
class UncertaintyOptions:
    bundle: str = json_field(
        validator=validator(lambda v: None if v else "a bundle folder is required")
    )
    policy: str = "value"
    seed: int = 0


@attrs.frozen
class UncertaintySampler(SeededSampler):
    model: Any = None

    @classmethod
    def from_options(cls, options: UncertaintyOptions) -> UncertaintySampler:  # type: ignore[override]
        from swarm_planner.core.plugins import get_host

        model = get_host().create("policy", options.policy, {"path": options.bundle})
        if not isinstance(model, OutcomeModel):
            raise ConfigError(
                "planner.bench.sampler_options",
                [
                    f"policy: {options.policy!r} gives no estimates(); the uncertainty sampler "
                    "needs an outcome model such as a value bundle"
                ],
            )
        return cls(options.seed, model)

    def sample(
        self, planner_input: PlannerInput, baseline: JointAction, k: int
    ) -> tuple[JointAction, ...]:
        rng = self.rng(planner_input, k)
        estimates = self.model.estimates(planner_input)
        spread = estimates.p_pass * (1.0 - estimates.p_pass)
        ties = rng.random(len(spread))
        order = np.lexsort((ties, -spread))
        chosen = [baseline]
        for i in order:
            action = estimates.actions[int(i)]
            if action not in chosen:
                chosen.append(action)
            if len(chosen) == k:
                break
        return tuple(chosen)


@hookimpl
def register_samplers(register: Register) -> None:
    register("uncertainty", UncertaintySampler.from_options, options=UncertaintyOptions)
