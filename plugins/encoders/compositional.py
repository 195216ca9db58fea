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
import itertools
import threading
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
from swarm_planner.core.history import RECENCY_EDGES_MS, failure_signals
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.jsonconv import at_most, json_field, non_negative, positive
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

# Every memo is bounded: full, it is cleared and refills with what is current (a kernel process
# lives for weeks; benchmarks/memory_stream.py streams inputs that never repeat). The sizes hold
# a deployment's working set many times over.
_RUNS_MEMO_SIZE = 16_384
"""History runs remembered (each maps to its signature's number)."""
_SIGNATURE_MEMO_SIZE = 4_096
"""Run signatures whose per-slot outputs are remembered (up to n_history arrays each)."""
_GROUP_MEMO_SIZE = 8_192
"""Value groups (issue facts, tag sets, system states) remembered."""
_OPEN_CACHE_SIZE = 32_768
"""Open tokens whose hashed ids are remembered (and toolchain health pairs)."""
_TIME_MEMO_SIZE = 4_096
"""Parsed ``created_at`` texts remembered."""


MAX_HISTORY = 256
"""History slots an encoder may have (each slot is a block of closed ids)."""
MAX_BUCKETS = 1 << 22
"""Hashed buckets per region (the embedding has a row per id)."""


@attrs.frozen
class CompositionalOptions:
    """The encoder's config; stored in every bundle and used again at inference."""

    n_history: int = json_field(default=16, validator=[non_negative, at_most(MAX_HISTORY)])
    pair_buckets: int = json_field(default=4096, validator=[positive, at_most(MAX_BUCKETS)])
    value_buckets: int = json_field(default=2048, validator=[positive, at_most(MAX_BUCKETS)])
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

    ``closed[key][value]`` gives a closed token's output, ``open(key, value)`` an open token's
    outputs (``seen`` remembers them: the walk reads it first, skipping a call). The per-slot
    tables are indexed the way the walk computes them (recency by bucket number, same-issue by
    a bool). ``groups`` remembers the outputs of value groups (issue facts, tag sets, system
    bins) and ``health`` toolchain health by (name, rate); both are None for the token tables,
    which compute every walk. Encoding and :meth:`CompositionalEncoder.tokens` walk the input
    with the same code and different tables, so they cannot drift apart.
    """

    closed: dict[str, dict[str, Any]]
    slots: list[dict[str, dict[str, Any]]]
    slot_recency: list[tuple[Any, ...]]
    slot_same: list[tuple[Any, Any]]
    slot_keys: list[tuple[str, str]]
    open: Any
    seen: dict[tuple[str, str], tuple[Any, ...]]
    groups: dict[tuple[Any, ...], tuple[Any, ...]] | None
    health: dict[tuple[str, float], tuple[Any, ...]] | None


_NOTHING: dict[Any, Any] = {}


def _facts_part(key: tuple[Any, ...], t: _Tables) -> tuple[Any, ...]:
    """An issue's scalar facts and the universe's defaults."""
    _, priority, risk, size, attempts, n_tags, hint, job_type, swarm_id, objective_id = key
    closed, open_ = t.closed, t.open
    out = [
        closed["issue.dk_priority"][priority],
        closed["issue.dk_risk"][risk],
        closed["issue.dk_size"][size],
        closed["issue.dk_attempts"][_small(attempts, 4)],
        closed["issue.tags.count"][_small(n_tags, 4)],
        *open_("job_type", job_type),
    ]
    if hint is None:
        out.append(closed["issue.dk_tool_hint"][NULL])
    else:
        out += open_("issue.dk_tool_hint", hint)
    out += open_("universe.swarm_id", swarm_id or NULL)
    out += open_("universe.objective_id", objective_id or NULL)
    return tuple(out)


def _tags_part(key: tuple[Any, ...], t: _Tables) -> tuple[Any, ...]:
    """An issue's tags."""
    out: list[Any] = []
    for tag in key[1]:
        out += t.open("issue.tag", tag)
    return tuple(out)


