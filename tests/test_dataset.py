"""Dataset rows, splits, hash, meta, stats, gates, and the recording round trip."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from kernel_fixtures import manifest, proof, write_run

from swarm_planner.core.action_space import NA, ActionSpace, JointAction
from swarm_planner.core.archives import read_root
from swarm_planner.core.canonical import canonical_json
from swarm_planner.core.contracts import Issue, ManifestPlannerRecord, ModelRef, dump, load
from swarm_planner.core.dataset import (
    DatasetError,
    DatasetOptions,
    GateThresholds,
    build_dataset,
    check_dataset,
    file_hash,
    iter_dataset,
    read_meta,
    root_stats,
    split_counts,
)
from swarm_planner.core.recording import (
    build_planner_input,
    executed_plan_from_action,
    planner_action_for,
    record_in_manifest,
)


@pytest.fixture(scope="module")
def dataset(sim_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ds")
    build_dataset(sim_root, out)
    return out


def test_rebuilding_gives_the_same_bytes_and_hash(
    sim_root: Path, dataset: Path, tmp_path: Path
) -> None:
    again = build_dataset(sim_root, tmp_path)
    assert again.meta["dataset_hash"] == read_meta(dataset).dataset_hash
    assert (tmp_path / "dataset.jsonl").read_bytes() == (dataset / "dataset.jsonl").read_bytes()


def test_the_hash_is_sha256_of_canonical_row_lines(dataset: Path) -> None:
    import hashlib

    digest = hashlib.sha256()
    for row in iter_dataset(dataset):
        digest.update((canonical_json(dump(row)) + "\n").encode())
    assert digest.hexdigest() == read_meta(dataset).dataset_hash


def test_rows_are_in_time_order_with_the_contracted_split(dataset: Path) -> None:
    rows = list(iter_dataset(dataset))
    assert [(r.started_ms, r.run_id) for r in rows] == sorted(
        (r.started_ms, r.run_id) for r in rows
    )
    assert (
        Counter(r.split for r in rows) == split_counts(800) == {"train": 640, "val": 80, "test": 80}
    )
    assert [r.split for r in rows] == sorted(
        (r.split for r in rows), key=["train", "val", "test"].index
    )
    meta = read_meta(dataset)
    assert meta.example_count == 800 and meta.n_similar_runs == 8


def test_history_holds_only_strictly_earlier_runs_of_the_same_job_type(dataset: Path) -> None:
    started = {}
    for row in iter_dataset(dataset):
        started[row.run_id] = row.started_ms
        history = row.planner_input.history.last_n_similar_runs
        assert len(history) <= 8
        assert all(h.started_ms < row.started_ms for h in history)
        assert all(h.job_type == row.planner_input.job_type for h in history)
        assert [h.started_ms for h in history] == sorted(
            (h.started_ms for h in history), reverse=True
        )


def test_labels_are_executed_plans_valid_in_the_action_space(dataset: Path) -> None:
    sources = Counter()
    for row in iter_dataset(dataset):
        label = row.label_action
        assert label.model is not None and label.model.checkpoint_id == "executed_plan"
        space = row.planner_input.action_space
        assert space.is_valid(label.action, row.planner_input.job_type)
        sources[label.label_source] += 1
    assert set(sources) == {"executed_plan", "legacy"}


def test_attempts_count_the_issues_earlier_archived_runs(dataset: Path) -> None:
    seen: Counter[str] = Counter()
    for row in iter_dataset(dataset):
        issue = row.planner_input.issue
        assert issue.dk_attempts == seen[issue.issue_id]
        assert issue.keywords  # extracted from title and description
        seen[issue.issue_id] += 1


def test_meta_records_what_the_dataset_was_built_from(dataset: Path) -> None:
    meta = json.loads((dataset / "meta.json").read_text())
    assert meta["universe_id"] == "sim"
    assert meta["retrieval"] == {"scorer": "signals", "window": 256}
    assert sum(meta["label_distribution"].values()) == 800
    assert set(meta["label_head_distribution"]) == {"swarm", "candidates", "minutes", "iterations"}
    assert meta["environment"]["action_space"] == dump(ActionSpace())
    assert meta["read_report"]["skipped_count"] == 0


def test_n_and_scorer_and_world_options(sim_root: Path, tmp_path: Path) -> None:
    none = build_dataset(sim_root, tmp_path / "n0", DatasetOptions(n_similar=0))
    assert all(
        not r.planner_input.history.last_n_similar_runs for r in iter_dataset(tmp_path / "n0")
    )
    field = build_dataset(sim_root, tmp_path / "field", DatasetOptions(scorer="field"))
    code_only = build_dataset(sim_root, tmp_path / "code", DatasetOptions(include_world=False))
    assert (
        len({none.meta["dataset_hash"], field.meta["dataset_hash"], code_only.meta["dataset_hash"]})
        == 3
    )
    assert all(r.planner_input.job_type == "code" for r in iter_dataset(tmp_path / "code"))
    excluded = code_only.meta["excluded"]["fab-world run (--no-include-world)"]
    assert code_only.meta["example_count"] + excluded == 800


def test_a_corrupted_root_builds_with_an_exact_skip_report(sim_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(sim_root, root)
    archives = sorted((root / ".cyntra" / "archives").iterdir())
    truncated = next(d for d in archives if (d / "proof.json").exists())
    (truncated / "proof.json").write_text((truncated / "proof.json").read_text()[:25])
    missing = next(d for d in archives[50:] if (d / "proof.json").exists())
    (missing / "proof.json").unlink()
    bad_status = next(d for d in archives[100:] if (d / "proof.json").exists())
    proof = json.loads((bad_status / "proof.json").read_text())
    proof["status"] = "crashed"
    (bad_status / "proof.json").write_text(json.dumps(proof))
    result = build_dataset(root, tmp_path / "ds")
    report = result.meta["read_report"]
    assert result.meta["example_count"] == 798  # the crashed run is kept, as a failure
    assert report["skip_counts"] == {"malformed JSON": 1, "missing proof": 1}
    assert {Path(s["path"]).name: s["reason"].split(":")[0] for s in report["skipped"]} == {
        truncated.name: "malformed JSON",
        missing.name: "missing proof",
    }
    assert report["repairs"]["unknown proof status 'crashed' -> failed"] == 1
    crashed = next(
        json.loads(line)
        for line in (tmp_path / "ds" / "dataset.jsonl").read_text().splitlines()
        if json.loads(line)["run_id"] == proof["workcell_id"]
    )
    assert crashed["split"] in ("train", "val", "test")


def test_gates_pass_on_the_simulated_world_and_fail_with_their_figures(dataset: Path) -> None:
    results = {r.name: r for r in check_dataset(dataset)}
    assert all(r.passed for r in results.values()), results
    assert results["near_duplicates_agree"].value >= 0.8
    strict = {
        r.name: r
        for r in check_dataset(
            dataset, GateThresholds(min_examples=10_000, min_label_entropy_bits=9.0)
        )
    }
    assert not strict["enough_examples"].passed and strict["enough_examples"].value == 800
    assert not strict["label_entropy"].passed


def test_a_tampered_dataset_fails_the_hash_gate(dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    lines = (copy / "dataset.jsonl").read_text().splitlines(keepends=True)
    (copy / "dataset.jsonl").write_text("".join(lines[1:]))
    results = {r.name: r for r in check_dataset(copy)}
    assert not results["hash_matches_meta"].passed
    with pytest.raises(DatasetError, match=r"dataset.jsonl: its sha256 .* is not meta.json's"):
        read_meta(copy, verify=True)
    assert read_meta(dataset, verify=True).dataset_hash == file_hash(dataset)


def test_a_collapsed_label_distribution_fails_the_entropy_gate(
    dataset: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    rows = []
    for row in iter_dataset(dataset):
        data = dump(row)
        data["label_action"]["swarm_id"] = "serial_handoff"
        data["label_action"]["budgets"] = {
            "max_candidates_bin": 1,
            "max_minutes_bin": 30,
            "max_iterations_bin": "NA",
        }
        rows.append(canonical_json(data) + "\n")
    (copy / "dataset.jsonl").write_text("".join(rows))
    shutil.copy(dataset / "meta.json", copy / "meta.json")
    results = {r.name: r for r in check_dataset(copy)}
    assert not results["label_entropy"].passed and results["label_entropy"].value == 0.0


def test_reading_a_missing_or_broken_dataset_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"meta.json: no such file"):
        read_meta(tmp_path)
    (tmp_path / "dataset.jsonl").write_text('{"run_id": 1}\n')
    with pytest.raises(DatasetError, match=r"(?s)dataset.jsonl:1: .*run_id: expected a string"):
        list(iter_dataset(tmp_path))


def test_stats_count_every_table(sim_root: Path) -> None:
    stats = root_stats(sim_root)
    counts = stats["counts"]
    assert stats["runs"] == 800
    for table in (
        "job_type",
        "domain",
        "risk",
        "size",
        "status",
        "bin_swarm",
        "bin_candidates",
        "bin_minutes",
        "bin_iterations",
        "lane",
        "label",
    ):
        assert sum(counts[table].values()) == 800, table
    assert set(counts["status"]) <= {"success", "failed", "timeout"}


def test_recorded_decisions_round_trip_through_the_manifest(tmp_path: Path) -> None:
    directory = write_run(tmp_path, "wc-1", {"manifest.json": manifest(), "proof.json": proof()})
    action = JointAction("speculate_vote", 2, 45, NA)
    planner_input = build_planner_input(
        universe_id="u",
        job_type="code",
        issue=Issue("7", dk_risk="high"),
        created_at="2025-03-01T12:00:00Z",
    )
    record = ManifestPlannerRecord(
        planner_input=planner_input,
        planner_action=planner_action_for(
            action,
            created_at="2025-03-01T12:00:00Z",
            confidence=0.8,
            model=ModelRef("m1"),
            input_hash=planner_input.input_hash(),
        ),
        executed_plan=executed_plan_from_action(action),
        timeout_seconds_override=None,
    )
    record_in_manifest(directory / "manifest.json", record)
    saved = json.loads((directory / "manifest.json").read_text())
    assert saved["issue"] == manifest()["issue"]
    assert load(saved["planner"], ManifestPlannerRecord) == record
    run = read_root(tmp_path).runs[0]
    assert run.executed_plan == record.executed_plan
    assert run.executed_plan.to_action(ActionSpace()) == action
    assert run.summary.action_executed.max_minutes == 45
