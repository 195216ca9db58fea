"""The ``table`` policy: the best action per (job type, risk, size) cell of an outcome bench.

The explainable baseline any analyst would try first, and the one the learned policies must
beat: for each cell it keeps every tried action's pass rate, mean cost and mean wall time, and
decides by the same expected utility as the ``value`` policy (weights in config). A cell with few
tries leans on the wider cell (same job type and risk, then the job type): each estimate is
shrunk toward it with ``prior_strength`` pseudo-tries. An action never tried in the job type is
never chosen. Fitted without torch: ``planner train --model table --dataset OUTCOME_DIR``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from swarm_planner import hookimpl
from swarm_planner.core.action_space import ActionSpace
from swarm_planner.core.bundle import METADATA, BundleError, open_bundle, seal
from swarm_planner.core.contracts import PlannerInput, check_input, dump, load
from swarm_planner.core.documents import DocumentError, read_json_object
from swarm_planner.core.errors import ContractError
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.jsonconv import json_field, validator
from swarm_planner.core.outcomes import read_outcome_meta, read_outcome_rows
from swarm_planner.core.protocols import ActionDistribution
from swarm_planner.core.utility import UtilityWeights, utility_distribution

TABLE_FILE = "table.json"
TABLE_V1 = "swarm_planner.outcome_table.v1"


@attrs.frozen
class CellStats:
    n: int
    passed: int
    cost_usd: float
    """Sum over the tries with a known cost (``known`` of them)."""
    duration_ms: float
    known: int


@attrs.frozen
class OutcomeTable:
    schema_version: str
    dataset_hash: str
    action_space: ActionSpace
    cells: dict[str, dict[str, CellStats]]
    """``job|risk|size``, ``job|risk`` and ``job`` → action text → stats (train split)."""


def cell_keys(x: PlannerInput) -> tuple[str, str, str]:
    issue = x.issue
    return (
        f"{x.job_type}|{issue.dk_risk}|{issue.dk_size}",
        f"{x.job_type}|{issue.dk_risk}",
        x.job_type,
    )


def fit_table(dataset: Path | str, out: Path | str) -> dict[str, Any]:
    """Count the train split's outcomes per cell and write ``table.json`` into ``out``."""
    meta = read_outcome_meta(dataset)
    rows, space = read_outcome_rows(dataset)
    sums: dict[str, dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0, 0.0, 0.0, 0])
    )
    for row in rows["train"]:
        for key in cell_keys(row.planner_input):
            for cand in row.candidates:
                s = sums[key][cand.joint_action.text]
                s[0] += 1
                s[1] += cand.verified
                if cand.cost_usd is not None and cand.duration_ms is not None:
                    s[2] += cand.cost_usd
                    s[3] += cand.duration_ms
                    s[4] += 1
    cells = {
        key: {
            a: CellStats(int(v[0]), int(v[1]), float(v[2]), float(v[3]), int(v[4]))
            for a, v in sorted(actions.items())
        }
        for key, actions in sorted(sums.items())
    }
    table = OutcomeTable(TABLE_V1, meta.dataset_hash, space, cells)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / TABLE_FILE).write_text(json.dumps(dump(table), indent=1, sort_keys=True) + "\n", "utf-8")
    seal(out, {"model_type": "table", "served_by": ["table"], "dataset_hash": meta.dataset_hash})
    return {"cells": sum(1 for k in cells if k.count("|") == 2), "rows": len(rows["train"])}


_positive_number = validator(lambda v: None if v > 0 else f"{v!r} is not above 0")


@attrs.frozen
class TableOptions:
    path: str
    pass_value: float = 1.0
    cost_weight: float = 0.2
    time_weight: float = 0.0
    prior_strength: float = json_field(default=5.0, validator=_positive_number)
    decision_temperature: float = json_field(default=0.02, validator=_positive_number)


class TablePolicy:
    def __init__(self, options: TableOptions) -> None:
        path = Path(options.path)
        file = path / TABLE_FILE if path.is_dir() else path
        if path.is_dir() and (path / METADATA).exists():
            open_bundle(path, required=(TABLE_FILE,))  # sealed: an edited table is refused
        try:
            self.table = load(read_json_object(file), OutcomeTable, source=str(file))
        except (DocumentError, ContractError) as exc:
            raise BundleError(f"{file}: not an outcome table: {exc}") from exc
        self.options = options
        self.weights = UtilityWeights(options.pass_value, options.cost_weight, options.time_weight)

    def estimates_of(
        self, x: PlannerInput
    ) -> tuple[tuple[Any, ...], np.ndarray, np.ndarray, np.ndarray]:
        """Valid actions tried in the job type, with shrunk P(pass), cost and duration."""
        fine, mid, coarse = (self.table.cells.get(k, {}) for k in cell_keys(x))
        m = self.options.prior_strength
        actions, p, c, d = [], [], [], []
        for action in x.action_space.valid_actions(x.job_type):
            top = coarse.get(action.text)
            if top is None or top.n == 0:
                continue
            est = (
                top.passed / top.n,
                top.cost_usd / max(top.known, 1),
                top.duration_ms / max(top.known, 1),
            )
            for level in (mid, fine):
                s = level.get(action.text)
                if s is None:
                    continue
                est = (
                    (s.passed + m * est[0]) / (s.n + m),
                    (s.cost_usd + m * est[1]) / (s.known + m),
                    (s.duration_ms + m * est[2]) / (s.known + m),
                )
            actions.append(action)
            p.append(est[0])
            c.append(est[1])
            d.append(est[2])
        return tuple(actions), np.array(p), np.array(c), np.array(d)

    def predict(self, planner_input: PlannerInput) -> ActionDistribution:
        x = check_input(planner_input)
        actions, p, c, d = self.estimates_of(x)
        if not actions:
            raise ContractError(
                "planner_input", [f"job_type: the table has no outcomes for {x.job_type!r}"]
            )
        valid = x.action_space.valid_actions(x.job_type)
        chosen = utility_distribution(
            actions, self.weights.of(p, c, d), self.options.decision_temperature
        )
        probs = np.zeros(len(valid))
        index = {a: i for i, a in enumerate(valid)}
        for a, q in zip(chosen.actions, chosen.probs, strict=True):
            probs[index[a]] = q
        return ActionDistribution(valid, probs)


@hookimpl
def register_policies(register: Register) -> None:
    register("table", TablePolicy, options=TableOptions)
