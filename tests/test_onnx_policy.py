"""The onnx policy serves an exported bundle with onnxruntime alone (runs in the no-torch envs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from swarm_planner.cli.app import app
from swarm_planner.core.bundle import BundleError
from swarm_planner.core.contracts import PlannerAction, PlannerInput, load
from swarm_planner.core.errors import ContractError
from swarm_planner.core.plugins import PluginHost
from swarm_planner.plugins.models.onnx_policy import OnnxPolicy

FIXTURES = Path(__file__).parent / "fixtures"
BUNDLE = FIXTURES / "tiny-bundle"


@pytest.fixture(scope="module")
def planner_input() -> PlannerInput:
    return load(json.loads((FIXTURES / "tiny_planner_input.json").read_text()), PlannerInput)


@pytest.fixture(scope="module")
def policy() -> OnnxPolicy:
    return OnnxPolicy(BUNDLE)


def test_it_answers_what_onnxruntime_answered_at_export(
    policy: OnnxPolicy, planner_input: PlannerInput
) -> None:
    expected = json.loads((FIXTURES / "tiny_expected.json").read_text())
    decision = policy.decide(planner_input)
    assert decision.action.text == expected["action"]
    assert decision.confidence == pytest.approx(expected["confidence"], abs=1e-6)
    assert np.allclose(decision.probs, expected["probs"], atol=1e-6)


def test_it_answers_over_the_valid_actions_only(
    policy: OnnxPolicy, planner_input: PlannerInput
) -> None:
    dist = policy.predict(planner_input)
    assert dist.actions == planner_input.action_space.valid_actions(planner_input.job_type)
    assert abs(dist.probs.sum() - 1.0) < 1e-9
    decision = policy.decide(planner_input)
    assert np.all(decision.probs[~decision.mask] == 0.0)
    assert dist.best() == (decision.action, pytest.approx(decision.confidence, abs=1e-6))


def test_batches_agree_with_single_decisions(
    policy: OnnxPolicy, planner_input: PlannerInput
) -> None:
    import attrs

    from swarm_planner.core.contracts import History

    inputs = [planner_input, attrs.evolve(planner_input, history=History()), planner_input]
    batch = policy.decide_batch(inputs)
    for one, planner in zip(batch, inputs, strict=True):
        single = policy.decide(planner)
        assert one.action == single.action
        assert one.confidence == pytest.approx(single.confidence, abs=1e-6)


def test_a_shorter_input_after_a_longer_one_sees_no_leftover_ids(
    policy: OnnxPolicy, planner_input: PlannerInput
) -> None:
    import attrs

    from swarm_planner.core.contracts import History

    short = attrs.evolve(planner_input, history=History())
    assert len(policy.encoder.encode(short).ids) < len(policy.encoder.encode(planner_input).ids)
    fresh = OnnxPolicy(BUNDLE).decide(short)
    policy.decide(planner_input)  # fills this thread's buffer further than `short` will
    again = policy.decide(short)
    assert again.action == fresh.action
    assert np.array_equal(again.probs, fresh.probs)


def test_switching_job_types_switches_the_mask(
    policy: OnnxPolicy, planner_input: PlannerInput
) -> None:
    import attrs

    from swarm_planner.core.protocols import FeatureBatch

    world = attrs.evolve(planner_input, job_type="fab-world")
    # The unbound path (a plain session run) is the reference.
    expected = {
        x.job_type: policy.run(FeatureBatch.stack([policy.encoder.encode(x)]))[0][0]
        for x in (planner_input, world)
    }
    assert not np.allclose(expected["code"], expected["fab-world"], atol=1e-3)
    for x in (planner_input, world, planner_input, world):
        assert np.allclose(policy.decide(x).probs, expected[x.job_type], atol=1e-6)


def test_threads_deciding_at_once_get_their_own_answers(
    policy: OnnxPolicy, planner_input: PlannerInput
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import attrs

    from swarm_planner.core.contracts import History

    inputs = [planner_input, attrs.evolve(planner_input, history=History())] * 50
    expected = [policy.decide(x).probs for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda x: policy.decide(x).probs, inputs))
    assert all(np.array_equal(a, e) for a, e in zip(answers, expected, strict=True))


def test_threads_racing_on_growing_buffers_and_full_memos_get_their_own_answers(
    planner_input: PlannerInput, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inputs of very different widths (the shared weight buffer grows) and memos small enough
    to fill up mid-run (a fresh run memo is installed) while eight threads decide at once."""
    import sys
    import threading

    import attrs

    from swarm_planner.plugins.encoders import compositional

    monkeypatch.setattr(compositional, "_SIGNATURE_MEMO_SIZE", 4)
    monkeypatch.setattr(compositional, "_RUNS_MEMO_SIZE", 4)
    run = planner_input.history.last_n_similar_runs[0]
    inputs = [
        attrs.evolve(
            planner_input,
            issue=attrs.evolve(planner_input.issue, tags=tuple(f"t{j}" for j in range(n))),
            history=attrs.evolve(
                planner_input.history,
                last_n_similar_runs=(
                    attrs.evolve(run, runtime=attrs.evolve(run.runtime, duration_ms=60_000 * n)),
                ),
            ),
        )
        for n in (300, 700, 1600, 2500, 4000, 6000, 10, 50)
    ]
    expected = [OnnxPolicy(BUNDLE).decide(x).probs for x in inputs]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(30):
            policy = OnnxPolicy(BUNDLE)
            barrier = threading.Barrier(len(inputs))
            answers: dict[int, object] = {}

            def decide(
                i: int,
                policy: OnnxPolicy = policy,
                barrier: threading.Barrier = barrier,
                answers: dict[int, object] = answers,
            ) -> None:
                barrier.wait()
                try:
                    answers[i] = policy.decide(inputs[i]).probs
                except Exception as exc:  # collected: the assertion below names it
                    answers[i] = exc

            threads = [threading.Thread(target=decide, args=(i,)) for i in range(len(inputs))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for i, answer in answers.items():
                assert isinstance(answer, np.ndarray), answer
                assert np.array_equal(answer, expected[i])
    finally:
        sys.setswitchinterval(switch)


def test_an_input_wider_than_the_warm_buffers_is_served(
    policy: OnnxPolicy, planner_input: PlannerInput
) -> None:
    import attrs

    keywords = tuple(f"kw{i}" for i in range(400))
    wide = attrs.evolve(planner_input, issue=attrs.evolve(planner_input.issue, keywords=keywords))
    assert len(policy.encoder.encode(wide).ids) > 512
    one = policy.decide(wide)
    (batched,) = policy.decide_batch([wide])
    assert one.action == batched.action
    assert one.confidence == pytest.approx(batched.confidence, abs=1e-6)


def test_a_batch_longer_than_one_run_keeps_every_answer_in_order(
    policy: OnnxPolicy, planner_input: PlannerInput
) -> None:
    import attrs

    from swarm_planner.core.contracts import History

    runs = planner_input.history.last_n_similar_runs
    inputs = [
        attrs.evolve(planner_input, history=History(runs[: i % (len(runs) + 1)]))
        for i in range(300)
    ]
    batch = policy.decide_batch(inputs)
    assert len(batch) == 300
    for one, planner in zip(batch, inputs, strict=True):
        single = policy.decide(planner)
        assert one.action == single.action
        assert np.allclose(one.probs, single.probs, atol=1e-6)


def test_the_session_is_single_threaded_without_spinning(policy: OnnxPolicy) -> None:
    options = policy.session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_it_is_registered_and_picked_by_name(host: PluginHost, planner_input: PlannerInput) -> None:
    policy = host.create("policy", "onnx", {"path": str(BUNDLE)})
    assert (
        policy.predict(planner_input).best()[0] == OnnxPolicy(BUNDLE).decide(planner_input).action
    )


def test_an_input_with_another_action_space_is_refused(
    policy: OnnxPolicy, planner_input: PlannerInput
) -> None:
    import attrs

    from swarm_planner.core.action_space import ActionSpace

    other = attrs.evolve(planner_input, action_space=ActionSpace(max_minutes_bins=(10, 20, "NA")))
    with pytest.raises(ContractError, match="action_space: differs from the one"):
        policy.decide(other)


def test_an_input_with_the_field_kernels_rules_is_served_alike(
    policy: OnnxPolicy, planner_input: PlannerInput
) -> None:
    from swarm_planner.core.contracts import dump

    document = dump(planner_input)
    document["action_space"]["validity_rules"] = [
        {
            "description": "serial",
            "if": {"swarm_id": "serial_handoff"},
            "then": {"max_candidates_bin": 1},
        },
        {"description": "code", "if": {"job_type": "code"}, "then": {"max_iterations_bin": "NA"}},
        {
            "description": "world",
            "if": {"job_type": "fab-world"},
            "then": {"max_candidates_bin_not": "NA"},
        },
    ]
    field = load(document, PlannerInput)
    assert field.action_space != planner_input.action_space
    assert policy.decide(field).action == policy.decide(planner_input).action
    assert policy.predict(field).actions == policy.predict(planner_input).actions


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda d: (d / "model.onnx").write_bytes(
                (d / "model.onnx").read_bytes()[:-10] + b"0123456789"
            ),
            r"model.onnx: sha256 .* does not match",
        ),
        (
            lambda d: (d / "metrics.json").write_bytes(b" " * 5_000_000),
            r"metrics.json: 5,000,000 bytes, not the \d+ of metadata.json",
        ),
        (
            lambda d: (d / "validation.json").unlink(),
            r"validation.json: listed in metadata.json but missing",
        ),
        (
            lambda d: _rewrite(d / "metadata.json", bundle_format=0),
            "bundle_format 0 is not supported",
        ),
        (lambda d: (d / "metadata.json").write_text("{"), "metadata.json: malformed JSON"),
        (
            lambda d: _rewrite(d / "metadata.json", model_type="joint"),
            "metadata.json: the seal does not match its content",
        ),
        (
            lambda d: _reseal(
                d, "config.json", model={"type": "mlp", "n_features": 554, "n_actions": 7}
            ),
            "config.json's model answers over 7 actions, action_space.json has 240",
        ),
        (
            lambda d: _reseal(d, "calibration.json", temperature="hot"),
            r"calibration.json: 1 problem\(s\)\n  temperature: expected a number",
        ),
    ],
)
def test_damaged_or_old_bundles_are_refused_with_the_file_named(
    tmp_path: Path, damage, message: str
) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "bundle"
    shutil.copytree(BUNDLE, copy)
    damage(copy)
    with pytest.raises(BundleError, match=message):
        OnnxPolicy(copy)


