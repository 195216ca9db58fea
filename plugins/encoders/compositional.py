"""The ``compositional`` encoder: a planner_input as a bag of ``[KEY] = [VALUE]`` feature ids.

Why this shape: the input is a handful of categorical facts plus a few sets (tags, keywords,
gates, fail codes) plus N history runs. A bag of ids feeds an embedding-bag first layer directly
(no multi-thousand-wide dense vector), and its id space is fixed by the config, so a bundle can
carry it. Ids come from three regions:

- **closed pairs**: every ``key = value`` of a closed vocabulary (risk, size, priority, status,
  ordinal bins of counts, durations, recency, hours...) has its own exact id;
- **hashed pairs**: open sets (tags, keywords, tool hints, fail codes, gate names, actions,
  toolchains) hash ``key + value`` into ``pair_buckets`` buckets (sha256, never Python's
  ``hash()``), so a tag never seen in training is a bucket, not an unknown token;
- **shared values**: the same open values also hash into ``value_buckets`` regardless of key,
  so ``api`` as a tag and ``api`` in a similar run's tags share what they learned.

Each history slot has its own keys (``h3.status``), so the model sees which run is newest.
Sets are order-invariant (ids are sorted), the output is deterministic, and ``encode_batch``
returns the flat ``ids / offsets / weights`` an embedding bag takes, plus the validity mask of
each input's job type over every action tuple of its action space.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from swarm_planner import hookimpl
from swarm_planner.core.contracts import PRIORITIES, RISKS, SIZES, STATUSES, PlannerInput
from swarm_planner.core.history import failure_signals, recency_bucket
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.jsonconv import json_field, validator
from swarm_planner.core.protocols import FeatureBatch, Features
from swarm_planner.core.recording import ms_from_rfc3339

ENCODER_VERSION = 1

ATTEMPT_BINS = ("0", "1", "2", "3", "4+")
DURATION_BINS = ("lt5m", "lt15m", "lt30m", "lt60m", "lt120m", "ge120m", "null")
COUNT_BINS = ("0", "1_2", "3_5", "6_plus", "null")
HOUR_BINS = ("night", "morning", "midday", "afternoon", "evening", "late", "null")
HEALTH_BINS = ("lt50", "lt70", "lt85", "ge85")
NULL = "null"

_positive = validator(lambda v: f"{v!r} is below 1" if v < 1 else None)
_non_negative = validator(lambda v: f"{v!r} is negative" if v < 0 else None)


@attrs.frozen
class CompositionalOptions:
    """The encoder's config; stored in every bundle and used again at inference."""

    n_history: int = json_field(default=16, validator=_non_negative)
    pair_buckets: int = json_field(default=4096, validator=_positive)
    value_buckets: int = json_field(default=2048, validator=_positive)
    version: int = ENCODER_VERSION


def _closed_vocabulary(n_history: int) -> dict[str, tuple[str, ...]]:
    """Every closed key and its values, in a fixed order (this order defines the ids)."""
    vocab: dict[str, tuple[str, ...]] = {
        "issue.dk_priority": PRIORITIES,
        "issue.dk_risk": RISKS,
        "issue.dk_size": SIZES,
        "issue.dk_attempts": ATTEMPT_BINS,
        "issue.dk_tool_hint": (NULL,),
        "issue.tags.count": ("0", "1", "2", "3", "4+"),
        "history.count": tuple(str(i) for i in range(n_history + 1)),
        "history.same_issue": ("0", "1", "2", "3+"),
        "history.failed": ("0", "1", "2", "3+"),
        "system.present": ("yes", "no"),
        "system.active_workcells_bin": COUNT_BINS,
        "system.queue_depth_bin": COUNT_BINS,
        "system.hour_bucket": HOUR_BINS,
        "system.budget_remaining_bin": (NULL,),
        "system.available_toolchains": (NULL,),
    }
    for i in range(n_history):
        vocab[f"h{i}.status"] = STATUSES
        vocab[f"h{i}.duration"] = DURATION_BINS
        vocab[f"h{i}.recency"] = ("0", "1", "2", "3")
        vocab[f"h{i}.same_issue"] = ("yes", "no")
        vocab[f"h{i}.candidates"] = ("1", "2", "3", "4+", NULL)
        vocab[f"h{i}.minutes"] = ("lt15", "lt30", "lt45", "lt60", "lt120", "ge120", NULL)
    return vocab


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def _duration_bin(ms: int | None) -> str:
    if ms is None:
        return "null"
    minutes = ms / 60_000
    for limit, name in ((5, "lt5m"), (15, "lt15m"), (30, "lt30m"), (60, "lt60m"), (120, "lt120m")):
        if minutes < limit:
            return name
    return "ge120m"


