"""``planner``: the command line. Each command parses arguments and calls one library function."""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import typer

from swarm_planner.cli import checks
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

ENV_DEBUG = "SWARM_PLANNER_DEBUG"


@app.callback()
def _options(
    debug: bool = typer.Option(
        False,
        "--debug",
        help=f"Show tracebacks: of plugins that failed to load, and of errors ({ENV_DEBUG}=1).",
    ),
) -> None:
    """Learn how an agent kernel should run each issue (topology, candidates, budgets)."""
    if debug:
        os.environ[ENV_DEBUG] = "1"


def int_list(text: str, *, option: str, minimum: int = 0, maximum: int = 1024) -> list[int]:
    """``"0,1,4"`` → ``[0, 1, 4]``; anything else is a usage error naming ``option``."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise typer.BadParameter(
            f"{text!r} is not a comma-separated list of whole numbers", param_hint=option
        )
    values = []
    for part in parts:
        if not part.lstrip("+").isdigit() or len(part) > 9:
            raise typer.BadParameter(
                f"{part!r} in {text!r} is not a whole number of at most 9 digits", param_hint=option
            )
        value = int(part)
        if value < minimum:
            raise typer.BadParameter(f"{value} is below {minimum}", param_hint=option)
        if value > maximum:
            raise typer.BadParameter(f"{value} is above {maximum}", param_hint=option)
        values.append(value)
    return values


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
        ...,
        "--out",
        callback=checks.folder,
        help="Kernel repo root to create (must hold no archives).",
    ),
    issues: int = typer.Option(
        2000,
        "--issues",
        min=1,
        max=10_000_000,
        help="Dispatches (runs) to archive, retries included.",
    ),
    seed: int = typer.Option(
        0, "--seed", callback=checks.seed, help="World seed: same seed, same root."
    ),
    weeks: int = typer.Option(
        8, "--weeks", min=1, max=520, help="Weeks of timestamps the runs span (at most 520)."
    ),
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
    out: Path = typer.Option(
        ..., "--out", callback=checks.folder, help="Folder for dataset.jsonl and meta.json."
    ),
    n_similar: int = typer.Option(
        8, "--n-similar", min=0, max=64, help="Similar runs per input (N, at most 64)."
    ),
    scorer: str = typer.Option(
        "signals",
        "--scorer",
        callback=checks.choice("signals", "field"),
        help="Retrieval scorer: signals | field.",
    ),
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
    min_examples: int = typer.Option(500, "--min-examples", min=0, help="Gate: fewest rows."),
    min_agreement: float = typer.Option(
        0.8, "--min-agreement", callback=checks.unit, help="Gate: near-duplicate agreement."
    ),
    min_entropy: float = typer.Option(
        1.0, "--min-entropy", callback=checks.number(low=0.0), help="Gate: label entropy in bits."
    ),
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


@app.command("train")
def train_cmd(
    dataset: Path = typer.Option(
        ..., "--dataset", help="Dataset folder (build-dataset or build-outcome-dataset output)."
    ),
    out: Path = typer.Option(..., "--out", callback=checks.folder, help="Bundle folder to write."),
    init: Path | None = typer.Option(
        None,
        "--init",
        help="Start from this bundle's weights: an mlp/joint bundle fine-tuned on bench "
        "winners, or a value bundle on a new outcome dataset.",
    ),
    model: str = typer.Option(
        "mlp",
        "--model",
        callback=checks.choice("mlp", "joint", "transformer", "mlp-ar", "value", "table"),
        help="mlp (four masked heads), joint, transformer (attention over the tokens, mlp's heads), mlp-ar (mlp with autoregressive heads), value (outcome model) or table (per-cell outcomes); value and table need an outcome dataset.",
    ),
    epochs: int = typer.Option(
        40, "--epochs", min=1, max=10_000, help="Most epochs (early stopping decides)."
    ),
    patience: int = typer.Option(4, "--patience", min=1, help="Epochs without improvement."),
    lr: float = typer.Option(
        3e-3, "--lr", callback=checks.number(above=0.0, high=10.0), help="AdamW learning rate."
    ),
    batch_size: int = typer.Option(256, "--batch-size", min=1, max=65_536),
    seed: int = typer.Option(
        0, "--seed", callback=checks.seed, help="Same data and seed, same model."
    ),
    class_weights: bool = typer.Option(False, "--class-weights", help="Balance rare labels."),
    n_history: int = typer.Option(16, "--n-history", min=0, max=256, help="History slots encoded."),
    export: bool = typer.Option(
        True, "--export/--no-export", help="Export model.onnx and validate it as the last step."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print metrics.json."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train an mlp, joint or transformer policy, calibrate it, and write a bundle (needs the
    train extra)."""
    from swarm_planner.cli.data_cmd import render_metrics_table
    from swarm_planner.core.progress import progress_bar
    from swarm_planner.plugins.encoders.compositional import CompositionalOptions
    from swarm_planner.plugins.models.training import TrainConfig, train

    if model in ("value", "table"):
        _train_outcomes(
            model,
            dataset,
            out,
            init,
            epochs,
            patience,
            lr,
            batch_size,
            seed,
            n_history,
            as_json,
            quiet,
        )
        return
    config = TrainConfig.for_model(
        model,
        max_epochs=epochs,
        patience=patience,
        **({} if lr == 3e-3 and model == "transformer" else {"lr": lr}),
        batch_size=batch_size,
        seed=seed,
        class_weights=class_weights,
        encoder=CompositionalOptions(n_history=n_history),
    )
    with progress_bar(f"train {model}", enabled=not quiet) as progress:
        result = train(dataset, out, config, init=init, progress=progress)
    exported = None
    if export:
        from swarm_planner.plugins.models.export import export_bundle

        exported = export_bundle(out, dataset)
    if as_json:
        typer.echo(json.dumps(result.metrics, indent=2))
        return
    if exported is not None:
        typer.echo(
            f"model.onnx: {exported['onnx']['bytes'] / 1e6:.2f} MB, probe of {exported['probe']['size']}: "
            f"max |Δprob| {exported['max_abs_prob_diff']:.1e}, action agreement {exported['action_agreement']:.0%}"
        )
    m = result.metrics
    test = m["splits"]["test"]
    typer.echo(
        f"bundle: {result.out}  ({m['training']['epochs_run']} epochs, best {m['training']['best_epoch']}, "
        f"{result.seconds:.1f} s)"
    )
    cal = m["calibration"]
    typer.echo(
        f"temperature {cal['temperature']:.3f}; test ECE {cal['test_ece_before']:.4f} -> "
        f"{cal['test_ece_after']:.4f}; val ECE {cal['val_ece_before']:.4f} -> {cal['val_ece_after']:.4f}"
    )
    typer.echo(f"test split ({test['model']['rows']} rows):")
    typer.echo(render_metrics_table({model: test["model"], "heuristic": test["heuristic"]}))


