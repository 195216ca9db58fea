"""The Ray backend: each bench candidate is a Ray task running the configured executor.

Why Ray and not a pool of our own: a real candidate is an agent run of up to two hours, and a
bench is thousands of them; Ray already schedules tasks over many machines by resources (CPUs,
an ``agent_slot``, a licence), notices lost workers and nodes, and is what teams run. The
driver stays ours (the log, the budgets, the selector), so everything that decides outputs is
the same as on the local backend; Ray only decides where a candidate runs.

- **Executor**: the driver's executor object is sent to the cluster once (``ray.put``); every
  task runs it through :func:`~swarm_planner.core.bench.candidate.run_candidate`, the same code
  the local backend runs, so an executor's exception or bad answer is a failed candidate here
  too. An executor that cannot be pickled is refused before anything runs.
- **Faults**: tasks are not retried by Ray (``max_retries=0``); a task whose worker process or
  node was lost is re-submitted by the driver up to ``retries`` times, each lost attempt
  appended to ``attempts.jsonl``. Only the candidate's last attempt reaches the candidate log,
  so no candidate is lost or logged twice. A killed driver resumes from the candidate log.
- **Budgets** (``budget_mode: spend``): tasks first ask a small gate actor whether they may
  start; once the budget is reached the gate turns away every task still waiting for a worker
  (logged as skipped), and ``on_budget: kill`` cancels running ones (logged as failed, their
  minutes estimated from their wall-clock time).

Ray is imported here only, and only when the backend starts.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

from swarm_planner.core.bench.backends import CandidateTask
from swarm_planner.core.bench.candidate import failed_outcome, run_candidate
from swarm_planner.core.bench.log import ATTEMPTS_FILE, AttemptLog, BenchError
from swarm_planner.core.bench.records import AttemptLine
from swarm_planner.core.config import RayConfig
from swarm_planner.core.contracts import PlannerInput
from swarm_planner.core.protocols import CandidateOutcome, Executor

INSTALL = 'pip install "swarm-planner[ray]"'
KILLED = "killed: the bench budget was reached while it ran"
FORCE_AFTER_SECONDS = 10.0
"""How long interrupts are tried before a running task's worker is killed outright."""
KILL_PATIENCE_SECONDS = 300.0
"""How long running tasks are cancelled again and again once the budget is reached."""


