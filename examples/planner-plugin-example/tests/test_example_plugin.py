"""The entry-point path, end to end, with a real installed third-party package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from swarm_planner.core.action_space import ActionSpace, JointAction
from swarm_planner.core.config import load_config
from swarm_planner.core.contracts import (
    History,
    Issue,
    PlannerInput,
    UniverseDefaults,
)
from swarm_planner.core.plugins import PluginHost
from swarm_planner.core.protocols import CandidateOutcome


def _planner(
    *args: str, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SWARM_PLANNER_LOAD_PLUGINS"}
    env.update(env_extra or {})
    exe = Path(sys.executable).with_name("planner")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, check=False)


@pytest.fixture()
def host() -> PluginHost:
    h = PluginHost()
    h.load_entry_points(allowlist=["planner-plugin-example"])
    return h


def test_list_plugins_json_lists_the_example_beside_the_builtins() -> None:
    result = _planner("list-plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(result.stdout)}
    assert rows["selector", "cheapest"]["distribution"] == "planner-plugin-example"
    assert rows["selector", "cheapest"]["version"] == "0.1.0"
    assert rows["fallback", "always_serial"]["distribution"] == "planner-plugin-example"
    assert rows["selector", "lexicographic"]["distribution"] == "swarm-planner"


def test_allowlist_excludes_the_example_when_empty() -> None:
    result = _planner("list-plugins", "--json", env_extra={"SWARM_PLANNER_LOAD_PLUGINS": ""})
    assert result.returncode == 0, result.stderr
    names = {r["name"] for r in json.loads(result.stdout)}
    assert "cheapest" not in names and "lexicographic" in names


def test_config_selects_the_example_plugins(tmp_path: Path, host: PluginHost) -> None:
    cfg = tmp_path / "kernel.yaml"
    cfg.write_text(
        "planner:\n"
        "  model: {fallback: always_serial, fallback_options: {max_minutes: 30}}\n"
        "  bench: {selector: cheapest}\n"
    )
    config = load_config(cfg, host=host)
    fallback = host.create("fallback", config.model.fallback, config.model.fallback_options)
    selector = host.create("selector", config.bench.selector, config.bench.selector_options)
    planner_input = PlannerInput(
        "cyntra.planner_input.v1",
        "2025-01-01T00:00:00Z",
        "u",
        "code",
        UniverseDefaults(),
        Issue("1", dk_risk="critical"),
        History(),
        ActionSpace(),
    )
    assert fallback.decide(planner_input) == JointAction("serial_handoff", 1, 30, "NA")
    outcomes = [
        CandidateOutcome(JointAction("serial_handoff", 1, 30, "NA"), True, "success", 10, 2.0),
        CandidateOutcome(JointAction("speculate_vote", 2, 30, "NA"), True, "success", 50, 1.0),
    ]
    assert selector.select(outcomes) == 1


def test_cli_config_show_accepts_the_example_names(tmp_path: Path) -> None:
    cfg = tmp_path / "kernel.yaml"
    cfg.write_text("planner:\n  bench: {selector: cheapest}\n")
    result = _planner("config", "show", "--config", str(cfg))
    assert result.returncode == 0, result.stderr
    assert "selector: cheapest" in result.stdout
