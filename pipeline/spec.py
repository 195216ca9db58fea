"""A pipeline file: stages a policy graduates through, each with its data and its criteria.

Checked as strictly as the kernel config: every record is an attrs class structured with
extra keys refused, every allowed value named, and every problem reported at once with the
line of the file it is on (``pipeline.stages[2].criteria[0].metric (line 31): ...``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import attrs
import yaml

from swarm_planner.core.documents import DocumentError, read_yaml
from swarm_planner.core.errors import ConfigError, ContractError
from swarm_planner.core.jsonconv import json_field, non_negative, positive, structure
from swarm_planner.sim.disturbances import CALM, Disturbances
from swarm_planner.sim.routing import Drift

OUTCOME_METRICS = ("pass_rate", "cost_per_pass", "time_per_pass_min", "regret", "utility")
"""Measured on an evaluation set (held-out issues run in the stage's world)."""
TRAINING_METRICS = ("ece", "exact_match")
"""From the bundle's own test split (``exact_match``: imitation bundles only)."""
Metric = Literal[
    "pass_rate", "cost_per_pass", "time_per_pass_min", "regret", "utility", "ece", "exact_match"
]


@attrs.frozen
class WorldSpec:
    """The embedded world a stage's data comes from (its issues, its truth, its weather)."""

    seed: int = 0
    issues: int = json_field(default=1500, validator=positive)
    """Dispatches simulated; the bench runs K candidates for each."""
    fab_world_share: float = json_field(default=0.12, validator=non_negative)
    """The task mix: the share of fab-world jobs."""
    drift: Drift = attrs.field(factory=Drift)
    """The kernel's configuration changes (timeouts, routes) and the weeks they start."""
    disturbances: Disturbances = CALM


@attrs.frozen
class DataSpec:
    """A stage's own data instead of the embedded world: a kernel root and/or a bench folder
    (ours or the field's); relative paths are relative to the pipeline file."""

    root: str | None = None
    """A kernel repo root: an imitation stage's dataset is built from its archives."""
    bench: str | None = None
    """A bench folder: an outcomes stage's training data, and any stage's evaluation set
    (evaluated offline: on the issues where the bench tried the action a policy chooses)."""


@attrs.frozen
class BenchSpec:
    k: int = json_field(default=4, validator=positive)
    sampler: str = "coverage"


@attrs.frozen
class Criterion:
    """``metric`` at least ``min`` or at most ``max`` (one of them). With ``vs: heuristic``
    the figure is the difference from the heuristic on the same issues: points of pass rate,
    percent of cost or time per pass, the plain difference otherwise."""

    metric: Metric
    min: float | None = None
    max: float | None = None
    vs: Literal["heuristic"] | None = None

    def __attrs_post_init__(self) -> None:
        if (self.min is None) == (self.max is None):
            raise ValueError(f"{self.metric}: give exactly one of min or max")
        if self.vs is not None and self.metric in TRAINING_METRICS:
            raise ValueError(f"{self.metric}: a training metric has no heuristic to compare with")

    @property
    def name(self) -> str:
        bound = f">= {self.min:g}" if self.min is not None else f"<= {self.max:g}"
        return f"{self.metric}{' vs heuristic' if self.vs else ''} {bound}"


@attrs.frozen
class Tolerance:
    """How much worse than the promoted bundle a candidate may be on an earlier stage's
    evaluation set before it counts as forgetting."""

    pass_rate_points: float = json_field(default=2.0, validator=non_negative)
    cost_per_pass_pct: float = json_field(default=10.0, validator=non_negative)


@attrs.frozen
class StageSpec:
    """One stage: its data, the policy it trains, what it starts from, and its criteria."""

    name: str
    kind: Literal["imitation", "outcomes"]
    """``imitation``: learn the executed plans of the world's archives (``mlp`` or ``joint``);
    ``outcomes``: learn from a best-of-K bench of them (``value``)."""
    policy: Literal["mlp", "joint", "transformer", "mlp-ar", "value"]
    world: WorldSpec | None = None
    """The embedded world (the default when neither ``world`` nor ``data`` is given)."""
    data: DataSpec | None = None
    init: Literal["none", "previous"] = "none"
    """``previous``: fine-tune the last promoted bundle (it must be of the same policy)."""
    replay: bool = False
    """An outcomes stage also trains on the train rows of every earlier outcomes stage
    (rehearsal: learn the new world without forgetting the old)."""
    bench: BenchSpec = attrs.field(factory=BenchSpec)
    train: dict[str, Any] = json_field(factory=dict)
    """Training settings (``max_epochs``, ``lr``, ``seed``, ...), checked against the
    policy's training config."""
    options: dict[str, Any] = json_field(factory=dict)
    """The policy's options when it decides (a value policy's ``cost_weight``): used when it is
    evaluated, and recorded in its lineage for the kernel config that deploys it."""
    calm_twin: bool = False
    """Also evaluate on the same held-out issues in the calm world (a disturbed stage is
    judged on disturbed and calm issues alike)."""
    criteria: tuple[Criterion, ...] = ()

    @property
    def simulated(self) -> bool:
        return self.data is None

    @property
    def the_world(self) -> WorldSpec:
        """The world of a simulated stage (its own, or the default world)."""
        return self.world or WorldSpec()

    @property
    def evaluated(self) -> bool:
        """Whether it has an evaluation set: a world, or a bench of its own."""
        return self.data is None or self.data.bench is not None


@attrs.frozen
class PipelineSpec:
    name: str
    stages: tuple[StageSpec, ...]
    tolerance: Tolerance = attrs.field(factory=Tolerance)
    registry: str | None = None
    """Where promoted bundles go (``--registry`` overrides; default: OUT/registry)."""


_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _check(spec: PipelineSpec) -> list[str]:
    problems = []
    if not spec.stages:
        problems.append("pipeline.stages: at least one stage")
    seen: set[str] = set()
    for i, stage in enumerate(spec.stages):
        where = f"pipeline.stages[{i}]"
        if not _NAME.match(stage.name):
            problems.append(f"{where}.name: {stage.name!r} is not a-z, 0-9, _ or - (40 at most)")
        if stage.name in seen:
            problems.append(f"{where}.name: {stage.name!r} is the name of an earlier stage")
        seen.add(stage.name)
        fits = {
            "imitation": ("mlp", "joint", "transformer", "mlp-ar"),
            "outcomes": ("value",),
        }[stage.kind]
        if stage.policy not in fits:
            article = "an" if stage.kind[0] in "aeiou" else "a"
            problems.append(
                f"{where}.policy: {article} {stage.kind} stage trains {' or '.join(fits)}, not "
                f"{stage.policy!r}"
            )
            continue  # its train settings are checked once the policy fits the kind
        if stage.replay and stage.kind != "outcomes":
            problems.append(f"{where}.replay: only an outcomes stage replays earlier data")
        if stage.init == "previous" and i == 0:
            problems.append(f"{where}.init: the first stage has no previous bundle")
        problems += _data_problems(stage, where)
        problems += _train_problems(stage, where)
        for j, c in enumerate(stage.criteria):
            if c.metric == "exact_match" and stage.kind != "imitation":
                problems.append(f"{where}.criteria[{j}].metric: exact_match is an imitation metric")
    return problems


def _data_problems(stage: StageSpec, where: str) -> list[str]:
    data = stage.data
    if data is None:
        return []
    problems = []
    if stage.world is not None:
        problems.append(f"{where}.data: give world or data, not both")
    if stage.kind == "imitation" and data.root is None:
        problems.append(f"{where}.data.root: an imitation stage learns from a kernel root")
    if stage.kind == "outcomes" and data.bench is None:
        problems.append(f"{where}.data.bench: an outcomes stage learns from a bench folder")
    if stage.calm_twin:
        problems.append(f"{where}.calm_twin: a calm twin needs the embedded world, not data")
    if data.bench is None and any(c.metric in OUTCOME_METRICS for c in stage.criteria):
        problems.append(
            f"{where}.criteria: outcome metrics need an evaluation set (data.bench, or a world)"
        )
    return problems


def _train_problems(stage: StageSpec, where: str) -> list[str]:
    """The ``train`` settings against the policy's own training config (strict)."""
    from swarm_planner.plugins.models.training import TrainConfig
    from swarm_planner.plugins.models.value_training import ValueConfig

    config_class: type[Any] = TrainConfig if stage.kind == "imitation" else ValueConfig
    data = dict(stage.train)
    if stage.kind == "imitation":
        if "model" in stage.train:
            return [f"{where}.train.model: set by the stage's policy, not here"]
        data["model"] = stage.policy
    try:
        structure(data, config_class, root=f"{where}.train")
    except ContractError as exc:
        return list(exc.problems)
    return []


def parse_pipeline(data: Any, *, source: str = "<pipeline>") -> PipelineSpec:
    if not isinstance(data, dict) or not isinstance(data.get("pipeline"), dict):
        raise ConfigError(source, ["pipeline: expected a `pipeline:` mapping at the top"])
    extra = sorted(set(data) - {"pipeline"})
    if extra:
        raise ConfigError(source, [f"{extra[0]}: unknown key; the file holds `pipeline:` only"])
    try:
        spec = structure(data["pipeline"], PipelineSpec, source=source, root="pipeline")
    except ContractError as exc:
        raise ConfigError(source, list(exc.problems)) from None
    problems = _check(spec)
    if problems:
        raise ConfigError(source, problems)
    return spec


def _resolved(spec: PipelineSpec, base: Path) -> PipelineSpec:
    """Data paths relative to the pipeline file's folder, made absolute."""

    def at(path: str | None) -> str | None:
        return None if path is None else str((base / path).resolve())

    stages = tuple(
        s
        if s.data is None
        else attrs.evolve(s, data=DataSpec(root=at(s.data.root), bench=at(s.data.bench)))
        for s in spec.stages
    )
    return attrs.evolve(spec, stages=stages)


def _lines(text: str) -> dict[str, int]:
    """Key path (``pipeline.stages[0].name``) → its 1-based line in the YAML text."""
    found: dict[str, int] = {}

    def walk(node: Any, path: str) -> None:
        found.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = f"{path}.{key.value}" if path else str(key.value)
                found[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}[{i}]")

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return found
    if root is not None:
        walk(root, "")
    return found


def _with_line(problem: str, lines: dict[str, int]) -> str:
    path, sep, rest = problem.partition(": ")
    if not sep:
        return problem
    probe = path
    while probe:
        if probe in lines:
            return f"{path} (line {lines[probe]}): {rest}"
        probe = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", probe)
    return problem


def load_pipeline(path: str | Path) -> PipelineSpec:
    """Read and check a pipeline file; a ConfigError names every problem with its line."""
    path = Path(path)
    try:
        data = read_yaml(path)
    except DocumentError as exc:
        raise ConfigError(str(path), [exc.problem]) from exc
    try:
        return _resolved(parse_pipeline(data, source=str(path)), path.parent)
    except ConfigError as exc:
        lines = _lines(path.read_text(encoding="utf-8"))
        raise ConfigError(str(path), [_with_line(p, lines) for p in exc.problems]) from None
