"""``planner pipeline run``: staged training with graduation into the model registry."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from swarm_planner.cli import checks
from swarm_planner.cli.app import _host, app

pipeline_app = typer.Typer(
    help="Staged training: each stage promoted into the registry only if it graduates.",
    no_args_is_help=True,
)
app.add_typer(pipeline_app, name="pipeline")


@pipeline_app.command("run")
def pipeline_run(
    file: Path = typer.Argument(..., help="The pipeline YAML (see examples/pipeline.yaml)."),
    out: Path = typer.Option(
        Path("runs/pipeline"), "--out", callback=checks.folder, help="Folder for every step."
    ),
    registry: Path | None = typer.Option(
        None,
        "--registry",
        help="Registry to promote into (default: the file's `registry`, else OUT/registry).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON at the end."),
) -> None:
    """Run the stages in order (finished steps are reused), promote each stage that meets its
    criteria without regressing on earlier stages, stop at the first that does not (exit 1)."""
    from swarm_planner.core.jsonconv import unstructure
    from swarm_planner.demo.stages import StageError
    from swarm_planner.pipeline.run import StageOutcome, run_pipeline
    from swarm_planner.pipeline.spec import load_pipeline

    spec = load_pipeline(file)

    def line(index: int, total: int, name: str, state: str, seconds: float) -> None:
        note = {"done": "", "reused": "  (reused: inputs unchanged)", "failed": "  FAILED"}[state]
        typer.echo(f"  [{index}/{total}] {name:<28} {seconds:7.1f} s{note}", err=as_json)

    def verdict(outcome: StageOutcome) -> None:
        if outcome.promoted is not None:
            passed = len(outcome.criteria)
            typer.echo(
                f"stage {outcome.stage}: promoted as {outcome.promoted} ({passed} criteria passed)",
                err=as_json,
            )
            return
        typer.echo(f"stage {outcome.stage}: NOT promoted; failed:", err=as_json)
        for c in outcome.failed:
            value = "n/a" if c.value is None else f"{c.value:.4g}"
            typer.echo(
                f"    {c.name} on {c.evaluation}: {value} (needs {c.op} {c.threshold:g})",
                err=as_json,
            )

    try:
        result = run_pipeline(
            spec, out, registry=registry, host=_host(), progress=line, stage_done=verdict
        )
    except StageError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(unstructure(result), indent=2, sort_keys=True))
    else:
        skipped = [s.stage for s in result.stages if not s.reached]
        tail = f"; not run: {', '.join(skipped)}" if skipped else ""
        typer.echo(f"current: {result.current or 'none'} in {result.registry}{tail}")
    if not result.ok:
        raise typer.Exit(1)
