"""The entry-point path, end to end, with a real installed third-party package: one plugin of
every kind, picked by name from config and from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from swarm_planner.core.action_space import NA, JointAction
from swarm_planner.core.config import load_config
from swarm_planner.core.contracts import Issue, PlannerInput
from swarm_planner.core.plugins import PluginHost
from swarm_planner.core.protocols import CandidateOutcome
from swarm_planner.core.recording import build_planner_input

KINDS = {
    ("policy", "riskcap"),
    ("sampler", "cheapest_first"),
    ("selector", "cheapest"),
    ("fallback", "always_serial"),
    ("encoder", "keywords"),
    ("executor", "dry_run"),
}


def _planner(
    *args: str, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SWARM_PLANNER_LOAD_PLUGINS"}
    env.update(env_extra or {})
    exe = Path(sys.executable).with_name("planner")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, check=False)


def _input(risk: str = "critical", job_type: str = "code", size: str = "M") -> PlannerInput:
    issue = Issue("1", dk_risk=risk, dk_size=size, tags=("api",), keywords=("token",))
    return build_planner_input(universe_id="u", job_type=job_type, issue=issue)  # type: ignore[arg-type]


@pytest.fixture()
def host() -> PluginHost:
    h = PluginHost()
    h.load_entry_points(allowlist=["planner-plugin-example"])
    return h


def test_list_plugins_json_lists_every_kind_beside_the_builtins() -> None:
    result = _planner("list-plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(result.stdout)}
    for key in KINDS:
        assert rows[key]["distribution"] == "planner-plugin-example"
        assert rows[key]["version"] == "0.1.0"
    assert rows["selector", "lexicographic"]["distribution"] == "swarm-planner"


def test_allowlist_excludes_the_example_when_empty() -> None:
    result = _planner("list-plugins", "--json", env_extra={"SWARM_PLANNER_LOAD_PLUGINS": ""})
    assert result.returncode == 0, result.stderr
    names = {r["name"] for r in json.loads(result.stdout)}
    assert "cheapest" not in names and "lexicographic" in names


def test_the_riskcap_policy_caps_and_answers_over_the_valid_actions(host: PluginHost) -> None:
    policy = host.create("policy", "riskcap", {"max_candidates": 2, "max_minutes": 30})
    planner_input = _input("critical")
    dist = policy.predict(planner_input)
    assert dist.actions == planner_input.action_space.valid_actions("code")
    assert dist.best() == (JointAction("speculate_vote", 2, 30, NA), pytest.approx(0.9))
    assert np.isclose(dist.probs.sum(), 1.0)
    serial = host.create("policy", "riskcap", {"max_candidates": 1}).predict(planner_input)
    assert serial.best()[0] == JointAction("serial_handoff", 1, NA, NA)


def test_bad_riskcap_options_name_the_key(host: PluginHost) -> None:
    from swarm_planner.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"max_candidates: 0 is below 1"):
        host.create("policy", "riskcap", {"max_candidates": 0})
    with pytest.raises(ConfigError, match=r"max_candidatez: unknown key"):
        host.create("policy", "riskcap", {"max_candidatez": 1})


def test_the_sampler_puts_the_baseline_first_then_the_cheapest(host: PluginHost) -> None:
    sampler = host.create("sampler", "cheapest_first")
    baseline = JointAction("speculate_vote", 3, NA, NA)
    picked = sampler.sample(_input(), baseline, 3)
    assert picked[0] == baseline
    # 15 agent-minutes each, ties in action-text order.
    assert picked[1:] == (
        JointAction("serial_handoff", 1, 15, NA),
        JointAction("speculate_vote", 1, 15, NA),
    )


def test_the_encoder_hashes_tags_and_keywords_into_its_buckets(host: PluginHost) -> None:
    encoder = host.create("encoder", "keywords", {"buckets": 64})
    features = encoder.encode(_input())
    assert len(features.ids) == 2 and features.ids.max() < 64
    batch = encoder.encode_batch([_input(), _input("low")])
    assert len(batch) == 2 and list(batch.offsets) == [0, 2, 4]


def test_the_dry_run_executor_follows_the_issue_size(host: PluginHost) -> None:
    executor = host.create("executor", "dry_run")
    short = executor.run(_input(size="L"), JointAction("serial_handoff", 1, 30, NA))
    long = executor.run(_input(size="L"), JointAction("speculate_vote", 2, 120, NA))
    assert (short.verified, short.status, short.duration_ms) == (False, "timeout", 30 * 60_000)
    assert (long.verified, long.cost_usd) == (True, pytest.approx(2 * 80 * 0.01))


def test_config_selects_the_example_plugins(tmp_path: Path, host: PluginHost) -> None:
    cfg = tmp_path / "kernel.yaml"
    cfg.write_text(
        "planner:\n"
        "  model: {type: riskcap, options: {max_candidates: 1}, fallback: always_serial,\n"
        "          fallback_options: {max_minutes: 30}}\n"
        "  bench: {sampler: cheapest_first, selector: cheapest, executor: dry_run}\n"
    )
    config = load_config(cfg, host=host)
    fallback = host.create("fallback", config.model.fallback, config.model.fallback_options)
    selector = host.create("selector", config.bench.selector, config.bench.selector_options)
    assert fallback.decide(_input()) == JointAction("serial_handoff", 1, 30, NA)
    outcomes = [
        CandidateOutcome(JointAction("serial_handoff", 1, 30, NA), True, "success", 10, 2.0),
        CandidateOutcome(JointAction("speculate_vote", 2, 30, NA), True, "success", 50, 1.0),
    ]
    assert selector.select(outcomes) == 1


def test_planner_eval_takes_the_policys_options_from_the_command_line_and_config(
    tmp_path: Path,
) -> None:
    root, dataset = tmp_path / "root", tmp_path / "ds"
    for args in (
        ("simulate", "--out", str(root), "--issues", "300", "--seed", "2", "-q"),
        ("build-dataset", "--root", str(root), "--out", str(dataset), "-q"),
    ):
        done = _planner(*args)
        assert done.returncode == 0, done.stderr
    cfg = tmp_path / "kernel.yaml"
    cfg.write_text("planner:\n  model: {type: riskcap, options: {max_candidates: 3}}\n")
    result = _planner(
        "eval", "--dataset", str(dataset), "--policy", "riskcap",
        "--policy-option", "max_candidates=1", "--config", str(cfg), "--json", "--split", "all",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    scored = json.loads(result.stdout)["policies"]
    capped, configured = scored["riskcap"], scored["riskcap (kernel.yaml)"]
    # Capped at 1, every answer is serial: one action for code, one for fab-world.
    assert capped["distinct_actions"] == 2
    assert configured["distinct_actions"] == 6  # and serial, x2, x3 for each
    bad = _planner("eval", "--dataset", str(dataset), "--policy", "riskcap",
                   "--policy-option", "max_candidates=0")  # fmt: skip
    assert bad.returncode == 2
    assert "--policy riskcap.max_candidates: 0 is below 1" in bad.stderr
    assert "Traceback" not in bad.stderr
