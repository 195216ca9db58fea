"""``planner demo`` and ``planner report``: the main job and the report people look at."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import typer

from swarm_planner.cli import checks
from swarm_planner.cli.app import _host, app


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(
        Path("runs/demo"), "--out", callback=checks.folder, help="Folder for every stage's output."
    ),
    issues: int = typer.Option(
        3000, "--issues", min=600, max=1_000_000, help="Dispatches to simulate (and bench)."
    ),
    seed: int = typer.Option(0, "--seed", callback=checks.seed, help="World and training seed."),
    open_report: bool = typer.Option(
        False, "--open", help="Open report.html in a browser at the end."
    ),
) -> None:
    """The whole loop on the embedded world, stage by stage (re-running reuses finished stages),
    then a table of every policy against the heuristic and report.html (needs the train extra)."""
    from swarm_planner.demo.report import render_table, summary_table, write_report
    from swarm_planner.demo.run import DemoSettings, run_demo
    from swarm_planner.demo.stages import StageError

    def line(index: int, total: int, name: str, state: str, seconds: float) -> None:
        note = {"done": "", "reused": "  (reused: inputs unchanged)", "failed": "  FAILED"}[state]
        typer.echo(f"[{index:2}/{total}] {name:<22} {seconds:7.1f} s{note}")

    settings = DemoSettings(issues=issues, seed=seed, loop_issues=max(200, issues // 5))
    try:
        result = run_demo(out, settings, host=_host(), progress=line)
    except StageError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    from swarm_planner.demo.report import read_demo

    demo = read_demo(out)
    typer.echo("")
    typer.echo(render_table(summary_table(demo)))
    md, html = write_report(out)
    typer.echo(f"\ndemo in {result.seconds:.0f} s; report: {html} and {md}")
    if open_report:
        webbrowser.open(html.resolve().as_uri())


@app.command("report")
def report_cmd(
    folder: Path = typer.Argument(
        ...,
        help="A finished `planner demo`, a bench folder (`planner bench --out`, or the field "
        "kernel's), or a folder holding `planner eval-outcomes --json` saved as "
        "eval_outcomes.json.",
    ),
) -> None:
    """Render report.html and report.md from a finished demo, a bench, or your own
    eval-outcomes."""
    from swarm_planner.demo.report import write_report

    md, html = write_report(folder)
    typer.echo(f"report: {html} and {md}")
