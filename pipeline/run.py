"""``planner pipeline run``: stages a policy graduates through, each promoted only if it earns it.

Every pipeline stage expands into steps of the resumable stage runner (``demo/stages.py``):
``<stage>.simulate`` (its world), ``<stage>.dataset`` (imitation), ``<stage>.bench`` and
``<stage>.outcomes`` (its evaluation set, and the training data of an outcomes stage),
``<stage>.train`` (from scratch, or from the last promoted bundle) and ``<stage>.graduate``.

Graduation: the candidate is evaluated online, in the stage's own world, on the held-out issues
of its outcome dataset (and, with ``calm_twin``, on the same issues in the calm world); each of
the stage's criteria must pass. It must also not regress on any earlier stage's evaluation set:
against the bundle promoted at the time, on the same issues, its pass rate may fall by at most
``tolerance.pass_rate_points`` and its cost per pass rise by at most
``tolerance.cost_per_pass_pct``. Only then is it added to the registry, with its lineage, and
promoted; otherwise the pipeline stops there, the last promoted bundle stays current, and the
result names every criterion that failed with its figures.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from swarm_planner.core.jsonconv import structure, unstructure
from swarm_planner.core.plugins import PluginHost, get_host
from swarm_planner.core.recording import write_json_atomic
from swarm_planner.core.registry import CriterionResult, Registry
from swarm_planner.demo.stages import Stage, StageProgress, StageRunner
from swarm_planner.pipeline.spec import (
    OUTCOME_METRICS,
    Criterion,
    PipelineSpec,
    StageSpec,
    WorldSpec,
)
from swarm_planner.sim.disturbances import CALM

SHARES = (0.55, 0.15, 0.30)
"""Of a stage's benched issues, in time order: train, validation, test (the evaluation set)."""
ROUNDS = 200
"""Bootstrap rounds of each evaluation (intervals are reported, criteria use the point)."""
PIPELINE_V1 = "swarm_planner.pipeline.v1"


@attrs.frozen
class EvalSet:
    """Held-out issues of a stage, run in a world (the stage's, or its calm twin), or, for a
    stage on its own data, read offline from its bench (``world`` None)."""

    name: str
    dataset: Path
    world: WorldSpec | None


@attrs.frozen
class StageOutcome:
    """What became of one pipeline stage."""

    stage: str
    promoted: str | None
    """The registry version it became (None: refused, or not reached)."""
    criteria: tuple[CriterionResult, ...]
    reached: bool = True

    @property
    def failed(self) -> tuple[CriterionResult, ...]:
        return tuple(c for c in self.criteria if not c.passed)


@attrs.frozen
class PipelineResult:
    name: str
    stages: tuple[StageOutcome, ...]
    current: str | None
    registry: str

    @property
    def ok(self) -> bool:
        return all(s.promoted is not None for s in self.stages)


def eval_sets(folder: Path, stage: StageSpec) -> list[EvalSet]:
    if not stage.evaluated:
        return []
    world = stage.the_world if stage.simulated else None
    own = EvalSet(stage.name, folder / stage.name / "outcomes", world)
    if not stage.calm_twin or world is None:
        return [own]
    calm = attrs.evolve(world, disturbances=CALM)
    return [own, EvalSet(f"{stage.name}/calm", own.dataset, calm)]


def evaluate_on(
    evalset: EvalSet, bundles: dict[str, tuple[str, dict[str, Any]]], host: PluginHost
) -> dict[str, dict[str, Any]]:
    """Each bundle (label → its path and policy options) and the heuristic on the evaluation
    set's issues, run in its world."""
    from swarm_planner.core.evaluation import PolicySpec
    from swarm_planner.core.outcome_eval import evaluate_outcomes

    world = evalset.world
    executor = (
        None
        if world is None
        else host.create(
            "executor", "sim", {"seed": world.seed, "disturbances": unstructure(world.disturbances)}
        )
    )
    specs = [PolicySpec("heuristic", {}, "heuristic")]
    specs += [PolicySpec(path, dict(options), label) for label, (path, options) in bundles.items()]
    result = evaluate_outcomes(
        evalset.dataset, specs, host, executor=executor, rounds=ROUNDS, seed=0
    )
    return result.policies


def figure(metric: str, vs: str | None, policies: dict[str, Any], label: str) -> float | None:
    """A criterion's figure for ``label``: the metric, or its difference from the heuristic."""
    raw = policies[label].get(metric, {}).get("value")
    if raw is None:
        return None
    mine = float(raw)
    if vs is None:
        return mine
    theirs = float(policies["heuristic"][metric]["value"])
    if metric == "pass_rate":
        return round(100.0 * (mine - theirs), 9)  # 9 places: no float dust at a threshold
    if metric in ("cost_per_pass", "time_per_pass_min"):
        return round(100.0 * (mine / theirs - 1.0), 9) if theirs else None
    return round(float(mine - theirs), 9)


