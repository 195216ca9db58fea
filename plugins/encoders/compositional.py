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

import hashlib
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from swarm_planner import hookimpl
from swarm_planner.core.contracts import (
    PRIORITIES,
    RISKS,
    SIZES,
    STATUSES,
    PlannerInput,
    RunSummary,
)
from swarm_planner.core.history import failure_signals, recency_bucket
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.jsonconv import json_field, validator
from swarm_planner.core.protocols import FeatureBatch, Features
from swarm_planner.core.recording import ms_from_rfc3339

ENCODER_VERSION = 1
Token = tuple[str, str]

ATTEMPT_BINS = ("0", "1", "2", "3", "4+")
DURATION_BINS = ("lt5m", "lt15m", "lt30m", "lt60m", "lt120m", "ge120m", "null")
COUNT_BINS = ("0", "1_2", "3_5", "6_plus", "null")
HOUR_BINS = ("night", "morning", "midday", "afternoon", "evening", "late", "null")
HEALTH_BINS = ("lt50", "lt70", "lt85", "ge85")
NULL = "null"

_RUN_MEMO_SIZE = 65_536
"""History-run parts remembered (cleared when full, so memory stays bounded)."""

_OPEN_CACHE_PER_KEY = 50_000
"""Memoised open values per key; beyond it values are hashed each time (bounded memory)."""

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


class _Closed(dict[str, Any]):
    """A closed key's value → output table; a value outside the vocabulary (a run recorded
    with 0 candidates, say) falls back to the open-set output, never to an error."""

    def __init__(self, key: str, items: dict[str, Any], fallback: Any) -> None:
        super().__init__(items)
        self.key = key
        self.fallback = fallback

    def __missing__(self, value: str) -> Any:
        return self.fallback(self.key, value)[0]


@attrs.frozen
class _Tables:
    """What one walk over an input emits: ids (the fast path) or readable tokens (debugging).

    ``closed[key][value]`` and the per-slot tables give a closed token's output; ``open(key,
    value)`` gives an open token's outputs. Encoding and :meth:`CompositionalEncoder.tokens` walk
    the input with the same code and different tables, so they cannot drift apart.
    """

    closed: dict[str, dict[str, Any]]
    slots: list[dict[str, dict[str, Any]]]
    slot_keys: list[tuple[str, str]]
    open: Any


