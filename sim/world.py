"""The hidden ground truth of the embedded kernel world.

Every issue has hidden traits (how hard it really is, how many minutes one agent really needs,
whether speculation helps, how it fails) derived from the world seed and the issue's id and public
fields alone, so any planner_input's issue can be run, by the archive generator and by the bench,
through the one function :meth:`World.run`. The truth is built so that the best action depends on
the issue: some high-risk issues pass serially at a third of the cost of speculation; some small
issues fail unless given more minutes; failures leave gate names and fail codes that recur on
retries of the same issue.
"""

from __future__ import annotations

import hashlib
import math

import attrs
import numpy as np

from swarm_planner.core.action_space import NA, JointAction
from swarm_planner.core.contracts import Issue, Status
from swarm_planner.sim.disturbances import CALM, Disturbances

DEFAULT_MINUTES_CAP = 120
"""Minutes a candidate may run when the action sets no cap (the kernel's hard timeout)."""

DEFAULT_SPECULATE_CANDIDATES = 2
"""Candidates a speculate action with no candidate cap runs."""

DEFAULT_ITERATIONS = 3
"""Iterations a fab-world job runs when the action sets no cap."""

COST_PER_CANDIDATE_MINUTE = 0.05
TOKENS_PER_MINUTE = 3_000

GATES: dict[str, tuple[str, ...]] = {
    "pytest": ("pytest_failed", "assertion_error", "fixture_error"),
    "mypy": ("type_error", "missing_annotation"),
    "ruff": ("lint_failed",),
    "build": ("build_failed", "dependency_conflict"),
    "e2e": ("e2e_failed", "flaky_selector"),
    "render": ("render_mismatch", "asset_missing"),
}
"""Gate name → the fail codes it can leave."""

_BASE_DIFFICULTY = {"low": 0.2, "medium": 0.35, "high": 0.55, "critical": 0.7}
_WORK_MINUTES = {"XS": 5.0, "S": 8.0, "M": 15.0, "L": 26.0, "XL": 42.0}
_TAG_GATES = {
    "typing": "mypy",
    "frontend": "e2e",
    "ui": "e2e",
    "build": "build",
    "ci": "build",
    "lint": "ruff",
    "render": "render",
}
_HARD_WORDS = {"race", "flaky", "migration", "concurrency", "deadlock", "security"}


