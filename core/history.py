"""Similar-run history: which past runs a planner_input shows the model.

Deterministic and debuggable: a run's score is a weighted sum of Jaccard overlaps of signals
(tags, failure signals = fail codes and ``gate:<name>`` of failing gates, keywords) plus recency,
``1 / (1 + bucket)`` with buckets <1 day, <7 days, <30 days, older. The top N by (score desc, newer
first, run_id) are returned newest first. Only runs of the same job type that started strictly
before the query time are candidates (leakage-safe).

Scorers are data (:data:`SCORERS`):

- ``field``: the kernels' current rule, 0.6·tags + 0.3·failures + 0.1·recency, with an empty query
  failure set (as in the field, so the failure term never fires) and no keywords;
- ``signals`` (default): the query's failure set is taken from the issue's own earlier attempts,
  keywords of title and description count, tags weigh less.

Cost: candidates are the runs sharing a signal with the query plus the N most recent runs (which
are exactly the best of those sharing nothing, since then only recency scores). Each signal's
postings are cut to its ``window`` most recent runs, so a query costs O(signals × window), not
O(all runs), and a build grows linearly; ``window=None`` is exact, and tests pin the windowed
index to the exact one wherever postings fit the window.

The ranking itself (merge the postings, count overlaps, score, keep the top N) is compiled
(``core/_retrieval.c``) where the install had a C compiler, else numpy (:func:`_top_numpy`);
both compute every score with the same operations in the same order, so a dataset's rows do
not depend on which one a machine has.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from swarm_planner.core.contracts import RunSummary

DAY_MS = 24 * 3600 * 1000
N_ABLATION = (0, 1, 4, 8, 16)
"""History sizes the product ablates over (PRODUCT.md, point 4)."""

DEFAULT_WINDOW = 256

_KINDS = ("tags", "failures", "keywords")


@attrs.frozen
class Scorer:
    """Weights of the retrieval score, and where the query's failure signals come from."""

    name: str
    tags: float
    failures: float
    keywords: float
    recency: float
    failures_from_attempts: bool

    def weight(self, kind: str) -> float:
        value: float = getattr(self, kind)
        return value


SCORERS: dict[str, Scorer] = {
    "field": Scorer("field", 0.6, 0.3, 0.0, 0.1, failures_from_attempts=False),
    "signals": Scorer("signals", 0.35, 0.35, 0.2, 0.1, failures_from_attempts=True),
}
DEFAULT_SCORER = "signals"


def failure_signals(run: RunSummary) -> tuple[str, ...]:
    """Fail codes and ``gate:<name>`` of every failing gate, in order, without repeats."""
    gates = [f"gate:{g.name}" for g in run.outcome.gates if not g.passed]
    return tuple(dict.fromkeys([*run.outcome.fail_codes, *gates]))


RECENCY_EDGES_MS = (DAY_MS, 7 * DAY_MS, 30 * DAY_MS)
"""A run's recency bucket is how many of these ages it has reached (0 = within a day)."""


def recency_bucket(age_ms: int) -> int:
    """0 within a day, 1 within a week, 2 within 30 days, 3 older."""
    day, week, month = RECENCY_EDGES_MS
    bucket: int = (age_ms >= day) + (age_ms >= week) + (age_ms >= month)
    return bucket


def scorer_named(name: str) -> Scorer:
    try:
        return SCORERS[name]
    except KeyError:
        raise ValueError(f"no scorer named {name!r}; scorers: {', '.join(SCORERS)}") from None


class _Grow:
    """An append-only numpy array (capacity doubles): the index grows run by run without
    rebuilding, and a reader's view of the first ``n`` entries stays valid while it grows."""

    __slots__ = ("data", "n")

    def __init__(self, dtype: Any, capacity: int = 4) -> None:
        self.data = np.empty(capacity, dtype=dtype)
        self.n = 0

    def append(self, value: Any) -> None:
        if self.n == len(self.data):
            grown = np.empty(2 * len(self.data), dtype=self.data.dtype)
            grown[: self.n] = self.data
            self.data = grown
        self.data[self.n] = value
        self.n += 1

    def view(self) -> Any:
        return self.data[: self.n]

    def nbytes(self) -> int:
        return int(self.data.nbytes)