def check(criterion: Criterion, value: float | None, evaluation: str) -> CriterionResult:
    if criterion.min is not None:
        op, threshold = ">=", criterion.min
        passed = value is not None and value >= threshold
    else:
        op, threshold = "<=", float(criterion.max)  # type: ignore[arg-type]
        passed = value is not None and value <= threshold
    return CriterionResult(
        criterion.name, criterion.metric, value, op, threshold, passed, evaluation
    )


def training_figure(bundle: Path, metric: str) -> float | None:
    from swarm_planner.core.bundle import read_bundle_json

    metrics = read_bundle_json(bundle, "metrics.json")
    if metric == "ece":
        return float(metrics["calibration"]["test_ece_after"])
    model = metrics.get("splits", {}).get("test", {}).get("model", {})
    return None if metric not in model else float(model[metric])


def regressions(
    candidate: dict[str, Any], promoted: dict[str, Any], spec: PipelineSpec, evaluation: str
) -> list[CriterionResult]:
    """Not worse than the promoted bundle beyond the tolerance, on the same issues."""
    tol = spec.tolerance
    # Rounded to 9 places: 0.58 - 0.60 is -2 points, not -2.0000000000000018.
    points = round(100.0 * (candidate["pass_rate"]["value"] - promoted["pass_rate"]["value"]), 9)
    base_cost = promoted["cost_per_pass"]["value"]
    pct = (
        round(100.0 * (candidate["cost_per_pass"]["value"] / base_cost - 1.0), 9)
        if base_cost
        else 0.0
    )
    return [
        CriterionResult(
            "no regression: pass rate vs promoted (points)",
            "pass_rate",
            points,
            ">=",
            -tol.pass_rate_points,
            points >= -tol.pass_rate_points,
            evaluation,
        ),
        CriterionResult(
            "no regression: cost per pass vs promoted (%)",
            "cost_per_pass",
            pct,
            "<=",
            tol.cost_per_pass_pct,
            pct <= tol.cost_per_pass_pct,
            evaluation,
        ),
    ]


