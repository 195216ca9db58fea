"""Archives → ``cyntra.planner_dataset.v1``: rows, time split, hash, meta, stats, feasibility gates.

A row is what the planner would have been asked at dispatch time (``planner_input``, rebuilt
with this project's retrieval so N and the scorer can be ablated) and what the kernel actually
ran (``label_action``, the executed plan as a planner_action with
``model.checkpoint_id = "executed_plan"``). Everything in a row is known strictly before the run
started: history holds only earlier runs, and ``dk_attempts`` counts the issue's earlier
archived runs rather than the issue file's final count (which would leak the future).

Rows are written as canonical JSON lines; ``dataset_hash`` is the sha256 of exactly those bytes,
so the same archives give the same hash on every rebuild and every machine.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import attrs

from swarm_planner import __version__
from swarm_planner.core.action_space import HEADS, ActionSpace, JointAction
from swarm_planner.core.archives import ArchivedRun, KernelRoot, read_root
from swarm_planner.core.canonical import canonical_json, sha256_hex
from swarm_planner.core.contracts import (
    Issue,
    ModelRef,
    PlannerAction,
    PlannerInput,
    SystemState,
    UniverseDefaults,
    dump,
    load,
)
from swarm_planner.core.documents import DocumentError, iter_json_lines, read_json_object
from swarm_planner.core.errors import ContractError, PlannerError
from swarm_planner.core.history import (
    DEFAULT_SCORER,
    DEFAULT_WINDOW,
    SCORERS,
    HistoryIndex,
    Scorer,
    scorer_named,
)
from swarm_planner.core.jsonconv import (
    json_field,
    non_negative,
    open_record,
    positive,
    structure,
    validator,
)
from swarm_planner.core.keywords import issue_keywords
from swarm_planner.core.progress import Progress
from swarm_planner.core.recording import build_planner_input, planner_action_for, rfc3339_from_ms

DATASET_V1 = "cyntra.planner_dataset.v1"
DATASET_FILE = "dataset.jsonl"
META_FILE = "meta.json"
Split = Literal["train", "val", "test"]


class DatasetError(PlannerError, ValueError):
    """A dataset folder is missing, inconsistent or malformed."""


@attrs.frozen
class DatasetOptions:
    n_similar: int = 8
    scorer: str = "signals"
    include_world: bool = True
    window: int | None = DEFAULT_WINDOW
    universe_id: str | None = None
    strict: bool = False


@attrs.frozen
class DatasetRow:
    run_id: str
    started_ms: int
    planner_input: PlannerInput
    label_action: PlannerAction
    split: Split


@attrs.frozen
class BuildResult:
    meta: dict[str, Any]
    out: str


def split_counts(n: int) -> dict[str, int]:
    """Time-ordered prefix split: ``train = int(0.8 n)``, ``val = int(0.1 n)``, test the rest."""
    train, val = int(0.8 * n), int(0.1 * n)
    return {"train": train, "val": val, "test": n - train - val}


def _split_of(i: int, counts: dict[str, int]) -> Split:
    if i < counts["train"]:
        return "train"
    return "val" if i < counts["train"] + counts["val"] else "test"


def label_for(run: ArchivedRun, space: ActionSpace) -> tuple[JointAction | None, list[str]]:
    """The executed action in this space's bins, repaired to validity; and the repairs made."""
    executed = run.summary.action_executed
    mapped = space.nearest_action(
        executed.swarm_id, executed.max_candidates, executed.max_minutes, executed.max_iterations
    )
    job_type = run.summary.job_type
    broken = space.violations(mapped, job_type)
    if not broken:
        return mapped, []
    return space.nearest_valid(mapped, job_type), broken


def _issue_for(run: ArchivedRun, issues: dict[str, Issue]) -> tuple[Issue, bool]:
    summary = run.summary
    known = issues.get(summary.issue_id or "")
    issue = known or Issue(summary.issue_id or summary.run_id, tags=tuple(summary.tags or ()))
    return issue, known is not None


