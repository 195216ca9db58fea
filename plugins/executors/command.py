"""The ``command`` executor: runs a bench candidate by starting a command (a real kernel).

The contract a kernel implements (POSIX only):

- **Start.** For each candidate the command (option ``command``: a list of strings, or one
  string split with :func:`shlex.split`; never a shell) is started once, in a new session and
  process group of its own, in option ``cwd`` (default: the bench's directory), with option
  ``env`` merged over the bench's environment.
- **Stdin.** One JSON object, then end of file::

    {"planner_input": <the cyntra.planner_input.v1 document>,
     "action": {"swarm_id": ..., "max_candidates_bin": ..., "max_minutes_bin": ...,
                "max_iterations_bin": ...},
     "timeout_seconds": <number>}

- **Stdout.** One JSON object (whitespace around it allowed), read with the project's strict
  JSON reader: ``verified`` (bool), ``status`` (``success|failed|timeout``), ``duration_ms``
  (int >= 0) and ``cost_usd`` (number >= 0) are required; ``fail_codes`` (strings, default
  ``[]``), ``gates`` (``{"name": str, "passed": bool}`` objects, default ``[]``),
  ``candidate_minutes`` (number >= 0: agent minutes, every parallel candidate summed) and
  ``details`` (any object, ignored) are optional; any other key is an error, and so is
  ``verified: true`` with a status other than ``success``. Stderr is free text (its tail is
  kept in the reason of a failure). The exit code must be 0.
- **Timeout.** Option ``timeout_seconds`` if set, else the bench's ``timeout_seconds``, else the
  action's minutes bin × 60, else (bin ``NA``) option ``default_timeout_minutes`` × 60. When it
  passes, the whole process group gets SIGTERM, and SIGKILL ``grace_seconds`` later (at once
  if the group's pipes are closed and its leader has exited before then); the outcome is
  ``status="timeout"``, ``verified=False``, ``error="timed out after {t}s; process group
  killed"``.
- **Clean-up.** When the command exits, whatever it left in its process group is killed
  (SIGKILL), and what it wrote is read to the end; a grandchild that keeps stdout open cannot
  hold the bench. A process that left the group (its own ``setsid``) is not followed.
- **Failures.** Nothing the command does raises into the bench: it cannot be started, it is
  killed by a signal, it exits non-zero, it writes more than ``max_output_bytes`` to stdout
  (reading stops and the group is killed), or its stdout is not the outcome document. Each is
  a :class:`CandidateOutcome` with ``verified=False``, ``status="failed"``, ``cost_usd=0.0``,
  ``duration_ms`` the wall time, and ``error`` a one-line reason (``exit code 3; stderr: ...``,
  ``killed by signal SIGSEGV``, ``stdout is not the outcome JSON: ...``, ``cannot start [...]:
  ...``). A command that exits 0 with a valid outcome whose status is ``timeout`` is reported
  as it says.

One executor may run candidates from several threads at once; each run is a single
``select`` loop over the command's pipes and an exit notification (a pidfd on Linux), so it
adds well under a millisecond of its own beyond starting the process.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from typing import Any

import attrs

from swarm_planner import hookimpl
from swarm_planner.core.action_space import NA, JointAction
from swarm_planner.core.contracts import PlannerInput, Status, dump
from swarm_planner.core.documents import DocumentError, MiB, parse_json, short_repr
from swarm_planner.core.errors import ContractError
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.jsonconv import (
    FieldProblem,
    json_field,
    non_negative,
    positive,
    structure,
    validator,
)
from swarm_planner.core.protocols import CandidateOutcome, GateOutcome

STDERR_TAIL_CHARS = 500
"""How much of the end of stderr a failure's reason quotes."""
_STDERR_KEEP_BYTES = 8 * 1024
"""How much of the end of stderr is kept while the command runs (the rest is dropped)."""
_CHUNK = 64 * 1024


