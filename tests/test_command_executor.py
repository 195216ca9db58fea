"""The ``command`` executor: the stdin/stdout contract, timeouts, process groups, failures.

Every command is a small Python script of ``tests/bench_commands`` run with ``sys.executable``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from swarm_planner.core.action_space import NA, JointAction
from swarm_planner.core.contracts import PlannerInput, dump, load
from swarm_planner.core.errors import ConfigError, InvalidActionError
from swarm_planner.core.plugins import PluginHost
from swarm_planner.core.protocols import CandidateOutcome, Executor, GateOutcome
from swarm_planner.plugins.executors.command import CommandExecutor

COMMANDS = Path(__file__).parent / "bench_commands"

MakeInput = Callable[..., PlannerInput]
MakeExecutor = Callable[..., CommandExecutor]

LONG = JointAction("speculate_vote", 2, 60, NA)
"""Verified by ``echo_outcome.py`` (minutes bin 60+), cost 2 x 0.1."""
SHORT = JointAction("serial_handoff", 1, 30, NA)
"""Not verified by ``echo_outcome.py``."""
UNCAPPED = JointAction("speculate_vote", 3, NA, NA)


def script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(COMMANDS / f"{name}.py"), *args]


@pytest.fixture()
def make_executor(host: PluginHost) -> MakeExecutor:
    """An executor built the way the bench builds it: through the plugin host."""

    def make(command: list[str] | str, **options: Any) -> CommandExecutor:
        executor = host.create("executor", "command", {"command": command, **options})
        assert isinstance(executor, CommandExecutor)
        return executor

    return make


@pytest.fixture()
def planner_input(make_input: MakeInput) -> PlannerInput:
    return make_input(risk="high")


def _dead(pid: int) -> bool:
    """True once ``pid`` is gone, or a zombie (dead; its reaping is up to its new parent, init,
    which in some containers reaps only now and then)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _wait_dead(pid: int, within: float = 2.0) -> bool:
    end = time.monotonic() + within
    while not _dead(pid):
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture()
def grandchild_pidfile(tmp_path: Path) -> Iterator[Path]:
    """Where ``grandchild.py`` writes its grandchild's pid; the grandchild is killed at the end
    whatever the test found (a failing test must not leave it sleeping for an hour)."""
    path = tmp_path / "grandchild.pid"
    yield path
    if path.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(path.read_text()), signal.SIGKILL)


# -- the plugin and its options ---------------------------------------------------------------


def test_the_command_executor_is_a_builtin_entry_point(host: PluginHost) -> None:
    entry = host.entry("executor", "command")
    assert entry.module == "swarm_planner.plugins.executors.command"
    assert entry.provider.distribution == "swarm-planner"