def _system_part(key: tuple[Any, ...], t: _Tables) -> tuple[Any, ...]:
    """The system state's bins and toolchains (its toolchain health is walked per toolchain)."""
    _, workcells, queue, hour, budget, toolchains = key
    closed, open_ = t.closed, t.open
    out = [
        closed["system.present"]["yes"],
        closed["system.active_workcells_bin"][workcells or NULL],
        closed["system.queue_depth_bin"][queue or NULL],
        closed["system.hour_bucket"][_hour_bin(hour)],
    ]
    if budget is None:
        out.append(closed["system.budget_remaining_bin"][NULL])
    else:
        out += open_("system.budget_remaining_bin", budget)
    if toolchains is None:
        out.append(closed["system.available_toolchains"][NULL])
    else:
        for toolchain in toolchains:
            out += open_("system.toolchain", toolchain)
    return tuple(out)


_Signature = tuple[str, str, str, str, str, tuple[str, ...]]


def _signature(run: RunSummary) -> _Signature:
    """What a history run contributes to the features, whatever the query: status, duration
    bin, candidates, minutes bin, swarm and failure signals."""
    act = run.action_executed
    candidates = NULL if act.max_candidates is None else _small(act.max_candidates, 4)
    return (
        run.outcome.status,
        _duration_bin(run.runtime.duration_ms),
        candidates,
        _minutes_bin(act.max_minutes),
        act.swarm_id,
        failure_signals(run),
    )


