"""The CLI reference (``docs/cli.md``), generated from the app itself so that it cannot drift:
a test compares the file with what this prints.

    python -m swarm_planner.cli.reference > docs/cli.md
"""

from __future__ import annotations

from typing import Any

import typer.main

from swarm_planner.cli.app import app

HEADER = """# CLI reference

Every `planner` command with its arguments and options, generated from the app
(`python -m swarm_planner.cli.reference > docs/cli.md`; a test fails when this page is stale).
Every command also takes `--help`.
"""


def _is_flag(param: Any) -> bool:
    return param.param_type_name == "option" and bool(getattr(param, "is_flag", False))


def _default(param: Any) -> str:
    if _is_flag(param):
        return ""
    value = param.default
    if value is None or value == () or value == []:
        return ""
    return f" (default: `{value}`)"


def _names(param: Any) -> str:
    if param.param_type_name == "argument":
        return f"`{param.name.upper()}`"
    names = [*param.opts, *param.secondary_opts]
    return " / ".join(f"`{n}`" for n in names)


def _kind(param: Any) -> str:
    if _is_flag(param):
        return "flag"
    annotation = param.type_descriptor.annotation
    kind = str(getattr(annotation, "__name__", annotation)).replace("typing.", "")
    if getattr(param, "multiple", False):
        kind += ", repeatable"
    if param.required:
        kind += ", required"
    return kind


def _section(path: str, command: Any) -> list[str]:
    """A command's section, then one per subcommand of a group (``planner models list``)."""
    lines = [f"## `{path}`", "", (command.help or "").strip(), ""]
    params = [p for p in command.params if p.name != "help"]
    for param in params:
        help_text = " ".join((getattr(param, "help", None) or "").split())
        lines.append(
            f"- {_names(param)} ({_kind(param)}){_default(param)}: {help_text}".rstrip(": ")
        )
    if params:
        lines.append("")
    for name in sorted(getattr(command, "commands", {}) or {}):
        lines += _section(f"{path} {name}", command.commands[name])
    return lines


def reference() -> str:
    group: Any = typer.main.get_command(app)
    lines = [HEADER]
    for name in sorted(group.commands):
        lines += _section(f"planner {name}", group.commands[name])
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(reference(), end="")
