"""The outcome dataset: one row per benched issue, every tried candidate with its outcome.

Why rows of candidates rather than one label per row: an outcome model learns P(pass), time and
cost of each action from the actions that were *tried* (the rest of a row's actions are unknown,
not failures), and off-policy estimates need each candidate's propensity (the chance the
sampler had of trying it). The winner, when one passed, is the row's label for fine-tuning an
imitation bundle (``planner train --dataset OUTCOME_DIR --init BUNDLE``).

Rows are split by issue, in time order of the issue's first case: an issue's retries never sit
on both sides of a split. ``build_outcome_dataset`` reads our bench folders and the field's
(see :mod:`swarm_planner.core.bench.results`).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from swarm_planner import __version__
from swarm_planner.core.action_space import ActionSpace, JointAction
from swarm_planner.core.bench.results import read_bench
from swarm_planner.core.canonical import canonical_json
from swarm_planner.core.contracts import PlannerAction, PlannerInput, Status, dump, load
from swarm_planner.core.dataset import DatasetError, DatasetRow
from swarm_planner.core.documents import DocumentError, iter_json_lines, read_json_object
from swarm_planner.core.errors import ContractError
from swarm_planner.core.jsonconv import json_field, non_negative
from swarm_planner.core.recording import planner_action_for

OUTCOME_DATASET_V1 = "swarm_planner.outcome_dataset.v1"
OUTCOME_FILE = "outcomes.jsonl"
META_FILE = "meta.json"
Split = Literal["train", "val", "test"]


@attrs.frozen
class OutcomeCandidate:
    action: list[Any]
    verified: bool
    status: Status
    duration_ms: int | None = json_field(optional=True, validator=non_negative)
    cost_usd: float | None = json_field(optional=True, validator=non_negative)
    candidate_minutes: float | None = json_field(optional=True, validator=non_negative)
    fail_codes: tuple[str, ...] = ()
    error: str | None = json_field(optional=True)
    propensity: float | None = json_field(optional=True)
    """The chance the sampler had of trying this action for the issue (None: not logged)."""

    @property
    def joint_action(self) -> JointAction:
        return JointAction.from_list(self.action)


@attrs.frozen
class OutcomeRow:
    schema_version: Literal["swarm_planner.outcome_row.v1"]
    case_id: str
    issue_id: str
    started_ms: int
    planner_input: PlannerInput
    candidates: tuple[OutcomeCandidate, ...]
    winner: int | None = json_field(optional=True)
    """Index into ``candidates`` of the winner (None: no candidate passed)."""
    label_action: PlannerAction | None = json_field(optional=True)
    action_probs: dict[str, float] | None = json_field(optional=True)
    """Inclusion probability of every valid action (None: the sampler logs none)."""
    split: Split = "train"


@attrs.frozen
class OutcomeMeta:
    schema_version: Literal["swarm_planner.outcome_dataset.v1"]
    dataset_hash: str
    example_count: int
    split_counts: dict[str, int]
    split_issues: dict[str, int]
    bench: dict[str, Any]
    skipped: dict[str, int]
    repairs: dict[str, Any]
    candidates: dict[str, Any]
    built_with: dict[str, str]


def split_issue_counts(n: int, shares: Sequence[float]) -> dict[str, int]:
    train = round(shares[0] * n)
    val = round(shares[1] * n)
    return {"train": train, "val": min(val, n - train), "test": max(0, n - train - val)}


def check_shares(shares: Sequence[float]) -> tuple[float, float, float]:
    if len(shares) != 3 or any(s < 0 for s in shares) or abs(sum(shares) - 1.0) > 1e-6:
        raise DatasetError(
            f"split shares must be three non-negative numbers summing to 1 (train,val,test), got "
            f"{list(shares)}"
        )
    return (float(shares[0]), float(shares[1]), float(shares[2]))


def build_outcome_dataset(
    bench: Path | str,
    out: Path | str,
    *,
    shares: Sequence[float] = (0.8, 0.1, 0.1),
    issue_counts: tuple[int, int] | None = None,
    keep_failed_winners: bool = False,
) -> dict[str, Any]:
    """Read a bench folder (ours or the field's), write ``outcomes.jsonl`` and ``meta.json``.

    ``issue_counts``: exactly this many issues for train and val (the rest is test) instead of
    ``shares``."""
    shares = check_shares(shares)
    read = read_bench(bench)
    cases = sorted(read.cases, key=lambda c: (c.started_ms, c.case_id))
    first_seen: dict[str, int] = {}
    for c in cases:
        first_seen.setdefault(c.planner_input.issue.issue_id, len(first_seen))
    counts = split_issue_counts(len(first_seen), shares)
    if issue_counts is not None:
        train, val = issue_counts
        if train < 1 or val < 1 or train + val >= len(first_seen):
            raise DatasetError(
                f"--train-issues {train} and --val-issues {val} leave no test issues of the "
                f"bench's {len(first_seen)} (each must be at least 1)"
            )
        counts = {"train": train, "val": val, "test": len(first_seen) - train - val}

    def split_of(issue_id: str) -> Split:
        rank = first_seen[issue_id]
        if rank < counts["train"]:
            return "train"
        return "val" if rank < counts["train"] + counts["val"] else "test"

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    split_rows: Counter[str] = Counter()
    tried: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    winners = 0
    tmp = out / f".{OUTCOME_FILE}.tmp"
    with tmp.open("w", encoding="utf-8") as handle:
        for c in cases:
            x = c.planner_input
            candidates = tuple(
                OutcomeCandidate(
                    action=cand.action.as_list(),
                    verified=cand.verified,
                    status=cand.status,  # type: ignore[arg-type]
                    duration_ms=cand.duration_ms,
                    cost_usd=cand.cost_usd,
                    candidate_minutes=cand.candidate_minutes,
                    fail_codes=cand.fail_codes,
                    error=cand.error,
                    propensity=cand.inclusion,
                )
                for cand in c.candidates
            )
            winner = c.winner
            if winner is not None and not candidates[winner].verified and not keep_failed_winners:
                winner = None
            label = None
            if winner is not None:
                winners += 1
                label = planner_action_for(
                    c.candidates[winner].action,
                    created_at=x.created_at,
                    confidence=1.0,
                    reason="best_of_k_winner",
                    label_source="best_of_k",
                )
            probs = c.inclusion
            split = split_of(x.issue.issue_id)
            row = OutcomeRow(
                "swarm_planner.outcome_row.v1",
                c.case_id,
                x.issue.issue_id,
                c.started_ms,
                x,
                candidates,
                winner,
                label,
                probs,
                split,
            )
            line = canonical_json(dump(row)) + "\n"
            digest.update(line.encode("utf-8"))
            handle.write(line)
            split_rows[split] += 1
            for cand in candidates:
                tried[x.job_type] += 1
                passed[x.job_type] += cand.verified
    tmp.replace(out / OUTCOME_FILE)
    issues_by_split = Counter(split_of(i) for i in first_seen)
    meta = OutcomeMeta(
        schema_version="swarm_planner.outcome_dataset.v1",
        dataset_hash=digest.hexdigest(),
        example_count=len(cases),
        split_counts={s: split_rows.get(s, 0) for s in ("train", "val", "test")},
        split_issues={s: issues_by_split.get(s, 0) for s in ("train", "val", "test")},
        bench={"folder": read.folder, "source": read.source, "config_hash": read.config_hash},
        skipped=dict(sorted(read.skipped.items())),
        repairs=read.repairs.to_json(),
        candidates={
            "tried": dict(tried),
            "pass_rate": {j: round(passed[j] / tried[j], 4) for j in tried},
            "rows_with_winner": winners,
            "keep_failed_winners": keep_failed_winners,
        },
        built_with={"swarm_planner": __version__},
    )
    data = dump(meta)
    (out / META_FILE).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", "utf-8")
    return data  # type: ignore[no-any-return]


def is_outcome_dataset(folder: Path | str) -> bool:
    path = Path(folder) / META_FILE
    if not path.is_file():
        return False
    try:
        return read_json_object(path).get("schema_version") == OUTCOME_DATASET_V1
    except DocumentError:
        return False


def read_outcome_meta(folder: Path | str, *, verify: bool = True) -> OutcomeMeta:
    path = Path(folder) / META_FILE
    try:
        meta = load(read_json_object(path), OutcomeMeta, source=str(path))
    except (DocumentError, ContractError) as exc:
        raise DatasetError(f"{path}: not an outcome dataset's meta: {exc}") from None
    if verify:
        digest = hashlib.sha256()
        data = Path(folder, OUTCOME_FILE)
        if not data.is_file():
            raise DatasetError(f"{data}: missing (build it with `planner build-outcome-dataset`)")
        with data.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != meta.dataset_hash:
            raise DatasetError(
                f"{data}: its sha256 is not meta.json's dataset_hash: the rows changed after the "
                "build; rebuild with `planner build-outcome-dataset`"
            )
    return meta


def read_outcome_rows(folder: Path | str) -> tuple[dict[str, list[OutcomeRow]], ActionSpace]:
    """Rows by split and their one action space (every tried action valid in it)."""
    read_outcome_meta(folder)
    path = Path(folder) / OUTCOME_FILE
    splits: dict[str, list[OutcomeRow]] = {"train": [], "val": [], "test": []}
    space: ActionSpace | None = None
    try:
        for line in iter_json_lines(path):
            where = f"{path}:{line.number}"
            if line.error is not None:
                raise DatasetError(str(line.error))
            try:
                row = load(line.value, OutcomeRow, source=where)
            except ContractError as exc:
                raise DatasetError(str(exc)) from None
            row_space = row.planner_input.action_space
            if space is None:
                space = row_space
            elif not row_space.equivalent(space):
                raise DatasetError(f"{where}: another action space than the first row's")
            for i, cand in enumerate(row.candidates):
                try:
                    space.check(cand.joint_action, row.planner_input.job_type)
                except (ValueError, ContractError) as exc:
                    raise DatasetError(f"{where}: candidates[{i}]: {exc}") from None
            splits[row.split].append(row)
    except DocumentError as exc:
        raise DatasetError(str(exc)) from None
    if space is None:
        raise DatasetError(f"{folder}: the outcome dataset has no rows")
    return splits, space


def winner_rows(rows: Sequence[OutcomeRow]) -> list[DatasetRow]:
    """The rows with a winner as imitation rows (the bench's winner is the label)."""
    return [
        DatasetRow(r.case_id, r.started_ms, r.planner_input, r.label_action, r.split)
        for r in rows
        if r.label_action is not None
    ]
