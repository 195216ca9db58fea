"""Every archive rule of docs/formats.md, on small hand-written kernel roots."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from kernel_fixtures import START, START_MS, manifest, proof, write_run

from swarm_planner.core.archives import ArchiveError, read_root, read_run
from swarm_planner.core.contracts import ActionExecuted, Gate


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    (tmp_path / ".cyntra" / "archives").mkdir(parents=True)
    return tmp_path


def test_manifest_and_proof_give_the_contracted_summary(root: Path) -> None:
    run = read_run(write_run(root, "wc-dir", {"manifest.json": manifest(), "proof.json": proof()}))
    s = run.summary
    assert (s.run_id, s.started_ms, s.job_type, s.domain) == ("wc-proof", START_MS, "code", "code")
    assert (s.tags, s.issue_id, s.cost_usd_est, s.tokens_in) == (("api", "auth"), "7", 0.42, 12000)
    assert s.runtime.duration_ms == 600000
    assert s.outcome.status == "success"
    assert s.outcome.gates == (Gate("pytest", True, 1.0),)
    assert (run.outcome_source, run.action_source) == ("proof", "legacy")


def test_run_id_falls_back_from_proof_to_manifest_to_directory(root: Path) -> None:
    p = proof()
    del p["workcell_id"]
    assert (
        read_run(
            write_run(root, "a", {"manifest.json": manifest(), "proof.json": p})
        ).summary.run_id
        == "wc-manifest"
    )
    m = manifest()
    del m["workcell_id"]
    assert (
        read_run(
            write_run(root, "wc-dir-name", {"manifest.json": m, "proof.json": p})
        ).summary.run_id
        == "wc-dir-name"
    )


def test_started_falls_back_to_completed_then_directory_mtime(root: Path) -> None:
    p = proof()
    del p["metadata"]["started_at"]
    run = read_run(write_run(root, "a", {"manifest.json": manifest(), "proof.json": p}))
    assert run.summary.started_ms == START_MS + 600000
    del p["metadata"]["completed_at"]
    directory = write_run(root, "b", {"manifest.json": manifest(), "proof.json": p})
    os.utime(directory, (1700000000.5, 1700000000.5))
    assert read_run(directory).summary.started_ms == 1700000000500


@pytest.mark.parametrize(
    ("status", "all_passed", "expected"),
    [
        ("timeout", False, "timeout"),
        ("timeout", True, "timeout"),
        ("success", True, "success"),
        ("partial", True, "success"),
        ("success", False, "failed"),
        ("partial", False, "failed"),
        ("failed", True, "failed"),
    ],
)
def test_status_mapping(root: Path, status: str, all_passed: bool, expected: str) -> None:
    p = proof(status=status)
    p["verification"]["all_passed"] = all_passed
    run = read_run(write_run(root, "a", {"manifest.json": manifest(), "proof.json": p}))
    assert run.summary.outcome.status == expected


def test_fail_codes_are_gate_codes_then_blocking_failures_without_repeats(root: Path) -> None:
    p = proof(status="failed")
    p["verification"] = {
        "all_passed": False,
        "gates": {
            "pytest": {
                "passed": False,
                "score": 0.2,
                "fail_codes": ["pytest_failed", "fixture_error"],
            },
            "mypy": {"passed": False, "score": None, "fail_codes": ["type_error", "pytest_failed"]},
            "ruff": {"passed": True, "score": 1, "fail_codes": []},
        },
        "blocking_failures": ["gate_failed", "type_error"],
    }
    run = read_run(write_run(root, "a", {"manifest.json": manifest(), "proof.json": p}))
    assert run.summary.outcome.fail_codes == (
        "pytest_failed",
        "fixture_error",
        "type_error",
        "gate_failed",
    )
    assert run.summary.outcome.gates == (
        Gate("pytest", False, 0.2),
        Gate("mypy", False, None),
        Gate("ruff", True, 1.0),
    )


def test_job_type_defaults_to_code_and_domain_follows_tags(root: Path) -> None:
    m = manifest(issue={"id": "8", "tags": ["asset:tree"]})
    del m["job_type"]
    run = read_run(write_run(root, "a", {"manifest.json": m, "proof.json": proof()}))
    assert (run.summary.job_type, run.summary.domain) == ("code", "fab_asset")
    m = manifest(job_type="fab-world")
    assert (
        read_run(write_run(root, "b", {"manifest.json": m, "proof.json": proof()})).summary.domain
        == "fab_world"
    )


def test_executed_plan_gives_the_action_with_minutes_from_the_timeout(root: Path) -> None:
    plan = {
        "schema_version": "cyntra.executed_plan.v1",
        "swarm_id_executed": "speculate_vote",
        "max_candidates_executed": 2,
        "timeout_seconds_executed": 2700,
        "max_iterations_executed": None,
        "fallback_applied": False,
        "fallback_reason": None,
    }
    m = manifest(planner={"executed_plan": plan, "timeout_seconds_override": 2700})
    run = read_run(write_run(root, "a", {"manifest.json": m, "proof.json": proof()}))
    assert run.summary.action_executed == ActionExecuted("speculate_vote", 2, 45, None)
    assert (run.action_source, run.timeout_seconds_override) == ("executed_plan", 2700)


def test_legacy_action_from_speculate_mode_and_parallelism(root: Path) -> None:
    m = manifest(speculate_mode=True, control={"speculate_parallelism": 3})
    run = read_run(write_run(root, "a", {"manifest.json": m, "proof.json": proof()}))
    assert run.summary.action_executed == ActionExecuted("speculate_vote", 3, None, None)
    run = read_run(write_run(root, "b", {"manifest.json": manifest(), "proof.json": proof()}))
    assert run.summary.action_executed == ActionExecuted("serial_handoff", 1, None, None)


def test_a_v1_rollout_is_read_instead_of_the_proof(root: Path) -> None:
    rollout = {
        "schema_version": "cyntra.rollout.v1",
        "workcell_id": "wc-rollout",
        "job_type": "fab-world",
        "issue_id": "9",
        "metadata": {"started_at": START},
        "scores": {"duration_ms": 1000, "cost_usd": 2},
        "outcomes": {
            "verification": {"all_passed": False, "blocking_failures": ["render_mismatch"]}
        },
    }
    run = read_run(write_run(root, "a", {"rollout.json": rollout, "manifest.json": manifest()}))
    s = run.summary
    assert (s.run_id, s.job_type, s.issue_id, s.started_ms) == (
        "wc-rollout",
        "fab-world",
        "9",
        START_MS,
    )
    assert (s.outcome.status, s.outcome.fail_codes, s.cost_usd_est) == (
        "failed",
        ("render_mismatch",),
        2.0,
    )
    assert run.outcome_source == "rollout"


def test_a_rollout_of_another_version_falls_back_to_manifest_and_proof(root: Path) -> None:
    files = {
        "rollout.json": {"schema_version": "cyntra.rollout.v0"},
        "manifest.json": manifest(),
        "proof.json": proof(),
    }
    assert read_run(write_run(root, "a", files)).outcome_source == "proof"


def test_a_run_is_skipped_only_without_a_readable_outcome(root: Path) -> None:
    write_run(root, "a-good", {"manifest.json": manifest(), "proof.json": proof()})
    write_run(
        root, "truncated", {"manifest.json": manifest(), "proof.json": json.dumps(proof())[:40]}
    )
    write_run(root, "no-proof", {"manifest.json": manifest()})
    write_run(root, "proof-list", {"manifest.json": manifest(), "proof.json": "[1, 2]"})
    write_run(root, "empty", {})
    write_run(root, "z-dup", {"manifest.json": manifest(), "proof.json": proof()})
    (root / ".cyntra" / "archives" / "stray.json").write_text("{}")
    kernel = read_root(root)
    assert [r.summary.run_id for r in kernel.runs] == ["wc-proof"]
    reasons = {Path(s.path).name: s.reason for s in kernel.report.skipped}
    assert reasons == {
        "truncated": "malformed JSON: proof.json: Unterminated string starting at (line 1, "
        "column 39)",
        "no-proof": "missing proof: no proof.json and no cyntra.rollout.v1 rollout.json",
        "proof-list": "malformed JSON: proof.json: expected an object, got list",
        "empty": "missing proof: no proof.json and no cyntra.rollout.v1 rollout.json",
        "z-dup": f"duplicate run_id: also in {root / '.cyntra' / 'archives' / 'a-good'}",
        "stray.json": "not a workcell folder: a regular file",
    }
    assert kernel.report.skip_counts() == {
        "duplicate run_id": 1,
        "malformed JSON": 2,
        "missing proof": 2,
        "not a workcell folder": 1,
    }


def test_odd_values_are_repaired_and_counted_and_the_run_kept(root: Path) -> None:
    write_run(
        root,
        "crashed",
        {"manifest.json": manifest(), "proof.json": proof(status="error", workcell_id="x1")},
    )
    bad = proof(workcell_id="x2")
    bad["metadata"]["duration_ms"] = "ten"
    bad["verification"]["gates"]["pytest"]["score"] = "high"
    write_run(root, "odd-values", {"manifest.json": manifest(), "proof.json": bad})
    write_run(
        root, "manifest-list", {"manifest.json": "[1, 2]", "proof.json": proof(workcell_id="x3")}
    )
    write_run(root, "proof-only", {"proof.json": proof(workcell_id="x4", status=" Success")})
    kernel = read_root(root)
    runs = {r.summary.run_id: r.summary for r in kernel.runs}
    assert runs["x1"].outcome.status == "failed"
    assert runs["x2"].runtime.duration_ms is None
    assert runs["x2"].outcome.gates == (Gate("pytest", True, None),)
    assert (runs["x3"].job_type, runs["x3"].action_executed) == (
        "code",
        ActionExecuted("serial_handoff", 1, None, None),
    )
    assert (runs["x4"].outcome.status, runs["x4"].issue_id) == ("success", None)
    assert kernel.report.skipped == []
    assert kernel.report.repairs.counts == {
        "unknown proof status 'error' -> failed": 1,
        "bad value dropped: proof.json metadata.duration_ms": 1,
        "bad value dropped: proof.json verification.gates.pytest.score": 1,
        "manifest.json ignored: malformed": 1,
        "proof status in another case or padded": 1,
        "proof.json without manifest.json: job_type code, legacy action": 1,
    }
    examples = kernel.report.repairs.examples
    assert examples["bad value dropped: proof.json metadata.duration_ms"] == [
        "odd-values: metadata.duration_ms: expected an integer, got 'ten' (str)"
    ]


def test_strict_mode_fails_on_the_first_skip_naming_the_path(root: Path) -> None:
    write_run(root, "no-proof", {"manifest.json": manifest()})
    with pytest.raises(ArchiveError, match=r"no-proof: missing proof"):
        read_root(root, strict=True)


def test_a_bad_executed_plan_value_is_dropped_and_the_rest_kept(root: Path) -> None:
    plan = {
        "schema_version": "cyntra.executed_plan.v1",
        "swarm_id_executed": "speculate_vote",
        "max_candidates_executed": 0,
        "timeout_seconds_executed": 1800,
        "max_iterations_executed": None,
    }
    write_run(
        root,
        "a",
        {"manifest.json": manifest(planner={"executed_plan": plan}), "proof.json": proof()},
    )
    kernel = read_root(root)
    (run,) = kernel.runs
    assert run.summary.action_executed == ActionExecuted("speculate_vote", None, 30, None)
    assert kernel.report.repairs.examples[
        "bad value dropped: executed_plan max_candidates_executed"
    ] == ["a: max_candidates_executed: 0 is below 1"]


def test_an_executed_plan_without_a_swarm_falls_back_to_the_legacy_fields(root: Path) -> None:
    plan = {"max_candidates_executed": 2, "timeout_seconds_executed": 1800}
    m = manifest(planner={"executed_plan": plan}, speculate_mode=True)
    write_run(root, "a", {"manifest.json": m, "proof.json": proof()})
    kernel = read_root(root)
    (run,) = kernel.runs
    assert (run.summary.action_executed, run.action_source) == (
        ActionExecuted("speculate_vote", 1, None, None),
        "legacy",
    )
    assert kernel.report.repairs.counts["executed_plan unreadable: legacy action"] == 1


def test_the_field_bench_override_without_schema_version_is_read(root: Path) -> None:
    section = {
        "override_applied": True,
        "executed_plan": {
            "swarm_id_executed": "speculate_vote",
            "max_candidates_executed": 3,
            "timeout_seconds_executed": 3600,
            "max_iterations_executed": None,
        },
    }
    write_run(root, "a", {"manifest.json": manifest(planner=section), "proof.json": proof()})
    kernel = read_root(root)
    assert kernel.runs[0].summary.action_executed == ActionExecuted("speculate_vote", 3, 60, None)
    assert kernel.report.repairs.counts == {"executed_plan without schema_version": 1}


def test_gates_given_as_an_array_read_like_the_object_form(root: Path) -> None:
    p = proof(status="failed")
    p["verification"] = {
        "all_passed": False,
        "gates": [
            {"name": "pytest", "passed": False, "score": 0.5, "fail_codes": ["pytest_failed"]},
            {"passed": True},
            {"name": "ruff", "passed": True, "score": 1, "fail_codes": []},
        ],
        "blocking_failures": ["gate_failed"],
    }
    write_run(root, "a", {"manifest.json": manifest(), "proof.json": p})
    kernel = read_root(root)
    outcome = kernel.runs[0].summary.outcome
    assert outcome.gates == (Gate("pytest", False, 0.5), Gate("ruff", True, 1.0))
    assert outcome.fail_codes == ("pytest_failed", "gate_failed")
    assert kernel.report.repairs.examples["bad value dropped: proof.json verification.gates[]"] == [
        "a: verification.gates[1]: a gate in an array of gates needs a name"
    ]


def test_a_bad_start_time_falls_back_to_the_next_source(root: Path) -> None:
    p = proof()
    p["metadata"]["started_at"] = "yesterday"
    write_run(root, "a", {"manifest.json": manifest(), "proof.json": p})
    kernel = read_root(root)
    assert kernel.runs[0].summary.started_ms == START_MS + 600000
    assert kernel.report.repairs.examples[
        "proof.json metadata.started_at is not RFC3339: next source used"
    ] == ["a: 'yesterday'"]


def test_ids_written_as_numbers_are_read_as_text(root: Path) -> None:
    m = manifest(issue={"id": 7, "tags": ["api"]})
    write_run(root, "a", {"manifest.json": m, "proof.json": proof(workcell_id=991)})
    kernel = read_root(root)
    assert (kernel.runs[0].summary.run_id, kernel.runs[0].summary.issue_id) == ("991", "7")
    assert kernel.report.repairs.counts == {"id given as a number -> text": 2}


def test_a_recorded_input_in_the_field_form_gives_its_system_state(
    root: Path, fixture_json: Any
) -> None:
    recorded = fixture_json("planner_input.json")
    recorded["action_space"]["validity_rules"] = [
        {
            "description": 'If job_type="fab-world", then max_candidates_bin!="NA".',
            "if": {"job_type": "fab-world"},
            "then": {"max_candidates_bin_not": "NA"},
        }
    ]
    recorded["system_state"]["hour_bucket"] = "09"
    write_run(
        root,
        "a",
        {"manifest.json": manifest(planner={"planner_input": recorded}), "proof.json": proof()},
    )
    kernel = read_root(root)
    assert kernel.runs[0].system_state is not None
    assert kernel.runs[0].system_state.hour_bucket == 9
    assert kernel.report.repairs.counts == {"system_state.hour_bucket: string -> int": 1}


def test_an_unreadable_recorded_input_keeps_the_run_and_its_system_state(
    root: Path, fixture_json: Any
) -> None:
    recorded = fixture_json("planner_input.json")
    recorded["action_space"]["validity_rules"].append(
        {"description": "speculation at most an hour", "then": {"max_minutes_bin_lte": 60}}
    )
    write_run(
        root,
        "a",
        {"manifest.json": manifest(planner={"planner_input": recorded}), "proof.json": proof()},
    )
    kernel = read_root(root)
    (run,) = kernel.runs
    assert run.system_state is not None
    assert kernel.report.repairs.counts == {
        "recorded validity rule not understood": 1,
        "recorded planner_input unreadable (system_state kept)": 1,
    }
    (example,) = kernel.report.repairs.examples["recorded validity rule not understood"]
    assert example.startswith("a: action_space.validity_rules[4].then.max_minutes_bin_lte:")
    assert "'speculation at most an hour'" in example


def test_issues_file_dirt_is_repaired_and_counted_and_bad_lines_are_skipped(root: Path) -> None:
    beads = root / ".beads"
    beads.mkdir()
    lines = [
        json.dumps(
            {
                "id": "1",
                "title": "a",
                "dk_risk": "high",
                "dk_size": "S",
                "dk_priority": "P1",
                "dk_attempts": "3",
                "tags": ["x"],
                "status": "open",
            }
        ),
        json.dumps({"id": "2", "dk_risk": "huge"}),
        "{not json",
        json.dumps({"title": "no id"}),
        json.dumps({"id": "3", "dk_attempts": "many", "dk_risk": "low"}),
        "",
        json.dumps({"id": "1", "dk_risk": "low", "dk_size": "S", "dk_priority": "P1"}),
    ]
    (beads / "issues.jsonl").write_text("\n".join(lines) + "\n")
    kernel = read_root(root)
    assert sorted(kernel.issues) == ["1", "2", "3"]
    assert kernel.issues["1"].dk_risk == "low"  # the later line wins
    assert kernel.issues["2"].dk_risk == "medium"
    assert kernel.issues["3"].dk_attempts == 0
    assert kernel.report.repairs.counts == {
        "issue.dk_attempts: string -> int": 1,
        "issue.dk_risk: unknown -> medium": 1,
        "issue.dk_priority: missing -> P2": 2,
        "issue.dk_size: missing -> M": 2,
        "bad value dropped: issue dk_attempts": 1,
        "issues.jsonl: duplicate id, last line wins": 1,
    }
    reasons = [(Path(s.path).name, s.reason) for s in kernel.report.skipped]
    assert reasons == [
        (
            "issues.jsonl:3",
            "malformed JSON: Expecting property name enclosed in double quotes (line 1, column 2)",
        ),
        ("issues.jsonl:4", "bad field: id: expected a string, got None"),
    ]


def test_universe_defaults_and_swarm_catalog(root: Path) -> None:
    folder = root / "universes" / "medica"
    folder.mkdir(parents=True)
    (folder / "universe.yaml").write_text(
        "defaults: {swarm_id: speculate_vote, objective_id: realism}\n"
    )
    (folder / "swarms.yaml").write_text(
        "swarms:\n  speculate_vote: {type: speculate}\n  serial_handoff: {type: serial}\n  tournament: {}\n"
    )
    universe = read_root(root).universe
    assert universe.universe_id == "medica"
    assert (universe.defaults.swarm_id, universe.defaults.objective_id) == (
        "speculate_vote",
        "realism",
    )
    assert universe.swarm_ids == ("serial_handoff", "speculate_vote", "tournament")
    with pytest.raises(ArchiveError, match="no universe 'other'; found: medica"):
        read_root(root, universe_id="other")


def test_a_root_without_universes_uses_the_default_swarms(root: Path) -> None:
    universe = read_root(root).universe
    assert universe.swarm_ids == ("serial_handoff", "speculate_vote")


def test_a_folder_that_is_not_a_kernel_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match=r"no \.cyntra/archives folder"):
        read_root(tmp_path)
