"""The README's five-minute tour runs as written, line by line, on a kernel root of the
embedded world, and the deployment snippet under it serves the bundle the tour trained.

Only the surroundings are the test's: ``HOME`` is a folder holding ``kernel/`` (so the tour's
``~/kernel`` is a real root of 600 archived runs), ``kernel.yaml`` names a small sh kernel as
the bench's command (tests/bench_commands/tour_kernel.sh), and ``planner_input.json`` is the
first row's input of the dataset the tour built (what a kernel would hand ``planner plan``).
The command lines themselves are read from the README and run unchanged.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from swarm_planner.core.contracts import load_input
from swarm_planner.kernel_integration.service import PlannerService

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
KERNEL = ROOT / "tests" / "bench_commands" / "tour_kernel.sh"

needs_torch = pytest.mark.skipif(
    os.environ.get("SWARM_PLANNER_EXPECT_TORCH") == "0", reason="the tour trains (train extra)"
)


def tour_lines() -> list[str]:
    section = README.split("## A five-minute tour", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert block is not None, "the tour's bash block"
    lines = [line.split("  #", 1)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def deploy_snippet() -> dict[str, object]:
    section = README.split("Deploying a bundle:", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, flags=re.S)
    assert block is not None, "the deployment snippet"
    snippet: dict[str, object] = yaml.safe_load(block.group(1))
    return snippet


def test_the_tour_is_the_pipeline_in_order() -> None:
    commands = [line.split()[1] for line in tour_lines()]
    assert commands == [
        "stats",
        "build-dataset",
        "check-dataset",
        "train",
        "eval",
        "bench",
        "report",
        "build-outcome-dataset",
        "train",
        "eval-outcomes",
        "plan",
    ]


@needs_torch
def test_every_line_of_the_tour_runs_and_the_snippet_serves_its_bundle(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }

    def sh(line: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", line],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    made = sh("planner simulate --out ~/kernel --issues 600 --seed 0")
    assert made.returncode == 0, made.stderr
    (tmp_path / "kernel.yaml").write_text(
        yaml.safe_dump(
            {
                "planner": {
                    "bench": {"executor": "command", "executor_options": {"command": [str(KERNEL)]}}
                }
            }
        )
    )
    outputs: dict[str, str] = {}
    for line in tour_lines():
        if "planner_input.json" in line:
            with (tmp_path / "runs" / "dataset" / "dataset.jsonl").open() as rows:
                first = json.loads(rows.readline())
            (tmp_path / "planner_input.json").write_text(json.dumps(first["planner_input"]))
        done = sh(line)
        assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        outputs[line] = done.stdout

    runs = tmp_path / "runs"
    assert (runs / "mlp" / "model.onnx").is_file() and (runs / "value" / "model.onnx").is_file()
    assert sorted(p.suffix for p in (runs / "plots").iterdir()) and any(
        p.suffix == ".png" for p in (runs / "plots").iterdir()
    )
    bench = json.loads((runs / "bench" / "results" / "best_of_k.json").read_text())
    assert len(bench) == 600  # every archived run of the root was benched
    assert (
        "Every record of the bench was read: 600 issues"
        in (runs / "bench" / "report.md").read_text()
    )
    assert outputs[tour_lines()[-1]].startswith("runs ")  # the action the kernel would run

    # The deployment snippet, as a kernel's config, serves the value bundle the tour trained.
    config = tmp_path / "deploy.yaml"
    config.write_text(yaml.safe_dump(deploy_snippet()))
    os.chdir(tmp_path)  # the snippet's bundle path is relative, as a kernel's would be
    try:
        service = PlannerService.from_config_file(config)
        x = load_input(json.loads((tmp_path / "planner_input.json").read_text()))
        decision = service.decide(x)
    finally:
        os.chdir(ROOT)
    assert service.model is not None, service.load_state.error
    assert decision.mode == "log" and decision.reason == "log_only", decision.detail