# -- options -----------------------------------------------------------------------------------


def _structure_command(value: Any, _: Any) -> tuple[str, ...]:
    """A list of strings, or one string split as a shell would split it (nothing expanded)."""
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:  # an unclosed quote
            raise ValueError(f"cannot split {short_repr(value)}: {exc}") from None
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"expected a list of strings or a string, got {short_repr(value)}")
    bad = [i for i, part in enumerate(value) if not isinstance(part, str)]
    if bad:
        raise TypeError(f"[{bad[0]}] is {short_repr(value[bad[0]])}, not a string")
    return tuple(value)


def _check_command(value: Any) -> str | None:
    if not isinstance(value, tuple) or not all(isinstance(p, str) for p in value):
        return f"expected a list of strings, got {short_repr(value)}"
    if not value or not value[0]:
        return "the command is empty: give the program to run and its arguments"
    if any("\0" in part for part in value):
        return "holds a NUL character"
    return None


_above_zero = validator(lambda v: f"{v!r} is not above 0" if v is not None and not v > 0 else None)
"""Above 0 (``None`` passes): seconds and minutes may be fractions."""


def _check_env(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return f"expected an object of strings, got {short_repr(value)}"
    for key in value:
        if not key or "=" in key or "\0" in key:
            return f"{short_repr(key)} is not an environment variable name"
        if not isinstance(value[key], str) or "\0" in value[key]:
            return f"{short_repr(key)}: the value is not a string without NUL characters"
    return None


@attrs.frozen
class CommandExecutorOptions:
    """Options of the ``command`` executor (see the module's docstring for the contract)."""

    command: tuple[str, ...] = json_field(
        structure=_structure_command, validator=validator(_check_command)
    )
    """The program and its arguments (no shell); a string is split with :func:`shlex.split`."""
    cwd: str | None = None
    """The directory the command runs in (default: the bench's)."""
    env: dict[str, str] = json_field(factory=dict, validator=validator(_check_env))
    """Variables set for the command, over the bench's environment."""
    timeout_seconds: float | None = json_field(default=None, validator=_above_zero)
    """When set, the timeout of every candidate, whatever the bench or the action say."""
    default_timeout_minutes: float = json_field(default=120.0, validator=_above_zero)
    """The timeout of an action whose minutes bin is ``NA`` (when the bench gives none)."""
    grace_seconds: float = json_field(default=2.0, validator=_above_zero)
    """Time between SIGTERM and SIGKILL of a timed-out process group."""
    max_output_bytes: int = json_field(default=MiB, validator=positive)
    """Largest stdout read; beyond it reading stops and the process group is killed."""


# -- the stdout document -----------------------------------------------------------------------


@attrs.frozen
class CommandOutcome:
    """What the command prints on stdout (strict: every other key is an error)."""

    verified: bool
    status: Status
    duration_ms: int = json_field(validator=non_negative)
    cost_usd: float = json_field(validator=non_negative)
    fail_codes: tuple[str, ...] = ()
    gates: tuple[GateOutcome, ...] = ()
    candidate_minutes: float | None = json_field(optional=True, validator=non_negative)
    details: dict[str, Any] | None = json_field(optional=True)
    """Anything the kernel wants to log with the outcome; the bench ignores it."""

    def __attrs_post_init__(self) -> None:
        if self.verified is True and self.status != "success":
            raise FieldProblem(
                "verified", f"true, but status is {self.status!r}: only a success is verified"
            )

    def to_candidate(self, action: JointAction) -> CandidateOutcome:
        return CandidateOutcome(
            action=action,
            verified=self.verified,
            status=self.status,
            duration_ms=self.duration_ms,
            cost_usd=self.cost_usd,
            fail_codes=self.fail_codes,
            gates=self.gates,
            candidate_minutes=self.candidate_minutes,
        )


def parse_outcome(data: bytes) -> CommandOutcome:
    """The command's stdout as a record; a :class:`DocumentError` or :class:`ContractError`
    (naming the field) when it is not the outcome document."""
    if not data.strip():
        raise DocumentError("stdout", "empty (expected one JSON object)", kind="missing")
    value = parse_json(data.strip(), "stdout")
    if not isinstance(value, dict):
        raise DocumentError("stdout", f"expected a JSON object, got {short_repr(value)}")
    return structure(value, CommandOutcome, source="stdout")


# -- running one process -----------------------------------------------------------------------


@attrs.frozen
class _Finished:
    """How a process run ended (``returncode`` None: it outlived its SIGKILL)."""

    returncode: int | None
    stdout: bytes
    stderr_tail: bytes
    timed_out: bool
    overflowed: bool


POLL_SECONDS = 0.25
"""The longest the run loop waits in one ``select`` (why: see the loop)."""


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _exit_notifier(pid: int) -> int:
    """A descriptor that becomes readable when process ``pid`` exits, without reaping it (its
    pid, the process group's id, stays reserved until :meth:`Popen.wait`; so a signal to the
    group never reaches a stranger that reused the number)."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is not None:
        with contextlib.suppress(OSError):  # a kernel without pidfds: the thread below
            fd: int = pidfd_open(pid)
            return fd
    read_end, write_end = os.pipe()

    def wait() -> None:
        # The thread owns write_end: it is never closed under it, nor its number reused.
        try:
            with contextlib.suppress(OSError):
                os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            with contextlib.suppress(OSError):
                os.write(write_end, b"x")
        finally:
            os.close(write_end)

    threading.Thread(target=wait, name=f"command-exit-{pid}", daemon=True).start()
    return read_end


class _ProcessRun:
    """One ``select`` loop over a started command: feed stdin, read stdout (bounded) and the
    tail of stderr, notice the exit, and kill the process group on a timeout or an overflow,
    and whenever the command has exited (its leftovers)."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        payload: bytes,
        *,
        timeout: float,
        grace: float,
        max_output: int,
    ) -> None:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self.proc = proc
        self.pgid = proc.pid  # start_new_session: the leader's pid is the group's id
        self.pending = memoryview(payload)
        self.grace = grace
        self.max_output = max_output
        self.deadline = time.monotonic() + timeout
        self.term_at: float | None = None  # SIGTERM sent: when SIGKILL follows
        self.give_up_at: float | None = None  # SIGKILL sent: how long the pipes may take
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.timed_out = self.overflowed = self.exited = False
        self.stdin_fd = proc.stdin.fileno()
        self.stdout_fd = proc.stdout.fileno()
        self.stderr_fd = proc.stderr.fileno()
        self.streams: dict[int, Any] = {
            self.stdin_fd: proc.stdin,
            self.stdout_fd: proc.stdout,
            self.stderr_fd: proc.stderr,
        }
        self.sel = selectors.DefaultSelector()

    # -- state changes --------------------------------------------------------------------

    def _close(self, fd: int) -> None:
        stream = self.streams.pop(fd, None)
        if stream is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(fd)
            stream.close()

    def _kill(self) -> None:
        if self.give_up_at is None:
            _killpg(self.pgid, signal.SIGKILL)
            self.give_up_at = time.monotonic() + max(self.grace, 0.5)
            self._close(self.stdin_fd)

    def _reading(self) -> bool:
        return self.stdout_fd in self.streams or self.stderr_fd in self.streams

    # -- events -----------------------------------------------------------------------------

    def _on_stdin(self) -> None:
        try:
            sent = os.write(self.stdin_fd, self.pending[:_CHUNK])
        except BlockingIOError:
            return
        except OSError:  # it closed stdin (or exited) before reading it all
            self._close(self.stdin_fd)
            return
        self.pending = self.pending[sent:]
        if not self.pending:
            self._close(self.stdin_fd)

    def _on_stdout(self) -> None:
        try:
            chunk = os.read(self.stdout_fd, min(_CHUNK, self.max_output + 1 - len(self.stdout)))
        except BlockingIOError:
            return
        if not chunk:
            self._close(self.stdout_fd)
            return
        self.stdout += chunk
        if len(self.stdout) > self.max_output:
            self.overflowed = True
            self._close(self.stdout_fd)
            self._kill()

    def _on_stderr(self) -> None:
        try:
            chunk = os.read(self.stderr_fd, _CHUNK)
        except BlockingIOError:
            return
        if not chunk:
            self._close(self.stderr_fd)
            return
        self.stderr += chunk
        if len(self.stderr) > 2 * _STDERR_KEEP_BYTES:
            del self.stderr[:-_STDERR_KEEP_BYTES]

    def _on_exit(self, exit_fd: int) -> None:
        self.exited = True
        self.sel.unregister(exit_fd)
        if self.term_at is None:  # it ended by itself: the rest of its group goes with it
            self._kill()

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> _Finished:
        exit_fd = -1
        try:
            exit_fd = _exit_notifier(self.proc.pid)
            for fd in self.streams:
                os.set_blocking(fd, False)
            if self.pending:
                self.sel.register(self.stdin_fd, selectors.EVENT_WRITE)
            else:
                self._close(self.stdin_fd)
            self.sel.register(self.stdout_fd, selectors.EVENT_READ)
            self.sel.register(self.stderr_fd, selectors.EVENT_READ)
            self.sel.register(exit_fd, selectors.EVENT_READ)
            handlers = {
                exit_fd: lambda: self._on_exit(exit_fd),
                self.stdin_fd: self._on_stdin,
                self.stdout_fd: self._on_stdout,
                self.stderr_fd: self._on_stderr,
            }
            while self.exited is False or self._reading():
                now = time.monotonic()
                if self.give_up_at is not None:
                    if now >= self.give_up_at:
                        break  # killed, yet a pipe stays open: a process that left the group
                    wake = self.give_up_at
                elif self.term_at is not None:
                    if now >= self.term_at:
                        self._kill()
                        continue
                    wake = self.term_at
                else:
                    if now >= self.deadline:
                        self.timed_out = True
                        _killpg(self.pgid, signal.SIGTERM)
                        self.term_at = now + self.grace
                        continue
                    wake = self.deadline
                # Wake at least every POLL_SECONDS: an exception sent to this thread (a Ray
                # task cancelled when a bench budget is reached) is raised only between
                # bytecodes, and the finally below then kills the group.
                for key, _ in self.sel.select(min(wake - now, POLL_SECONDS)):
                    # A pipe closed by an earlier event of this batch is skipped: its number
                    # may already belong to another thread's file.
                    if key.fd in self.streams or (key.fd == exit_fd and not self.exited):
                        handlers[key.fd]()
        finally:
            _killpg(self.pgid, signal.SIGKILL)  # leftovers; the leader is not reaped yet
            for fd in list(self.streams):
                self._close(fd)
            self.sel.close()
            if exit_fd >= 0:
                os.close(exit_fd)
        try:
            returncode: int | None = self.proc.wait(timeout=max(self.grace, 0.5))
        except subprocess.TimeoutExpired:  # stuck in the kernel: Popen reaps it later
            returncode = None
        return _Finished(
            returncode,
            bytes(self.stdout[: self.max_output]),
            bytes(self.stderr[-_STDERR_KEEP_BYTES:]),
            self.timed_out,
            self.overflowed,
        )