def _minutes_bin(minutes: int | None) -> str:
    if minutes is None:
        return NULL
    for limit, name in ((15, "lt15"), (30, "lt30"), (45, "lt45"), (60, "lt60"), (120, "lt120")):
        if minutes < limit:
            return name
    return "ge120"


def _hour_bin(hour: int | None) -> str:
    if hour is None:
        return "null"
    return HOUR_BINS[min(5, hour // 4)]


def _health_bin(rate: float) -> str:
    return "lt50" if rate < 0.5 else "lt70" if rate < 0.7 else "lt85" if rate < 0.85 else "ge85"


def _small(count: int, top: int) -> str:
    return str(count) if count < top else f"{top}+"


class CompositionalEncoder:
    """Encodes planner_inputs into sparse ids over a fixed id space (see the module doc)."""

    def __init__(self, options: CompositionalOptions | None = None) -> None:
        self.options = options or CompositionalOptions()
        if self.options.version != ENCODER_VERSION:
            raise ValueError(
                f"encoder version {self.options.version} is not supported "
                f"(this swarm-planner encodes version {ENCODER_VERSION})"
            )
        self._closed: dict[tuple[str, str], int] = {}
        for key, values in _closed_vocabulary(self.options.n_history).items():
            for value in values:
                self._closed[(key, value)] = len(self._closed)
        self.pair_offset = len(self._closed)
        self.value_offset = self.pair_offset + self.options.pair_buckets
        self.n_features = self.value_offset + self.options.value_buckets

    @classmethod
    def from_options(cls, options: CompositionalOptions) -> CompositionalEncoder:
        return cls(options)

    def config(self) -> dict[str, Any]:
        """What a bundle stores to rebuild this exact encoder."""
        return {"name": "compositional", "options": attrs.asdict(self.options)}

    @functools.lru_cache(maxsize=1 << 16)  # noqa: B019 - encoders live as long as the process
    def _open_ids(self, key: str, value: str) -> tuple[int, int]:
        pair = self.pair_offset + _stable_int(f"{key}\x1f{value}") % self.options.pair_buckets
        shared = self.value_offset + _stable_int(f"\x1e{value}") % self.options.value_buckets
        return pair, shared

    def tokens(
        self, planner_input: PlannerInput
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(closed, open) ``(key, value)`` tokens of an input: the readable form of the features."""
        closed: list[tuple[str, str]] = []
        opened: list[tuple[str, str]] = []
        issue = planner_input.issue
        closed += [
            ("issue.dk_priority", issue.dk_priority),
            ("issue.dk_risk", issue.dk_risk),
            ("issue.dk_size", issue.dk_size),
            ("issue.dk_attempts", _small(issue.dk_attempts, 4)),
            ("issue.tags.count", _small(len(issue.tags), 4)),
        ]
        opened.append(("job_type", planner_input.job_type))
        if issue.dk_tool_hint is None:
            closed.append(("issue.dk_tool_hint", NULL))
        else:
            opened.append(("issue.dk_tool_hint", issue.dk_tool_hint))
        opened += [("issue.tag", t) for t in issue.tags]
        opened += [("issue.keyword", k) for k in issue.keywords or ()]
        defaults = planner_input.universe_defaults
        opened.append(("universe.swarm_id", defaults.swarm_id or NULL))
        opened.append(("universe.objective_id", defaults.objective_id or NULL))
        closed += self._system_tokens(planner_input, opened)
        closed += self._history_tokens(planner_input, opened)
        return closed, opened

    def _system_tokens(
        self, planner_input: PlannerInput, opened: list[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        state = planner_input.system_state
        if state is None:
            return [("system.present", "no")]
        closed = [
            ("system.present", "yes"),
            ("system.active_workcells_bin", state.active_workcells_bin or NULL),
            ("system.queue_depth_bin", state.queue_depth_bin or NULL),
            ("system.hour_bucket", _hour_bin(state.hour_bucket)),
        ]
        if state.budget_remaining_bin is None:
            closed.append(("system.budget_remaining_bin", NULL))
        else:
            opened.append(("system.budget_remaining_bin", state.budget_remaining_bin))
        if state.available_toolchains is None:
            closed.append(("system.available_toolchains", NULL))
        else:
            opened += [("system.toolchain", t) for t in state.available_toolchains]
        for name, rate in sorted((state.toolchain_health or {}).items()):
            opened.append(("system.toolchain_health", f"{name}:{_health_bin(rate)}"))
        return closed

    def _history_tokens(
        self, planner_input: PlannerInput, opened: list[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        runs = planner_input.history.last_n_similar_runs[: self.options.n_history]
        issue_id = planner_input.issue.issue_id
        query_ms = _created_ms(planner_input)
        same = sum(1 for r in runs if r.issue_id == issue_id)
        failed = sum(1 for r in runs if r.outcome.status != "success")
        closed = [
            ("history.count", str(len(runs))),
            ("history.same_issue", _small(same, 3)),
            ("history.failed", _small(failed, 3)),
        ]
        for i, run in enumerate(runs):
            act = run.action_executed
            candidates = NULL if act.max_candidates is None else _small(act.max_candidates, 4)
            age = recency_bucket(query_ms - run.started_ms) if query_ms is not None else 3
            closed += [
                (f"h{i}.status", run.outcome.status),
                (f"h{i}.duration", _duration_bin(run.runtime.duration_ms)),
                (f"h{i}.recency", str(age)),
                (f"h{i}.same_issue", "yes" if run.issue_id == issue_id else "no"),
                (f"h{i}.candidates", candidates),
                (f"h{i}.minutes", _minutes_bin(act.max_minutes)),
            ]
            opened.append((f"h{i}.swarm", act.swarm_id))
            opened.append(("history.outcome_swarm", f"{run.outcome.status}:{act.swarm_id}"))
            opened += [(f"h{i}.failure", s) for s in failure_signals(run)]
            opened += [("history.failure", s) for s in failure_signals(run)]
        return closed

    def encode(self, planner_input: PlannerInput) -> Features:
        """Sorted unique ids with their counts as weights, and the job type's validity mask."""
        closed, opened = self.tokens(planner_input)
        ids: list[int] = []
        for token in closed:
            index = self._closed.get(token)
            ids.extend(self._open_ids(*token) if index is None else (index,))
        for key, value in opened:
            ids.extend(self._open_ids(key, value))
        unique, counts = np.unique(np.asarray(ids, dtype=np.int64), return_counts=True)
        mask = planner_input.action_space.joint_mask(planner_input.job_type)
        return Features(unique, counts.astype(np.float32), mask)

    def encode_batch(self, inputs: Sequence[PlannerInput]) -> FeatureBatch:
        return FeatureBatch.stack([self.encode(i) for i in inputs])


def _created_ms(planner_input: PlannerInput) -> int | None:
    try:
        return ms_from_rfc3339(planner_input.created_at)
    except ValueError:
        return None


@hookimpl
def register_encoders(register: Register) -> None:
    register("compositional", CompositionalEncoder.from_options, options=CompositionalOptions)