class HistoryIndex:
    """An index over runs, answering similar-run queries; runs are added one at a time.

    Built from runs sorted by ``(started_ms, run_id)`` (what the dataset builder does), every
    query is exact for its cut-off time. A kernel adds archives as they land (:meth:`add`), in
    landing order: a run that started before the last one added (it ran longer) is indexed as
    it lands, and from then on the window of each signal keeps its most recently *landed* runs
    and queries filter by start time instead of cutting a prefix. Adding and querying may
    happen from different threads."""

    def __init__(
        self,
        runs: Sequence[RunSummary] = (),
        keywords: Sequence[Sequence[str]] | None = None,
        *,
        window: int | None = DEFAULT_WINDOW,
    ) -> None:
        keys = [(r.started_ms, r.run_id) for r in runs]
        if keys != sorted(keys):
            raise ValueError("runs must be sorted by (started_ms, run_id)")
        if keywords is not None and len(keywords) != len(runs):
            raise ValueError(f"{len(runs)} runs but {len(keywords)} keyword sets")
        if window is not None and window < 1:
            raise ValueError(f"window must be at least 1 (or None for exact), got {window}")
        self.runs: list[RunSummary] = []
        self.window = window
        self.in_order = True
        """False once a run landed that started before the last one added."""
        self._last_key: tuple[int, str] | None = None
        self._lock = threading.Lock()
        self._vocab: dict[str, int] = {}
        self._started = _Grow(np.int64, max(4, len(runs)))
        self._sizes = _Grow(np.float64, 4 * max(4, len(runs)))
        """Each run's signal counts per kind, four to a run (tags, failures, keywords, 0)."""
        self._postings: dict[tuple[str, int], _Grow] = {}
        self._by_job: dict[str, _Grow] = {}
        self._job_started: dict[str, _Grow] = {}
        self._previous_attempt = _Grow(np.int64, max(4, len(runs)))
        """Index of the same issue's run added before this one (-1: none): the issue's runs
        as a chain, 8 bytes a run rather than a list per issue."""
        self._last_attempt: dict[str, int] = {}
        for i, run in enumerate(runs):
            self._add(run, keywords[i] if keywords is not None else ())

    @property
    def started(self) -> Any:
        return self._started.view()

    def __len__(self) -> int:
        return len(self.runs)

    def add(self, run: RunSummary, keywords: Sequence[str] = ()) -> int:
        """Index one more run (an archive that just landed); its index."""
        with self._lock:
            return self._add(run, keywords)

    def _add(self, run: RunSummary, keywords: Sequence[str]) -> int:
        key = (run.started_ms, run.run_id)
        if self._last_key is not None and key < self._last_key:
            self.in_order = False
        else:
            self._last_key = key
        i = len(self.runs)
        self.runs.append(run)
        self._started.append(run.started_ms)
        job = run.job_type
        if job not in self._by_job:
            self._by_job[job] = _Grow(np.int64)
            self._job_started[job] = _Grow(np.int64)
        self._by_job[job].append(i)
        self._job_started[job].append(run.started_ms)
        issue = run.issue_id
        self._previous_attempt.append(-1 if issue is None else self._last_attempt.get(issue, -1))
        if issue is not None:
            self._last_attempt[issue] = i
        signals = {
            "tags": tuple(dict.fromkeys(run.tags or ())),
            "failures": failure_signals(run),
            "keywords": tuple(dict.fromkeys(keywords)),
        }
        for kind, tokens in signals.items():
            self._sizes.append(len(tokens))
            for text in tokens:
                posting = (job, self._token(kind, text))
                grow = self._postings.get(posting)
                if grow is None:
                    grow = self._postings[posting] = _Grow(np.int64)
                grow.append(i)
        self._sizes.append(0)  # the recent runs' slot: no overlap to count
        return i

    def nbytes(self) -> int:
        """Bytes of the index's arrays (not of the run records it returns)."""
        arrays = [self._started, self._previous_attempt, self._sizes]
        arrays += [*self._postings.values(), *self._by_job.values(), *self._job_started.values()]
        return sum(a.nbytes() for a in arrays)

    def _token(self, kind: str, text: str) -> int:
        key = f"{kind}\x1f{text}"
        token = self._vocab.get(key)
        if token is None:
            token = self._vocab[key] = len(self._vocab)
        return token

    def _known(self, kind: str, tokens: Sequence[str]) -> list[int]:
        ids = (self._vocab.get(f"{kind}\x1f{t}") for t in dict.fromkeys(tokens))
        return [i for i in ids if i is not None]

    def _attempts(self, issue_id: str | None, before_ms: int) -> list[int]:
        """Indices of the issue's own runs that started strictly before ``before_ms``."""
        if issue_id is None:
            return []
        chain = []
        i = self._last_attempt.get(issue_id, -1)
        previous, started = self._previous_attempt.data, self._started.data
        while i >= 0:
            if started[i] < before_ms:
                chain.append(i)
            i = int(previous[i])
        return sorted(chain)

    def attempts(self, issue_id: str | None, before_ms: int) -> int:
        """How many runs of the issue started strictly before ``before_ms``."""
        with self._lock:
            return len(self._attempts(issue_id, before_ms))

    def attempt_failures(self, issue_id: str | None, before_ms: int) -> tuple[str, ...]:
        """Failure signals of the issue's own runs that started strictly before ``before_ms``."""
        signals: dict[str, None] = {}
        for j in self._attempts(issue_id, before_ms):
            signals.update(dict.fromkeys(failure_signals(self.runs[j])))
        return tuple(signals)

    def similar(
        self,
        *,
        job_type: str,
        before_ms: int,
        n: int,
        scorer: Scorer,
        tags: Sequence[str] = (),
        keywords: Sequence[str] = (),
        issue_id: str | None = None,
    ) -> list[int]:
        """Indices of the top ``n`` similar runs, newest first."""
        with self._lock:
            return self._similar(job_type, before_ms, n, scorer, tags, keywords, issue_id)

    def _similar(
        self,
        job_type: str,
        before_ms: int,
        n: int,
        scorer: Scorer,
        tags: Sequence[str],
        keywords: Sequence[str],
        issue_id: str | None,
    ) -> list[int]:
        if n <= 0 or job_type not in self._by_job:
            return []
        failures = (
            self.attempt_failures(issue_id, before_ms) if scorer.failures_from_attempts else ()
        )
        query = {"tags": tags, "failures": failures, "keywords": keywords}
        # The query as posting lists tagged with their kind; a kind weighs in only when it
        # has weight, the query has signals of it and one of them is in the index.
        postings: list[Any] = []
        kinds: list[int] = []
        sizes = [1.0, 1.0, 1.0]
        weights = [0.0, 0.0, 0.0]
        for k, kind in enumerate(_KINDS):
            weight = scorer.weight(kind)
            if weight == 0.0 or not query[kind]:
                continue
            found = [
                grow
                for t in self._known(kind, query[kind])
                if (grow := self._postings.get((job_type, t))) is not None
            ]
            if found:
                sizes[k], weights[k] = float(len(dict.fromkeys(query[kind]))), weight
                postings += [grow.view() for grow in found]
                kinds += [k] * len(found)
        return TOP_SIMILAR(
            postings,
            kinds,
            self._by_job[job_type].view(),
            self._job_started[job_type].view(),
            self._sizes.view(),
            self.started,
            -1 if self.window is None else self.window,
            (sizes[0], sizes[1], sizes[2]),
            (weights[0], weights[1], weights[2]),
            scorer.recency,
            n,
            self.in_order,
            before_ms,
            RECENCY_EDGES_MS,
        )


