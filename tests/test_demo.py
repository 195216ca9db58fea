"""`planner demo`: every stage runs and is reused on a re-run, a failed stage names itself, the
final table and the report are written from the figures, and the report opens in a real
headless browser with every image loaded and no error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_planner

from swarm_planner.demo import stages as stages_module
from swarm_planner.demo.report import actions_says, frontier_says, skips_says
from swarm_planner.demo.stages import Stage, StageError, StageRunner, source_fingerprint

needs_torch = pytest.mark.skipif(
    os.environ.get("SWARM_PLANNER_EXPECT_TORCH") == "0", reason="the demo trains (train extra)"
)
STAGES = [
    "simulate",
    "dataset",
    "train-mlp",
    "train-joint",
    "bench",
    "outcome-dataset",
    "train-value",
    "fit-table",
    "fine-tune-winners",
    "evaluate",
    "kernel-loop",
    "closed-loop-dataset",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("demo") / "d"
    run = run_planner("demo", "--out", str(out), "--issues", "600")
    assert run.returncode == 0, run.stdout + run.stderr
    return out, run.stdout


@needs_torch
def test_the_demo_runs_every_stage_and_prints_every_policy_against_the_heuristic(
    demo: tuple[Path, str],
) -> None:
    out, stdout = demo
    for index, name in enumerate(STAGES, start=1):
        assert f"[{index:2}/{len(STAGES)}] {name} " in stdout
        assert (out / "stages" / f"{name}.json").is_file()
    table = stdout.split("\n\n")[1].splitlines()
    assert table[0].split()[:3] == ["policy", "pass", "%"]
    assert [line.split()[0] for line in table[1:]] == [
        "heuristic",
        "joint",
        "mlp",
        "mlp+winners",
        "table",
        "value",
    ]
    loop = json.loads((out / "demo.json").read_text())["stages"]["kernel-loop"]["result"]
    assert [p["mode"] for p in loop["phases"]] == ["log", "enforce"]
    rebuilt = json.loads((out / "demo.json").read_text())["stages"]["closed-loop-dataset"]
    assert rebuilt["result"]["meta"]["example_count"] == sum(p["decisions"] for p in loop["phases"])


@needs_torch
def test_a_rerun_reuses_every_finished_stage(demo: tuple[Path, str]) -> None:
    out, _ = demo
    before = (out / "mlp" / "model.onnx").stat().st_mtime_ns
    again = run_planner("demo", "--out", str(out), "--issues", "600")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("(reused: inputs unchanged)") == len(STAGES)
    assert (out / "mlp" / "model.onnx").stat().st_mtime_ns == before


@needs_torch
def test_the_report_embeds_every_figure_with_a_line_written_from_its_numbers(
    demo: tuple[Path, str],
) -> None:
    out, _ = demo
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 5
    assert "http://" not in page and "https://" not in page  # nothing fetched from a network
    md = (out / "report.md").read_text()
    demo_json = json.loads((out / "demo.json").read_text())
    evaluation = demo_json["stages"]["evaluate"]["result"]
    assert frontier_says(evaluation) in md
    heuristic = evaluation["outcomes"]["policies"]["heuristic"]
    assert f"{100 * heuristic['pass_rate']['value']:.1f}%" in frontier_says(evaluation)
    # re-rendered from the folder alone
    (out / "report.html").unlink()
    run = run_planner("report", str(out))
    assert run.returncode == 0 and (out / "report.html").read_text() == page


@needs_torch
def test_the_report_opens_in_headless_chromium_with_every_image_and_no_error(
    demo: tuple[Path, str], tmp_path: Path
) -> None:
    browser = shutil.which("chromium")
    if browser is None:
        if os.environ.get("SWARM_PLANNER_EXPECT_BROWSER") == "1":
            pytest.fail("chromium is not installed (tests/browser/ensure-chromium.sh)")
        pytest.skip("Debian's chromium is not installed")
    out, _ = demo
    url = (out / "report.html").resolve().as_uri()
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
        "--enable-logging=stderr",
        "--v=0",
    ]
    shot = tmp_path / "report.png"
    taken = subprocess.run(
        [*flags, "--window-size=1200,4000", f"--screenshot={shot}", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.is_file() and shot.stat().st_size > 50_000, taken.stderr[-2000:]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert 'data-images-loaded="5"' in dom.stdout, dom.stderr[-2000:]
    assert "data-errors" not in dom.stdout
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "rror" in line or "Uncaught" in line], console


def test_a_failed_stage_names_itself_and_what_to_look_at(tmp_path: Path) -> None:
    out = tmp_path / "d"
    out.mkdir()
    (out / "root").write_text("a file where the world's folder goes\n")
    run = run_planner("demo", "--out", str(out), "--issues", "600", timeout=120)
    assert run.returncode == 1
    assert "stage simulate failed" in run.stderr
    assert f"look at: {out / 'root'}" in run.stderr
    assert (out / "stages" / "simulate.error.txt").is_file()
    assert "[ 1/12] simulate" in run.stdout and "FAILED" in run.stdout


def test_a_stage_reruns_when_an_upstream_setting_changes(tmp_path: Path) -> None:
    calls: list[str] = []

    def stages(seed: int) -> list[Stage]:
        def make(name: str) -> Any:
            return lambda: calls.append(name) or {"seed": seed}

        return [
            Stage("a", {"seed": seed}, (), make("a")),
            Stage("b", {}, ("a",), make("b")),
            Stage("c", {"fixed": 1}, (), make("c")),
        ]

    StageRunner(tmp_path).run_all(stages(0))
    StageRunner(tmp_path).run_all(stages(0))
    assert calls == ["a", "b", "c"]
    StageRunner(tmp_path).run_all(stages(1))
    assert calls == ["a", "b", "c", "a", "b"], "b reads a; c does not"


def test_every_stage_reruns_when_the_code_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    stage = Stage("s", {"seed": 0}, (), lambda: calls.append("s") or {})
    StageRunner(tmp_path).run_all([stage])
    StageRunner(tmp_path).run_all([stage])
    assert calls == ["s"]
    monkeypatch.setattr(stages_module, "code_fingerprint", lambda: "an edited checkout")
    StageRunner(tmp_path).run_all([stage])
    assert calls == ["s", "s"]


def test_the_source_fingerprint_follows_the_code_and_not_where_it_lies(tmp_path: Path) -> None:
    def package(where: Path, body: str) -> dict[str, Path]:
        (where / "core" / "sub").mkdir(parents=True)
        (where / "core" / "a.py").write_text("A = 1\n")
        (where / "core" / "sub" / "b.py").write_text(body)
        return {"core": where / "core"}

    first = source_fingerprint(package(tmp_path / "one", "B = 2\n"))
    elsewhere = package(tmp_path / "two", "B = 2\n")
    (elsewhere["core"] / "__pycache__").mkdir()
    (elsewhere["core"] / "__pycache__" / "a.cpython-311.py").write_text("bytecode")
    (elsewhere["core"] / "notes.txt").write_text("not code")
    assert source_fingerprint(elsewhere) == first
    assert source_fingerprint(package(tmp_path / "three", "B = 3\n")) != first


def test_a_stage_whose_outputs_were_deleted_runs_again(tmp_path: Path) -> None:
    calls: list[int] = []

    def work() -> dict[str, Any]:
        calls.append(1)
        (tmp_path / "thing").write_text("x")
        return {}

    stage = Stage("s", {}, (), work, ("thing",))
    StageRunner(tmp_path).run_all([stage])
    (tmp_path / "thing").unlink()
    StageRunner(tmp_path).run_all([stage])
    assert len(calls) == 2


def test_a_stage_that_raises_is_a_stage_error_with_its_traceback_kept(tmp_path: Path) -> None:
    def boom() -> dict[str, Any]:
        raise RuntimeError("the disk is full")

    with pytest.raises(StageError, match=r"stage s failed: RuntimeError: the disk is full"):
        StageRunner(tmp_path).run_all([Stage("s", {}, (), boom, ("x",))])
    assert "the disk is full" in (tmp_path / "stages" / "s.error.txt").read_text()


def _point(w: float, pts: float, lo: float, hi: float, cost: float, chi: float) -> dict[str, Any]:
    return {
        "cost_weight": w,
        "pass_rate": 0.6 + pts / 100,
        "cost_per_pass": 2.0,
        "vs_heuristic": {
            "pass_rate_points": {"value": pts, "low": lo, "high": hi},
            "cost_per_pass_pct": {"value": cost, "low": cost - 3, "high": chi},
        },
    }


def _evaluation(points: list[dict[str, Any]]) -> dict[str, Any]:
    base = {"pass_rate": {"value": 0.6}, "cost_per_pass": {"value": 2.4}}
    return {
        "outcomes": {
            "rows": 500,
            "policies": {"heuristic": base},
            "frontier": {"value": points},
            "oracle": {"pass_rate": 0.99, "cost_per_pass": 0.8},
        }
    }


def test_the_frontier_line_says_what_the_points_show() -> None:
    dominating = _evaluation([_point(0.1, 3.0, 1.0, 5.0, -8.0, -5.0)])
    assert "dominates the heuristic" in frontier_says(dominating)
    assert "+3.0 points more" in frontier_says(dominating)
    as_often = _evaluation([_point(0.14, 0.5, -0.9, 1.7, -12.0, -10.0)])
    assert "passes as often" in frontier_says(as_often) and "12.0% less" in frontier_says(as_often)
    worse = _evaluation([_point(0.2, -5.0, -6.0, -4.0, -20.0, -18.0)])
    assert "No point of the value policy's frontier" in frontier_says(worse)
    assert "oracle passes 99.0%" in frontier_says(worse)


def test_the_actions_line_names_the_policies_nearest_and_furthest_from_the_labels() -> None:
    evaluation = {
        "actions": {
            "rows": 10,
            "labels": {"serial×1": 8, "speculate×2": 2},
            "policies": {"copy": {"serial×1": 8, "speculate×2": 2}, "bold": {"speculate×3": 10}},
        }
    }
    said = actions_says(evaluation)
    assert "80.0% serial×1" in said
    assert "copy chooses closest to them (total variation 0.00)" in said
    assert "bold furthest (1.00)" in said


def test_the_skip_line_counts_exclusions_skips_and_repairs() -> None:
    meta = {
        "example_count": 90,
        "excluded": {"fab-world": 7},
        "read_report": {"runs_read": 100, "skipped_count": 3, "repairs": {"a": 2, "b": 1}},
    }
    assert skips_says(meta).startswith(
        "90 rows built from 100 runs; 7 runs excluded by rule, 3 archive files skipped while "
        "reading, and 3 field values repaired"
    )


@needs_torch
def test_a_report_of_the_users_own_eval_outcomes_output(
    demo: tuple[Path, str], tmp_path: Path
) -> None:
    out, _ = demo
    evaluation = json.loads((out / "demo.json").read_text())["stages"]["evaluate"]["result"]
    (tmp_path / "eval_outcomes.json").write_text(json.dumps(evaluation["outcomes"]))
    run = run_planner("report", str(tmp_path))
    assert run.returncode == 0, run.stderr
    page = (tmp_path / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 1
    assert frontier_says(evaluation) in (tmp_path / "report.md").read_text()


def test_report_of_a_folder_with_nothing_to_report_says_what_it_needs(tmp_path: Path) -> None:
    run = run_planner("report", str(tmp_path), timeout=60)
    assert run.returncode == 2
    assert "no demo.json, no eval_outcomes.json and no bench" in run.stderr
    assert "Traceback" not in run.stderr
