"""The decision service: every branch of the gate, the modes, retries, exploration, recording."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from swarm_planner import hookimpl
from swarm_planner.core import plugins
from swarm_planner.core.action_space import NA, ActionSpace, JointAction
from swarm_planner.core.archives import read_run
from swarm_planner.core.config import parse_config
from swarm_planner.core.contracts import PlannerInput, dump, load
from swarm_planner.core.heuristic import HeuristicRules
from swarm_planner.core.protocols import ActionDistribution
from swarm_planner.kernel_integration.decision import LOGGING_KEY
from swarm_planner.kernel_integration.service import PlannerService

FIXTURES = Path(__file__).parent / "fixtures"
BUNDLE = FIXTURES / "tiny-bundle"

SERIAL = JointAction("serial_handoff", 1, 60, NA)
SPEC2 = JointAction("speculate_vote", 2, 60, NA)
SPEC3_120 = JointAction("speculate_vote", 3, 120, NA)

BEHAVIOURS: dict[str, Callable[[PlannerInput], Any]] = {}
BUILT: list[str] = []


@attrs.frozen
class ScriptOptions:
    script: str


class ScriptedPolicy:
    """A policy whose answers the test scripts (including lies and failures)."""

    def __init__(self, options: ScriptOptions) -> None:
        BUILT.append(options.script)
        self.fn = BEHAVIOURS[options.script]

    def predict(self, planner_input: PlannerInput) -> Any:
        return self.fn(planner_input)


class ScriptPlugin:
    @hookimpl
    def register_policies(self, register: Any) -> None:
        register("scripted", ScriptedPolicy, options=ScriptOptions)


@pytest.fixture()
def host() -> plugins.PluginHost:
    h = plugins.PluginHost()
    h.load_entry_points(allowlist=[])
    h.add_plugin(ScriptPlugin(), name="scripted-test")
    BUILT.clear()
    return h


def choose(action: JointAction, p: float = 0.9) -> Callable[[PlannerInput], ActionDistribution]:
    """A policy putting ``p`` on ``action`` and the rest evenly on the other valid actions."""

    def answer(x: PlannerInput) -> ActionDistribution:
        actions = x.action_space.valid_actions(x.job_type)
        probs = np.full(len(actions), (1 - p) / (len(actions) - 1))
        probs[actions.index(action)] = p
        return ActionDistribution(actions, probs)

    return answer


@pytest.fixture()
def x() -> PlannerInput:
    data = json.loads((FIXTURES / "planner_input.json").read_text())
    data["job_type"] = "code"
    data["issue"]["dk_risk"] = "high"  # the heuristic baseline: speculate_vote x2
    return load(data, PlannerInput)


def service(host: plugins.PluginHost, script: str = "", **section: Any) -> PlannerService:
    section.setdefault("mode", "enforce")
    model = section.setdefault("model", {})
    if script:
        model.update(type="scripted", options={"script": script})
    return PlannerService(parse_config(section, host=host), host=host)


def scripted(name: str, fn: Callable[[PlannerInput], Any]) -> str:
    BEHAVIOURS[name] = fn
    return name


# -- modes ----------------------------------------------------------------------------------------


def test_off_runs_the_baseline_and_loads_nothing(host: plugins.PluginHost, x: PlannerInput) -> None:
    svc = service(host, scripted("spec3", choose(SPEC3_120)), mode="off")
    decision = svc.decide(x, SERIAL)
    assert BUILT == [] and svc.model is None
    assert (decision.branch, decision.reason, decision.executed) == ("off", "mode_off", SERIAL)


def test_log_records_the_model_and_runs_the_baseline(
    host: plugins.PluginHost, x: PlannerInput
) -> None:
    baseline = JointAction("speculate_vote", 2, 120, NA)
    svc = service(host, scripted("spec2", choose(SPEC2)), mode="log")
    decision = svc.decide(x, baseline)
    assert decision.planner_action.action == SPEC2  # what the model said is kept
    assert decision.executed == baseline and decision.reason == "log_only"
    assert decision.executed_plan.fallback_reason == "log_only"
    assert decision.planner_action.probs is not None
    assert decision.planner_action.probs[LOGGING_KEY] == {baseline.text: 1.0}


def test_enforce_runs_the_model_choice(host: plugins.PluginHost, x: PlannerInput) -> None:
    baseline = JointAction("speculate_vote", 2, 120, NA)
    decision = service(host, scripted("spec2", choose(SPEC2))).decide(x, baseline)
    assert (decision.branch, decision.reason, decision.executed) == ("model", "model", SPEC2)
    assert decision.executed_plan.timeout_seconds_executed == 3600
    assert decision.timeout_seconds_override == 3600
    assert not decision.executed_plan.fallback_applied


def test_without_a_baseline_the_fallback_plugin_gives_it(
    host: plugins.PluginHost, x: PlannerInput
) -> None:
    decision = service(host, mode="off").decide(x)
    assert decision.executed == HeuristicRules().decide(x)


# -- the gate, in order ---------------------------------------------------------------------------


def test_a_missing_bundle_is_model_unavailable(host: plugins.PluginHost, x: PlannerInput) -> None:
    svc = service(host, model={"type": "onnx", "path": "/nowhere/bundle"})
    decision = svc.decide(x, SERIAL)
    assert decision.reason == "model_unavailable" and decision.executed == SERIAL
    assert decision.detail is not None and "/nowhere/bundle" in decision.detail


def test_a_bundle_of_another_kind_is_refused_by_the_policy_named(
    host: plugins.PluginHost, x: PlannerInput
) -> None:
    decision = service(host, model={"type": "value", "path": str(BUNDLE)}).decide(x, SERIAL)
    assert decision.reason == "model_unavailable"
    assert decision.detail is not None and "served by onnx or mlp" in decision.detail


def test_a_failed_load_is_retried_on_schedule_not_cached(
    host: plugins.PluginHost, x: PlannerInput, tmp_path: Path
) -> None:
    now = [0.0]
    path = tmp_path / "bundle"
    config = parse_config(
        {
            "mode": "enforce",
            "model": {"type": "onnx", "path": str(path), "retry_seconds": [10, 60]},
        },
        host=host,
    )
    svc = PlannerService(config, host=host, clock=lambda: now[0])
    assert svc.decide(x, SERIAL).reason == "model_unavailable"
    shutil.copytree(BUNDLE, path)  # the bundle lands
    now[0] = 9.0
    assert svc.decide(x, SERIAL).reason == "model_unavailable"  # not due yet
    now[0] = 10.5
    assert svc.decide(x, SERIAL).reason != "model_unavailable"  # retried, loaded
    assert svc.load_state.loads == 1 and svc.load_state.error is None


def test_the_retry_schedule_backs_off_and_repeats_its_last_delay(
    host: plugins.PluginHost, x: PlannerInput
) -> None:
    now = [0.0]
    config = parse_config(
        {"mode": "enforce", "model": {"type": "onnx", "path": "/nowhere", "retry_seconds": [1, 5]}},
        host=host,
    )
    svc = PlannerService(config, host=host, clock=lambda: now[0])
    due = []
    for t in (0.5, 1.0, 5.9, 6.0, 10.9, 11.0):
        now[0] = t
        svc.decide(x, SERIAL)
        due.append(svc.load_state.retry_at)
    assert due == [1.0, 6.0, 6.0, 11.0, 11.0, 16.0]
    assert svc.load_state.failures == 4


def test_a_job_type_not_enabled_falls_back(host: plugins.PluginHost, x: PlannerInput) -> None:
    svc = service(
        host, scripted("spec2", choose(SPEC2)), flags={"enabled_job_types": ["fab-world"]}
    )
    decision = svc.decide(x, SERIAL)
    assert (decision.branch, decision.reason, decision.executed) == (
        "fallback",
        "job_type_disabled",
        SERIAL,
    )


def test_a_policy_that_raises_is_an_inference_error(
    host: plugins.PluginHost, x: PlannerInput
) -> None:
    def boom(_: PlannerInput) -> Any:
        raise RuntimeError("the GPU caught fire")

    decision = service(host, scripted("boom", boom)).decide(x, SERIAL)
    assert decision.reason == "inference_error" and decision.executed == SERIAL
    assert decision.detail == "RuntimeError: the GPU caught fire"


def test_nan_probabilities_are_an_inference_error(
    host: plugins.PluginHost, x: PlannerInput
) -> None:
    def nan(x: PlannerInput) -> Any:
        actions = x.action_space.valid_actions(x.job_type)
        return ActionDistribution(actions, np.full(len(actions), np.nan))

    assert service(host, scripted("nan", nan)).decide(x, SERIAL).reason == "inference_error"


def test_a_slow_answer_is_discarded(host: plugins.PluginHost, x: PlannerInput) -> None:
    def slow(x: PlannerInput) -> Any:
        time.sleep(0.05)
        return choose(SPEC2)(x)

    decision = service(host, scripted("slow", slow), inference={"timeout_ms": 10}).decide(x, SERIAL)
    assert decision.reason == "inference_timeout" and decision.executed == SERIAL
    assert decision.planner_action.action == SERIAL


def test_low_confidence_falls_back_but_keeps_the_answer(
    host: plugins.PluginHost, x: PlannerInput
) -> None:
    decision = service(host, scripted("unsure", choose(SPEC2, p=0.4))).decide(x, SERIAL)
    assert decision.reason == "low_confidence" and decision.executed == SERIAL
    assert decision.planner_action.action == SPEC2
    assert decision.planner_action.abstain_to_default is True


def test_an_answer_that_is_not_a_distribution_is_invalid(
    host: plugins.PluginHost, x: PlannerInput
) -> None:
    decision = service(host, scripted("dict", lambda _: {"speculate_vote": 1.0})).decide(x, SERIAL)
    assert decision.reason == "prediction_invalid" and decision.executed == SERIAL


def test_an_action_outside_the_valid_set_is_refused(
    host: plugins.PluginHost, x: PlannerInput
) -> None:
    invalid = JointAction("serial_handoff", 3, 60, NA)  # serial runs one candidate

    def lie(x: PlannerInput) -> Any:
        return ActionDistribution((invalid,), np.array([1.0]))

    decision = service(host, scripted("lie", lie)).decide(x, SERIAL)
    assert decision.reason == "prediction_out_of_space" and decision.executed == SERIAL


def test_a_topology_change_the_config_does_not_allow_falls_back(
    host: plugins.PluginHost, x: PlannerInput
) -> None:
    decision = service(host, scripted("spec2", choose(SPEC2))).decide(x, SERIAL)
    assert decision.reason == "swarm_mismatch" and decision.executed == SERIAL
    allowed = service(
        host,
        scripted("spec2", choose(SPEC2)),
        safety={"swarm_changes": ["serial_handoff->speculate_vote"]},
    ).decide(x, JointAction("serial_handoff", 1, 120, NA))
    # allowed, and still never more candidates than the baseline's one
    assert allowed.reason == "model"
    assert allowed.executed == JointAction("speculate_vote", 1, 60, NA)
    assert allowed.clamps == ("reductions_only:max_candidates_bin",)


def test_the_safety_caps_clamp_to_the_largest_allowed_budget(
    host: plugins.PluginHost, x: PlannerInput
) -> None:
    baseline = JointAction("speculate_vote", 3, 120, NA)
    decision = service(
        host, scripted("spec3", choose(SPEC3_120)), safety={"max_candidates_cap": 2}
    ).decide(x, baseline)
    assert decision.executed == JointAction("speculate_vote", 2, 120, NA)
    assert decision.clamps == ("max_candidates_cap",) and decision.reason == "model"
    assert decision.planner_action.action == SPEC3_120


def test_reductions_only_never_exceeds_the_baseline(
    host: plugins.PluginHost, x: PlannerInput
) -> None:
    baseline = JointAction("speculate_vote", 2, 30, NA)
    decision = service(host, scripted("spec3", choose(SPEC3_120))).decide(x, baseline)
    assert decision.executed == baseline
    assert set(decision.clamps) == {
        "reductions_only:max_candidates_bin",
        "reductions_only:max_minutes_bin",
    }
    free = service(
        host, scripted("spec3", choose(SPEC3_120)), safety={"reductions_only": False}
    ).decide(x, baseline)
    assert free.executed == SPEC3_120 and free.clamps == ()


def test_no_cap_counts_as_more_than_any_cap(host: plugins.PluginHost, x: PlannerInput) -> None:
    uncapped = JointAction("speculate_vote", 2, NA, NA)
    decision = service(host, scripted("na", choose(uncapped))).decide(
        x, JointAction("speculate_vote", 2, NA, NA)
    )
    assert decision.executed == JointAction("speculate_vote", 2, 120, NA)
    assert decision.clamps == ("max_minutes_cap",)


def test_force_swarm_sets_the_topology(host: plugins.PluginHost, x: PlannerInput) -> None:
    decision = service(
        host, scripted("spec2", choose(SPEC2)), flags={"force_swarm": "serial_handoff"}
    ).decide(x, JointAction("speculate_vote", 2, 120, NA))
    assert decision.branch == "forced" and decision.reason == "force_swarm"
    assert decision.executed == SERIAL


def test_an_invalid_input_is_a_recorded_fallback(host: plugins.PluginHost) -> None:
    svc = service(host, scripted("spec2", choose(SPEC2)))
    for bad in ({"not": "an input"}, None, 42, "text"):
        decision = svc.decide(bad, SERIAL)
        assert decision.reason == "invalid_input" and decision.executed == SERIAL
    without_baseline = svc.decide({"x": 1})
    assert without_baseline.executed_plan.fallback_applied
    assert without_baseline.executed.swarm_id == "serial_handoff"


# -- exploration ----------------------------------------------------------------------------------


def _inputs(n: int) -> list[PlannerInput]:
    data = json.loads((FIXTURES / "planner_input.json").read_text())
    data["job_type"] = "code"
    data["issue"]["dk_risk"] = "high"
    out = []
    for i in range(n):
        data["issue"]["issue_id"] = f"EXP-{i}"
        out.append(load(data, PlannerInput))
    return out


def test_exploration_draws_within_the_safe_set_reproducibly(host: plugins.PluginHost) -> None:
    baseline = JointAction("speculate_vote", 2, 120, NA)
    svc = service(host, scripted("spec2", choose(SPEC2)), exploration={"epsilon": 0.4, "seed": 3})
    inputs = _inputs(400)
    decisions = [svc.decide(x, baseline) for x in inputs]
    explored = [d for d in decisions if d.branch == "exploration"]
    safe = set(svc._safe_set(inputs[0].action_space, "code", baseline))
    assert 0.25 < len(explored) / len(decisions) < 0.45  # epsilon minus draws of the greedy
    assert all(d.executed in safe for d in decisions)
    for d in decisions:
        logging = d.planner_action.probs[LOGGING_KEY]  # type: ignore[index]
        assert abs(sum(logging.values()) - 1.0) < 1e-9
        assert d.propensity == logging[d.executed.text]
    again = [svc.decide(x, baseline).executed for x in inputs]
    assert again == [d.executed for d in decisions]
    other_seed = service(
        host, scripted("spec2", choose(SPEC2)), exploration={"epsilon": 0.4, "seed": 4}
    )
    assert [other_seed.decide(x, baseline).executed for x in inputs] != again


def test_no_exploration_in_log_mode(host: plugins.PluginHost) -> None:
    svc = service(host, scripted("spec2", choose(SPEC2)), mode="log", exploration={"epsilon": 1.0})
    assert all(svc.decide(x, SPEC2).propensity == 1.0 for x in _inputs(30))


# -- recording ------------------------------------------------------------------------------------


def test_a_recorded_decision_is_read_back_by_the_archive_reader(
    host: plugins.PluginHost, x: PlannerInput, tmp_path: Path
) -> None:
    baseline = JointAction("speculate_vote", 3, 120, NA)
    svc = service(host, scripted("spec3", choose(SPEC3_120)), safety={"max_candidates_cap": 2})
    decision = svc.decide(x, baseline)
    run = _archive(tmp_path, passed=True)
    svc.record(run / "manifest.json", decision)
    archived = read_run(run)
    assert archived.action_source == "executed_plan"
    assert archived.executed_plan == decision.executed_plan
    assert archived.timeout_seconds_override == 7200
    assert archived.summary.action_executed.max_candidates == 2
    stored = json.loads((run / "manifest.json").read_text())["planner"]
    assert set(stored) == {
        "planner_input",
        "planner_action",
        "executed_plan",
        "timeout_seconds_override",
    }
    assert stored["planner_input"] == dump(x)


def test_a_decision_into_a_manifest_mapping_keeps_its_other_keys(
    host: plugins.PluginHost, x: PlannerInput
) -> None:
    svc = service(host, scripted("spec2", choose(SPEC2)))
    result = svc.record({"workcell_id": "wc-9", "toolchain": "codex"}, svc.decide(x, SPEC2))
    out = result.manifest
    assert out is not None and result.problem is None
    assert out["workcell_id"] == "wc-9" and out["toolchain"] == "codex"
    assert out["planner"]["executed_plan"]["swarm_id_executed"] == "speculate_vote"


def test_the_onnx_bundle_decides_through_the_service(x: PlannerInput) -> None:
    config = parse_config(
        {
            "mode": "enforce",
            "model": {"type": "onnx", "path": str(BUNDLE)},
            "inference": {"confidence_threshold": 0.0},
            "safety": {"reductions_only": False},
        }
    )
    svc = PlannerService(config)
    decision = svc.decide(x)
    assert decision.reason == "model"
    assert decision.model is not None and decision.model.startswith("mlp@tiny-bundle:")
    assert decision.planner_action.input_hash == x.input_hash()


def test_a_tampered_bundle_is_unavailable_not_an_exception(x: PlannerInput, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(BUNDLE, copy)
    with (copy / "model.onnx").open("ab") as handle:
        handle.write(b"\0")
    config = parse_config({"mode": "enforce", "model": {"type": "onnx", "path": str(copy)}})
    decision = PlannerService(config).decide(x, SERIAL)
    assert decision.reason == "model_unavailable" and decision.executed == SERIAL
    assert decision.detail is not None and "model.onnx" in decision.detail


def test_decisions_are_counted_by_reason(host: plugins.PluginHost, x: PlannerInput) -> None:
    svc = service(host, scripted("unsure", choose(SPEC2, p=0.3)))
    for _ in range(3):
        svc.decide(x, SERIAL)
    svc.decide({"bad": 1}, SERIAL)
    assert svc.health()["reasons"] == {"invalid_input": 1, "low_confidence": 3}


def test_a_space_without_numeric_minutes_still_has_a_safe_action(
    host: plugins.PluginHost, x: PlannerInput
) -> None:
    space = ActionSpace(max_minutes_bins=("NA",))
    data = dump(x)
    data["action_space"] = dump(space)
    only_na = load(data, PlannerInput)
    decision = service(host, scripted("h", lambda y: HeuristicRules().predict(y))).decide(only_na)
    assert decision.branch in ("model", "fallback")
    assert decision.executed in space.valid_actions("code")


def _archive(tmp_path: Path, *, passed: bool = False) -> Path:
    """One archived run without a planner record (manifest and proof)."""
    run = tmp_path / "wc-1"
    run.mkdir()
    (run / "manifest.json").write_text(
        json.dumps({"workcell_id": "wc-1", "job_type": "code", "issue": {"id": "I-1"}})
    )
    (run / "proof.json").write_text(
        json.dumps(
            {
                "workcell_id": "wc-1",
                "status": "success" if passed else "failed",
                "metadata": {"started_at": "2025-03-01T10:00:00Z", "duration_ms": 1000},
                "verification": {"all_passed": passed, "gates": {}},
            }
        )
    )
    return run


def test_a_decision_on_an_invalid_input_is_recorded_without_it(
    host: plugins.PluginHost, tmp_path: Path
) -> None:
    run = _archive(tmp_path)
    svc = service(host, scripted("spec2", choose(SPEC2)))
    decision = svc.decide({"garbage": True}, SERIAL)
    result = svc.record(run / "manifest.json", decision)
    assert result.problem is None and result.section is not None
    assert "planner_input" not in result.section
    archived = read_run(run)
    assert archived.action_source == "executed_plan"
    assert archived.summary.action_executed.swarm_id == "serial_handoff"


def test_a_record_the_archive_reader_would_refuse_is_not_written(
    host: plugins.PluginHost, x: PlannerInput, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _archive(tmp_path)
    before = (run / "manifest.json").read_text()
    monkeypatch.setenv("SWARM_PLANNER_MAX_FILE_BYTES", "2000")  # the reader's limit
    svc = service(host, scripted("spec2", choose(SPEC2)))
    result = svc.record(run / "manifest.json", svc.decide(x, SPEC2))
    assert result.section is None and result.problem is not None
    assert "over the 2,000 the archive reader reads" in result.problem
    assert (run / "manifest.json").read_text() == before
    missing = svc.record(tmp_path / "nowhere" / "manifest.json", svc.decide(x, SPEC2))
    assert missing.section is None and missing.problem is not None


def test_the_caps_bound_a_fallback_in_enforce_mode_but_not_in_log(
    host: plugins.PluginHost, x: PlannerInput
) -> None:
    baseline = JointAction("speculate_vote", 3, NA, NA)
    caps = {"max_candidates_cap": 2, "max_minutes_cap": 30}
    unsure = scripted("unsure", choose(SPEC2, p=0.2))
    enforced = service(host, unsure, safety=caps).decide(x, baseline)
    assert enforced.reason == "low_confidence"
    assert enforced.executed == JointAction("speculate_vote", 2, 30, NA)
    assert set(enforced.clamps) == {"max_candidates_cap", "max_minutes_cap"}
    shadow = service(host, unsure, safety=caps, mode="log").decide(x, baseline)
    assert shadow.executed == baseline


def test_a_baseline_that_is_not_a_plain_action_is_replaced_by_the_fallbacks(
    host: plugins.PluginHost, x: PlannerInput
) -> None:
    svc = service(host, scripted("unsure", choose(SPEC2, p=0.2)))
    for odd in (
        JointAction("speculate_vote", 2, None, None),  # type: ignore[arg-type]
        JointAction("speculate_vote", [2], 60, NA),  # type: ignore[arg-type]
        JointAction("nosuch_swarm", 2, 60, NA),
        "speculate_vote|2|60|NA",
    ):
        decision = svc.decide(x, odd)  # type: ignore[arg-type]
        assert decision.planner_input is not None
        assert decision.executed in x.action_space.valid_actions(x.job_type)
    assert svc.decide({"bad": 1}, JointAction("s", 2, None, None)).executed.swarm_id == (  # type: ignore[arg-type]
        "serial_handoff"
    )


def test_a_reload_that_fails_keeps_the_model(x: PlannerInput, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(BUNDLE, copy)
    config = parse_config(
        {
            "mode": "enforce",
            "model": {"type": "onnx", "path": str(copy)},
            "inference": {"confidence_threshold": 0},
        }
    )
    svc = PlannerService(config)
    loaded = svc.model
    with (copy / "config.json").open("ab") as handle:
        handle.write(b" ")
    with pytest.raises(Exception, match="the current model stays"):
        svc.reload()
    assert svc.model is loaded and svc.decide(x).reason != "model_unavailable"


def test_a_decision_does_not_wait_for_a_reload(
    x: PlannerInput, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    config = parse_config(
        {
            "mode": "enforce",
            "model": {"type": "onnx", "path": str(BUNDLE)},
            "inference": {"confidence_threshold": 0},
        }
    )
    svc = PlannerService(config)
    build = svc._build
    started = threading.Event()

    def slow_build(path: Any) -> Any:
        started.set()
        time.sleep(1.5)
        return build(path)

    monkeypatch.setattr(svc, "_build", slow_build)
    thread = threading.Thread(target=svc.reload)
    thread.start()
    started.wait(5)
    t0 = time.perf_counter()
    decision = svc.decide(x)
    assert time.perf_counter() - t0 < 0.5 and decision.reason == "model"
    thread.join()


def test_a_policy_without_a_bundle_ignores_model_path(x: PlannerInput) -> None:
    config = parse_config(
        {"mode": "enforce", "model": {"type": "heuristic", "path": "/no/such/bundle"}}
    )
    decision = PlannerService(config).decide(x)
    assert decision.reason == "model" and decision.model == "heuristic"
