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
"""

from __future__ import annotations

from collections.abc import Sequence
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


class HistoryIndex:
    """An index over runs sorted by ``(started_ms, run_id)``, answering similar-run queries."""

    def __init__(
        self,
        runs: Sequence[RunSummary],
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
        self.runs = tuple(runs)
        self.window = window
        self.started = np.array([r.started_ms for r in runs], dtype=np.int64)
        self._vocab: dict[str, int] = {}
        self._sets: dict[str, list[tuple[int, ...]]] = {k: [] for k in _KINDS}
        postings: dict[tuple[str, int], list[int]] = {}
        by_job: dict[str, list[int]] = {}
        by_issue: dict[str, list[int]] = {}
        for i, run in enumerate(runs):
            by_job.setdefault(run.job_type, []).append(i)
            if run.issue_id is not None:
                by_issue.setdefault(run.issue_id, []).append(i)
            signals = {
                "tags": tuple(dict.fromkeys(run.tags or ())),
                "failures": failure_signals(run),
                "keywords": tuple(dict.fromkeys(keywords[i])) if keywords is not None else (),
            }
            for kind, tokens in signals.items():
                ids = tuple(self._token(kind, t) for t in tokens)
                self._sets[kind].append(ids)
                for token in ids:
                    postings.setdefault((run.job_type, token), []).append(i)
        self._postings = {k: np.array(v, dtype=np.int64) for k, v in postings.items()}
        self._by_job = {k: np.array(v, dtype=np.int64) for k, v in by_job.items()}
        self._job_started = {k: self.started[v] for k, v in self._by_job.items()}
        self._by_issue = {k: np.array(v, dtype=np.int64) for k, v in by_issue.items()}
        self._sizes = {
            k: np.array([len(s) for s in self._sets[k]], dtype=np.float64) for k in _KINDS
        }

    def _token(self, kind: str, text: str) -> int:
        key = f"{kind}\x1f{text}"
        token = self._vocab.get(key)
        if token is None:
            token = self._vocab[key] = len(self._vocab)
        return token

    def _known(self, kind: str, tokens: Sequence[str]) -> list[int]:
        ids = (self._vocab.get(f"{kind}\x1f{t}") for t in dict.fromkeys(tokens))
        return [i for i in ids if i is not None]

    def _prefix(self, array: npt.NDArray[np.int64], cutoff: int, window: int | None) -> Any:
        end = int(np.searchsorted(array, cutoff, side="left"))
        start = 0 if window is None else max(0, end - window)
        return array[start:end]

    def _recent(self, job_type: str, cutoff: int, n: int) -> Any:
        """The ``n`` most recent earlier runs of the job type, plus any tied with the oldest of
        them on start time (a tie is broken by run_id, which may prefer an older index)."""
        runs = self._by_job[job_type]
        end = int(np.searchsorted(runs, cutoff, side="left"))
        if end <= n:
            return runs[:end]
        started = self._job_started[job_type]
        start = int(np.searchsorted(started[:end], started[end - n], side="left"))
        return runs[start:end]

    def attempt_failures(self, issue_id: str | None, before_ms: int) -> tuple[str, ...]:
        """Failure signals of the issue's own runs that started strictly before ``before_ms``."""
        if issue_id is None or issue_id not in self._by_issue:
            return ()
        cutoff = int(np.searchsorted(self.started, before_ms, side="left"))
        earlier = self._prefix(self._by_issue[issue_id], cutoff, None)
        signals: dict[str, None] = {}
        for i in earlier:
            signals.update(dict.fromkeys(failure_signals(self.runs[int(i)])))
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
        if n <= 0 or job_type not in self._by_job:
            return []
        cutoff = int(np.searchsorted(self.started, before_ms, side="left"))
        failures = (
            self.attempt_failures(issue_id, before_ms) if scorer.failures_from_attempts else ()
        )
        query = {"tags": tags, "failures": failures, "keywords": keywords}
        recent = self._recent(job_type, cutoff, n)
        per_kind: dict[str, tuple[Any, Any, int]] = {}
        pieces = [recent]
        for kind in _KINDS:
            if scorer.weight(kind) == 0.0:
                continue
            known = self._known(kind, query[kind])
            size = len(dict.fromkeys(query[kind]))
            arrays = [
                self._prefix(self._postings[(job_type, t)], cutoff, self.window)
                for t in known
                if (job_type, t) in self._postings
            ]
            if not arrays or size == 0:
                continue
            ids, counts = np.unique(np.concatenate(arrays), return_counts=True)
            per_kind[kind] = (ids, counts, size)
            pieces.append(ids)
        candidates = np.unique(np.concatenate(pieces))
        if candidates.size == 0:
            return []
        score = np.zeros(candidates.size, dtype=np.float64)
        for kind, (ids, counts, size) in per_kind.items():
            inter = np.zeros(candidates.size, dtype=np.float64)
            inter[np.searchsorted(candidates, ids)] = counts
            union = size + self._sizes[kind][candidates] - inter
            jaccard = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
            score += scorer.weight(kind) * jaccard
        age = before_ms - self.started[candidates]
        bucket = (
            (age >= DAY_MS).astype(np.int64)
            + (age >= 7 * DAY_MS).astype(np.int64)
            + (age >= 30 * DAY_MS).astype(np.int64)
        )
        score += scorer.recency / (1.0 + bucket)
        order = np.lexsort((candidates, -self.started[candidates], -score))[:n]
        chosen = candidates[order]
        newest_first = np.lexsort((chosen, -self.started[chosen]))
        return [int(i) for i in chosen[newest_first]]
