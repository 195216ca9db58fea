"""``planner bench``, ``build-outcome-dataset`` and ``eval-outcomes``: the outcome commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from swarm_planner.cli import checks
from swarm_planner.cli.app import _host, app
from swarm_planner.core.bench.backends import BACKENDS
from swarm_planner.core.bench.records import BUDGET_MODES, ON_BUDGET


def _kind_options(assignments: list[str], option: str) -> dict[str, Any]:
    from swarm_planner.core.evaluation import policy_specs

    if not assignments:
        return {}
    return policy_specs(["plugin"], assignments, option=option)[0].options


def _issues(value: str | None) -> tuple[Path | None, int | None]:
    if value is None:
        return None, None
    if value.isdigit():
        count = int(value)
        if not 1 <= count <= 10_000_000:
            raise typer.BadParameter(f"{count} is not from 1 to 10,000,000", param_hint="--issues")
        return None, count
    path = Path(value)
    if not path.is_file():
        raise typer.BadParameter(
            f"{value!r} is neither a number of issues nor a file", param_hint="--issues"
        )
    return path, None


def _resources(value: str | None) -> dict[str, float] | None:
    """``--resources``: a JSON object of resource names to positive amounts."""
    if value is None:
        return None
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON ({exc.msg})", param_hint="--resources") from None
    if not isinstance(data, dict) or not data:
        raise typer.BadParameter(
            'expected an object of names to amounts, e.g. {"agent_slot": 1}',
            param_hint="--resources",
        )
    out = {}
    for name, amount in data.items():
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not amount > 0:
            raise typer.BadParameter(
                f"{name!r}: {amount!r} is not a positive number", param_hint="--resources"
            )
        out[str(name)] = float(amount)
    return out


@app.command("bench")
def bench_cmd(
    out: Path = typer.Option(
        ...,
        "--out",
        callback=checks.folder,
        help="Bench folder (resumed when it holds this bench).",
    ),
    root: Path | None = typer.Option(
        None, "--root", help="Kernel repo root whose runs are the issues."
    ),
    world: str | None = typer.Option(
        None,
        "--world",
        callback=lambda v: v if v is None else checks.choice("sim")(v),
        help="The embedded world: sim.",
    ),
    world_seed: int = typer.Option(
        0, "--world-seed", callback=checks.seed, help="Seed of the embedded world."
    ),
    issues: str | None = typer.Option(
        None,
        "--issues",
        help="FILE of cases (JSON lines), or N: the first N issues (sim: how many to simulate; default 1000).",
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Kernel YAML config (its planner.bench section)."
    ),
    k: int | None = typer.Option(
        None, "--k", min=1, max=1000, help="Candidates per issue (config: 4)."
    ),
    sampler: str | None = typer.Option(
        None, "--sampler", help="Sampler plugin (config: deterministic)."
    ),
    executor: str | None = typer.Option(
        None, "--executor", help="Executor plugin (sim for --world sim)."
    ),
    selector: str | None = typer.Option(
        None, "--selector", help="Selector plugin (config: lexicographic)."
    ),
    sampler_option: list[str] = typer.Option(
        [], "--sampler-option", help="KEY=VALUE (YAML value), repeatable."
    ),
    executor_option: list[str] = typer.Option(
        [], "--executor-option", help="KEY=VALUE (YAML value), repeatable."
    ),
    selector_option: list[str] = typer.Option(
        [], "--selector-option", help="KEY=VALUE (YAML value), repeatable."
    ),
    jobs: int | None = typer.Option(None, "--jobs", min=1, max=1024, help="Issues run at once."),
    budget_minutes: float | None = typer.Option(
        None,
        "--budget-minutes",
        callback=checks.number(above=0.0),
        help="Whole-bench budget in candidate-minutes.",
    ),
    issue_budget_minutes: float | None = typer.Option(
        None,
        "--issue-budget-minutes",
        callback=checks.number(above=0.0),
        help="Per-issue budget in candidate-minutes.",
    ),
    keep_failed_winners: bool | None = typer.Option(
        None,
        "--keep-failed-winners/--no-failed-winners",
        help="Name a winner when no candidate passed.",
    ),
    budget_mode: str | None = typer.Option(
        None,
        "--budget-mode",
        callback=lambda v: v if v is None else checks.choice(*BUDGET_MODES)(v),
        help="reserve (worst case fits; config default) or spend (start while spent < budget).",
    ),
    on_budget: str | None = typer.Option(
        None,
        "--on-budget",
        callback=lambda v: v if v is None else checks.choice(*ON_BUDGET)(v),
        help="spend mode: running candidates finish or are killed when the budget is reached.",
    ),
    backend: str = typer.Option(
        "local",
        "--backend",
        callback=checks.choice(*BACKENDS),
        help="Where candidates run: local (threads here) or ray (Ray tasks).",
    ),
    address: str | None = typer.Option(
        None,
        "--address",
        help="Ray: auto (a running cluster) or HOST:PORT; none: a local Ray for this bench.",
    ),
    resources: str | None = typer.Option(
        None,
        "--resources",
        help="Ray: custom resources per candidate, JSON, e.g. '{\"agent_slot\": 1}'.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print summary.json."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Run K candidate plans per issue, log each as it finishes (resumable), pick winners."""
    import attrs

    from swarm_planner.core.bench.runner import run_bench
    from swarm_planner.core.bench.setup import BenchRequest, bench_backend, prepare_bench
    from swarm_planner.core.config import PlannerConfig, load_config
    from swarm_planner.core.progress import progress_bar

    host = _host()
    cfg = load_config(config, host=host) if config is not None else PlannerConfig()
    issues_file, count = _issues(issues)
    request = BenchRequest(
        out=out,
        root=root,
        world=world,
        world_seed=world_seed,
        issues_file=issues_file,
        issues=count,
        k=k,
        sampler=sampler,
        selector=selector,
        executor=executor,
        options={
            "sampler": _kind_options(sampler_option, "--sampler-option"),
            "executor": _kind_options(executor_option, "--executor-option"),
            "selector": _kind_options(selector_option, "--selector-option"),
        },
        jobs=jobs,
        budget_minutes=budget_minutes,
        issue_budget_minutes=issue_budget_minutes,
        keep_failed_winners=keep_failed_winners,
        budget_mode=budget_mode,
        on_budget=on_budget,
        backend=backend,
        address=address,
        resources=_resources(resources),
    )
    with progress_bar("prepare", enabled=not quiet) as progress:
        cases, settings, plugins, names, n_jobs = prepare_bench(
            request, cfg, host, progress=progress
        )
    runner = bench_backend(request, cfg)
    with progress_bar("bench", enabled=not quiet, notes=True) as bar:
        summary, _ = run_bench(
            out, cases, settings, plugins, jobs=n_jobs, names=names, progress=bar, backend=runner
        )
    if as_json:
        typer.echo(json.dumps({**attrs.asdict(summary), "pass_rate": summary.pass_rate}, indent=2))
        return
    typer.echo(
        f"bench {summary.out}: {summary.cases} issues, {summary.ran} candidates run "
        f"({summary.resumed} already in the log), config {summary.config_hash[:12]}"
    )
    typer.echo(
        f"passed (any candidate) {summary.cases_passed}/{summary.cases} ({summary.pass_rate:.1%}); "
        f"baseline alone {summary.baseline_passed}/{summary.cases}; spent {summary.spent_minutes:,.1f} "
        f"candidate-minutes ({summary.estimated_minutes:,.1f} estimated)"
        + (f" of {summary.budget_minutes:g}" if summary.budget_minutes else "")
    )
    if summary.skipped:
        typer.echo(f"not run (budgets): {summary.skipped}")
    if summary.errors:
        typer.echo(f"failed to run: {summary.errors}")
    if summary.lost_attempts:
        typer.echo(
            f"{summary.lost_attempts} attempts were lost with their worker and run again "
            f"(see {summary.out}/attempts.jsonl)"
        )
    if summary.torn_bytes:
        typer.echo(
            f"a torn last log line ({summary.torn_bytes} bytes) from a killed run was dropped and re-run"
        )


