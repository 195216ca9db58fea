"""``planner eval-logged``: what a candidate policy would pass and spend, from logged decisions.

A kernel running the decision service with exploration records, for every dispatch, the input,
the executed action and its propensity (``planner_action.probs["logging"]``). A candidate
policy is run through the same service (same gate, same safety, no exploration) on every
logged input; where it would have executed the logged action, the logged outcome counts,
weighted by 1 / propensity. Estimators of the pass rate and of the cost per dispatch (their
ratio is the cost per pass):

- IPS: ``mean(w r)``; unbiased, high variance;
- self-normalised IPS: ``sum(w r) / sum(w)``; a little biased, far less variance;
- doubly robust: ``mean(q(x, π(x)) + w (r - q(x, a)))`` with ``q`` a cell-mean outcome model
  fitted on the log (job type × risk × action, shrunk to job type × action and to the action):
  unbiased when either the propensities or ``q`` are right.

Intervals are percentile bootstraps over logged dispatches (seeded); the effective sample size
``(sum w)^2 / sum w^2`` says how many logged dispatches the estimate really rests on.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from swarm_planner.core.action_space import JointAction
from swarm_planner.core.archives import read_root
from swarm_planner.core.config import PlannerConfig
from swarm_planner.core.contracts import PlannerAction, PlannerInput, load
from swarm_planner.core.documents import DocumentError, read_json_object
from swarm_planner.core.errors import PlannerError
from swarm_planner.core.plugins import PluginHost
from swarm_planner.kernel_integration.decision import LOGGING_KEY
from swarm_planner.kernel_integration.service import PlannerService

FloatArray = npt.NDArray[np.float64]


class LoggedError(PlannerError, ValueError):
    """No logged decision with propensities could be read."""


@attrs.frozen
class LoggedDecision:
    """One logged dispatch: what was asked, what ran with which propensity, what it did."""

    run_id: str
    planner_input: PlannerInput
    action: JointAction
    propensity: float
    passed: bool
    cost_usd: float
    logging: dict[str, float] = attrs.field(factory=dict, repr=False)
    """The probability of every action the logging service could have executed."""


@attrs.frozen
class LoggedSet:
    decisions: tuple[LoggedDecision, ...]
    skipped: dict[str, int]


def read_logged(root: Path | str) -> LoggedSet:
    """Every archived run of ``root`` whose decision was logged with propensities; what was
    skipped is counted by reason."""
    kernel = read_root(root)
    skipped: Counter[str] = Counter()
    out = []
    for run in kernel.runs:
        summary = run.summary
        try:
            manifest = read_json_object(Path(run.directory) / "manifest.json")
        except DocumentError:
            skipped["no readable manifest.json"] += 1
            continue
        section = manifest.get("planner")
        if not isinstance(section, dict) or run.executed_plan is None:
            skipped["no recorded decision (manifest planner section)"] += 1
            continue
        try:
            x = load(section.get("planner_input"), PlannerInput, source="planner.planner_input")
            answered = load(
                section.get("planner_action"), PlannerAction, source="planner.planner_action"
            )
        except PlannerError:
            skipped["recorded input or action unreadable"] += 1
            continue
        logging = (answered.probs or {}).get(LOGGING_KEY)
        if not logging:
            skipped["no logging propensities (decided without the service)"] += 1
            continue
        action = run.executed_plan.to_action(x.action_space)
        propensity = logging.get(action.text)
        if propensity is None or not propensity > 0.0:
            skipped["executed action not in the logging distribution"] += 1
            continue
        if summary.cost_usd_est is None:
            skipped["no cost recorded"] += 1
            continue
        out.append(
            LoggedDecision(
                summary.run_id,
                x,
                action,
                float(propensity),
                summary.outcome.status == "success",
                float(summary.cost_usd_est),
                dict(logging),
            )
        )
    if not out:
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items())) or "no runs"
        raise LoggedError(f"{root}: no logged decision with propensities ({detail})")
    return LoggedSet(tuple(out), dict(sorted(skipped.items())))


def _cell_keys(x: PlannerInput, action: JointAction) -> tuple[tuple[str, ...], ...]:
    return (
        (x.job_type, x.issue.dk_risk, x.issue.dk_size, action.text),
        (x.job_type, x.issue.dk_risk, action.text),
        (x.job_type, action.text),
        (action.text,),
    )


class CellModel:
    """``q(x, a)``: the mean logged outcome of the action in the issue's cell, each level
    shrunk towards the wider one (``strength`` pseudo-observations), the widest towards the
    log's overall mean."""

    def __init__(
        self, decisions: Sequence[LoggedDecision], values: FloatArray, strength: float = 5.0
    ) -> None:
        self.strength = strength
        self.mean = float(values.mean())
        self.sums: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0.0, 0.0])
        for d, v in zip(decisions, values, strict=True):
            for key in _cell_keys(d.planner_input, d.action):
                cell = self.sums[key]
                cell[0] += float(v)
                cell[1] += 1.0

    def predict(self, x: PlannerInput, action: JointAction) -> float:
        estimate = self.mean
        for key in reversed(_cell_keys(x, action)):
            cell = self.sums.get(key)
            if cell is not None:
                estimate = (cell[0] + self.strength * estimate) / (cell[1] + self.strength)
        return estimate