def _train_outcomes(
    model: str,
    dataset: Path,
    out: Path,
    init: Path | None,
    epochs: int,
    patience: int,
    lr: float,
    batch_size: int,
    seed: int,
    n_history: int,
    as_json: bool,
    quiet: bool,
) -> None:
    from swarm_planner.core.progress import progress_bar
    from swarm_planner.plugins.encoders.compositional import CompositionalOptions

    if init is not None and model == "table":
        raise typer.BadParameter(
            "--init fine-tunes an mlp, joint or value bundle", param_hint="--init"
        )
    if model == "table":
        from swarm_planner.plugins.models.table import fit_table

        summary = fit_table(dataset, out)
        typer.echo(
            f"table: {out}/table.json ({summary['cells']} cells from {summary['rows']} train rows)"
        )
        return
    from swarm_planner.plugins.models.value_training import ValueConfig, train_value

    config = ValueConfig(
        lr=lr,
        batch_size=min(batch_size, 128) if batch_size == 256 else batch_size,
        max_epochs=epochs if epochs != 40 else 60,
        patience=patience if patience != 4 else 6,
        seed=seed,
        encoder=CompositionalOptions(n_history=n_history),
    )
    with progress_bar("train value", enabled=not quiet) as progress:
        result = train_value(dataset, out, config, init=init, progress=progress)
    if as_json:
        typer.echo(json.dumps(result.metrics, indent=2))
        return
    m = result.metrics
    cal = m["calibration"]
    typer.echo(
        f"value bundle: {result.out} ({m['training']['epochs_run']} epochs, best "
        f"{m['training']['best_epoch']}, {result.seconds:.1f} s); P(pass) ECE test "
        f"{cal['test_ece_before']:.4f} -> {cal['test_ece_after']:.4f}, val "
        f"{cal['val_ece_before']:.4f} -> {cal['val_ece_after']:.4f}"
    )
    test = m["splits"]["test"]
    typer.echo(
        f"test: {test['candidates']} tried candidates, Brier {test['brier']:.4f}, duration MAE "
        f"{test['duration_mae_min']:.1f} min, cost MAE ${test['cost_mae_usd']:.3f}"
    )


