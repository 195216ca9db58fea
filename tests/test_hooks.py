"""One test per hook (each one registers through it and gets the object back by name), and a
meta-test that every hook has such a test and a documented signature, as datasette does."""

from __future__ import annotations

import inspect
import re
import sys
import types
from pathlib import Path
from typing import Any

import attrs
import pytest

from swarm_planner import hookimpl
from swarm_planner.core import hookspecs
from swarm_planner.core.plugins import KINDS, PluginHost, Provider

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


@attrs.frozen
class EchoOptions:
    level: int = 0


@attrs.frozen
class Echo:
    kind: str
    options: EchoOptions


def _register_via(hook_name: str, host: PluginHost) -> str:
    kind = next(k for k, h in KINDS.items() if h == hook_name)

    def impl(register: Any) -> None:
        register("echo", lambda options: Echo(kind, options), options=EchoOptions)

    module = types.ModuleType(f"echo_{kind}")
    setattr(module, hook_name, hookimpl(impl))
    assert host.add_plugin(module, provider=Provider(f"echo_{kind}", "echo-dist", "9.9"))
    return kind


def _check_hook(hook_name: str, host: PluginHost) -> None:
    kind = _register_via(hook_name, host)
    built = host.create(kind, "echo", {"level": 3})
    assert built == Echo(kind, EchoOptions(3))
    row = next(
        r
        for r in (e.listing() for e in host.entries())
        if r["kind"] == kind and r["name"] == "echo"
    )
    assert (row["distribution"], row["version"]) == ("echo-dist", "9.9")


def test_hook_register_encoders(host: PluginHost) -> None:
    _check_hook("register_encoders", host)


def test_hook_register_policies(host: PluginHost) -> None:
    _check_hook("register_policies", host)


def test_hook_register_samplers(host: PluginHost) -> None:
    _check_hook("register_samplers", host)


def test_hook_register_selectors(host: PluginHost) -> None:
    _check_hook("register_selectors", host)


def test_hook_register_fallbacks(host: PluginHost) -> None:
    _check_hook("register_fallbacks", host)


def test_hook_register_executors(host: PluginHost) -> None:
    _check_hook("register_executors", host)


def _hook_names() -> list[str]:
    return sorted(
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "swarm_planner_spec")
    )


def test_every_kind_has_exactly_one_registry_hook() -> None:
    assert sorted(KINDS.values()) == _hook_names()


@pytest.mark.parametrize("hook_name", _hook_names())
def test_every_hook_has_a_test(hook_name: str) -> None:
    assert hasattr(sys.modules[__name__], f"test_hook_{hook_name}"), f"write test_hook_{hook_name}"


@pytest.mark.parametrize("hook_name", _hook_names())
def test_every_hook_is_documented_with_its_signature(hook_name: str) -> None:
    fn = getattr(hookspecs, hook_name)
    params = ", ".join(inspect.signature(fn).parameters)
    heading = f"### {hook_name}({params})"
    assert re.search(rf"^{re.escape(heading)}$", DOCS.read_text(), re.MULTILINE), heading
    assert fn.__doc__, f"{hook_name} needs a docstring"