def dispatch_input(
    index: HistoryIndex,
    issue: Issue,
    *,
    job_type: str,
    started_ms: int,
    attempts: int,
    n_similar: int,
    scorer: Scorer,
    universe_id: str,
    space: ActionSpace,
    universe_defaults: UniverseDefaults | None = None,
    system_state: SystemState | None = None,
) -> PlannerInput:
    """What the planner is asked when ``issue`` is dispatched at ``started_ms``: the issue with
    its attempt count and keywords, the ``n_similar`` most similar earlier runs of ``index``.
    The one rule: the dataset builder builds every row with it and the decision service every
    live input, so that serving sees what training saw."""
    issue = attrs.evolve(issue, dk_attempts=attempts, keywords=issue_keywords(issue))
    similar = index.similar(
        job_type=job_type,
        before_ms=started_ms,
        n=n_similar,
        scorer=scorer,
        tags=issue.tags,
        keywords=issue.keywords or (),
        issue_id=issue.issue_id,
    )
    return build_planner_input(
        universe_id=universe_id,
        job_type=job_type,
        issue=issue,
        history=[index.runs[j] for j in similar],
        action_space=space,
        universe_defaults=universe_defaults,
        system_state=system_state,
        created_at=rfc3339_from_ms(started_ms),
    )


def iter_rows(
    root: KernelRoot, options: DatasetOptions, counters: dict[str, Counter[str]]
) -> Iterator[tuple[ArchivedRun, PlannerInput, PlannerAction]]:
    """Yield (run, planner_input, label_action) in time order, counting what was repaired."""
    scorer = scorer_named(options.scorer)
    space = ActionSpace(swarm_ids=root.universe.swarm_ids)
    summaries = [r.summary for r in root.runs]
    keywords = [
        issue_keywords(root.issues[s.issue_id]) if s.issue_id in root.issues else ()
        for s in summaries
    ]
    index = HistoryIndex(summaries, keywords, window=options.window)
    earlier_attempts: Counter[str] = Counter()
    for run in root.runs:
        summary = run.summary
        issue_key = summary.issue_id or summary.run_id
        attempts = earlier_attempts[issue_key]
        earlier_attempts[issue_key] += 1
        if not options.include_world and summary.job_type == "fab-world":
            counters["excluded"]["fab-world run (--no-include-world)"] += 1
            continue
        label, broken = label_for(run, space)
        if label is None:
            counters["excluded"][f"label not in the action space: {', '.join(broken)}"] += 1
            continue
        for rule in broken:
            counters["repairs"][f"label repaired: {rule}"] += 1
        issue, known = _issue_for(run, root.issues)
        if not known:
            counters["repairs"]["issue metadata missing: tags from the manifest"] += 1
        created = rfc3339_from_ms(summary.started_ms)
        planner_input = dispatch_input(
            index,
            issue,
            job_type=summary.job_type,
            started_ms=summary.started_ms,
            attempts=attempts,
            n_similar=options.n_similar,
            scorer=scorer,
            universe_id=root.universe.universe_id,
            space=space,
            universe_defaults=root.universe.defaults,
            system_state=run.system_state,
        )
        label_action = planner_action_for(
            label,
            created_at=created,
            confidence=1.0,
            reason=run.action_source,
            model=ModelRef("executed_plan"),
            label_source="executed_plan" if run.action_source == "executed_plan" else "legacy",
        )
        yield run, planner_input, label_action


