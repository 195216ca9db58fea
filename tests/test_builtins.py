"""The built-in plugins do what the field's rules say."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from swarm_planner.core.action_space import NA, JointAction
from swarm_planner.core.contracts import PlannerInput
from swarm_planner.core.errors import ConfigError, InvalidActionError
from swarm_planner.core.plugins import PluginHost
from swarm_planner.core.protocols import (
    ActionDistribution,
    CandidateOutcome,
    Fallback,
    Policy,
    Sampler,
    Selector,
)

MakeInput = Callable[..., PlannerInput]


@pytest.mark.parametrize(
    ("risk", "expected"),
    [
        ("critical", JointAction("speculate_vote", 3, NA, NA)),
        ("high", JointAction("speculate_vote", 2, NA, NA)),
        ("medium", JointAction("serial_handoff", 1, NA, NA)),
        ("low", JointAction("serial_handoff", 1, NA, NA)),
    ],
)
def test_heuristic_policy_follows_the_risk_rule(
    host: PluginHost, make_input: MakeInput, risk: str, expected: JointAction
) -> None:
    policy = host.create("policy", "heuristic")
    assert isinstance(policy, Policy)
    dist = policy.predict(make_input(risk=risk))
    assert dist.best() == (expected, 1.0)
    assert dist.probs.sum() == 1.0
    assert len(dist.actions) == 30


def test_heuristic_policy_answers_over_the_valid_actions_of_the_job(
    host: PluginHost, make_input: MakeInput
) -> None:
    dist = host.create("policy", "heuristic").predict(make_input(job_type="fab-world", risk="high"))
    assert len(dist.actions) == 120
    assert dist.best()[0] == JointAction("speculate_vote", 2, NA, NA)


def test_heuristic_rule_table_is_configurable(host: PluginHost, make_input: MakeInput) -> None:
    options = {
        "rules": {"high": {"swarm_id": "serial_handoff", "max_minutes": 60}},
        "default": {"swarm_id": "speculate_vote", "max_candidates": 2, "max_minutes": 30},
    }
    policy = host.create("policy", "heuristic", options)
    assert policy.predict(make_input(risk="high")).best()[0] == JointAction(
        "serial_handoff", 1, 60, NA
    )
    assert policy.predict(make_input(risk="critical")).best()[0] == JointAction(
        "speculate_vote", 2, 30, NA
    )


def test_heuristic_options_are_strict(host: PluginHost) -> None:
    with pytest.raises(ConfigError) as info:
        host.create(
            "policy", "heuristic", {"rules": {"high": {"swarm": "x"}}}, path="planner.model.options"
        )
    assert info.value.problems == [
        "planner.model.options.rules.high.swarm_id: required key is missing",
        "planner.model.options.rules.high.swarm: unknown key (did you mean 'swarm_id'?); "
        "allowed keys: max_candidates, max_iterations, max_minutes, swarm_id",
    ]


def test_a_rule_invalid_for_the_input_space_is_a_clear_error(
    host: PluginHost, make_input: MakeInput
) -> None:
    policy = host.create(
        "policy",
        "heuristic",
        {"rules": {"high": {"swarm_id": "serial_handoff", "max_candidates": 2}}},
    )
    with pytest.raises(InvalidActionError, match="then max_candidates_bin=1"):
        policy.predict(make_input(risk="high"))


def test_heuristic_fallback_uses_the_same_table(host: PluginHost, make_input: MakeInput) -> None:
    fallback = host.create("fallback", "heuristic")
    assert isinstance(fallback, Fallback)
    assert fallback.decide(make_input(risk="critical")) == JointAction("speculate_vote", 3, NA, NA)
    custom = host.create(
        "fallback", "heuristic", {"default": {"swarm_id": "serial_handoff", "max_minutes": 15}}
    )
    assert custom.decide(make_input(risk="low")) == JointAction("serial_handoff", 1, 15, NA)


def _outcome(action: JointAction, verified: bool, duration: int, cost: float) -> CandidateOutcome:
    return CandidateOutcome(action, verified, "success" if verified else "failed", duration, cost)


A = JointAction("serial_handoff", 1, 30, NA)
B = JointAction("speculate_vote", 2, 30, NA)
C = JointAction("speculate_vote", 3, 30, NA)


@pytest.mark.parametrize(
    ("outcomes", "winner"),
    [
        ([_outcome(A, False, 10, 0.1), _outcome(B, True, 90, 3.0)], 1),  # verified first
        ([_outcome(A, True, 50, 0.1), _outcome(B, True, 40, 3.0)], 1),  # then shorter
        ([_outcome(B, True, 40, 3.0), _outcome(A, True, 40, 0.5)], 1),  # then cheaper
        ([_outcome(C, True, 40, 1.0), _outcome(B, True, 40, 1.0)], 1),  # then action text
        ([_outcome(A, False, 70, 1.0), _outcome(B, False, 40, 1.0)], 1),  # none verified: shorter
    ],
)
def test_lexicographic_selector_applies_the_field_rule(
    host: PluginHost, outcomes: list[CandidateOutcome], winner: int
) -> None:
    selector = host.create("selector", "lexicographic")
    assert isinstance(selector, Selector)
    assert selector.select(outcomes) == winner


@pytest.mark.parametrize("name", ["lexicographic", "utility", "cheapest_pass"])
def test_selectors_reject_no_outcomes(host: PluginHost, name: str) -> None:
    with pytest.raises(ValueError, match="zero outcomes"):
        host.create("selector", name).select([])


def test_utility_selector_trades_a_pass_against_cost_by_its_weights(host: PluginHost) -> None:
    cheap_fail = _outcome(A, False, 10, 0.1)
    dear_pass = _outcome(B, True, 10, 4.0)
    assert (
        host.create("selector", "utility", {"cost_weight": 0.2}).select([cheap_fail, dear_pass])
        == 1
    )
    # At 0.3 per USD the pass (worth 1) no longer pays for 3.9 USD more.
    assert (
        host.create("selector", "utility", {"cost_weight": 0.3}).select([cheap_fail, dear_pass])
        == 0
    )
    slow = _outcome(A, True, 3_600_000, 1.0)
    fast = _outcome(B, True, 60_000, 1.0)
    assert host.create("selector", "utility", {"time_weight": 0.5}).select([slow, fast]) == 1


def test_cheapest_pass_selector_prefers_the_cheapest_passing_candidate(host: PluginHost) -> None:
    outcomes = [
        _outcome(A, True, 10, 3.0),
        _outcome(B, False, 5, 0.5),
        _outcome(C, True, 90, 1.0),
    ]
    assert host.create("selector", "cheapest_pass").select(outcomes) == 2
    assert host.create("selector", "lexicographic").select(outcomes) == 0


BASELINE = JointAction("speculate_vote", 2, NA, NA)


@pytest.mark.parametrize("name", ["random", "deterministic"])
def test_samplers_return_k_distinct_valid_actions(
    host: PluginHost, make_input: MakeInput, name: str
) -> None:
    sampler = host.create("sampler", name, {"seed": 7})
    assert isinstance(sampler, Sampler)
    planner_input = make_input(risk="high")
    picks = sampler.sample(planner_input, BASELINE, 5)
    assert len(picks) == len(set(picks)) == 5
    assert all(planner_input.action_space.is_valid(a, "code") for a in picks)
    assert sampler.sample(planner_input, BASELINE, 5) == picks
    assert len(sampler.sample(planner_input, BASELINE, 1000)) == 30


def test_random_sampler_depends_on_seed_and_issue(host: PluginHost, make_input: MakeInput) -> None:
    a = host.create("sampler", "random", {"seed": 1})
    b = host.create("sampler", "random", {"seed": 2})
    first, second = make_input(risk="high"), make_input(risk="high", issue_id="43")
    assert a.sample(first, BASELINE, 8) != b.sample(first, BASELINE, 8)
    assert a.sample(first, BASELINE, 8) != a.sample(second, BASELINE, 8)


def test_random_sampler_keeps_the_baseline_and_draws_the_rest_uniformly(
    host: PluginHost, make_input: MakeInput
) -> None:
    counts: dict[JointAction, int] = {}
    for i in range(900):
        sampler = host.create("sampler", "random", {"seed": i})
        picks = sampler.sample(make_input(), BASELINE, 2)
        assert picks[0] == BASELINE
        counts[picks[1]] = counts.get(picks[1], 0) + 1
    assert BASELINE not in counts
    assert len(counts) == 29
    assert max(counts.values()) < 3 * 900 / 29
    inclusion = host.create("sampler", "random").inclusion(make_input(), BASELINE, 4)
    assert inclusion[BASELINE.text] == 1.0
    assert {round(p, 9) for t, p in inclusion.items() if t != BASELINE.text} == {round(3 / 29, 9)}
    assert len(inclusion) == 30


def test_deterministic_sampler_inclusion_matches_its_draws(
    host: PluginHost, make_input: MakeInput
) -> None:
    x = make_input(risk="high")
    seen: dict[str, int] = {}
    for i in range(400):
        for action in host.create("sampler", "deterministic", {"seed": i}).sample(x, BASELINE, 4):
            seen[action.text] = seen.get(action.text, 0) + 1
    inclusion = host.create("sampler", "deterministic").inclusion(x, BASELINE, 4)
    assert inclusion[BASELINE.text] == inclusion["serial_handoff|1|15|NA"] == 1.0
    for text, p in inclusion.items():
        assert abs(seen.get(text, 0) / 400 - p) < 0.06, text


def test_coverage_sampler_balances_tries_across_the_bench(
    host: PluginHost, make_input: MakeInput
) -> None:
    sampler = host.create("sampler", "coverage", {"seed": 1})
    tried: dict[str, int] = {}
    for i in range(29):
        picks = sampler.sample(make_input(issue_id=str(i)), BASELINE, 2)
        assert picks[0] == BASELINE
        tried[picks[1].text] = tried.get(picks[1].text, 0) + 1
    # 29 issues, one free place each, 29 other actions: every one tried exactly once.
    assert len(tried) == 29 and set(tried.values()) == {1}
    first = host.create("sampler", "coverage", {"seed": 1})
    second = host.create("sampler", "coverage", {"seed": 1})
    inputs = [make_input(issue_id=str(i)) for i in range(40)]
    assert [first.sample(x, BASELINE, 3) for x in inputs] == [
        second.sample(x, BASELINE, 3) for x in inputs
    ]


def test_deterministic_sampler_orders_baseline_other_topology_then_shuffle(
    host: PluginHost, make_input: MakeInput
) -> None:
    planner_input = make_input(risk="high")
    picks = host.create("sampler", "deterministic", {"seed": 3}).sample(planner_input, BASELINE, 6)
    assert picks[0] == BASELINE
    assert picks[1] == JointAction("serial_handoff", 1, 15, NA)
    other_seed = host.create("sampler", "deterministic", {"seed": 4}).sample(
        planner_input, BASELINE, 6
    )
    assert other_seed[:2] == picks[:2] and other_seed[2:] != picks[2:]
    serial = JointAction("serial_handoff", 1, 30, NA)
    from_serial = host.create("sampler", "deterministic").sample(planner_input, serial, 2)
    assert from_serial == (serial, JointAction("speculate_vote", 1, 15, NA))


def test_deterministic_sampler_refuses_an_invalid_baseline(
    host: PluginHost, make_input: MakeInput
) -> None:
    with pytest.raises(InvalidActionError):
        host.create("sampler", "deterministic").sample(
            make_input(), JointAction("serial_handoff", 3, NA, NA), 2
        )


@pytest.mark.parametrize("name", ["random", "deterministic", "coverage"])
def test_samplers_reject_k_below_one(host: PluginHost, make_input: MakeInput, name: str) -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        host.create("sampler", name).sample(make_input(), BASELINE, 0)


def test_action_distribution_checks_its_probabilities() -> None:
    actions = (A, B)
    with pytest.raises(ValueError, match="sum to"):
        ActionDistribution(actions, np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="2 actions"):
        ActionDistribution(actions, np.array([1.0]))
    for bad in ([np.nan, 1.0], [np.inf, 0.0], [-0.5, 1.5], [np.nan, np.nan]):
        with pytest.raises(ValueError, match="finite and non-negative"):
            ActionDistribution(actions, np.array(bad))
    ActionDistribution(actions, np.array([0.5, 0.5 + 1e-5]))  # float32 rounding is tolerated
    dist = ActionDistribution(actions, np.array([0.25, 0.75]))
    assert dist.best() == (B, 0.75)
    assert dist.prob_of(C) == 0.0
    assert dist.as_joint_probs() == {"joint": {A.text: 0.25, B.text: 0.75}}


def test_sim_executor_runs_the_world_that_wrote_the_archives(
    host: PluginHost, make_input: MakeInput
) -> None:
    from swarm_planner.core.protocols import Executor
    from swarm_planner.sim.world import World

    executor = host.create("executor", "sim", {"seed": 3})
    assert isinstance(executor, Executor)
    planner_input = make_input(risk="high")
    action = JointAction("speculate_vote", 2, 30, NA)
    outcome = executor.run(planner_input, action)
    truth = World(3).run_action(planner_input.issue, "code", action, attempt=2, salt="bench")
    assert (outcome.verified, outcome.status, outcome.duration_ms, outcome.cost_usd) == (
        truth.verified,
        truth.status,
        truth.duration_ms,
        truth.cost_usd,
    )
    assert executor.run(planner_input, action) == outcome
    with pytest.raises(InvalidActionError):
        executor.run(planner_input, JointAction("serial_handoff", 2, 30, NA))
