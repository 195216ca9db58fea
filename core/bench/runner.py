"""The bench runner: sample K candidates per case, run them on a bounded pool, log each one the
moment it finishes, then judge and write the outputs.

Sampling happens for every case before anything runs, in case order: a sampler that balances
across the bench (``coverage``) then sees the same history on every run, so a resumed bench
asks for exactly the candidates the first run asked for. An issue's candidates run one after
another (its per-issue budget is then exact); issues run ``jobs`` at a time. Nothing an executor
does crashes the bench: an exception or a malformed outcome is a failed candidate with its reason.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

import attrs

from swarm_planner.core.action_space import JointAction
from swarm_planner.core.bench.backends import Backend, CandidateTask, LocalBackend
from swarm_planner.core.bench.budget import (
    Budget,
    spent_minutes,
    timeout_minutes,
    worst_case_minutes,
)
from swarm_planner.core.bench.candidate import accepts_timeout, failed_outcome
from swarm_planner.core.bench.cases import CASES_FILE
from swarm_planner.core.bench.log import (
    ATTEMPTS_FILE,
    LOG_FILE,
    BenchError,
    CandidateLog,
    read_attempts,
)
from swarm_planner.core.bench.records import (
    CANDIDATE_LINE_V1,
    BenchCase,
    BenchSettings,
    CandidateLine,
    CaseLine,
    CaseResult,
    GateLine,
)
from swarm_planner.core.canonical import canonical_json, sha256_hex
from swarm_planner.core.contracts import dump, load
from swarm_planner.core.documents import read_json_object
from swarm_planner.core.errors import ContractError, InvalidActionError
from swarm_planner.core.protocols import CandidateOutcome, Executor, Sampler, Selector
from swarm_planner.core.recording import write_json_atomic

CONFIG_FILE = "bench_config.json"

BenchProgress = Callable[[int, int, str], None]
"""``(done, total, note)``: the CLI draws a bar with the running pass rate and spend."""


def cases_hash(cases: Sequence[BenchCase]) -> str:
    """What the cases are: ids, inputs and baselines, in order."""
    return sha256_hex(
        canonical_json(
            [[c.case_id, c.planner_input.input_hash(), c.baseline.as_list()] for c in cases]
        )
    )


@attrs.frozen
class BenchPlugins:
    sampler: Sampler
    selector: Selector
    executor: Executor


@attrs.frozen
class CasePlan:
    case: BenchCase
    actions: tuple[JointAction, ...]
    inclusion: dict[str, float] | None


@attrs.frozen
class BenchSummary:
    """What a bench run did, for the CLI and ``summary.json``."""

    out: str
    config_hash: str
    cases: int
    candidates: int
    ran: int
    resumed: int
    skipped: dict[str, int]
    errors: dict[str, int]
    cases_passed: int
    baseline_passed: int
    spent_minutes: float
    estimated_minutes: float
    budget_minutes: float | None
    issue_budget_minutes: float | None
    torn_bytes: int
    seconds: float
    backend: str = "local"
    lost_attempts: int = 0
    """Attempts lost with their worker or node and run again (``attempts.jsonl``)."""

    @property
    def pass_rate(self) -> float:
        return self.cases_passed / self.cases if self.cases else 0.0


def plan_cases(
    cases: Sequence[BenchCase], sampler: Sampler, k: int, *, sampler_name: str = "sampler"
) -> list[CasePlan]:
    """Every case's candidates, baseline first, distinct and valid."""
    inclusion_of = getattr(sampler, "inclusion", None)
    plans = []
    for case in cases:
        x, baseline = case.planner_input, case.baseline
        try:
            x.action_space.check(baseline, x.job_type)
        except InvalidActionError as exc:
            raise BenchError(f"case {case.case_id}: the baseline is not valid: {exc}") from None
        drawn = tuple(sampler.sample(x, baseline, k))
        actions = [baseline]
        for action in drawn:
            if not isinstance(action, JointAction):
                raise BenchError(
                    f"the {sampler_name} sampler returned {action!r} for case {case.case_id}, "
                    "not a JointAction"
                )
            try:
                x.action_space.check(action, x.job_type)
            except InvalidActionError as exc:
                raise BenchError(
                    f"the {sampler_name} sampler proposed an invalid action for case "
                    f"{case.case_id}: {exc}"
                ) from None
            if action not in actions:
                actions.append(action)
        inclusion = None
        if callable(inclusion_of):
            inclusion = {str(t): float(p) for t, p in inclusion_of(x, baseline, k).items()}
            inclusion[baseline.text] = 1.0
        plans.append(CasePlan(case, tuple(actions[:k]), inclusion))
    return plans


