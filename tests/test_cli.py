"""The command line: thin commands, data output, one clear error line on bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_main
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
    assert lines[-1].split()[:3] == ["selector", "utility", "swarm-planner"]


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


def test_a_plugin_collision_is_one_error_line_and_exit_2(
    installed: list[Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from plugin_fixtures import FakeEntryPoint, selector_plugin

    installed.append(FakeEntryPoint("clash", selector_plugin("lexicographic"), "planner-clash"))
    monkeypatch.setenv("SWARM_PLANNER_LOAD_PLUGINS", "planner-clash")
    code, err = run_main(monkeypatch, capsys, "list-plugins")
    assert code == 2
    assert err.startswith("error: selector 'lexicographic' is registered twice")
    assert "Traceback" not in err


def test_a_failed_plugin_is_named_when_its_policy_is_asked_for_and_debug_shows_why(
    installed: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from plugin_fixtures import FakeEntryPoint

    installed.append(FakeEntryPoint("riskcap", ImportError("no module named 'numpyy'"), "riskcap"))
    monkeypatch.setenv("SWARM_PLANNER_LOAD_PLUGINS", "riskcap")
    monkeypatch.setenv("SWARM_PLANNER_DEBUG", "0")  # restored after --debug sets it
    (tmp_path / "meta.json").write_text("{}")
    code, err = run_main(
        monkeypatch, capsys, "eval", "--dataset", str(tmp_path), "--policy", "riskcap"
    )
    assert code == 2
    assert "warning: plugin 'riskcap' from riskcap 1.0 failed to load: ImportError" in err
    assert "no policy named 'riskcap'" in err and "installed but failed to load" in err
    assert "Traceback" not in err
    code, err = run_main(
        monkeypatch, capsys, "--debug", "eval", "--dataset", str(tmp_path), "--policy", "riskcap"
    )
    assert code == 2
    assert (
        "Traceback (most recent call last)" in err
        and "ImportError: no module named 'numpyy'" in err
    )


@pytest.mark.parametrize("value", ["0,x", ",", "1,,2", "-1", "99999999999"])
def test_a_bad_list_option_is_a_usage_error_without_a_traceback(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_main(monkeypatch, capsys, "ablate", "--dataset", "x", "--n-similar", value)
    assert code == 2
    assert "--n-similar" in err and "Traceback" not in err


def test_an_unexpected_error_is_one_line_unless_debugging(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from swarm_planner.core import dataset

    def explode(*_: Any, **__: Any) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(dataset, "root_stats", explode)
    monkeypatch.setenv("SWARM_PLANNER_DEBUG", "0")  # restored after --debug sets it
    code, err = run_main(monkeypatch, capsys, "stats", "--root", ".")
    assert code == 1
    assert (
        err
        == "error: unexpected KeyError: 'surprise' (run with --debug for the traceback, and please report it)\n"
    )
    code, err = run_main(monkeypatch, capsys, "--debug", "stats", "--root", ".")
    assert "Traceback (most recent call last)" in err