@attrs.frozen
class Estimate:
    value: float
    low: float
    high: float


@attrs.frozen
class PolicyEstimate:
    """One candidate's estimates (pass rate, cost per dispatch, cost per pass) per estimator."""

    name: str
    n: int
    matches: int
    """Logged dispatches where the candidate would have run the logged action."""
    unsupported: int
    """Logged dispatches where the candidate's action could not have been logged (its logging
    probability was 0: a ``log``-mode decision, or outside the safe set): there the estimate
    has no data, and IPS/SNIPS are biased towards the logged policy."""
    ess: float
    pass_rate: dict[str, Estimate]
    cost_per_dispatch: dict[str, Estimate]
    cost_per_pass: dict[str, Estimate]

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


ESTIMATORS = ("ips", "snips", "dr")


def _estimators(
    w: FloatArray, r: FloatArray, q_logged: FloatArray, q_target: FloatArray
) -> dict[str, float]:
    total = float(w.sum())
    return {
        "ips": float(np.mean(w * r)),
        "snips": float((w * r).sum() / total) if total > 0 else float("nan"),
        "dr": float(np.mean(q_target + w * (r - q_logged))),
    }


def target_actions(
    decisions: Sequence[LoggedDecision],
    config: PlannerConfig,
    *,
    host: PluginHost | None = None,
) -> list[JointAction]:
    """What the candidate (the config's policy, through the service's gate, no exploration)
    would have executed for every logged input."""
    config = attrs.evolve(
        config, mode="enforce", exploration=attrs.evolve(config.exploration, epsilon=0.0)
    )
    service = PlannerService(config, host=host)
    return [service.decide(d.planner_input).executed for d in decisions]


def estimate(
    logged: LoggedSet,
    targets: Sequence[JointAction],
    *,
    name: str = "candidate",
    bootstrap: int = 500,
    seed: int = 0,
    level: float = 0.95,
) -> PolicyEstimate:
    """IPS, SNIPS and DR estimates of a deterministic candidate with bootstrap intervals."""
    decisions = logged.decisions
    n = len(decisions)
    if len(targets) != n:
        raise ValueError(f"{n} logged decisions but {len(targets)} target actions")
    propensity = np.array([d.propensity for d in decisions])
    match = np.array([t == d.action for t, d in zip(targets, decisions, strict=True)])
    w = match / propensity
    rewards = {
        "pass": np.array([float(d.passed) for d in decisions]),
        "cost": np.array([d.cost_usd for d in decisions]),
    }
    q_logged, q_target = {}, {}
    for key, values in rewards.items():
        model = CellModel(decisions, values)
        q_logged[key] = np.array([model.predict(d.planner_input, d.action) for d in decisions])
        q_target[key] = np.array(
            [model.predict(d.planner_input, t) for d, t in zip(decisions, targets, strict=True)]
        )

    def figures(rows: npt.NDArray[np.int64] | slice) -> dict[str, dict[str, float]]:
        p = _estimators(
            w[rows], rewards["pass"][rows], q_logged["pass"][rows], q_target["pass"][rows]
        )
        c = _estimators(
            w[rows], rewards["cost"][rows], q_logged["cost"][rows], q_target["cost"][rows]
        )
        cpp = {k: c[k] / p[k] if p[k] > 0 else float("nan") for k in ESTIMATORS}
        return {"pass": p, "cost": c, "cpp": cpp}

    point = figures(slice(None))
    rng = np.random.default_rng(seed)
    draws: dict[str, dict[str, list[float]]] = {part: {k: [] for k in ESTIMATORS} for part in point}
    for _ in range(bootstrap):
        sample = figures(rng.integers(0, n, n))
        for part, by_estimator in sample.items():
            for k, v in by_estimator.items():
                draws[part][k].append(v)
    tail = (1.0 - level) / 2.0 * 100.0

    def with_interval(part: str) -> dict[str, Estimate]:
        out = {}
        for k in ESTIMATORS:
            values = np.array(draws[part][k])
            values = values[np.isfinite(values)]
            low, high = (
                (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))
                if values.size
                else (float("nan"), float("nan"))
            )
            out[k] = Estimate(point[part][k], low, high)
        return out

    total = float(w.sum())
    ess = total**2 / float((w**2).sum()) if total > 0 else 0.0
    unsupported = sum(
        1 for d, t in zip(decisions, targets, strict=True) if not d.logging.get(t.text, 0.0) > 0
    )
    return PolicyEstimate(
        name,
        n,
        int(match.sum()),
        unsupported,
        ess,
        with_interval("pass"),
        with_interval("cost"),
        with_interval("cpp"),
    )
