"""Synthetic issues with the lanes of the collection playbook.

≈60% low/medium (routed serially today), ≈30% high (speculate ×2), ≈10% critical (speculate ×3);
sizes, tags, tool hints, titles and descriptions whose words carry a little signal about the
hidden difficulty (``race``, ``flaky``, ``migration`` make an issue harder).
"""

from __future__ import annotations

import attrs
import numpy as np

from swarm_planner.core.contracts import Issue

RISK_WEIGHTS = {"low": 0.3, "medium": 0.3, "high": 0.3, "critical": 0.1}
SIZE_WEIGHTS = {"XS": 0.12, "S": 0.28, "M": 0.32, "L": 0.2, "XL": 0.08}
PRIORITY_WEIGHTS = {"P0": 0.08, "P1": 0.25, "P2": 0.5, "P3": 0.17}
TAGS = (
    "api",
    "auth",
    "backend",
    "build",
    "ci",
    "db",
    "docs",
    "frontend",
    "infra",
    "lint",
    "perf",
    "render",
    "security",
    "typing",
    "ui",
)
ASSET_TAGS = ("asset:tree", "asset:rock", "asset:building")
TOOLCHAINS = ("claude", "codex", "crush", "opencode")

_VERBS = ("Fix", "Add", "Refactor", "Remove", "Speed up", "Document", "Migrate", "Harden")
_OBJECTS = (
    "token refresh",
    "cache eviction",
    "login form",
    "report export",
    "search index",
    "retry policy",
    "config loader",
    "asset pipeline",
    "build matrix",
    "rate limiter",
)
_QUALIFIERS = (
    "race",
    "flaky test",
    "migration",
    "typo",
    "rename",
    "deadlock",
    "timeout",
    "regression",
    "concurrency",
    "small cleanup",
    "security hole",
    "edge case",
)


@attrs.frozen
class IssueDraw:
    issue: Issue
    job_type: str


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys])
    return str(keys[int(rng.choice(len(keys), p=p / p.sum()))])


def draw_issue(rng: np.random.Generator, number: int, fab_world_share: float = 0.12) -> IssueDraw:
    """One new issue. ``number`` makes the id; everything else comes from ``rng``."""
    job_type = "fab-world" if rng.random() < fab_world_share else "code"
    risk = _pick(rng, RISK_WEIGHTS)
    size = _pick(rng, SIZE_WEIGHTS)
    priority = _pick(rng, PRIORITY_WEIGHTS)
    n_tags = int(rng.integers(1, 4))
    tags = sorted({str(t) for t in rng.choice(TAGS, size=n_tags, replace=False)})
    if job_type == "code" and rng.random() < 0.08:
        tags.append(str(rng.choice(ASSET_TAGS)))
    hint = str(rng.choice(TOOLCHAINS)) if rng.random() < 0.3 else None
    verb, obj = str(rng.choice(_VERBS)), str(rng.choice(_OBJECTS))
    qualifier = str(rng.choice(_QUALIFIERS))
    title = f"{verb} {obj} {qualifier}"
    description = (
        f"The {obj} shows a {qualifier} in the {tags[0]} area. "
        f"{'It blocks a release. ' if priority in ('P0', 'P1') else ''}"
        f"Reproduce, fix and cover it with tests."
    )
    issue = Issue(
        issue_id=f"SP-{number:06d}",
        dk_priority=priority,  # type: ignore[arg-type]
        dk_risk=risk,  # type: ignore[arg-type]
        dk_size=size,  # type: ignore[arg-type]
        dk_tool_hint=hint,
        dk_attempts=0,
        tags=tuple(sorted(tags)),
        title=title,
        description=description,
    )
    return IssueDraw(issue, job_type)
