"""The docs cannot drift from the code: the CLI reference is the app's own, and every `planner`
command shown in the README and docs names a command and options that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main

from swarm_planner.cli.app import app
from swarm_planner.cli.reference import reference

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_cli_reference_is_the_apps_own() -> None:
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert page == reference(), (
        "docs/cli.md is stale: python -m swarm_planner.cli.reference > docs/cli.md"
    )


def _shown_commands() -> list[tuple[str, list[str]]]:
    """Every `planner ...` command in a fenced shell block of the README and docs."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, flags=re.S):
            joined = block.replace("\\\n", " ")
            for line in joined.splitlines():
                try:
                    tokens = shlex.split(line, comments=True)
                except ValueError:
                    tokens = line.split()
                part: list[str] = []
                for token in [*tokens, "&&"]:
                    if token not in ("&&", "|", ";"):
                        part.append(token)
                        continue
                    if part[:1] == ["planner"] and len(part) > 1:
                        found.append((f"{page.name}: {' '.join(part)}", part[1:]))
                    part = []
    return found


SHOWN = _shown_commands()
COMMANDS: Any = typer.main.get_command(app).commands


def test_the_readme_shows_the_demo_and_the_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert 'python -m pip install -c constraints.txt -e ".[train]" && planner demo' in readme
    run = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert f"\n{run}\n" in readme, "CI runs exactly the README's test command"


@pytest.mark.parametrize("shown", SHOWN, ids=[s[0][:80] for s in SHOWN])
def test_every_command_shown_exists_with_the_options_it_uses(shown: tuple[str, list[str]]) -> None:
    where, words = shown
    command = COMMANDS.get(words[0])
    assert command is not None, f"{where}: no command {words[0]!r}"
    while getattr(command, "commands", None) and len(words) > 1:  # a group: its subcommand
        sub = command.commands.get(words[1])
        assert sub is not None, f"{where}: no command {words[0]} {words[1]!r}"
        command, words = sub, words[1:]
    known = {opt for p in command.params for opt in [*p.opts, *p.secondary_opts]}
    used = {w.split("=")[0] for w in words[1:] if w.startswith("-")}
    assert used <= known | {"--help"}, f"{where}: unknown options {sorted(used - known)}"
