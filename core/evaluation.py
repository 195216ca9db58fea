"""Scoring policies on dataset rows, side by side, with the plots a person would look at.

Every policy answers over the valid actions of each input; :func:`policy_probs` spreads those
answers over the action space's tuples so :func:`swarm_planner.core.metrics.score` can compare
any policies on the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import attrs
import numpy as np
import numpy.typing as npt

from swarm_planner.core.action_space import ActionSpace
from swarm_planner.core.bundle import open_bundle
from swarm_planner.core.contracts import PlannerInput
from swarm_planner.core.dataset import DatasetError, iter_dataset
from swarm_planner.core.metrics import reliability_table, score
from swarm_planner.core.plugins import PluginHost, get_host
from swarm_planner.core.protocols import Policy


def policy_probs(
    policy: Policy, inputs: Sequence[PlannerInput], space: ActionSpace
) -> npt.NDArray[np.float64]:
    """``[N, A]`` probabilities of ``policy`` over the tuples of ``space`` (0 off the valid set)."""
    index = {a: i for i, a in enumerate(space.all_actions())}
    out = np.zeros((len(inputs), len(index)), dtype=np.float64)
    for r, planner_input in enumerate(inputs):
        dist = policy.predict(planner_input)
        out[r, [index[a] for a in dist.actions]] = dist.probs
    return out


def resolve_policy(spec: str, host: PluginHost | None = None) -> tuple[str, Policy]:
    """A policy from a bundle folder (its type read from metadata.json) or a plugin name."""
    host = host or get_host()
    path = Path(spec)
    if path.is_dir():
        kind = open_bundle(path).get("model_type")
        if not isinstance(kind, str):
            raise DatasetError(f"{path / 'metadata.json'}: model_type: expected a policy name")
        return f"{kind}:{path.name}", host.create("policy", kind, {"path": str(path)})
    return spec, host.create("policy", spec)


@attrs.frozen
class Evaluation:
    split: str
    rows: int
    metrics: dict[str, dict[str, Any]]
    curves: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]]


def evaluate(
    dataset: Path | str,
    specs: Sequence[str],
    *,
    split: str = "test",
    host: PluginHost | None = None,
) -> Evaluation:
    """Score each policy on the rows of ``split``, side by side."""
    rows = [r for r in iter_dataset(dataset) if split == "all" or r.split == split]
    if not rows:
        raise DatasetError(f"{dataset}: no rows in split {split!r}")
    space = rows[0].planner_input.action_space
    index = {a: i for i, a in enumerate(space.all_actions())}
    targets = np.array([index[r.label_action.action] for r in rows], dtype=np.int64)
    inputs = [r.planner_input for r in rows]
    metrics: dict[str, dict[str, Any]] = {}
    curves = {}
    for spec in specs:
        name, policy = resolve_policy(spec, host)
        probs = policy_probs(policy, inputs, space)
        metrics[name] = score(probs, targets, space).to_json()
        predicted = probs.argmax(axis=1)
        curves[name] = (probs[np.arange(len(rows)), predicted], predicted == targets)
    return Evaluation(split, len(rows), metrics, curves)


@attrs.frozen
class Axes:
    """Labels and limits of one square line chart."""

    title: str
    xlabel: str
    ylabel: str
    limit: float
    legend: str


def _line_chart(
    lines: dict[str, tuple[list[float], list[float], list[str]]], axes: Axes, path: Path
) -> None:
    """Draw one line per policy (points labelled when labels are given) and save a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    if axes.limit == 1.0:
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    for name, (xs, ys, labels) in lines.items():
        ax.plot(xs, ys, marker="o", label=name)
        for x, y, label in zip(xs, ys, labels, strict=False):
            ax.annotate(label, (x, y), fontsize=6)
    ax.set_xlabel(axes.xlabel)
    ax.set_ylabel(axes.ylabel)
    ax.set_xlim(0, axes.limit)
    ax.set_ylim(0, axes.limit)
    ax.set_title(axes.title)
    ax.legend(loc=cast(Any, axes.legend), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(
    curves: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]], path: Path
) -> None:
    """Reliability diagram: accuracy against confidence per bin, one line per policy."""
    lines: dict[str, tuple[list[float], list[float], list[str]]] = {}
    for name, (confidence, correct) in curves.items():
        rows = [r for r in reliability_table(confidence, correct) if r["count"]]
        lines[name] = ([r["confidence"] for r in rows], [r["accuracy"] for r in rows], [])
    axes = Axes(
        "Reliability (15 bins)",
        "confidence (probability of the chosen action)",
        "accuracy (chosen action = label)",
        1.0,
        "upper left",
    )
    _line_chart(lines, axes, path)


def plot_coverage(metrics: dict[str, dict[str, Any]], path: Path) -> None:
    """Coverage against accuracy as the abstention threshold rises, one line per policy."""
    lines = {
        name: (
            [p["coverage"] for p in m["coverage"]],
            [p["accuracy"] for p in m["coverage"]],
            [f"{p['threshold']:.1f}" for p in m["coverage"]],
        )
        for name, m in metrics.items()
    }
    axes = Axes(
        "Coverage vs accuracy by confidence threshold",
        "coverage (share of decisions the policy keeps)",
        "accuracy on kept decisions",
        1.02,
        "lower left",
    )
    _line_chart(lines, axes, path)
