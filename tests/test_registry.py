"""The model registry: versions with lineage, atomic promotion and rollback, and a decision
service that follows ``current``."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import run_planner

from swarm_planner.core.config import parse_config
from swarm_planner.core.contracts import load_input
from swarm_planner.core.errors import PlannerError
from swarm_planner.core.registry import PROMOTIONS, Registry, RegistryError, resolve_model_path
from swarm_planner.kernel_integration.service import PlannerService

FIXTURES = Path(__file__).parent / "fixtures"
BUNDLE = FIXTURES / "tiny-bundle"
INPUT = json.loads((FIXTURES / "tiny_planner_input.json").read_text())


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    reg = Registry(tmp_path / "reg")
    reg.add(BUNDLE)
    reg.add(BUNDLE, {"parent": "v1", "stage": "quality", "pipeline": "p"})
    return reg


def test_versions_are_numbered_and_carry_their_lineage(registry: Registry) -> None:
    assert registry.versions() == ["v1", "v2"]
    lineage = registry.lineage("v2")
    assert (lineage.parent, lineage.stage, lineage.pipeline) == ("v1", "quality", "p")
    assert lineage.model_type == "mlp" and lineage.source == str(BUNDLE.resolve())
    assert lineage.promoted_at is None and registry.current() is None
    # The copy is a sealed bundle of its own: it opens without the original.
    assert (registry.path_of("v2") / "model.onnx").read_bytes() == (
        BUNDLE / "model.onnx"
    ).read_bytes()


def test_a_lineage_with_unknown_keys_or_a_broken_bundle_is_not_added(
    registry: Registry, tmp_path: Path
) -> None:
    with pytest.raises(PlannerError, match="nonsense"):
        registry.add(BUNDLE, {"nonsense": 1})
    broken = tmp_path / "broken"
    shutil.copytree(BUNDLE, broken)
    (broken / "model.onnx").write_bytes(b"not the sealed model")
    with pytest.raises(RegistryError, match="not added"):
        registry.add(broken)
    assert registry.versions() == ["v1", "v2"]  # nothing half-added


def test_promotion_and_rollback_are_a_stack_of_what_was_current(registry: Registry) -> None:
    registry.add(BUNDLE)
    for version in ("v1", "v2", "v3"):
        registry.promote(version)
    assert registry.lineage("v3").promoted_by
    assert registry.rollback().version == "v2"
    assert registry.rollback().version == "v1"
    with pytest.raises(RegistryError, match="nothing was current before v1"):
        registry.rollback()
    with pytest.raises(RegistryError, match=r"no version v9 \(versions: v1, v2, v3\)"):
        registry.promote("v9")


def test_a_promotion_cut_short_before_the_pointer_moved_did_not_happen(
    registry: Registry,
) -> None:
    registry.promote("v1")
    registry.promote("v2")
    with open(registry.folder / PROMOTIONS, "a") as log:  # appended, then the process died
        log.write(
            json.dumps(
                {"action": "promote", "version": "v1", "previous": "v2", "by": "x", "at": "t"}
            )
            + "\n"
        )
        log.write('{"action": "promote", "vers')  # and a torn line after it
    assert registry.current_version() == "v2"
    assert registry.history() == ["v1", "v2"]
    assert registry.rollback().version == "v1"


_FLIPPER = """
import sys
from swarm_planner.core.registry import Registry
reg = Registry(sys.argv[1])
print("ready", flush=True)
while True:
    for version in ("v1", "v2"):
        reg.promote(version)
"""


def test_killing_a_promotion_at_any_moment_leaves_a_readable_current(registry: Registry) -> None:
    registry.promote("v1")
    rng = random.Random(5)
    for _ in range(12):
        flipper = subprocess.Popen(
            [sys.executable, "-c", _FLIPPER, str(registry.folder)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert flipper.stdout is not None and flipper.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.01, 0.25))
        os.kill(flipper.pid, signal.SIGKILL)
        flipper.wait()
        current = registry.current()  # a whole file, never a torn one
        assert current is not None and current.version in ("v1", "v2")
        assert registry.history()[-1] == current.version
        assert resolve_model_path(f"registry://{registry.folder}")[1] == current.version
    assert len(registry.promotions()) > 12  # it did promote, many times, while being killed


def test_the_service_serves_the_current_version_and_follows_a_promotion(
    registry: Registry,
) -> None:
    registry.promote("v1")
    now = [0.0]
    config = parse_config(
        {"mode": "enforce", "model": {"type": "onnx", "path": f"registry://{registry.folder}"}}
    )
    service = PlannerService(config, clock=lambda: now[0])
    x = load_input(INPUT)
    first = service.decide(x)
    assert service.model is not None and service.model.version == "v1"
    assert first.model is not None and first.model.startswith("mlp@v1:")
    assert service.info()["registry_version"] == "v1"
    registry.promote("v2")
    assert service.decide(x).model.startswith("mlp@v1:")  # type: ignore[union-attr]  # not yet polled
    now[0] += 1.5
    service.decide(x)  # sees the promotion; v2 loads in the background
    deadline = time.monotonic() + 20
    while service.model.version != "v2" and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.05)
    later = service.decide(x)
    assert later.model is not None and later.model.startswith("mlp@v2:")
    assert later.planner_action.model is not None
    assert later.planner_action.model.checkpoint_id.startswith("mlp@v2:")


def test_a_registry_with_nothing_current_is_a_recorded_fallback(registry: Registry) -> None:
    config = parse_config(
        {"mode": "enforce", "model": {"type": "onnx", "path": f"registry://{registry.folder}"}}
    )
    decision = PlannerService(config).decide(load_input(INPUT))
    assert decision.reason == "model_unavailable"
    assert decision.detail is not None and "no current version" in decision.detail


def test_the_models_commands_list_show_promote_and_roll_back(registry: Registry) -> None:
    def planner(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SWARM_PLANNER_REGISTRY": str(registry.folder)}
        return run_planner(*args, timeout=120, env=env)

    assert planner("models", "promote", "v1").stdout.strip() == "current: v1 (was none)"
    assert planner("models", "promote", "v2").stdout.strip() == "current: v2 (was v1)"
    listed = json.loads(planner("models", "list", "--json").stdout)
    assert listed["current"] == "v2" and [v["version"] for v in listed["versions"]] == ["v1", "v2"]
    shown = json.loads(planner("models", "show", "current", "--json").stdout)
    assert shown["version"] == "v2" and shown["parent"] == "v1" and shown["current"] is True
    assert planner("models", "rollback").stdout.strip() == "current: v1 (rolled back from v2)"
    missing = planner("models", "show", "v7")
    assert missing.returncode == 2 and "no version v7" in missing.stderr
