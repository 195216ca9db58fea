"""The compositional encoder: fixed id space, deterministic, order-invariant, restart-stable."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import attrs
import numpy as np
import pytest

from swarm_planner.core.contracts import History, PlannerInput, dump
from swarm_planner.core.errors import ConfigError
from swarm_planner.core.history import RECENCY_EDGES_MS, recency_bucket
from swarm_planner.core.plugins import PluginHost
from swarm_planner.core.protocols import Encoder
from swarm_planner.core.recording import ms_from_rfc3339
from swarm_planner.plugins.encoders.compositional import CompositionalEncoder, CompositionalOptions

MakeInput = Callable[..., PlannerInput]


def test_it_is_a_registered_encoder_with_strict_options(host: PluginHost) -> None:
    encoder = host.create("encoder", "compositional", {"n_history": 4, "pair_buckets": 512})
    assert isinstance(encoder, Encoder)
    assert encoder.options.n_history == 4
    with pytest.raises(ConfigError, match="pair_bukets: unknown key"):
        host.create("encoder", "compositional", {"pair_bukets": 512}, path="encoder.options")


def test_ids_fall_in_the_fixed_id_space_and_the_mask_is_the_job_types(
    make_input: MakeInput,
) -> None:
    encoder = CompositionalEncoder()
    planner_input = make_input(job_type="fab-world")
    features = encoder.encode(planner_input)
    assert features.ids.dtype == np.int64 and features.weights.dtype == np.float32
    assert features.ids.min() >= 0 and features.ids.max() < encoder.n_features
    assert list(features.ids) == sorted(features.ids) and set(features.weights.tolist()) == {1.0}
    assert np.array_equal(features.mask, planner_input.action_space.joint_mask("fab-world"))
    assert features.mask.sum() == 120


def test_encoding_is_deterministic_and_set_order_does_not_matter(make_input: MakeInput) -> None:
    encoder = CompositionalEncoder()
    a = make_input(tags=["api", "auth", "db"], keywords=["token", "race"])
    b = make_input(tags=["db", "api", "auth"], keywords=["race", "token"])
    fa, fb = encoder.encode(a), encoder.encode(b)
    assert np.array_equal(fa.ids, fb.ids) and np.array_equal(fa.weights, fb.weights)
    again = CompositionalEncoder().encode(a)
    assert np.array_equal(fa.ids, again.ids)


def test_facts_change_the_features(make_input: MakeInput) -> None:
    encoder = CompositionalEncoder()
    base = encoder.encode(make_input(risk="low"))
    assert not np.array_equal(base.ids, encoder.encode(make_input(risk="critical")).ids)
    assert not np.array_equal(
        base.ids, encoder.encode(make_input(risk="low", tags=["new-tag"])).ids
    )


def test_an_unseen_tag_is_a_bucket_not_an_error(make_input: MakeInput) -> None:
    encoder = CompositionalEncoder()
    tokens = encoder.tokens(make_input(tags=["never-seen-before"]))
    assert ("issue.tag", "never-seen-before") in tokens
    features = encoder.encode(make_input(tags=["never-seen-before"]))
    assert features.ids.max() < encoder.n_features


def test_history_slots_and_system_state_are_encoded(make_input: MakeInput) -> None:
    encoder = CompositionalEncoder()
    planner_input = make_input()
    tokens = encoder.tokens(planner_input)
    assert ("h0.status", "failed") in tokens and ("h1.status", "success") in tokens
    assert ("h0.failure", "gate:pytest") in tokens and ("h0.failure", "pytest_failed") in tokens
    assert ("history.count", "2") in tokens
    assert ("system.present", "yes") in tokens and ("system.queue_depth_bin", "6_plus") in tokens
    bare = attrs.evolve(planner_input, system_state=None, history=History())
    tokens = encoder.tokens(bare)
    assert ("system.present", "no") in tokens and ("history.count", "0") in tokens


def test_n_history_limits_the_slots_encoded(make_input: MakeInput) -> None:
    tokens = CompositionalEncoder(CompositionalOptions(n_history=1)).tokens(make_input())
    assert ("history.count", "1") in tokens
    assert not any(k.startswith("h1.") for k, _ in tokens)


def test_a_batch_holds_each_inputs_bag_with_repeats_merged(make_input: MakeInput) -> None:
    encoder = CompositionalEncoder()
    inputs = [make_input(risk="low"), attrs.evolve(make_input(), history=History()), make_input()]
    batch = encoder.encode_batch(inputs)
    assert len(batch) == 3 and batch.offsets[0] == 0 and batch.offsets[-1] == len(batch.ids)
    for row, planner_input in enumerate(inputs):
        single = encoder.encode(planner_input)
        distinct, counts = np.unique(single.ids, return_counts=True)
        start, end = batch.offsets[row], batch.offsets[row + 1]
        assert np.array_equal(batch.ids[start:end], distinct)
        assert np.array_equal(batch.weights[start:end], counts.astype(np.float32))
        assert np.array_equal(batch.mask[row], single.mask)
    assert batch.weights.max() > 1  # the two history runs share failure signals


def test_the_padded_form_pads_with_id_zero_at_weight_zero(make_input: MakeInput) -> None:
    encoder = CompositionalEncoder()
    inputs = [make_input(risk="low"), attrs.evolve(make_input(), history=History())]
    batch = encoder.encode_batch(inputs)
    ids, weights = batch.padded()
    n = int(batch.offsets[2] - batch.offsets[1])
    assert ids.shape == weights.shape == (2, int(np.diff(batch.offsets).max()))
    assert np.array_equal(ids[1, :n], batch.ids[batch.offsets[1] :])
    assert not ids[1, n:].any() and not weights[1, n:].any()
    again = batch.take(np.array([1]))
    assert np.array_equal(again.ids, batch.ids[batch.offsets[1] :])


def test_one_input_is_the_same_bag_alone_or_in_any_batch(make_input: MakeInput) -> None:
    encoder = CompositionalEncoder()
    target = make_input(tags=["api"])
    alone = encoder.encode_batch([target])
    among = encoder.encode_batch([make_input(risk="critical"), target, make_input(tags=[])])
    start, end = among.offsets[1], among.offsets[2]
    assert np.array_equal(alone.ids, among.ids[start:end])
    assert np.array_equal(alone.weights, among.weights[start:end])


def test_the_config_rebuilds_the_same_encoder_in_a_new_process(make_input: MakeInput) -> None:
    encoder = CompositionalEncoder(CompositionalOptions(n_history=6, pair_buckets=1024))
    planner_input = make_input(tags=["api", "zeta"])
    code = (
        "import json, sys\n"
        "from swarm_planner.core.contracts import PlannerInput, load\n"
        "from swarm_planner.core.jsonconv import structure\n"
        "from swarm_planner.plugins.encoders.compositional import CompositionalEncoder, CompositionalOptions\n"
        "config, data = json.loads(sys.stdin.read())\n"
        "enc = CompositionalEncoder(structure(config['options'], CompositionalOptions))\n"
        "f = enc.encode(load(data, PlannerInput))\n"
        "print(json.dumps([f.ids.tolist(), f.weights.tolist(), enc.n_features]))\n"
    )
    payload = json.dumps([encoder.config(), dump(planner_input)])
    out = subprocess.run(
        [sys.executable, "-c", code], input=payload, capture_output=True, text=True, check=True
    )
    ids, weights, n_features = json.loads(out.stdout)
    here = encoder.encode(planner_input)
    assert ids == here.ids.tolist() and weights == here.weights.tolist()
    assert n_features == encoder.n_features


def test_an_encoder_of_another_version_is_refused() -> None:
    with pytest.raises(ValueError, match="encoder version 2 is not supported"):
        CompositionalEncoder(CompositionalOptions(version=2))


def test_every_token_maps_to_exactly_the_ids_encode_emits(make_input: MakeInput) -> None:
    encoder = CompositionalEncoder()
    planner_input = make_input(job_type="fab-world", tags=["api", "x"])
    expected: list[int] = []
    for key, value in encoder.tokens(planner_input):
        closed = encoder._ids.closed.get(key, {}).get(value)
        expected.extend([closed] if closed is not None else encoder._open_ids(key, value))
    features = encoder.encode(planner_input)
    assert features.ids.tolist() == sorted(expected)
    assert np.array_equal(features.weights, np.ones(len(expected), dtype=np.float32))


def test_a_value_outside_a_closed_vocabulary_is_hashed_not_an_error(make_input: MakeInput) -> None:
    planner_input = make_input()
    run = planner_input.history.last_n_similar_runs[0]
    odd = attrs.evolve(run, action_executed=attrs.evolve(run.action_executed, max_candidates=0))
    planner_input = attrs.evolve(planner_input, history=History((odd,)))
    encoder = CompositionalEncoder()
    assert ("h0.candidates", "0") in encoder.tokens(planner_input)
    assert encoder.encode(planner_input).ids.max() < encoder.n_features


@pytest.mark.parametrize("edge", [0, *RECENCY_EDGES_MS])
@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_history_recency_is_the_history_modules_bucket_at_every_edge(
    make_input: MakeInput, edge: int, offset: int
) -> None:
    planner_input = make_input()
    age = max(0, edge + offset)
    query_ms = ms_from_rfc3339(planner_input.created_at)
    run = attrs.evolve(planner_input.history.last_n_similar_runs[0], started_ms=query_ms - age)
    planner_input = attrs.evolve(planner_input, history=History((run,)))
    encoder = CompositionalEncoder()
    expected = encoder._ids.closed["h0.recency"][str(recency_bucket(age))]
    assert ("h0.recency", str(recency_bucket(age))) in encoder.tokens(planner_input)
    assert expected in encoder.encode(planner_input).ids


def test_a_remembered_run_in_another_slot_encodes_as_a_fresh_encoder_would(
    make_input: MakeInput,
) -> None:
    planner_input = make_input()
    first, second = planner_input.history.last_n_similar_runs[:2]
    swapped = attrs.evolve(planner_input, history=History((second, first)))
    encoder = CompositionalEncoder()
    encoder.encode(planner_input)  # remembers both runs, each in its slot
    assert np.array_equal(encoder.encode(swapped).ids, CompositionalEncoder().encode(swapped).ids)


def test_the_run_memo_stays_bounded_and_correct_when_full(
    make_input: MakeInput, monkeypatch: pytest.MonkeyPatch
) -> None:
    from swarm_planner.plugins.encoders import compositional

    monkeypatch.setattr(compositional, "_RUNS_MEMO_SIZE", 3)
    monkeypatch.setattr(compositional, "_SIGNATURE_MEMO_SIZE", 3)
    planner_input = make_input()
    run = planner_input.history.last_n_similar_runs[0]
    inputs = [
        attrs.evolve(
            planner_input,
            history=History(
                (
                    attrs.evolve(
                        run,
                        run_id=f"r{i}",
                        runtime=attrs.evolve(run.runtime, duration_ms=60_000 * (i % 7)),
                        action_executed=attrs.evolve(run.action_executed, max_minutes=10 * i),
                    ),
                )
            ),
        )
        for i in range(20)
    ]
    encoder = CompositionalEncoder()
    for planner_input in inputs:
        assert np.array_equal(
            encoder.encode(planner_input).ids, CompositionalEncoder().encode(planner_input).ids
        )
        assert len(encoder._run_memo.runs) <= 3 and len(encoder._run_memo.signature_of) <= 3


def test_a_record_built_in_code_with_lists_encodes_like_its_json_form(
    make_input: MakeInput,
) -> None:
    planner_input = make_input(tags=["api", "db"])
    assert planner_input.system_state is not None
    listed = attrs.evolve(
        planner_input,
        issue=attrs.evolve(planner_input.issue, tags=["api", "db"]),
        system_state=attrs.evolve(
            planner_input.system_state,
            available_toolchains=list(planner_input.system_state.available_toolchains or ()),
        ),
    )
    encoder = CompositionalEncoder()
    assert np.array_equal(encoder.encode(listed).ids, encoder.encode(planner_input).ids)


def test_a_run_seen_again_with_another_outcome_is_encoded_afresh(make_input: MakeInput) -> None:
    """The run memo keys on what the outputs depend on: a run that was in flight at its first
    sighting and has finished since is not encoded with its old outcome."""
    from swarm_planner.core.contracts import Gate, Outcome

    planner_input = make_input()
    run = planner_input.history.last_n_similar_runs[0]
    running = attrs.evolve(run, outcome=Outcome("timeout", ("still_running",), ()))
    finished = attrs.evolve(
        run, outcome=Outcome("failed", ("lint_failed",), (Gate("ruff", False, 0.0),))
    )
    before = attrs.evolve(planner_input, history=History((running,)))
    after = attrs.evolve(planner_input, history=History((finished,)))
    encoder = CompositionalEncoder()
    encoder.encode(before)
    assert np.array_equal(encoder.encode(after).ids, CompositionalEncoder().encode(after).ids)
    assert not np.array_equal(encoder.encode(after).ids, encoder.encode(before).ids)


def test_every_memo_stays_bounded_on_inputs_that_never_repeat(
    make_input: MakeInput, monkeypatch: pytest.MonkeyPatch
) -> None:
    from swarm_planner.plugins.encoders import compositional

    for name in ("_RUNS_MEMO_SIZE", "_SIGNATURE_MEMO_SIZE", "_GROUP_MEMO_SIZE", "_OPEN_CACHE_SIZE",
                 "_TIME_MEMO_SIZE"):  # fmt: skip
        monkeypatch.setattr(compositional, name, 50)
    planner_input = make_input()
    run = planner_input.history.last_n_similar_runs[0]
    encoder = CompositionalEncoder()
    for i in range(400):
        x = attrs.evolve(
            planner_input,
            created_at=f"2025-02-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
            issue=attrs.evolve(planner_input.issue, tags=(f"t{i}",), keywords=(f"k{i}",)),
            history=History((attrs.evolve(run, run_id=f"r{i}", tags=(f"h{i}",)),)),
        )
        encoder.encode(x)
    memo = encoder._run_memo
    sizes = {
        "runs": len(memo.runs),
        "signatures": len(memo.signature_of),
        "groups": len(encoder._ids.groups),
        "open tokens": len(encoder._open_cache),
        "times": len(encoder._created_ms),
    }
    assert all(size <= 50 for size in sizes.values()), sizes


def test_the_weights_buffer_is_read_once_when_another_thread_swaps_it(
    make_input: MakeInput, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Encoding a wide input grows the shared all-ones weights buffer; if another thread swaps
    in its own (shorter) buffer between the growth and the slice, this input's weights must
    still be as long as its ids."""
    from swarm_planner.core.action_space import ActionSpace

    encoder = CompositionalEncoder()
    wide = make_input(tags=tuple(f"t{i}" for i in range(800)))
    real_mask = ActionSpace.job_mask

    def mask_while_another_thread_swaps(space: ActionSpace, job_type: str) -> np.ndarray:
        encoder._ones = np.ones(10, dtype=np.float32)  # the other thread's, shorter buffer
        return real_mask(space, job_type)

    monkeypatch.setattr(ActionSpace, "job_mask", mask_while_another_thread_swaps)
    features = encoder.encode(wide)
    assert len(features.weights) == len(features.ids) > 800