def test_a_command_string_is_split_like_a_shell_would(make_executor: MakeExecutor) -> None:
    executor = make_executor("python3 -c 'print(1)' \"a b\"")
    assert executor.options.command == ("python3", "-c", "print(1)", "a b")
    assert isinstance(executor, Executor)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (
            {"command": []},
            "executor.command.options.command: the command is empty: give the program to run "
            "and its arguments",
        ),
        (
            {"command": "   "},
            "executor.command.options.command: the command is empty: give the program to run "
            "and its arguments",
        ),
        ({"command": [""]}, "executor.command.options.command: the command is empty"),
        ({"command": ["python", 3]}, "executor.command.options.command: [1] is 3, not a string"),
        ({"command": 3}, "executor.command.options.command: expected a list of strings"),
        ({"command": "python 'unclosed"}, "executor.command.options.command: cannot split"),
        ({}, "executor.command.options.command: required key is missing"),
        ({"command": ["x"], "grace_seconds": 0}, "executor.command.options.grace_seconds: 0"),
        ({"command": ["x"], "timeout_seconds": -1.0}, "executor.command.options.timeout_seconds"),
        (
            {"command": ["x"], "default_timeout_minutes": 0},
            "executor.command.options.default_timeout_minutes",
        ),
        ({"command": ["x"], "max_output_bytes": 0}, "executor.command.options.max_output_bytes"),
        ({"command": ["x"], "env": {"A": 1}}, "executor.command.options.env.A"),
        ({"command": ["x"], "shell": True}, "executor.command.options.shell: unknown key"),
    ],
)
def test_bad_options_are_config_errors_naming_the_key(
    host: PluginHost, options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        host.create("executor", "command", options)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(problem), info.value.problems


# -- a well-behaved command --------------------------------------------------------------------


def test_a_valid_outcome_is_read_into_the_exact_record(
    make_executor: MakeExecutor, planner_input: PlannerInput
) -> None:
    executor = make_executor(script("echo_outcome"))
    assert executor.run(planner_input, LONG, timeout_seconds=90) == CandidateOutcome(
        action=LONG,
        verified=True,
        status="success",
        duration_ms=90_000,
        cost_usd=0.2,
        fail_codes=(),
        gates=(GateOutcome("build", True), GateOutcome("tests", True)),
        candidate_minutes=3.0,
        error=None,
    )
    assert executor.run(planner_input, SHORT, timeout_seconds=90) == CandidateOutcome(
        action=SHORT,
        verified=False,
        status="failed",
        duration_ms=90_000,
        cost_usd=0.1,
        fail_codes=("tests_failed",),
        gates=(GateOutcome("build", True), GateOutcome("tests", False)),
        candidate_minutes=1.5,
        error=None,
    )


def test_stdin_carries_the_planner_input_the_action_and_the_timeout(
    make_executor: MakeExecutor, planner_input: PlannerInput, tmp_path: Path
) -> None:
    copy = tmp_path / "stdin.json"
    # Relative script path: only found if ``cwd`` is applied; the copy's path comes from ``env``.
    executor = make_executor(
        [sys.executable, "echo_outcome.py"], cwd=str(COMMANDS), env={"BENCH_STDIN_COPY": str(copy)}
    )
    outcome = executor.run(planner_input, UNCAPPED, timeout_seconds=42.5)
    assert outcome.error is None
    document = json.loads(copy.read_bytes())
    assert sorted(document) == ["action", "planner_input", "timeout_seconds"]
    assert load(document["planner_input"], PlannerInput) == planner_input
    assert document["planner_input"] == dump(planner_input)
    assert document["action"] == {
        "swarm_id": "speculate_vote",
        "max_candidates_bin": 3,
        "max_minutes_bin": "NA",
        "max_iterations_bin": "NA",
    }
    assert document["timeout_seconds"] == 42.5


@pytest.mark.parametrize(
    ("options", "bench_timeout", "action", "expected_seconds"),
    [
        ({}, 42.0, LONG, 42.0),  # the bench's
        ({"timeout_seconds": 7.0}, 42.0, LONG, 7.0),  # the option wins
        ({}, None, LONG, 3600.0),  # the minutes bin
        ({}, None, UNCAPPED, 7200.0),  # NA: the default 120 minutes
        ({"default_timeout_minutes": 1.5}, None, UNCAPPED, 90.0),
    ],
)
def test_the_timeout_comes_from_the_option_the_bench_the_action_or_the_default(
    make_executor: MakeExecutor,
    planner_input: PlannerInput,
    options: dict[str, Any],
    bench_timeout: float | None,
    action: JointAction,
    expected_seconds: float,
) -> None:
    executor = make_executor(script("echo_outcome"), **options)
    assert executor.timeout_for(action, bench_timeout) == expected_seconds
    # echo_outcome.py answers the timeout it received as its duration.
    outcome = executor.run(planner_input, action, timeout_seconds=bench_timeout)
    assert outcome.duration_ms == round(expected_seconds * 1000)


def test_a_command_that_reports_a_timeout_is_reported_as_it_says(
    make_executor: MakeExecutor, planner_input: PlannerInput
) -> None:
    said = {"verified": False, "status": "timeout", "duration_ms": 60_000, "cost_usd": 1.5}
    outcome = make_executor(script("say", json.dumps(said))).run(planner_input, LONG)
    assert outcome == CandidateOutcome(LONG, False, "timeout", 60_000, 1.5)


def test_an_invalid_action_is_the_callers_error(
    make_executor: MakeExecutor, planner_input: PlannerInput
) -> None:
    with pytest.raises(InvalidActionError):
        make_executor(script("echo_outcome")).run(
            planner_input, JointAction("serial_handoff", 2, 60, NA)
        )


# -- commands that fail ---------------------------------------------------------------------------


def _assert_failed(outcome: CandidateOutcome, action: JointAction) -> str:
    assert outcome.action == action
    assert outcome.verified is False
    assert outcome.status == "failed"
    assert outcome.cost_usd == 0.0
    assert outcome.duration_ms >= 0
    assert (outcome.fail_codes, outcome.gates, outcome.candidate_minutes) == ((), (), None)
    assert outcome.error is not None
    assert "\n" not in outcome.error
    return outcome.error


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (script("crash", "segv"), r"killed by signal SIGSEGV"),
        (script("crash", "abort"), r"killed by signal SIGABRT"),
        (
            script("crash", "raise"),
            r"exit code 1; stderr: .*RuntimeError: the kernel fell over",
        ),
        (
            script("fail"),
            r"exit code 3; stderr: \.\.\..*noise line 099 .* \| fatal: the build broke",
        ),
        (script("garbage"), r"stdout is not the outcome JSON: malformed JSON: .*'this is not JSON"),
        (
            script("unknown_key"),
            r"stdout is not the outcome JSON: verdict: unknown key",
        ),
    ],
)
def test_a_failing_command_is_a_failed_outcome_whose_reason_names_the_cause(
    make_executor: MakeExecutor, planner_input: PlannerInput, command: list[str], reason: str
) -> None:
    outcome = make_executor(command).run(planner_input, LONG)
    error = _assert_failed(outcome, LONG)
    assert re.fullmatch(reason, error) or re.match(reason, error), error
    assert len(error) < 600


