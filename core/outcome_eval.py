"""``planner eval-outcomes``: what each policy's choices pass and cost, against today's rule.

Two evaluations of the held-out (test split) issues of an outcome dataset:

- **offline**: a policy's choice is judged by the bench's own outcome for that action; rows where
  the policy chose an action the bench did not try are counted and reported (never silently
  dropped), and the metrics are over the rows where it was tried;
- **online** (``executor`` given): each policy's choice is run on the issue by the executor, the
  headline evaluation. With ``oracle``, every valid action is run too, giving the per-issue
  oracle: the best any policy could do at these weights.

Metrics per policy: pass rate, cost per pass, time per pass, oracle-match rate (its action is
the bench's best of the K), regret against the best of the K in utility (absolute, and as the
share of the heuristic-to-oracle gap left), each with a bootstrap 95% interval over issues; and
paired differences against the heuristic (pass rate in points, cost per pass in percent). For a
policy with ``estimates()`` (a value bundle) the sweep over its cost weight is the frontier.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from swarm_planner.core.action_space import JointAction
from swarm_planner.core.dataset import DatasetError
from swarm_planner.core.evaluation import PolicySpec, resolve_policy
from swarm_planner.core.outcomes import OutcomeRow, read_outcome_rows
from swarm_planner.core.plugins import PluginHost
from swarm_planner.core.progress import Progress
from swarm_planner.core.protocols import Executor, OutcomeModel, Policy
from swarm_planner.core.utility import UtilityWeights

DEFAULT_SWEEP = (
    0.0,
    0.02,
    0.05,
    0.08,
    0.1,
    0.11,
    0.12,
    0.13,
    0.14,
    0.15,
    0.17,
    0.2,
    0.3,
    0.5,
    0.7,
    1.0,
    2.0,
)
Outcome = tuple[bool, float, float]
"""(passed, cost_usd, duration_ms)."""


@attrs.frozen
class Interval:
    value: float
    low: float
    high: float

    def to_json(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


@attrs.frozen
class Outcomes:
    """Per-issue outcomes of one policy's choices (NaN cost/duration: unknown)."""

    passed: npt.NDArray[np.float64]
    cost: npt.NDArray[np.float64]
    duration: npt.NDArray[np.float64]
    utility: npt.NDArray[np.float64]
    matched: npt.NDArray[np.float64]


def _stats(
    o: Outcomes, idx: npt.NDArray[np.int64], best_k: npt.NDArray[np.float64]
) -> dict[str, float]:
    p, c, d = o.passed[idx], o.cost[idx], o.duration[idx]
    passes = p.sum()
    return {
        "pass_rate": float(p.mean()),
        "cost_per_pass": float(np.nansum(c) / passes) if passes else float("inf"),
        "time_per_pass_min": float(np.nansum(d) / passes / 60_000) if passes else float("inf"),
        "oracle_match": float(o.matched[idx].mean()),
        "regret": float((best_k[idx] - o.utility[idx]).mean()),
        "utility": float(o.utility[idx].mean()),
    }


