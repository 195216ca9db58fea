"""The planner: section of a kernel config: defaults, strictness, plugin names and options."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarm_planner.core.config import (
    PlannerConfig,
    dump_config_yaml,
    load_config,
    parse_config,
    policy_options,
)
from swarm_planner.core.errors import ConfigError
from swarm_planner.core.plugins import PluginHost

CONTRACT_EXAMPLE = """\
planner:
  mode: enforce            # off | log | enforce
  model: {path: .cyntra/models/planner/v1, type: onnx, fallback: heuristic}
  inference: {confidence_threshold: 0.6, use_calibration: true, timeout_ms: 100}
  safety: {max_candidates_cap: 5, max_minutes_cap: 120, max_iterations_cap: 10, reductions_only: true}
  flags: {force_swarm: null, enabled_job_types: [code, fab-world]}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kernel.yaml"
    path.write_text(text)
    return path


def _problems(tmp_path: Path, text: str, host: PluginHost) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text), host=host)
    assert str(info.value).startswith(str(tmp_path / "kernel.yaml"))
    return info.value.problems


def test_a_config_without_a_planner_section_gets_the_defaults(
    tmp_path: Path, host: PluginHost
) -> None:
    config = load_config(_write(tmp_path, "kernel: {workers: 4}\n"), host=host)
    assert config == PlannerConfig()
    assert (config.mode, config.model.type, config.model.fallback) == (
        "off",
        "heuristic",
        "heuristic",
    )
    assert config.inference.confidence_threshold == 0.6
    assert config.safety.reductions_only is True


def test_the_contract_example_parses_and_the_model_path_reaches_the_policy(
    tmp_path: Path, host: PluginHost
) -> None:
    config = load_config(_write(tmp_path, CONTRACT_EXAMPLE), host=host)
    assert config.mode == "enforce"
    assert config.model.path == ".cyntra/models/planner/v1"
    assert config.flags.enabled_job_types == ("code", "fab-world")
    assert policy_options(config, host) == {"path": ".cyntra/models/planner/v1"}


def test_an_unregistered_policy_name_lists_the_registered_ones(
    tmp_path: Path, host: PluginHost
) -> None:
    (problem,) = _problems(tmp_path, CONTRACT_EXAMPLE.replace("type: onnx", "type: onxx"), host)
    assert problem.startswith(
        "planner.model.type: no policy named 'onxx'; registered policies: heuristic, joint, mlp, mlp-ar, onnx, table, transformer, value."
    )


def test_config_show_round_trips_through_yaml(tmp_path: Path, host: PluginHost) -> None:
    config = parse_config({"mode": "log", "bench": {"k": 8, "sampler": "random"}}, host=host)
    again = load_config(_write(tmp_path, dump_config_yaml(config)), host=host)
    assert again == config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("planner: {mode: on}\n", ["planner.mode: 'on' is not one of off|log|enforce"]),
        ("planner: {mode: shadow}\n", ["planner.mode: 'shadow' is not one of off|log|enforce"]),
        (
            "planner: {infrence: {}}\n",
            [
                "planner.infrence: unknown key (did you mean 'inference'?); allowed keys: action_space, bench, "
                "exploration, flags, history, inference, mode, model, safety"
            ],
        ),
        (
            "planner: {inference: {confidence_threshold: 1.5}}\n",
            ["planner.inference.confidence_threshold: 1.5 is not within [0, 1]"],
        ),
        (
            "planner: {safety: {max_minutes_cap: 0}}\n",
            ["planner.safety.max_minutes_cap: 0 is below 1"],
        ),
        (
            "planner: {inference: {timeout_ms: '100'}}\n",
            ["planner.inference.timeout_ms: expected an integer, got '100' (str)"],
        ),
        (
            "planner: {model: {fallback: heuristik}}\n",
            [
                "planner.model.fallback: no fallback named 'heuristik'; registered fallbacks: heuristic. "
                "Did you mean 'heuristic'? If it comes from a separate package, that package may not be "
                "installed or may be excluded by SWARM_PLANNER_LOAD_PLUGINS (see `planner list-plugins`)."
            ],
        ),
        (
            "planner: {flags: {force_swarm: solo}}\n",
            [
                "planner.flags.force_swarm: 'solo' is not one of serial_handoff|speculate_vote (or null)"
            ],
        ),
        (
            "planner: {bench: {selector: lexicographic, selector_options: {x: 1}}}\n",
            ["planner.bench.selector_options: selector 'lexicographic' takes no options"],
        ),
        (
            "planner: {bench: {sampler_options: {seed: x}}}\n",
            ["planner.bench.sampler_options.seed: expected an integer, got 'x' (str)"],
        ),
        (
            "planner: {bench: {executor_options: {a: 1}}}\n",
            ["planner.bench.executor_options: set, but no executor is chosen"],
        ),
        (
            "planner: {model: {options: {rules: {severe: {swarm_id: speculate_vote}}}}}\n",
            [
                "planner.model.options.rules: unknown risk level(s) ['severe']; allowed: low|medium|high|critical"
            ],
        ),
        ("planner: [1, 2]\n", ["planner: expected a mapping, got list"]),
        ("- a\n- b\n", ["$: expected a mapping, got list"]),
        ("planner: {mode: [\n", None),
    ],
)
def test_bad_configs_name_the_key_path_and_what_is_allowed(
    tmp_path: Path, host: PluginHost, text: str, expected: list[str] | None
) -> None:
    problems = _problems(tmp_path, text, host)
    if expected is None:
        assert len(problems) == 1 and problems[0].startswith("line 2, column 1: not valid YAML")
    else:
        assert problems == expected


def test_several_problems_are_reported_together(tmp_path: Path, host: PluginHost) -> None:
    problems = _problems(
        tmp_path,
        "planner: {model: {type: nope, fallback: nada}, flags: {force_swarm: solo}}\n",
        host,
    )
    assert [p.split(":")[0] for p in problems] == [
        "planner.model.type",
        "planner.model.fallback",
        "planner.flags.force_swarm",
    ]


def test_a_missing_file_is_a_config_error(tmp_path: Path, host: PluginHost) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.yaml", host=host)


def test_a_deployment_can_set_its_own_bins(tmp_path: Path, host: PluginHost) -> None:
    config = load_config(
        _write(tmp_path, "planner:\n  action_space: {max_minutes_bins: [10, 20, NA]}\n"), host=host
    )
    assert config.action_space.max_minutes_bins == (10, 20, "NA")
    assert len(config.action_space.valid_actions("code")) == 5 * 3
