"""``planner serve`` and ``planner run-world``: the kernel path from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from swarm_planner.cli import checks
from swarm_planner.cli.app import _host, app


@app.command("serve")
def serve_cmd(
    config: Path = typer.Option(
        ..., "--config", help="A kernel YAML config (its planner: section)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port (0: any free port)."),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="Allow binding an address other than loopback."
    ),
    history_root: Path | None = typer.Option(
        None, "--history-root", help="A kernel root whose archives seed the live history."
    ),
    max_body_bytes: int = typer.Option(
        1 << 20, "--max-body-bytes", min=1024, help="Largest request body accepted."
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=64,
        help="Worker processes on the one socket (each loads the bundle; runs added and reloads "
        "are relayed to all).",
    ),
) -> None:
    """Serve the decision service as JSON-RPC 2.0 over HTTP (plan, health, info, reload)."""
    from swarm_planner.core.config import load_config
    from swarm_planner.kernel_integration.live_history import LiveHistory
    from swarm_planner.kernel_integration.service import PlannerService
    from swarm_planner.kernel_integration.sidecar import (
        Sidecar,
        bind,
        is_loopback,
        serve_workers,
    )

    if not is_loopback(host) and not allow_remote:
        raise typer.BadParameter(
            f"{host} is not a loopback address; pass --allow-remote to serve other machines "
            "(the sidecar has no authentication: put it behind your own)",
            param_hint="--host",
        )
    plugins = _host()
    cfg = load_config(config, host=plugins)

    # The history is read here, once, before any worker starts: a bad root is one error line,
    # and forked workers share its pages.
    history = None if history_root is None else LiveHistory.from_root(history_root, cfg.history)

    def build() -> PlannerService:
        return PlannerService(cfg, host=plugins, history=history)

    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    listening = {"listening": f"http://{bound_host}:{bound_port}/", "workers": workers}
    if workers > 1:
        typer.echo(json.dumps(listening), err=True)
        serve_workers(build, sock, workers, max_body_bytes=max_body_bytes)
        return
    service = build()
    typer.echo(json.dumps({**listening, **service.health()}), err=True)
    Sidecar(service, sock, max_body_bytes=max_body_bytes).run()


@app.command("run-world")
def run_world_cmd(
    config: Path = typer.Option(
        ..., "--config", help="A kernel YAML config (its planner: section)."
    ),
    issues: int = typer.Option(
        1000, "--issues", min=1, max=1_000_000, help="Dispatches per phase (retries included)."
    ),
    out: Path = typer.Option(..., "--out", help="The kernel root to write (no archives yet)."),
    seed: int = typer.Option(0, "--seed", callback=checks.seed, help="Seed of the issue stream."),
    world_seed: int = typer.Option(
        0, "--world-seed", callback=checks.seed, help="Seed of the world's ground truth."
    ),
    phases: str = typer.Option(
        "log,enforce", "--phases", help="Modes to run in order (log, enforce, off)."
    ),
    history_root: Path | None = typer.Option(
        None, "--history-root", help="A kernel root whose archives seed the live history."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the phase summaries as JSON."),
) -> None:
    """The closed loop over the embedded world: decide, dispatch, archive, per phase."""
    from swarm_planner.core.config import load_config
    from swarm_planner.core.progress import progress_bar
    from swarm_planner.kernel_integration.live_history import LiveHistory
    from swarm_planner.kernel_integration.loop import LoopSettings, run_world

    modes = tuple(p.strip() for p in phases.split(","))
    bad = [m for m in modes if m not in ("off", "log", "enforce")]
    if bad or not modes:
        raise typer.BadParameter(f"{phases!r}: modes are off, log, enforce", param_hint="--phases")
    plugins = _host()
    cfg = load_config(config, host=plugins)
    history = None
    if history_root is not None:
        history = LiveHistory.from_root(history_root, cfg.history)
    settings = LoopSettings(issues, seed, world_seed, phases=modes)  # type: ignore[arg-type]
    with progress_bar("run-world", notes=False) as progress:
        summaries = run_world(cfg, out, settings, host=plugins, history=history, progress=progress)
    if as_json:
        typer.echo(json.dumps([s.to_json() for s in summaries], indent=2))
        return
    for s in summaries:
        cpp = "n/a" if s.cost_per_pass is None else f"${s.cost_per_pass:.3f}"
        typer.echo(
            f"{s.mode:8} {s.decisions} decisions: pass rate {s.pass_rate:.1%}, cost per pass "
            f"{cpp}, fallback rate {s.fallback_rate:.1%}, decision p50 "
            f"{s.latency_us_p50:.0f} µs p99 {s.latency_us_p99:.0f} µs"
        )
        reasons = ", ".join(f"{r} {n}" for r, n in s.reasons.items())
        typer.echo(f"         reasons: {reasons}")
    typer.echo(f"archives in {out}; next: planner build-dataset --root {out} --out DATASET")


@app.command("eval-logged")
def eval_logged_cmd(
    root: Path = typer.Option(..., "--root", help="A kernel root whose runs logged decisions."),
    policy: list[str] = typer.Option(
        [], "--policy", help="A bundle folder or a policy name to estimate; repeat."
    ),
    policy_option: list[str] = typer.Option(
        [], "--policy-option", help="[POLICY:]KEY=VALUE, an option of a --policy; repeat."
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="A kernel YAML config: its gate (safety, flags, threshold, fallback) applies to "
        "every candidate, and its own policy is estimated too.",
    ),
    bootstrap: int = typer.Option(500, "--bootstrap", min=10, max=100_000, help="Resamples."),
    seed: int = typer.Option(0, "--seed", callback=checks.seed, help="Bootstrap seed."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Off-policy estimates (IPS, SNIPS, DR) of candidates' pass rate and cost per pass."""
    from swarm_planner.core.config import PlannerConfig, load_config, parse_config
    from swarm_planner.core.evaluation import policy_specs
    from swarm_planner.kernel_integration.offpolicy import estimate, read_logged, target_actions
    from swarm_planner.kernel_integration.service import bundle_config

    plugins = _host()
    base = load_config(config, host=plugins) if config is not None else PlannerConfig()
    candidates: list[tuple[str, PlannerConfig]] = []
    if config is not None:
        candidates.append((f"{base.model.type} ({config.name})", base))
    for spec in policy_specs(policy, policy_option):
        if Path(spec.ref).is_dir():
            model = dict(bundle_config(spec.ref)["model"], options=spec.options)
        else:
            model = {"type": spec.ref, "options": spec.options}
        section = base.to_json()
        section["model"] = {**section["model"], **model}
        candidates.append((spec.ref, parse_config(section, source=f"--policy {spec.ref}")))
    if not candidates:
        raise typer.BadParameter("give at least one --policy or a --config", param_hint="--policy")
    logged = read_logged(root)
    results = []
    for name, cfg in candidates:
        targets = target_actions(logged.decisions, cfg, host=plugins)
        results.append(estimate(logged, targets, name=name, bootstrap=bootstrap, seed=seed))
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "logged": len(logged.decisions),
                    "skipped": logged.skipped,
                    "policies": [r.to_json() for r in results],
                },
                indent=2,
            )
        )
        return
    typer.echo(f"{len(logged.decisions)} logged decisions; skipped: {logged.skipped or 'none'}")
    for r in results:
        typer.echo(
            f"{r.name}: {r.matches} matching dispatches, effective sample size {r.ess:.0f}, "
            f"{r.unsupported} without support"
            + (" (decisions logged in log mode or outside the safe set)" if r.unsupported else "")
        )
        for k in ("ips", "snips", "dr"):
            p, c = r.pass_rate[k], r.cost_per_pass[k]
            typer.echo(
                f"  {k:5} pass rate {p.value:.1%} [{p.low:.1%}, {p.high:.1%}]  cost per pass "
                f"${c.value:.3f} [${c.low:.3f}, ${c.high:.3f}]"
            )
