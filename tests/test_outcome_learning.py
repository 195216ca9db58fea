"""Learning from outcomes: the value policy (masked loss, calibrated, ONNX-served, weights in
config), the table policy, fine-tuning on bench winners, and eval-outcomes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from swarm_planner.core.bench.runner import run_bench  # noqa: E402
from swarm_planner.core.bench.setup import BenchRequest, prepare_bench  # noqa: E402
from swarm_planner.core.config import PlannerConfig  # noqa: E402
from swarm_planner.core.evaluation import PolicySpec  # noqa: E402
from swarm_planner.core.outcome_eval import evaluate_outcomes, plot_frontier  # noqa: E402
from swarm_planner.core.outcomes import build_outcome_dataset, read_outcome_rows  # noqa: E402
from swarm_planner.core.plugins import PluginHost, get_host  # noqa: E402
from swarm_planner.core.utility import UtilityWeights  # noqa: E402
from swarm_planner.plugins.models.fitting import TrainingError  # noqa: E402
from swarm_planner.plugins.models.value_training import (  # noqa: E402
    ValueConfig,
    fit_platt,
    train_value,
)
from swarm_planner.sim.world import World  # noqa: E402


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("outcomes")
    host = get_host()
    request = BenchRequest(out=root / "bench", world="sim", issues=700, k=4, sampler="coverage")
    cases, settings, plugins, names, jobs = prepare_bench(request, PlannerConfig(), host)
    run_bench(root / "bench", cases, settings, plugins, jobs=jobs, names=names)
    build_outcome_dataset(root / "bench", root / "data", shares=(0.6, 0.15, 0.25))
    return root


@pytest.fixture(scope="module")
def value_bundle(outcomes: Path) -> Path:
    train_value(outcomes / "data", outcomes / "value", ValueConfig(max_epochs=25))
    return outcomes / "value"


def test_platt_scaling_recovers_a_known_miscalibration() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1.5, 40_000)
    y = rng.random(z.size) < 1 / (1 + np.exp(-(2.0 * z - 1.0)))
    a, b = fit_platt(z, y)
    assert abs(a - 2.0) < 0.1 and abs(b + 1.0) < 0.1


def test_the_value_model_learns_from_tried_candidates_and_beats_a_constant(
    value_bundle: Path, outcomes: Path
) -> None:
    import json

    metrics = json.loads((value_bundle / "metrics.json").read_text())
    test = metrics["splits"]["test"]
    constant = test["pass_rate"] * (1 - test["pass_rate"])  # Brier of always saying the mean
    assert test["brier"] < constant
    assert test["candidates"] == 4 * test["rows"]
    assert metrics["calibration"]["test_ece_after"] < 0.08


def test_the_value_policy_serves_the_onnx_graph_and_trades_by_its_weights(
    value_bundle: Path, outcomes: Path
) -> None:
    host = PluginHost()
    host.load_entry_points()
    splits, _ = read_outcome_rows(outcomes / "data")
    inputs = [r.planner_input for r in splits["test"]]
    cheap = host.create("policy", "value", {"path": str(value_bundle), "cost_weight": 2.0})
    bold = host.create("policy", "value", {"path": str(value_bundle), "cost_weight": 0.0})
    estimates = cheap.estimates_batch(inputs)
    assert all(len(e.actions) == len(e.p_pass) for e in estimates)
    assert all(((e.p_pass >= 0) & (e.p_pass <= 1)).all() for e in estimates)

    def mean_cost(policy: object) -> float:
        chosen = [policy.predict(x).best()[0] for x in inputs]  # type: ignore[attr-defined]
        costs = [
            e.cost_usd[list(e.actions).index(a)] for e, a in zip(estimates, chosen, strict=True)
        ]
        return float(np.mean(costs))

    assert mean_cost(cheap) < 0.7 * mean_cost(bold)
    dist = cheap.predict(inputs[0])
    assert abs(dist.probs.sum() - 1) < 1e-9 and set(dist.actions) == set(estimates[0].actions)


def test_eval_outcomes_online_runs_each_choice_in_the_world(
    value_bundle: Path, outcomes: Path, tmp_path: Path
) -> None:
    host = PluginHost()
    host.load_entry_points()
    executor = host.create("executor", "sim", {"seed": 0})
    result = evaluate_outcomes(
        outcomes / "data",
        [PolicySpec("heuristic"), PolicySpec("table"), PolicySpec(str(value_bundle))],
        host,
        executor=executor,
        oracle=True,
        rounds=200,
    )
    assert result.mode == "online" and set(result.not_tried.values()) == {0}
    # The heuristic's pass rate, recomputed from the world directly.
    splits, _ = read_outcome_rows(outcomes / "data")
    heuristic = host.create("policy", "heuristic")
    world = World(0)
    passed = [
        world.run_action(
            r.planner_input.issue,
            r.planner_input.job_type,
            heuristic.predict(r.planner_input).best()[0],
            attempt=r.planner_input.issue.dk_attempts,
            salt="bench",
        ).verified
        for r in splits["test"]
    ]
    h = result.policies["heuristic"]["pass_rate"]
    assert h["value"] == pytest.approx(np.mean(passed))
    assert h["low"] < h["value"] < h["high"]
    assert result.oracle is not None
    assert result.oracle["utility"] >= max(m["utility"]["value"] for m in result.policies.values())
    assert len(result.frontier["value:value"]) >= 10
    plot_frontier(result, tmp_path / "frontier.png")
    assert (tmp_path / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_outcomes_offline_reports_the_rows_a_policy_chose_untried(outcomes: Path) -> None:
    host = PluginHost()
    host.load_entry_points()
    result = evaluate_outcomes(
        outcomes / "data",
        [PolicySpec("heuristic"), PolicySpec("table")],
        host,
        rounds=50,
        weights=UtilityWeights(cost_weight=0.2),
    )
    splits, _ = read_outcome_rows(outcomes / "data")
    heuristic = host.create("policy", "heuristic")
    untried = sum(
        heuristic.predict(r.planner_input).best()[0] not in {c.joint_action for c in r.candidates}
        for r in splits["test"]
    )
    assert result.mode == "offline"
    assert result.not_tried["heuristic"] == untried == 0  # the bench always tries the baseline
    assert result.not_tried["table"] > 0
    assert (
        result.policies["table"]["rows_scored"] == len(splits["test"]) - result.not_tried["table"]
    )


def test_fine_tuning_on_bench_winners_starts_from_a_stage_a_bundle(
    outcomes: Path, tmp_path: Path
) -> None:
    from swarm_planner.core.dataset import build_dataset
    from swarm_planner.plugins.models.training import TrainConfig, train

    build_dataset(outcomes / "bench" / "world", tmp_path / "imitation")
    stage_a = train(tmp_path / "imitation", tmp_path / "a", TrainConfig(max_epochs=3))
    tuned = train(outcomes / "data", tmp_path / "b", TrainConfig(max_epochs=3), init=stage_a.out)
    assert tuned.metrics["training"]["rows"]["train"] < 700
    import json

    meta = json.loads((tmp_path / "b" / "metadata.json").read_text())
    assert meta["dataset"]["labels"] == "best_of_k_winner" and meta["init_from"] == stage_a.out
    with pytest.raises(TrainingError, match="not joint"):
        train(
            outcomes / "data",
            tmp_path / "c",
            TrainConfig(model="joint", max_epochs=1),
            init=stage_a.out,
        )


def test_a_value_bundle_fine_tunes_from_an_earlier_one_and_refuses_a_stranger(
    outcomes: Path, value_bundle: Path, tmp_path: Path
) -> None:
    import json

    # With a learning rate too small to move anything, one epoch shows where it started: at
    # the earlier bundle's best validation loss, not at a fresh network's.
    still = ValueConfig(max_epochs=1, lr=1e-9)
    tuned = train_value(outcomes / "data", tmp_path / "tuned", still, init=value_bundle)
    meta = json.loads((tmp_path / "tuned" / "metadata.json").read_text())
    assert meta["init_from"] == str(value_bundle)
    earlier = json.loads((value_bundle / "metrics.json").read_text())["training"]["best_val_loss"]
    fresh = train_value(outcomes / "data", tmp_path / "fresh", still)
    assert tuned.metrics["training"]["best_val_loss"] == pytest.approx(earlier, abs=1e-4)
    assert fresh.metrics["training"]["best_val_loss"] > earlier + 0.05
    with pytest.raises(TrainingError, match="layer sizes differ"):
        train_value(outcomes / "data", tmp_path / "x", ValueConfig(dim=16), init=value_bundle)
    with pytest.raises(TrainingError, match="no-such-bundle: not a bundle folder"):
        train_value(
            outcomes / "data",
            tmp_path / "y",
            ValueConfig(max_epochs=1),
            init=Path(__file__).parent / "fixtures" / "no-such-bundle",
        )


def test_the_value_bundle_decides_through_the_service_and_the_loop(
    value_bundle: Path, tmp_path: Path
) -> None:
    from swarm_planner.core.archives import read_root
    from swarm_planner.core.config import parse_config
    from swarm_planner.core.dataset import build_dataset
    from swarm_planner.kernel_integration.loop import LoopSettings, run_world
    from swarm_planner.kernel_integration.service import PlannerService, bundle_config

    assert bundle_config(str(value_bundle))["model"]["type"] == "value"  # served by its own kind
    config = parse_config(
        {
            "model": {"type": "value", "path": str(value_bundle)},
            "inference": {"confidence_threshold": 0.0},
        }
    )
    phases = run_world(config, tmp_path / "root", LoopSettings(issues=60, seed=4))
    enforce = phases[1]
    assert enforce.reasons.get("model", 0) > 0  # the value model decided, not only the fallback
    assert "model_unavailable" not in enforce.reasons
    assert len(read_root(tmp_path / "root").runs) == 120
    assert build_dataset(tmp_path / "root", tmp_path / "dataset").meta["example_count"] == 120
    service = PlannerService(parse_config({**config.to_json(), "mode": "enforce"}))
    assert service.model is not None and service.model.name == "value"
