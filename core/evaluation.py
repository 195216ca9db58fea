"""Scoring policies on dataset rows, side by side, with the plots a person would look at.

Every policy answers over the valid actions of each input; :func:`policy_probs` spreads those
answers over the action space's tuples so :func:`swarm_planner.core.metrics.score` can compare
any policies on the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def plot_reliability(
    curves: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]], path: Path
) -> None:
    """Reliability diagram: accuracy against confidence per bin, one line per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    for name, (confidence, correct) in curves.items():
        rows = [r for r in reliability_table(confidence, correct) if r["count"]]
        ax.plot(
            [r["confidence"] for r in rows],
            [r["accuracy"] for r in rows],
            marker="o",
            label=name,
        )
    ax.set_xlabel("confidence (probability of the chosen action)")
    ax.set_ylabel("accuracy (chosen action = label)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("Reliability (15 bins)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_coverage(metrics: dict[str, dict[str, Any]], path: Path) -> None:
    """Coverage against accuracy as the abstention threshold rises, one line per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, m in metrics.items():
        points = m["coverage"]
        ax.plot(
            [p["coverage"] for p in points],
            [p["accuracy"] for p in points],
            marker="o",
            label=name,
        )
        for p in points:
            ax.annotate(f"{p['threshold']:.1f}", (p["coverage"], p["accuracy"]), fontsize=6)
    ax.set_xlabel("coverage (share of decisions the policy keeps)")
    ax.set_ylabel("accuracy on kept decisions")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title("Coverage vs accuracy by confidence threshold")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
