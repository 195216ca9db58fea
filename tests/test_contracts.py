"""Records read and write the exact JSON of docs/formats.md, and bad documents say where they are bad."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from swarm_planner.core.action_space import ActionSpace, JointAction
from swarm_planner.core.canonical import canonical_json, input_hash
from swarm_planner.core.contracts import (
    ExecutedPlan,
    ManifestPlannerRecord,
    PlannerAction,
    PlannerInput,
    RunSummary,
    domain_of,
    dump,
    load,
)
from swarm_planner.core.errors import ContractError
from swarm_planner.core.jsonconv import recording_repairs

Fixture = Callable[[str], Any]


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("planner_input.json", PlannerInput),
        ("planner_input_minimal.json", PlannerInput),
        ("planner_action.json", PlannerAction),
        ("planner_action_minimal.json", PlannerAction),
        ("executed_plan.json", ExecutedPlan),
    ],
)
def test_hand_written_documents_round_trip_exactly(
    fixture_json: Fixture, name: str, cls: type
) -> None:
    document = fixture_json(name)
    assert dump(load(document, cls)) == document


def test_run_summaries_round_trip_inside_history(fixture_json: Fixture) -> None:
    for run in fixture_json("planner_input.json")["history"]["last_n_similar_runs"]:
        assert dump(load(run, RunSummary)) == run


def test_manifest_planner_record_round_trips(fixture_json: Fixture) -> None:
    record = {
        "planner_input": fixture_json("planner_input.json"),
        "planner_action": fixture_json("planner_action.json"),
        "executed_plan": fixture_json("executed_plan.json"),
        "timeout_seconds_override": 1800,
    }
    assert dump(load(record, ManifestPlannerRecord)) == record


def test_string_attempts_and_missing_enums_are_coerced_and_counted(fixture_json: Fixture) -> None:
    document = fixture_json("planner_input_minimal.json")
    document["issue"]["dk_attempts"] = "3"
    del document["issue"]["dk_risk"]
    with recording_repairs() as log:
        parsed = load(document, PlannerInput)
    assert parsed.issue.dk_attempts == 3
    assert parsed.issue.dk_risk == "medium"
    assert log.counts == {
        "issue.dk_attempts: string -> int": 1,
        "issue.dk_risk: missing -> medium": 1,
    }


def _problems(document: Any, cls: type) -> list[str]:
    with pytest.raises(ContractError) as info:
        load(document, cls, source="doc.json")
    assert str(info.value).startswith("doc.json:")
    return info.value.problems


def test_an_unknown_risk_is_an_error_naming_path_and_allowed_values(fixture_json: Fixture) -> None:
    document = fixture_json("planner_input.json")
    document["issue"]["dk_risk"] = "huge"
    assert _problems(document, PlannerInput) == [
        "issue.dk_risk: 'huge' is not one of low|medium|high|critical"
    ]


def test_an_extra_key_is_an_error_that_lists_the_allowed_keys(fixture_json: Fixture) -> None:
    document = fixture_json("planner_input.json")
    document["issue"]["dk_riks"] = "low"
    (problem,) = _problems(document, PlannerInput)
    assert problem.startswith("issue.dk_riks: unknown key (did you mean 'dk_risk'?)")
    assert "allowed keys: description, dk_attempts" in problem


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["history"]["last_n_similar_runs"][1]["outcome"].update(status="crashed"),
            "history.last_n_similar_runs[1].outcome.status: 'crashed' is not one of success|failed|timeout",
        ),
        (
            lambda d: d["history"]["last_n_similar_runs"][0].pop("started_ms"),
            "history.last_n_similar_runs[0].started_ms: required key is missing",
        ),
        (
            lambda d: d["issue"].update(dk_attempts=2.5),
            "issue.dk_attempts: expected an integer, got 2.5 (float)",
        ),
        (
            lambda d: d["issue"].update(dk_attempts="two"),
            "issue.dk_attempts: expected an integer, got 'two' (str)",
        ),
        (
            lambda d: d["issue"].update(dk_attempts=True),
            "issue.dk_attempts: expected an integer, got True (bool)",
        ),
        (lambda d: d["issue"].update(dk_attempts=-1), "issue.dk_attempts: -1 is negative"),
        (
            lambda d: d.update(created_at="yesterday"),
            "created_at: 'yesterday' is not an RFC3339 timestamp",
        ),
        (
            lambda d: d["action_space"].update(max_minutes_bins=[15, "none"]),
            "action_space.max_minutes_bins[1]: expected an integer or 'NA', got 'none'",
        ),
        (
            lambda d: d["action_space"]["validity_rules"][0].update(then={"colour": 1}),
            "action_space.validity_rules[0].then.colour: not a field a rule may name (job_type, "
            "swarm_id, max_candidates_bin, max_minutes_bin, max_iterations_bin, or <name>_not "
            "for 'not equal'); the rule 'If swarm_id=serial_handoff, then max_candidates_bin=1.' "
            "is not understood",
        ),
        (
            lambda d: d["system_state"].update(queue_depth_bin="lots"),
            "system_state.queue_depth_bin: 'lots' is not one of 0|1_2|3_5|6_plus",
        ),
        (
            lambda d: d["system_state"].update(hour_bucket=25),
            "system_state.hour_bucket: 25 is not an hour 0..23",
        ),
        (
            lambda d: d["issue"].update(tags="api"),
            "issue.tags: expected an array, got 'api' (str)",
        ),
        (
            lambda d: d["history"]["last_n_similar_runs"][0]["outcome"].update(
                fail_codes={"lint_failed": 1}
            ),
            "history.last_n_similar_runs[0].outcome.fail_codes: expected an array, "
            "got {'lint_failed': 1} (dict)",
        ),
        (
            lambda d: d["system_state"].update(available_toolchains=["codex", 3]),
            "system_state.available_toolchains[1]: expected a string, got 3 (int)",
        ),
        (
            lambda d: d["system_state"].update(toolchain_health={"codex": "high"}),
            "system_state.toolchain_health.codex: expected a number, got 'high' (str)",
        ),
        (
            lambda d: d.update(schema_version="cyntra.planner_input.v2"),
            "schema_version: 'cyntra.planner_input.v2' is not one of cyntra.planner_input.v1",
        ),
    ],
)
def test_bad_fields_are_reported_with_their_json_path(
    fixture_json: Fixture, mutate: Callable[[Any], None], expected: str
) -> None:
    document = fixture_json("planner_input.json")
    mutate(document)
    assert _problems(document, PlannerInput) == [expected]


def test_every_bad_field_of_a_document_is_reported_at_once(fixture_json: Fixture) -> None:
    document = fixture_json("planner_input.json")
    document["issue"]["dk_size"] = "XXL"
    document["job_type"] = 7
    problems = _problems(document, PlannerInput)
    assert sorted(problems) == [
        "issue.dk_size: 'XXL' is not one of XS|S|M|L|XL",
        "job_type: expected a string, got 7 (int)",
    ]


def test_every_bad_element_of_an_array_is_reported(fixture_json: Fixture) -> None:
    document = fixture_json("planner_input.json")
    document["issue"]["tags"] = ["api", 1, None]
    assert _problems(document, PlannerInput) == [
        "issue.tags[1]: expected a string, got 1 (int)",
        "issue.tags[2]: expected a string, got None (null)",
    ]


def test_confidence_outside_the_unit_interval_is_rejected(fixture_json: Fixture) -> None:
    document = fixture_json("planner_action.json")
    document["confidence"] = 1.5
    assert _problems(document, PlannerAction) == ["confidence: 1.5 is not within [0, 1]"]


def test_executed_plan_counts_below_one_are_rejected(fixture_json: Fixture) -> None:
    document = fixture_json("executed_plan.json")
    document["max_candidates_executed"] = 0
    assert _problems(document, ExecutedPlan) == ["max_candidates_executed: 0 is below 1"]


def test_a_non_object_document_is_an_error_not_a_crash() -> None:
    assert _problems([1, 2], PlannerInput) == ["$: expected an object, got [1, 2] (list)"]


def test_input_hash_is_sha256_of_canonical_json_without_created_at(fixture_json: Fixture) -> None:
    document = fixture_json("planner_input.json")
    body = {k: v for k, v in document.items() if k != "created_at"}
    expected = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    assert input_hash(document) == expected
    assert load(document, PlannerInput).input_hash() == expected


def test_input_hash_ignores_created_at_and_key_order_but_not_content(fixture_json: Fixture) -> None:
    document = fixture_json("planner_input.json")
    later = copy.deepcopy(document)
    later["created_at"] = "2026-01-01T00:00:00Z"
    reordered = dict(reversed(list(document.items())))
    changed = copy.deepcopy(document)
    changed["issue"]["dk_attempts"] = 3
    assert input_hash(later) == input_hash(document) == input_hash(reordered)
    assert input_hash(changed) != input_hash(document)


def test_canonical_json_is_compact_sorted_utf8() -> None:
    assert canonical_json({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_executed_plan_maps_to_the_nearest_bins() -> None:
    plan = ExecutedPlan("cyntra.executed_plan.v1", "speculate_vote", 2, 5400, None)
    assert plan.to_action(ActionSpace()) == JointAction("speculate_vote", 2, 60, "NA")


def test_planner_action_exposes_its_joint_action(fixture_json: Fixture) -> None:
    action = load(fixture_json("planner_action.json"), PlannerAction)
    assert action.action == JointAction("speculate_vote", 2, 30, "NA")


@pytest.mark.parametrize(
    ("job_type", "tags", "domain"),
    [
        ("fab-world", ["asset:tree"], "fab_world"),
        ("code", ["asset:tree", "x"], "fab_asset"),
        ("code", ["ui"], "code"),
        ("code", None, "code"),
    ],
)
def test_domain_follows_the_contract(job_type: str, tags: list[str] | None, domain: str) -> None:
    assert domain_of(job_type, tags) == domain


def test_timestamps_are_right_across_second_boundaries() -> None:
    from swarm_planner.core.recording import ms_from_rfc3339, rfc3339_from_ms

    stamps = [1736155799999, 1736155800000, 1736155800250, 1736155799998, 0, 1736155800999]
    texts = [rfc3339_from_ms(ms) for ms in stamps]
    assert texts[:3] == [
        "2025-01-06T09:29:59.999Z",
        "2025-01-06T09:30:00.000Z",
        "2025-01-06T09:30:00.250Z",
    ]
    assert texts[3] == "2025-01-06T09:29:59.998Z" and texts[4] == "1970-01-01T00:00:00.000Z"
    assert [ms_from_rfc3339(t) for t in texts] == stamps
