"""`planner pipeline run`: a strict pipeline file, graduation by criteria and by not regressing
on earlier stages, promotion into the registry with lineage, and a resumable run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_planner

from swarm_planner.core.errors import ConfigError
from swarm_planner.core.registry import Registry
from swarm_planner.pipeline.run import check, figure, regressions
from swarm_planner.pipeline.spec import Criterion, PipelineSpec, Tolerance, load_pipeline

needs_torch = pytest.mark.skipif(
    os.environ.get("SWARM_PLANNER_EXPECT_TORCH") == "0", reason="the pipeline trains"
)
EXAMPLE = Path(__file__).parent.parent / "examples" / "pipeline.yaml"


def test_the_example_pipeline_is_four_stages_a_to_d() -> None:
    spec = load_pipeline(EXAMPLE)
    assert [(s.name, s.kind, s.policy, s.init) for s in spec.stages] == [
        ("foundation", "imitation", "mlp", "none"),
        ("quality", "outcomes", "value", "none"),
        ("resilience", "outcomes", "value", "previous"),
        ("drift", "outcomes", "value", "previous"),
    ]
    calm, stormy = spec.stages[1].world.disturbances, spec.stages[2].world.disturbances
    assert not calm.active and stormy.active and spec.stages[2].calm_twin
    assert spec.stages[3].world.fab_world_share != spec.stages[1].world.fab_world_share


def test_every_problem_of_a_pipeline_file_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "pipeline:\n"  # 1
        "  name: p\n"  # 2
        "  stages:\n"  # 3
        "    - name: a\n"  # 4
        "      kind: imitation\n"  # 5
        "      policy: mlp\n"  # 6
        "      criteria:\n"  # 7
        "        - {metric: pass_rat, min: 0.5}\n"  # 8
        "    - name: b\n"  # 9
        "      kind: outcomes\n"  # 10
        "      policy: value\n"  # 11
        "      world: {disturbances: {flaky: 0.2}}\n"  # 12
    )
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    problems = caught.value.problems
    assert any(
        p.startswith("pipeline.stages[0].criteria[0].metric (line 8): 'pass_rat'") for p in problems
    )
    assert any(
        p.startswith("pipeline.stages[1].world.disturbances.flaky (line 12): unknown key")
        and "flaky_gates" in p
        for p in problems
    )


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        (
            "kind: imitation, policy: value",
            "an imitation stage trains mlp or joint or transformer or mlp-ar, not 'value'",
        ),
        ("kind: outcomes, policy: value, train: {epochs: 3}", "train.epochs"),
        ("kind: imitation, policy: mlp, init: previous", "the first stage has no previous"),
        ("kind: imitation, policy: mlp, criteria: [{metric: ece}]", "exactly one of min or max"),
        (
            "kind: outcomes, policy: value, criteria: [{metric: exact_match, min: 1}]",
            "imitation metric",
        ),
        ("kind: imitation, policy: mlp, replay: true", "only an outcomes stage replays"),
        (
            "kind: imitation, policy: mlp, data: {bench: b}",
            "an imitation stage learns from a kernel root",
        ),
        ("kind: outcomes, policy: value, data: {root: r}", "an outcomes stage learns from a bench"),
        (
            "kind: imitation, policy: mlp, data: {root: r}, world: {seed: 1}",
            "world or data, not both",
        ),
        ("kind: imitation, policy: mlp, data: {root: r}, calm_twin: true", "a calm twin needs"),
        (
            "kind: imitation, policy: mlp, data: {root: r}, criteria: [{metric: pass_rate, min: 0}]",
            "outcome metrics need an evaluation set",
        ),
    ],
)
def test_a_stage_that_cannot_run_is_refused_before_anything_runs(
    tmp_path: Path, stage: str, expected: str
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(f"pipeline:\n  name: p\n  stages:\n    - {{name: a, {stage}}}\n")
    with pytest.raises(ConfigError, match="line 4") as caught:
        load_pipeline(path)
    assert any(expected in p for p in caught.value.problems), caught.value.problems


def policies(pass_rate: float, cost: float, base_pass: float = 0.6, base_cost: float = 2.0) -> dict:
    return {
        "candidate": {"pass_rate": {"value": pass_rate}, "cost_per_pass": {"value": cost}},
        "heuristic": {"pass_rate": {"value": base_pass}, "cost_per_pass": {"value": base_cost}},
    }


def test_criteria_read_points_and_percents_against_the_heuristic() -> None:
    p = policies(0.63, 1.8)
    assert figure("pass_rate", "heuristic", p, "candidate") == pytest.approx(3.0)
    assert figure("cost_per_pass", "heuristic", p, "candidate") == pytest.approx(-10.0)
    assert figure("pass_rate", None, p, "candidate") == 0.63
    at_least = Criterion("pass_rate", min=3.0, vs="heuristic")
    assert check(at_least, 3.0, "a").passed and not check(at_least, 2.99, "a").passed
    assert not check(at_least, None, "a").passed  # a figure that could not be measured fails
    at_most = Criterion("cost_per_pass", max=-10.0, vs="heuristic")
    assert check(at_most, -10.0, "a").passed and not check(at_most, -9.9, "a").passed


def test_a_regression_is_measured_against_the_promoted_bundle_with_the_tolerance() -> None:
    spec = PipelineSpec("p", (), Tolerance(pass_rate_points=2.0, cost_per_pass_pct=10.0))
    promoted = {"pass_rate": {"value": 0.60}, "cost_per_pass": {"value": 2.0}}
    fine = regressions(
        {"pass_rate": {"value": 0.58}, "cost_per_pass": {"value": 2.2}}, promoted, spec, "a"
    )
    assert [r.passed for r in fine] == [True, True]
    worse = regressions(
        {"pass_rate": {"value": 0.575}, "cost_per_pass": {"value": 2.21}}, promoted, spec, "a"
    )
    assert [r.passed for r in worse] == [False, False]
    assert worse[0].value == pytest.approx(-2.5) and worse[1].value == pytest.approx(10.5)


PIPELINE = """
pipeline:
  name: tiny
  stages:
    - name: a
      kind: imitation
      policy: mlp
      world: {seed: 0, issues: 700}
      train: {max_epochs: 4}
      criteria:
        - {metric: exact_match, min: 0.2}
    # Deliberately bad: it imitates a misconfigured kernel, whose codex timeout was cut to
    # five minutes, so it learns to give codex issues far too little time.
    - name: b
      kind: imitation
      policy: mlp
      world:
        seed: 0
        issues: 700
        drift: {codex_timeout_from_week: 0, codex_timeout_seconds: 300, docs_to_crush_from_week: 0}
      train: {max_epochs: 4}
