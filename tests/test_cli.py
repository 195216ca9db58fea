"""The command line: thin commands, data output, one clear error line on bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from test_plugins import BUILTINS
from typer.testing import CliRunner

from swarm_planner.cli.app import app

runner = CliRunner()


def test_list_plugins_json_is_a_sorted_list_of_objects() -> None:
    result = runner.invoke(app, ["list-plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["kind"], r["name"]) for r in rows] == sorted(BUILTINS)
    for row in rows:
        assert {"kind", "name", "distribution", "version", "module"} <= set(row)
        assert row["distribution"] == "swarm-planner"


def test_list_plugins_table_has_a_header_and_a_row_per_plugin() -> None:
    result = runner.invoke(app, ["list-plugins"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["kind", "name", "distribution", "version", "module"]
    assert len(lines) == 2 + len(BUILTINS)
    assert lines[-1].split()[:3] == ["selector", "lexicographic", "swarm-planner"]


def test_config_show_prints_the_effective_config(tmp_path: Path) -> None:
    path = tmp_path / "kernel.yaml"
    path.write_text("planner: {mode: log}\n")
    result = runner.invoke(app, ["config", "show", "--config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)["planner"]
    assert shown["mode"] == "log"
    assert shown["model"]["type"] == "heuristic"
    assert shown["action_space"]["max_minutes_bins"] == [15, 30, 45, 60, 120, "NA"]


def _planner_exe() -> str:
    exe = Path(sys.executable).with_name("planner")
    return str(exe) if exe.exists() else (shutil.which("planner") or "planner")


def test_the_installed_console_script_reports_bad_config_in_one_message(tmp_path: Path) -> None:
    path = tmp_path / "kernel.yaml"
    path.write_text("planner: {mode: shadow}\n")
    result = subprocess.run(
        [_planner_exe(), "config", "show", "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "planner.mode: 'shadow' is not one of off|log|enforce" in result.stderr


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from swarm_planner.cli.app import app\n"
        "from typer.testing import CliRunner\n"
        "CliRunner().invoke(app, ['--help'])\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'onnx') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
