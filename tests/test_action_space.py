"""The action space: rules as data, canonical enumeration, masks and nearest-bin mapping."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from field_kernel import FIELD_RULES
from hypothesis import given
from hypothesis import strategies as st

from swarm_planner.core.action_space import (
    HEADS,
    NA,
    ActionSpace,
    JointAction,
    bin_sort_key,
    default_validity_rules,
    minutes_from_timeout,
    nearest_bin,
    read_rule,
)
from swarm_planner.core.contracts import dump, load
from swarm_planner.core.errors import ContractError, InvalidActionError

SPACE = ActionSpace()


@pytest.mark.parametrize(("job_type", "count"), [("code", 30), ("fab-world", 120), ("docs", 150)])
def test_default_bins_leave_the_contracted_number_of_valid_actions(
    job_type: str, count: int
) -> None:
    assert len(SPACE.valid_actions(job_type)) == count


def test_valid_actions_come_in_canonical_order() -> None:
    actions = SPACE.valid_actions("fab-world")
    assert list(actions) == sorted(actions, key=JointAction.canonical_key)
    assert actions[0] == JointAction("serial_handoff", 1, 15, 1)
    assert actions[-1] == JointAction("speculate_vote", 3, NA, NA)


def test_bins_given_out_of_order_are_stored_canonically() -> None:
    shuffled = ActionSpace(
        swarm_ids=("speculate_vote", "serial_handoff"),
        max_candidates_bins=(NA, 3, 1, 2),
        max_minutes_bins=(120, NA, 15, 45, 30, 60),
        max_iterations_bins=(5, NA, 1, 3, 2),
    )
    assert shuffled == SPACE
    assert shuffled.valid_actions("code") == SPACE.valid_actions("code")


def test_rules_are_data_that_survive_json() -> None:
    text = json.dumps(dump(SPACE))
    assert load(json.loads(text), ActionSpace) == SPACE
    assert [r.to_json()["if"] for r in default_validity_rules()] == [
        {"swarm_id": "serial_handoff"},
        {"job_type": "code"},
        {"job_type": "fab-world"},
        {},
    ]


def test_rules_from_the_data_are_what_is_enforced() -> None:
    no_rules = ActionSpace(validity_rules=())
    assert len(no_rules.valid_actions("code")) == 2 * 4 * 6 * 5
    only_serial_rule = ActionSpace(validity_rules=default_validity_rules()[:1])
    assert len(only_serial_rule.valid_actions("code")) == 6 * 5 + 4 * 6 * 5


def test_a_custom_rule_caps_speculation_minutes() -> None:
    rule = read_rule(
        {
            "id": "short_speculation",
            "if": {"swarm_id": "speculate_vote"},
            "then": {"max_minutes_bin": 30},
        }
    )
    space = ActionSpace(validity_rules=(*default_validity_rules(), rule))
    speculative = [a for a in space.valid_actions("code") if a.swarm_id == "speculate_vote"]
    assert {a.max_minutes_bin for a in speculative} == {30}
    assert space.violations(JointAction("speculate_vote", 2, 60, NA), "code") == [
        "short_speculation"
    ]


def test_violations_name_the_broken_rules() -> None:
    assert SPACE.violations(JointAction("serial_handoff", 2, 30, 3), "code") == [
        "serial_single_candidate",
        "code_no_iterations",
    ]
    assert SPACE.violations(JointAction("speculate_vote", NA, 30, 1), "fab-world") == [
        "fab_world_capped_candidates"
    ]
    assert SPACE.violations(JointAction("solo", 1, 30, NA), "code") == [
        "swarm_id 'solo' is not one of serial_handoff|speculate_vote"
    ]
    assert SPACE.violations(JointAction("serial_handoff", 1, 20, NA), "code") == [
        "minutes bin 20 is not one of [15, 30, 45, 60, 120, 'NA']"
    ]


def test_check_raises_a_clear_error_for_an_invalid_action() -> None:
    with pytest.raises(
        InvalidActionError, match=r"serial_handoff\|2\|30\|NA is not valid .*serial_single"
    ):
        SPACE.check(JointAction("serial_handoff", 2, 30, NA), "code")


def test_a_zero_bin_is_removed_by_the_positive_bins_rule() -> None:
    space = ActionSpace(max_candidates_bins=(0, 1, 2))
    assert all(a.max_candidates_bin != 0 for a in space.valid_actions("docs"))
    assert "positive_bins" in space.violations(JointAction("speculate_vote", 0, 15, 1), "docs")


def test_joint_mask_marks_exactly_the_valid_actions() -> None:
    for job_type in ("code", "fab-world", "docs"):
        mask = SPACE.joint_mask(job_type)
        assert mask.shape == (len(SPACE.all_actions()),) == (240,)
        chosen = [a for a, ok in zip(SPACE.all_actions(), mask, strict=True) if ok]
        assert tuple(chosen) == SPACE.valid_actions(job_type)


def test_head_masks_are_the_bins_some_valid_action_uses() -> None:
    code = SPACE.head_masks("code")
    assert code["iterations"].tolist() == [False, False, False, False, True]
    assert code["candidates"].tolist() == [True, True, True, True]
    fab = SPACE.head_masks("fab-world")
    assert fab["candidates"].tolist() == [True, True, True, False]
    assert set(code) == set(HEADS)


def test_index_of_is_the_position_among_valid_actions() -> None:
    valid = SPACE.valid_actions("code")
    assert [SPACE.index_of(a, "code") for a in valid] == list(range(len(valid)))
    with pytest.raises(InvalidActionError):
        SPACE.index_of(JointAction("serial_handoff", 2, 30, NA), "code")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (20, 15),
        (90, 60),
        (30, 30),
        (None, NA),
        (0, 15),
        (10_000, 120),
        (37, 30),
        (38, 45),
        (52, 45),
    ],
)
def test_nearest_bin_examples(value: int | None, expected: object) -> None:
    assert nearest_bin(value, SPACE.max_minutes_bins) == expected


def test_minutes_from_timeout_truncates() -> None:
    assert minutes_from_timeout(1799) == 29
    assert minutes_from_timeout(None) is None


def test_bad_bins_are_rejected_with_the_field_named() -> None:
    with pytest.raises(ContractError, match=r"max_candidates_bins: bins repeat a value"):
        load({"max_candidates_bins": [1, 1]}, ActionSpace)
    with pytest.raises(ContractError, match=r"swarm_ids: swarm_ids is empty"):
        load({"swarm_ids": []}, ActionSpace)


def test_a_rule_with_an_unknown_operator_is_rejected() -> None:
    with pytest.raises(
        ContractError,
        match=r"validity_rules\[0\]\.then\.max_minutes_bin: a constraint object has exactly one key",
    ):
        load({"validity_rules": [{"if": {}, "then": {"max_minutes_bin": {"max": 3}}}]}, ActionSpace)


# -- properties --------------------------------------------------------------------------------

bins_st = st.lists(
    st.integers(min_value=0, max_value=200), min_size=1, max_size=6, unique=True
).map(lambda xs: tuple(xs))
bins_with_na = st.tuples(bins_st, st.booleans()).map(lambda t: t[0] + ((NA,) if t[1] else ()))
spaces = st.builds(
    ActionSpace,
    swarm_ids=st.sampled_from(
        [("serial_handoff", "speculate_vote"), ("serial_handoff",), ("a", "speculate_vote")]
    ),
    max_candidates_bins=bins_with_na,
    max_minutes_bins=bins_with_na,
    max_iterations_bins=bins_with_na,
)
job_types = st.sampled_from(["code", "fab-world", "docs"])


def _brute_force_valid(space: ActionSpace, job_type: str, action: JointAction) -> bool:
    c, m, i = action.max_candidates_bin, action.max_minutes_bin, action.max_iterations_bin
    if action.swarm_id == "serial_handoff" and c != 1:
        return False
    if job_type == "code" and i != NA:
        return False
    if job_type == "fab-world" and c == NA:
        return False
    return all(b == NA or b >= 1 for b in (c, m, i))


@given(spaces, job_types)
def test_enumeration_matches_the_four_rules_written_by_hand(
    space: ActionSpace, job_type: str
) -> None:
    expected = [
        JointAction(*t)
        for t in itertools.product(
            space.swarm_ids,
            space.max_candidates_bins,
            space.max_minutes_bins,
            space.max_iterations_bins,
        )
        if _brute_force_valid(space, job_type, JointAction(*t))
    ]
    assert list(space.valid_actions(job_type)) == expected
    assert int(space.joint_mask(job_type).sum()) == len(expected)


@given(spaces, job_types)
def test_head_masks_cover_every_value_of_every_valid_action(
    space: ActionSpace, job_type: str
) -> None:
    masks = space.head_masks(job_type)
    for action in space.valid_actions(job_type):
        values = (
            action.swarm_id,
            action.max_candidates_bin,
            action.max_minutes_bin,
            action.max_iterations_bin,
        )
        for head, value in zip(HEADS, values, strict=True):
            assert masks[head][list(space.head_bins(head)).index(value)]
    for head in HEADS:
        assert masks[head].dtype == np.bool_


@given(st.one_of(st.none(), st.integers(min_value=-50, max_value=500)), bins_with_na)
def test_nearest_bin_is_a_closest_bin_and_ties_go_lower(value: int | None, bins: tuple) -> None:
    result = nearest_bin(value, bins)
    numeric = [b for b in bins if b != NA]
    if value is None or not numeric:
        assert result == NA
        return
    assert result in numeric
    best = min(abs(b - value) for b in numeric)
    assert abs(result - value) == best
    assert result == min(b for b in numeric if abs(b - value) == best)


@given(st.lists(st.sampled_from([1, 2, 3, 5, 15, 30, NA]), min_size=1, unique=True))
def test_bin_order_puts_numbers_ascending_and_na_last(bins: list) -> None:
    ordered = sorted(bins, key=bin_sort_key)
    numbers = [b for b in ordered if b != NA]
    assert numbers == sorted(numbers)
    if NA in bins:
        assert ordered[-1] == NA


def test_the_field_rule_form_reads_into_our_representation_and_writes_ours() -> None:
    rule = read_rule(FIELD_RULES[2])
    ours = read_rule(
        {
            "description": FIELD_RULES[2]["description"],
            "if": {"job_type": "fab-world"},
            "then": {"max_candidates_bin": {"ne": "NA"}},
        }
    )
    assert rule == ours
    assert rule.to_json()["then"] == {"max_candidates_bin": {"ne": "NA"}}
    assert not rule.holds({"job_type": "fab-world", "max_candidates_bin": NA})
    assert rule.holds({"job_type": "fab-world", "max_candidates_bin": 2})
    assert rule.holds({"job_type": "code", "max_candidates_bin": NA})


def test_a_negated_condition_in_if_is_read_too() -> None:
    rule = read_rule({"if": {"job_type_not": "code"}, "then": {"max_minutes_bin": {"min": 30}}})
    assert not rule.holds({"job_type": "fab-world", "max_minutes_bin": 15})
    assert rule.holds({"job_type": "code", "max_minutes_bin": 15})


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        (
            {"description": "minutes at most 60", "then": {"max_minutes_bin_lte": 60}},
            r"validity_rules\[0\]\.then\.max_minutes_bin_lte: not a field a rule may name .* "
            r"the rule 'minutes at most 60' is not understood",
        ),
        (
            {"description": "odd", "then": {"max_candidates_bin_not": {"min": 2}}},
            r"validity_rules\[0\]\.then\.max_candidates_bin_not: a _not key takes a value",
        ),
        (
            {"description": "typo", "iff": {}, "then": {"swarm_id": "x"}},
            r"validity_rules\[0\]: the rule 'typo' is not understood: iff: unknown key",
        ),
    ],
)
def test_a_rule_we_cannot_interpret_is_an_error_by_index_and_description(
    rule: dict[str, object], problem: str
) -> None:
    with pytest.raises(ContractError, match=problem):
        load({"validity_rules": [rule]}, ActionSpace)


def test_the_field_space_is_equivalent_to_ours_and_serves_the_same_actions() -> None:
    field = load({"validity_rules": FIELD_RULES}, ActionSpace)
    assert field != SPACE  # three rules without ids against our four
    assert field.equivalent(SPACE) and SPACE.equivalent(field)
    for job in ("code", "fab-world", "docs"):
        assert field.valid_actions(job) == SPACE.valid_actions(job)
    stricter = load({"validity_rules": FIELD_RULES[:2]}, ActionSpace)
    assert not stricter.equivalent(SPACE)  # fab-world may then take NA candidates
    other_bins = ActionSpace(max_minutes_bins=(15, 30, NA))
    assert not other_bins.equivalent(SPACE)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_VALUES = st.sampled_from([1, 2, 3, 5, 15, 30, 60, 120, "NA", "serial_handoff", "code", "x"])
_CONSTRAINTS = st.one_of(
    _VALUES,
    st.builds(lambda v: {"ne": v}, _VALUES),
    st.builds(lambda n: {"min": n}, st.integers(0, 130)),
)
_FIELDS = st.sampled_from(
    ["job_type", "swarm_id", "max_candidates_bin", "max_minutes_bin", "max_iterations_bin"]
)
_RULES = st.lists(
    st.fixed_dictionaries(
        {
            "if": st.dictionaries(_FIELDS, _CONSTRAINTS, max_size=2),
            "then": st.dictionaries(_FIELDS, _CONSTRAINTS, min_size=1, max_size=2),
        }
    ),
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(_RULES, st.sampled_from(["code", "fab-world", "x", "docs"]))
def test_the_mask_is_the_rules_applied_to_every_action(rules: list[object], job_type: str) -> None:
    """The vectorised mask and the one-action-at-a-time rule check agree on any rules."""
    space = load({"validity_rules": rules}, ActionSpace)
    expected = [
        all(rule.holds({"job_type": job_type, **a.as_fields()}) for rule in space.validity_rules)
        for a in space.all_actions()
    ]
    assert space.joint_mask(job_type).tolist() == expected


def test_a_space_built_in_code_with_a_list_of_rules_is_a_value() -> None:
    space = ActionSpace(validity_rules=list(default_validity_rules()))
    assert space == SPACE and hash(space) == hash(SPACE)


def test_spaces_with_many_rules_compare_by_the_rules_that_forbid_something() -> None:
    many = [
        {"if": {"job_type": f"j{i}"}, "then": {"max_minutes_bin": {"min": 1}}} for i in range(250)
    ]
    field = load({"validity_rules": [*FIELD_RULES, *many]}, ActionSpace)
    assert field.equivalent(SPACE)  # the extra rules forbid nothing: the same effective rules
    other = load(
        {"validity_rules": [*FIELD_RULES, *many, {"then": {"max_minutes_bin": 30}}]}, ActionSpace
    )
    assert not other.equivalent(SPACE)
