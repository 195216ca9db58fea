"""``planner``: the command line. Each command parses arguments and calls one library function."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
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


@app.command("simulate")
def simulate_cmd(
    out: Path = typer.Option(
        ..., "--out", help="Kernel repo root to create (must hold no archives)."
    ),
    issues: int = typer.Option(
        2000, "--issues", min=1, help="Dispatches (runs) to archive, retries included."
    ),
    seed: int = typer.Option(0, "--seed", help="World seed: same seed, same root."),
    weeks: int = typer.Option(8, "--weeks", min=1, help="Weeks of timestamps the runs span."),
    force: bool = typer.Option(False, "--force", help="Replace an earlier simulation in OUT."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Write a synthetic kernel repo root (archives, issues, universe) from the embedded world."""
    from swarm_planner.core.progress import progress_bar
    from swarm_planner.sim.generate import SimConfig, simulate

    with progress_bar("simulate", enabled=not quiet) as progress:
        config = SimConfig(runs=issues, seed=seed, weeks=weeks)
        summary = simulate(out, config, progress, replace=force)
    typer.echo(
        f"wrote {summary.runs} runs of {summary.issues} issues to {summary.root} "
        f"(outcomes: {summary.statuses})"
    )


@app.command("build-dataset")
def build_dataset_cmd(
    root: Path = typer.Option(..., "--root", help="Kernel repo root to read."),
    out: Path = typer.Option(..., "--out", help="Folder for dataset.jsonl and meta.json."),
    n_similar: int = typer.Option(8, "--n-similar", min=0, help="Similar runs per input (N)."),
    scorer: str = typer.Option("signals", "--scorer", help="Retrieval scorer: signals | field."),
    window: int = typer.Option(
        256, "--window", min=0, help="Postings scanned per signal (0 = exact)."
    ),
    include_world: bool = typer.Option(
        True, "--include-world/--no-include-world", help="Keep fab-world runs."
    ),
    universe: str | None = typer.Option(
        None, "--universe", help="Universe id (default: the first)."
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Fail on the first bad file instead of skipping it."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print meta.json instead of a summary."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Build a dataset (cyntra.planner_dataset.v1) from a kernel root's archives."""
    from swarm_planner.cli.data_cmd import render_build
    from swarm_planner.core.dataset import DatasetOptions, build_dataset
    from swarm_planner.core.progress import progress_bar

    options = DatasetOptions(
        n_similar=n_similar,
        scorer=scorer,
        include_world=include_world,
        window=window or None,
        universe_id=universe,
        strict=strict,
    )
    with progress_bar("build-dataset", enabled=not quiet) as progress:
        result = build_dataset(root, out, options, progress=progress)
    typer.echo(json.dumps(result.meta, indent=2) if as_json else render_build(result.meta))


@app.command("stats")
def stats_cmd(
    root: Path = typer.Option(..., "--root", help="Kernel repo root to read."),
    universe: str | None = typer.Option(
        None, "--universe", help="Universe id (default: the first)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Counts by job type, domain, risk, size, executed bins, outcome, and the label lanes."""
    from swarm_planner.cli.data_cmd import render_stats
    from swarm_planner.core.dataset import root_stats

    stats = root_stats(root, universe_id=universe)
    typer.echo(json.dumps(stats, indent=2) if as_json else render_stats(stats))


@app.command("check-dataset")
def check_dataset_cmd(
    folder: Path = typer.Argument(..., help="Dataset folder (dataset.jsonl + meta.json)."),
    min_examples: int = typer.Option(500, "--min-examples", help="Gate: fewest rows."),
    min_agreement: float = typer.Option(
        0.8, "--min-agreement", help="Gate: near-duplicate agreement."
    ),
    min_entropy: float = typer.Option(1.0, "--min-entropy", help="Gate: label entropy in bits."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Feasibility gates before training; exits 1 when any gate fails."""
    from swarm_planner.cli.data_cmd import render_gates
    from swarm_planner.core.dataset import GateThresholds, check_dataset

    thresholds = GateThresholds(
        min_examples=min_examples,
        min_label_agreement=min_agreement,
        min_label_entropy_bits=min_entropy,
    )
    results = check_dataset(folder, thresholds)
    if as_json:
        typer.echo(json.dumps([attrs.asdict(r) for r in results], indent=2))
    else:
        typer.echo(render_gates(results))
    if not all(r.passed for r in results):
        raise typer.Exit(1)


def main() -> None:
    """Console entry point: planner errors print as one clear message and exit 2."""
    try:
        app()
    except PlannerError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
