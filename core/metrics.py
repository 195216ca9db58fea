"""Offline metrics of a policy over rows, written once for every policy (numpy only).

Every policy answers with probabilities over the same action tuples (``all_actions()`` of the
action space, zero on invalid ones), so one function scores heuristic, MLP, joint and ONNX
policies alike: per-head accuracy and exact match of the decoded action, NLL, 15-bin ECE, Brier,
the entropy and number of distinct predicted actions, and coverage vs accuracy when the policy
abstains below a confidence threshold.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from swarm_planner.core.action_space import HEADS, ActionSpace

ECE_BINS = 15
THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
_EPS = 1e-12

Probs = npt.NDArray[np.float64]


def head_index(space: ActionSpace) -> npt.NDArray[np.int64]:
    """``[A, 4]``: for each action tuple, the index of its bin in each head."""
    out = np.zeros((len(space.all_actions()), len(HEADS)), dtype=np.int64)
    for a, action in enumerate(space.all_actions()):
        values = (
            action.swarm_id,
            action.max_candidates_bin,
            action.max_minutes_bin,
            action.max_iterations_bin,
        )
        for h, (head, value) in enumerate(zip(HEADS, values, strict=True)):
            out[a, h] = list(space.head_bins(head)).index(value)
    return out


def expected_calibration_error(
    confidence: npt.NDArray[np.float64], correct: npt.NDArray[np.bool_], bins: int = ECE_BINS
) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    if confidence.size == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.sum() * abs(correct[sel].mean() - confidence[sel].mean())
    return float(total / confidence.size)


def reliability_table(
    confidence: npt.NDArray[np.float64], correct: npt.NDArray[np.bool_], bins: int = ECE_BINS
) -> list[dict[str, float]]:
    """Per bin: its range, count, mean confidence and accuracy (what the diagram draws)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for b in range(bins):
        sel = which == b
        rows.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": int(sel.sum()),
                "confidence": float(confidence[sel].mean()) if sel.any() else 0.0,
                "accuracy": float(correct[sel].mean()) if sel.any() else 0.0,
            }
        )
    return rows


@attrs.frozen
class PolicyMetrics:
    rows: int
    exact_match: float
    head_accuracy: dict[str, float]
    nll: float
    ece: float
    brier: float
    action_entropy_bits: float
    mean_predictive_entropy_bits: float
    distinct_actions: int
    coverage: list[dict[str, float]]
    label_actions_over_1pct_missed: list[int]

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def score(probs: Probs, targets: npt.NDArray[np.int64], space: ActionSpace) -> PolicyMetrics:
    """Metrics of ``probs [N, A]`` (rows sum to 1 over valid tuples) against ``targets [N]``."""
    n = len(targets)
    if probs.shape != (n, len(space.all_actions())):
        raise ValueError(
            f"probs of shape {probs.shape} for {n} rows of {len(space.all_actions())} actions"
        )
    heads = head_index(space)
    predicted = probs.argmax(axis=1)
    confidence = probs[np.arange(n), predicted]
    correct = predicted == targets
    head_acc = {
        head: float((heads[predicted, h] == heads[targets, h]).mean()) if n else 0.0
        for h, head in enumerate(HEADS)
    }
    p_true = np.clip(probs[np.arange(n), targets], _EPS, 1.0)
    onehot = np.zeros_like(probs)
    onehot[np.arange(n), targets] = 1.0
    counts = np.bincount(predicted, minlength=probs.shape[1])
    freq = counts[counts > 0] / max(n, 1)
    safe = np.clip(probs, _EPS, 1.0)
    label_counts = np.bincount(targets, minlength=probs.shape[1])
    frequent = np.flatnonzero(label_counts > 0.01 * n)
    coverage = []
    for t in THRESHOLDS:
        kept = confidence >= t
        coverage.append(
            {
                "threshold": t,
                "coverage": float(kept.mean()) if n else 0.0,
                "accuracy": float(correct[kept].mean()) if kept.any() else 0.0,
            }
        )
    return PolicyMetrics(
        rows=n,
        exact_match=float(correct.mean()) if n else 0.0,
        head_accuracy=head_acc,
        nll=float(-np.log(p_true).mean()) if n else 0.0,
        ece=expected_calibration_error(confidence, correct),
        brier=float(((probs - onehot) ** 2).sum(axis=1).mean()) if n else 0.0,
        action_entropy_bits=float(-(freq * np.log2(freq)).sum()),
        mean_predictive_entropy_bits=float(-(probs * np.log2(safe)).sum(axis=1).mean())
        if n
        else 0.0,
        distinct_actions=int((counts > 0).sum()),
        coverage=coverage,
        label_actions_over_1pct_missed=[int(a) for a in frequent if counts[a] == 0],
    )