class CompositionalEncoder:
    """Encodes planner_inputs into sparse ids over a fixed id space (see the module doc)."""

    def __init__(self, options: CompositionalOptions | None = None) -> None:
        self.options = options or CompositionalOptions()
        if self.options.version != ENCODER_VERSION:
            raise ValueError(
                f"encoder version {self.options.version} is not supported "
                f"(this swarm-planner encodes version {ENCODER_VERSION})"
            )
        vocabulary = _closed_vocabulary(self.options.n_history)
        closed_ids: dict[str, dict[str, Any]] = {}
        closed_tokens: dict[str, dict[str, Any]] = {}
        n = 0
        for key, values in vocabulary.items():
            closed_ids[key] = _Closed(key, {v: n + i for i, v in enumerate(values)}, self._open_ids)
            closed_tokens[key] = _Closed(key, {v: (key, v) for v in values}, _token)
            n += len(values)
        self.pair_offset = n
        self.value_offset = self.pair_offset + self.options.pair_buckets
        self.n_features = self.value_offset + self.options.value_buckets
        self._open_cache: dict[str, dict[str, tuple[int, int]]] = {}
        self._run_memo: dict[tuple[str, int, int], tuple[int, ...]] = {}
        self._ones = np.ones(512, dtype=np.float32)
        self._ones.setflags(write=False)
        fields = ("status", "duration", "recency", "same_issue", "candidates", "minutes")
        slot_keys = [(f"h{i}.swarm", f"h{i}.failure") for i in range(self.options.n_history)]
        self._ids = _Tables(
            closed_ids,
            [{f: closed_ids[f"h{i}.{f}"] for f in fields} for i in range(self.options.n_history)],
            slot_keys,
            self._open_ids,
        )
        self._tokens = _Tables(
            closed_tokens,
            [
                {f: closed_tokens[f"h{i}.{f}"] for f in fields}
                for i in range(self.options.n_history)
            ],
            slot_keys,
            _token,
        )

    @classmethod
    def from_options(cls, options: CompositionalOptions) -> CompositionalEncoder:
        return cls(options)

    def config(self) -> dict[str, Any]:
        """What a bundle stores to rebuild this exact encoder."""
        return {"name": "compositional", "options": attrs.asdict(self.options)}

    def _open_ids(self, key: str, value: str) -> tuple[int, int]:
        """The hashed pair id and shared value id of an open token (memoised per key)."""
        bucket = self._open_cache.get(key)
        if bucket is None:
            bucket = self._open_cache[key] = {}
        ids = bucket.get(value)
        if ids is None:
            pair = self.pair_offset + _stable_int(f"{key}\x1f{value}") % self.options.pair_buckets
            shared = self.value_offset + _stable_int(f"\x1e{value}") % self.options.value_buckets
            ids = (pair, shared)
            if len(bucket) < _OPEN_CACHE_PER_KEY:
                bucket[value] = ids
        return ids

    def tokens(self, planner_input: PlannerInput) -> list[Token]:
        """The ``(key, value)`` tokens of an input: the readable form of its features."""
        out: list[Token] = self._walk(planner_input, self._tokens)
        return out

    def _walk(self, planner_input: PlannerInput, t: _Tables) -> list[Any]:
        out: list[Any] = []
        add, extend, closed, open_ = out.append, out.extend, t.closed, t.open
        issue = planner_input.issue
        add(closed["issue.dk_priority"][issue.dk_priority])
        add(closed["issue.dk_risk"][issue.dk_risk])
        add(closed["issue.dk_size"][issue.dk_size])
        add(closed["issue.dk_attempts"][_small(issue.dk_attempts, 4)])
        add(closed["issue.tags.count"][_small(len(issue.tags), 4)])
        extend(open_("job_type", planner_input.job_type))
        if issue.dk_tool_hint is None:
            add(closed["issue.dk_tool_hint"][NULL])
        else:
            extend(open_("issue.dk_tool_hint", issue.dk_tool_hint))
        for tag in issue.tags:
            extend(open_("issue.tag", tag))
        for keyword in issue.keywords or ():
            extend(open_("issue.keyword", keyword))
        defaults = planner_input.universe_defaults
        extend(open_("universe.swarm_id", defaults.swarm_id or NULL))
        extend(open_("universe.objective_id", defaults.objective_id or NULL))

        state = planner_input.system_state
        if state is None:
            add(closed["system.present"]["no"])
        else:
            add(closed["system.present"]["yes"])
            add(closed["system.active_workcells_bin"][state.active_workcells_bin or NULL])
            add(closed["system.queue_depth_bin"][state.queue_depth_bin or NULL])
            add(closed["system.hour_bucket"][_hour_bin(state.hour_bucket)])
            if state.budget_remaining_bin is None:
                add(closed["system.budget_remaining_bin"][NULL])
            else:
                extend(open_("system.budget_remaining_bin", state.budget_remaining_bin))
            if state.available_toolchains is None:
                add(closed["system.available_toolchains"][NULL])
            else:
                for toolchain in state.available_toolchains:
                    extend(open_("system.toolchain", toolchain))
            for name, rate in sorted((state.toolchain_health or {}).items()):
                extend(open_("system.toolchain_health", f"{name}:{_health_bin(rate)}"))

        runs = planner_input.history.last_n_similar_runs[: self.options.n_history]
        issue_id = issue.issue_id
        query_ms = _created_ms(planner_input)
        same = failed = 0
        memo = self._run_memo if t is self._ids else None
        for i, run in enumerate(runs):
            slot = t.slots[i]
            status = run.outcome.status
            same += run.issue_id == issue_id
            failed += status != "success"
            age = recency_bucket(query_ms - run.started_ms) if query_ms is not None else 3
            add(slot["recency"][str(age)])
            add(slot["same_issue"]["yes" if run.issue_id == issue_id else "no"])
            key = (run.run_id, run.started_ms, i)
            cached = memo.get(key) if memo is not None else None
            if cached is None:
                cached = self._run_part(run, slot, t.slot_keys[i], open_)
                if memo is not None:
                    if len(memo) >= _RUN_MEMO_SIZE:
                        memo.clear()
                    memo[key] = cached
            extend(cached)
        add(closed["history.count"][str(len(runs))])
        add(closed["history.same_issue"][_small(same, 3)])
        add(closed["history.failed"][_small(failed, 3)])
        return out

    @staticmethod
    def _run_part(
        run: RunSummary, slot: dict[str, dict[str, Any]], keys: tuple[str, str], open_: Any
    ) -> tuple[Any, ...]:
        """A history run's outputs that do not depend on the query (memoised per run and slot:
        the same past runs are retrieved for many decisions)."""
        act = run.action_executed
        status = run.outcome.status
        candidates = NULL if act.max_candidates is None else _small(act.max_candidates, 4)
        out = [
            slot["status"][status],
            slot["duration"][_duration_bin(run.runtime.duration_ms)],
            slot["candidates"][candidates],
            slot["minutes"][_minutes_bin(act.max_minutes)],
            *open_(keys[0], act.swarm_id),
            *open_("history.outcome_swarm", f"{status}:{act.swarm_id}"),
        ]
        for signal in failure_signals(run):
            out += open_(keys[1], signal)
            out += open_("history.failure", signal)
        return tuple(out)

    def encode(
        self, planner_input: PlannerInput, *, mask: npt.NDArray[np.bool_] | None = None
    ) -> Features:
        """Sorted ids (a repeated token repeats its id) with weight 1 each, and the job type's
        validity mask. Sorting makes sets order-invariant and the float sum reproducible; not
        merging repeats keeps the hot path to two numpy calls (the bag's sum is the same)."""
        walked = self._walk(planner_input, self._ids)
        ids = np.fromiter(walked, dtype=np.int64, count=len(walked))
        ids.sort()
        if len(ids) > len(self._ones):
            self._ones = np.ones(len(ids), dtype=np.float32)
            self._ones.setflags(write=False)
        if mask is None:  # a caller that checked the space already passes the job type's mask
            mask = planner_input.action_space.job_mask(planner_input.job_type)
        return Features(ids, self._ones[: len(ids)], mask)

    def encode_batch(self, inputs: Sequence[PlannerInput]) -> FeatureBatch:
        return FeatureBatch.stack([self.encode(i) for i in inputs])


def _token(key: str, value: str) -> tuple[Token]:
    return ((key, value),)


def _created_ms(planner_input: PlannerInput) -> int | None:
    try:
        return ms_from_rfc3339(planner_input.created_at)
    except ValueError:
        return None


@hookimpl
def register_encoders(register: Register) -> None:
    register("compositional", CompositionalEncoder.from_options, options=CompositionalOptions)