def build_dataset(
    root: Path | str,
    out: Path | str,
    options: DatasetOptions | None = None,
    *,
    progress: Progress | None = None,
) -> BuildResult:
    """Read ``root``, write ``dataset.jsonl`` and ``meta.json`` into ``out``; return the meta."""
    options = options or DatasetOptions()
    if options.n_similar < 0:
        raise DatasetError(f"n_similar must be at least 0, got {options.n_similar}")
    kernel = read_root(
        root, strict=options.strict, universe_id=options.universe_id, progress=progress
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counters: dict[str, Counter[str]] = {"excluded": Counter(), "repairs": Counter()}
    rows = list(iter_rows(kernel, options, counters))
    counts = split_counts(len(rows))
    digest = hashlib.sha256()
    labels: Counter[str] = Counter()
    heads: dict[str, Counter[str]] = {h: Counter() for h in HEADS}
    sources: Counter[str] = Counter()
    tmp = out / f".{DATASET_FILE}.tmp"
    with tmp.open("w", encoding="utf-8") as handle:
        for i, (run, planner_input, label_action) in enumerate(rows):
            row = DatasetRow(
                run.summary.run_id,
                run.summary.started_ms,
                planner_input,
                label_action,
                _split_of(i, counts),
            )
            line = canonical_json(dump(row)) + "\n"
            digest.update(line.encode("utf-8"))
            handle.write(line)
            action = label_action.action
            labels[action.text] += 1
            for head, value in zip(HEADS, action.text.split("|"), strict=True):
                heads[head][value] += 1
            sources[label_action.label_source or "?"] += 1
            if progress is not None and (i % 1000 == 0 or i == len(rows) - 1):
                progress(i + 1, len(rows))
    tmp.replace(out / DATASET_FILE)
    meta = {
        "schema_version": DATASET_V1,
        "dataset_hash": digest.hexdigest(),
        "example_count": len(rows),
        "split_counts": counts,
        "n_similar_runs": options.n_similar,
        "universe_id": kernel.universe.universe_id,
        "retrieval": {"scorer": options.scorer, "window": options.window},
        "include_world": options.include_world,
        "time_range": {
            "first": rfc3339_from_ms(rows[0][0].summary.started_ms) if rows else None,
            "last": rfc3339_from_ms(rows[-1][0].summary.started_ms) if rows else None,
        },
        "label_distribution": dict(sorted(labels.items())),
        "label_head_distribution": {h: dict(sorted(c.items())) for h, c in heads.items()},
        "label_sources": dict(sorted(sources.items())),
        "excluded": dict(sorted(counters["excluded"].items())),
        "repairs": dict(sorted(counters["repairs"].items())),
        "read_report": kernel.report.to_json(),
        "environment": {
            "action_space": dump(ActionSpace(swarm_ids=kernel.universe.swarm_ids)),
            "action_space_hash": sha256_hex(
                canonical_json(dump(ActionSpace(swarm_ids=kernel.universe.swarm_ids)))
            ),
            "universe_defaults": dump(kernel.universe.defaults),
            "swarm_ids": list(kernel.universe.swarm_ids),
        },
        "built_with": {"swarm_planner": __version__},
        "dk_attempts": "counted from the issue's earlier archived runs (leakage-safe)",
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", "utf-8")
    return BuildResult(meta, str(out))


# -- reading a dataset back ------------------------------------------------------------------


_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@open_record
@attrs.frozen
class Retrieval:
    scorer: str = json_field(
        default=DEFAULT_SCORER,
        validator=validator(
            lambda v: None if v in SCORERS else f"{v!r} is not one of {'|'.join(SCORERS)}"
        ),
    )
    window: int | None = json_field(default=DEFAULT_WINDOW, validator=positive)


@open_record
@attrs.frozen
class MetaReport:
    root: str | None = None


@open_record
@attrs.frozen
class DatasetMeta:
    """``meta.json``: the fields code reads back (the rest is for people and is kept as is)."""

    schema_version: Literal["cyntra.planner_dataset.v1"]
    dataset_hash: str = json_field(
        validator=validator(lambda v: None if _HEX64.match(v) else f"{v!r} is not a sha256")
    )
    example_count: int = json_field(default=0, validator=non_negative)
    n_similar_runs: int = json_field(default=8, validator=non_negative)
    universe_id: str | None = None
    include_world: bool = True
    retrieval: Retrieval = attrs.field(factory=Retrieval)
    read_report: MetaReport = attrs.field(factory=MetaReport)


def read_meta(folder: Path | str, *, verify: bool = False) -> DatasetMeta:
    """``meta.json`` of a dataset, checked; with ``verify``, also check that ``dataset.jsonl``
    is the file the hash vouches for (training on edited rows would seal a false hash into a
    bundle)."""
    path = Path(folder) / META_FILE
    try:
        meta = structure(read_json_object(path), DatasetMeta, source=str(path))
    except DocumentError as exc:
        raise DatasetError(str(exc)) from exc
    except ContractError as exc:
        raise DatasetError(str(exc)) from exc
    if verify:
        actual = file_hash(folder)
        if actual != meta.dataset_hash:
            raise DatasetError(
                f"{Path(folder) / DATASET_FILE}: its sha256 {actual[:12]}… is not meta.json's "
                f"dataset_hash ({meta.dataset_hash[:12]}…): the rows changed after the build; "
                "rebuild it with `planner build-dataset`"
            )
    return meta


def read_split_rows(folder: Path | str) -> tuple[dict[str, list[DatasetRow]], ActionSpace]:
    """Rows by split and the one action space they share. Every reader that scores or trains
    on rows goes through here: a row with a space not equivalent to the first row's, or a label
    its space does not allow, is an error naming the row."""
    splits: dict[str, list[DatasetRow]] = {"train": [], "val": [], "test": []}
    space: ActionSpace | None = None
    for row in iter_dataset(folder):
        if space is None:
            space = row.planner_input.action_space
        elif not row.planner_input.action_space.equivalent(space):
            raise DatasetError(
                f"{folder}: row {row.run_id} has another action space than the first row; "
                "a dataset must use one action space (rebuild it)"
            )
        broken = space.violations(row.label_action.action, row.planner_input.job_type)
        if broken:
            raise DatasetError(
                f"{folder}: row {row.run_id}: its label {row.label_action.action.text} is not an "
                f"action of its space ({broken[0]}); rebuild the dataset"
            )
        splits[row.split].append(row)
    if space is None:
        raise DatasetError(f"{folder}: the dataset has no rows")
    return splits, space


def iter_dataset(folder: Path | str) -> Iterator[DatasetRow]:
    """Rows of ``dataset.jsonl``, validated; an error names the file, line and field."""
    path = Path(folder) / DATASET_FILE
    if not path.exists():
        raise DatasetError(f"{path}: missing (build it with `planner build-dataset`)")
    try:
        for line in iter_json_lines(path):
            if line.error is not None:
                raise DatasetError(str(line.error))
            try:
                yield load(line.value, DatasetRow, source=f"{path}:{line.number}")
            except ContractError as exc:
                raise DatasetError(str(exc)) from exc
    except DocumentError as exc:
        raise DatasetError(str(exc)) from exc


def file_hash(folder: Path | str) -> str:
    path = Path(folder) / DATASET_FILE
    if not path.exists():
        raise DatasetError(f"{path}: missing (build it with `planner build-dataset`)")
    if not path.is_file():
        raise DatasetError(f"{path}: not a regular file")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- stats and feasibility gates -------------------------------------------------------------


def root_stats(root: Path | str, *, universe_id: str | None = None) -> dict[str, Any]:
    """Counts over a kernel root: job type, domain, risk, size, executed bins, outcome, lanes."""
    kernel = read_root(root, universe_id=universe_id)
    space = ActionSpace(swarm_ids=kernel.universe.swarm_ids)
    tables: dict[str, Counter[str]] = defaultdict(Counter)
    for run in kernel.runs:
        s = run.summary
        issue = kernel.issues.get(s.issue_id or "")
        risk = issue.dk_risk if issue else "unknown"
        tables["job_type"][s.job_type] += 1
        tables["domain"][s.domain] += 1
        tables["risk"][risk] += 1
        tables["size"][issue.dk_size if issue else "unknown"] += 1
        tables["status"][s.outcome.status] += 1
        tables["action_source"][run.action_source] += 1
        label, _ = label_for(run, space)
        text = label.text if label else "invalid"
        tables["label"][text] += 1
        for head, value in zip(HEADS, text.split("|"), strict=False):
            tables[f"bin_{head}"][value] += 1
        tables["lane"][f"{risk} -> {s.action_executed.swarm_id}"] += 1
    total = len(kernel.runs)
    return {
        "root": str(root),
        "runs": total,
        "issues": len(kernel.issues),
        "skipped": kernel.report.skipped_count,
        "skip_counts": kernel.report.skip_counts(),
        "repairs": dict(sorted(kernel.report.repairs.counts.items())),
        "counts": {k: dict(sorted(v.items())) for k, v in sorted(tables.items())},
    }


@attrs.frozen
class GateResult:
    name: str
    passed: bool
    value: float
    threshold: float
    detail: str


@attrs.frozen
class GateThresholds:
    min_examples: int = 500
    min_label_agreement: float = 0.8
    min_label_entropy_bits: float = 1.0
    max_majority_share: float = 0.95


def _near_duplicate_key(planner_input: PlannerInput) -> str:
    """Inputs that differ only in identity, text, time and history are near-duplicates."""
    issue = planner_input.issue
    return canonical_json(
        [
            planner_input.job_type,
            issue.dk_priority,
            issue.dk_risk,
            issue.dk_size,
            issue.dk_tool_hint,
            sorted(issue.tags),
        ]
    )


def check_dataset(folder: Path | str, thresholds: GateThresholds | None = None) -> list[GateResult]:
    """The feasibility gates, each with its figure; see docs/data.md for their meaning."""
    thresholds = thresholds or GateThresholds()
    meta = read_meta(folder)
    actual = file_hash(folder)
    groups: dict[str, Counter[str]] = defaultdict(Counter)
    labels: Counter[str] = Counter()
    splits: Counter[str] = Counter()
    for row in iter_dataset(folder):
        text = row.label_action.action.text
        groups[_near_duplicate_key(row.planner_input)][text] += 1
        labels[text] += 1
        splits[row.split] += 1
    n = sum(labels.values())
    results = [
        GateResult(
            "hash_matches_meta",
            actual == meta.dataset_hash,
            1.0 if actual == meta.dataset_hash else 0.0,
            1.0,
            f"file sha256 {actual[:12]}…, meta {meta.dataset_hash[:12]}…",
        ),
        GateResult(
            "enough_examples",
            n >= thresholds.min_examples,
            float(n),
            float(thresholds.min_examples),
            f"{n} rows",
        ),
    ]
    dup_rows = sum(sum(c.values()) for c in groups.values() if sum(c.values()) >= 2)
    agreeing = sum(max(c.values()) for c in groups.values() if sum(c.values()) >= 2)
    agreement = agreeing / dup_rows if dup_rows else 1.0
    results.append(
        GateResult(
            "near_duplicates_agree",
            agreement >= thresholds.min_label_agreement,
            round(agreement, 4),
            thresholds.min_label_agreement,
            f"{agreeing} of {dup_rows} rows in near-duplicate groups carry their group's "
            f"majority label ({sum(1 for c in groups.values() if sum(c.values()) >= 2)} groups)",
        )
    )
    entropy = -sum((c / n) * math.log2(c / n) for c in labels.values()) if n else 0.0
    majority = max(labels.values()) / n if n else 1.0
    results.append(
        GateResult(
            "label_entropy",
            entropy >= thresholds.min_label_entropy_bits
            and majority <= thresholds.max_majority_share,
            round(entropy, 4),
            thresholds.min_label_entropy_bits,
            f"{len(labels)} distinct labels, majority share {majority:.3f} "
            f"(max {thresholds.max_majority_share})",
        )
    )
    empty = [s for s in ("train", "val", "test") if splits[s] == 0]
    results.append(
        GateResult(
            "splits_non_empty",
            not empty,
            float(min((splits[s] for s in ("train", "val", "test")), default=0)),
            1.0,
            ", ".join(f"{s}={splits[s]}" for s in ("train", "val", "test"))
            + (f"; empty: {', '.join(empty)}" if empty else ""),
        )
    )
    return results
