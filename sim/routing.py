"""How kernels route issues today: the plans the archives record as executed.

The risk rule picks topology and parallelism; minutes come from the timeout of the toolchain
that the tool hint, the tags or the size route to; fab-world jobs get an iteration cap. Two
realities make imitation learnable but not identical to the ``heuristic`` policy: a few
explicit overrides, and configuration drift between weeks (a toolchain's timeout is raised, a
tag is re-routed), which is why datasets are versioned by the environment that produced them.
"""

from __future__ import annotations

import attrs
import numpy as np

from swarm_planner.core.contracts import Issue

TIMEOUT_SECONDS = {"crush": 900, "codex": 1800, "opencode": 2700, "claude": 3600}
TAG_ROUTES = {
    "ui": "claude",
    "frontend": "claude",
    "docs": "claude",
    "infra": "codex",
    "ci": "codex",
}
SIZE_ROUTES = {"XS": "crush", "S": "crush", "M": "codex", "L": "claude", "XL": "claude"}


@attrs.frozen
class Drift:
    """Configuration changes in force from a week on (0-based)."""

    codex_timeout_from_week: int = 4
    codex_timeout_seconds: int = 2700
    docs_to_crush_from_week: int = 2


@attrs.frozen
class Routed:
    """What the kernel ran (raw numbers, as executed_plan records them)."""

    swarm_id: str
    candidates: int
    timeout_seconds: int
    iterations: int | None
    toolchain: str
    override_seconds: int | None
    speculate_override: bool


def toolchain_for(issue: Issue, week: int, drift: Drift) -> str:
    if issue.dk_tool_hint:
        return issue.dk_tool_hint
    for tag in issue.tags:
        if tag == "docs" and week >= drift.docs_to_crush_from_week:
            return "crush"
        if tag in TAG_ROUTES:
            return TAG_ROUTES[tag]
    return SIZE_ROUTES[issue.dk_size]


def route(issue: Issue, job_type: str, week: int, rng: np.random.Generator, drift: Drift) -> Routed:
    """Today's routing for one dispatch (``rng`` decides the rare explicit overrides)."""
    if issue.dk_risk == "critical":
        swarm, candidates = "speculate_vote", 3
    elif issue.dk_risk == "high":
        swarm, candidates = "speculate_vote", 2
    else:
        swarm, candidates = "serial_handoff", 1
    # Explicit overrides follow what operators see (urgent security work gets a second
    # candidate; urgent big work gets two hours), plus a small share nobody can predict.
    speculate_override = False
    sensitive = bool({"security", "auth"} & set(issue.tags))
    if (
        swarm == "serial_handoff"
        and issue.dk_priority == "P0"
        and (sensitive or rng.random() < 0.05)
    ):
        swarm, candidates, speculate_override = "speculate_vote", 2, True
    toolchain = toolchain_for(issue, week, drift)
    timeout = TIMEOUT_SECONDS[toolchain]
    if toolchain == "codex" and week >= drift.codex_timeout_from_week:
        timeout = drift.codex_timeout_seconds
    override = None
    if issue.dk_priority in ("P0", "P1") and issue.dk_size == "XL":
        override = 7200
    elif rng.random() < 0.015:
        override = 3600
    if override is not None:
        timeout = override
    iterations = None
    if job_type == "fab-world":
        iterations = 5 if issue.dk_size in ("L", "XL") else 3
    return Routed(swarm, candidates, timeout, iterations, toolchain, override, speculate_override)