@pytest.mark.parametrize(
    ("stdout", "reason"),
    [
        ("", "empty"),
        ("  \n ", "empty"),
        ("[1, 2]", "expected a JSON object"),
        ('{"verified": true, "status": "failed", "duration_ms": 1, "cost_usd": 0}', "verified: "),
        ('{"verified": false, "status": "ok", "duration_ms": 1, "cost_usd": 0}', "status: "),
        ('{"verified": false, "status": "failed", "duration_ms": 1}', "cost_usd: required"),
        (
            '{"verified": false, "status": "failed", "duration_ms": -1, "cost_usd": 0}',
            "duration_ms",
        ),
        (
            '{"verified": false, "status": "failed", "duration_ms": 1.5, "cost_usd": 0}',
            "duration_ms",
        ),
        ('{"verified": 1, "status": "failed", "duration_ms": 1, "cost_usd": 0}', "verified: "),
        ('{"verified": false, "status": "failed", "duration_ms": 1, "cost_usd": NaN}', "cost_usd"),
        (
            '{"verified": false, "verified": false, "status": "failed", "duration_ms": 1, '
            '"cost_usd": 0}',
            "verified: key given more than once",
        ),
        (
            '{"verified": false, "status": "failed", "duration_ms": 1, "cost_usd": 0, '
            '"gates": [{"name": "tests", "passed": true, "score": 1}]}',
            "gates[0].score: unknown key",
        ),
        (
            '{"verified": false, "status": "failed", "duration_ms": 1, "cost_usd": 0, '
            '"fail_codes": "tests"}',
            "fail_codes: ",
        ),
        (
            '{"verified": false, "status": "failed", "duration_ms": 1, "cost_usd": 0, '
            '"candidate_minutes": -2}',
            "candidate_minutes: ",
        ),
    ],
)
def test_stdout_that_breaks_the_schema_is_a_failure_naming_the_field(
    make_executor: MakeExecutor, planner_input: PlannerInput, stdout: str, reason: str
) -> None:
    error = _assert_failed(make_executor(script("say", stdout)).run(planner_input, LONG), LONG)
    assert error.startswith("stdout is not the outcome JSON: "), error
    assert reason in error, error


def test_a_valid_outcome_with_a_non_zero_exit_is_still_a_failure(
    make_executor: MakeExecutor, planner_input: PlannerInput
) -> None:
    said = json.dumps({"verified": True, "status": "success", "duration_ms": 1, "cost_usd": 0})
    outcome = make_executor(script("say", said, "2")).run(planner_input, LONG)
    assert _assert_failed(outcome, LONG) == "exit code 2; stderr: (empty)"


