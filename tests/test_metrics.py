"""Metrics and calibration, on numbers small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from swarm_planner.core.action_space import ActionSpace, JointAction
from swarm_planner.core.calibration import fit_temperature, masked_softmax
from swarm_planner.core.evaluation import policy_probs
from swarm_planner.core.heuristic import HeuristicRules
from swarm_planner.core.metrics import expected_calibration_error, head_index, score

SPACE = ActionSpace()
ACTIONS = SPACE.all_actions()
MASK = SPACE.joint_mask("code")


def idx(action: JointAction) -> int:
    return ACTIONS.index(action)


def test_head_index_maps_every_tuple_to_its_bins() -> None:
    heads = head_index(SPACE)
    a = idx(JointAction("speculate_vote", 3, 45, "NA"))
    assert heads[a].tolist() == [1, 2, 2, 4]


def test_score_on_a_hand_checked_example() -> None:
    serial = idx(JointAction("serial_handoff", 1, 30, "NA"))
    spec = idx(JointAction("speculate_vote", 2, 30, "NA"))
    probs = np.zeros((2, len(ACTIONS)))
    probs[0, serial], probs[0, spec] = 0.8, 0.2
    probs[1, serial], probs[1, spec] = 0.6, 0.4
    targets = np.array([serial, spec])
    m = score(probs, targets, SPACE)
    assert m.exact_match == 0.5
    assert m.head_accuracy == {"swarm": 0.5, "candidates": 0.5, "minutes": 1.0, "iterations": 1.0}
    assert m.nll == pytest.approx(-(np.log(0.8) + np.log(0.4)) / 2)
    assert m.brier == pytest.approx(((0.2**2 + 0.2**2) + (0.6**2 + 0.6**2)) / 2)
    assert m.ece == pytest.approx((abs(1 - 0.8) + abs(0 - 0.6)) / 2)
    assert m.distinct_actions == 1 and m.action_entropy_bits == 0.0
    assert m.label_actions_over_1pct_missed == [spec]
    assert m.coverage[0] == {"threshold": 0.0, "coverage": 1.0, "accuracy": 0.5}
    assert {"threshold": 0.7, "coverage": 0.5, "accuracy": 1.0} in m.coverage


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    confidence = np.array([0.75] * 4)
    assert expected_calibration_error(confidence, np.array([True, True, True, False])) == 0.0


def test_masked_softmax_gives_invalid_actions_exactly_zero() -> None:
    logits = np.random.default_rng(0).normal(size=(5, len(ACTIONS))) * 50
    probs = masked_softmax(logits, np.tile(MASK, (5, 1)), 1.0)
    assert np.all(probs[:, ~MASK] == 0.0)
    assert np.allclose(probs.sum(axis=1), 1.0)


def test_temperature_scaling_lowers_ece_of_an_overconfident_model() -> None:
    rng = np.random.default_rng(1)
    n, valid = 4000, np.flatnonzero(MASK)
    true_logits = rng.normal(size=(n, len(ACTIONS))) * 1.5
    mask = np.tile(MASK, (n, 1))
    p = masked_softmax(true_logits, mask, 1.0)
    targets = np.array([rng.choice(len(ACTIONS), p=row) for row in p])
    overconfident = true_logits * 4.0
    t = fit_temperature(overconfident, mask, targets)
    assert 3.0 < t < 5.5

    def ece(logits: np.ndarray, temp: float) -> float:
        return score(masked_softmax(logits, mask, temp), targets, SPACE).ece

    assert ece(overconfident, t) < 0.5 * ece(overconfident, 1.0)
    assert set(targets) <= set(valid)


def test_policy_probs_spreads_a_policy_over_the_tuples(make_input) -> None:  # type: ignore[no-untyped-def]
    probs = policy_probs(HeuristicRules(), [make_input(risk="critical")], SPACE)
    assert probs[0, idx(JointAction("speculate_vote", 3, "NA", "NA"))] == 1.0
    assert probs.sum() == 1.0
