"""The compiled ranking and its numpy twin choose the same runs, bit for bit.

The dataset builder and the decision service rank through ``history.TOP_SIMILAR``: the C
extension where it was built, the numpy twin elsewhere. A dataset's hash must not depend on
which one a machine has, so the two are compared here on random indexes: windows that cut
postings, runs that landed out of start order, ties on score and start time. CI builds the
extension (``SWARM_PLANNER_EXPECT_COMPILED=1``): there a missing build is a failure, not a
skip.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_history import T0, run

from swarm_planner.core import history
from swarm_planner.core.history import DAY_MS, SCORERS, HistoryIndex

compiled = history._top_compiled
if os.environ.get("SWARM_PLANNER_EXPECT_COMPILED") == "1":
    assert compiled is not None, "the _retrieval extension was not built"
needs_compiled = pytest.mark.skipif(compiled is None, reason="the extension was not built")


def both(
    index: HistoryIndex, monkeypatch: pytest.MonkeyPatch, **query: object
) -> tuple[list[int], list[int]]:
    answers = []
    for ranker in (compiled, history._top_numpy):
        monkeypatch.setattr(history, "TOP_SIMILAR", ranker)
        answers.append(index.similar(**query))  # type: ignore[arg-type]
    return answers[0], answers[1]


TAGS = ["a", "b", "c", "d"]
WORDS = ["token", "race", "cache", "retry"]
specs = st.lists(
    st.tuples(
        st.integers(0, 50 * DAY_MS) | st.sampled_from([0, DAY_MS, 7 * DAY_MS]),  # ties too
        st.lists(st.sampled_from(TAGS), min_size=1, max_size=3, unique=True),
        st.lists(st.sampled_from(["e1", "e2"]), max_size=2, unique=True),
        st.sampled_from(["code", "code", "fab-world"]),
        st.sampled_from(["i1", "i2", "i3", None]),
        st.lists(st.sampled_from(WORDS), max_size=3, unique=True),
    ),
    min_size=10,
    max_size=80,
)


@needs_compiled
@settings(max_examples=200, deadline=None)
@given(
    specs,
    st.booleans(),
    st.sampled_from([None, 1, 2, 3, 8]),
    st.lists(st.sampled_from(TAGS), max_size=4),
    st.lists(st.sampled_from(WORDS), max_size=3),
    st.integers(0, 60 * DAY_MS),
    st.sampled_from([1, 2, 3, 5, 8]),
    st.sampled_from(["field", "signals"]),
    st.sampled_from(["i1", "i2", None]),
)
def test_compiled_and_numpy_choose_the_same_runs(
    runs: list,
    in_start_order: bool,
    window: int | None,
    tags: list[str],
    words: list[str],
    query_ms: int,
    n: int,
    scorer: str,
    issue_id: str | None,
) -> None:
    summaries = [
        run(f"r{k:03d}", T0 + t, tg, codes=c, job_type=j, issue_id=i)
        for k, (t, tg, c, j, i, _) in enumerate(runs)
    ]
    order = list(range(len(runs)))
    if in_start_order:
        order.sort(key=lambda k: (summaries[k].started_ms, summaries[k].run_id))
    index = HistoryIndex(window=window)
    for k in order:  # as archives land: out of start order unless sorted
        index.add(summaries[k], runs[k][5])
    with pytest.MonkeyPatch.context() as patch:
        fast, plain = both(
            index,
            patch,
            job_type="code",
            before_ms=T0 + query_ms,
            n=n,
            scorer=SCORERS[scorer],
            tags=tags,
            keywords=words,
            issue_id=issue_id,
        )
    assert fast == plain


@needs_compiled
def test_a_window_cuts_each_posting_to_its_latest_runs_in_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 30 runs share tag "a"; with a window of 4 only the 4 latest before the query compete,
    # so an older, better-matching run (tags a+b) is out of reach of the tag term.
    runs = [run("best", T0, ["a", "b"])] + [run(f"r{k:02d}", T0 + k, ["a"]) for k in range(1, 30)]
    index = HistoryIndex(runs, window=4)
    query = dict(job_type="code", before_ms=T0 + 100, n=2, scorer=SCORERS["field"], tags=["a", "b"])
    fast, plain = both(index, monkeypatch, **query)
    assert [index.runs[i].run_id for i in fast] == ["r29", "r28"]
    assert fast == plain
    exact = HistoryIndex(runs, window=None)
    fast, plain = both(exact, monkeypatch, **query)
    assert [exact.runs[i].run_id for i in fast] == ["r29", "best"]
    assert fast == plain


@needs_compiled
def test_malformed_arrays_are_refused_not_read() -> None:
    assert compiled is not None
    good = np.array([0, 1], dtype=np.int64)
    sizes = np.ones(8, dtype=np.float64)
    args = ([good], [0], good, good, sizes, good, -1, (1.0, 1.0, 1.0), (1.0, 0.0, 0.0), 0.1, 2)
    tail = (True, 10, (1, 2, 3))
    assert compiled(*args, *tail) == [1, 0]
    with pytest.raises(TypeError, match="posting: expected a contiguous int64 array"):
        compiled([good.astype(np.int32)], *args[1:], *tail)
    with pytest.raises(TypeError, match="sizes: expected a contiguous float64 array"):
        compiled(*args[:4], good, *args[5:], *tail)
    with pytest.raises(IndexError, match="names a run the index lacks"):
        compiled([np.array([-1, 0], dtype=np.int64)], *args[1:], *tail)
    with pytest.raises(ValueError, match="a kind is 0, 1 or 2"):
        compiled(args[0], [5], *args[2:], *tail)
    with pytest.raises(ValueError, match="four per run"):
        compiled(*args[:4], np.ones(3), *args[5:], *tail)
