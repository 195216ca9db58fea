"""The ``planner:`` section of a kernel's YAML config, as strict attrs records.

Absent keys take the defaults below; an unknown key, a bad value or an unknown plugin name is a
:class:`ConfigError` that names the key path (``planner.model.type``) and lists what is allowed,
so a typo never silently becomes a default. Plugin options are checked against the options class
the plugin registered, so ``planner.model.options.rules.hihg`` fails here, not at decision time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import yaml

from swarm_planner.core.action_space import ActionSpace
from swarm_planner.core.bench.records import BudgetMode, OnBudget
from swarm_planner.core.documents import DocumentError, read_yaml
from swarm_planner.core.errors import ConfigError, ContractError, PluginError
from swarm_planner.core.history import DEFAULT_WINDOW, SCORERS
from swarm_planner.core.jsonconv import (
    RepairLog,
    json_field,
    non_negative,
    positive,
    structure,
    structure_repairing,
    unit_interval,
    unstructure,
    validator,
)
from swarm_planner.core.plugins import PluginHost, get_host

Mode = Literal["off", "log", "enforce"]


def _retry_schedule(value: tuple[float, ...]) -> str | None:
    if not value or any(not (math.isfinite(v) and 0 < v <= 86_400) for v in value):
        return f"{list(value)!r}: expected one or more delays in seconds, each in (0, 86400]"
    return None


def _swarm_change(value: tuple[str, ...]) -> str | None:
    bad = [v for v in value if v.count("->") != 1 or not all(v.split("->"))]
    return f"{bad[0]!r} is not FROM->TO (two swarm ids)" if bad else None


@attrs.frozen
class ModelConfig:
    """Which policy decides, where its bundle lives, and which fallback takes over."""

    path: str | None = None
    type: str = "heuristic"
    fallback: str = "heuristic"
    options: dict[str, Any] = json_field(factory=dict)
    fallback_options: dict[str, Any] = json_field(factory=dict)
    retry_seconds: tuple[float, ...] = json_field(
        default=(5.0, 30.0, 120.0, 600.0), validator=validator(_retry_schedule)
    )
    """After a failed load, wait these seconds before each retry (the last repeats): a bundle
    that is being copied into place is picked up once it is whole, never cached as broken."""


@attrs.frozen
class InferenceConfig:
    confidence_threshold: float = json_field(default=0.6, validator=unit_interval)
    use_calibration: bool = True
    timeout_ms: int = json_field(default=100, validator=positive)


@attrs.frozen
class SafetyConfig:
    """Hard caps on every plan the service executes in ``enforce`` mode, a fallback's too
    (``off`` and ``log`` never change what the kernel runs); ``reductions_only`` never exceeds
    the baseline."""

    max_candidates_cap: int = json_field(default=5, validator=positive)
    max_minutes_cap: int = json_field(default=120, validator=positive)
    max_iterations_cap: int = json_field(default=10, validator=positive)
    reductions_only: bool = True
    swarm_changes: tuple[str, ...] = json_field(
        default=("speculate_vote->serial_handoff",), validator=validator(_swarm_change)
    )
    """With ``reductions_only``, the topology changes a decision may make (``FROM->TO``): by
    default speculation may become a single serial agent, never the other way."""

    def allows_change(self, baseline_swarm: str, swarm: str) -> bool:
        return baseline_swarm == swarm or f"{baseline_swarm}->{swarm}" in self.swarm_changes


@attrs.frozen
class ExplorationConfig:
    """Safe exploration: with probability ``epsilon`` the executed action is drawn uniformly
    from the actions the gate allows, seeded by the input's hash (and ``seed``), so that the
    same input always explores the same way and every decision records its propensity."""

    epsilon: float = json_field(default=0.0, validator=unit_interval)
    seed: int = json_field(default=0, validator=non_negative)


@attrs.frozen
class HistoryConfig:
    """Decision-time retrieval (``PlannerService.decide_issue``): the dataset builder's rule,
    with these settings (use those of the dataset the bundle was trained on)."""

    n_similar: int = json_field(default=8, validator=non_negative)
    scorer: str = json_field(
        default="signals",
        validator=validator(
            lambda v: None if v in SCORERS else f"{v!r} is not one of {'|'.join(SCORERS)}"
        ),
    )
    window: int | None = json_field(default=DEFAULT_WINDOW, validator=positive)


@attrs.frozen
class FlagsConfig:
    force_swarm: str | None = None
    enabled_job_types: tuple[str, ...] = ("code", "fab-world")


@attrs.frozen
class RayConfig:
    """How ``planner bench --backend ray`` asks Ray for each candidate (none of this changes an
    outcome, so none of it is in the bench's settings: a bench resumes across backends)."""

    address: str | None = json_field(optional=True)
    """``auto`` (a running cluster), ``HOST:PORT``, or none: a local Ray started for the bench."""
    num_cpus: float = json_field(default=1.0, validator=non_negative)
    """CPUs one candidate task asks for."""
    resources: dict[str, float] = json_field(factory=dict)
    """Custom resources one candidate asks for, e.g. ``{agent_slot: 1}``."""
    retries: int = json_field(default=3, validator=non_negative)
    """Re-runs of a candidate whose worker process or node was lost (each attempt logged)."""


@attrs.frozen
class BenchConfig:
    """The best-of-K outcome bench: how candidates are drawn, run and judged."""

    k: int = json_field(default=4, validator=positive)
    sampler: str = "deterministic"
    sampler_options: dict[str, Any] = json_field(factory=dict)
    selector: str = "lexicographic"
    selector_options: dict[str, Any] = json_field(factory=dict)
    executor: str | None = None
    executor_options: dict[str, Any] = json_field(factory=dict)
    jobs: int = json_field(default=1, validator=positive)
    """Candidates run at once (threads; an executor that runs commands scales with cores)."""
    budget_minutes: float | None = json_field(optional=True, validator=positive)
    """Whole-bench budget in candidate-minutes (every parallel agent's minutes summed)."""
    issue_budget_minutes: float | None = json_field(optional=True, validator=positive)
    """Per-issue budget in candidate-minutes."""
    timeout_minutes: int = json_field(default=120, validator=positive)
    """The timeout of a candidate whose action sets no minutes cap (``NA``)."""
    uncapped_candidates: int = json_field(default=3, validator=positive)
    """Parallel agents a speculate action with no candidate cap may run, for budget reserves."""
    keep_failed_winners: bool = False
    """Name a winner even when no candidate passed (the field's bench always does)."""
    budget_mode: BudgetMode = "reserve"
    """How the whole-bench budget admits candidates: ``reserve`` their worst case (never
    exceeded) or ``spend`` (start while the minutes spent are below it; fuller clusters)."""
    on_budget: OnBudget = "finish"
    """``spend`` mode: running candidates finish, or are killed, once the budget is reached."""
    ray: RayConfig = attrs.field(factory=RayConfig)


@attrs.frozen
class PlannerConfig:
    """The whole ``planner:`` section; every part optional."""

    mode: Mode = "off"
    model: ModelConfig = attrs.field(factory=ModelConfig)
    inference: InferenceConfig = attrs.field(factory=InferenceConfig)
    safety: SafetyConfig = attrs.field(factory=SafetyConfig)
    flags: FlagsConfig = attrs.field(factory=FlagsConfig)
    exploration: ExplorationConfig = attrs.field(factory=ExplorationConfig)
    history: HistoryConfig = attrs.field(factory=HistoryConfig)
    bench: BenchConfig = attrs.field(factory=BenchConfig)
    action_space: ActionSpace = attrs.field(factory=ActionSpace)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = unstructure(self)
        return data


def takes_path(config: PlannerConfig, host: PluginHost | None = None) -> bool:
    """Whether the configured policy is served from a bundle (its options have a ``path``);
    ``model.path`` means nothing to one that is not (the ``heuristic`` rule table)."""
    entry = (host or get_host()).entry("policy", config.model.type)
    return entry.options is not None and "path" in attrs.fields_dict(entry.options)


def policy_options(config: PlannerConfig, host: PluginHost | None = None) -> dict[str, Any]:
    """``model.options``, with ``path`` taken from ``model.path`` when the policy has a ``path``
    option and the options do not set it (so ``{path: DIR, type: onnx}`` is all a kernel writes)."""
    host = host or get_host()
    options = dict(config.model.options)
    if takes_path(config, host) and "path" not in options and config.model.path is not None:
        options["path"] = config.model.path
    return options


def _plugin_choices(
    config: PlannerConfig, host: PluginHost
) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    """(path, kind, name, options) of every plugin the config picks."""
    m, b = config.model, config.bench
    try:
        model_options = policy_options(config, host)
    except PluginError:
        model_options = m.options  # the unknown name is reported below
    return [
        ("planner.model.type", "policy", m.type, model_options),
        ("planner.model.fallback", "fallback", m.fallback, m.fallback_options),
        ("planner.bench.sampler", "sampler", b.sampler, b.sampler_options),
        ("planner.bench.selector", "selector", b.selector, b.selector_options),
        ("planner.bench.executor", "executor", b.executor, b.executor_options),
    ]


def _options_path(path: str) -> str:
    head, _, last = path.rpartition(".")
    return f"{head}.options" if last == "type" else f"{path}_options"


def validate(config: PlannerConfig, *, source: str, host: PluginHost | None = None) -> None:
    """Check plugin names, plugin options and cross-field rules; one error lists every problem."""
    host = host or get_host()
    problems: list[str] = []
    for path, kind, name, options in _plugin_choices(config, host):
        if name is None:
            if options:
                problems.append(f"{_options_path(path)}: set, but no {kind} is chosen")
            continue
        try:
            parsed = host.parse_options(kind, name, options, path=_options_path(path))
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        except PluginError as exc:
            problems.append(f"{path}: {exc}")
            continue
        # Options that name actions (a rule table) are checked against the deployment's space
        # here, so that they fail when the config is read, not at the first decision.
        check = getattr(parsed, "problems_in", None)
        if callable(check):
            problems.extend(f"{_options_path(path)}.{p}" for p in check(config.action_space))
    swarms = config.action_space.swarm_ids
    for change in config.safety.swarm_changes:
        unknown = [part for part in change.split("->") if part not in swarms]
        if unknown:
            problems.append(
                f"planner.safety.swarm_changes: {change!r}: {unknown[0]!r} is not one of "
                f"{'|'.join(swarms)}"
            )
    if not config.inference.use_calibration:
        problems.append(
            "planner.inference.use_calibration: false is not supported: bundles serve "
            "calibrated probabilities only (the temperature is inside the exported graph); "
            "lower confidence_threshold instead"
        )
    if config.flags.force_swarm is not None and config.flags.force_swarm not in swarms:
        problems.append(
            f"planner.flags.force_swarm: {config.flags.force_swarm!r} is not one of "
            f"{'|'.join(swarms)} (or null)"
        )
    if problems:
        raise ConfigError(source, problems)


def parse_config(
    data: Any, *, source: str = "<config>", host: PluginHost | None = None
) -> PlannerConfig:
    """Structure and validate the ``planner:`` mapping (None or absent → all defaults)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(source, [f"planner: expected a mapping, got {type(data).__name__}"])
    try:
        config = structure(dict(data), PlannerConfig, source=source, root="planner")
    except ContractError as exc:
        # Report every problem at once: the rest of the section is still checked (plugin
        # names, their options) on what remains once the bad values are set aside.
        problems = list(exc.problems)
        dropped = RepairLog()
        more: list[str] = []
        try:
            rest = structure_repairing(
                dict(data), PlannerConfig, source=source, repairs=dropped, root="planner"
            )
            validate(rest, source=source, host=host)
        except ContractError as later:
            more = later.problems
        for line in [*(x for shown in dropped.examples.values() for x in shown), *more]:
            if line not in problems:
                problems.append(line)
        raise ConfigError(source, problems) from exc
    validate(config, source=source, host=host)
    return config


def load_config(path: str | Path, *, host: PluginHost | None = None) -> PlannerConfig:
    """Read the ``planner:`` section of a kernel YAML config file."""
    path = Path(path)
    source = str(path)
    try:
        document = read_yaml(path)
    except DocumentError as exc:
        raise ConfigError(source, [exc.problem]) from exc
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise ConfigError(source, [f"$: expected a mapping, got {type(document).__name__}"])
    return parse_config(document.get("planner"), source=source, host=host)


def dump_config_yaml(config: PlannerConfig) -> str:
    """The effective config as the YAML a kernel config would hold."""
    return yaml.safe_dump({"planner": config.to_json()}, sort_keys=False, allow_unicode=True)