"""


def _run(path: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from swarm_planner.cli.app import main; main()",
            *("pipeline", "run", str(path), "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )


@needs_torch
def test_a_stage_that_regresses_is_refused_and_the_last_promoted_bundle_stays(
    tmp_path: Path,
) -> None:
    pytest.importorskip("torch")
    path = tmp_path / "tiny.yaml"
    path.write_text(PIPELINE)
    out = tmp_path / "run"
    first = _run(path, out)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "stage a: promoted as v1" in first.stdout
    assert "stage b: NOT promoted" in first.stdout
    assert "no regression" in first.stdout and "on a:" in first.stdout
    registry = Registry(out / "registry")
    assert registry.versions() == ["v1"] and registry.current_version() == "v1"
    lineage = registry.lineage("v1")
    assert (lineage.stage, lineage.pipeline, lineage.parent) == ("a", "tiny", None)
    assert lineage.bench_hash and lineage.dataset_hash and lineage.promoted_at
    assert [c.metric for c in lineage.criteria] == ["exact_match"] and lineage.criteria[0].passed
    assert lineage.notes["environment"]["issues"] == 700
    summary = json.loads((out / "pipeline.json").read_text())
    refused = summary["stages"][1]
    assert refused["promoted"] is None
    assert {c["name"] for c in refused["criteria"] if not c["passed"]} <= {
        "no regression: pass rate vs promoted (points)",
        "no regression: cost per pass vs promoted (%)",
    }
    # Re-run: every step is reused, nothing is added, the verdict is the same.
    again = _run(path, out)
    assert again.returncode == 1
    assert again.stdout.count("(reused: inputs unchanged)") == again.stdout.count("] ")
    assert registry.versions() == ["v1"]


@needs_torch
def test_the_example_pipeline_graduates_all_four_stages_with_their_lineage(
    tmp_path: Path,
) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "example"
    run = _run(EXAMPLE, out)
    assert run.returncode == 0, run.stdout + run.stderr
    registry = Registry(out / "registry")
    assert registry.versions() == ["v1", "v2", "v3", "v4"] and registry.current_version() == "v4"
    lineages = [registry.lineage(v) for v in registry.versions()]
    assert [(x.stage, x.parent, x.model_type) for x in lineages] == [
        ("foundation", None, "mlp"),
        ("quality", "v1", "value"),
        ("resilience", "v2", "value"),
        ("drift", "v3", "value"),
    ]
    # C is judged on its disturbed issues and on their calm twins; D and C against every
    # earlier stage's evaluation set.
    assert {c.evaluation for c in lineages[2].criteria} == {
        "resilience",
        "resilience/calm",
        "foundation",
        "quality",
    }
    assert {c.evaluation for c in lineages[3].criteria} >= {"resilience/calm", "quality"}
    assert all(c.passed for x in lineages for c in x.criteria)
    # The drifted stage's environment is recorded beside its data, and differs visibly.
    quality = json.loads((out / "quality" / "world.json").read_text())
    drift = json.loads((out / "drift" / "world.json").read_text())
    assert (quality["fab_world_share"], drift["fab_world_share"]) == (0.12, 0.3)
    assert drift["drift"]["codex_timeout_seconds"] == 3600
    assert lineages[3].notes["environment"] == drift
    assert lineages[3].notes["policy_options"] == {"cost_weight": 0.16}


@needs_torch
def test_stages_on_a_kernels_own_root_and_bench_graduate_offline(tmp_path: Path) -> None:
    """A user's pipeline: an imitation stage on their kernel root, then an outcomes stage on
    their bench, both judged offline on the bench's held-out issues (no world to run in)."""
    pytest.importorskip("torch")
    kernel = tmp_path / "mine" / "kernel"
    for args in (
        ("simulate", "--out", str(kernel), "--issues", "700", "--seed", "4"),
        (
            "bench",
            "--root",
            str(kernel),
            "--k",
            "3",
            "--executor",
            "sim",
            "--out",
            str(kernel.parent / "bench"),
        ),
    ):
        made = run_planner(*args, timeout=300)
        assert made.returncode == 0, made.stderr
    path = tmp_path / "mine" / "pipeline.yaml"
    path.write_text(
        """
pipeline:
  name: mine
  tolerance: {pass_rate_points: 50, cost_per_pass_pct: 500}
  stages:
    - name: routing
      kind: imitation
      policy: mlp
      data: {root: kernel, bench: bench}      # relative to this file
      train: {max_epochs: 4}
      criteria: [{metric: pass_rate, min: 0.05}]
    - name: outcomes
      kind: outcomes
      policy: value
      data: {bench: bench}
      train: {max_epochs: 4}
      criteria: [{metric: pass_rate, vs: heuristic, min: -50}]
"""
    )
    out = tmp_path / "run"
    done = _run(path, out)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "simulate" not in done.stdout and ".bench" not in done.stdout  # their data, as it is
    registry = Registry(out / "registry")
    assert registry.versions() == ["v1", "v2"]
    second = registry.lineage("v2")
    assert second.notes["environment"]["bench"] == str((kernel.parent / "bench").resolve())
    assert second.bench_hash and {c.evaluation for c in second.criteria} == {"outcomes", "routing"}
    # Their data changed (a new archive landed): the steps that read it run again.
    (kernel / ".cyntra" / "archives" / "note.txt").write_text("a new file")
    again = _run(path, out)
    assert "routing.dataset" in again.stdout and "routing.dataset" not in [
        line.split()[1] for line in again.stdout.splitlines() if "(reused" in line
    ]
