"""Hostile input: no traceback, no hang, no memory blow-up, no stale answer.

Each case is one a hostile (or unlucky) user met: the CLI answers with one error line naming the
file or option and exits 2; an archive build skips and counts the bad file and goes on; the
kernel path raises a ContractError before any model work. Cases that could hang or eat memory
run in a subprocess with a timeout.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from cli_helpers import run_main
from kernel_fixtures import manifest, proof, write_run

from swarm_planner.core.archives import read_root
from swarm_planner.core.config import load_config
from swarm_planner.core.contracts import (
    Gate,
    History,
    Issue,
    Outcome,
    PlannerInput,
    RunSummary,
    SystemState,
    load,
)
from swarm_planner.core.errors import ConfigError, ContractError

FIXTURES = Path(__file__).parent / "fixtures"
BUNDLE = FIXTURES / "tiny-bundle"
TINY_INPUT = FIXTURES / "tiny_planner_input.json"


def _planner(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("planner")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    first = err.strip().splitlines()[0]
    assert first.startswith("error: "), err
    return first


# -- reading files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"issue": "\xff\xfe"}', "not UTF-8: byte 0xff at offset 11 (line 1)"),
        ('{"a": "café"}'.encode("latin-1"), "not UTF-8: byte 0xe9 at offset 10"),
        (b"[" * 200_000 + b"]" * 200_000, "nested 200000 levels deep; the limit is 64"),
        (b'{"a": ' + b"9" * 6000 + b"}", "a: a 6000-digit integer is beyond the 64-bit range"),
        (b'{"a": 1, "a": 2}', "a: key given more than once"),
        (b'{"a": NaN}', "a: NaN is not a finite number"),
        (b'{"tags": ["\\ud800"]}', r"tags[0]: holds a lone UTF-16 surrogate"),
    ],
)
def test_plan_refuses_a_hostile_input_file_in_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    problem: str,
) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(content)
    code, err = run_main(monkeypatch, capsys, "plan", "--bundle", str(BUNDLE), "--input", str(path))
    assert code == 2
    line = _one_error_line(err)
    assert str(path) in line and problem in line


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.parametrize("kind", ["device", "symlink to a device", "fifo"])
def test_files_that_never_end_are_refused_at_once(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "input.json"
    if kind == "device":
        path = Path("/dev/zero")
    elif kind == "symlink to a device":
        path.symlink_to("/dev/zero")
    else:
        os.mkfifo(path)
    for args in (
        ("plan", "--bundle", str(BUNDLE), "--input", str(path)),
        ("config", "show", "--config", str(path)),
    ):
        done = _planner(*args, timeout=30)
        assert done.returncode == 2
        _one_error_line(done.stderr)
        assert "not a regular file" in done.stderr


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        bomb.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    text = "\n".join(bomb) + "\nplanner:\n  flags: {enabled_job_types: *a8}\n"
    path = tmp_path / "kernel.yaml"
    path.write_text(text)
    done = _planner("config", "show", "--config", str(path), timeout=30)
    assert done.returncode == 2
    _one_error_line(done.stderr)
    assert "aliases expand it to more than" in done.stderr


def test_duplicate_keys_in_yaml_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "kernel.yaml"
    path.write_text("planner:\n  mode: log\n  mode: enforce\n")
    with pytest.raises(ConfigError, match=r"line 3, column 3: .*the key 'mode' is given more"):
        load_config(path)


@pytest.mark.parametrize("mode", ["off", "log", "enforce"])
def test_the_modes_are_read_as_written_in_yaml(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "kernel.yaml"
    path.write_text(f"planner:\n  mode: {mode}\n")
    assert load_config(path).mode == mode


def test_yaml_words_that_were_booleans_are_text_where_a_field_takes_text(tmp_path: Path) -> None:
    path = tmp_path / "kernel.yaml"
    path.write_text("planner:\n  mode: on\n  flags: {enabled_job_types: [yes, no, code]}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == ["planner.mode: 'on' is not one of off|log|enforce"]
    path.write_text("planner:\n  flags: {enabled_job_types: [yes, no, code]}\n")
    assert load_config(path).flags.enabled_job_types == ("yes", "no", "code")


def test_every_problem_of_a_config_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "kernel.yaml"
    path.write_text("planner:\n  model: {type: onxx}\n  safety: {extra: 1, max_minutes_cap: 0}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = "\n".join(info.value.problems)
    assert "planner.safety.extra: unknown key" in problems
    assert "planner.safety.max_minutes_cap: 0 is below 1" in problems
    assert "planner.model.type: no policy named 'onxx'" in problems


# -- archives: one bad file is one counted skip ------------------------------------------------------


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    (tmp_path / ".cyntra" / "archives").mkdir(parents=True)
    write_run(tmp_path, "good", {"manifest.json": manifest(), "proof.json": proof()})
    return tmp_path


@pytest.mark.parametrize(
    ("proof_text", "kind"),
    [
        ('{"status": "success", "metadata": {"cost_usd": NaN}}', "bad value"),
        ('{"status": "success", "metadata": {"cost_usd": Infinity}}', "bad value"),
        ('{"status": "success", "x": ' + "[" * 5000 + "]" * 5000 + "}", "too deep"),
        ('{"status": "success", "metadata": {"tokens_used": ' + "7" * 6000 + "}}", "bad value"),
        ('{"status": "success", "workcell_id": "\\udc80"}', "bad value"),
    ],
)
def test_a_proof_no_document_may_hold_is_one_counted_skip(
    root: Path, proof_text: str, kind: str
) -> None:
    write_run(root, "bad", {"manifest.json": manifest(), "proof.json": proof_text})
    kernel = read_root(root)
    assert [r.summary.run_id for r in kernel.runs] == ["wc-proof"]
    (skip,) = kernel.report.skipped
    assert Path(skip.path).name == "bad" and skip.kind == kind


def test_a_negative_duration_is_dropped_and_the_run_kept(root: Path) -> None:
    bad = proof(workcell_id="neg")
    bad["metadata"]["duration_ms"] = -5
    write_run(root, "neg", {"manifest.json": manifest(), "proof.json": bad})
    kernel = read_root(root)
    runs = {r.summary.run_id: r.summary for r in kernel.runs}
    assert runs["neg"].runtime.duration_ms is None
    assert kernel.report.repairs.counts["bad value dropped: proof.json metadata.duration_ms"] == 1


def test_an_issue_line_with_invalid_utf8_skips_that_line_only(root: Path) -> None:
    beads = root / ".beads"
    beads.mkdir()
    good = json.dumps({"id": "1", "dk_risk": "low"}).encode()
    bad = b'{"id": "2", "title": "\xff"}'
    (beads / "issues.jsonl").write_bytes(good + b"\n" + bad + b"\n" + good.replace(b'"1"', b'"3"'))
    kernel = read_root(root)
    assert sorted(kernel.issues) == ["1", "3"]
    (skip,) = kernel.report.skipped
    assert skip.path.endswith("issues.jsonl:2") and skip.reason.startswith("not UTF-8:")


def test_a_manifest_symlink_loop_is_reported_as_such(root: Path) -> None:
    folder = write_run(root, "loop", {"proof.json": proof(workcell_id="loop")})
    (folder / "manifest.json").symlink_to(folder / "manifest.json")
    kernel = read_root(root)
    assert "loop" in {r.summary.run_id for r in kernel.runs}
    assert kernel.report.repairs.counts["manifest.json ignored: unreadable"] == 1
    assert "proof.json without manifest.json: job_type code, legacy action" not in (
        kernel.report.repairs.counts
    )


def test_a_fifo_or_a_device_in_an_archive_never_hangs_the_build(root: Path) -> None:
    fifo = write_run(root, "fifo", {"proof.json": proof(workcell_id="fifo")})
    os.mkfifo(fifo / "manifest.json")
    if Path("/dev/zero").exists():
        device = write_run(root, "zero", {"manifest.json": manifest()})
        (device / "proof.json").symlink_to("/dev/zero")
    done = _planner("build-dataset", "--root", str(root), "--out", str(root / "ds"), "-q", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)["read_report"]
    assert report["repairs"]["manifest.json ignored: unreadable"] == 1
    if Path("/dev/zero").exists():
        assert report["skip_counts"] == {"unreadable file": 1}


# -- the kernel path: one error type, before any model work -------------------------------------------


@pytest.fixture(scope="module")
def planner_input() -> PlannerInput:
    return load(json.loads(TINY_INPUT.read_text()), PlannerInput)


@pytest.fixture(scope="module")
def onnx_policy() -> Any:
    from swarm_planner.plugins.models.onnx_policy import OnnxPolicy

    return OnnxPolicy(BUNDLE)


def _with_run(planner_input: PlannerInput, **changes: Any) -> PlannerInput:
    run = planner_input.history.last_n_similar_runs[0]
    return attrs.evolve(planner_input, history=History((attrs.evolve(run, **changes),)))


def _cases(x: PlannerInput) -> dict[str, PlannerInput]:
    run = x.history.last_n_similar_runs[0]
    return {
        "nan health": attrs.evolve(
            x, system_state=SystemState(toolchain_health={"claude": math.nan})
        ),
        "infinite cost": _with_run(x, cost_usd_est=math.inf),
        "nan gate score": _with_run(
            x, outcome=Outcome("failed", (), (Gate("pytest", False, math.nan),))
        ),
        "surrogate tag": attrs.evolve(x, issue=attrs.evolve(x.issue, tags=("\ud800",))),
        "surrogate job type": attrs.evolve(x, job_type="code\udfff"),
        "tags None": attrs.evolve(x, issue=attrs.evolve(x.issue, tags=None)),  # type: ignore[arg-type]
        "history None": attrs.evolve(x, history=None),  # type: ignore[arg-type]
        "started_ms text": _with_run(x, started_ms="yesterday"),
        "huge started_ms": _with_run(x, started_ms=10**30),
        "run not a record": attrs.evolve(x, history=History(({"run_id": "x"},))),  # type: ignore[arg-type]
        "bool attempts": attrs.evolve(x, issue=attrs.evolve(x.issue, dk_attempts=True)),
        "issue None": attrs.evolve(x, issue=None),  # type: ignore[arg-type]
        "gate list of text": _with_run(x, outcome=Outcome("failed", (), ("pytest",))),  # type: ignore[arg-type]
        "run as base": _with_run(x, runtime=None),  # type: ignore[arg-type]
        "issue id number": attrs.evolve(x, issue=attrs.evolve(x.issue, issue_id=7)),  # type: ignore[arg-type]
        "unknown status": _with_run(x, outcome=attrs.evolve(run.outcome, status="crashed")),  # type: ignore[arg-type]
    }


CASES = list(_cases(load(json.loads(TINY_INPUT.read_text()), PlannerInput)))


@pytest.mark.parametrize("case", CASES)
def test_a_bad_record_built_in_code_is_a_contract_error_everywhere(
    planner_input: PlannerInput, onnx_policy: Any, case: str
) -> None:
    from swarm_planner.core.heuristic import HeuristicRules

    bad = _cases(planner_input)[case]
    for decide in (onnx_policy.decide, onnx_policy.predict, HeuristicRules().predict):
        with pytest.raises(ContractError):
            decide(bad)
    with pytest.raises(ContractError):
        onnx_policy.decide_batch([planner_input, bad])


def test_records_built_in_code_that_are_fine_still_decide(
    planner_input: PlannerInput, onnx_policy: Any
) -> None:
    rebuilt = attrs.evolve(
        planner_input,
        issue=Issue(planner_input.issue.issue_id, tags=["api", "auth"]),  # a list is an array
        history=History(
            tuple(
                RunSummary(**attrs.asdict(r, recurse=False, filter=lambda a, _: a.init))
                for r in planner_input.history.last_n_similar_runs
            )
        ),
    )
    assert onnx_policy.decide(rebuilt).action is not None
    assert len(rebuilt.input_hash()) == 64


# -- arguments: one line naming the option, exit 2 ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["train", "--dataset", "d", "--out", "o", "--lr", "nan"], "--lr"),
        (["train", "--dataset", "d", "--out", "o", "--lr", "-1"], "--lr"),
        (["train", "--dataset", "d", "--out", "o", "--seed", "-1"], "--seed"),
        (["train", "--dataset", "d", "--out", "o", "--seed", "1" * 20], "--seed"),
        (["train", "--dataset", "d", "--out", "o", "--model", "cnn"], "--model"),
        (["ablate", "--dataset", "d", "--n-similar", "a,b"], "--n-similar"),
        (["ablate", "--dataset", "d", "--n-similar", "-1"], "--n-similar"),
        (["ablate", "--dataset", "d", "--n-similar", ","], "--n-similar"),
        (["ablate", "--dataset", "d", "--model", "cnn"], "--model"),
        (["build-dataset", "--root", "r", "--out", "o", "--scorer", "bogus"], "--scorer"),
        (["simulate", "--out", "o", "--weeks", "100000000"], "--weeks"),
        (["plan", "--bundle", "b", "--input", "i", "--baseline", "x|y"], "--baseline"),
        (["export", "b", "--dataset", "d", "--threshold", "2"], "--threshold"),
        (["eval", "--dataset", "d", "--policy", "heuristic", "--split", "dev"], "--split"),
        (["check-dataset", "d", "--min-agreement", "nan"], "--min-agreement"),
    ],
)
def test_a_bad_argument_is_one_line_naming_the_option(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    option: str,
) -> None:
    code, err = run_main(monkeypatch, capsys, *args)
    assert code == 2
    line = _one_error_line(err)
    assert option in line and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--dataset", "d", "--out"],
        ["build-dataset", "--root", "r", "--out"],
        ["simulate", "--out"],
        ["eval", "--dataset", "d", "--policy", "heuristic", "--plots"],
        ["ablate", "--dataset", "d", "--out"],
    ],
)
def test_an_output_folder_that_is_a_file_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    file = tmp_path / "a-file"
    file.write_text("x")
    code, err = run_main(monkeypatch, capsys, *command, str(file))
    assert code == 2
    assert "is a file; give a folder to write into" in _one_error_line(err)


def test_simulating_into_an_existing_root_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("simulate", "--out", str(tmp_path / "root"), "--issues", "5", "-q")
    assert run_main(monkeypatch, capsys, *args)[0] == 0
    code, err = run_main(monkeypatch, capsys, *args)
    assert code == 2
    assert "already holds archives" in _one_error_line(err)


def test_a_policy_path_that_does_not_exist_is_named_as_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_main(
        monkeypatch, capsys, "eval", "--dataset", str(tmp_path), "--policy", "/no/such/dir"
    )
    assert code == 2
    assert "no bundle folder at /no/such/dir" in _one_error_line(err)


def test_a_folder_that_cannot_be_written_is_one_error_line(
    sim_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from swarm_planner.core import dataset

    def refuse(*_: Any, **__: Any) -> None:
        raise PermissionError(13, "Permission denied", "/read-only/ds")

    monkeypatch.setattr(dataset, "build_dataset", refuse)
    code, err = run_main(
        monkeypatch,
        capsys,
        "build-dataset",
        "--root",
        str(sim_root),
        "--out",
        "/read-only/ds",
        "-q",
    )
    assert code == 2
    assert _one_error_line(err) == "error: /read-only/ds: Permission denied"


def test_an_action_space_too_big_to_hold_is_refused_when_read() -> None:
    document = json.loads(TINY_INPUT.read_text())
    document["action_space"]["swarm_ids"] = [f"swarm-{i}" for i in range(10_000)]
    with pytest.raises(ContractError, match=r"action_space.swarm_ids: the bins make 1,200,000"):
        load(document, PlannerInput)


def test_a_hand_sealed_bundle_asking_for_a_huge_encoder_is_refused_quickly(tmp_path: Path) -> None:
    from swarm_planner.core.bundle import BundleError, caller_metadata, open_bundle, seal
    from swarm_planner.plugins.models.onnx_policy import OnnxPolicy

    copy = tmp_path / "bundle"
    shutil.copytree(BUNDLE, copy)
    metadata = open_bundle(copy)
    config = json.loads((copy / "config.json").read_text())
    config["encoder"]["options"]["n_history"] = 10**9
    (copy / "config.json").write_text(json.dumps(config))
    seal(copy, caller_metadata(metadata))
    with pytest.raises(
        BundleError, match=r"encoder.options: 1 problem\(s\)\n  n_history: 1000000000 is above 256"
    ):
        OnnxPolicy(copy)


# -- the second round of probes ------------------------------------------------------------------


def test_an_answer_with_its_mass_off_the_mask_is_an_inference_error(
    planner_input: PlannerInput, monkeypatch: pytest.MonkeyPatch
) -> None:
    from swarm_planner.core.errors import InferenceError
    from swarm_planner.plugins.models.onnx_policy import OnnxPolicy

    policy = OnnxPolicy(BUNDLE)
    real = policy.session.run_with_iobinding
    invalid = int(np.flatnonzero(~policy._mask(planner_input.job_type))[0])

    def elsewhere(binding: object) -> None:
        real(binding)
        for bound in policy._local.slots.values():
            bound.probs[0, :] = 0.0
            bound.probs[0, invalid] = 1.0  # all the mass on an action the rules forbid

    monkeypatch.setattr(policy.session, "run_with_iobinding", elsewhere)
    for call in (policy.decide, policy.predict):
        with pytest.raises(InferenceError, match="not a distribution over the valid actions"):
            call(planner_input)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda d: d["issue"].update(dk_attempts="9" * 30),
            "issue.dk_attempts: expected an integer",
        ),
        (lambda d: d["issue"].update(dk_attempts="²"), "issue.dk_attempts: expected an integer"),
        (lambda d: d["system_state"].update(hour_bucket="٣"), "system_state.hour_bucket"),
        (lambda d: d.update(created_at="2025-W01-1"), "created_at: '2025-W01-1' is not an RFC3339"),
        (lambda d: d["issue"].update(tags=[1] * 100_000), "issue.tags[0]: expected a string"),
    ],
)
def test_odd_texts_and_huge_lists_are_one_short_contract_error(change: Any, problem: str) -> None:
    document = json.loads(TINY_INPUT.read_text())
    change(document)
    with pytest.raises(ContractError) as info:
        load(document, PlannerInput)
    message = str(info.value)
    assert problem in message
    assert len(info.value.problems) <= 21 and len(message) < 5_000


def test_the_extremes_of_64_bits_are_read_and_past_them_refused() -> None:
    from swarm_planner.core.documents import DocumentError, parse_json

    assert parse_json(b"[-9223372036854775808, 9223372036854775807]", "x") == [-(2**63), 2**63 - 1]
    for text in (b"[-9223372036854775809]", b"[9223372036854775808]"):
        with pytest.raises(DocumentError, match="beyond the 64-bit range"):
            parse_json(text, "x")


def test_decide_batch_takes_any_iterable_and_refuses_what_is_not_one(
    planner_input: PlannerInput, onnx_policy: Any
) -> None:
    assert len(onnx_policy.decide_batch(x for x in [planner_input, planner_input])) == 2
    for bad in (None, 3, "inputs"):
        with pytest.raises(ContractError):
            onnx_policy.decide_batch(bad)


def test_an_error_never_repeats_a_whole_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "input.json"
    path.write_text(json.dumps([{"x": "y" * 1000}] * 2000))
    code, err = run_main(monkeypatch, capsys, "plan", "--bundle", str(BUNDLE), "--input", str(path))
    assert code == 2 and len(err) < 1_000, err


def test_a_config_whose_rule_table_the_space_cannot_hold_fails_when_read(tmp_path: Path) -> None:
    path = tmp_path / "kernel.yaml"
    path.write_text(
        "planner:\n  model: {type: heuristic, options: {default: {swarm_id: nosuch, max_candidates: -7}}}\n"
    )
    with pytest.raises(
        ConfigError, match=r"planner.model.options.default: nosuch\|-7\|NA\|NA is not an action"
    ):
        load_config(path)


def test_yaml_merge_keys_are_read(tmp_path: Path) -> None:
    path = tmp_path / "kernel.yaml"
    path.write_text(
        "base: &base {max_candidates_cap: 2}\nplanner:\n  safety: {<<: *base, max_minutes_cap: 30}\n"
    )
    safety = load_config(path).safety
    assert (safety.max_candidates_cap, safety.max_minutes_cap) == (2, 30)


def test_a_big_flat_yaml_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "kernel.yaml"
    path.write_text("x: [" + ",".join(["a"] * 200_000) + "]\n")
    with pytest.raises(ConfigError, match="larger than the limit of 262,144 bytes"):
        load_config(path)


def test_skips_are_all_counted_but_listed_up_to_a_bound(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from swarm_planner.core import archives

    monkeypatch.setattr(archives, "MAX_LISTED_SKIPS", 5)
    beads = root / ".beads"
    beads.mkdir()
    (beads / "issues.jsonl").write_text("1\n" * 40)
    report = read_root(root).report
    assert report.skipped_count == 40 and len(report.skipped) == 5
    assert report.to_json()["skipped_not_listed"] == 35


def test_one_odd_file_never_stops_the_build(root: Path) -> None:
    odd = proof(workcell_id=None)
    odd["metadata"]["started_at"] = "0001-01-01T00:00:00+23:59"
    del odd["workcell_id"]
    write_run(root, "wc-\udcff", {"manifest.json": manifest(workcell_id=None), "proof.json": odd})
    beads = root / ".beads"
    beads.mkdir()
    lines = [{"id": "8", "dk_attempts": "²"}, {"id": "9", "dk_attempts": "7" * 5000}]
    (beads / "issues.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = __import__("swarm_planner.core.dataset", fromlist=["build_dataset"]).build_dataset(
        root, root / "ds"
    )
    assert result.meta["example_count"] == 2
    repairs = result.meta["read_report"]["repairs"]
    assert repairs["file name not UTF-8: undecodable bytes replaced"] == 1
    assert repairs["proof.json metadata.started_at is not RFC3339: next source used"] == 1
    assert repairs["bad value dropped: issue dk_attempts"] == 2


@pytest.mark.parametrize(
    ("swarms", "problem"),
    [
        ("swarms:\n  '': {}\n  serial_handoff: {}\n", "a swarm id is a non-empty string"),
        (
            "swarms:\n" + "".join(f"  s{i}: {{}}\n" for i in range(1000)),
            "action tuples; at most 20,000",
        ),
    ],
)
def test_a_swarm_catalog_the_space_cannot_hold_is_an_archive_error(
    root: Path, swarms: str, problem: str
) -> None:
    from swarm_planner.core.archives import ArchiveError

    folder = root / "universes" / "u"
    folder.mkdir(parents=True)
    (folder / "swarms.yaml").write_text(swarms)
    with pytest.raises(ArchiveError, match=problem):
        read_root(root)


def test_a_universe_file_that_is_a_symlink_loop_is_refused_not_ignored(root: Path) -> None:
    from swarm_planner.core.archives import ArchiveError

    folder = root / "universes" / "u"
    folder.mkdir(parents=True)
    (folder / "universe.yaml").symlink_to(folder / "universe.yaml")
    with pytest.raises(ArchiveError, match=r"universe\.yaml: a symlink loop"):
        read_root(root)


# -- the third round of probes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "{" + ",".join(f'"\\udc{i % 100:02d}{i}": 1' for i in range(20_000)) + "}",
        "{" + ",".join(f'"k{i}": 1, "k{i}": 2' for i in range(20_000)) + "}",
    ],
    ids=["surrogate keys", "repeated keys"],
)
def test_many_bad_keys_are_one_short_error(text: str) -> None:
    from swarm_planner.core.documents import DocumentError, parse_json

    with pytest.raises(DocumentError) as info:
        parse_json(text.encode("utf-8", "surrogatepass"), "x.json")
    assert len(str(info.value)) < 3_000


def test_a_yaml_file_of_many_number_keys_is_one_short_error(tmp_path: Path) -> None:
    path = tmp_path / "kernel.yaml"
    path.write_text("planner: {" + ", ".join(f"{i}: 1" for i in range(20_000)) + "}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert len(str(info.value)) < 3_000


def test_a_run_with_huge_lists_is_kept_with_its_lists_cut(root: Path) -> None:
    huge = proof(workcell_id="huge", status="failed")
    huge["verification"]["all_passed"] = False
    huge["verification"]["blocking_failures"] = [f"code{i}" for i in range(100_000)]
    huge["verification"]["gates"] = {f"g{i}": {"passed": False} for i in range(1_000)}
    write_run(
        root,
        "huge",
        {
            "manifest.json": manifest(issue={"id": "7", "tags": [f"t{i}" for i in range(5_000)]}),
            "proof.json": huge,
        },
    )
    kernel = read_root(root)
    run = {r.summary.run_id: r.summary for r in kernel.runs}["huge"]
    assert len(run.outcome.fail_codes) == len(run.outcome.gates) == len(run.tags or ()) == 64
    counts = kernel.report.repairs.counts
    assert counts["proof.json fail codes cut to 64"] == 1
    assert counts["proof.json verification.gates cut to 64"] == 1
    assert counts["manifest.json issue.tags cut to 64"] == 1


def test_an_issue_with_huge_tags_and_text_is_kept_cut(root: Path) -> None:
    beads = root / ".beads"
    beads.mkdir()
    line = {"id": "7", "tags": [f"t{i}" for i in range(10_000)], "description": "x" * 100_000}
    (beads / "issues.jsonl").write_text(json.dumps(line) + "\n")
    kernel = read_root(root)
    issue = kernel.issues["7"]
    assert len(issue.tags) == 64 and len(issue.description or "") == 20_000


def _rehashed(dataset: Path) -> None:
    from swarm_planner.core.dataset import file_hash

    meta = json.loads((dataset / "meta.json").read_text())
    meta["dataset_hash"] = file_hash(dataset)
    (dataset / "meta.json").write_text(json.dumps(meta))


@pytest.fixture()
def small_dataset(sim_root: Path, tmp_path: Path) -> Path:
    from swarm_planner.core.dataset import build_dataset

    build_dataset(sim_root, tmp_path / "ds")
    return tmp_path / "ds"


def test_eval_names_the_row_of_a_dataset_that_is_not_one(
    small_dataset: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (small_dataset / "dataset.jsonl").read_text().splitlines()
    row = json.loads(lines[-1])
    row["planner_input"]["action_space"]["max_minutes_bins"].insert(-1, 240)
    lines[-1] = json.dumps(row)
    (small_dataset / "dataset.jsonl").write_text("\n".join(lines) + "\n")
    _rehashed(small_dataset)
    code, err = run_main(
        monkeypatch, capsys, "eval", "--dataset", str(small_dataset), "--policy", "heuristic"
    )
    assert code == 2
    assert f"row {row['run_id']} has another action space" in _one_error_line(err)


def test_eval_checks_a_rule_table_option_against_the_datasets_space(
    small_dataset: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_main(
        monkeypatch, capsys, "eval", "--dataset", str(small_dataset), "--policy", "heuristic",
        "--policy-option", "rules.high.swarm_id=ghost",
    )  # fmt: skip
    assert code == 2
    assert "--policy heuristic.rules.high: ghost|1|NA|NA is not an action" in err


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.pop("read_report"),
        lambda m: m.update(read_report=[1]),
        lambda m: m.update(retrieval={"scorer": "bogus", "window": 256}),
        lambda m: m.update(retrieval={"scorer": "signals", "window": -5}),
    ],
)
def test_a_damaged_meta_json_is_named_not_an_unexpected_error(
    small_dataset: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: Any,
) -> None:
    meta = json.loads((small_dataset / "meta.json").read_text())
    change(meta)
    (small_dataset / "meta.json").write_text(json.dumps(meta))
    code, err = run_main(
        monkeypatch, capsys, "ablate", "--dataset", str(small_dataset), "--n-similar", "0", "-q"
    )
    assert code == 2
    assert "meta.json" in _one_error_line(err)


def test_a_huge_limit_in_the_environment_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from swarm_planner.core.documents import ReadLimits
    from swarm_planner.core.errors import PlannerError

    monkeypatch.setenv("SWARM_PLANNER_MAX_LINE_BYTES", "9" * 30)
    with pytest.raises(PlannerError, match=r"SWARM_PLANNER_MAX_LINE_BYTES=.*from 1 to 2\*\*40"):
        ReadLimits.from_env()


@pytest.mark.parametrize(
    "build",
    [
        lambda h: h.RuleAction(None, 1),
        lambda h: h.RuleAction("serial_handoff", True),
        lambda h: h.RuleAction("serial_handoff", 1.0),
        lambda h: h.HeuristicOptions(rules=None),
        lambda h: h.HeuristicOptions(rules={"high": {"swarm_id": "speculate_vote"}}),
    ],
)
def test_a_rule_table_built_in_code_is_checked_when_built(build: Any) -> None:
    from swarm_planner.core import heuristic

    with pytest.raises(ValueError):
        build(heuristic)


def _record() -> Any:
    from swarm_planner.core.contracts import ManifestPlannerRecord

    return load(
        {
            "planner_input": json.loads(TINY_INPUT.read_text()),
            "planner_action": json.loads((FIXTURES / "planner_action.json").read_text()),
            "executed_plan": json.loads((FIXTURES / "executed_plan.json").read_text()),
            "timeout_seconds_override": None,
        },
        ManifestPlannerRecord,
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda r: attrs.evolve(r, planner_action=attrs.evolve(r.planner_action, reason="\ud800")),
        lambda r: attrs.evolve(r, timeout_seconds_override=10**30),
        lambda r: attrs.evolve(r, planner_input=None),
        lambda r: {"a": 1},
    ],
)
def test_a_record_the_reader_would_refuse_is_never_written(tmp_path: Path, change: Any) -> None:
    from swarm_planner.core.recording import record_in_manifest

    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest()))
    before = path.read_bytes()
    with pytest.raises(ContractError):
        record_in_manifest(path, change(_record()))
    assert path.read_bytes() == before


def test_recording_keeps_the_manifests_layout_permissions_and_link(tmp_path: Path) -> None:
    from swarm_planner.core.recording import record_in_manifest

    real = tmp_path / "real-manifest.json"
    real.write_text(json.dumps(manifest()))  # compact
    real.chmod(0o644)
    link = tmp_path / "manifest.json"
    link.symlink_to(real)
    record_in_manifest(link, _record())
    assert link.is_symlink() and oct(real.stat().st_mode & 0o777) == "0o644"
    assert "\n " not in real.read_text()
    assert json.loads(real.read_text())["planner"]["executed_plan"]["swarm_id_executed"]


def test_loading_data_with_non_text_keys_is_a_contract_error() -> None:
    with pytest.raises(ContractError):
        load({1: 2}, PlannerInput)
