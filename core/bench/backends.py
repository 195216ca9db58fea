"""Where a bench's candidates run: in the driver (``local``) or as Ray tasks (``ray``).

The driver is the same for both: it samples, keeps the candidate log, the budgets, the progress
bar and the selector, and asks its backend to run one candidate at a time per issue thread. A
backend only runs candidates, so a bench started on one backend resumes on the other with the
same log, and the same seeds give the same outputs. ``ray`` lives in :mod:`.ray_backend` and is
the only module that imports Ray.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import attrs

from swarm_planner.core.action_space import JointAction
from swarm_planner.core.bench.candidate import run_candidate
from swarm_planner.core.bench.log import BenchError
from swarm_planner.core.config import RayConfig
from swarm_planner.core.contracts import PlannerInput
from swarm_planner.core.protocols import CandidateOutcome, Executor

BACKENDS = ("local", "ray")


@attrs.frozen
class CandidateTask:
    """One candidate to run: which case and slot, its input and action, and its deadline
    (None: the executor does not take one)."""

    case_id: str
    slot: int
    planner_input: PlannerInput
    action: JointAction
    timeout_seconds: float | None


class Backend(Protocol):
    """Runs candidates for the driver; called from the driver's issue threads at once."""

    name: str
    can_kill: bool
    """Whether running candidates can be stopped (``on_budget: kill``)."""

    def start(self, executor: Executor, executor_name: str, out: Path, gated: bool) -> int:
        """Get ready to run candidates of ``executor``; how many can run at once. ``gated``:
        candidates that wait for a worker must be able to be turned away (spend budgets)."""

    def run(self, task: CandidateTask) -> CandidateOutcome | None:
        """The candidate's outcome (failed, with why, when it could not be run); None when it
        never started because the budget was reached while it waited."""

    def budget_reached(self, kill: bool) -> None:
        """Turn away every candidate that has not started; ``kill``: stop running ones too."""

    def close(self) -> None:
        """Release what :meth:`start` took."""


class LocalBackend:
    """Candidates run in the driver's own issue threads (``--jobs`` at once)."""

    name = "local"
    can_kill = False

    def __init__(self) -> None:
        self._executor: Executor | None = None
        self._executor_name = "?"
        self._closed = False

    def start(self, executor: Executor, executor_name: str, out: Path, gated: bool) -> int:
        self._executor, self._executor_name = executor, executor_name
        return 1

    def run(self, task: CandidateTask) -> CandidateOutcome | None:
        if self._closed or self._executor is None:
            return None
        return run_candidate(
            self._executor,
            self._executor_name,
            task.planner_input,
            task.action,
            task.timeout_seconds,
        )

    def budget_reached(self, kill: bool) -> None:
        self._closed = True

    def close(self) -> None:
        self._executor = None


def make_backend(name: str, ray: RayConfig | None = None) -> Backend:
    """The backend called ``name`` (``ray`` is configured by ``planner.bench.ray``)."""
    if name == "local":
        return LocalBackend()
    if name == "ray":
        from swarm_planner.core.bench.ray_backend import RayBackend

        return RayBackend(ray or RayConfig())
    raise BenchError(f"unknown backend {name!r}; backends: {', '.join(BACKENDS)}")
