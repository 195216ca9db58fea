"""Running one candidate, wherever it runs: the executor called, its answer checked.

This is the one piece of the bench that runs where the candidate runs (in the driver's thread
for the local backend, inside a Ray worker for the Ray backend), so both backends judge an
executor's answer by the same rules: an exception or a malformed outcome is a failed candidate
with its reason, never a crashed bench.
"""

from __future__ import annotations

import inspect
import math
import time
from typing import Any

from swarm_planner.core.action_space import JointAction
from swarm_planner.core.contracts import STATUSES, PlannerInput
from swarm_planner.core.protocols import CandidateOutcome, Executor


def accepts_timeout(executor: Executor) -> bool:
    """Whether ``executor.run`` takes ``timeout_seconds`` (the bench then passes the
    candidate's deadline; an executor without it applies the action's cap itself)."""
    try:
        parameters = inspect.signature(executor.run).parameters
    except (TypeError, ValueError):
        return False
    return "timeout_seconds" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def outcome_problem(outcome: Any, action: JointAction) -> str | None:
    """What is wrong with an executor's answer for ``action`` (None: nothing)."""
    if not isinstance(outcome, CandidateOutcome):
        return f"returned {type(outcome).__name__}, not a CandidateOutcome"
    if outcome.action != action:
        return f"reported action {outcome.action.text}, not the one asked for ({action.text})"
    if outcome.status not in STATUSES:
        return f"status {outcome.status!r} is not one of {'|'.join(STATUSES)}"
    if outcome.verified and outcome.status != "success":
        return f"verified with status {outcome.status!r}"
    for name in ("duration_ms", "cost_usd", "candidate_minutes"):
        value = getattr(outcome, name)
        if value is None and name == "candidate_minutes":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{name} is {value!r}, not a number"
        if not math.isfinite(value) or value < 0:
            return f"{name} is {value!r}, not a finite non-negative number"
    return None


def failed_outcome(action: JointAction, error: str, duration_ms: int = 0) -> CandidateOutcome:
    """A candidate that could not be run or read: failed, with why."""
    return CandidateOutcome(action, False, "failed", duration_ms, 0.0, error=error)


def run_candidate(
    executor: Executor,
    executor_name: str,
    planner_input: PlannerInput,
    action: JointAction,
    timeout_seconds: float | None,
) -> CandidateOutcome:
    """Run one candidate; the executor's outcome, or a failed one saying what went wrong.
    ``timeout_seconds`` is passed to executors that take it (None: never passed)."""
    started = time.perf_counter()
    try:
        if timeout_seconds is not None:
            outcome = executor.run(planner_input, action, timeout_seconds=timeout_seconds)  # type: ignore[call-arg]
        else:
            outcome = executor.run(planner_input, action)
    except Exception as exc:  # an executor's failure is the candidate's, never the bench's
        elapsed = int((time.perf_counter() - started) * 1000)
        message = " ".join(str(exc).split())[:500]
        return failed_outcome(
            action, f"the {executor_name} executor raised {type(exc).__name__}: {message}", elapsed
        )
    problem = outcome_problem(outcome, action)
    if problem is not None:
        elapsed = int((time.perf_counter() - started) * 1000)
        return failed_outcome(action, f"the {executor_name} executor {problem}", elapsed)
    return outcome