def _top_numpy(
    postings: list[Any],
    kinds: list[int],
    by_job: npt.NDArray[np.int64],
    job_started: npt.NDArray[np.int64],
    sizes: npt.NDArray[np.float64],
    started_all: npt.NDArray[np.int64],
    window: int,
    query_sizes: tuple[float, float, float],
    weights: tuple[float, float, float],
    recency: float,
    n: int,
    in_order: bool,
    before_ms: int,
    edges: tuple[int, int, int],
) -> list[int]:
    """The ranking rule in numpy: the twin of the compiled ``_retrieval.top_similar``, used
    where that module was not built. Candidates are the runs in the query's posting lists
    (each cut to the runs that started before ``before_ms``, then to its last ``window``
    entries) and the ``n`` most recent runs of the job type; a run's score is the weighted
    Jaccard overlap per kind, summed kind by kind in order, plus ``recency / (1 + bucket)``;
    the top ``n`` by (score desc, newer, run index) are returned newest first. The same IEEE
    operations in the same order as the compiled one, so both choose the same runs."""
    if n <= 0:
        return []
    # The runs a query may see: those that started before it (a prefix of the index when
    # runs were added in start order; else all, filtered by start time when scored).
    cutoff = int(np.searchsorted(started_all, before_ms)) if in_order else started_all.size
    # The n most recent earlier runs of the job type, plus any tied with the oldest of them
    # on start time (a tie is broken by run index, which may prefer an older one).
    end = int(np.searchsorted(by_job, cutoff, side="left"))
    if end <= n:
        recent = by_job[:end]
    elif not in_order:
        recent = by_job[end - n : end]
    else:
        first = int(np.searchsorted(job_started[:end], job_started[end - n], side="left"))
        recent = by_job[first:end]
    # One sort over every posting entry, each tagged with its kind (``run * 4 + kind``):
    # runs in order, and for each run how many postings of each kind name it (its overlap
    # with the query); the most recent runs join as kind 3.
    keyed: list[Any] = [recent * 4 + 3]
    for array, k in zip(postings, kinds, strict=True):
        stop = int(np.searchsorted(array, cutoff, side="left"))
        keyed.append(array[(0 if window < 0 else max(0, stop - window)) : stop] * 4 + k)
    # stable: timsort merges the already sorted postings (and numpy 2.4's default sort is
    # several times slower on this machine's CPUs)
    keys = np.sort(np.concatenate(keyed), kind="stable")
    if keys.size == 0:
        return []
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    counts = np.diff(np.append(starts, keys.size))
    distinct = keys[starts]
    runs = distinct >> 2
    new_run = np.concatenate(([True], runs[1:] != runs[:-1]))
    candidates = runs[new_run]
    inter = np.zeros((candidates.size, 4), dtype=np.float64)
    inter[np.cumsum(new_run) - 1, distinct & 3] = counts
    if not in_order:
        keep = started_all[candidates] < before_ms
        candidates, inter = candidates[keep], inter[keep]
        if candidates.size == 0:
            return []
    run_sizes = sizes.reshape(-1, 4)[candidates]
    score = np.zeros(candidates.size, dtype=np.float64)
    for k in range(3):
        if weights[k] != 0.0:
            jaccard = inter[:, k] / ((query_sizes[k] + run_sizes[:, k]) - inter[:, k])
            score = score + jaccard * weights[k]
    started = started_all[candidates]
    bucket = np.searchsorted(np.asarray(edges, dtype=np.int64), before_ms - started, side="right")
    score = score + recency / (1.0 + bucket)
    if candidates.size > 4 * n:
        # Only runs scoring at least the n-th best can be chosen: order those alone.
        kth = np.partition(score, candidates.size - n)[candidates.size - n]
        top = score >= kth
        candidates, started, score = candidates[top], started[top], score[top]
    order = np.lexsort((candidates, -started, -score))[:n]
    chosen = candidates[order]
    newest_first = np.lexsort((chosen, -started_all[chosen]))
    return [int(i) for i in chosen[newest_first]]


Ranker = Callable[..., list[int]]

_top_compiled: Ranker | None
try:
    from swarm_planner.core._retrieval import top_similar as _top_compiled
except ImportError:  # built without a C compiler: the numpy twin, same answers, slower
    _top_compiled = None

TOP_SIMILAR: Ranker = _top_numpy if _top_compiled is None else _top_compiled
"""The ranking every query goes through: compiled when the extension was built."""
RETRIEVAL = "numpy" if _top_compiled is None else "compiled"
"""Which one this installation runs (in the decision service's ``info``, the sidecar's too)."""
