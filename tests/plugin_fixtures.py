"""Pretend third-party plugins and distributions for the plugin-host tests."""

from __future__ import annotations

import types
from typing import Any

from swarm_planner import hookimpl
from swarm_planner.core import plugins


class FakeDist:
    def __init__(self, name: str, version: str = "1.0") -> None:
        self.metadata = {"Name": name}
        self.version = version


class FakeEntryPoint:
    """Stands in for an installed distribution's entry point."""

    group = plugins.ENTRY_POINT_GROUP

    def __init__(self, name: str, plugin: Any, dist: str) -> None:
        self.name = name
        self.value = f"{dist}:{name}"
        self.dist = FakeDist(dist)
        self._plugin = plugin

    def load(self) -> Any:
        if isinstance(self._plugin, Exception):
            raise self._plugin
        return self._plugin


def module_with_hooks(name: str, **hooks: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, hookimpl(fn))
    return module


def selector_plugin(selector_name: str, module_name: str = "third_party") -> types.ModuleType:
    def register_selectors(register: Any) -> None:
        register(selector_name, lambda: "selector-instance")

    return module_with_hooks(module_name, register_selectors=register_selectors)