class _Run:
    """One bench run's shared state: the log, budgets, counters and the progress note."""

    def __init__(
        self,
        plans: list[CasePlan],
        settings: BenchSettings,
        plugins: BenchPlugins,
        log: CandidateLog,
        executor_name: str,
        progress: BenchProgress | None,
        backend: Backend,
    ) -> None:
        self.settings, self.plugins, self.log = settings, plugins, log
        self.backend = backend
        self.reached = threading.Event()
        self.executor_name = executor_name
        self.progress = progress
        self.total = sum(len(p.actions) for p in plans)
        self.lock = threading.Lock()
        logged = list(log.lines.values())
        self.budget = Budget(
            settings.budget_minutes,
            sum(line.candidate_minutes for line in logged),
            settings.budget_mode,
        )
        self.case_spent: dict[str, float] = {}
        for line in logged:
            self.case_spent[line.case_id] = (
                self.case_spent.get(line.case_id, 0.0) + line.candidate_minutes
            )
        self.done = len(logged)
        self.passed = sum(line.verified for line in logged)
        self.ran = 0
        self.timeout_kw = accepts_timeout(plugins.executor)
        self.stop = threading.Event()

    def note(self) -> None:
        if self.progress is None:
            return
        with self.lock:
            done, passed, spent = self.done, self.passed, self.budget.spent
        rate = passed / done if done else 0.0
        self.progress(done, self.total, f"pass {rate:.1%} · {spent:,.0f} cand-min")

    def execute(self, plan: CasePlan, slot: int, action: JointAction) -> CandidateOutcome | None:
        seconds = None
        if self.timeout_kw:
            seconds = float(timeout_minutes(action, self.settings.timeout_minutes) * 60)
        task = CandidateTask(plan.case.case_id, slot, plan.case.planner_input, action, seconds)
        return self.backend.run(task)

    def settle(self, worst: float, minutes: float) -> None:
        """Book a finished candidate's minutes; in spend mode, the first time the budget is
        reached, the backend turns away what waits (and kills what runs, if configured)."""
        self.budget.settle(worst, minutes)
        if self.budget.reached and not self.reached.is_set():
            self.reached.set()
            self.backend.budget_reached(kill=self.settings.on_budget == "kill")

    def run_case(self, plan: CasePlan) -> None:
        s = self.settings
        case_id = plan.case.case_id
        issue_spent = self.case_spent.get(case_id, 0.0)
        for slot, action in enumerate(plan.actions):
            if self.stop.is_set():
                return
            if (case_id, slot) in self.log.lines:
                continue
            inclusion = None if plan.inclusion is None else plan.inclusion.get(action.text, 0.0)
            worst = worst_case_minutes(action, s.timeout_minutes, s.uncapped_candidates)
            skipped = None
            if s.issue_budget_minutes is not None and issue_spent + worst > s.issue_budget_minutes:
                skipped = (
                    f"issue budget: worst case {worst:g} cand-min with {issue_spent:g} of "
                    f"{s.issue_budget_minutes:g} spent"
                )
            elif not self.budget.reserve(worst):
                skipped = (
                    f"bench budget: worst case {worst:g} cand-min does not fit in "
                    f"{s.budget_minutes:g}"
                    if s.budget_mode == "reserve"
                    else f"bench budget: {self.budget.spent:g} of {s.budget_minutes:g} "
                    "cand-min spent before it started"
                )
            outcome = None
            if skipped is None:
                outcome = self.execute(plan, slot, action)
                if outcome is None:
                    self.budget.release(worst)
                    skipped = (
                        f"bench budget: {s.budget_minutes:g} cand-min reached while it waited "
                        "for a worker"
                    )
            if outcome is None:
                assert skipped is not None
                line = _line(case_id, slot, failed_outcome(action, skipped), 0.0, False, inclusion)
                line = attrs.evolve(line, error=None, skipped=skipped)
                self.log.append(line)
                with self.lock:
                    self.done += 1
                self.note()
                continue
            minutes, estimated = spent_minutes(outcome, s.uncapped_candidates)
            self.settle(worst, minutes)
            issue_spent += minutes
            self.log.append(_line(case_id, slot, outcome, minutes, estimated, inclusion))
            with self.lock:
                self.done += 1
                self.ran += 1
                self.passed += outcome.verified
            self.note()