def test_optional_keys_default_and_details_are_ignored(
    make_executor: MakeExecutor, planner_input: PlannerInput
) -> None:
    said = {
        "verified": True,
        "status": "success",
        "duration_ms": 3,
        "cost_usd": 0,
        "details": {"anything": [1, {"nested": None}]},
    }
    outcome = make_executor(script("say", f"\n  {json.dumps(said)}  \n")).run(planner_input, LONG)
    assert outcome == CandidateOutcome(LONG, True, "success", 3, 0.0)


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (["/nonexistent/nope"], r"cannot start \['/nonexistent/nope'\]: .*No such file"),
        (["nope-not-on-any-path-7f3a"], r"cannot start \['nope-not-on-any-path-7f3a'\]: "),
        ([str(COMMANDS / "say.py"), "x"], r"cannot start \[.*say\.py', 'x'\]: .*Permission denied"),
    ],
)
def test_a_command_that_cannot_start_is_a_failed_outcome(
    make_executor: MakeExecutor, planner_input: PlannerInput, command: list[str], reason: str
) -> None:
    assert not os.access(COMMANDS / "say.py", os.X_OK)  # the case above needs it not executable
    error = _assert_failed(make_executor(command).run(planner_input, LONG), LONG)
    assert re.match(reason, error), error


def test_a_missing_cwd_is_a_failed_outcome(
    make_executor: MakeExecutor, planner_input: PlannerInput, tmp_path: Path
) -> None:
    executor = make_executor(script("echo_outcome"), cwd=str(tmp_path / "gone"))
    error = _assert_failed(executor.run(planner_input, LONG), LONG)
    assert error.startswith("cannot start ["), error
    assert "gone" in error


def test_stdout_beyond_the_limit_stops_reading_and_kills(
    make_executor: MakeExecutor, planner_input: PlannerInput
) -> None:
    executor = make_executor(script("flood"), max_output_bytes=100_000)
    started = time.monotonic()
    error = _assert_failed(executor.run(planner_input, LONG, timeout_seconds=30), LONG)
    assert time.monotonic() - started < 3.0
    assert error == (
        "stdout is larger than max_output_bytes (100,000 bytes); "
        "reading stopped and the process group killed"
    )


# -- timeouts and process groups ------------------------------------------------------------------

QUICK = {"timeout_seconds": 0.5, "grace_seconds": 0.2}


def _assert_timed_out(outcome: CandidateOutcome, action: JointAction) -> None:
    assert outcome.action == action
    assert (outcome.verified, outcome.status, outcome.cost_usd) == (False, "timeout", 0.0)
    assert outcome.error == "timed out after 0.5s; process group killed"


def test_a_hang_that_ignores_sigterm_is_killed_after_the_grace(
    make_executor: MakeExecutor, planner_input: PlannerInput
) -> None:
    executor = make_executor(script("hang", "--ignore-term"), **QUICK)
    started = time.monotonic()
    outcome = executor.run(planner_input, LONG, timeout_seconds=60)  # the option wins
    elapsed = time.monotonic() - started
    _assert_timed_out(outcome, LONG)
    assert 0.5 + 0.2 - 0.05 <= elapsed < 0.5 + 0.2 + 1.0, elapsed
    assert 650 <= outcome.duration_ms < 1700


def test_a_hang_that_honours_sigterm_ends_without_waiting_for_the_grace(
    make_executor: MakeExecutor, planner_input: PlannerInput
) -> None:
    executor = make_executor(script("hang"), timeout_seconds=0.5, grace_seconds=5.0)
    started = time.monotonic()
    outcome = executor.run(planner_input, LONG)
    _assert_timed_out(outcome, LONG)
    assert time.monotonic() - started < 0.5 + 1.0


def test_a_grandchild_holding_stdout_does_not_hang_the_executor_and_is_killed(
    make_executor: MakeExecutor, planner_input: PlannerInput, grandchild_pidfile: Path
) -> None:
    executor = make_executor(script("grandchild", str(grandchild_pidfile), "hang"), **QUICK)
    started = time.monotonic()
    outcome = executor.run(planner_input, LONG)
    assert time.monotonic() - started < 0.5 + 0.2 + 1.0
    _assert_timed_out(outcome, LONG)
    pid = int(grandchild_pidfile.read_text())
    assert _wait_dead(pid), f"grandchild {pid} is still alive: the process group was not killed"


