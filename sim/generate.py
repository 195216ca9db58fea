"""``planner simulate``: write a complete kernel repo root in the exact archive format.

N dispatches (runs, retries included) spread over weeks of timestamps. New issues arrive in the
lanes of the collection playbook; failed issues are retried later (up to 3 attempts), so their
failure signals recur. Each run is routed the way kernels route today (:mod:`.routing`) and its
outcome is drawn from the hidden ground truth (:mod:`.world`).

The archives look like the field's: the first weeks are legacy runs (manifest without a planner
record: minutes and iterations unknown), later runs carry ``manifest["planner"]`` with the
recorded input (including system state) and executed plan; a share of runs is archived as
``rollout.json`` instead of ``proof.json``; ``issues.jsonl`` has the known dirt (``dk_attempts``
as a string, some missing ``dk_risk``/``dk_size``). Seeded and deterministic.
"""

from __future__ import annotations

import heapq
import json
import shutil
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import yaml

from swarm_planner.core.action_space import ActionSpace
from swarm_planner.core.contracts import Issue, ManifestPlannerRecord, ModelRef, SystemState, dump
from swarm_planner.core.heuristic import HeuristicRules
from swarm_planner.core.progress import Progress
from swarm_planner.core.recording import (
    build_planner_input,
    executed_plan_for,
    ms_from_rfc3339,
    planner_action_for,
    rfc3339_from_ms,
)
from swarm_planner.sim.disturbances import CALM, Disturbances
from swarm_planner.sim.issues import TOOLCHAINS, draw_issue
from swarm_planner.sim.routing import Drift, Routed, route
from swarm_planner.sim.world import SimOutcome, World, stable_rng

WEEK_MS = 7 * 24 * 3600 * 1000
HOUR_MS = 3600 * 1000
UNIVERSE_ID = "sim"


@attrs.frozen
class SimConfig:
    """Knobs of the embedded world; the defaults are what the docs and targets refer to."""

    runs: int
    seed: int = 0
    weeks: int = 8
    start: str = "2025-01-06T00:00:00Z"
    legacy_fraction: float = 0.1
    rollout_fraction: float = 0.1
    fab_world_share: float = 0.12
    max_attempts: int = 3
    string_attempts_share: float = 0.1
    missing_risk_share: float = 0.02
    missing_size_share: float = 0.02
    drift: Drift = attrs.field(factory=Drift)
    disturbances: Disturbances = CALM
    """Off by default: the archives are then exactly the calm world's."""


@attrs.frozen
class SimSummary:
    runs: int
    issues: int
    statuses: dict[str, int]
    root: str


@attrs.define
class IssueState:
    issue: Issue
    job_type: str
    attempts: int = 0