def _line(
    case_id: str,
    slot: int,
    outcome: CandidateOutcome,
    minutes: float,
    estimated: bool,
    inclusion: float | None,
) -> CandidateLine:
    return CandidateLine(
        schema_version=CANDIDATE_LINE_V1,
        case_id=case_id,
        slot=slot,
        action=outcome.action.as_list(),
        verified=bool(outcome.verified),
        status=outcome.status,
        duration_ms=int(outcome.duration_ms),
        cost_usd=float(outcome.cost_usd),
        candidate_minutes=round(float(minutes), 6),
        minutes_estimated=estimated,
        fail_codes=tuple(outcome.fail_codes),
        gates=tuple(GateLine(g.name, g.passed) for g in outcome.gates),
        error=outcome.error,
        inclusion=inclusion,
    )


def prepare_directory(out: Path, plans: Sequence[CasePlan], settings: BenchSettings) -> None:
    """Start a bench directory, or check that it holds this very bench (same settings, same
    cases) before resuming into it."""
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / CONFIG_FILE
    if config_path.exists():
        data = read_json_object(config_path)
        try:
            previous = load(data.get("settings"), BenchSettings, source=str(config_path))
        except ContractError as exc:
            raise BenchError(f"{config_path}: not a bench config of this version: {exc}") from None
        if previous != settings:
            changes = "; ".join(previous.differences(settings))
            raise BenchError(
                f"{out} holds a bench with other settings, so it cannot resume into it "
                f"({changes}); use a new --out, or delete the directory to start over"
            )
        return
    if (out / LOG_FILE).exists():
        raise BenchError(
            f"{out} has a candidate log but no {CONFIG_FILE}; it is not a bench this version "
            "wrote (use a new --out)"
        )
    with (out / f".{CASES_FILE}.tmp").open("w", encoding="utf-8") as handle:
        for plan in plans:
            case = plan.case
            line = CaseLine(
                case.planner_input,
                case.case_id,
                case.baseline.as_list(),
                case.started_ms,
                plan.inclusion,
            )
            handle.write(canonical_json(dump(line)) + "\n")
    (out / f".{CASES_FILE}.tmp").replace(out / CASES_FILE)
    write_json_atomic(
        config_path, {"config_hash": settings.config_hash(), "settings": dump(settings)}
    )


