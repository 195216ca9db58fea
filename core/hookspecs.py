"""The hooks a swarm-planner plugin may implement.

One registry hook per kind of plugin. Each receives ``register(name, factory, *, options=None)``;
the host owns the name → factory tables, their order and the collision policy (a duplicate name is
an error naming both providers). ``factory`` is called when a config picks the name: with no
argument when ``options`` is None, else with one instance of the attrs class ``options``,
structured strictly from the config (unknown keys are errors). Keep heavy imports (torch,
onnxruntime) inside the factory so that loading plugins stays fast.

All hooks fire once per process, when the plugin host first loads plugins (lazily, on the first
command that needs a plugin).
"""

from __future__ import annotations

from typing import Any, Protocol

import pluggy

PROJECT = "swarm_planner"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Register(Protocol):
    """The callable every registry hook receives."""

    def __call__(self, name: str, factory: Any, *, options: type | None = None) -> None: ...


@hookspec
def register_encoders(register: Register) -> None:
    """Register encoders: ``factory(options) -> Encoder`` (planner_input → sparse features)."""


@hookspec
def register_policies(register: Register) -> None:
    """Register policies: ``factory(options) -> Policy`` (a distribution over valid actions)."""


@hookspec
def register_samplers(register: Register) -> None:
    """Register samplers: ``factory(options) -> Sampler`` (K candidate actions for the bench)."""


@hookspec
def register_selectors(register: Register) -> None:
    """Register selectors: ``factory(options) -> Selector`` (the winner among K outcomes)."""


@hookspec
def register_fallbacks(register: Register) -> None:
    """Register fallbacks: ``factory(options) -> Fallback`` (decides when the model cannot)."""


@hookspec
def register_executors(register: Register) -> None:
    """Register executors: ``factory(options) -> Executor`` (runs one bench candidate)."""
