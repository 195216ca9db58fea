"""Checks of command-line values: each bad value is a usage error naming the option and what it
takes (one line, exit 2), never a traceback from deep in the work."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from swarm_planner.core.action_space import JointAction

SEED_MAX = 2**32 - 1


def number(
    *, low: float | None = None, high: float | None = None, above: float | None = None
) -> Callable[[float | None], float | None]:
    """A finite number within bounds (``above``: strictly greater); None passes (unset)."""

    def check(value: float | None) -> float | None:
        if value is None:
            return value
        if not math.isfinite(value):
            raise typer.BadParameter(f"{value!r} is not a finite number")
        if above is not None and not value > above:
            raise typer.BadParameter(f"{value!r} is not above {above:g}")
        if low is not None and value < low:
            raise typer.BadParameter(f"{value!r} is below {low:g}")
        if high is not None and value > high:
            raise typer.BadParameter(f"{value!r} is above {high:g}")
        return value

    return check


unit = number(low=0.0, high=1.0)
"""A number within [0, 1] (a threshold, a share)."""


def seed(value: int) -> int:
    """A seed of 0 to 2**32 - 1 (what numpy and torch take)."""
    if not 0 <= value <= SEED_MAX:
        raise typer.BadParameter(f"{value} is not a seed from 0 to {SEED_MAX}")
    return value


def folder(value: Path | None) -> Path | None:
    """A folder to write into: absent (it is created) or a folder, never an existing file."""
    if value is not None and value.exists() and not value.is_dir():
        raise typer.BadParameter(f"{value} is a file; give a folder to write into")
    return value


def choice(*allowed: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            raise typer.BadParameter(f"{value!r} is not one of {'|'.join(allowed)}")
        return value

    return check


def action_text(text: str, *, option: str) -> JointAction:
    """``SWARM|CANDIDATES|MINUTES|ITERATIONS`` (``NA`` for no cap) as a joint action."""
    from swarm_planner.core.action_space import JointAction

    parts = text.split("|")
    try:
        if len(parts) != 4:
            raise ValueError("expected four parts")
        bins = [p if p == "NA" else int(p) for p in parts[1:]]
        return JointAction.from_list([parts[0], *bins])
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not SWARM|CANDIDATES|MINUTES|ITERATIONS (numbers or NA)",
            param_hint=option,
        ) from None