# -- the executor ------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _stderr_tail(data: bytes) -> str:
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines()]
    text = " | ".join(line for line in lines if line)
    if len(text) > STDERR_TAIL_CHARS:
        text = "..." + text[-STDERR_TAIL_CHARS:]
    return text or "(empty)"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@attrs.frozen
class CommandExecutor:
    """Runs each candidate as one run of ``options.command`` (see the module's docstring)."""

    options: CommandExecutorOptions

    @classmethod
    def from_options(cls, options: CommandExecutorOptions) -> CommandExecutor:
        return cls(options)

    def timeout_for(self, action: JointAction, timeout_seconds: float | None = None) -> float:
        """The option, else the bench's, else the action's minutes cap, else the default."""
        if self.options.timeout_seconds is not None:
            return self.options.timeout_seconds
        if timeout_seconds is not None:
            return float(timeout_seconds)
        if action.max_minutes_bin != NA:
            return float(action.max_minutes_bin) * 60.0
        return self.options.default_timeout_minutes * 60.0

    def stdin_document(
        self, planner_input: PlannerInput, action: JointAction, timeout: float
    ) -> bytes:
        """The bytes written to the command's stdin."""
        document = {
            "planner_input": dump(planner_input),
            "action": action.as_fields(),
            "timeout_seconds": timeout,
        }
        try:
            return json.dumps(document, allow_nan=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:  # a record built in code with a NaN
            raise ContractError("planner_input", [f"$: cannot be written as JSON: {exc}"]) from exc

    def run(
        self,
        planner_input: PlannerInput,
        action: JointAction,
        *,
        timeout_seconds: float | None = None,
    ) -> CandidateOutcome:
        """Run the command once for ``action``; every failure of the command is an outcome."""
        planner_input.action_space.check(action, planner_input.job_type)
        timeout = self.timeout_for(action, timeout_seconds)
        payload = self.stdin_document(planner_input, action, timeout)
        options = self.options
        argv = list(options.command)
        env = {**os.environ, **options.env} if options.env else None
        started = time.monotonic()

        def failed(reason: str, status: Status = "failed") -> CandidateOutcome:
            wall_ms = round((time.monotonic() - started) * 1000)
            return CandidateOutcome(
                action=action,
                verified=False,
                status=status,
                duration_ms=wall_ms,
                cost_usd=0.0,
                error=reason,
            )

        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=options.cwd,
                env=env,
                start_new_session=True,
                bufsize=0,
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            return failed(_one_line(f"cannot start {argv!r}: {exc}"))
        try:
            done = _ProcessRun(
                proc,
                payload,
                timeout=timeout,
                grace=options.grace_seconds,
                max_output=options.max_output_bytes,
            ).run()
        except OSError as exc:  # the pipes failed under us: still the candidate's failure
            return failed(_one_line(f"lost the command's pipes: {exc}"))
        if done.timed_out:
            return failed(f"timed out after {timeout:g}s; process group killed", "timeout")
        if done.overflowed:
            return failed(
                f"stdout is larger than max_output_bytes ({options.max_output_bytes:,} bytes); "
                "reading stopped and the process group killed"
            )
        if done.returncode is None:
            return failed("the command exited its pipes but did not die after SIGKILL")
        if done.returncode < 0:
            reason = f"killed by signal {_signal_name(-done.returncode)}"
            if done.stderr_tail.strip():
                reason += f"; stderr: {_stderr_tail(done.stderr_tail)}"
            return failed(reason)
        if done.returncode > 0:
            return failed(f"exit code {done.returncode}; stderr: {_stderr_tail(done.stderr_tail)}")
        try:
            outcome = parse_outcome(done.stdout)
        except DocumentError as exc:
            head = done.stdout[:80].decode("utf-8", "replace")
            begins = f" (it begins {short_repr(head)})" if head.strip() else ""
            return failed(_one_line(f"stdout is not the outcome JSON: {exc.problem}{begins}"))
        except ContractError as exc:
            return failed(_one_line(f"stdout is not the outcome JSON: {'; '.join(exc.problems)}"))
        return outcome.to_candidate(action)


@hookimpl
def register_executors(register: Register) -> None:
    register("command", CommandExecutor.from_options, options=CommandExecutorOptions)
