"""Test set-up: never autoload third-party plugins by accident.

The built-ins are loaded through the project's own entry points (the real path); anything else
installed on the machine is excluded by an empty allowlist, and each test that needs a plugin
registers it by hand on a fresh host.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from swarm_planner.core import plugins
from swarm_planner.core.contracts import PlannerInput, load

FIXTURES = Path(__file__).parent / "fixtures"

# No per-example deadline: a loaded CI machine must not turn a slow example into a failure.
# In CI the examples are derandomized, so a red build always reproduces.
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def pytest_configure(config: pytest.Config) -> None:
    os.environ["SWARM_PLANNER_LOAD_PLUGINS"] = ""
    os.environ.pop("SWARM_PLANNER_STRICT_PLUGINS", None)


@pytest.fixture(autouse=True)
def _fresh_global_host() -> Iterator[None]:
    plugins.reset_host()
    yield
    plugins.reset_host()


@pytest.fixture()
def installed(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Entry points of pretend third-party distributions (``plugin_fixtures.FakeEntryPoint``),
    added to the real ones."""
    extra: list[Any] = []
    real = plugins.md.entry_points

    def entry_points(group: str) -> list[Any]:
        return [*real(group=group), *extra]

    monkeypatch.setattr(plugins.md, "entry_points", entry_points)
    return extra


@pytest.fixture()
def host() -> plugins.PluginHost:
    """A host with the built-ins loaded from their entry points, and nothing else."""
    h = plugins.PluginHost()
    h.load_entry_points(allowlist=[])
    return h


def read_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture()
def fixture_json() -> Callable[[str], Any]:
    return read_fixture


@pytest.fixture()
def make_input() -> Callable[..., PlannerInput]:
    """A planner_input built from the full fixture with fields overridden."""

    def make(*, job_type: str = "code", risk: str = "medium", **issue: Any) -> PlannerInput:
        data = read_fixture("planner_input.json")
        data["job_type"] = job_type
        data["issue"].update(dk_risk=risk, **issue)
        return load(data, PlannerInput)

    return make


@pytest.fixture(scope="session")
def sim_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated kernel root shared by the data tests (read-only: never modify it)."""
    from swarm_planner.sim.generate import SimConfig, simulate

    root = tmp_path_factory.mktemp("sim") / "root"
    simulate(root, SimConfig(runs=800, seed=3))
    return root
