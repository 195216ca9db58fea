"""The kernel path imports and runs with torch absent (tox envs without torch assert it)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

KERNEL_PATH_MODULES = [
    "swarm_planner",
    "swarm_planner.core.action_space",
    "swarm_planner.core.config",
    "swarm_planner.core.contracts",
    "swarm_planner.core.plugins",
    "swarm_planner.plugins.models.heuristic",
    "swarm_planner.plugins.fallbacks.heuristic",
    "swarm_planner.plugins.selectors.lexicographic",
    "swarm_planner.plugins.samplers.random_sampler",
    "swarm_planner.plugins.samplers.deterministic",
    "swarm_planner.plugins.executors.sim",
    "swarm_planner.plugins.encoders.compositional",
    "swarm_planner.plugins.models.torch_policy",
    "swarm_planner.plugins.models.onnx_policy",
    "swarm_planner.core.metrics",
    "swarm_planner.core.calibration",
    "swarm_planner.core.evaluation",
    "swarm_planner.kernel_integration",
    "swarm_planner.kernel_integration.service",
    "swarm_planner.kernel_integration.sidecar",
    "swarm_planner.kernel_integration.field",
    "swarm_planner.kernel_integration.loop",
    "swarm_planner.kernel_integration.offpolicy",
    "swarm_planner.plugins.models.value",
    "swarm_planner.plugins.models.table",
    "swarm_planner.cli.app",
]


@pytest.mark.skipif(
    os.environ.get("SWARM_PLANNER_EXPECT_TORCH") != "0", reason="only in no-torch envs"
)
def test_torch_is_really_absent_in_this_environment() -> None:
    assert importlib.util.find_spec("torch") is None


@pytest.mark.skipif(
    os.environ.get("SWARM_PLANNER_EXPECT_TORCH") != "1", reason="only in the torch env"
)
def test_torch_is_installed_in_the_training_environment() -> None:
    import torch

    assert torch.__version__.startswith("2.13.0")


def test_kernel_path_modules_never_import_torch() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {KERNEL_PATH_MODULES!r}: importlib.import_module(m)\n"
        "from swarm_planner.core.plugins import PluginHost\n"
        "h = PluginHost(); h.load_entry_points(allowlist=[])\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_serving_an_exported_bundle_through_the_service_never_imports_torch() -> None:
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures"
    code = (
        "import json, sys\n"
        "from swarm_planner.core.config import parse_config\n"
        "from swarm_planner.core.contracts import PlannerInput, load\n"
        "from swarm_planner.kernel_integration.service import PlannerService, bundle_config\n"
        f"cfg = parse_config(bundle_config({str(fixtures / 'tiny-bundle')!r}))\n"
        f"x = load(json.load(open({str(fixtures / 'tiny_planner_input.json')!r})), PlannerInput)\n"
        "d = PlannerService(cfg).decide(x)\n"
        "print(d.model.split('@')[0], 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["mlp", "False"]


def test_plan_of_a_missing_bundle_is_a_decision_not_a_traceback(tmp_path: object) -> None:
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures"
    code = "from swarm_planner.cli.app import main; main()"
    args = ["plan", "--bundle", "/nowhere", "--input", str(fixtures / "tiny_planner_input.json")]
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "model_unavailable" in out.stdout and "Traceback" not in out.stderr
