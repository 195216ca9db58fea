"""``planner demo``: the whole loop on the embedded world, stage by stage.

simulate archives → build and check the imitation dataset → train ``mlp`` and ``joint``
(calibrated, exported to ONNX and validated) → bench K candidates per archived run → outcome
dataset → ``value``, ``table`` and a winner fine-tune of the mlp → evaluate every policy against
the heuristic (imitation metrics on the dataset's test split; outcomes online, in the world, on
the held-out issues; decisions through the decision service) → the kernel loop in ``log`` then
``enforce`` mode with the value bundle → the loop's archives rebuilt into the next dataset.

Every stage goes through the same library code as its command; :mod:`.stages` reuses a stage
whose inputs did not change. Training needs the ``train`` extra (torch).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from swarm_planner.core.config import PlannerConfig, parse_config
from swarm_planner.core.plugins import PluginHost, get_host
from swarm_planner.core.recording import write_json_atomic
from swarm_planner.demo.stages import Stage, StageProgress, StageRecord, StageRunner

DEMO_V1 = "swarm_planner.demo.v1"
SUMMARY_FILE = "demo.json"


@attrs.frozen
class DemoSettings:
    """What the demo is run with (all of it goes into the stages' input hashes)."""

    issues: int = 3000
    """Dispatches simulated (and archived runs benched)."""
    seed: int = 0
    k: int = 4
    cost_weight: float = 0.12
    """The value policy's cost weight when deployed (the frontier sweeps the others)."""
    loop_issues: int = 600
    """Dispatches per phase of the kernel loop."""


OUTCOME_POLICIES = ("table", "value")
"""Their confidence is a softmax over expected utilities, not the chance of matching a label, so
they are deployed with ``confidence_threshold: 0`` (the gate's other checks still apply)."""


def _policies(folder: Path, cost_weight: float) -> dict[str, dict[str, Any]]:
    """The demo's policies: label → ``planner.model`` of a config serving it."""
    return {
        "heuristic": {"type": "heuristic"},
        "mlp": {"type": "onnx", "path": str(folder / "mlp")},
        "joint": {"type": "onnx", "path": str(folder / "joint")},
        "mlp+winners": {"type": "onnx", "path": str(folder / "mlp-winners")},
        "table": {"type": "table", "path": str(folder / "table")},
        "value": {
            "type": "value",
            "path": str(folder / "value"),
            "options": {"cost_weight": cost_weight},
        },
    }


def service_config(label: str, model: dict[str, Any], mode: str, host: PluginHost) -> PlannerConfig:
    """How the demo deploys a policy: enforce or log, default safety and threshold (0 for the
    outcome policies: see :data:`OUTCOME_POLICIES`)."""
    section: dict[str, Any] = {"mode": mode, "model": model}
    if label in OUTCOME_POLICIES:
        section["inference"] = {"confidence_threshold": 0.0}
    return parse_config(section, host=host)


def demo_stages(
    folder: Path, settings: DemoSettings, host: PluginHost | None = None
) -> list[Stage]:
    host = host or get_host()
    s = settings
    root, dataset, bench, outcomes = (folder / n for n in ("root", "dataset", "bench", "outcomes"))
    shares = (0.55, 0.15, 0.30)  # of the bench's issues, in time order

    def simulate() -> dict[str, Any]:
        from swarm_planner.sim.generate import SimConfig
        from swarm_planner.sim.generate import simulate as write_world

        summary = write_world(root, SimConfig(runs=s.issues, seed=s.seed), replace=True)
        return {"runs": summary.runs, "issues": summary.issues, "statuses": summary.statuses}

    def build() -> dict[str, Any]:
        from swarm_planner.core.dataset import build_dataset, check_dataset

        result = build_dataset(root, dataset)
        gates = check_dataset(dataset)
        failed = [g for g in gates if not g.passed]
        if failed:
            raise ValueError(
                "dataset gates failed: " + "; ".join(f"{g.name}: {g.detail}" for g in failed)
            )
        return {"meta": result.meta, "gates": [attrs.asdict(g) for g in gates]}

    def trainer(model: str, out: str, data: Path, init: str | None = None) -> Callable[[], Any]:
        def run() -> dict[str, Any]:
            from swarm_planner.plugins.models.export import export_bundle
            from swarm_planner.plugins.models.training import TrainConfig, train

            config = TrainConfig(model=model, seed=s.seed)  # type: ignore[arg-type]
            result = train(data, folder / out, config, init=None if init is None else folder / init)
            exported = export_bundle(folder / out, dataset)
            return {
                "calibration": result.metrics["calibration"],
                "test": result.metrics["splits"]["test"]["model"],
                "onnx": {
                    "max_abs_prob_diff": exported["max_abs_prob_diff"],
                    "action_agreement": exported["action_agreement"],
                },
            }

        return run

    def run_bench_stage() -> dict[str, Any]:
        from swarm_planner.core.bench.runner import run_bench
        from swarm_planner.core.bench.setup import BenchRequest, prepare_bench

        request = BenchRequest(
            out=bench,
            root=root,
            k=s.k,
            sampler="coverage",
            executor="sim",
            options={"executor": {"seed": s.seed}},
            jobs=2,
        )
        cases, bench_settings, plugins, names, jobs = prepare_bench(request, PlannerConfig(), host)
        summary, _ = run_bench(bench, cases, bench_settings, plugins, jobs=jobs, names=names)
        return {
            "cases": summary.cases,
            "ran": summary.ran,
            "cases_passed": summary.cases_passed,
            "baseline_passed": summary.baseline_passed,
            "spent_minutes": summary.spent_minutes,
        }

    def outcome_dataset() -> dict[str, Any]:
        from swarm_planner.core.outcomes import build_outcome_dataset

        return build_outcome_dataset(bench, outcomes, shares=shares)

    def value() -> dict[str, Any]:
        from swarm_planner.plugins.models.value_training import ValueConfig, train_value

        result = train_value(outcomes, folder / "value", ValueConfig(seed=s.seed))
        return {
            "calibration": result.metrics["calibration"],
            "test": result.metrics["splits"]["test"],
        }

    def table() -> dict[str, Any]:
        from swarm_planner.plugins.models.table import fit_table

        return fit_table(outcomes, folder / "table")

    def evaluate_stage() -> dict[str, Any]:
        return evaluate_policies(folder, settings, host)

    def loop() -> dict[str, Any]:
        from swarm_planner.kernel_integration.loop import LoopSettings, run_world

        config = service_config("value", _policies(folder, s.cost_weight)["value"], "off", host)
        summaries = run_world(
            config,
            folder / "loop",
            LoopSettings(s.loop_issues, seed=s.seed + 1, world_seed=s.seed),
            host=host,
        )
        return {"phases": [p.to_json() for p in summaries]}

    def closed_loop() -> dict[str, Any]:
        from swarm_planner.core.dataset import build_dataset

        result = build_dataset(folder / "loop", folder / "loop-dataset")
        return {"meta": result.meta}

    hashed = {"issues": s.issues, "seed": s.seed}
    return [
        Stage("simulate", hashed, (), simulate, ("root",)),
        Stage("dataset", {}, ("simulate",), build, ("dataset",)),
        Stage(
            "train-mlp", {"seed": s.seed}, ("dataset",), trainer("mlp", "mlp", dataset), ("mlp",)
        ),
        Stage(
            "train-joint",
            {"seed": s.seed},
            ("dataset",),
            trainer("joint", "joint", dataset),
            ("joint",),
        ),
        Stage("bench", {"k": s.k, "seed": s.seed}, ("simulate",), run_bench_stage, ("bench",)),
        Stage(
            "outcome-dataset",
            {"shares": list(shares)},
            ("bench",),
            outcome_dataset,
            ("outcomes",),
        ),
        Stage("train-value", {"seed": s.seed}, ("outcome-dataset",), value, ("value",)),
        Stage("fit-table", {}, ("outcome-dataset",), table, ("table",)),
        Stage(
            "fine-tune-winners",
            {"seed": s.seed},
            ("outcome-dataset", "train-mlp"),
            trainer("mlp", "mlp-winners", outcomes, init="mlp"),
            ("mlp-winners",),
        ),
        Stage(
            "evaluate",
            {"cost_weight": s.cost_weight},
            ("train-mlp", "train-joint", "fine-tune-winners", "train-value", "fit-table"),
            evaluate_stage,
            ("plots",),
        ),
        Stage(
            "kernel-loop",
            {"loop_issues": s.loop_issues, "cost_weight": s.cost_weight},
            ("train-value",),
            loop,
            ("loop",),
        ),
        Stage("closed-loop-dataset", {}, ("kernel-loop",), closed_loop, ("loop-dataset",)),
    ]


def evaluate_policies(folder: Path, settings: DemoSettings, host: PluginHost) -> dict[str, Any]:
    """Every policy against the heuristic: imitation metrics, outcomes online in the world, and
    what the decision service makes of each (latency, fallbacks)."""
    from swarm_planner.core.evaluation import PolicySpec, evaluate, plot_reliability
    from swarm_planner.core.outcome_eval import evaluate_outcomes, plot_frontier
    from swarm_planner.core.utility import UtilityWeights

    policies = _policies(folder, settings.cost_weight)
    plots = folder / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    imitation = ["heuristic", "mlp", "joint", "mlp+winners"]
    specs = [
        PolicySpec(p["path"] if "path" in p else p["type"], {}, label)
        for label, p in policies.items()
        if label in imitation
    ]
    imitation_eval = evaluate(folder / "dataset", specs, host=host)
    plot_reliability(imitation_eval.curves, plots / "reliability.png")
    outcome_specs = [
        PolicySpec(p.get("path", p["type"]), dict(p.get("options", {})), label)
        for label, p in policies.items()
    ]
    executor = host.create("executor", "sim", {"seed": settings.seed})
    outcome_eval = evaluate_outcomes(
        folder / "outcomes",
        outcome_specs,
        host,
        executor=executor,
        weights=UtilityWeights(cost_weight=0.2),
        oracle=True,
        rounds=400,
        seed=settings.seed,
    )
    plot_frontier(outcome_eval, plots / "frontier.png")
    service = decision_figures(folder, policies, host)
    actions = action_distributions(folder, policies, host)
    return {
        "imitation": {
            "split": imitation_eval.split,
            "rows": imitation_eval.rows,
            "policies": imitation_eval.metrics,
        },
        "outcomes": outcome_eval.to_json(),
        "service": service,
        "actions": actions,
    }


def _test_inputs(folder: Path, limit: int = 400) -> list[Any]:
    from swarm_planner.core.outcomes import read_outcome_rows

    splits, _ = read_outcome_rows(folder / "outcomes")
    return [r.planner_input for r in splits["test"][:limit]]


def decision_figures(
    folder: Path, policies: dict[str, dict[str, Any]], host: PluginHost
) -> dict[str, dict[str, Any]]:
    """Each policy served by the decision service in enforce mode (default threshold and
    safety) on the held-out inputs: decision latency and how often it falls back, and why."""
    from swarm_planner.kernel_integration.service import PlannerService

    inputs = _test_inputs(folder)
    out: dict[str, dict[str, Any]] = {}
    for label, model in policies.items():
        service = PlannerService(service_config(label, model, "enforce", host), host=host)
        for x in inputs[:20]:  # warm-up
            service.decide(x)
        latencies: list[float] = []
        reasons: dict[str, int] = {}
        for x in inputs:
            started = time.perf_counter()
            decision = service.decide(x)
            latencies.append((time.perf_counter() - started) * 1e6)
            if decision.branch != "model":
                reasons[decision.reason] = reasons.get(decision.reason, 0) + 1
        out[label] = {
            "decisions": len(inputs),
            "p50_us": float(np.percentile(latencies, 50)),
            "p99_us": float(np.percentile(latencies, 99)),
            "fallback_rate": sum(reasons.values()) / len(inputs),
            "fallback_reasons": dict(sorted(reasons.items())),
        }
    return out


def action_distributions(
    folder: Path, policies: dict[str, dict[str, Any]], host: PluginHost
) -> dict[str, Any]:
    """How often each policy picks each topology × candidates, next to the dataset's labels."""
    from swarm_planner.core.dataset import read_split_rows
    from swarm_planner.core.evaluation import PolicySpec, resolve_policy

    splits, space = read_split_rows(folder / "dataset")
    rows = splits["test"][:400]
    inputs = [r.planner_input for r in rows]

    def key(action: Any) -> str:
        return f"{action.swarm_id}×{action.max_candidates_bin}"

    labels: dict[str, int] = {}
    for r in rows:
        labels[key(r.label_action.action)] = labels.get(key(r.label_action.action), 0) + 1
    chosen: dict[str, dict[str, int]] = {}
    for label, model in policies.items():
        _, policy = resolve_policy(
            PolicySpec(model.get("path", model["type"]), dict(model.get("options", {})), label),
            host,
            space=space,
        )
        counts: dict[str, int] = {}
        for x in inputs:
            action, _ = policy.predict(x).best()
            counts[key(action)] = counts.get(key(action), 0) + 1
        chosen[label] = counts
    return {"rows": len(rows), "labels": labels, "policies": chosen}


@attrs.frozen
class DemoResult:
    folder: str
    seconds: float
    stages: dict[str, StageRecord]


def run_demo(
    folder: Path,
    settings: DemoSettings | None = None,
    *,
    host: PluginHost | None = None,
    progress: StageProgress | None = None,
) -> DemoResult:
    """Run (or resume) the demo in ``folder``; writes ``demo.json`` and the report."""
    settings = settings or DemoSettings()
    host = host or get_host()
    started = time.perf_counter()
    runner = StageRunner(folder, progress)
    records = runner.run_all(demo_stages(folder, settings, host))
    seconds = round(time.perf_counter() - started, 3)
    write_json_atomic(
        folder / SUMMARY_FILE,
        {
            "schema_version": DEMO_V1,
            "settings": attrs.asdict(settings),
            "seconds": seconds,
            "stages": {
                name: {"seconds": r.seconds, "input_hash": r.input_hash, "result": r.result}
                for name, r in records.items()
            },
        },
    )
    return DemoResult(str(folder), seconds, records)