def bootstrap(
    outcomes: dict[str, Outcomes],
    best_k: npt.NDArray[np.float64],
    *,
    baseline: str,
    rounds: int,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """Every metric with a 95% interval, and differences against ``baseline`` on the same
    resampled issues (paired)."""
    n = len(best_k)
    rng = np.random.default_rng(seed)
    full = np.arange(n)
    samples = [rng.integers(0, n, n) for _ in range(rounds)]
    out: dict[str, dict[str, Any]] = {}
    base_point = _stats(outcomes[baseline], full, best_k) if baseline in outcomes else None
    base_draws = (
        [_stats(outcomes[baseline], s, best_k) for s in samples] if baseline in outcomes else None
    )
    for name, o in outcomes.items():
        point = _stats(o, full, best_k)
        draws = [_stats(o, s, best_k) for s in samples]
        result: dict[str, Any] = {}
        for key, value in point.items():
            vals = np.array([d[key] for d in draws])
            result[key] = Interval(value, *np.percentile(vals, [2.5, 97.5]).tolist()).to_json()
        if base_point is not None and base_draws is not None and name != baseline:
            diffs: dict[str, Any] = {}
            dp = [d["pass_rate"] - b["pass_rate"] for d, b in zip(draws, base_draws, strict=True)]
            dc = [
                d["cost_per_pass"] / b["cost_per_pass"] - 1
                for d, b in zip(draws, base_draws, strict=True)
            ]
            diffs["pass_rate_points"] = Interval(
                100 * (point["pass_rate"] - base_point["pass_rate"]),
                *(100 * np.percentile(dp, [2.5, 97.5])).tolist(),
            ).to_json()
            diffs["cost_per_pass_pct"] = Interval(
                100 * (point["cost_per_pass"] / base_point["cost_per_pass"] - 1),
                *(100 * np.percentile(dc, [2.5, 97.5])).tolist(),
            ).to_json()
            result["vs_" + baseline] = diffs
        out[name] = result
    return out


class _Runner:
    """Outcomes of (row, action), from the bench when tried, from the executor when online."""

    def __init__(
        self, rows: list[OutcomeRow], executor: Executor | None, timeout_minutes: int
    ) -> None:
        self.rows, self.executor = rows, executor
        self.timeout_minutes = timeout_minutes
        self.cache: dict[tuple[int, JointAction], Outcome] = {}
        self.tried: list[dict[JointAction, Outcome]] = []
        for row in rows:
            tried: dict[JointAction, Outcome] = {}
            for c in row.candidates:
                tried[c.joint_action] = (
                    c.verified,
                    float("nan") if c.cost_usd is None else c.cost_usd,
                    float("nan") if c.duration_ms is None else float(c.duration_ms),
                )
            self.tried.append(tried)

    def outcome(self, i: int, action: JointAction) -> Outcome | None:
        if self.executor is None:
            return self.tried[i].get(action)
        key = (i, action)
        hit = self.cache.get(key)
        if hit is None:
            from swarm_planner.core.bench.candidate import run_candidate

            # a failed or malformed run is a failed candidate, exactly as in the bench
            o = run_candidate(self.executor, "online", self.rows[i].planner_input, action, None)
            hit = (bool(o.verified), float(o.cost_usd), float(o.duration_ms))
            self.cache[key] = hit
        return hit


def _outcomes(
    runner: _Runner,
    actions: Sequence[JointAction],
    weights: UtilityWeights,
    best: Sequence[JointAction | None],
) -> tuple[Outcomes, int]:
    p, c, d, m = [], [], [], []
    missing = 0
    keep = []
    for i, action in enumerate(actions):
        o = runner.outcome(i, action)
        if o is None:
            missing += 1
            continue
        keep.append(i)
        p.append(float(o[0]))
        c.append(o[1])
        d.append(o[2])
        m.append(float(best[i] == action))
    pa, ca, da = np.array(p), np.array(c), np.array(d)
    u = weights.of(pa, np.nan_to_num(ca), np.nan_to_num(da))
    return Outcomes(pa, ca, da, u, np.array(m)), missing


@attrs.frozen
class OutcomeEvaluation:
    mode: str
    rows: int
    weights: dict[str, float]
    policies: dict[str, dict[str, Any]]
    not_tried: dict[str, int]
    frontier: dict[str, list[dict[str, Any]]]
    oracle: dict[str, Any] | None
    best_of_k: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def evaluate_outcomes(
    dataset: Path | str,
    specs: Sequence[PolicySpec],
    host: PluginHost,
    *,
    executor: Executor | None = None,
    weights: UtilityWeights | None = None,
    sweep: Sequence[float] = DEFAULT_SWEEP,
    oracle: bool = False,
    split: str = "test",
    rounds: int = 1000,
    seed: int = 0,
    timeout_minutes: int = 120,
    progress: Progress | None = None,
) -> OutcomeEvaluation:
    weights = weights or UtilityWeights()
    splits, space = read_outcome_rows(dataset)
    rows = splits.get(split) or []
    if not rows:
        raise DatasetError(f"{dataset}: the {split} split has no rows to evaluate on")
    runner = _Runner(rows, executor, timeout_minutes)
    inputs = [r.planner_input for r in rows]
    # The best of the K tried (at these weights): what the bench could have picked.
    best_k_action: list[JointAction | None] = []
    best_k_u = np.zeros(len(rows))
    for i, tried in enumerate(runner.tried):
        scored = [
            (float(weights.of(o[0], np.nan_to_num(o[1]), np.nan_to_num(o[2]))), a.text, a)
            for a, o in tried.items()
        ]
        top = max(scored, key=lambda s: (s[0], s[1]))
        best_k_u[i] = top[0]
        best_k_action.append(top[2])
    policies: dict[str, Policy] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in specs:
            if spec.ref == "table" and "path" not in spec.options:
                from swarm_planner.plugins.models.table import fit_table

                fit_table(dataset, Path(tmp) / "table")
                spec = PolicySpec(
                    "table", {"path": str(Path(tmp) / "table"), **spec.options}, spec.label
                )
            name, policy = resolve_policy(spec, host, space=space)
            policies[name] = policy
    outcomes: dict[str, Outcomes] = {}
    not_tried: dict[str, int] = {}
    frontier: dict[str, list[dict[str, Any]]] = {}
    total = len(policies)
    baseline_name = next((n for n in policies if n == "heuristic"), next(iter(policies)))
    for done, (name, policy) in enumerate(policies.items(), start=1):
        actions = _decide(policy, inputs)
        o, missing = _outcomes(runner, actions, weights, best_k_action)
        not_tried[name] = missing
        outcomes[name] = o
        if isinstance(policy, OutcomeModel) and hasattr(policy, "distribution"):
            frontier[name] = _sweep(policy, inputs, runner, weights, sweep, best_k_action)
        if progress is not None:
            progress(done, total)
    if all(missing == 0 for missing in not_tried.values()):
        stats = bootstrap(outcomes, best_k_u, baseline=baseline_name, rounds=rounds, seed=seed)
    else:
        stats = _unpaired(outcomes, rounds, seed)
    base = outcomes.get(baseline_name)
    base_regret = stats.get(baseline_name, {}).get("regret", {}).get("value")
    for m in stats.values():
        if base_regret and "regret" in m:
            # The share of the heuristic's gap to the best of the K that the policy leaves.
            m["regret_share_of_heuristic_gap"] = m["regret"]["value"] / base_regret
    for points in frontier.values():
        for point in points:
            point.update(
                _point_vs(point["outcomes"], base, rounds, seed) if base is not None else {}
            )
            del point["outcomes"]
    oracle_json = None
    if oracle and executor is not None:
        oracle_json = _oracle(runner, rows, space, weights)
    best_k_stats = {
        "utility": float(best_k_u.mean()),
        "pass_rate": float(
            np.mean([runner.tried[i][a][0] for i, a in enumerate(best_k_action) if a is not None])
        ),
    }
    return OutcomeEvaluation(
        "online" if executor is not None else "offline",
        len(rows),
        attrs.asdict(weights),
        stats,
        not_tried,
        frontier,
        oracle_json,
        best_k_stats,
    )


def _decide(policy: Policy, inputs: Sequence[Any]) -> list[JointAction]:
    batch = getattr(policy, "estimates_batch", None)
    if callable(batch) and hasattr(policy, "distribution"):
        return [policy.distribution(e).best()[0] for e in batch(inputs)]
    return [policy.predict(x).best()[0] for x in inputs]


def _sweep(
    policy: Any,
    inputs: Sequence[Any],
    runner: _Runner,
    weights: UtilityWeights,
    sweep: Sequence[float],
    best: Sequence[JointAction | None],
) -> list[dict[str, Any]]:
    estimates = policy.estimates_batch(inputs)
    points = []
    for cost_weight in sweep:
        w = attrs.evolve(weights, cost_weight=float(cost_weight))
        actions = [policy.distribution(e, w).best()[0] for e in estimates]
        o, missing = _outcomes(runner, actions, weights, best)
        idx = np.arange(len(o.passed))
        points.append(
            {
                "cost_weight": float(cost_weight),
                "not_tried": missing,
                **_stats(o, idx, np.zeros(len(idx))),
                "outcomes": o,
            }
        )
    return points


def _point_vs(o: Outcomes, base: Outcomes, rounds: int, seed: int) -> dict[str, Any]:
    if len(o.passed) != len(base.passed):
        return {}
    zeros = np.zeros(len(o.passed))
    diffs = bootstrap({"base": base, "point": o}, zeros, baseline="base", rounds=rounds, seed=seed)
    return {"vs_heuristic": diffs["point"]["vs_base"]}


def _unpaired(outcomes: dict[str, Outcomes], rounds: int, seed: int) -> dict[str, dict[str, Any]]:
    """Offline, a policy is scored on the rows where its choice was tried: intervals per
    policy on its own rows (no paired difference: the row sets differ)."""
    out = {}
    for name, o in outcomes.items():
        if not len(o.passed):
            continue
        zeros = o.utility  # regret is not defined on a subset of rows: report 0
        out[name] = bootstrap({name: o}, zeros, baseline=name, rounds=rounds, seed=seed)[name]
        out[name]["rows_scored"] = len(o.passed)
    return out


def _oracle(
    runner: _Runner, rows: list[OutcomeRow], space: Any, weights: UtilityWeights
) -> dict[str, Any]:
    """Every valid action run on every issue: the best utility any policy could reach."""
    p, c, d, u = [], [], [], []
    for i, row in enumerate(rows):
        best: tuple[float, Outcome] | None = None
        for action in row.planner_input.action_space.valid_actions(row.planner_input.job_type):
            o = runner.outcome(i, action)
            assert o is not None
            score = float(weights.of(o[0], o[1], o[2]))
            if best is None or score > best[0]:
                best = (score, o)
        assert best is not None
        u.append(best[0])
        p.append(best[1][0])
        c.append(best[1][1])
        d.append(best[1][2])
    passes = float(np.sum(p))
    return {
        "pass_rate": float(np.mean(p)),
        "cost_per_pass": float(np.sum(c) / passes) if passes else float("inf"),
        "time_per_pass_min": float(np.sum(d) / passes / 60_000) if passes else float("inf"),
        "utility": float(np.mean(u)),
    }


def render_frontier(frontier: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Each value policy's cost-weight sweep as text lines: pass rate, cost per pass, and the
    paired difference to the heuristic where the evaluation had one (intervals in brackets)."""

    def cell(m: dict[str, float], fmt: str) -> str:
        return f"{m['value']:{fmt}} [{m['low']:{fmt}}, {m['high']:{fmt}}]"

    lines: list[str] = []
    for name, points in frontier.items():
        lines.append(f"frontier of {name} (cost weight: pass %, cost/pass $, vs heuristic):")
        for p in points:
            vs = p.get("vs_heuristic")
            extra = (
                f"  pass {cell(vs['pass_rate_points'], '+.2f')} pts, cost/pass "
                f"{cell(vs['cost_per_pass_pct'], '+.2f')} %"
                if vs
                else ""
            )
            weight, rate, cost = p["cost_weight"], 100 * p["pass_rate"], p["cost_per_pass"]
            lines.append(f"  {weight:>5g}: {rate:.1f}%  ${cost:.3f}{extra}")
    return lines


def plot_frontier(result: OutcomeEvaluation, path: Path) -> None:
    """Cost per pass against pass rate: each value policy's frontier as a line, the other
    policies and the oracle as points, 95% intervals as bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5))
    for name, points in result.frontier.items():
        xs = [100 * p["pass_rate"] for p in points]
        ys = [p["cost_per_pass"] for p in points]
        ax.plot(xs, ys, marker=".", label=f"{name} (cost weight sweep)")
        for p, x, y in zip(points, xs, ys, strict=True):
            ax.annotate(f"{p['cost_weight']:g}", (x, y), fontsize=6)
    for name, m in result.policies.items():
        pr, cp = m["pass_rate"], m["cost_per_pass"]
        ax.errorbar(
            100 * pr["value"],
            cp["value"],
            xerr=[[100 * (pr["value"] - pr["low"])], [100 * (pr["high"] - pr["value"])]],
            yerr=[[cp["value"] - cp["low"]], [cp["high"] - cp["value"]]],
            fmt="o",
            capsize=3,
            label=name,
        )
    if result.oracle is not None:
        ax.plot(
            100 * result.oracle["pass_rate"],
            result.oracle["cost_per_pass"],
            "k*",
            markersize=12,
            label="per-issue oracle",
        )
    ax.set_xlabel("pass rate (%)")
    ax.set_ylabel("cost per pass (USD)")
    ax.set_title(f"Cost per pass against pass rate ({result.mode}, {result.rows} issues)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
