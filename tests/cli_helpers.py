"""Running the installed console entry point in-process, as a user's shell would."""

from __future__ import annotations

import sys

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
