"""Property tests of the kernel-facing path: whatever the input, the bundle or the plugin, the
decision service answers with a recorded decision, never an exception; the memoised readers
agree with the strict ones."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz import (
    FUZZ,
    JSON_VALUES,
    PATHS,
    PYTHON_VALUES,
    RECORD_PATHS,
    TINY,
    _replaced,
    _set,
)

from swarm_planner import hookimpl
from swarm_planner.core import plugins
from swarm_planner.core.action_space import JointAction
from swarm_planner.core.canonical import input_hash
from swarm_planner.core.config import parse_config
from swarm_planner.core.contracts import PlannerInput, dump, load, load_input
from swarm_planner.core.errors import ContractError
from swarm_planner.core.protocols import ActionDistribution
from swarm_planner.kernel_integration.gate import REASONS
from swarm_planner.kernel_integration.service import PlannerService

FIXTURES = Path(__file__).parent / "fixtures"
BUNDLE = FIXTURES / "tiny-bundle"


def _assert_a_decision(decision: Any) -> None:
    assert decision.reason in REASONS
    assert decision.executed_plan.swarm_id_executed == decision.executed.swarm_id
    assert 0.0 < decision.propensity <= 1.0
    if decision.branch == "fallback":
        assert decision.executed_plan.fallback_applied


@pytest.fixture(scope="module")
def onnx_service() -> PlannerService:
    config = parse_config(
        {"mode": "enforce", "model": {"type": "onnx", "path": str(BUNDLE)}},
    )
    return PlannerService(config)


@FUZZ
@given(st.sampled_from(PATHS), JSON_VALUES)
def test_any_json_input_gets_a_decision(
    onnx_service: PlannerService, path: tuple[Any, ...], value: Any
) -> None:
    document = _replaced(TINY, path, value)
    try:
        planner_input: Any = load(document, PlannerInput, source="fuzz")
    except ContractError:
        planner_input = document
    _assert_a_decision(onnx_service.decide(planner_input))


@FUZZ
@given(st.sampled_from(RECORD_PATHS), PYTHON_VALUES)
def test_any_record_built_in_code_gets_a_decision(
    onnx_service: PlannerService, path: tuple[str, ...], value: Any
) -> None:
    try:
        planner_input = _set(load(TINY, PlannerInput), path, value)
    except (TypeError, ValueError):
        return
    _assert_a_decision(onnx_service.decide(planner_input))


@FUZZ
@given(JSON_VALUES)
def test_any_baseline_object_gets_a_decision(onnx_service: PlannerService, value: Any) -> None:
    _assert_a_decision(onnx_service.decide(load(TINY, PlannerInput), value))


# -- lying plugins --------------------------------------------------------------------------------

ANSWERS: list[Any] = []


@attrs.frozen
class LiarOptions:
    pass


class Liar:
    def __init__(self, options: LiarOptions) -> None:
        pass

    def predict(self, x: PlannerInput) -> Any:
        answer = ANSWERS[-1]
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return answer(x)
        return answer


class LiarPlugin:
    @hookimpl
    def register_policies(self, register: Any) -> None:
        register("liar", Liar, options=LiarOptions)


def _distribution(probs: list[float], actions_of: str) -> Any:
    def build(x: PlannerInput) -> Any:
        space = x.action_space
        actions = space.valid_actions(x.job_type) if actions_of == "valid" else space.all_actions()
        values = (np.array(probs * len(actions))[: len(actions)]).astype(float)
        dist = object.__new__(ActionDistribution)  # a distribution that skipped its checks
        object.__setattr__(dist, "actions", actions)
        object.__setattr__(dist, "probs", values)
        return dist

    return build


LIES = st.one_of(
    JSON_VALUES,
    st.sampled_from(
        [RuntimeError("boom"), ValueError("no"), KeyError("k"), ZeroDivisionError(), MemoryError()]
    ),
    st.builds(
        _distribution,
        st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=5),
        st.sampled_from(["valid", "all"]),
    ),
)


@pytest.fixture(scope="module")
def liar_service() -> PlannerService:
    host = plugins.PluginHost()
    host.load_entry_points(allowlist=[])
    host.add_plugin(LiarPlugin(), name="liar-test")
    config = parse_config(
        {"mode": "enforce", "model": {"type": "liar"}, "inference": {"confidence_threshold": 0}},
        host=host,
    )
    return PlannerService(config, host=host)


@FUZZ
@given(LIES)
def test_a_lying_or_failing_policy_never_escapes(liar_service: PlannerService, lie: Any) -> None:
    ANSWERS.append(lie)
    x = load(TINY, PlannerInput)
    decision = liar_service.decide(x)
    _assert_a_decision(decision)
    assert decision.executed in x.action_space.valid_actions(x.job_type)


# -- broken bundles -------------------------------------------------------------------------------

BUNDLE_FILES = sorted(p.name for p in BUNDLE.iterdir())


@FUZZ
@given(st.sampled_from(BUNDLE_FILES), st.sampled_from(["delete", "truncate", "garbage", "append"]))
def test_a_broken_bundle_is_a_recorded_fallback(name: str, damage: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "bundle"
        shutil.copytree(BUNDLE, copy)
        target = copy / name
        if damage == "delete":
            target.unlink()
        elif damage == "truncate":
            target.write_bytes(target.read_bytes()[: max(1, target.stat().st_size // 2)])
        elif damage == "garbage":
            target.write_bytes(b"\x00\xff garbage")
        else:
            with target.open("ab") as handle:
                handle.write(b"x")
        config = parse_config({"mode": "enforce", "model": {"type": "onnx", "path": str(copy)}})
        decision = PlannerService(config).decide(load(TINY, PlannerInput))
        assert decision.reason == "model_unavailable"
        _assert_a_decision(decision)


# -- the memoised readers agree with the strict ones ------------------------------------------------


@FUZZ
@given(st.sampled_from(PATHS), JSON_VALUES)
def test_load_input_reads_or_refuses_exactly_as_load(path: tuple[Any, ...], value: Any) -> None:
    document = _replaced(TINY, path, value)
    load_input(TINY)  # the memo holds the fixture's parts
    try:
        expected: Any = load(document, PlannerInput, source="x")
    except ContractError as exc:
        expected = str(exc)
    try:
        got: Any = load_input(document, source="x")
    except ContractError as exc:
        got = str(exc)
    assert got == expected


def test_a_run_seen_again_with_bools_as_numbers_is_still_refused() -> None:
    good = json.loads(json.dumps(TINY))
    load_input(good)
    bad = json.loads(json.dumps(TINY))
    gates = bad["history"]["last_n_similar_runs"][0]["outcome"]["gates"]
    assert gates, "the fixture's first run has gates"
    gates[0]["passed"] = int(gates[0]["passed"])
    with pytest.raises(ContractError, match=r"passed: expected true or false"):
        load_input(bad)


@FUZZ
@given(st.sampled_from(PATHS), JSON_VALUES)
def test_the_composed_input_hash_is_the_canonical_one(path: tuple[Any, ...], value: Any) -> None:
    try:
        x = load(_replaced(TINY, path, value), PlannerInput)
    except ContractError:
        return
    assert x.input_hash() == input_hash(dump(x))
    assert math.isfinite(len(x.input_hash()))


def test_joint_action_validity_is_the_rules_verdict() -> None:
    x = load(TINY, PlannerInput)
    space = x.action_space
    odd = [JointAction("serial_handoff", 7, 60, "NA"), JointAction("nosuch", 1, 60, "NA")]
    for job in ("code", "fab-world", "other"):
        for action in (*space.all_actions(), *odd):
            assert space.is_valid(action, job) == (not space.violations(action, job))
