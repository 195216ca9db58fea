"""Archives written by the field's kernel: the rows and labels its own builder keeps, and every
quirk read, repaired and counted (fixtures: tests/field_kernel.py)."""

from __future__ import annotations

import json

import pytest
from field_kernel import Written, quirk_counts, write_field_root

from swarm_planner.core.dataset import build_dataset


@pytest.fixture(scope="module")
def field_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Written], dict, dict]:
    base = tmp_path_factory.mktemp("field")
    written = write_field_root(base / "root", runs=600, seed=5)
    result = build_dataset(base / "root", base / "dataset")
    rows = {}
    for line in (base / "dataset" / "dataset.jsonl").read_text().splitlines():
        row = json.loads(line)
        rows[row["run_id"]] = row
    return written, rows, result.meta


def test_every_row_the_field_builder_keeps_is_kept_with_its_label(field_build) -> None:
    written, rows, _ = field_build
    expected = {w.run_id: w for w in written if w.run_id is not None}
    assert len(expected) > 500
    missing = sorted(set(expected) - set(rows))
    assert missing == [], [expected[m].quirks for m in missing]
    labels = {run_id: _label(rows[run_id]) for run_id in expected}
    wrong = {r: (labels[r], w.label, w.quirks) for r, w in expected.items() if labels[r] != w.label}
    assert wrong == {}


def _label(row: dict) -> str:
    action = row["label_action"]
    b = action["budgets"]
    return f"{action['swarm_id']}|{b['max_candidates_bin']}|{b['max_minutes_bin']}|{b['max_iterations_bin']}"


def test_each_quirk_is_counted_by_kind(field_build) -> None:
    written, _, meta = field_build
    quirks = quirk_counts(written)
    report = meta["read_report"]
    repairs = report["repairs"]
    assert repairs["unknown proof status 'error' -> failed"] == quirks["status error"] > 0
    assert repairs["proof status in another case or padded"] == quirks["status upper case"] > 0
    assert repairs["proof status missing -> failed"] == quirks["status missing"] > 0
    assert (
        repairs["proof.json metadata.started_at is not RFC3339: next source used"]
        == quirks["bad started_at"]
    )
    assert repairs["executed_plan without schema_version"] == quirks["bench override"] > 0
    assert (
        repairs["proof.json without manifest.json: job_type code, legacy action"]
        == quirks["no manifest"]
    )
    assert repairs["manifest.json ignored: malformed"] == quirks["broken manifest"] > 0
    # Only the recorded inputs with a rule of a form we do not know fail to validate: the
    # field's own forms (<head>_not rules, "09" hours, world history runs) are all read.
    assert repairs["recorded validity rule not understood"] == quirks["unknown rule"] > 0
    assert (
        repairs["recorded planner_input unreadable (system_state kept)"] == quirks["unknown rule"]
    )
    assert repairs["system_state.hour_bucket: string -> int"] == quirks["planner era"]
    dropped = [w for w in written if w.run_id is None]
    assert report["skipped_count"] == len(dropped) - sum(
        1 for w in dropped if "old rollout" in w.quirks
    )
    assert report["skip_counts"] == {
        "malformed JSON": sum(1 for w in dropped if "truncated proof" in w.quirks),
        "missing proof": sum(1 for w in dropped if "no proof" in w.quirks),
    }


def test_the_recorded_system_state_reaches_the_rows(field_build) -> None:
    written, rows, _ = field_build
    planner_era = [w.run_id for w in written if w.run_id and "planner era" in w.quirks]
    states = [rows[r]["planner_input"].get("system_state") for r in planner_era]
    assert planner_era and all(s is not None for s in states)
    assert {s["hour_bucket"] for s in states} <= set(range(24))


def test_gates_as_an_array_give_the_same_failure_signals(field_build) -> None:
    written, rows, _ = field_build
    listed = [w.run_id for w in written if w.run_id and "gates list" in w.quirks]
    assert listed
    # A later row's history shows each run's gates; any failed listed run carries its gate.
    histories = [
        h
        for row in rows.values()
        for h in row["planner_input"]["history"]["last_n_similar_runs"]
        if h["run_id"] in set(listed)
    ]
    assert histories and all(
        {g["name"] for g in h["outcome"]["gates"]} == {"mypy", "pytest"} for h in histories
    )
