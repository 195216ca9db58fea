"""``planner models``: the model registry (list, show, add, promote, rollback)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from swarm_planner.cli.app import app
from swarm_planner.core.jsonconv import unstructure

models_app = typer.Typer(
    help="The model registry: versioned bundles with lineage, and the one the kernel runs "
    "(planner.model.path: registry://DIR).",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")

REGISTRY = typer.Option(
    ...,
    "--registry",
    envvar="SWARM_PLANNER_REGISTRY",
    help="Registry folder (or SWARM_PLANNER_REGISTRY).",
)
AS_JSON = typer.Option(False, "--json", help="Print JSON.")


def _registry(folder: Path) -> Any:
    from swarm_planner.core.registry import Registry

    return Registry(folder)


def _echo(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


@models_app.command("list")
def models_list(registry: Path = REGISTRY, as_json: bool = AS_JSON) -> None:
    """Every version, oldest first, with its stage and model type; `*` marks the current one."""
    reg = _registry(registry)
    current = reg.current_version()
    rows = [reg.lineage(v) for v in reg.versions()]
    if as_json:
        _echo({"current": current, "versions": [unstructure(r) for r in rows]})
        return
    if not rows:
        typer.echo(f"{registry}: no versions yet (planner models add, or planner pipeline run)")
        return
    for r in rows:
        mark = "*" if r.version == current else " "
        passed = sum(c.passed for c in r.criteria)
        criteria = f"criteria {passed}/{len(r.criteria)}" if r.criteria else "no criteria"
        typer.echo(
            f"{mark} {r.version:<5} {r.model_type or '?':<8} stage {r.stage or '-':<14} "
            f"parent {r.parent or '-':<5} {criteria:<14} created {r.created_at}"
            + (f", promoted {r.promoted_at} by {r.promoted_by}" if r.promoted_at else "")
        )


@models_app.command("show")
def models_show(
    version: str = typer.Argument(..., help="A version (v1, v2, ...) or `current`."),
    registry: Path = REGISTRY,
    as_json: bool = AS_JSON,
) -> None:
    """A version's lineage: parent, data and bench hashes, stage, criteria, promotion."""
    from swarm_planner.core.registry import RegistryError

    reg = _registry(registry)
    if version == "current":
        current = reg.current_version()
        if current is None:
            raise RegistryError(f"{registry}: nothing is current yet")
        version = current
    lineage = reg.lineage(version)
    data = {**unstructure(lineage), "path": str(reg.path_of(version))}
    data["current"] = reg.current_version() == version
    if as_json:
        _echo(data)
        return
    for key in ("version", "current", "path", "model_type", "bundle_id", "parent", "stage"):
        typer.echo(f"{key:<13} {data[key]}")
    for key in ("pipeline", "dataset_hash", "bench_hash", "source", "created_at"):
        typer.echo(f"{key:<13} {data[key]}")
    typer.echo(f"{'promoted':<13} {lineage.promoted_at or 'never'} by {lineage.promoted_by or '-'}")
    for c in lineage.criteria:
        value = "n/a" if c.value is None else f"{c.value:.4g}"
        verdict = "pass" if c.passed else "FAIL"
        typer.echo(
            f"  {verdict} {c.name}: {c.metric} {value} {c.op} {c.threshold:g} ({c.evaluation})"
        )


@models_app.command("add")
def models_add(
    bundle: Path = typer.Argument(..., help="A bundle folder (checked and sealed)."),
    registry: Path = REGISTRY,
    parent: str | None = typer.Option(None, "--parent", help="The version it came from."),
    as_json: bool = AS_JSON,
) -> None:
    """Copy a bundle in as the next version (not promoted)."""
    lineage = _registry(registry).add(bundle, {"parent": parent} if parent else None)
    if as_json:
        _echo(unstructure(lineage))
    else:
        typer.echo(f"added {lineage.version} ({lineage.model_type}, bundle {lineage.bundle_id})")


@models_app.command("promote")
def models_promote(
    version: str = typer.Argument(..., help="The version the kernel should run."),
    registry: Path = REGISTRY,
    as_json: bool = AS_JSON,
) -> None:
    """Make VERSION current, atomically; services following the registry switch to it."""
    reg = _registry(registry)
    before = reg.current_version()
    current = reg.promote(version)
    if as_json:
        _echo({**unstructure(current), "previous": before})
    else:
        typer.echo(f"current: {current.version} (was {before or 'none'})")


@models_app.command("rollback")
def models_rollback(registry: Path = REGISTRY, as_json: bool = AS_JSON) -> None:
    """Make current again the version that was current before this one."""
    reg = _registry(registry)
    before = reg.current_version()
    current = reg.rollback()
    if as_json:
        _echo({**unstructure(current), "previous": before})
    else:
        typer.echo(f"current: {current.version} (rolled back from {before})")
