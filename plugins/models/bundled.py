"""What every bundle-served policy shares: its options, its encoder, its action space check.

Kept apart from the torch and ONNX policies so that serving an exported bundle never imports
the torch policy's module (nor torch).
"""

from __future__ import annotations

from pathlib import Path

import attrs

from swarm_planner.core.action_space import ActionSpace
from swarm_planner.core.bundle import BundleError, ServedBundle
from swarm_planner.core.contracts import PlannerInput, load
from swarm_planner.core.errors import ContractError
from swarm_planner.plugins.encoders.compositional import CompositionalEncoder, CompositionalOptions


def check_space(planner_input: PlannerInput, space: ActionSpace, path: Path) -> None:
    """A bundle answers over its own action space: an input with another (not equivalent)
    space is bad input for it."""
    if not planner_input.action_space.equivalent(space):
        raise ContractError(
            "planner_input",
            [
                f"action_space: differs from the one {path} was trained on (its bins or the "
                "actions its rules allow); retrain on data with this action space"
            ],
        )


@attrs.frozen
class BundleOptions:
    """Where the bundle is (``planner.model.path`` in the kernel config)."""

    path: str


def load_encoder(bundle: ServedBundle) -> CompositionalEncoder:
    """The encoder a bundle's ``config.json`` describes."""
    encoder = bundle.config.encoder
    source = str(bundle.path / "config.json")
    if encoder.name != "compositional":
        raise BundleError(f"{source}: encoder.name {encoder.name!r} is not 'compositional'")
    try:
        options = load(encoder.options, CompositionalOptions, source=f"{source}: encoder.options")
        return CompositionalEncoder(options)
    except ValueError as exc:  # a ContractError, or an encoder version we do not know
        raise BundleError(
            str(exc) if isinstance(exc, ContractError) else f"{source}: {exc}"
        ) from exc
