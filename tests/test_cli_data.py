"""The data commands, end to end through the CLI on a small simulated root."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from swarm_planner.cli.app import app

runner = CliRunner()


def test_simulate_build_check_and_stats(tmp_path: Path) -> None:
    root, out = tmp_path / "root", tmp_path / "ds"
    result = runner.invoke(
        app, ["simulate", "--out", str(root), "--issues", "600", "--seed", "2", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("wrote 600 runs of ")

    result = runner.invoke(app, ["build-dataset", "--root", str(root), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "rows: 600  splits: {'train': 480, 'val': 60, 'test': 60}" in result.stdout
    meta = json.loads((out / "meta.json").read_text())
    assert f"dataset_hash: {meta['dataset_hash']}" in result.stdout

    result = runner.invoke(app, ["check-dataset", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert {g["name"] for g in json.loads(result.stdout)} == {
        "hash_matches_meta",
        "enough_examples",
        "near_duplicates_agree",
        "label_entropy",
        "splits_non_empty",
    }

    result = runner.invoke(app, ["check-dataset", str(out), "--min-examples", "5000"])
    assert result.exit_code == 1
    assert "FAIL  enough_examples" in result.stdout

    result = runner.invoke(app, ["stats", "--root", str(root), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["runs"] == 600
    table = runner.invoke(app, ["stats", "--root", str(root)]).stdout
    assert "\nlane\n" in table and "bin_minutes" in table


def test_build_dataset_options_reach_the_meta(tmp_path: Path) -> None:
    root, out = tmp_path / "root", tmp_path / "ds"
    runner.invoke(app, ["simulate", "--out", str(root), "--issues", "200", "-q"])
    args = [
        "build-dataset",
        "--root",
        str(root),
        "--out",
        str(out),
        "--n-similar",
        "4",
        "--scorer",
        "field",
        "--window",
        "0",
        "--no-include-world",
        "--json",
        "-q",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    meta = json.loads(result.stdout)
    assert meta["n_similar_runs"] == 4
    assert meta["retrieval"] == {"scorer": "field", "window": None}
    assert meta["include_world"] is False


def test_strict_mode_and_a_missing_root_are_clear_errors(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["build-dataset", "--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), "-q"],
    )
    assert result.exit_code != 0
    assert "no .cyntra/archives folder" in str(result.exception)
    root = tmp_path / "root"
    runner.invoke(app, ["simulate", "--out", str(root), "--issues", "30", "-q"])
    victim = sorted((root / ".cyntra" / "archives").iterdir())[3]
    for name in ("proof.json", "rollout.json"):
        if (victim / name).exists():
            (victim / name).write_text("{")
    result = runner.invoke(
        app, ["build-dataset", "--root", str(root), "--out", str(tmp_path / "o"), "--strict", "-q"]
    )
    assert result.exit_code != 0
    assert victim.name in str(result.exception) and "malformed JSON" in str(result.exception)
