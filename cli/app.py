"""``planner``: the command line. Each command parses arguments and calls one library function."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from swarm_planner.core.errors import PlannerError

if TYPE_CHECKING:
    from swarm_planner.core.plugins import PluginHost

app = typer.Typer(
    name="planner",
    help="Learn how an agent kernel should run each issue (topology, candidates, budgets).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(
    help="Inspect the planner: section of a kernel config.", no_args_is_help=True
)
app.add_typer(config_app, name="config")


def _host() -> PluginHost:
    """The plugin host, with load warnings shown on stderr rather than as Python warnings."""
    from swarm_planner.core.plugins import PluginLoadWarning, get_host

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PluginLoadWarning)
        host = get_host()
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)
    return host


@app.command("list-plugins")
def list_plugins(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """List every registered plugin: kind, name, distribution, version, module."""
    from swarm_planner.cli.plugins_cmd import render_json, render_table

    host = _host()
    typer.echo(render_json(host) if as_json else render_table(host))


@config_app.command("show")
def config_show(
    config: Path = typer.Option(..., "--config", "-c", help="Kernel YAML config file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of YAML."),
) -> None:
    """Print the effective planner config (defaults filled in), after validating it."""
    from swarm_planner.core.config import dump_config_yaml, load_config

    cfg = load_config(config, host=_host())
    if as_json:
        typer.echo(json.dumps({"planner": cfg.to_json()}, indent=2))
    else:
        typer.echo(dump_config_yaml(cfg), nl=False)


def main() -> None:
    """Console entry point: planner errors print as one clear message and exit 2."""
    try:
        app()
    except PlannerError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
