"""Bench budgets in candidate-minutes: the agent time a candidate spends, every parallel agent
of a speculate action counted.

Why reserve before running: a budget that is only checked after the fact is exceeded by every
candidate in flight. A candidate starts only when its worst case (its timeout × the agents it may
run) fits in what is left; when it finishes, the reserve is replaced by what it really spent. So
a budget is never exceeded, and what was skipped is logged with the reason. With ``--jobs 1``
the skipped set is deterministic; with more jobs, which late candidates meet a binding whole-bench
budget depends on finishing order (the per-issue budget stays deterministic: an issue's
candidates run one after another).
"""

from __future__ import annotations

import threading

from swarm_planner.core.action_space import NA, JointAction
from swarm_planner.core.protocols import CandidateOutcome

SERIAL = "serial_handoff"


def timeout_minutes(action: JointAction, default_minutes: int) -> int:
    """The minutes a candidate may run: its minutes cap, or the bench's default when ``NA``."""
    cap = action.max_minutes_bin
    return default_minutes if cap == NA else int(cap)


def agents(action: JointAction, uncapped: int) -> int:
    """Parallel agents an action may run: one for serial, its cap (or ``uncapped``) else."""
    if action.swarm_id == SERIAL:
        return 1
    cap = action.max_candidates_bin
    return uncapped if cap == NA else max(1, int(cap))


def worst_case_minutes(action: JointAction, default_minutes: int, uncapped: int) -> float:
    return float(timeout_minutes(action, default_minutes) * agents(action, uncapped))


def spent_minutes(outcome: CandidateOutcome, uncapped: int) -> tuple[float, bool]:
    """(candidate-minutes, estimated?): the executor's figure, else duration × agents."""
    if outcome.candidate_minutes is not None:
        return float(outcome.candidate_minutes), False
    return outcome.duration_ms / 60_000 * agents(outcome.action, uncapped), True


class Budget:
    """A pool of candidate-minutes shared by threads (``None``: unlimited).

    ``reserve`` mode (the default) admits a candidate only if its worst case fits beside what
    is spent and reserved, so the limit is never passed. ``spend`` mode admits candidates while
    the minutes really spent are below the limit, whatever is in flight: a cluster stays full
    when timeouts are long, and the limit is passed by at most what was running when it was
    reached (or by nothing, when running candidates are killed then)."""

    def __init__(self, limit: float | None, spent: float = 0.0, mode: str = "reserve") -> None:
        if mode not in ("reserve", "spend"):
            raise ValueError(f"budget mode {mode!r} is not reserve|spend")
        self.limit = limit
        self.mode = mode
        self.spent = spent
        self.reserved = 0.0
        self._lock = threading.Lock()

    @property
    def reached(self) -> bool:
        """Spend mode: nothing more may start."""
        return self.mode == "spend" and self.limit is not None and self.spent >= self.limit

    def reserve(self, amount: float) -> bool:
        with self._lock:
            if self.limit is not None:
                if self.mode == "spend" and self.spent >= self.limit:
                    return False
                if self.mode == "reserve" and self.spent + self.reserved + amount > self.limit:
                    return False
            self.reserved += amount
            return True

    def settle(self, reserved: float, spent: float) -> None:
        with self._lock:
            self.reserved -= reserved
            self.spent += spent

    def release(self, reserved: float) -> None:
        self.settle(reserved, 0.0)