def stage_steps(
    spec: PipelineSpec,
    index: int,
    folder: Path,
    registry: Registry,
    host: PluginHost,
    runner: StageRunner,
) -> list[Stage]:
    """The runner's steps of pipeline stage ``index`` (``runner``: whose records the graduate
    step reads)."""
    stage = spec.stages[index]
    base = folder / stage.name
    world = stage.the_world
    data = stage.data
    name = stage.name
    previous = f"{spec.stages[index - 1].name}.graduate" if index else None
    earlier_outcomes = [s for s in spec.stages[:index] if s.kind == "outcomes"]

    def simulate() -> dict[str, Any]:
        from swarm_planner.sim.generate import SimConfig
        from swarm_planner.sim.generate import simulate as write_world

        config = SimConfig(
            runs=world.issues,
            seed=world.seed,
            fab_world_share=world.fab_world_share,
            drift=world.drift,
            disturbances=world.disturbances,
        )
        summary = write_world(base / "root", config, replace=True)
        # The environment the data came from, beside it: a drifted stage's differs visibly.
        write_json_atomic(base / "world.json", unstructure(world))
        return {"runs": summary.runs, "issues": summary.issues, "statuses": summary.statuses}

    def dataset() -> dict[str, Any]:
        from swarm_planner.core.dataset import build_dataset, check_dataset

        root = base / "root" if data is None else Path(str(data.root))
        result = build_dataset(root, base / "dataset")
        failed = [g for g in check_dataset(base / "dataset") if not g.passed]
        if failed:
            raise ValueError(
                "dataset gates failed: " + "; ".join(f"{g.name}: {g.detail}" for g in failed)
            )
        return {"dataset_hash": result.meta["dataset_hash"], "rows": result.meta["example_count"]}

    def bench() -> dict[str, Any]:
        from swarm_planner.core.bench.runner import run_bench
        from swarm_planner.core.bench.setup import BenchRequest, prepare_bench
        from swarm_planner.core.config import PlannerConfig

        request = BenchRequest(
            out=base / "bench",
            root=base / "root",
            k=stage.bench.k,
            sampler=stage.bench.sampler,
            executor="sim",
            options={
                "executor": {"seed": world.seed, "disturbances": unstructure(world.disturbances)}
            },
            jobs=2,
        )
        cases, settings, plugins, names, jobs = prepare_bench(request, PlannerConfig(), host)
        summary, _ = run_bench(base / "bench", cases, settings, plugins, jobs=jobs, names=names)
        return {
            "cases": summary.cases,
            "cases_passed": summary.cases_passed,
            "config_hash": summary.config_hash,
        }

    def outcomes() -> dict[str, Any]:
        from swarm_planner.core.outcomes import build_outcome_dataset

        bench = base / "bench" if data is None else Path(str(data.bench))
        meta = build_outcome_dataset(bench, base / "outcomes", shares=SHARES)
        return {
            "dataset_hash": meta["dataset_hash"],
            "rows": meta["example_count"],
            "bench_hash": (meta.get("bench") or {}).get("config_hash"),
        }

    def starting_point() -> Path | None:
        if stage.init != "previous":
            return None
        version = registry.current_version()
        if version is None:
            raise ValueError("init: previous, but no bundle has been promoted yet")
        lineage = registry.lineage(version)
        if lineage.model_type != stage.policy:
            raise ValueError(
                f"init: previous is {version}, a {lineage.model_type} bundle; a {stage.policy} "
                "stage cannot start from it"
            )
        return registry.path_of(version)

    def train() -> dict[str, Any]:
        init = starting_point()
        out = base / "bundle"
        if stage.kind == "imitation":
            from swarm_planner.plugins.models.export import export_bundle
            from swarm_planner.plugins.models.training import TrainConfig
            from swarm_planner.plugins.models.training import train as train_imitation

            checked = structure({"model": stage.policy, **stage.train}, TrainConfig)
            given = {key: getattr(checked, key) for key in stage.train}
            imitation = TrainConfig.for_model(stage.policy, **given)
            result = train_imitation(base / "dataset", out, imitation, init=init)
            export_bundle(out, base / "dataset")
            metrics = result.metrics
        else:
            from swarm_planner.plugins.models.value_training import ValueConfig, train_value

            value = structure(dict(stage.train), ValueConfig)
            replay = (
                [folder / s.name / "outcomes" for s in earlier_outcomes] if stage.replay else []
            )
            metrics = train_value(base / "outcomes", out, value, init=init, replay=replay).metrics
        return {
            "init_from": None if init is None else str(init),
            "test_ece": metrics["calibration"]["test_ece_after"],
        }

    def graduate() -> dict[str, Any]:
        bundle = base / "bundle"
        results: list[CriterionResult] = []
        figures: dict[str, Any] = {}
        for evalset in eval_sets(folder, stage):
            policies = evaluate_on(evalset, {"candidate": (str(bundle), stage.options)}, host)
            figures[evalset.name] = policies
            for c in stage.criteria:
                if c.metric in OUTCOME_METRICS:
                    value = figure(c.metric, c.vs, policies, "candidate")
                    results.append(check(c, value, evalset.name))
        for c in stage.criteria:
            if c.metric not in OUTCOME_METRICS:
                results.append(check(c, training_figure(bundle, c.metric), "its test split"))
        current = registry.current_version()
        if current is not None:
            promoted = (
                str(registry.path_of(current)),
                dict(registry.lineage(current).notes.get("policy_options", {})),
            )
            for earlier in spec.stages[:index]:
                for evalset in eval_sets(folder, earlier):
                    policies = evaluate_on(
                        evalset,
                        {"candidate": (str(bundle), stage.options), "promoted": promoted},
                        host,
                    )
                    figures[f"{evalset.name} (vs {current})"] = policies
                    results += regressions(
                        policies["candidate"], policies["promoted"], spec, evalset.name
                    )
        passed = all(r.passed for r in results)
        version = None
        if passed:
            outcomes_record = runner.records.get(f"{name}.outcomes")
            bench_hash = (
                None if outcomes_record is None else outcomes_record.result.get("bench_hash")
            )
            lineage = registry.add(
                bundle,
                {
                    "parent": current,
                    "bench_hash": bench_hash,
                    "stage": name,
                    "pipeline": spec.name,
                    "criteria": [unstructure(r) for r in results],
                    "notes": {
                        "environment": unstructure(world if data is None else data),
                        "kind": stage.kind,
                        "policy_options": dict(stage.options),
                    },
                },
            )
            version = registry.promote(lineage.version).version
        return {
            "promoted": version,
            "criteria": [unstructure(r) for r in results],
            "figures": _point_figures(figures),
        }

    steps: list[Stage] = []
    fingerprint: dict[str, Any] = {}
    source: tuple[str, ...] = ()
    if data is None:
        steps.append(
            Stage(
                f"{name}.simulate", {"world": unstructure(world)}, (), simulate, (f"{name}/root",)
            )
        )
        source = (f"{name}.simulate",)
    else:
        fingerprint = {"data": unstructure(data), "content": data_fingerprint(data)}
    if stage.kind == "imitation":
        steps.append(Stage(f"{name}.dataset", fingerprint, source, dataset, (f"{name}/dataset",)))
    if data is None:
        steps.append(
            Stage(
                f"{name}.bench",
                {"bench": unstructure(stage.bench)},
                source,
                bench,
                (f"{name}/bench",),
            )
        )
        source = (f"{name}.bench",)
    if stage.evaluated:
        steps.append(
            Stage(
                f"{name}.outcomes",
                {"shares": list(SHARES), **fingerprint},
                source,
                outcomes,
                (f"{name}/outcomes",),
            )
        )
    learned = f"{name}.dataset" if stage.kind == "imitation" else f"{name}.outcomes"
    train_after = (learned,) + ((previous,) if previous and stage.init == "previous" else ())
    if stage.replay:
        train_after += tuple(f"{s.name}.outcomes" for s in earlier_outcomes)
    steps.append(
        Stage(
            f"{name}.train",
            {
                "kind": stage.kind,
                "policy": stage.policy,
                "init": stage.init,
                "replay": stage.replay,
                "train": stage.train,
            },
            train_after,
            train,
            (f"{name}/bundle",),
        )
    )
    earlier_sets = tuple(f"{s.name}.outcomes" for s in spec.stages[:index] if s.evaluated)
    own_set = (f"{name}.outcomes",) if stage.evaluated else ()
    steps.append(
        Stage(
            f"{name}.graduate",
            {
                "criteria": [unstructure(c) for c in stage.criteria],
                "tolerance": unstructure(spec.tolerance),
                "calm_twin": stage.calm_twin,
                "options": stage.options,
                "registry": str(registry.folder.resolve()),
            },
            (f"{name}.train", *own_set, *earlier_sets) + ((previous,) if previous else ()),
            graduate,
        )
    )
    return steps