@app.command("build-outcome-dataset")
def build_outcome_dataset_cmd(
    bench: Path = typer.Option(
        ...,
        "--bench",
        help="A bench folder: ours, or the field's best-of-k output (a run_* folder or its parent).",
    ),
    out: Path = typer.Option(
        ..., "--out", callback=checks.folder, help="Outcome dataset folder to write."
    ),
    split: str = typer.Option(
        "0.8,0.1,0.1", "--split", help="Shares of issues for train,val,test (time order)."
    ),
    keep_failed_winners: bool = typer.Option(
        False, "--keep-failed-winners", help="Keep a winner that did not pass as the row's label."
    ),
    train_issues: int | None = typer.Option(
        None,
        "--train-issues",
        min=1,
        help="Exactly this many issues for train (with --val-issues; the rest is test).",
    ),
    val_issues: int | None = typer.Option(
        None, "--val-issues", min=1, help="Exactly this many issues for val."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print meta.json."),
) -> None:
    """Turn a best-of-K bench into an outcome dataset (every tried candidate, winners as labels)."""
    from swarm_planner.core.outcomes import build_outcome_dataset

    try:
        shares = [float(p) for p in split.split(",")]
    except ValueError:
        raise typer.BadParameter(
            f"{split!r} is not three comma-separated numbers", param_hint="--split"
        ) from None
    if (train_issues is None) != (val_issues is None):
        raise typer.BadParameter(
            "give both --train-issues and --val-issues, or neither", param_hint="--train-issues"
        )
    counts = None if train_issues is None or val_issues is None else (train_issues, val_issues)
    meta = build_outcome_dataset(
        bench, out, shares=shares, issue_counts=counts, keep_failed_winners=keep_failed_winners
    )
    if as_json:
        typer.echo(json.dumps(meta, indent=2, sort_keys=True))
        return
    c = meta["candidates"]
    typer.echo(
        f"{out}: {meta['example_count']} rows ({meta['bench']['source']} bench), issues "
        f"{meta['split_issues']}, rows {meta['split_counts']}, {sum(c['tried'].values())} candidates, pass rate {c['pass_rate']}, "
        f"{c['rows_with_winner']} rows with a winner"
    )
    if meta["skipped"]:
        typer.echo(f"skipped: {meta['skipped']}")
    if meta["repairs"].get("counts"):
        typer.echo(f"repaired: {meta['repairs']['counts']}")


@app.command("eval-outcomes")
def eval_outcomes_cmd(
    dataset: Path = typer.Option(
        ..., "--dataset", help="Outcome dataset (build-outcome-dataset output)."
    ),
    policy: list[str] = typer.Option(
        ...,
        "--policy",
        help="heuristic, table (fitted on the train split), a plugin name or a bundle folder; repeatable.",
    ),
    policy_option: list[str] = typer.Option(
        [], "--policy-option", help="[POLICY:]KEY=VALUE (YAML value), repeatable."
    ),
    executor: str | None = typer.Option(
        None,
        "--executor",
        help="Run each policy's choice with this executor (online); omit for offline.",
    ),
    executor_option: list[str] = typer.Option(
        [], "--executor-option", help="KEY=VALUE for the executor."
    ),
    oracle: bool = typer.Option(
        True,
        "--oracle/--no-oracle",
        help="Online: also run every valid action (the per-issue oracle).",
    ),
    cost_weight: float = typer.Option(
        0.2,
        "--cost-weight",
        callback=checks.number(low=0.0),
        help="Utility lost per USD (regret, oracle).",
    ),
    time_weight: float = typer.Option(
        0.0, "--time-weight", callback=checks.number(low=0.0), help="Utility lost per hour."
    ),
    rounds: int = typer.Option(
        1000, "--bootstrap", min=10, max=100_000, help="Bootstrap resamples."
    ),
    seed: int = typer.Option(0, "--seed", callback=checks.seed),
    plots: Path | None = typer.Option(
        None, "--plots", callback=checks.folder, help="Write frontier.png here."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the evaluation as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Compare policies on held-out issues: pass rate, cost/time per pass, regret, frontier."""
    from swarm_planner.cli.data_cmd import render_outcome_table
    from swarm_planner.core.evaluation import policy_specs
    from swarm_planner.core.outcome_eval import evaluate_outcomes, plot_frontier
    from swarm_planner.core.progress import progress_bar
    from swarm_planner.core.utility import UtilityWeights

    host = _host()
    specs = policy_specs(policy, policy_option)
    runner = None
    if executor is not None:
        runner = host.create(
            "executor", executor, _kind_options(executor_option, "--executor-option")
        )
    with progress_bar("eval-outcomes", enabled=not quiet) as progress:
        result = evaluate_outcomes(
            dataset,
            specs,
            host,
            executor=runner,
            weights=UtilityWeights(cost_weight=cost_weight, time_weight=time_weight),
            oracle=oracle,
            rounds=rounds,
            seed=seed,
            progress=progress,
        )
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
        plot_frontier(result, plots / "frontier.png")
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    typer.echo(render_outcome_table(result))
    if plots is not None:
        typer.echo(f"plot: {plots / 'frontier.png'}")
