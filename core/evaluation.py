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
from swarm_planner.core.bundle import bundle_servers, open_bundle
from swarm_planner.core.contracts import PlannerInput
from swarm_planner.core.dataset import DatasetError, read_split_rows
from swarm_planner.core.errors import ConfigError, PlannerError
from swarm_planner.core.metrics import reliability_table, score
from swarm_planner.core.plugins import PluginHost, get_host
from swarm_planner.core.protocols import Policy


def policy_probs(
    policy: Policy,
    inputs: Sequence[PlannerInput],
    space: ActionSpace,
    *,
    name: str = "policy",
    row_ids: Sequence[str] | None = None,
) -> npt.NDArray[np.float64]:
    """``[N, A]`` probabilities of ``policy`` over the tuples of ``space`` (0 off the valid set).
    A policy that cannot answer a row, or answers outside the space, is an error naming both."""
    index = {a: i for i, a in enumerate(space.all_actions())}
    out = np.zeros((len(inputs), len(index)), dtype=np.float64)
    for r, planner_input in enumerate(inputs):
        row = row_ids[r] if row_ids is not None else str(r)
        try:
            dist = policy.predict(planner_input)
            out[r, [index[a] for a in dist.actions]] = dist.probs
        except PlannerError as exc:
            raise DatasetError(f"{name}: row {row}: {exc}") from exc
        except KeyError as exc:
            raise DatasetError(
                f"{name}: row {row}: answered {exc.args[0]!r}, not an action of the dataset's space"
            ) from exc
    return out


@attrs.frozen
class PolicySpec:
    """A policy to score: a plugin name or a bundle folder (``ref``), the options it is built
    with (checked against the options class the plugin declares), and the name it is shown by."""

    ref: str
    options: dict[str, Any] = attrs.field(factory=dict)
    label: str | None = None


def _no_bundle(ref: str) -> DatasetError:
    return DatasetError(
        f"--policy {ref}: no bundle folder at {ref} (a policy is a bundle folder or a plugin "
        "name; see `planner list-plugins`)"
    )


def _looks_like_a_path(ref: str) -> bool:
    return "/" in ref or "\\" in ref or ref.startswith(".") or Path(ref).exists()


def resolve_policy(
    spec: PolicySpec | str, host: PluginHost | None = None, *, space: ActionSpace | None = None
) -> tuple[str, Policy]:
    """A policy from a bundle folder (served by the policy its metadata names first, see
    :func:`~swarm_planner.core.bundle.bundle_servers`) or a plugin name."""
    host = host or get_host()
    spec = spec if isinstance(spec, PolicySpec) else PolicySpec(spec)
    where = f"--policy {spec.ref}"
    path = Path(spec.ref)
    if path.is_dir():
        metadata = open_bundle(path)
        kind = bundle_servers(metadata)[0]
        options = {"path": str(path), **spec.options}
        name = spec.label or f"{metadata.get('model_type')}:{path.name}"
        return name, host.create("policy", kind, options, path=where, space=space)
    if _looks_like_a_path(spec.ref):
        raise _no_bundle(spec.ref)
    return spec.label or spec.ref, host.create(
        "policy", spec.ref, spec.options, path=where, space=space
    )


def policy_specs(
    refs: Sequence[str], assignments: Sequence[str] = (), *, option: str = "--policy-option"
) -> list[PolicySpec]:
    """Policies with the options that ``[POLICY:]KEY=VALUE`` assignments give them.

    ``KEY`` may be a dotted path into nested options (``rules.high.max_candidates=1``);
    ``VALUE`` is read as YAML (``1``, ``true``, ``[a, b]``, ``{swarm_id: serial_handoff}``,
    text). Without ``POLICY:`` the assignment goes to the only policy given."""
    options: dict[str, dict[str, Any]] = {ref: {} for ref in refs}
    for text in assignments:
        target, key, value = _assignment(text, option)
        if target is None:
            if len(refs) != 1:
                raise ConfigError(
                    option,
                    [
                        f"{text!r}: say which policy it is for: POLICY:KEY=VALUE "
                        f"(policies: {', '.join(refs) or 'none'})"
                    ],
                )
            target = refs[0]
        if target not in options:
            raise ConfigError(
                option, [f"{text!r}: {target!r} is not a --policy given ({', '.join(refs)})"]
            )
        node = options[target]
        *parents, last = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(option, [f"{text!r}: {part!r} is already set to a value"])
            node = child
        node[last] = value
    return [PolicySpec(ref, options[ref]) for ref in refs]


def _assignment(text: str, option: str) -> tuple[str | None, str, Any]:
    from swarm_planner.core.documents import DocumentError, parse_yaml

    head, sep, raw = text.partition("=")
    if not sep or not head.strip():
        raise ConfigError(option, [f"{text!r}: expected [POLICY:]KEY=VALUE"])
    target, colon, key = head.strip().rpartition(":")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(option, [f"{text!r}: {key!r} is not a key (or a dotted key path)"])
    try:
        value = parse_yaml(raw, f"{option} {text!r}") if raw.strip() else None
    except DocumentError as exc:
        raise ConfigError(option, [f"{text!r}: the value is not YAML: {exc.problem}"]) from exc
    return (target.strip() or None) if colon else None, key, value


@attrs.frozen
class Evaluation:
    split: str
    rows: int
    metrics: dict[str, dict[str, Any]]
    curves: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]]


def evaluate(
    dataset: Path | str,
    specs: Sequence[PolicySpec | str],
    *,
    split: str = "test",
    host: PluginHost | None = None,
) -> Evaluation:
    """Score each policy on the rows of ``split``, side by side."""
    host = host or get_host()
    for spec in specs:  # a name nobody registered fails before the rows are read
        ref = spec.ref if isinstance(spec, PolicySpec) else spec
        if Path(ref).is_dir():
            continue
        if _looks_like_a_path(ref):
            raise _no_bundle(ref)
        host.entry("policy", ref)
    splits, space = read_split_rows(dataset)
    rows = [r for name in ("train", "val", "test") for r in splits[name] if split in ("all", name)]
    if not rows:
        raise DatasetError(f"{dataset}: no rows in split {split!r}")
    policies = [resolve_policy(spec, host, space=space) for spec in specs]
    index = {a: i for i, a in enumerate(space.all_actions())}
    targets = np.array([index[r.label_action.action] for r in rows], dtype=np.int64)
    inputs = [r.planner_input for r in rows]
    row_ids = [r.run_id for r in rows]
    metrics: dict[str, dict[str, Any]] = {}
    curves = {}
    for name, policy in policies:
        probs = policy_probs(policy, inputs, space, name=f"--policy {name}", row_ids=row_ids)
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