def stable_rng(*parts: object) -> np.random.Generator:
    """A generator seeded from the sha256 of ``parts``: same parts, same draws, on every machine."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return np.random.default_rng(list(np.frombuffer(digest[:16], dtype=np.uint32)))


@attrs.frozen
class HiddenTraits:
    """What the world knows about an issue and the planner never sees directly."""

    difficulty: float
    work_minutes: float
    speculation_gain: float
    failure_gate: str
    failure_code: str
    easy_despite_risk: bool
    needs_more_minutes: bool


@attrs.frozen
class CandidateRun:
    solved: bool
    timed_out: bool
    minutes: float


@attrs.frozen
class SimOutcome:
    """What one dispatch did: the archive fields and the bench fields in one record."""

    status: Status
    gates: tuple[tuple[str, bool, float], ...]
    fail_codes: tuple[str, ...]
    duration_ms: int
    cost_usd: float
    tokens_in: int
    tokens_out: int
    candidates: tuple[CandidateRun, ...]

    @property
    def verified(self) -> bool:
        return self.status == "success"


@attrs.frozen
class World:
    """The ground truth of one seeded world, calm unless ``disturbances`` say otherwise."""

    seed: int = 0
    disturbances: Disturbances = CALM

    def traits(self, issue: Issue, job_type: str) -> HiddenTraits:
        """The hidden traits of ``issue``: a pure function of the seed and the public fields."""
        rng = stable_rng("traits", self.seed, issue.issue_id)
        difficulty = _BASE_DIFFICULTY[issue.dk_risk] + rng.normal(0.0, 0.1)
        text = f"{issue.title or ''} {issue.description or ''}".lower()
        if any(word in text for word in _HARD_WORDS):
            difficulty += 0.12
        easy = issue.dk_risk in ("high", "critical") and rng.random() < 0.3
        if easy:
            difficulty = 0.15 + rng.normal(0.0, 0.04)
        difficulty = float(np.clip(difficulty, 0.05, 0.92))
        work = _WORK_MINUTES[issue.dk_size] * float(rng.lognormal(0.0, 0.3))
        needs_more = issue.dk_size in ("XS", "S") and rng.random() < 0.2
        if needs_more:
            work = 24.0 + 14.0 * float(rng.random())
        if job_type == "fab-world":
            work *= 1.25
        gate = next((_TAG_GATES[t] for t in sorted(issue.tags) if t in _TAG_GATES), None)
        if gate is None:
            gate = str(rng.choice(sorted(GATES)))
        code = str(rng.choice(GATES[gate]))
        gain = float(np.clip(0.75 - 0.5 * rng.random() + (0.2 if difficulty > 0.5 else 0.0), 0, 1))
        return HiddenTraits(difficulty, work, gain, gate, code, easy, needs_more)

    def run(
        self,
        issue: Issue,
        job_type: str,
        *,
        swarm_id: str,
        candidates: int,
        minutes_cap: int | None,
        iterations: int | None,
        attempt: int,
        salt: str = "",
    ) -> SimOutcome:
        """Run one dispatch. Deterministic in (seed, issue, action, attempt, salt)."""
        traits = self.traits(issue, job_type)
        n = 1 if swarm_id == "serial_handoff" else max(1, candidates)
        cap = float(minutes_cap if minutes_cap is not None else DEFAULT_MINUTES_CAP)
        disturbed = self.disturbances.active
        if disturbed:
            cap *= 1.0 - self.disturbances.queue_pressure
        iters = iterations if iterations is not None else DEFAULT_ITERATIONS
        rng = stable_rng(
            "run", self.seed, issue.issue_id, swarm_id, n, minutes_cap, iterations, attempt, salt
        )
        p_solve = float(np.clip(0.97 - 0.95 * traits.difficulty, 0.03, 0.97))
        p_solve = min(0.98, p_solve * (1.0 + 0.08 * attempt))
        time_factor = 1.0
        if job_type == "fab-world":
            p_solve = 1.0 - (1.0 - p_solve) ** math.sqrt(iters / DEFAULT_ITERATIONS)
            time_factor = math.sqrt(iters / DEFAULT_ITERATIONS)
        # Candidates of one issue are correlated: a shared draw decides whether the issue is
        # "solvable this time"; speculation_gain is how independent the candidates are.
        shared = rng.random()
        runs = []
        for _ in range(n):
            needed = traits.work_minutes * time_factor * float(rng.lognormal(0.0, 0.2))
            independent = rng.random() < traits.speculation_gain
            draw = rng.random() if independent else shared
            timed_out = needed > cap
            runs.append(CandidateRun(not timed_out and draw < p_solve, timed_out, min(needed, cap)))
        solved = any(r.solved for r in runs)
        outage = flaky = False
        if disturbed:  # its own stream: a calm twin's draws above are untouched
            hit = stable_rng(
                "disturb",
                self.seed,
                issue.issue_id,
                swarm_id,
                n,
                minutes_cap,
                iterations,
                attempt,
                salt,
            )
            outage = hit.random() < self.disturbances.toolchain_outage
            # Each candidate that solved it meets the flaky gate on its own: a vote of two is
            # two chances.
            flaky = solved and all(
                hit.random() < self.disturbances.flaky_gates for r in runs if r.solved
            )
            solved = solved and not outage and not flaky
        if solved:
            status: Status = "success"
        elif all(r.timed_out for r in runs):
            status = "timeout"
        else:
            status = "failed"
        # speculate: the vote waits for every candidate, so duration is the max, cost the sum.
        minutes = max(r.minutes for r in runs) + (1.5 if n > 1 else 0.0)
        spent = sum(r.minutes for r in runs)
        failing = "build" if outage else "e2e" if flaky else traits.failure_gate
        gates = tuple(
            (name, solved or name != failing, 1.0 if solved else 0.0)
            for name in sorted({"pytest", "ruff", failing})
        )
        if solved:
            codes: tuple[str, ...] = ()
        elif outage:
            status, codes = "failed", ("toolchain_unavailable",)
        elif flaky:
            status, codes = "failed", ("flaky_selector",)
        elif status == "timeout":
            codes = ("timeout_exceeded",)
        else:
            codes = (traits.failure_code,)
        return SimOutcome(
            status=status,
            gates=gates,
            fail_codes=codes,
            duration_ms=round(minutes * 60_000),
            cost_usd=round(spent * COST_PER_CANDIDATE_MINUTE, 4),
            tokens_in=int(spent * TOKENS_PER_MINUTE),
            tokens_out=int(spent * TOKENS_PER_MINUTE / 12),
            candidates=tuple(runs),
        )

    def run_action(
        self, issue: Issue, job_type: str, action: JointAction, *, attempt: int = 0, salt: str = ""
    ) -> SimOutcome:
        """Run a binned action (what the bench asks): NA means the world's defaults."""
        candidates = action.max_candidates_bin
        if candidates == NA:
            candidates = 1 if action.swarm_id == "serial_handoff" else DEFAULT_SPECULATE_CANDIDATES
        minutes = action.max_minutes_bin
        iterations = action.max_iterations_bin
        return self.run(
            issue,
            job_type,
            swarm_id=action.swarm_id,
            candidates=int(candidates),
            minutes_cap=None if minutes == NA else int(minutes),
            iterations=None if iterations == NA else int(iterations),
            attempt=attempt,
            salt=salt,
        )
