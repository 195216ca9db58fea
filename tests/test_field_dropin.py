"""The drop-in for the field kernel's planner call: its arguments, its record, its reasons."""

from __future__ import annotations

import json
from pathlib import Path

from swarm_planner.core.contracts import ManifestPlannerRecord, PlannerInput, load
from swarm_planner.kernel_integration.field import FieldPlanner, config_from_field, floor_bin

FIXTURES = Path(__file__).parent / "fixtures"
BUNDLE = FIXTURES / "tiny-bundle"
INPUT = json.loads((FIXTURES / "tiny_planner_input.json").read_text())


def test_the_record_is_what_the_field_stores_and_reads_back() -> None:
    planner = FieldPlanner(
        {"mode": "enforce", "bundle_dir": str(BUNDLE), "confidence_threshold": 0}
    )
    record = planner.plan(INPUT, "speculate_vote", 3, 3600)
    assert set(record) == {
        "planner_input",
        "planner_action",
        "executed_plan",
        "timeout_seconds_override",
    }
    load(record, ManifestPlannerRecord)  # the archive reader's shape
    plan = record["executed_plan"]
    assert plan["timeout_seconds_executed"] is None or plan["timeout_seconds_executed"] <= 3600
    assert plan["max_candidates_executed"] is None or plan["max_candidates_executed"] <= 3
    assert plan["swarm_id_executed"] == "speculate_vote"  # the field never changes topology


def test_field_config_keys_map_onto_ours() -> None:
    config = config_from_field(
        {"enabled": True, "bundle_dir": str(BUNDLE), "confidence_threshold": 0.3}
    )
    assert config.mode == "enforce"
    assert (config.model.type, config.model.path) == ("onnx", str(BUNDLE))
    assert config.inference.confidence_threshold == 0.3
    assert config.safety.reductions_only and config.safety.swarm_changes == ()
    assert config_from_field(None).mode == "off"


def test_fallback_reasons_are_the_fields() -> None:
    cases = {
        "bundle_dir_missing": {"mode": "enforce"},
        "bundle_dir_not_found:/nowhere": {"mode": "enforce", "bundle_dir": "/nowhere"},
        "log_only": {"mode": "log", "bundle_dir": str(BUNDLE), "confidence_threshold": 0},
        "low_confidence": {"mode": "enforce", "bundle_dir": str(BUNDLE), "confidence_threshold": 1},
    }
    for reason, section in cases.items():
        plan = FieldPlanner(section).plan(INPUT, "serial_handoff", 1, 1800)["executed_plan"]
        assert plan["fallback_applied"] and plan["fallback_reason"] == reason, (reason, plan)


def test_a_topology_change_is_the_fields_swarm_mismatch() -> None:
    planner = FieldPlanner(
        {"mode": "enforce", "bundle_dir": str(BUNDLE), "confidence_threshold": 0}
    )
    chosen = planner.service.decide(load(INPUT, PlannerInput))
    other = (
        "speculate_vote" if chosen.planner_action.swarm_id == "serial_handoff" else "serial_handoff"
    )
    plan = planner.plan(INPUT, other, 2, 3600)["executed_plan"]
    assert plan["fallback_reason"] == "swarm_mismatch" and plan["swarm_id_executed"] == other


def test_a_broken_input_still_gets_a_record() -> None:
    record = FieldPlanner({"mode": "enforce"}).plan({"garbage": True}, "serial_handoff", 1, 600)
    assert record["executed_plan"]["fallback_applied"]
    assert record["planner_input"] == {"garbage": True}


def test_a_cap_never_rounds_up() -> None:
    assert floor_bin(100, (15, 30, 60, 120, "NA")) == 60
    assert floor_bin(5, (15, 30, "NA")) == "NA"  # below every bin: the kernel's own limit
    assert floor_bin(None, (15, "NA")) == "NA"


def test_a_cap_below_every_minutes_bin_is_never_exceeded() -> None:
    planner = FieldPlanner(
        {"mode": "enforce", "bundle_dir": str(BUNDLE), "confidence_threshold": 0}
    )
    for cap in (30, 600):
        for swarm, candidates in (("serial_handoff", 1), ("speculate_vote", 3)):
            plan = planner.plan(INPUT, swarm, candidates, cap)["executed_plan"]
            assert plan["timeout_seconds_executed"] in (None, cap) or (
                plan["timeout_seconds_executed"] <= cap
            ), (cap, swarm, plan)
            assert plan["swarm_id_executed"] == swarm


def test_an_invalid_input_runs_the_kernels_baseline() -> None:
    plan = FieldPlanner({"mode": "enforce"}).plan({"bad": 1}, "speculate_vote", 3, 3600)
    executed = plan["executed_plan"]
    assert executed["swarm_id_executed"] == "speculate_vote"
    assert executed["max_candidates_executed"] == 3 and executed["fallback_applied"]


def test_the_callers_config_is_left_as_it_was() -> None:
    section = {"mode": "enforce", "bundle_dir": str(BUNDLE), "safety": {"max_minutes_cap": 60}}
    before = json.dumps(section, sort_keys=True)
    FieldPlanner(section)
    assert json.dumps(section, sort_keys=True) == before
    mine = config_from_field(
        {"mode": "enforce", "bundle_dir": str(BUNDLE), "model": {"type": "mlp"}}
    )
    assert mine.model.type == "mlp"  # our key next to the field's is kept