def test_a_command_that_exits_leaving_a_grandchild_on_stdout_is_read_and_cleaned_up(
    make_executor: MakeExecutor, planner_input: PlannerInput, grandchild_pidfile: Path
) -> None:
    executor = make_executor(script("grandchild", str(grandchild_pidfile), "exit"))
    started = time.monotonic()
    outcome = executor.run(planner_input, LONG, timeout_seconds=30)
    assert time.monotonic() - started < 1.5
    assert outcome == CandidateOutcome(LONG, True, "success", 5, 0.25)
    pid = int(grandchild_pidfile.read_text())
    assert _wait_dead(pid), f"grandchild {pid} outlived its command"


def test_without_pidfds_the_exit_is_noticed_by_a_waiting_thread(
    make_executor: MakeExecutor,
    planner_input: PlannerInput,
    grandchild_pidfile: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(os, "pidfd_open", raising=False)  # as on macOS or an old kernel
    outcome = make_executor(script("echo_outcome")).run(planner_input, LONG, timeout_seconds=9)
    assert (outcome.verified, outcome.duration_ms, outcome.error) == (True, 9000, None)
    executor = make_executor(script("grandchild", str(grandchild_pidfile), "exit"))
    started = time.monotonic()
    outcome = executor.run(planner_input, LONG, timeout_seconds=30)
    assert time.monotonic() - started < 1.5
    assert outcome == CandidateOutcome(LONG, True, "success", 5, 0.25)
    assert _wait_dead(int(grandchild_pidfile.read_text()))
    _assert_timed_out(make_executor(script("hang"), **QUICK).run(planner_input, LONG), LONG)


# -- concurrency and overhead ------------------------------------------------------------------


def test_eight_threads_at_once_get_eight_correct_outcomes(
    make_executor: MakeExecutor, make_input: MakeInput
) -> None:
    executor = make_executor(script("echo_outcome"), env={"BENCH_SLEEP": "0.4"})
    cases = [
        (make_input(risk="high", issue_id=f"issue-{i}"), JointAction("speculate_vote", c, m, NA))
        for i, (c, m) in enumerate(
            [(1, 15), (2, 30), (3, 45), (1, 60), (2, 120), (3, NA), ("NA", 60), (2, 60)]
        )
    ]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda case: executor.run(*case, timeout_seconds=20), cases))
    elapsed = time.monotonic() - started
    for (_, action), outcome in zip(cases, outcomes, strict=True):
        n = 1 if action.max_candidates_bin == NA else action.max_candidates_bin
        assert isinstance(n, int)
        verified = action.max_minutes_bin != NA and action.max_minutes_bin >= 60
        assert outcome == CandidateOutcome(
            action=action,
            verified=verified,
            status="success" if verified else "failed",
            duration_ms=20_000,
            cost_usd=round(n * 0.1, 6),
            fail_codes=() if verified else ("tests_failed",),
            gates=(GateOutcome("build", True), GateOutcome("tests", verified)),
            candidate_minutes=n * 1.5,
        )
    assert elapsed < 8 * 0.4 * 0.6, f"the runs did not overlap: {elapsed:.2f}s"


def test_the_executor_adds_little_over_the_commands_own_run_time(
    make_executor: MakeExecutor, planner_input: PlannerInput
) -> None:
    said = json.dumps({"verified": True, "status": "success", "duration_ms": 1, "cost_usd": 0})
    command = script("say", said)
    executor = make_executor(command)
    payload = executor.stdin_document(planner_input, LONG, 60.0)

    def plain() -> float:
        started = time.perf_counter()
        subprocess.run(command, input=payload, capture_output=True, check=True)
        return time.perf_counter() - started

    def through_executor() -> float:
        started = time.perf_counter()
        assert executor.run(planner_input, LONG).error is None
        return time.perf_counter() - started

    # Interleaved, best of several: start-up noise of the interpreter cancels out.
    runs = [(plain(), through_executor()) for _ in range(6)]
    baseline = min(p for p, _ in runs)
    ours = min(e for _, e in runs)
    assert ours - baseline < 0.015, f"{(ours - baseline) * 1000:.1f} ms of overhead"