def _reseal(folder: Path, name: str, **changes: object) -> None:
    """Change a file and seal the bundle again (as if a bundle were assembled by hand)."""
    from swarm_planner.core.bundle import caller_metadata, open_bundle, seal

    metadata = open_bundle(folder)
    _rewrite(folder / name, **changes)
    seal(folder, caller_metadata(metadata))


def _rewrite(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _plan(*extra: str) -> dict[str, Any]:
    args = ["plan", "--bundle", str(BUNDLE), "--input", str(FIXTURES / "tiny_planner_input.json")]
    result = CliRunner().invoke(app, [*args, "--json", *extra])
    assert result.exit_code == 0, result.output
    answer: dict[str, Any] = json.loads(result.stdout)["planner_action"]
    return answer


def test_planner_plan_prints_a_planner_action(planner_input: PlannerInput) -> None:
    action = load(_plan(), PlannerAction)
    expected = json.loads((FIXTURES / "tiny_expected.json").read_text())
    assert action.action.text == expected["action"]
    assert action.schema_version == "cyntra.planner_action.v1"
    assert action.input_hash == planner_input.input_hash()
    assert action.confidence is not None
    assert action.abstain_to_default == (action.confidence < 0.6)
    assert action.model is not None and action.model.checkpoint_id.startswith("mlp@tiny-bundle:")


def test_planner_plan_takes_the_threshold_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "kernel.yaml"
    config.write_text(
        f"planner: {{mode: enforce, model: {{type: onnx, path: {BUNDLE}}}, "
        "inference: {confidence_threshold: 1.0}}\n"
    )
    args = ["plan", "--config", str(config), "--input", str(FIXTURES / "tiny_planner_input.json")]
    result = CliRunner().invoke(app, [*args, "--json"])
    decision = json.loads(result.stdout)
    assert decision["planner_action"]["abstain_to_default"] is True
    assert decision["reason"] == "low_confidence" and decision["branch"] == "fallback"


def test_serving_never_imports_torch() -> None:
    code = (
        "import json, sys\n"
        "from swarm_planner.core.contracts import PlannerInput, load\n"
        "from swarm_planner.plugins.models.onnx_policy import OnnxPolicy\n"
        f"p = OnnxPolicy({str(BUNDLE)!r})\n"
        f"x = load(json.load(open({str(FIXTURES / 'tiny_planner_input.json')!r})), PlannerInput)\n"
        "p.decide(x)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_job_type_mask_memo_stays_bounded(
    policy: OnnxPolicy, planner_input: PlannerInput, monkeypatch: pytest.MonkeyPatch
) -> None:
    import attrs

    from swarm_planner.plugins.models import onnx_policy

    monkeypatch.setattr(onnx_policy, "_MASK_MEMO_SIZE", 8)
    for i in range(40):
        decision = policy.decide(attrs.evolve(planner_input, job_type=f"job-{i}"))
        assert decision.mask[policy.actions.index(decision.action)]
    assert len(policy._masks) <= 8


def test_a_model_answer_that_is_not_a_distribution_is_an_inference_error(
    planner_input: PlannerInput, monkeypatch: pytest.MonkeyPatch
) -> None:
    from swarm_planner.core.errors import InferenceError

    policy = OnnxPolicy(BUNDLE)
    real = policy.session.run_with_iobinding

    def poisoned(binding: object) -> None:
        real(binding)
        for bound in policy._local.slots.values():
            bound.probs[0, :] = np.nan

    monkeypatch.setattr(policy.session, "run_with_iobinding", poisoned)
    with pytest.raises(InferenceError, match="not a distribution over the valid actions"):
        policy.decide(planner_input)


def test_a_transformer_bundle_is_served_by_the_same_onnx_policy_without_torch(
    planner_input: PlannerInput,
) -> None:
    from swarm_planner.core.bundle import bundle_servers, open_bundle
    from swarm_planner.core.config import parse_config
    from swarm_planner.kernel_integration.service import PlannerService

    bundle = FIXTURES / "tiny-transformer"
    assert bundle_servers(open_bundle(bundle)) == ("onnx", "transformer")
    expected = json.loads((FIXTURES / "tiny_transformer_expected.json").read_text())
    policy = OnnxPolicy(bundle)
    decision = policy.decide(planner_input)
    assert decision.action.text == expected["action"]
    assert np.allclose(decision.probs, expected["probs"], atol=1e-6)
    # Padding (weight 0) is masked out of attention: the graph answers the same at any width.
    features = policy.encoder.encode(planner_input)
    n = len(features.ids)
    answers = []
    for width in (n, n + 7, 4 * n):
        ids = np.zeros((1, width), dtype=np.int64)
        weights = np.zeros((1, width), dtype=np.float32)
        ids[0, :n], weights[0, :n] = features.ids, features.weights
        ids[0, n:] = 5  # a real feature id, at weight 0: padding must not read it
        probs, _, _ = policy.session.run(
            ["probs", "action", "confidence"],
            {"ids": ids, "weights": weights, "mask": features.mask[None, :]},
        )
        answers.append(probs[0])
    assert all(np.allclose(a, answers[0], atol=1e-6) for a in answers)
    assert np.allclose(answers[0], expected["probs"], atol=1e-5)
    config = parse_config({"mode": "enforce", "model": {"type": "onnx", "path": str(bundle)}})
    served = PlannerService(config).decide(planner_input)
    assert served.model is not None and served.model.startswith("transformer@tiny-transformer:")


def test_inputs_are_padded_by_at_most_an_eighth_with_eight_bound_widths_a_doubling(
    planner_input: PlannerInput,
) -> None:
    import attrs

    from swarm_planner.plugins.models.onnx_policy import padded_width

    widths = [padded_width(n) for n in range(1, 5000)]
    assert widths[:64] == [64] * 64  # the narrowest binding
    for n, width in enumerate(widths, start=1):
        assert width >= n and (n <= 64 or 8 * (width - n) < n), (n, width)
    assert widths == sorted(widths)
    # Inputs of 129 to 256 ids (a transformer's usual 8 history runs) no longer all run at 256.
    assert [padded_width(n) for n in (129, 179, 231, 256, 257)] == [144, 192, 240, 256, 288]
    for low in (64, 128, 256, 512, 1024, 2048):
        assert len({padded_width(n) for n in range(low + 1, 2 * low + 1)}) == 8
    # A decision runs at its padded width: an input of several hundred ids binds a width the
    # warm-up did not (it binds those up to 256), and not the next power of two.
    policy = OnnxPolicy(BUNDLE)
    wide = attrs.evolve(
        planner_input,
        issue=attrs.evolve(planner_input.issue, tags=tuple(f"t{j}" for j in range(300))),
    )
    n = len(policy.encoder.encode(wide, mask=policy._mask(wide.job_type)).ids)
    assert n > 256 and padded_width(n) & (padded_width(n) - 1)  # not a power of two
    before = set(policy._local.slots)
    assert before == {padded_width(k) for k in range(1, 257)}
    policy.decide(wide)
    assert set(policy._local.slots) - before == {padded_width(n)}