def run_bench(
    out: Path | str,
    cases: Sequence[BenchCase],
    settings: BenchSettings,
    plugins: BenchPlugins,
    *,
    jobs: int | None = 1,
    names: dict[str, str] | None = None,
    progress: BenchProgress | None = None,
    backend: Backend | None = None,
) -> tuple[BenchSummary, list[CaseResult]]:
    """Run (or resume) the bench in ``out``; write its outputs; return the summary and results.

    ``backend`` runs the candidates (default: in this process); ``jobs`` is how many issues are
    in flight at once (None: as many candidates as the backend can run at once)."""
    from swarm_planner.core.bench.results import write_outputs

    started = time.perf_counter()
    out = Path(out)
    backend = backend if backend is not None else LocalBackend()
    if jobs is not None and jobs < 1:
        raise BenchError(f"jobs must be at least 1, got {jobs}")
    if settings.on_budget == "kill":
        if settings.budget_mode != "spend":
            raise BenchError(
                "on_budget: kill needs budget_mode: spend (a reserved budget is never reached "
                "by a running candidate)"
            )
        if not backend.can_kill:
            raise BenchError(
                f"on_budget: kill needs a backend that can stop a running candidate; the "
                f"{backend.name} backend runs it in the driver's thread (use --backend ray, or "
                "on_budget: finish)"
            )
    if not cases:
        raise BenchError("the bench has no cases")
    names = names or {}
    ids = Counter(c.case_id for c in cases)
    repeated = [i for i, n in ids.items() if n > 1]
    if repeated:
        raise BenchError(f"case ids repeat: {repeated[:5]}")
    plans = plan_cases(cases, plugins.sampler, settings.k, sampler_name=names.get("sampler", "?"))
    prepare_directory(out, plans, settings)
    with CandidateLog(out / LOG_FILE) as log:
        planned = {(p.case.case_id, slot): a for p in plans for slot, a in enumerate(p.actions)}
        for key, line in log.lines.items():
            if planned.get(key) != line.joint_action:
                raise BenchError(
                    f"{log.path}: case {key[0]!r} slot {key[1]} ran {line.joint_action.text}, "
                    "which this bench would not ask for (the log belongs to another bench)"
                )
        resumed = len(log.lines)
        todo = [
            p
            for p in plans
            if any((p.case.case_id, s) not in log.lines for s in range(len(p.actions)))
        ]
        executor_name = names.get("executor", "?")
        state = _Run(plans, settings, plugins, log, executor_name, progress, backend)
        if state.budget.reached:
            state.reached.set()
        state.note()
        if todo:
            gated = settings.budget_mode == "spend" and settings.budget_minutes is not None
            capacity = backend.start(plugins.executor, executor_name, out, gated)
            try:
                _run_cases(state, todo, jobs if jobs is not None else max(1, capacity))
            finally:
                backend.close()
        lines = dict(log.lines)
        torn = log.torn_bytes
    results = []
    for plan in plans:
        case_lines = tuple(lines[(plan.case.case_id, s)] for s in range(len(plan.actions)))
        results.append(
            CaseResult(plan.case, case_lines, _winner(case_lines, plugins.selector, settings))
        )
    all_lines = [line for r in results for line in r.lines]
    summary = BenchSummary(
        out=str(out),
        config_hash=settings.config_hash(),
        cases=len(results),
        candidates=len(all_lines),
        ran=sum(line.skipped is None for line in all_lines),
        resumed=resumed,
        skipped=dict(Counter(line.skipped.split(":")[0] for line in all_lines if line.skipped)),
        errors=dict(Counter(_error_kind(line.error) for line in all_lines if line.error)),
        cases_passed=sum(any(line.verified for line in r.lines) for r in results),
        baseline_passed=sum(r.lines[0].verified for r in results),
        spent_minutes=round(sum(line.candidate_minutes for line in all_lines), 3),
        estimated_minutes=round(
            sum(line.candidate_minutes for line in all_lines if line.minutes_estimated), 3
        ),
        budget_minutes=settings.budget_minutes,
        issue_budget_minutes=settings.issue_budget_minutes,
        torn_bytes=torn,
        seconds=round(time.perf_counter() - started, 3),
        backend=backend.name,
        lost_attempts=len(read_attempts(out / ATTEMPTS_FILE)),
    )
    write_outputs(out, results, settings, summary)
    return summary, results


def _run_cases(state: _Run, todo: list[CasePlan], jobs: int) -> None:
    """Every case's candidates, ``jobs`` cases at a time (one after another within a case)."""
    if jobs == 1:
        for plan in todo:
            state.run_case(plan)
        return
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="bench") as pool:
        futures = [pool.submit(state.run_case, plan) for plan in todo]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None]
        if failed:
            state.stop.set()
            wait(futures)
            raise failed[0].exception()  # type: ignore[misc]


def _error_kind(error: str) -> str:
    """An error's kind for the summary's counts: its text with numbers and quotes blurred."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "…", error.split(";")[0])
    return re.sub(r"\d+(\.\d+)?", "N", text)[:120]


def _winner(
    lines: tuple[CandidateLine, ...], selector: Selector, settings: BenchSettings
) -> int | None:
    ran = [line for line in lines if line.skipped is None]
    if not ran:
        return None
    index = selector.select([line.outcome() for line in ran])
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(ran):
        raise BenchError(f"the selector returned {index!r}, not an index below {len(ran)}")
    chosen = ran[index]
    if not chosen.verified and not settings.keep_failed_winners:
        return None
    return chosen.slot
