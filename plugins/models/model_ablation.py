"""The model ablation: do richer networks earn their place? (``planner ablate --models``)

Every model is trained on the same dataset with its own defaults and the same seed, exported
to ONNX and served by the same ``onnx`` policy, then compared side by side: imitation figures on
the test split (exact match, NLL, ECE, and the collapse figures: distinct actions, action
entropy, label actions over 1% it never picks), training time, bundle size, decision latency
through the served graph, and, given an outcome dataset of the same kernel, the outcome
figures with intervals against the heuristic (online in the embedded world with ``world_seed``,
else offline on what the bench tried).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from swarm_planner.core.plugins import PluginHost, get_host
from swarm_planner.core.progress import Progress
from swarm_planner.core.recording import write_json_atomic

COLLAPSE = ("distinct_actions", "action_entropy_bits", "label_actions_over_1pct_missed")
OUTCOME_MODELS = {"value": "bag", "value-transformer": "transformer"}
"""Outcome models (trained on the outcome dataset) and how each reads the issue."""


def _latency(bundle: Path, dataset: Path, host: PluginHost, limit: int = 400) -> dict[str, float]:
    """Decision latency of the served graph (the ``onnx`` policy's ``predict``: encoding,
    onnxruntime, the answer's checks), one input at a time."""
    from swarm_planner.core.dataset import read_split_rows
    from swarm_planner.core.evaluation import PolicySpec, resolve_policy

    splits, space = read_split_rows(dataset)
    inputs = [r.planner_input for r in splits["test"][:limit]] or [
        r.planner_input for r in splits["train"][:limit]
    ]
    _, policy = resolve_policy(PolicySpec(str(bundle)), host, space=space)
    for x in inputs[:20]:
        policy.predict(x)
    times = []
    for x in inputs:
        started = time.perf_counter()
        policy.predict(x)
        times.append((time.perf_counter() - started) * 1e6)
    return {"p50_us": float(np.percentile(times, 50)), "p99_us": float(np.percentile(times, 99))}


def compare_models(
    dataset: Path | str,
    models: Sequence[str],
    *,
    out: Path,
    outcomes: Path | str | None = None,
    world_seed: int | None = None,
    seed: int = 0,
    max_epochs: int | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    host: PluginHost | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """One row per model (and the heuristic's outcome figures when ``outcomes`` is given).
    ``settings``: training settings of a model over its own defaults (``{"transformer":
    {"dim": 32, "layers": 1, "hidden": (64,)}}``), recorded in its row (one size of a model per
    call: each model's bundle is ``out/MODEL``)."""
    settings = settings or {}
    unknown = sorted(set(settings) - set(models))
    if unknown:
        raise ValueError(f"settings for {', '.join(unknown)}: not among the models compared")
    from swarm_planner.plugins.models.export import export_bundle
    from swarm_planner.plugins.models.training import TrainConfig, train

    if not models:
        raise ValueError("name at least one model to compare")
    valued = [m for m in models if m in OUTCOME_MODELS]
    if valued and outcomes is None:
        raise ValueError(f"{', '.join(valued)}: outcome models need an outcome dataset")
    host = host or get_host()
    dataset = Path(dataset)
    rows: list[dict[str, Any]] = []
    outcome_rows: list[dict[str, Any]] = []
    bundles: dict[str, Path] = {}
    for model in valued:
        from swarm_planner.plugins.models.value_training import ValueConfig, train_value

        reader = OUTCOME_MODELS[model]
        own: dict[str, Any] = {"seed": seed}
        if reader == "transformer":  # the transformer policy's reading, at its own width
            own.update(reader="transformer", dim=64, hidden=(128,), lr=1e-3)
        if max_epochs is not None:
            own["max_epochs"] = max_epochs
        own.update(settings.get(model, {}))
        bundle = out / model
        valued_result = train_value(Path(str(outcomes)), bundle, ValueConfig(**own))
        outcome_rows.append(
            {
                "model": model,
                "settings": dict(settings.get(model, {})),
                "p_pass_ece": valued_result.metrics["calibration"]["test_ece_after"],
                "epochs": valued_result.metrics["training"]["epochs_run"],
                "train_seconds": valued_result.seconds,
                "onnx_bytes": (bundle / "model.onnx").stat().st_size,
                **_latency(bundle, dataset, host),
            }
        )
        bundles[model] = bundle
    imitation = [m for m in models if m not in OUTCOME_MODELS]
    for step, model in enumerate(imitation):
        bundle = out / model
        chosen: dict[str, Any] = {"seed": seed}
        if max_epochs is not None:
            chosen["max_epochs"] = max_epochs
        chosen.update(settings.get(model, {}))
        result = train(dataset, bundle, TrainConfig.for_model(model, **chosen))
        exported = export_bundle(bundle, dataset)
        test = result.metrics["splits"]["test"]["model"]
        rows.append(
            {
                "model": model,
                "settings": dict(settings.get(model, {})),
                "exact_match": test["exact_match"],
                "nll": test["nll"],
                "ece": result.metrics["calibration"]["test_ece_after"],
                **{k: test[k] for k in COLLAPSE},
                "epochs": result.metrics["training"]["epochs_run"],
                "train_seconds": result.seconds,
                "onnx_bytes": exported["onnx"]["bytes"],
                "onnx_max_abs_prob_diff": exported["max_abs_prob_diff"],
                **_latency(bundle, dataset, host),
            }
        )
        bundles[model] = bundle
        if progress is not None:
            progress(step + 1, len(imitation) + (outcomes is not None))
    table: dict[str, Any] = {
        "dataset": str(dataset),
        "models": rows,
        "outcome_models": outcome_rows,
        "outcomes": None,
    }
    write_json_atomic(out / "models.json", table)
    if outcomes is not None:
        from swarm_planner.core.evaluation import PolicySpec
        from swarm_planner.core.outcome_eval import evaluate_outcomes

        executor = (
            None if world_seed is None else host.create("executor", "sim", {"seed": world_seed})
        )
        specs = [PolicySpec("heuristic", {}, "heuristic")]
        specs += [PolicySpec(str(path), {}, model) for model, path in bundles.items()]
        evaluation = evaluate_outcomes(Path(outcomes), specs, host, executor=executor, seed=seed)
        table["outcomes"] = {
            "mode": evaluation.mode,
            "rows": evaluation.rows,
            "policies": evaluation.policies,
            "not_tried": evaluation.not_tried,
            "frontier": evaluation.frontier,
        }
        if progress is not None:
            progress(len(imitation) + 1, len(imitation) + 1)
    write_json_atomic(out / "models.json", table)  # kept, whatever becomes of the printout
    return table


def render_models(table: dict[str, Any]) -> str:
    """The comparison as one text table (intervals in brackets)."""
    head = (
        f"{'model':<12} {'exact':>6} {'NLL':>6} {'ECE':>6} {'distinct':>8} {'entropy':>7} "
        f"{'missed':>6} {'train s':>7} {'p50 µs':>7} {'p99 µs':>7} {'onnx MB':>7}"
    )
    lines = [head] if table["models"] else []
    for r in table["models"]:
        lines.append(
            f"{r['model']:<12} {r['exact_match']:>6.3f} {r['nll']:>6.3f} {r['ece']:>6.3f} "
            f"{r['distinct_actions']:>8} {r['action_entropy_bits']:>7.2f} "
            f"{len(r['label_actions_over_1pct_missed']):>6} {r['train_seconds']:>7.1f} "
            f"{r['p50_us']:>7.0f} {r['p99_us']:>7.0f} {r['onnx_bytes'] / 1e6:>7.2f}"
        )
    if table.get("outcome_models"):
        lines += [
            *([""] if lines else []),
            f"{'outcome model':<18} {'P(pass) ECE':>11} {'train s':>7} {'p50 µs':>7} "
            f"{'p99 µs':>7} {'onnx MB':>7}",
        ]
        for r in table["outcome_models"]:
            lines.append(
                f"{r['model']:<18} {r['p_pass_ece']:>11.3f} {r['train_seconds']:>7.1f} "
                f"{r['p50_us']:>7.0f} {r['p99_us']:>7.0f} {r['onnx_bytes'] / 1e6:>7.2f}"
            )
    o = table.get("outcomes")
    if o:
        lines += ["", f"outcomes ({o['mode']}, {o['rows']} held-out issues):"]
        lines.append(
            f"{'policy':<12} {'pass %':<22} {'cost/pass $':<24} {'vs heuristic: points':<24}"
        )
        for name, m in o["policies"].items():
            p, c = m["pass_rate"], m["cost_per_pass"]
            vs = m.get("vs_heuristic", {}).get("pass_rate_points")
            diff = "" if vs is None else f"{vs['value']:+.1f} [{vs['low']:+.1f}, {vs['high']:+.1f}]"
            lines.append(
                f"{name:<18} {100 * p['value']:.1f} [{100 * p['low']:.1f}, {100 * p['high']:.1f}]"
                f"{'':<4} {c['value']:.3f} [{c['low']:.3f}, {c['high']:.3f}]{'':<4} {diff}"
            )
        if o.get("frontier"):
            from swarm_planner.core.outcome_eval import render_frontier

            lines += ["", *render_frontier(o["frontier"])]
    return "\n".join(lines)


def plot_models(table: dict[str, Any], path: Path) -> None:
    """Left: exact match and ECE per model. Right (with outcomes): cost per pass against pass
    rate with 95% intervals, the heuristic included, and each outcome model's cost-weight
    sweep as a line (the fairer comparison of two outcome models than one weight)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    o = table.get("outcomes")
    fig, axes = plt.subplots(1, 2 if o else 1, figsize=(11 if o else 6, 4))
    left = axes[0] if o else axes
    names = [r["model"] for r in table["models"]]  # the imitation models (outcome ones: right)
    xs = np.arange(len(names))
    left.bar(xs - 0.2, [r["exact_match"] for r in table["models"]], 0.4, label="exact match")
    left.bar(xs + 0.2, [r["ece"] for r in table["models"]], 0.4, label="ECE")
    left.set_xticks(xs)
    left.set_xticklabels(names)
    left.set_title("Imitation, test split")
    left.legend(fontsize=8)
    if o:
        right = axes[1]
        colours: dict[str, Any] = {}
        for name, m in o["policies"].items():
            p, c = m["pass_rate"], m["cost_per_pass"]
            colours[name] = right.errorbar(
                c["value"],
                100 * p["value"],
                xerr=[[c["value"] - c["low"]], [c["high"] - c["value"]]],
                yerr=[[100 * (p["value"] - p["low"])], [100 * (p["high"] - p["value"])]],
                fmt="o",
                capsize=3,
                label=name,
            )[0].get_color()
        for name, points in (o.get("frontier") or {}).items():  # in the model's own colour
            right.plot(
                [p["cost_per_pass"] for p in points],
                [100 * p["pass_rate"] for p in points],
                marker=".",
                linestyle="--",
                linewidth=1,
                alpha=0.7,
                color=colours.get(name),
                label=f"{name} (cost weight sweep)",
            )
        right.set_xlabel("cost per pass ($)")
        right.set_ylabel("pass rate (%)")
        right.set_title(f"Outcomes ({o['mode']}, {o['rows']} issues)")
        right.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
