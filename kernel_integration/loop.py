"""``planner run-world``: the closed loop over the embedded world.

A small kernel: a scheduler draws issues (failed ones come back, up to three attempts), the
decision service decides each dispatch from the bare issue (live history, the gate), the world
runs what the decision says, and the run is archived in the field's format with the decision
recorded as ``manifest["planner"]``; the archive is then added to the live history, so the
next decision sees it. The phases run in order (``log``: decide and record, run the baseline;
then ``enforce``), each into the same root, which ``planner build-dataset`` turns into the next
dataset. The world is the frozen ground truth that ``planner simulate`` and the bench use.
"""

from __future__ import annotations

import heapq
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from swarm_planner.core.config import Mode, PlannerConfig
from swarm_planner.core.contracts import dump
from swarm_planner.core.plugins import PluginHost
from swarm_planner.core.progress import Progress
from swarm_planner.core.recording import ms_from_rfc3339, rfc3339_from_ms
from swarm_planner.kernel_integration.live_history import LiveHistory
from swarm_planner.kernel_integration.service import PlannerService
from swarm_planner.sim.generate import (
    HOUR_MS,
    UNIVERSE_ID,
    IssueState,
    SimConfig,
    issue_line,
    proof_document,
    system_state_at,
    write_issues_and_universe,
    write_json_compact,
)
from swarm_planner.sim.issues import draw_issue
from swarm_planner.sim.world import World, stable_rng

MAX_ATTEMPTS = 3
_CLEAN = SimConfig(
    runs=1, string_attempts_share=0.0, missing_risk_share=0.0, missing_size_share=0.0
)
"""The loop's kernel writes its issue file without the field's dirt."""


@attrs.frozen
class LoopSettings:
    issues: int
    """Dispatches per phase (retries included)."""
    seed: int = 0
    world_seed: int = 0
    start: str = "2025-03-03T00:00:00Z"
    gap_minutes: float = 20.0
    phases: tuple[Mode, ...] = ("log", "enforce")


@attrs.frozen
class PhaseSummary:
    mode: str
    decisions: int
    passed: int
    cost_usd: float
    fallbacks: int
    reasons: dict[str, int]
    branches: dict[str, int]
    latency_us_p50: float
    latency_us_p99: float

    @property
    def pass_rate(self) -> float:
        return self.passed / self.decisions if self.decisions else 0.0

    @property
    def cost_per_pass(self) -> float | None:
        return self.cost_usd / self.passed if self.passed else None

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks / self.decisions if self.decisions else 0.0

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data.update(
            pass_rate=self.pass_rate,
            cost_per_pass=self.cost_per_pass,
            fallback_rate=self.fallback_rate,
        )
        return data


def run_world(
    config: PlannerConfig,
    out: Path | str,
    settings: LoopSettings,
    *,
    host: PluginHost | None = None,
    history: LiveHistory | None = None,
    progress: Progress | None = None,
) -> list[PhaseSummary]:
    """Run every phase into the root ``out`` (it must hold no archives yet)."""
    out = Path(out)
    archives = out / ".cyntra" / "archives"
    if archives.exists() and any(archives.iterdir()):
        raise FileExistsError(f"{archives} already holds archives; run the loop into a new root")
    archives.mkdir(parents=True, exist_ok=True)
    if history is None:
        history = LiveHistory(config.history, config.action_space, universe_id=UNIVERSE_ID)
    world = World(settings.world_seed)
    rng = stable_rng("run-world", settings.seed)
    states: dict[str, IssueState] = {}
    retries: list[tuple[int, int, str]] = []
    t_ms = ms_from_rfc3339(settings.start)
    gap_ms = settings.gap_minutes * 60_000
    summaries = []
    k = 0
    total = settings.issues * len(settings.phases)
    for mode in settings.phases:
        service = PlannerService(attrs.evolve(config, mode=mode), host=host, history=history)
        passed, cost, reasons, branches = 0, 0.0, Counter[str](), Counter[str]()
        fallbacks, latencies = 0, []
        for _ in range(settings.issues):
            t_ms += max(1000, int(rng.exponential(gap_ms)))
            if retries and retries[0][0] <= t_ms:
                state = states[heapq.heappop(retries)[2]]
            else:
                draw = draw_issue(rng, len(states) + 1, _CLEAN.fab_world_share)
                issue = attrs.evolve(draw.issue, issue_id=f"RW-{len(states) + 1:06d}")
                state = IssueState(issue, draw.job_type)
                states[issue.issue_id] = state
            decision = service.decide_issue(
                state.issue,
                job_type=state.job_type,
                system_state=system_state_at(t_ms, rng),
                now_ms=t_ms,
            )
            outcome = world.run_action(
                state.issue, state.job_type, decision.executed, attempt=state.attempts
            )
            stamp = rfc3339_from_ms(t_ms)[:19].replace("-", "").replace(":", "")
            workcell = f"wc-{state.issue.issue_id}-{stamp}Z-{k:06d}"
            directory = archives / workcell
            directory.mkdir()
            manifest = {
                "workcell_id": workcell,
                "job_type": state.job_type,
                "issue": {
                    "id": state.issue.issue_id,
                    "title": state.issue.title,
                    "tags": list(state.issue.tags),
                },
                "speculate_mode": decision.executed.swarm_id == "speculate_vote",
                "planner": dump(decision.manifest_record()),
            }
            write_json_compact(directory / "manifest.json", manifest)
            write_json_compact(
                directory / "proof.json", proof_document(workcell, t_ms, outcome, rng)
            )
            history.add_archive(directory, state.issue)
            state.attempts += 1
            if outcome.status != "success" and state.attempts < MAX_ATTEMPTS:
                due = t_ms + int(rng.uniform(1, 48) * HOUR_MS)
                heapq.heappush(retries, (due, k, state.issue.issue_id))
            passed += outcome.verified
            cost += outcome.cost_usd
            reasons[decision.reason] += 1
            branches[decision.branch] += 1
            fallbacks += decision.executed_plan.fallback_applied
            latencies.append(decision.latency_us)
            k += 1
            if progress is not None and (k % 100 == 0 or k == total):
                progress(k, total)
        summaries.append(
            PhaseSummary(
                mode,
                settings.issues,
                passed,
                round(cost, 4),
                fallbacks,
                dict(sorted(reasons.items())),
                dict(sorted(branches.items())),
                float(np.percentile(latencies, 50)) if latencies else 0.0,
                float(np.percentile(latencies, 99)) if latencies else 0.0,
            )
        )
    lines_rng = stable_rng("run-world issues", settings.seed)
    write_issues_and_universe(out, [issue_line(s, lines_rng, _CLEAN) for s in states.values()])
    return summaries
