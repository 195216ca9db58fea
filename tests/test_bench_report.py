"""`planner report BENCH_DIR`: a bench's report, ours or the field's, with every line under a
figure written from the bench's own numbers and every record it could not use counted."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from cli_helpers import run_planner
from test_bench import write_field_bench

from swarm_planner.demo.bench_report import (
    ActionFigures,
    BenchFigures,
    actions_says,
    best_of_k_says,
    failures_says,
)


@pytest.fixture(scope="module")
def sim_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("bench") / "b"
    made = run_planner("bench", "--world", "sim", "--issues", "60", "--k", "3", "--out", str(out))
    assert made.returncode == 0, made.stderr
    return out


def test_the_report_of_a_bench_says_what_its_log_shows(sim_bench: Path) -> None:
    run = run_planner("report", str(sim_bench))
    assert run.returncode == 0, run.stderr
    md = (sim_bench / "report.md").read_text()
    page = (sim_bench / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3
    # The figures, counted here straight from the candidate log.
    lines = [json.loads(line) for line in (sim_bench / "candidates.jsonl").open()]
    by_case: dict[str, list[bool]] = {}
    for line in lines:
        by_case.setdefault(line["case_id"], []).append(line["verified"])
    any_passed = sum(any(v) for v in by_case.values())
    assert f"passed {any_passed} of {len(by_case)} issues" in md
    tried = Counter("|".join(str(p) for p in line["action"]) for line in lines)
    assert f"{len(tried)} actions were tried" in md
    assert f"each {min(tried.values())} to {max(tried.values())} times" in md
    failing = sum(not line["verified"] for line in lines)
    assert f"{failing} of {len(lines)} candidates did not pass" in md
    assert f"Every record of the bench was read: 60 issues, {len(lines)} candidates." in md


def test_a_field_bench_report_counts_what_it_skipped_and_repaired(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    bench = write_field_bench(tmp_path)
    run = run_planner("report", str(bench))  # the bench folder holding run_<stamp>/
    assert run.returncode == 0, run.stderr
    md = (bench / "run_20260105T101500Z" / "report.md").read_text()
    assert "The field kernel bench" in md
    assert "- skipped by the bench: best-of-k bench currently supports only code issues: 1" in md
    assert "- unknown proof status 'error' -> failed: 6" in md
    # 6 issues, the first candidate passing on the even three, the second never.
    assert "passed 3 of 6 issues (50.0%); the first candidate alone passed 50.0%" in md
    assert "a candidate passes 25.0% on average" in md


def action(name: str, tried: int, passed: int, cost: float) -> ActionFigures:
    return ActionFigures(name, tried, passed, cost, tried)


def figures(*actions: ActionFigures, codes: dict[str, int] | None = None) -> BenchFigures:
    ranked = sorted(actions, key=lambda a: (-a.pass_rate, a.cost_per_pass or 1e18, a.action))
    candidates = sum(a.tried for a in actions)
    passed = sum(a.passed for a in actions)
    return BenchFigures(
        folder="b",
        source="swarm_planner",
        cases=10,
        candidates=candidates,
        k_max=4,
        passed_candidates=passed,
        any_passed=5,
        first_passed=3,
        single_pass_rate=passed / candidates,
        actions=tuple(ranked),
        fail_codes=codes or {},
        errors={},
        skipped={},
        repairs={},
    )


def test_a_lucky_action_tried_once_is_not_named_the_best() -> None:
    says = actions_says(figures(action("lucky", 1, 1, 0.1), action("steady", 20, 15, 30.0)))
    assert "steady passes most often: 75.0% of 20 tries, at $2.000 per pass" in says
    assert "lucky" not in says


def test_the_cheapest_per_pass_is_named_with_what_it_gives_up() -> None:
    says = actions_says(figures(action("a", 20, 18, 90.0), action("b", 20, 10, 10.0)))
    assert says.endswith(
        "The cheapest per pass is b: $1.000, passing 50.0% (-40.0 points against the most "
        "passing one)."
    )
    same = actions_says(figures(action("a", 20, 18, 9.0), action("b", 20, 10, 10.0)))
    assert same.endswith("It is also the cheapest per pass.")


def test_failures_and_best_of_k_lines_follow_their_numbers() -> None:
    f = figures(action("a", 10, 4, 1.0), codes={"timeout": 4, "tests": 2})
    assert failures_says(f) == (
        "6 of 10 candidates did not pass; the commonest fail code is timeout (4), then tests (2)."
    )
    assert failures_says(figures(action("a", 10, 10, 1.0))) == "No candidate failed."
    assert best_of_k_says(f).startswith(
        "At least one of up to 4 candidates passed 5 of 10 issues (50.0%); the first candidate "
        "alone passed 30.0%, and a candidate passes 40.0% on average: choosing the right "
        "action per issue is worth up to 10.0 points"
    )
