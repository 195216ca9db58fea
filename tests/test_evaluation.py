"""Scoring named policies with their options (no torch: the heuristic and a plugin's options)."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarm_planner.core.dataset import DatasetError, build_dataset
from swarm_planner.core.errors import ConfigError
from swarm_planner.core.evaluation import PolicySpec, evaluate, policy_specs, resolve_policy
from swarm_planner.core.plugins import PluginHost


def test_assignments_go_to_the_only_policy_or_the_one_named() -> None:
    assert policy_specs(["heuristic"], ["default.max_candidates=1"]) == [
        PolicySpec("heuristic", {"default": {"max_candidates": 1}})
    ]
    specs = policy_specs(
        ["heuristic", "riskcap"],
        ["riskcap:max_candidates=2", "riskcap:max_minutes=NA", "heuristic:rules={}"],
    )
    assert specs == [
        PolicySpec("heuristic", {"rules": {}}),
        PolicySpec("riskcap", {"max_candidates": 2, "max_minutes": "NA"}),
    ]


@pytest.mark.parametrize(
    ("refs", "assignment", "problem"),
    [
        (["a", "b"], "k=1", "say which policy it is for"),
        (["a"], "b:k=1", "'b' is not a --policy given"),
        (["a"], "k", r"expected \[POLICY:\]KEY=VALUE"),
        (["a"], "k..x=1", "is not a key"),
        (["a"], "k=[1,", "the value is not YAML"),
        (["a"], "k=1", None),
    ],
)
def test_bad_assignments_are_config_errors(
    refs: list[str], assignment: str, problem: str | None
) -> None:
    if problem is None:
        assert policy_specs(refs, [assignment])[0].options == {"k": 1}
        return
    with pytest.raises(ConfigError, match=problem):
        policy_specs(refs, [assignment])


def test_a_path_that_is_not_a_bundle_is_named_as_such(host: PluginHost) -> None:
    with pytest.raises(DatasetError, match=r"--policy /no/such/dir: no bundle folder at /no/such"):
        resolve_policy("/no/such/dir", host)


def test_options_reach_the_policy_and_change_its_answers(
    sim_root: Path, tmp_path: Path, host: PluginHost
) -> None:
    build_dataset(sim_root, tmp_path / "ds")
    serial = {"swarm_id": "serial_handoff", "max_candidates": 1}
    specs = [
        PolicySpec("heuristic"),
        PolicySpec("heuristic", {"rules": {"critical": serial, "high": serial}}, "all serial"),
    ]
    result = evaluate(tmp_path / "ds", specs, split="all", host=host)
    assert (
        result.metrics["heuristic"]["distinct_actions"]
        > result.metrics["all serial"]["distinct_actions"]
    )
    with pytest.raises(
        ConfigError, match=r"--policy heuristic.rules: unknown risk level\(s\) \['hihg'\]"
    ):
        evaluate(tmp_path / "ds", [PolicySpec("heuristic", {"rules": {"hihg": serial}})], host=host)
