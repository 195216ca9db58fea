"""From a config and a command line to a bench: cases, plugins and settings in one place.

The kernel config's ``planner.bench`` section gives the defaults; flags override a name or an
option. Options given in config apply only to the plugin they were written for (choosing another
sampler on the command line does not hand it the config's sampler options).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from swarm_planner.core.bench.backends import Backend, make_backend
from swarm_planner.core.bench.cases import cases_from_root, read_cases
from swarm_planner.core.bench.log import BenchError
from swarm_planner.core.bench.records import BenchCase, BenchSettings, PluginChoice
from swarm_planner.core.bench.runner import BenchPlugins, cases_hash
from swarm_planner.core.canonical import canonical_json, sha256_hex
from swarm_planner.core.config import PlannerConfig
from swarm_planner.core.contracts import dump
from swarm_planner.core.plugins import PluginHost
from swarm_planner.core.progress import Progress

WORLDS = ("sim",)


@attrs.frozen
class BenchRequest:
    """What the command line asked for (None: take the config's)."""

    out: Path
    root: Path | None = None
    world: str | None = None
    world_seed: int = 0
    issues_file: Path | None = None
    issues: int | None = None
    k: int | None = None
    sampler: str | None = None
    selector: str | None = None
    executor: str | None = None
    options: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    """Kind (sampler/selector/executor) → options overriding the config's."""
    jobs: int | None = None
    budget_minutes: float | None = None
    issue_budget_minutes: float | None = None
    keep_failed_winners: bool | None = None
    budget_mode: str | None = None
    on_budget: str | None = None
    backend: str = "local"
    address: str | None = None
    """Ray: overrides planner.bench.ray.address."""
    resources: dict[str, float] | None = None
    """Ray: overrides planner.bench.ray.resources."""


def _choice(
    kind: str,
    flag: str | None,
    configured: str | None,
    configured_options: dict[str, Any],
    overrides: dict[str, Any],
    default: str | None = None,
) -> PluginChoice:
    name = flag or configured or default
    if name is None:
        raise BenchError(f"no {kind} is chosen: pass --{kind} NAME or set planner.bench.{kind}")
    options = dict(configured_options) if name == configured else {}
    options.update(overrides)
    return PluginChoice(name, options)


def world_root(request: BenchRequest, progress: Progress | None = None) -> Path:
    """The embedded world's kernel root for this bench, simulated on first use (seeded, so a
    resumed bench finds the same root)."""
    from swarm_planner.sim.generate import SimConfig, simulate

    if request.world not in WORLDS:
        raise BenchError(f"unknown world {request.world!r}; available: {', '.join(WORLDS)}")
    runs = request.issues if request.issues is not None else 1000
    root = request.out / "world"
    marker = root / "world.json"
    wanted = {"world": request.world, "seed": request.world_seed, "runs": runs}
    if marker.is_file():
        from swarm_planner.core.documents import read_json_object

        if read_json_object(marker) == wanted:
            return root
        raise BenchError(
            f"{root} holds another simulated world ({read_json_object(marker)}), not {wanted}; "
            "use a new --out"
        )
    simulate(root, SimConfig(runs=runs, seed=request.world_seed), progress, replace=True)
    from swarm_planner.core.recording import write_json_atomic

    write_json_atomic(marker, wanted)
    return root


def prepare_bench(
    request: BenchRequest,
    config: PlannerConfig,
    host: PluginHost,
    *,
    progress: Progress | None = None,
) -> tuple[list[BenchCase], BenchSettings, BenchPlugins, dict[str, str], int | None]:
    """Cases, settings, plugins, their names, and the number of jobs."""
    b = config.bench
    sources = [request.root is not None, request.world is not None, request.issues_file is not None]
    if sum(sources) != 1:
        raise BenchError("give exactly one of --root KERNEL_ROOT, --world sim, --issues FILE")
    fallback_choice = PluginChoice(config.model.fallback, dict(config.model.fallback_options))
    baseline = host.create(
        "fallback", fallback_choice.name, fallback_choice.options, space=config.action_space
    )
    default_executor = None
    executor_defaults: dict[str, Any] = {}
    if request.world is not None:
        root = world_root(request, progress)
        cases = cases_from_root(root, baseline, progress=progress)
        default_executor = "sim"
        executor_defaults = {"seed": request.world_seed}
    elif request.root is not None:
        cases = cases_from_root(request.root, baseline, limit=request.issues, progress=progress)
    else:
        assert request.issues_file is not None
        cases = read_cases(request.issues_file, baseline, limit=request.issues)
    if not cases:
        raise BenchError("no cases: the source holds no runs to bench")
    executor = _choice(
        "executor",
        request.executor,
        b.executor,
        b.executor_options,
        request.options.get("executor", {}),
        default_executor,
    )
    if executor.name == default_executor and request.executor is None and b.executor is None:
        executor = PluginChoice(executor.name, {**executor_defaults, **executor.options})
    sampler = _choice(
        "sampler", request.sampler, b.sampler, b.sampler_options, request.options.get("sampler", {})
    )
    selector = _choice(
        "selector",
        request.selector,
        b.selector,
        b.selector_options,
        request.options.get("selector", {}),
    )
    settings = BenchSettings(
        k=request.k if request.k is not None else b.k,
        sampler=sampler,
        selector=selector,
        executor=executor,
        fallback=fallback_choice,
        action_space_hash=sha256_hex(canonical_json(dump(config.action_space))),
        cases_hash=cases_hash(cases),
        timeout_minutes=b.timeout_minutes,
        uncapped_candidates=b.uncapped_candidates,
        budget_minutes=request.budget_minutes
        if request.budget_minutes is not None
        else b.budget_minutes,
        issue_budget_minutes=(
            request.issue_budget_minutes
            if request.issue_budget_minutes is not None
            else b.issue_budget_minutes
        ),
        keep_failed_winners=(
            request.keep_failed_winners
            if request.keep_failed_winners is not None
            else b.keep_failed_winners
        ),
        budget_mode=request.budget_mode or b.budget_mode,  # type: ignore[arg-type]
        on_budget=request.on_budget or b.on_budget,  # type: ignore[arg-type]
    )
    plugins = BenchPlugins(
        sampler=host.create("sampler", sampler.name, sampler.options),
        selector=host.create("selector", selector.name, selector.options),
        executor=host.create("executor", executor.name, executor.options),
    )
    names = {"sampler": sampler.name, "selector": selector.name, "executor": executor.name}
    return cases, settings, plugins, names, bench_jobs(request, config)


def bench_jobs(request: BenchRequest, config: PlannerConfig) -> int | None:
    """Issues in flight at once: ``--jobs``, else the config's for the local backend; on Ray,
    None (as many as the cluster can run candidates at once)."""
    if request.jobs is not None:
        return request.jobs
    return None if request.backend == "ray" else config.bench.jobs


def bench_backend(request: BenchRequest, config: PlannerConfig) -> Backend:
    """The backend the request names, with the config's Ray settings and the flags' overrides."""
    ray = config.bench.ray
    if request.address is not None:
        ray = attrs.evolve(ray, address=request.address)
    if request.resources is not None:
        ray = attrs.evolve(ray, resources=dict(request.resources))
    return make_backend(request.backend, ray)