def import_ray() -> Any:
    """The ``ray`` module, or a BenchError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise BenchError(
            f"--backend ray needs Ray, which is not installed here ({exc}); install the extra: "
            f"{INSTALL}"
        ) from None
    return ray


class _Gate:
    """Whether waiting candidates may still start (a Ray actor; closed once, never reopened)."""

    def __init__(self) -> None:
        self.open = True

    def admit(self) -> bool:
        return self.open

    def close(self) -> bool:
        self.open = False
        return True


def _candidate_task(
    executor: Executor,
    executor_name: str,
    gate: Any,
    planner_input: PlannerInput,
    action: Any,
    timeout_seconds: float | None,
) -> CandidateOutcome | None:
    """Runs in a Ray worker: None when the gate turned it away before it started."""
    if gate is not None:
        ray = import_ray()
        if not ray.get(gate.admit.remote()):
            return None
    return run_candidate(executor, executor_name, planner_input, action, timeout_seconds)


def capacity(cluster: dict[str, float], request: dict[str, float]) -> int:
    """How many candidate tasks asking for ``request`` the cluster's totals can run at once
    (an unbounded request, asking for nothing: as many as its CPUs)."""
    asked = {name: amount for name, amount in request.items() if amount > 0}
    missing = sorted(name for name in asked if cluster.get(name, 0.0) <= 0)
    if missing:
        have = ", ".join(sorted(cluster)) or "nothing"
        raise BenchError(
            f"the Ray cluster has no {', '.join(map(repr, missing))} resource, so no candidate "
            f"could ever be scheduled (it has: {have}); start its nodes with "
            f"`ray start --resources '{{\"{missing[0]}\": N}}'` or change planner.bench.ray"
        )
    if not asked:
        return max(1, int(cluster.get("CPU", 1)))
    return max(1, min(math.floor(cluster[name] / amount) for name, amount in asked.items()))


class RayBackend:
    """Candidates as Ray tasks on a cluster (``address``) or on a local Ray started here."""

    name = "ray"
    can_kill = True

    def __init__(self, config: RayConfig) -> None:
        self.config = config
        self._ray: Any = None
        self._started_here = False
        self._executor_ref: Any = None
        self._executor_name = "?"
        self._remote: Any = None
        self._gate: Any = None
        self._attempts: AttemptLog | None = None
        self._lock = threading.Lock()
        self._running: dict[tuple[str, int], Any] = {}
        self._killing = False

    def start(self, executor: Executor, executor_name: str, out: Path, gated: bool) -> int:
        ray = self._ray = import_ray()
        if not ray.is_initialized():
            try:
                if self.config.address is None:
                    # "local": a new Ray of our own, never a cluster that happens to run here
                    ray.init(
                        address="local",
                        include_dashboard=False,
                        log_to_driver=False,
                        logging_level="ERROR",
                    )
                else:
                    ray.init(address=self.config.address, logging_level="ERROR")
            except Exception as exc:
                where = self.config.address or "a local Ray"
                raise BenchError(f"could not start or join {where}: {exc}") from None
            self._started_here = True
        self._executor_name = executor_name
        try:
            self._executor_ref = ray.put(executor)
        except Exception as exc:
            self.close()
            raise BenchError(
                f"the {executor_name} executor cannot be sent to Ray workers "
                f"({type(exc).__name__}: {exc}); an executor for --backend ray must be "
                "picklable"
            ) from None
        request = {"CPU": self.config.num_cpus, **self.config.resources}
        try:
            slots = capacity(ray.cluster_resources(), request)
        except BenchError:
            self.close()
            raise
        self._remote = ray.remote(_candidate_task).options(
            num_cpus=self.config.num_cpus,
            resources=dict(self.config.resources) or None,
            max_retries=0,
        )
        if gated:
            self._gate = ray.remote(num_cpus=0)(_Gate).remote()
        self._attempts = AttemptLog(out / ATTEMPTS_FILE)
        return slots

    def run(self, task: CandidateTask) -> CandidateOutcome | None:
        ray = self._ray
        key = (task.case_id, task.slot)
        attempts = self.config.retries + 1
        last = ""
        for attempt in range(1, attempts + 1):
            started = time.perf_counter()
            ref = self._remote.remote(
                self._executor_ref,
                self._executor_name,
                self._gate,
                task.planner_input,
                task.action,
                task.timeout_seconds,
            )
            with self._lock:
                self._running[key] = ref
                killing = self._killing
            if killing:
                ray.cancel(ref)
            try:
                result: CandidateOutcome | None = ray.get(ref)
                return result
            except ray.exceptions.TaskCancelledError:
                elapsed = int((time.perf_counter() - started) * 1000)
                return failed_outcome(task.action, KILLED, elapsed)
            except ray.exceptions.RayTaskError as exc:
                # The task itself raised past run_candidate (a BaseException of the executor's).
                message = " ".join(str(exc.cause if exc.cause is not None else exc).split())
                return failed_outcome(
                    task.action,
                    f"the {self._executor_name} executor's Ray task raised: {message[:500]}",
                    int((time.perf_counter() - started) * 1000),
                )
            except ray.exceptions.RayError as exc:
                # The worker process or its node was lost: run the candidate again.
                last = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                assert self._attempts is not None
                self._attempts.append(
                    AttemptLine(
                        case_id=task.case_id,
                        slot=task.slot,
                        attempt=attempt,
                        error=last,
                        seconds=round(time.perf_counter() - started, 3),
                    )
                )
            finally:
                with self._lock:
                    self._running.pop(key, None)
        return failed_outcome(
            task.action, f"lost with its Ray worker on all {attempts} attempts; last: {last}"
        )

    def budget_reached(self, kill: bool) -> None:
        ray = self._ray
        if self._gate is not None:
            ray.get(self._gate.close.remote())
        if kill:
            with self._lock:
                self._killing = True
            threading.Thread(target=self._cancel_running, name="bench-kill", daemon=True).start()

    def _cancel_running(self) -> None:
        """Cancel every running task, and again every half second until none is left: Ray's
        cancel is best effort, and one that reaches a task while it is being scheduled or
        leased a worker can be lost. Not forced: the task gets KeyboardInterrupt, so an
        executor's own clean-up (the command executor kills its process group) still runs."""
        started = time.monotonic()
        while time.monotonic() < started + KILL_PATIENCE_SECONDS:
            with self._lock:
                running = list(self._running.values())
            if not running:
                return
            # Still running after FORCE_AFTER_SECONDS of interrupts: kill the worker process
            # (an executor's own children outside its process are then not cleaned up).
            force = time.monotonic() - started > FORCE_AFTER_SECONDS
            for ref in running:
                try:
                    self._ray.cancel(ref, force=force)
                except Exception:  # finished meanwhile, or Ray refused: try again next round
                    continue
            time.sleep(0.5)

    def close(self) -> None:
        if self._attempts is not None:
            self._attempts.close()
        if self._ray is not None and self._started_here:
            self._ray.shutdown()
            self._started_here = False
