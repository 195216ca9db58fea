"""Similar-run retrieval: the field's rule exactly, the better default, leakage safety, windows."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_planner.core import history
from swarm_planner.core.contracts import ActionExecuted, Gate, Outcome, RunSummary, Runtime
from swarm_planner.core.history import (
    DAY_MS,
    SCORERS,
    HistoryIndex,
    Scorer,
    failure_signals,
    recency_bucket,
    scorer_named,
)

RANKERS = [r for r in (history._top_compiled, history._top_numpy) if r is not None]
FIELD = SCORERS["field"]
SIGNALS = SCORERS["signals"]
T0 = 1_700_000_000_000


def run(
    run_id: str,
    started: int,
    tags: Sequence[str] = (),
    *,
    job_type: str = "code",
    codes: Sequence[str] = (),
    failing_gates: Sequence[str] = (),
    issue_id: str | None = None,
) -> RunSummary:
    status = "failed" if codes or failing_gates else "success"
    gates = tuple(Gate(g, False) for g in failing_gates)
    return RunSummary(
        run_id,
        started,
        job_type,
        "code",
        ActionExecuted("serial_handoff", 1),
        Outcome(status, tuple(codes), gates),
        Runtime(1000),
        tuple(tags),
        issue_id,  # type: ignore[arg-type]
    )


def ids(index: HistoryIndex, found: list[int]) -> list[str]:
    return [index.runs[i].run_id for i in found]


def test_failure_signals_are_codes_then_failing_gates() -> None:
    r = run("a", T0, codes=["pytest_failed", "x"], failing_gates=["pytest", "mypy"])
    assert failure_signals(r) == ("pytest_failed", "x", "gate:pytest", "gate:mypy")


@pytest.mark.parametrize(
    ("age_days", "bucket"),
    [(0, 0), (0.99, 0), (1, 1), (6.9, 1), (7, 2), (29, 2), (30, 3), (400, 3)],
)
def test_recency_buckets(age_days: float, bucket: int) -> None:
    assert recency_bucket(int(age_days * DAY_MS)) == bucket


def test_field_rule_ranks_by_tag_overlap_then_recency_and_returns_newest_first() -> None:
    runs = [
        run("old-exact", T0, ["api", "auth"]),
        run("half", T0 + 20 * DAY_MS, ["api"]),
        run("none-recent", T0 + 39 * DAY_MS, ["ui"]),
        run("exact-recent", T0 + 39 * DAY_MS + 1, ["api", "auth"]),
        run("other-job", T0 + 39 * DAY_MS + 2, ["api", "auth"], job_type="fab-world"),
    ]
    index = HistoryIndex(runs)
    query_ms = T0 + 40 * DAY_MS
    found = index.similar(
        job_type="code", before_ms=query_ms, n=3, scorer=FIELD, tags=["api", "auth"]
    )
    # scores: exact-recent 0.6+0.05=0.65, old-exact 0.6+0.025, half 0.3+0.033, none-recent 0.05
    assert ids(index, found) == ["exact-recent", "half", "old-exact"]
    assert ids(
        index,
        index.similar(job_type="code", before_ms=query_ms, n=1, scorer=FIELD, tags=["api", "auth"]),
    ) == ["exact-recent"]


def test_only_strictly_earlier_runs_are_candidates() -> None:
    runs = [run("a", T0, ["x"]), run("b", T0 + 5, ["x"]), run("c", T0 + 10, ["x"])]
    index = HistoryIndex(runs)
    assert ids(
        index, index.similar(job_type="code", before_ms=T0 + 10, n=8, scorer=FIELD, tags=["x"])
    ) == ["b", "a"]
    assert index.similar(job_type="code", before_ms=T0, n=8, scorer=FIELD, tags=["x"]) == []


def test_ties_go_to_the_newer_run_then_the_smaller_run_id() -> None:
    runs = [run("b", T0, ["x"]), run("a", T0 + 1, ["x"]), run("c", T0 + 1, ["x"])]
    runs.sort(key=lambda r: (r.started_ms, r.run_id))
    index = HistoryIndex(runs)
    assert ids(
        index, index.similar(job_type="code", before_ms=T0 + 2, n=2, scorer=FIELD, tags=["x"])
    ) == ["a", "c"]


def test_the_field_rule_never_uses_failure_signals_of_the_query() -> None:
    runs = [
        run("same-failure", T0, ["q"], codes=["type_error"], issue_id="1"),
        run("tag-match", T0 + 1, ["api"]),
    ]
    index = HistoryIndex(runs)
    found = index.similar(
        job_type="code", before_ms=T0 + DAY_MS, n=1, scorer=FIELD, tags=["api"], issue_id="1"
    )
    assert ids(index, found) == ["tag-match"]


def test_signals_scorer_takes_failures_from_the_issues_own_earlier_attempts() -> None:
    runs = [
        run(
            "first-attempt", T0, ["db"], codes=["type_error"], failing_gates=["mypy"], issue_id="1"
        ),
        run(
            "same-failure-elsewhere",
            T0 + 1,
            ["ui"],
            codes=["type_error"],
            failing_gates=["mypy"],
            issue_id="2",
        ),
        run("tag-only", T0 + 2, ["api"], issue_id="3"),
    ]
    index = HistoryIndex(runs)
    assert index.attempt_failures("1", T0 + 10) == ("type_error", "gate:mypy")
    found = index.similar(
        job_type="code", before_ms=T0 + 10, n=2, scorer=SIGNALS, tags=["zz"], issue_id="1"
    )
    assert ids(index, found) == ["same-failure-elsewhere", "first-attempt"]
    assert index.attempt_failures("1", T0) == ()


def test_keywords_count_in_the_signals_scorer_only() -> None:
    runs = [run("kw", T0, ["a"]), run("plain", T0 + 1, ["b"])]
    index = HistoryIndex(runs, keywords=[["refresh", "token"], []])
    query = {
        "job_type": "code",
        "before_ms": T0 + 10,
        "n": 1,
        "tags": ["z"],
        "keywords": ["token", "refresh"],
    }
    assert ids(index, index.similar(scorer=SIGNALS, **query)) == ["kw"]
    assert ids(index, index.similar(scorer=FIELD, **query)) == ["plain"]


def test_n_zero_and_unknown_job_types_return_nothing() -> None:
    index = HistoryIndex([run("a", T0, ["x"])])
    assert index.similar(job_type="code", before_ms=T0 + 1, n=0, scorer=FIELD, tags=["x"]) == []
    assert index.similar(job_type="docs", before_ms=T0 + 1, n=4, scorer=FIELD, tags=["x"]) == []


def test_unsorted_runs_and_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="sorted"):
        HistoryIndex([run("b", T0 + 1), run("a", T0)])
    with pytest.raises(ValueError, match="window"):
        HistoryIndex([], window=0)
    with pytest.raises(ValueError, match="no scorer named 'nope'; scorers: field, signals"):
        scorer_named("nope")


def brute_force(
    runs: list[RunSummary], keywords: list[list[str]], scorer: Scorer, query: dict
) -> list[str]:
    """The retrieval rule written out plainly over every run: the oracle for the index."""

    def jaccard(a: set[str], b: set[str]) -> float:
        return len(a & b) / len(a | b) if a | b else 0.0

    before = query["before_ms"]
    earlier = [
        i for i, r in enumerate(runs) if r.started_ms < before and r.job_type == query["job_type"]
    ]
    failures: set[str] = set()
    if scorer.failures_from_attempts:  # the issue's own earlier attempts, of any job type
        for r in runs:
            if r.started_ms < before and r.issue_id == query["issue_id"]:
                failures |= set(failure_signals(r))
    scored = []
    for i in earlier:
        r = runs[i]
        score = (
            scorer.tags * jaccard(set(query["tags"]), set(r.tags or ()))
            + scorer.failures * jaccard(failures, set(failure_signals(r)))
            + scorer.keywords * jaccard(set(query["keywords"]), set(keywords[i]))
            + scorer.recency / (1 + recency_bucket(before - r.started_ms))
        )
        scored.append((-round(score, 9), -r.started_ms, i))
    top = sorted(scored)[: query["n"]]
    return [runs[i].run_id for _, _, i in sorted(top, key=lambda t: (t[1], t[2]))]


tag_sets = st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=3, unique=True)
run_specs = st.lists(
    st.tuples(
        st.integers(0, 60 * DAY_MS),
        tag_sets,
        st.lists(st.sampled_from(["e1", "e2", "e3"]), max_size=2, unique=True),
        st.sampled_from(["code", "fab-world"]),
        st.sampled_from(["i1", "i2", "i3", "i4"]),
        st.lists(st.sampled_from(["token", "race", "cache"]), max_size=2, unique=True),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(
    run_specs,
    tag_sets,
    st.lists(st.sampled_from(["token", "race", "cache"]), max_size=2, unique=True),
    st.integers(0, 70 * DAY_MS),
    st.sampled_from([0, 1, 4, 8, 16]),
    st.sampled_from(["field", "signals"]),
    st.sampled_from(["i1", "i2"]),
)
def test_the_index_matches_the_rule_written_out(
    specs, tags, keywords, query_ms, n, scorer_name, issue_id
) -> None:  # type: ignore[no-untyped-def]
    specs = sorted(specs, key=lambda s: s[0])
    runs = [
        run(f"r{k:03d}", T0 + t, tg, codes=c, job_type=j, issue_id=iss)
        for k, (t, tg, c, j, iss, _) in enumerate(specs)
    ]
    runs.sort(key=lambda r: (r.started_ms, r.run_id))
    by_id = {f"r{k:03d}": s[5] for k, s in enumerate(specs)}
    kws = [list(by_id[r.run_id]) for r in runs]
    scorer = SCORERS[scorer_name]
    query = {
        "job_type": "code",
        "before_ms": T0 + query_ms,
        "n": n,
        "tags": tags,
        "keywords": keywords,
        "issue_id": issue_id,
    }
    expected = brute_force(runs, kws, scorer, query)
    for ranker in RANKERS:  # compiled (where built) and its numpy twin
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(history, "TOP_SIMILAR", ranker)
            for window in (None, 64):  # 64 exceeds every posting here: windowed is exact too
                index = HistoryIndex(runs, kws, window=window)
                assert ids(index, index.similar(scorer=scorer, **query)) == expected