@app.command("export")
def export_cmd(
    bundle: Path = typer.Argument(..., help="A trained bundle folder."),
    dataset: Path = typer.Option(..., "--dataset", help="Dataset whose rows make the probe set."),
    threshold: float = typer.Option(
        0.6, "--threshold", callback=checks.unit, help="Abstention threshold checked for agreement."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print validation.json."),
) -> None:
    """Export model.onnx (weights inside, mask/temperature/softmax in the graph) and validate it."""
    from swarm_planner.plugins.models.export import export_bundle

    validation = export_bundle(bundle, dataset, threshold=threshold)
    if as_json:
        typer.echo(json.dumps(validation, indent=2))
    else:
        typer.echo(
            f"{bundle}/model.onnx: {validation['onnx']['bytes'] / 1e6:.2f} MB, opset {validation['onnx']['opset']}, "
            f"IR {validation['onnx']['ir_version']}; probe of {validation['probe']['size']}: max |Δprob| "
            f"{validation['max_abs_prob_diff']:.1e}, action agreement {validation['action_agreement']:.0%}, "
            f"abstention agreement {validation['abstention_agreement']:.0%}"
        )


@app.command("plan")
def plan_cmd(
    input_file: Path = typer.Option(..., "--input", help="A planner_input.v1 JSON file."),
    bundle: Path | None = typer.Option(
        None, "--bundle", help="A bundle folder (served by the policy its metadata names)."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="A kernel YAML config: its planner: section decides."
    ),
    baseline: str | None = typer.Option(
        None,
        "--baseline",
        help="What the kernel would run without a planner, as SWARM|CANDIDATES|MINUTES|ITERATIONS "
        "(default: the fallback's decision).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the whole decision as JSON."),
) -> None:
    """One decision for one planner_input, through the decision service and its gate.

    With --bundle alone the service runs in enforce mode with the bundle's own policy and the
    default inference and safety settings; with --config, exactly as the kernel would."""
    from swarm_planner.core.config import load_config, parse_config
    from swarm_planner.core.contracts import PlannerInput, load
    from swarm_planner.core.documents import read_json
    from swarm_planner.kernel_integration.service import PlannerService, bundle_config

    if (bundle is None) == (config is None):
        raise typer.BadParameter("give --bundle or --config (one of them)", param_hint="--bundle")
    base = None if baseline is None else checks.action_text(baseline, option="--baseline")
    host = _host()
    document = read_json(input_file)
    planner_input = load(document, PlannerInput, source=str(input_file))
    if config is not None:
        cfg = load_config(config, host=host)
    else:
        cfg = parse_config(bundle_config(str(bundle)), source="--bundle", host=host)
    decision = PlannerService(cfg, host=host).decide(planner_input, base)
    if as_json:
        typer.echo(json.dumps(decision.to_json(), indent=2, sort_keys=True))
        return
    action = decision.planner_action
    run = decision.executed
    typer.echo(
        f"runs {run.text}  ({decision.branch}: {decision.reason}"
        f"{'; ' + decision.detail if decision.detail else ''})"
    )
    if action.confidence is not None:
        typer.echo(
            f"model answered {action.action.text}  confidence={action.confidence:.3f}"
            f"{'  ABSTAIN (below the threshold)' if action.abstain_to_default else ''}"
        )


@app.command("eval")
def eval_cmd(
    dataset: Path = typer.Option(..., "--dataset", help="Dataset folder."),
    policy: list[str] = typer.Option(
        [], "--policy", help="A bundle folder or a policy name; repeat."
    ),
    policy_option: list[str] = typer.Option(
        [],
        "--policy-option",
        help="[POLICY:]KEY=VALUE, an option of a --policy (VALUE is YAML; KEY may be dotted); "
        "repeat.",
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="A kernel YAML config: its planner.model policy, with its options, is scored too.",
    ),
    split: str = typer.Option(
        "test",
        "--split",
        callback=checks.choice("train", "val", "test", "all"),
        help="train | val | test | all",
    ),
    plots: Path | None = typer.Option(
        None, "--plots", callback=checks.folder, help="Folder for reliability.png and coverage.png."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Score policies side by side on a dataset split; optionally draw the plots."""
    from swarm_planner.cli.data_cmd import render_metrics_table
    from swarm_planner.core.config import load_config, policy_options
    from swarm_planner.core.evaluation import (
        PolicySpec,
        evaluate,
        plot_coverage,
        plot_reliability,
        policy_specs,
    )

    host = _host()
    specs = policy_specs(policy, policy_option)
    if config is not None:
        cfg = load_config(config, host=host)
        specs.append(
            PolicySpec(
                cfg.model.type, policy_options(cfg, host), f"{cfg.model.type} ({config.name})"
            )
        )
    if not specs:
        raise typer.BadParameter("give at least one --policy or a --config", param_hint="--policy")
    result = evaluate(dataset, specs, split=split, host=host)
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
        try:
            plot_reliability(result.curves, plots / "reliability.png")
            plot_coverage(result.metrics, plots / "coverage.png")
        except ImportError:
            typer.echo("plots skipped: install matplotlib (the plots or train extra)", err=True)
    if as_json:
        typer.echo(
            json.dumps({"split": split, "rows": result.rows, "policies": result.metrics}, indent=2)
        )
    else:
        typer.echo(f"split {split}: {result.rows} rows")
        typer.echo(render_metrics_table(result.metrics))


MODELS = ("mlp", "joint", "transformer", "mlp-ar")
"""The imitation models ``planner train`` and ``planner ablate`` train."""
ABLATED = (*MODELS, "value", "value-transformer")
"""What ``planner ablate --models`` compares (the value ones need --outcomes)."""


@app.command("ablate")
def ablate_cmd(
    dataset: Path = typer.Option(
        ..., "--dataset", help="A dataset whose meta names its kernel root."
    ),
    n_similar: str = typer.Option("0,1,4,8,16", "--n-similar", help="History sizes to compare."),
    model: str = typer.Option(
        "mlp", "--model", callback=checks.choice(*MODELS), help="The model of the history ablation."
    ),
    models: str | None = typer.Option(
        None,
        "--models",
        help="Compare models instead (comma-separated: mlp,joint,transformer,mlp-ar and, with "
        "--outcomes, value,value-transformer): the same data, side by side.",
    ),
    outcomes: Path | None = typer.Option(
        None, "--outcomes", help="With --models: an outcome dataset of the same kernel."
    ),
    world_seed: int | None = typer.Option(
        None,
        "--world-seed",
        help="With --outcomes: run each choice online in the embedded world of this seed "
        "(else offline, on what the bench tried).",
    ),
    epochs: int | None = typer.Option(None, "--epochs", min=1, max=10_000, help="Most epochs."),
    plots: Path | None = typer.Option(
        None, "--plots", callback=checks.folder, help="With --models: write models.png here."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        callback=checks.folder,
        help="Where the variants go (default: DATASET/ablate).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """The history-size ablation (rebuild the dataset for each N, train, score on test), or
    with --models the model ablation (train each on the same data, export, serve, compare)."""
    from swarm_planner.cli.data_cmd import render_ablation
    from swarm_planner.core.progress import progress_bar

    if models is not None:
        from swarm_planner.plugins.models.model_ablation import (
            compare_models,
            plot_models,
            render_models,
        )

        names = [m.strip() for m in models.split(",") if m.strip()]
        unknown = [m for m in names if m not in ABLATED]
        if not names or unknown:
            raise typer.BadParameter(
                f"{', '.join(unknown) or 'nothing'}: models are {', '.join(ABLATED)}",
                param_hint="--models",
            )
        if outcomes is None and any(m.startswith("value") for m in names):
            raise typer.BadParameter("the value models need --outcomes", param_hint="--models")
        with progress_bar("ablate models", enabled=not quiet) as progress:
            table = compare_models(
                dataset,
                names,
                out=out if out is not None else dataset / "ablate-models",
                outcomes=outcomes,
                world_seed=world_seed,
                max_epochs=epochs,
                host=_host(),
                progress=progress,
            )
        if plots is not None:
            plot_models(table, plots / "models.png")
        typer.echo(json.dumps(table, indent=2) if as_json else render_models(table))
        return
    from swarm_planner.plugins.models.ablation import ablate

    sizes = int_list(n_similar, option="--n-similar", maximum=64)
    with progress_bar("ablate", enabled=not quiet) as progress:
        table_rows = ablate(dataset, sizes, model=model, out=out, progress=progress)
    typer.echo(json.dumps(table_rows, indent=2) if as_json else render_ablation(table_rows))


def _click_error() -> type[Exception]:
    """click's base error class (typer vendors click in recent versions, imports it in older
    ones: find it through typer's own BadParameter)."""
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == "ClickException":
            return cls
    raise RuntimeError("typer without click's exceptions")  # pragma: no cover


def main() -> None:
    """Console entry point. A usage error prints one line naming the option and exits 2; a
    planner error prints one clear message and exits 2; anything else (a bug of ours or of a
    plugin) prints one line and exits 1. ``--debug`` (or SWARM_PLANNER_DEBUG=1) adds the
    traceback."""
    click_error = _click_error()
    try:
        code = app(standalone_mode=False)  # click returns the exit code instead of exiting
    except click_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]
        else:
            command = getattr(getattr(exc, "ctx", None), "command_path", "planner")
            message = exc.format_message()  # type: ignore[attr-defined]
            typer.echo(f"error: {message} (see `{command} --help`)", err=True)
        sys.exit(int(getattr(exc, "exit_code", 2)))
    except typer.Abort as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, EOFError):  # click turns an EOFError inside a command into Abort
            typer.echo(f"error: unexpected end of data: {cause or 'EOFError'}", err=True)
            sys.exit(1)
        typer.echo("aborted", err=True)
        sys.exit(130)
    except PlannerError as exc:
        _show_traceback()
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # a folder we may not write, a disk that is full
        _show_traceback()
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
        sys.exit(2)
    except Exception as exc:  # the last line of defence: no traceback unless asked for
        _show_traceback()
        typer.echo(
            f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the "
            "traceback, and please report it)",
            err=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _show_traceback() -> None:
    if os.environ.get(ENV_DEBUG, "").strip().lower() in {"1", "true", "yes", "on"}:
        traceback.print_exc()


# The outcome commands live in their own module; importing it registers them on ``app``.
from swarm_planner.cli import bench_cmd as _bench_cmd  # noqa: E402
from swarm_planner.cli import demo_cmd as _demo_cmd  # noqa: E402
from swarm_planner.cli import models_cmd as _models_cmd  # noqa: E402
from swarm_planner.cli import pipeline_cmd as _pipeline_cmd  # noqa: E402
from swarm_planner.cli import serve_cmd as _serve_cmd  # noqa: E402

__all__ = ["_bench_cmd", "_demo_cmd", "_models_cmd", "_pipeline_cmd", "_serve_cmd", "app", "main"]
