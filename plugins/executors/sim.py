"""The ``sim`` executor: runs a bench candidate in the embedded world.

It is the same ground truth that produced the simulated archives (:meth:`World.run_action`), so
archive labels and bench outcomes come from one world. Options: ``seed`` (the world's seed; use
the seed the root was simulated with) and ``disturbances`` (off by default: the calm world).
"""

from __future__ import annotations

import attrs

from swarm_planner import hookimpl
from swarm_planner.core.action_space import JointAction
from swarm_planner.core.contracts import PlannerInput
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.protocols import CandidateOutcome, GateOutcome
from swarm_planner.sim.disturbances import CALM, Disturbances
from swarm_planner.sim.world import World


@attrs.frozen
class SimExecutorOptions:
    seed: int = 0
    disturbances: Disturbances = CALM


@attrs.frozen
class SimExecutor:
    world: World

    @classmethod
    def from_options(cls, options: SimExecutorOptions) -> SimExecutor:
        return cls(World(options.seed, options.disturbances))

    def run(self, planner_input: PlannerInput, action: JointAction) -> CandidateOutcome:
        """The world's outcome (it applies the action's own minutes cap; no wall-clock wait)."""
        planner_input.action_space.check(action, planner_input.job_type)
        issue = planner_input.issue
        outcome = self.world.run_action(
            issue, planner_input.job_type, action, attempt=issue.dk_attempts, salt="bench"
        )
        return CandidateOutcome(
            action=action,
            verified=outcome.verified,
            status=outcome.status,
            duration_ms=outcome.duration_ms,
            cost_usd=outcome.cost_usd,
            fail_codes=outcome.fail_codes,
            gates=tuple(GateOutcome(name, passed) for name, passed, _ in outcome.gates),
            candidate_minutes=round(sum(run.minutes for run in outcome.candidates), 6),
        )


@hookimpl
def register_executors(register: Register) -> None:
    register("sim", SimExecutor.from_options, options=SimExecutorOptions)