def system_state_at(
    t_ms: int, rng: np.random.Generator, disturbances: Disturbances = CALM
) -> SystemState:
    """The kernel's load and health at ``t_ms``; ``disturbances.system_shift`` moves it towards
    pressure (the same draws, shifted: a calm root's states are unchanged)."""
    shift = disturbances.system_shift
    hour = (t_ms // HOUR_MS) % 24
    busy = 0.5 + 0.5 * np.sin((hour - 8) / 24 * 2 * np.pi)
    busy = busy + shift * (1.0 - busy)
    bins = ("0", "1_2", "3_5", "6_plus")
    active = bins[min(3, int(busy * 3.5 + rng.random()))]
    queue = bins[min(3, int(busy * 3 + 2 * rng.random()))]
    toolchains = tuple(t for t in TOOLCHAINS if rng.random() > 0.05 + 0.3 * shift)
    health = {
        t: round(float(0.6 + 0.35 * rng.random()) * (1.0 - 0.4 * shift), 2) for t in toolchains
    }
    week_pos = (t_ms % WEEK_MS) / WEEK_MS
    budget = "high" if week_pos < 0.4 else "medium" if week_pos < 0.8 else "low"
    return SystemState(active, queue, toolchains, health, int(hour), budget)  # type: ignore[arg-type]


def proof_document(
    workcell: str, t_ms: int, outcome: SimOutcome, rng: np.random.Generator
) -> dict[str, Any]:
    gates = {
        name: {
            "passed": passed,
            "score": score,
            "fail_codes": [] if passed else list(outcome.fail_codes),
        }
        for name, passed, score in outcome.gates
    }
    # "partial" is the kernel's word for "passed with warnings".
    partial = outcome.status == "success" and rng.random() < 0.05
    status_text = "partial" if partial else outcome.status
    return {
        "workcell_id": workcell,
        "status": status_text,
        "metadata": {
            "started_at": rfc3339_from_ms(t_ms),
            "completed_at": rfc3339_from_ms(t_ms + outcome.duration_ms),
            "duration_ms": outcome.duration_ms,
            "cost_usd": outcome.cost_usd,
            "tokens_used": outcome.tokens_in,
        },
        "verification": {
            "all_passed": outcome.status == "success",
            "gates": gates,
            "blocking_failures": [] if outcome.status == "success" else ["gate_failed"],
        },
    }


def _rollout(
    workcell: str, job_type: str, issue_id: str, t_ms: int, outcome: SimOutcome
) -> dict[str, Any]:
    return {
        "schema_version": "cyntra.rollout.v1",
        "workcell_id": workcell,
        "job_type": job_type,
        "issue_id": issue_id,
        "metadata": {"started_at": rfc3339_from_ms(t_ms)},
        "scores": {"duration_ms": outcome.duration_ms, "cost_usd": outcome.cost_usd},
        "outcomes": {
            "verification": {
                "all_passed": outcome.status == "success",
                "blocking_failures": list(outcome.fail_codes),
            }
        },
    }


def _manifest(
    workcell: str, state: IssueState, routed: Routed, planner: dict[str, Any] | None
) -> dict[str, Any]:
    issue = state.issue
    manifest: dict[str, Any] = {
        "workcell_id": workcell,
        "job_type": state.job_type,
        "issue": {"id": issue.issue_id, "title": issue.title, "tags": list(issue.tags)},
        "toolchain": routed.toolchain,
        "speculate_mode": routed.swarm_id == "speculate_vote",
        "control": {"speculate_parallelism": routed.candidates},
    }
    if planner is not None:
        manifest["planner"] = planner
    return manifest


def _planner_record(
    state: IssueState,
    routed: Routed,
    t_ms: int,
    rng: np.random.Generator,
    disturbances: Disturbances = CALM,
) -> dict[str, Any]:
    """What a kernel in shadow-less "off" mode records: its input, the rule's answer, the plan."""
    issue = attrs.evolve(state.issue, dk_attempts=state.attempts)
    planner_input = build_planner_input(
        universe_id=UNIVERSE_ID,
        job_type=state.job_type,
        issue=issue,
        action_space=ActionSpace(),
        system_state=system_state_at(t_ms, rng, disturbances),
        created_at=rfc3339_from_ms(t_ms),
    )
    baseline = HeuristicRules().decide(planner_input)
    record = ManifestPlannerRecord(
        planner_input=planner_input,
        planner_action=planner_action_for(
            baseline,
            created_at=rfc3339_from_ms(t_ms),
            confidence=1.0,
            abstain_to_default=True,
            reason="mode=off: the kernel's rule decided",
            model=ModelRef("heuristic"),
        ),
        executed_plan=executed_plan_for(
            swarm_id=routed.swarm_id,
            candidates=routed.candidates,
            timeout_seconds=routed.timeout_seconds,
            iterations=routed.iterations,
        ),
        timeout_seconds_override=routed.override_seconds,
    )
    data: dict[str, Any] = dump(record)
    return data


def write_json_compact(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")


def issue_line(state: IssueState, rng: np.random.Generator, config: SimConfig) -> dict[str, Any]:
    issue = state.issue
    line: dict[str, Any] = {
        "id": issue.issue_id,
        "title": issue.title,
        "description": issue.description,
        "status": "closed" if state.attempts else "open",
        "tags": list(issue.tags),
        "dk_priority": issue.dk_priority,
        "dk_risk": issue.dk_risk,
        "dk_size": issue.dk_size,
        "dk_tool_hint": issue.dk_tool_hint,
        "dk_attempts": state.attempts,
    }
    if rng.random() < config.string_attempts_share:
        line["dk_attempts"] = str(state.attempts)
    if rng.random() < config.missing_risk_share:
        del line["dk_risk"]
    if rng.random() < config.missing_size_share:
        del line["dk_size"]
    return line


def simulate(
    out: Path, config: SimConfig, progress: Progress | None = None, *, replace: bool = False
) -> SimSummary:
    """Write a kernel repo root with ``config.runs`` archived runs under ``out``.

    ``replace`` first removes what a previous simulation wrote there (the archives, the issues
    file and the ``sim`` universe) and nothing else.
    """
    if config.runs < 1:
        raise ValueError(f"runs must be at least 1, got {config.runs}")
    out = Path(out)
    archives = out / ".cyntra" / "archives"
    if replace:
        shutil.rmtree(archives, ignore_errors=True)
        shutil.rmtree(out / "universes" / UNIVERSE_ID, ignore_errors=True)
        (out / ".beads" / "issues.jsonl").unlink(missing_ok=True)
    if archives.exists() and any(archives.iterdir()):
        raise FileExistsError(
            f"{archives} already holds archives; simulate into an empty root (or --force)"
        )
    archives.mkdir(parents=True, exist_ok=True)
    world = World(config.seed, config.disturbances)
    rng = stable_rng("simulate", config.seed)
    start_ms = ms_from_rfc3339(config.start)
    span = config.weeks * WEEK_MS
    mean_gap = span / config.runs
    legacy_until = start_ms + int(config.legacy_fraction * span)

    states: dict[str, IssueState] = {}
    retries: list[tuple[int, int, str]] = []
    statuses: dict[str, int] = {"success": 0, "failed": 0, "timeout": 0}
    t_ms = start_ms
    for k in range(config.runs):
        t_ms += max(1000, int(rng.exponential(mean_gap)))
        if retries and retries[0][0] <= t_ms:
            _, _, issue_id = heapq.heappop(retries)
            state = states[issue_id]
        else:
            draw = draw_issue(rng, len(states) + 1, config.fab_world_share)
            state = IssueState(draw.issue, draw.job_type)
            states[draw.issue.issue_id] = state
        week = (t_ms - start_ms) // WEEK_MS
        routed = route(state.issue, state.job_type, int(week), rng, config.drift)
        outcome = world.run(
            state.issue,
            state.job_type,
            swarm_id=routed.swarm_id,
            candidates=routed.candidates,
            minutes_cap=routed.timeout_seconds // 60,
            iterations=routed.iterations,
            attempt=state.attempts,
        )
        statuses[outcome.status] += 1
        stamp = rfc3339_from_ms(t_ms)[:19].replace("-", "").replace(":", "")
        workcell = f"wc-{state.issue.issue_id}-{stamp}Z-{k:06d}"
        directory = archives / workcell
        directory.mkdir()
        planner = (
            None
            if t_ms < legacy_until
            else _planner_record(state, routed, t_ms, rng, config.disturbances)
        )
        write_json_compact(directory / "manifest.json", _manifest(workcell, state, routed, planner))
        if planner is not None and rng.random() < config.rollout_fraction:
            rollout = _rollout(workcell, state.job_type, state.issue.issue_id, t_ms, outcome)
            write_json_compact(directory / "rollout.json", rollout)
        else:
            write_json_compact(
                directory / "proof.json", proof_document(workcell, t_ms, outcome, rng)
            )
        state.attempts += 1
        if outcome.status != "success" and state.attempts < config.max_attempts:
            due = t_ms + int(rng.uniform(1, 48) * HOUR_MS)
            heapq.heappush(retries, (due, k, state.issue.issue_id))
        if progress is not None and (k % 500 == 0 or k == config.runs - 1):
            progress(k + 1, config.runs)

    write_issues_and_universe(out, [issue_line(s, rng, config) for s in states.values()])
    return SimSummary(config.runs, len(states), statuses, str(out))


def write_issues_and_universe(out: Path, issue_lines: list[dict[str, Any]]) -> None:
    """``.beads/issues.jsonl`` and the ``sim`` universe of a root (what the reader needs)."""
    beads = out / ".beads"
    beads.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(line) for line in issue_lines]
    (beads / "issues.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    universe = out / "universes" / UNIVERSE_ID
    universe.mkdir(parents=True, exist_ok=True)
    (universe / "universe.yaml").write_text(
        yaml.safe_dump(
            {
                "universe_id": UNIVERSE_ID,
                "defaults": {"swarm_id": "serial_handoff", "objective_id": "pass_per_dollar"},
            },
            sort_keys=True,
        ),
        encoding="utf-8",
    )
    (universe / "swarms.yaml").write_text(
        yaml.safe_dump(
            {
                "swarms": {
                    "serial_handoff": {"type": "serial", "population_size": 1},
                    "speculate_vote": {"type": "speculate", "population_size": 3},
                }
            },
            sort_keys=True,
        ),
        encoding="utf-8",
    )