class _RunMemo:
    """History runs → their outputs per slot, in two bounded levels.

    Why two: retrieval returns the same recent runs for many decisions, but in different slots
    as newer runs arrive, so a memo keyed by run *and* slot misses on more than half the runs of a
    time-ordered stream. Here a run is reduced once (keyed by its outcome key) to its
    signature's number, and each signature's outputs are built once per slot; many runs share a
    signature, so even a run seen for the first time usually finds its outputs built.

    Threads: numbers are handed out under a lock, and a full memo is never cleared in place (a
    decision in another thread may hold one of its numbers): :meth:`learn` returns a fresh memo
    instead, which the encoder installs, and each walk keeps the memo it started with.
    """

    def __init__(self, n_slots: int) -> None:
        self.n_slots = n_slots
        self.runs: dict[tuple[Any, ...] | None, tuple[int, bool]] = {}
        self.numbers: dict[_Signature, int] = {}
        self.signature_of: list[_Signature] = []
        self.parts: list[list[npt.NDArray[np.int64] | None]] = []
        self.lock = threading.Lock()

    def learn(self, run: RunSummary) -> tuple[tuple[int, bool], _RunMemo]:
        """Remember a run: its signature's number and whether it failed, and the memo that
        holds them (this one, or a fresh one when this one is full)."""
        signature = _signature(run)
        with self.lock:
            number = self.numbers.get(signature)
            if number is None:
                if len(self.signature_of) >= _SIGNATURE_MEMO_SIZE:
                    fresh = _RunMemo(self.n_slots)
                    return fresh.learn(run)[0], fresh
                number = self.numbers[signature] = len(self.signature_of)
                self.signature_of.append(signature)
                self.parts.append([None] * self.n_slots)
            if len(self.runs) >= _RUNS_MEMO_SIZE:
                self.runs = {}
            known = self.runs[run.outcome_key] = (number, signature[0] != "success")
        return known, self


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
        self._open_cache: dict[tuple[str, str], tuple[int, int]] = {}
        self._created_ms: dict[str, int | None] = {}
        self._run_memo = _RunMemo(self.options.n_history)
        self._ones = np.ones(512, dtype=np.float32)
        self._ones.setflags(write=False)
        self._ids = self._tables(closed_ids, self._open_ids, self._open_cache, {}, {})
        self._tokens = self._tables(closed_tokens, _token, {}, None, None)

    def _tables(
        self, closed: dict[str, dict[str, Any]], open_: Any, seen: Any, groups: Any, health: Any
    ) -> _Tables:
        fields = ("status", "duration", "candidates", "minutes")
        slots = range(self.options.n_history)
        return _Tables(
            closed,
            [{f: closed[f"h{i}.{f}"] for f in fields} for i in slots],
            [tuple(closed[f"h{i}.recency"][str(b)] for b in range(4)) for i in slots],
            [(closed[f"h{i}.same_issue"]["no"], closed[f"h{i}.same_issue"]["yes"]) for i in slots],
            [(f"h{i}.swarm", f"h{i}.failure") for i in slots],
            open_,
            seen,
            groups,
            health,
        )

    def forget_runs(self) -> None:
        """Start the run memo afresh (a benchmark's cold start; memory is bounded without it)."""
        self._run_memo = _RunMemo(self.options.n_history)

    @classmethod
    def from_options(cls, options: CompositionalOptions) -> CompositionalEncoder:
        return cls(options)

    def config(self) -> dict[str, Any]:
        """What a bundle stores to rebuild this exact encoder."""
        return {"name": "compositional", "options": attrs.asdict(self.options)}

    def _open_ids(self, key: str, value: str) -> tuple[int, int]:
        """The hashed pair id and shared value id of an open token (memoised, bounded)."""
        ids = self._open_cache.get((key, value))
        if ids is None:
            pair = self.pair_offset + _stable_int(f"{key}\x1f{value}") % self.options.pair_buckets
            shared = self.value_offset + _stable_int(f"\x1e{value}") % self.options.value_buckets
            ids = (pair, shared)
            if len(self._open_cache) >= _OPEN_CACHE_SIZE:
                self._open_cache.clear()
            self._open_cache[(key, value)] = ids
        return ids

    def tokens(self, planner_input: PlannerInput) -> list[Token]:
        """The ``(key, value)`` tokens of an input: the readable form of its features (a bag:
        the input's own tokens first, then each history run's query-independent ones)."""
        out, parts = self._walk(planner_input, self._tokens)
        return [*out, *itertools.chain.from_iterable(parts)]

    def _query_ms(self, created_at: str) -> int | None:
        """The decision's time in ms (memoised: parsing RFC3339 costs more than the rest of an
        issue's features, and a batch or a kernel tick shares one ``created_at``)."""
        ms = self._created_ms.get(created_at, -1)
        if ms == -1:
            try:
                ms = ms_from_rfc3339(created_at)
            except ValueError:
                ms = None
            if len(self._created_ms) >= _TIME_MEMO_SIZE:
                self._created_ms.clear()
            self._created_ms[created_at] = ms
        return ms

    def _walk(self, planner_input: PlannerInput, t: _Tables) -> tuple[list[Any], list[Any]]:
        """Every output of an input, unsorted: the input's own outputs, and the query-independent
        part of each history run (memoised by run and slot as a read-only id array, since the same
        past runs are retrieved for many decisions; a tuple of tokens when not encoding). The hot
        path of every decision: lookups are bound to locals and open tokens are read from the
        memo before calling."""
        out: list[Any] = []
        parts: list[Any] = []
        add, extend, closed, open_, seen = out.append, out.extend, t.closed, t.open, t.seen.get
        remembered = t.groups.get if t.groups is not None else _NOTHING.get
        issue = planner_input.issue
        defaults = planner_input.universe_defaults
        facts = (
            "facts",
            issue.dk_priority,
            issue.dk_risk,
            issue.dk_size,
            issue.dk_attempts,
            len(issue.tags),
            issue.dk_tool_hint,
            planner_input.job_type,
            defaults.swarm_id,
            defaults.objective_id,
        )
        extend(remembered(facts) or self._remember(t, facts, _facts_part))
        # tuple(): a record built in code may hold a list (unhashable); a tuple passes through.
        tags = ("tags", tuple(issue.tags))
        extend(remembered(tags) or self._remember(t, tags, _tags_part))
        for keyword in issue.keywords or ():
            extend(seen(("issue.keyword", keyword)) or open_("issue.keyword", keyword))

        state = planner_input.system_state
        if state is None:
            add(closed["system.present"]["no"])
        else:
            system = (
                "system",
                state.active_workcells_bin,
                state.queue_depth_bin,
                state.hour_bucket,
                state.budget_remaining_bin,
                None if state.available_toolchains is None else tuple(state.available_toolchains),
            )
            extend(remembered(system) or self._remember(t, system, _system_part))
            if state.toolchain_health:
                health = t.health
                for name_rate in sorted(state.toolchain_health.items()):
                    ids = health.get(name_rate) if health is not None else None
                    if ids is None:
                        name, rate = name_rate
                        ids = open_("system.toolchain_health", f"{name}:{_health_bin(rate)}")
                        if health is not None:
                            if len(health) >= _OPEN_CACHE_SIZE:
                                health.clear()
                            health[name_rate] = ids
                    extend(ids)

        runs = planner_input.history.last_n_similar_runs[: self.options.n_history]
        issue_id = issue.issue_id
        query_ms = self._query_ms(planner_input.created_at)
        # recency_bucket inlined (a call per run shows on every decision); a test pins the two
        # together at every edge.
        day, week, month = RECENCY_EDGES_MS
        same = failed = 0
        memo = self._run_memo if t is self._ids else None  # this walk keeps this memo
        slot_recency, slot_same = t.slot_recency, t.slot_same
        for i, run in enumerate(runs):
            started = run.started_ms
            if memo is None:
                signature = _signature(run)
                parts.append(self._run_part(signature, t.slots[i], t.slot_keys[i], open_))
                failed += signature[0] != "success"
            else:
                # Keyed by what the run's outputs depend on (RunSummary.outcome_key), never its
                # id: a run seen again with a new outcome is another key.
                known = memo.runs.get(run.outcome_key)
                if known is None:
                    known, learned = memo.learn(run)
                    if learned is not memo:  # the memo was full: a fresh one from here on
                        memo = self._run_memo = learned
                number, bad = known
                row = memo.parts[number]
                part = row[i]
                if part is None:
                    signature = memo.signature_of[number]
                    part = np.array(
                        self._run_part(signature, t.slots[i], t.slot_keys[i], open_),
                        dtype=np.int64,
                    )
                    part.setflags(write=False)
                    row[i] = part
                parts.append(part)
                failed += bad
            is_same = run.issue_id == issue_id
            same += is_same
            if query_ms is None:
                add(slot_recency[i][3])
            else:
                age = query_ms - started
                add(slot_recency[i][(age >= day) + (age >= week) + (age >= month)])
            add(slot_same[i][is_same])
        add(closed["history.count"][str(len(runs))])
        add(closed["history.same_issue"][_small(same, 3)])
        add(closed["history.failed"][_small(failed, 3)])
        return out, parts

    @staticmethod
    def _remember(t: _Tables, key: tuple[Any, ...], build: Any) -> tuple[Any, ...]:
        """Outputs of a group of an input's values, built once per distinct values (bounded):
        the same facts, tag sets and system states recur across decisions."""
        out: tuple[Any, ...] = build(key, t)
        if t.groups is not None:
            if len(t.groups) >= _GROUP_MEMO_SIZE:
                t.groups.clear()
            t.groups[key] = out
        return out

    @staticmethod
    def _run_part(
        signature: _Signature, slot: dict[str, dict[str, Any]], keys: tuple[str, str], open_: Any
    ) -> tuple[Any, ...]:
        """A history run's outputs in a slot: everything about the run that does not depend on
        the query (see :class:`_RunMemo`)."""
        status, duration, candidates, minutes, swarm_id, signals = signature
        out = [
            slot["status"][status],
            slot["duration"][duration],
            slot["candidates"][candidates],
            slot["minutes"][minutes],
            *open_(keys[0], swarm_id),
            *open_("history.outcome_swarm", f"{status}:{swarm_id}"),
        ]
        for signal in signals:
            out += open_(keys[1], signal)
            out += open_("history.failure", signal)
        return tuple(out)

    def encode(
        self, planner_input: PlannerInput, *, mask: npt.NDArray[np.bool_] | None = None
    ) -> Features:
        """Sorted ids (a repeated token repeats its id) with weight 1 each, and the job type's
        validity mask. Sorting makes sets order-invariant and the float sum reproducible. Repeats
        are kept: merging them costs one decision more than the shorter gather saves (a batch
        merges them, see :meth:`encode_batch`)."""
        out, parts = self._walk(planner_input, self._ids)
        ids = np.concatenate((np.fromiter(out, dtype=np.int64, count=len(out)), *parts))
        ids.sort()
        ones = self._ones  # read once: another thread may grow it meanwhile
        if len(ids) > len(ones):
            ones = np.ones(2 * len(ids), dtype=np.float32)
            ones.setflags(write=False)
            self._ones = ones
        if mask is None:  # a caller that checked the space already passes the job type's mask
            mask = planner_input.action_space.job_mask(planner_input.job_type)
        return Features(ids, ones[: len(ids)], mask)

    def encode_batch(
        self,
        inputs: Sequence[PlannerInput],
        *,
        masks: npt.NDArray[np.bool_] | None = None,
    ) -> FeatureBatch:
        """The features of :meth:`encode` per input with repeats merged (each distinct id once,
        weighted by its count: the same bag, a third shorter to gather), built for the whole batch
        at once: every id keyed by ``row * n_features + id``, so that one sort orders the rows and
        the ids inside each row, and one pass merges repeats."""
        if not inputs:
            raise ValueError("cannot encode zero inputs")
        outs, parts = [], []
        for planner_input in inputs:
            out, run_parts = self._walk(planner_input, self._ids)
            outs.append(out)
            parts.append(run_parts)
        rows = np.arange(len(inputs), dtype=np.int64) * self.n_features
        own = np.fromiter(
            itertools.chain.from_iterable(outs),
            dtype=np.int64,
            count=sum(map(len, outs)),
        )
        own += np.repeat(rows, [len(out) for out in outs])
        flat_parts = list(itertools.chain.from_iterable(parts))
        if flat_parts:
            runs = np.concatenate(flat_parts)
            runs += np.repeat(
                np.repeat(rows, [len(p) for p in parts]), [len(p) for p in flat_parts]
            )
            keyed = np.concatenate((own, runs))
        else:
            keyed = own
        keyed.sort()
        keyed, counts = _merge_repeats(keyed)
        # Row r's keys are [r * n_features, (r + 1) * n_features): its bounds by binary search.
        offsets = np.searchsorted(
            keyed, np.arange(len(inputs) + 1, dtype=np.int64) * self.n_features
        )
        ids = keyed - np.repeat(rows, np.diff(offsets))
        if masks is None:
            masks = np.stack([x.action_space.job_mask(x.job_type) for x in inputs])
        return FeatureBatch(ids, offsets, counts, masks)


def _merge_repeats(
    ids: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Sorted ids → the distinct ids and how often each occurs (as float weights)."""
    first = np.empty(len(ids), dtype=bool)
    first[:1] = True
    np.not_equal(ids[1:], ids[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(starts, append=len(ids)).astype(np.float32)
    return ids[starts], counts


def _token(key: str, value: str) -> tuple[Token]:
    return ((key, value),)


@hookimpl
def register_encoders(register: Register) -> None:
    register("compositional", CompositionalEncoder.from_options, options=CompositionalOptions)