def data_fingerprint(data: Any) -> str:
    """What a stage's own data folders hold, cheaply (every file's path, size and mtime): a
    changed root or bench re-runs the steps that read it, an untouched one does not."""
    import hashlib

    digest = hashlib.sha256()
    for folder in (data.root, data.bench):
        if folder is None:
            continue
        top = Path(folder)
        files = sorted(p for p in top.rglob("*") if p.is_file()) if top.is_dir() else []
        for path in files:
            stat = path.stat()
            line = f"{path.relative_to(top)}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
            digest.update(line.encode())
    return digest.hexdigest()


def _point_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """The point estimates only (the stage record stays small; intervals are in the logs)."""
    keep = ("pass_rate", "cost_per_pass", "regret")
    return {
        where: {label: {k: m[k]["value"] for k in keep if k in m} for label, m in policies.items()}
        for where, policies in figures.items()
    }


def run_pipeline(
    spec: PipelineSpec,
    folder: Path,
    *,
    registry: Path | None = None,
    host: PluginHost | None = None,
    progress: StageProgress | None = None,
    stage_done: Callable[[StageOutcome], None] | None = None,
) -> PipelineResult:
    """Run the stages in order, stopping at the first that is not promoted."""
    host = host or get_host()
    folder.mkdir(parents=True, exist_ok=True)
    reg = Registry(registry or (Path(spec.registry) if spec.registry else folder / "registry"))
    runner = StageRunner(folder, progress)
    outcomes: list[StageOutcome] = []
    stopped = False
    for index, stage in enumerate(spec.stages):
        if stopped:
            outcomes.append(StageOutcome(stage.name, None, (), reached=False))
            continue
        _forget_lost_promotion(folder, stage.name, reg)
        runner.run_all(stage_steps(spec, index, folder, reg, host, runner))
        result = runner.records[f"{stage.name}.graduate"].result
        criteria = tuple(structure(c, CriterionResult) for c in result["criteria"])
        outcome = StageOutcome(stage.name, result["promoted"], criteria)
        outcomes.append(outcome)
        if stage_done is not None:
            stage_done(outcome)
        stopped = outcome.promoted is None
    summary = PipelineResult(spec.name, tuple(outcomes), reg.current_version(), str(reg.folder))
    write_json_atomic(
        folder / "pipeline.json", {"schema_version": PIPELINE_V1, **unstructure(summary)}
    )
    return summary


def _forget_lost_promotion(folder: Path, stage: str, registry: Registry) -> None:
    """A graduate record naming a version the registry no longer holds (the registry was
    moved or wiped) is stale: the stage graduates again rather than trusting it."""
    import json

    path = folder / "stages" / f"{stage}.graduate.json"
    if not path.is_file():
        return
    try:
        promoted = json.loads(path.read_text(encoding="utf-8")).get("result", {}).get("promoted")
    except ValueError:
        return
    if promoted is not None and promoted not in registry.versions():
        path.unlink()
