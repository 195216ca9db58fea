"""Training, masking, determinism, calibration and train/serve parity (needs the train extra)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from swarm_planner.core.action_space import HEADS, NA, ActionSpace, JointAction  # noqa: E402
from swarm_planner.core.bundle import BundleError  # noqa: E402
from swarm_planner.core.dataset import DatasetError, build_dataset, iter_dataset  # noqa: E402
from swarm_planner.core.evaluation import evaluate  # noqa: E402
from swarm_planner.core.metrics import head_index  # noqa: E402
from swarm_planner.core.plugins import PluginHost  # noqa: E402
from swarm_planner.plugins.models.nets import PlannerNet  # noqa: E402
from swarm_planner.plugins.models.torch_policy import TorchPolicy  # noqa: E402
from swarm_planner.plugins.models.training import TrainConfig, TrainingError, train  # noqa: E402

SPACE = ActionSpace()
SMALL = {"dim": 16, "hidden": (32,), "max_epochs": 6, "patience": 2}


@pytest.fixture(scope="module")
def dataset(sim_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("train-ds")
    build_dataset(sim_root, out)
    return out


@pytest.fixture(scope="module")
def bundles(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bundles")
    for kind in ("mlp", "joint"):
        train(dataset, base / kind, TrainConfig(model=kind, **SMALL))  # type: ignore[arg-type]
    return {"mlp": base / "mlp", "joint": base / "joint"}


def _net(kind: str) -> PlannerNet:
    torch.manual_seed(0)
    return PlannerNet(
        kind=kind,
        n_features=50,
        head_index=head_index(SPACE),
        head_sizes=[len(SPACE.head_bins(h)) for h in HEADS],
        dim=8,
        hidden=(16,),
    )


@pytest.mark.parametrize("kind", ["mlp", "joint"])
@pytest.mark.parametrize("job_type", ["code", "fab-world", "docs"])
def test_an_invalid_action_never_gets_probability(kind: str, job_type: str) -> None:
    net = _net(kind)
    mask = torch.as_tensor(np.tile(SPACE.joint_mask(job_type), (7, 1)))
    ids = torch.randint(0, 50, (7, 12))
    probs = net(ids, torch.rand(7, 12) * 10, mask, torch.tensor(0.05))
    assert torch.all(probs[~mask] == 0.0)
    assert torch.allclose(probs.sum(dim=1), torch.ones(7, dtype=probs.dtype))


def test_the_mlp_decodes_the_best_valid_tuple_not_the_per_head_argmax() -> None:
    net = _net("mlp")
    with torch.no_grad():
        for head in net.heads:
            head.weight.zero_()
            head.bias.zero_()
        net.heads[0].bias[0] = 5.0  # swarm: serial_handoff
        net.heads[1].bias[2] = 4.0  # candidates: 3 (invalid with serial)
        net.heads[2].bias[1] = 1.0  # minutes: 30
    mask = torch.as_tensor(SPACE.joint_mask("code")).unsqueeze(0)
    probs = net(torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1), mask, torch.tensor(1.0))
    best = SPACE.all_actions()[int(probs.argmax())]
    # per-head argmax would be serial_handoff with 3 candidates, which no rule allows;
    # the best valid tuple is speculation with 3 (0 + 4 + 1) or serial with 1 (5 + 0 + 1).
    assert best == JointAction("serial_handoff", 1, 30, NA)
    assert SPACE.is_valid(best, "code")


def test_training_writes_a_sealed_calibrated_bundle(bundles: dict[str, Path]) -> None:
    for kind, path in bundles.items():
        names = {p.name for p in path.iterdir()}
        assert {
            "model.pt",
            "config.json",
            "action_space.json",
            "calibration.json",
            "metadata.json",
            "metrics.json",
        } <= names
        metadata = json.loads((path / "metadata.json").read_text())
        assert metadata["model_type"] == kind and metadata["bundle_format"] == 2
        metrics = json.loads((path / "metrics.json").read_text())
        assert set(metrics["splits"]) == {"train", "val", "test"}
        for split in metrics["splits"].values():
            assert {"model", "model_uncalibrated", "heuristic"} == set(split)
        calibration = json.loads((path / "calibration.json").read_text())
        assert calibration["method"] == "temperature_scaling" and calibration["temperature"] > 0
        assert metrics["training"]["best_val_loss"] < metrics["training"]["uniform_val_loss"]


def test_a_trained_model_beats_the_heuristic_on_executed_plan_labels(
    bundles: dict[str, Path],
) -> None:
    for path in bundles.values():
        test = json.loads((path / "metrics.json").read_text())["splits"]["test"]
        assert test["model"]["exact_match"] > test["heuristic"]["exact_match"] + 0.2
        assert test["model"]["nll"] < test["heuristic"]["nll"]


def test_training_is_deterministic_for_a_seed(
    dataset: Path, bundles: dict[str, Path], tmp_path: Path
) -> None:
    train(dataset, tmp_path / "again", TrainConfig(model="mlp", **SMALL))
    first = torch.load(bundles["mlp"] / "model.pt", weights_only=True)
    second = torch.load(tmp_path / "again" / "model.pt", weights_only=True)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = train(dataset, tmp_path / "seed1", TrainConfig(model="mlp", seed=1, **SMALL))
    third = torch.load(Path(other.out) / "model.pt", weights_only=True)
    assert not all(torch.equal(first[k], third[k]) for k in first)


def test_the_policy_serves_what_training_measured(
    dataset: Path, bundles: dict[str, Path], host: PluginHost
) -> None:
    for _kind, path in bundles.items():
        result = evaluate(dataset, [str(path)], split="test", host=host)
        served = next(iter(result.metrics.values()))
        measured = json.loads((path / "metrics.json").read_text())["splits"]["test"]["model"]
        assert served["exact_match"] == measured["exact_match"]
        assert served["nll"] == pytest.approx(measured["nll"], rel=1e-6)


def test_the_policy_answers_over_valid_actions_only(
    dataset: Path, bundles: dict[str, Path], host: PluginHost
) -> None:
    policy = host.create("policy", "joint", {"path": str(bundles["joint"])})
    for row in list(iter_dataset(dataset))[-20:]:
        dist = policy.predict(row.planner_input)
        assert dist.actions == row.planner_input.action_space.valid_actions(
            row.planner_input.job_type
        )
        assert abs(dist.probs.sum() - 1.0) < 1e-9


def test_a_bundle_of_the_wrong_type_or_tampered_is_refused(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(BundleError, match="holds a 'mlp' model, not 'joint'"):
        TorchPolicy(bundles["mlp"], expected_type="joint")
    copy = tmp_path / "copy"
    shutil.copytree(bundles["mlp"], copy)
    calibration = json.loads((copy / "calibration.json").read_text())
    calibration["temperature"] = 0.01
    (copy / "calibration.json").write_text(json.dumps(calibration))
    with pytest.raises(
        BundleError, match=r"calibration.json: .* metadata.json; the bundle was modified"
    ):
        TorchPolicy(copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    metadata["bundle_format"] = 0
    (copy / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(BundleError, match="bundle_format 0 is not supported"):
        TorchPolicy(copy)


def test_training_refuses_rows_that_do_not_match_the_dataset_hash(
    dataset: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    lines = (copy / "dataset.jsonl").read_text().splitlines(keepends=True)
    (copy / "dataset.jsonl").write_text("".join(lines[:-1]))
    with pytest.raises(DatasetError, match=r"is not meta.json's dataset_hash"):
        train(copy, tmp_path / "bundle", TrainConfig(model="mlp", **SMALL))  # type: ignore[arg-type]
    assert not (tmp_path / "bundle").exists()


def test_a_diverging_run_stops_with_a_clear_message(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(
        TrainingError,
        match=r"(loss became (nan|inf)|non-finite gradient|not below the uniform baseline)",
    ):
        train(dataset, tmp_path / "b", TrainConfig(model="mlp", lr=1e30, **SMALL))


def test_class_weights_train_too(dataset: Path, tmp_path: Path) -> None:
    result = train(
        dataset, tmp_path / "cw", TrainConfig(model="joint", class_weights=True, **SMALL)
    )
    assert result.metrics["splits"]["test"]["model"]["rows"] == 80


def test_cli_train_eval_and_ablate(dataset: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from swarm_planner.cli.app import app

    runner = CliRunner()
    bundle = tmp_path / "bundle"
    result = runner.invoke(
        app,
        [
            "train",
            "--model",
            "joint",
            "--dataset",
            str(dataset),
            "--out",
            str(bundle),
            "--epochs",
            "3",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"bundle: {bundle}" in result.stdout and "heuristic" in result.stdout
    assert "ECE" in result.stdout

    plots = tmp_path / "plots"
    result = runner.invoke(
        app,
        [
            "eval",
            "--dataset",
            str(dataset),
            "--policy",
            "heuristic",
            "--policy",
            str(bundle),
            "--plots",
            str(plots),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows"] == 80 and set(report["policies"]) == {"heuristic", "joint:bundle"}
    assert (plots / "reliability.png").stat().st_size > 1000 and (
        plots / "coverage.png"
    ).stat().st_size > 1000

    result = runner.invoke(
        app, ["train", "--model", "tree", "--dataset", str(dataset), "--out", str(bundle)]
    )
    flat = " ".join(result.output.replace("│", " ").split())  # the box may wrap the line
    assert result.exit_code != 0 and "'tree' is not one of mlp|joint|transformer|mlp-ar" in flat

    result = runner.invoke(
        app,
        [
            "ablate",
            "--dataset",
            str(dataset),
            "--n-similar",
            "0,2",
            "--out",
            str(tmp_path / "abl"),
            "--json",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)
    assert [row["n_similar"] for row in table] == [0, 2]
    assert table[0]["dataset_hash"] != table[1]["dataset_hash"]
    assert all(0.0 <= row["exact_match"] <= 1.0 for row in table)


def test_export_is_one_validated_file_equivalent_to_torch(
    dataset: Path, bundles: dict[str, Path], tmp_path: Path
) -> None:
    import onnx

    from swarm_planner.plugins.models.export import export_bundle
    from swarm_planner.plugins.models.onnx_policy import OnnxPolicy

    for kind, path in bundles.items():
        copy = tmp_path / kind
        shutil.copytree(path, copy)
        validation = export_bundle(copy, dataset)
        assert validation["passed"] and validation["probe"]["size"] >= 1000
        assert validation["max_abs_prob_diff"] <= 1e-5
        assert validation["action_agreement"] == 1.0 and validation["abstention_agreement"] == 1.0
        assert validation["max_prob_on_invalid_actions"] == 0.0
        model = onnx.load(str(copy / "model.onnx"))
        assert model.ir_version == 8 and [o.version for o in model.opset_import] == [17]
        assert not list(copy.glob("*.data"))
        assert {i.name for i in model.graph.input} == {"ids", "weights", "mask"}
        config = json.loads((copy / "config.json").read_text())
        assert set(config["onnx"]["outputs"]) == {"probs", "action", "confidence"}
        metadata = json.loads((copy / "metadata.json").read_text())
        assert "model.onnx" in metadata["files"] and "validation.json" in metadata["files"]
        torch_policy = TorchPolicy(copy)
        onnx_policy = OnnxPolicy(copy)
        for row in list(iter_dataset(dataset))[-30:]:
            a = torch_policy.predict(row.planner_input)
            b = onnx_policy.predict(row.planner_input)
            assert a.actions == b.actions and a.best()[0] == b.best()[0]
            assert np.abs(a.probs - b.probs).max() <= 1e-5


def test_a_failed_equivalence_check_removes_the_model_and_says_why(
    dataset: Path, bundles: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from swarm_planner.plugins.models import export

    copy = tmp_path / "b"
    shutil.copytree(bundles["mlp"], copy)
    monkeypatch.setattr(export, "MAX_ABS_DIFF", -1.0)
    with pytest.raises(export.ExportError, match="torch and onnxruntime disagree"):
        export.export_bundle(copy, dataset)
    assert not (copy / "model.onnx").exists()
    assert json.loads((copy / "validation.json").read_text())["passed"] is False
    TorchPolicy(copy)  # the bundle is still sealed and serves with torch


def _resealed(folder: Path) -> None:
    from swarm_planner.core.bundle import caller_metadata, read_bundle_json, seal

    seal(folder, caller_metadata(read_bundle_json(folder, "metadata.json")))


def test_a_bundle_resealed_around_another_models_graph_is_refused_at_load(
    dataset: Path, bundles: dict[str, Path], tmp_path: Path
) -> None:
    from swarm_planner.plugins.models.export import export_bundle
    from swarm_planner.plugins.models.onnx_policy import OnnxPolicy

    copy = tmp_path / "mlp"
    shutil.copytree(bundles["mlp"], copy)
    export_bundle(copy, dataset)
    tiny = Path(__file__).parent / "fixtures" / "tiny-bundle" / "model.onnx"
    shutil.copy(tiny, copy / "model.onnx")  # a graph of another encoder's size
    _resealed(copy)
    with pytest.raises(BundleError, match=r"model.onnx: does not run with this bundle's inputs"):
        OnnxPolicy(copy)


def test_a_model_that_outputs_nan_is_an_inference_error_not_an_action(
    dataset: Path, bundles: dict[str, Path], tmp_path: Path
) -> None:
    import onnx
    from onnx import numpy_helper

    from swarm_planner.core.errors import InferenceError
    from swarm_planner.plugins.models.export import export_bundle
    from swarm_planner.plugins.models.onnx_policy import OnnxPolicy

    copy = tmp_path / "mlp"
    shutil.copytree(bundles["mlp"], copy)
    export_bundle(copy, dataset)
    model = onnx.load(str(copy / "model.onnx"))
    for initializer in model.graph.initializer:
        array = numpy_helper.to_array(initializer)
        if array.dtype == np.float32 and array.ndim == 2:
            initializer.CopyFrom(
                numpy_helper.from_array(np.full_like(array, np.nan), initializer.name)
            )
    onnx.save(model, str(copy / "model.onnx"))
    _resealed(copy)
    policy = OnnxPolicy(copy)
    row = next(iter(iter_dataset(dataset)))
    with pytest.raises(InferenceError, match="not a distribution"):
        policy.decide(row.planner_input)
    with pytest.raises(InferenceError, match="not a distribution"):
        policy.decide_batch([row.planner_input] * 3)


@pytest.mark.parametrize(
    "weights", [b"", b"not a pickle", None], ids=["empty", "garbage", "a list"]
)
def test_a_weights_file_that_does_not_load_is_a_bundle_error(
    bundles: dict[str, Path], tmp_path: Path, weights: bytes | None
) -> None:
    import torch

    copy = tmp_path / "mlp"
    shutil.copytree(bundles["mlp"], copy)
    (copy / "model.onnx").unlink(missing_ok=True)
    if weights is None:
        torch.save([1, 2, 3], copy / "model.pt")
    else:
        (copy / "model.pt").write_bytes(weights)
    _resealed(copy)
    with pytest.raises(BundleError, match=r"model.pt: does not load into the 'mlp' model"):
        TorchPolicy(copy)


def test_training_refuses_a_label_outside_its_action_space(dataset: Path, tmp_path: Path) -> None:
    from swarm_planner.core.dataset import file_hash

    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    lines = (copy / "dataset.jsonl").read_text().splitlines()
    row = json.loads(lines[3])
    row["label_action"]["swarm_id"] = "nosuch"
    lines[3] = json.dumps(row, sort_keys=True, separators=(",", ":"))
    (copy / "dataset.jsonl").write_text("\n".join(lines) + "\n")
    meta = json.loads((copy / "meta.json").read_text())
    meta["dataset_hash"] = file_hash(copy)  # rehashed, as a hand-edited dataset would be
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(TrainingError, match=r"its label nosuch\|.* is not an action of its space"):
        train(copy, tmp_path / "bundle", TrainConfig(model="mlp", **SMALL))  # type: ignore[arg-type]


def test_export_upgrades_a_bundle_of_the_previous_format(
    dataset: Path, bundles: dict[str, Path], tmp_path: Path
) -> None:
    from swarm_planner.plugins.models.export import export_bundle
    from swarm_planner.plugins.models.onnx_policy import OnnxPolicy

    copy = tmp_path / "mlp"
    shutil.copytree(bundles["mlp"], copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    for key in ("seal", "sizes"):
        metadata.pop(key)
    metadata["bundle_format"] = 1  # as the release before sealed metadata wrote it
    (copy / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(BundleError, match="bundle_format 1 is not supported"):
        TorchPolicy(copy)
    assert export_bundle(copy, dataset)["passed"]
    assert OnnxPolicy(copy).metadata["bundle_format"] == 2


def test_an_export_with_a_bad_dataset_leaves_the_bundle_as_it_was(
    dataset: Path, bundles: dict[str, Path], tmp_path: Path
) -> None:
    from swarm_planner.plugins.models.export import ExportError, export_bundle

    copy = tmp_path / "mlp"
    shutil.copytree(bundles["mlp"], copy)
    (copy / "model.onnx").unlink(missing_ok=True)
    _resealed(copy)
    with pytest.raises(ExportError, match=r"dataset\.jsonl: missing"):
        export_bundle(copy, tmp_path / "does-not-exist")
    assert not (copy / "model.onnx").exists()
    TorchPolicy(copy)  # still sealed and servable
    other = tmp_path / "other-space"
    shutil.copytree(dataset, other)
    rows = [json.loads(line) for line in (other / "dataset.jsonl").read_text().splitlines()]
    for row in rows:
        row["planner_input"]["action_space"]["max_minutes_bins"].insert(-1, 240)
    (other / "dataset.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ExportError, match=r"not the one .* was trained on"):
        export_bundle(copy, other)
    assert not (copy / "model.onnx").exists()
