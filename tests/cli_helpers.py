"""Running the installed console entry point in-process, as a user's shell would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

import pytest


def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    """``planner ARGS`` through ``main()``: its exit status and what it wrote to stderr."""
    from swarm_planner.cli.app import main

    monkeypatch.setattr(sys, "argv", ["planner", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return int(info.value.code or 0), capsys.readouterr().err


def run_planner(
    *args: str, timeout: float = 900, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``planner ARGS`` in a fresh interpreter (this one's, so the same installation), its
    output captured: for commands that must not share this process's imports or state."""
    return subprocess.run(
        [sys.executable, "-c", "from swarm_planner.cli.app import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else dict(env),
    )
