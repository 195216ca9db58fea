"""The transformer policy: attention over the input's tokens, mlp's masked heads, one ONNX
file served by the onnx policy; and the model ablation that puts it next to mlp and joint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_planner

torch = pytest.importorskip("torch")

from swarm_planner.core.action_space import HEADS, ActionSpace  # noqa: E402
from swarm_planner.core.metrics import head_index  # noqa: E402
from swarm_planner.plugins.models.nets import PlannerNet  # noqa: E402
from swarm_planner.plugins.models.training import TrainConfig  # noqa: E402


def net(**kw: int) -> PlannerNet:
    space = ActionSpace()
    torch.manual_seed(0)
    return PlannerNet(
        kind="transformer",
        n_features=50,
        head_index=head_index(space),
        head_sizes=[len(space.head_bins(h)) for h in HEADS],
        dim=kw.get("dim", 16),
        hidden=(32,),
        layers=kw.get("layers", 2),
        heads=kw.get("heads", 4),
    ).eval()


def test_it_reads_a_set_of_tokens_padding_and_order_aside() -> None:
    model = net()
    ids = torch.tensor([[3, 17, 8, 41, 0, 0]])
    weights = torch.tensor([[1.0, 0.5, 1.0, 2.0, 0.0, 0.0]])
    base = model.logits(ids, weights)
    # Padding (weight 0) changes nothing, whatever ids it holds and however much of it.
    padded = model.logits(
        torch.tensor([[3, 17, 8, 41, 9, 9, 9, 9]]),
        torch.cat([weights[:, :4], torch.zeros(1, 4)], 1),
    )
    assert torch.allclose(base, padded, atol=1e-5)
    # Tokens are a set: the same tokens in another order, the same answer.
    order = torch.tensor([3, 0, 2, 1])
    shuffled = model.logits(ids[:, :4][:, order], weights[:, :4][:, order])
    assert torch.allclose(base, shuffled, atol=1e-5)

    # And it reads them together: a token's effect depends on the others (attention), which a
    # bag of embeddings summed through an MLP's first layer cannot show as a pure sum.
    def alone(i: int) -> torch.Tensor:
        return model.encode(ids[:, i : i + 1], weights[:, i : i + 1])

    together = model.encode(ids[:, :2], weights[:, :2])
    assert not torch.allclose(together, (alone(0) + alone(1)) / 2, atol=1e-3)


def test_its_width_must_split_into_its_heads() -> None:
    with pytest.raises(ValueError, match="dim 18 is not a multiple of heads 4"):
        net(dim=18)


def test_the_transformer_has_its_own_defaults_and_the_others_keep_theirs() -> None:
    t = TrainConfig.for_model("transformer", max_epochs=3)
    assert (t.dim, t.hidden, t.lr, t.max_epochs) == (64, (128,), 1e-3, 3)
    m = TrainConfig.for_model("mlp", lr=0.01)
    assert (m.dim, m.hidden, m.lr) == (32, (128, 64), 0.01)
    assert TrainConfig.for_model("transformer", dim=32).dim == 32


def test_the_model_ablation_trains_exports_serves_and_compares_side_by_side(
    tmp_path: Path,
) -> None:
    root, data, bench, outcomes = (tmp_path / n for n in ("root", "data", "bench", "outcomes"))
    for args in (
        ("simulate", "--out", str(root), "--issues", "700", "--seed", "1"),
        ("build-dataset", "--root", str(root), "--out", str(data)),
        ("bench", "--root", str(root), "--k", "2", "--executor", "sim", "--out", str(bench)),
        ("build-outcome-dataset", "--bench", str(bench), "--out", str(outcomes)),
    ):
        done = run_planner(*args)
        assert done.returncode == 0, done.stderr
    run = run_planner(
        "ablate",
        "--models",
        "mlp-ar,transformer,value-transformer",
        "--dataset",
        str(data),
        "--outcomes",
        str(outcomes),
        "--world-seed",
        "0",
        "--epochs",
        "3",
        "--plots",
        str(tmp_path / "plots"),
        "--out",
        str(tmp_path / "models"),
        "-q",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    table = json.loads((tmp_path / "models" / "models.json").read_text())
    assert [r["model"] for r in table["models"]] == ["mlp-ar", "transformer"]
    for row in table["models"]:
        assert row["onnx_max_abs_prob_diff"] < 1e-4  # the served graph is the trained network
        assert row["p50_us"] <= row["p99_us"] and row["epochs"] <= 3
    assert set(table["outcomes"]["policies"]) == {
        "heuristic",
        "mlp-ar",
        "transformer",
        "value-transformer",
    }
    # The transformer's reading competes on the bench too: a value model, served by `value`.
    (valued,) = table["outcome_models"]
    assert valued["model"] == "value-transformer" and valued["epochs"] <= 3
    config = json.loads((tmp_path / "models" / "value-transformer" / "config.json").read_text())
    assert config["model"]["reader"] == "transformer"
    from swarm_planner.core.bundle import bundle_servers, open_bundle

    for model in ("mlp-ar", "transformer"):  # both exported and served without torch
        assert bundle_servers(open_bundle(tmp_path / "models" / model)) == ("onnx", model)
    assert bundle_servers(open_bundle(tmp_path / "models" / "value-transformer")) == ("value",)
    needs = run_planner("ablate", "--models", "value", "--dataset", str(data))
    assert needs.returncode == 2 and "the value models need --outcomes" in needs.stderr
    assert table["outcomes"]["mode"] == "online"
    # The outcome model's whole cost-weight sweep is kept and printed; at the default weight
    # the sweep is the policy itself.
    from swarm_planner.core.outcome_eval import DEFAULT_SWEEP

    sweep = table["outcomes"]["frontier"]["value-transformer"]
    assert [p["cost_weight"] for p in sweep] == list(DEFAULT_SWEEP)
    at_default = next(p for p in sweep if p["cost_weight"] == 0.2)
    served = table["outcomes"]["policies"]["value-transformer"]
    assert at_default["pass_rate"] == pytest.approx(served["pass_rate"]["value"])
    assert "frontier of value-transformer" in run.stdout
    assert set(table["outcomes"]["frontier"]) == {"value-transformer"}  # imitation: no sweep
    assert (tmp_path / "plots" / "models.png").stat().st_size > 10_000
    first = run.stdout.splitlines()[0].split()
    assert first[:3] == ["model", "exact", "NLL"]
    bad = run_planner("ablate", "--models", "mlp,gru", "--dataset", str(data))
    assert (
        bad.returncode == 2
        and "gru: models are mlp, joint, transformer, mlp-ar, value, value-transformer"
        in bad.stderr
    )
    assert np.isfinite(table["models"][1]["nll"])
    # A size is compared like a model: its settings train it and are recorded in its row.
    from swarm_planner.plugins.models.model_ablation import compare_models

    small = compare_models(
        data,
        ["transformer"],
        out=tmp_path / "small",
        max_epochs=1,
        settings={"transformer": {"dim": 16, "layers": 1, "hidden": (32,)}},
    )
    (row,) = small["models"]
    assert row["settings"] == {"dim": 16, "layers": 1, "hidden": (32,)}
    built = json.loads((tmp_path / "small" / "transformer" / "config.json").read_text())
    assert (built["model"]["dim"], built["model"]["layers"]) == (16, 1)
    assert row["onnx_bytes"] < table["models"][1]["onnx_bytes"]  # narrower, fewer layers
    with pytest.raises(ValueError, match="settings for mlp: not among the models compared"):
        compare_models(data, ["transformer"], out=tmp_path / "x", settings={"mlp": {"dim": 8}})


def ar_net() -> PlannerNet:
    space = ActionSpace()
    return PlannerNet(
        kind="mlp-ar",
        n_features=10,
        head_index=head_index(space),
        head_sizes=[len(space.head_bins(h)) for h in HEADS],
        dim=4,
        hidden=(4,),
    ).eval()


def _set_ar_logits(model: PlannerNet, logits: dict[int, dict[tuple[int, ...], float]]) -> None:
    """Make every head's output constant (weights 0): head h's bias at its conditioned column."""
    space = ActionSpace()
    sizes = [len(space.head_bins(h)) for h in HEADS]
    with torch.no_grad():
        for h, head in enumerate(model.heads):
            head.weight.zero_()
            head.bias.fill_(-50.0)
            for key, value in logits.get(h, {}).items():
                s, *rest = key
                if h == 0:
                    column = s
                elif h in (1, 2):
                    column = s * sizes[h] + rest[0]
                else:
                    column = (s * sizes[1] + rest[0]) * sizes[3] + rest[1]
                head.bias[column] = value


def test_autoregressive_heads_decode_the_best_valid_tuple_where_greedy_does_not() -> None:
    space = ActionSpace()
    swarms = list(space.head_bins("swarm"))
    cands = list(space.head_bins("candidates"))
    minutes = list(space.head_bins("minutes"))
    iters = list(space.head_bins("iterations"))
    serial, vote = swarms.index("serial_handoff"), swarms.index("speculate_vote")
    one, three = cands.index(1), cands.index(3)
    m60, na_min = minutes.index(60), minutes.index("NA")
    na_iter = iters.index("NA")
    model = ar_net()
    # Head by head, greedy takes serial (2.0 > 1.5), then its best candidates: 3, which a
    # serial run may not have. Exactly over valid tuples: serial with 1 candidate scores
    # 2.0 + 0.0, a vote of 3 scores 1.5 + 1.0 = 2.5: the vote wins.
    _set_ar_logits(
        model,
        {
            0: {(serial,): 2.0, (vote,): 1.5},
            1: {(serial, three): 3.0, (serial, one): 0.0, (vote, three): 1.0},
            2: {(serial, m60): 0.0, (vote, m60): 0.0},
            3: {(serial, one, na_iter): 0.0, (vote, three, na_iter): 0.0},
        },
    )
    actions = space.all_actions()
    job = "code"
    mask = torch.tensor([[space.is_valid(a, job) for a in actions]])
    probs = model(
        torch.zeros((1, 1), dtype=torch.long), torch.zeros((1, 1)), mask, torch.tensor(1.0)
    )
    best = actions[int(probs.argmax())]
    greedy_swarm = swarms[int(model.heads[0].bias.argmax())]
    greedy_cands = cands[int(model.heads[1].bias.view(len(swarms), len(cands))[serial].argmax())]
    assert (greedy_swarm, greedy_cands) == ("serial_handoff", 3)
    assert not any(
        a.swarm_id == "serial_handoff" and a.max_candidates_bin == 3 and space.is_valid(a, job)
        for a in actions
    ), "greedy's tuple is invalid"
    assert (best.swarm_id, best.max_candidates_bin, best.max_minutes_bin) == (
        "speculate_vote",
        3,
        60,
    )
    assert space.is_valid(best, job)
    # The joint distribution is the chain rule's: the tuple's probability is its logits' sum,
    # softmaxed over the valid tuples only.
    assert float(probs[0, ~mask[0]].sum()) == 0.0
    assert na_min >= 0  # the NA bins exist in the default space
