"""The plugin host: entry points, isolation of broken plugins, strict registries."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from plugin_fixtures import FakeEntryPoint, module_with_hooks, selector_plugin

from swarm_planner.core import plugins
from swarm_planner.core.errors import DuplicatePluginError, PluginLoadError, UnknownPluginError
from swarm_planner.core.plugins import PluginHost, PluginLoadWarning, Provider

BUILTINS = {
    ("encoder", "compositional"),
    ("policy", "joint"),
    ("policy", "mlp"),
    ("policy", "mlp-ar"),
    ("policy", "transformer"),
    ("policy", "onnx"),
    ("executor", "sim"),
    ("fallback", "heuristic"),
    ("policy", "heuristic"),
    ("sampler", "deterministic"),
    ("sampler", "random"),
    ("selector", "lexicographic"),
    ("sampler", "coverage"),
    ("sampler", "uncertainty"),
    ("selector", "utility"),
    ("selector", "cheapest_pass"),
    ("executor", "command"),
    ("policy", "value"),
    ("policy", "table"),
}


def _load(allowlist: list[str] | str | None = plugins.FROM_ENV, strict: bool = False) -> PluginHost:
    host = PluginHost(strict=strict)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        host.load_entry_points(allowlist=allowlist)
    return host


def test_builtins_load_through_the_projects_own_entry_points(host: PluginHost) -> None:
    assert {(e.kind, e.name) for e in host.entries()} == BUILTINS
    assert {e.provider.distribution for e in host.entries()} == {"swarm-planner"}
    assert all(e.provider.version for e in host.entries())


def test_every_builtin_module_is_listed_in_the_entry_point_table(host: PluginHost) -> None:
    modules = {e.module for e in host.entries()}
    assert modules == {
        "swarm_planner.plugins.encoders.compositional",
        "swarm_planner.plugins.models.torch_policy",
        "swarm_planner.plugins.models.onnx_policy",
        "swarm_planner.plugins.executors.sim",
        "swarm_planner.plugins.fallbacks.heuristic",
        "swarm_planner.plugins.models.heuristic",
        "swarm_planner.plugins.samplers.deterministic",
        "swarm_planner.plugins.samplers.random_sampler",
        "swarm_planner.plugins.selectors.lexicographic",
        "swarm_planner.plugins.samplers.coverage",
        "swarm_planner.plugins.samplers.uncertainty",
        "swarm_planner.plugins.selectors.utility",
        "swarm_planner.plugins.selectors.cheapest_pass",
        "swarm_planner.plugins.executors.command",
        "swarm_planner.plugins.models.value",
        "swarm_planner.plugins.models.table",
    }


def test_a_third_party_plugin_is_listed_with_its_distribution(
    installed: list[FakeEntryPoint],
) -> None:
    installed.append(FakeEntryPoint("fancy", selector_plugin("fancy"), "planner-fancy"))
    host = _load(allowlist=None)
    entry = host.entry("selector", "fancy")
    assert (entry.provider.distribution, entry.provider.version) == ("planner-fancy", "1.0")
    assert host.create("selector", "fancy") == "selector-instance"


def test_a_broken_plugin_is_reported_and_skipped(installed: list[FakeEntryPoint]) -> None:
    installed.append(
        FakeEntryPoint("broken", ImportError("No module named 'missing_dep'"), "planner-broken")
    )
    installed.append(FakeEntryPoint("fancy", selector_plugin("fancy"), "planner-fancy"))
    host = PluginHost(strict=False)
    with pytest.warns(
        PluginLoadWarning, match=r"'broken' from planner-broken 1.0 failed to load: ImportError"
    ):
        host.load_entry_points(allowlist=None)
    assert [f.plugin for f in host.failures] == ["broken"]
    assert host.failures[0].distribution == "planner-broken"
    assert "missing_dep" in host.failures[0].error
    assert ("selector", "fancy") in {(e.kind, e.name) for e in host.entries()}
    assert {(e.kind, e.name) for e in host.entries()} >= BUILTINS


def test_strict_mode_makes_a_broken_plugin_fatal(
    installed: list[FakeEntryPoint], monkeypatch: pytest.MonkeyPatch
) -> None:
    installed.append(FakeEntryPoint("broken", RuntimeError("boom"), "planner-broken"))
    monkeypatch.setenv(plugins.ENV_STRICT, "1")
    with pytest.raises(
        PluginLoadError,
        match=r"plugin 'broken' from planner-broken 1.0 failed to load: RuntimeError: boom",
    ):
        PluginHost().load_entry_points(allowlist=None)


def test_a_misspelled_hook_fails_check_pending_and_the_plugin_is_skipped(
    installed: list[FakeEntryPoint],
) -> None:
    installed.append(
        FakeEntryPoint(
            "typo",
            module_with_hooks("typo", register_selector=lambda register: None),
            "planner-typo",
        )
    )
    host = _load(allowlist=None)
    (failure,) = host.failures
    assert failure.plugin == "typo"
    assert "register_selector" in failure.error
    assert host.pm.get_plugin("typo") is None


def test_a_hook_that_raises_rolls_back_what_it_registered(installed: list[FakeEntryPoint]) -> None:
    def register_selectors(register: Any) -> None:
        register("half", lambda: None)
        raise RuntimeError("registration failed halfway")

    installed.append(
        FakeEntryPoint(
            "half", module_with_hooks("half", register_selectors=register_selectors), "planner-half"
        )
    )
    host = _load(allowlist=None)
    assert "half" not in host.names("selector")
    assert "registration failed halfway" in host.failures[0].error


def test_the_allowlist_picks_third_party_plugins_by_distribution_or_name(
    installed: list[FakeEntryPoint],
) -> None:
    installed.append(FakeEntryPoint("fancy", selector_plugin("fancy", "m1"), "planner-fancy"))
    installed.append(FakeEntryPoint("other", selector_plugin("other", "m2"), "planner-other"))
    assert _load(allowlist=["planner_fancy"]).names("selector") == [
        "cheapest_pass",
        "fancy",
        "lexicographic",
        "utility",
    ]
    assert _load(allowlist=["other"]).names("selector") == [
        "cheapest_pass",
        "lexicographic",
        "other",
        "utility",
    ]
    assert _load(allowlist=[]).names("selector") == [
        "cheapest_pass",
        "lexicographic",
        "utility",
    ]


def test_the_allowlist_comes_from_the_environment(
    installed: list[FakeEntryPoint], monkeypatch: pytest.MonkeyPatch
) -> None:
    installed.append(FakeEntryPoint("fancy", selector_plugin("fancy"), "planner-fancy"))
    monkeypatch.setenv(plugins.ENV_ALLOWLIST, "")
    assert "fancy" not in _load().names("selector")
    monkeypatch.setenv(plugins.ENV_ALLOWLIST, "planner-fancy")
    assert "fancy" in _load().names("selector")
    monkeypatch.delenv(plugins.ENV_ALLOWLIST)
    assert "fancy" in _load().names("selector")


def test_an_allowlisted_name_that_is_not_installed_is_warned_about() -> None:
    host = PluginHost()
    with pytest.warns(PluginLoadWarning) as caught:
        host.load_entry_points(allowlist=["planner-nowhere"])
    assert any("names 'planner-nowhere', but no installed" in str(w.message) for w in caught)
    assert host.failures == []  # a missing name is a warning, not a broken plugin


def test_a_duplicate_name_is_an_error_naming_both_providers(
    installed: list[FakeEntryPoint],
) -> None:
    installed.append(FakeEntryPoint("clash", selector_plugin("lexicographic"), "planner-clash"))
    with pytest.raises(DuplicatePluginError) as info:
        _load(allowlist=None)
    message = str(info.value)
    assert "selector 'lexicographic' is registered twice" in message
    assert "swarm-planner 0.1.0 (plugin 'lexicographic_selector')" in message
    assert "planner-clash 1.0 (plugin 'clash')" in message


def test_an_unknown_name_lists_what_is_registered_and_hints(host: PluginHost) -> None:
    with pytest.raises(UnknownPluginError) as info:
        host.entry("policy", "heuristc")
    message = str(info.value)
    assert (
        "no policy named 'heuristc'; registered policies: heuristic, joint, mlp, mlp-ar, onnx, table, transformer, value."
        in message
    )
    assert "Did you mean 'heuristic'?" in message
    assert "may not be installed" in message


def test_an_unknown_kind_is_an_error(host: PluginHost) -> None:
    with pytest.raises(UnknownPluginError, match="unknown plugin kind 'model'"):
        host.names("model")


@pytest.mark.parametrize(
    ("name", "factory", "options", "message"),
    [
        ("Bad Name", lambda: None, None, "must be lower case"),
        ("ok", "not callable", None, "is not callable"),
        ("ok", lambda: None, dict, "options must be an attrs class"),
    ],
)
def test_bad_registrations_are_rejected(
    host: PluginHost, name: str, factory: Any, options: Any, message: str
) -> None:
    def register_selectors(register: Any) -> None:
        register(name, factory, options=options)

    with pytest.warns(PluginLoadWarning, match=message):
        assert not host.add_plugin(module_with_hooks("bad", register_selectors=register_selectors))


def test_remove_plugin_forgets_its_names(host: PluginHost) -> None:
    host.add_plugin(selector_plugin("fancy"), provider=Provider("fancy"))
    assert "fancy" in host.names("selector")
    host.remove_plugin("fancy")
    assert "fancy" not in host.names("selector")
    with pytest.raises(UnknownPluginError):
        host.remove_plugin("fancy")


def test_plugins_load_lazily_and_once() -> None:
    plugins.reset_host()
    assert plugins._host is None
    first = plugins.get_host()
    assert plugins.get_host() is first


def test_a_name_from_a_plugin_that_failed_to_load_says_so(
    installed: list[FakeEntryPoint],
) -> None:
    installed.append(
        FakeEntryPoint("capper", ImportError("No module named 'missing_dep'"), "planner-capper")
    )
    host = _load(allowlist=None)
    with pytest.raises(UnknownPluginError) as info:
        host.entry("policy", "capper")
    message = str(info.value)
    assert "installed but failed to load: plugin 'capper' from planner-capper 1.0" in message
    assert "ImportError: No module named 'missing_dep'" in message
    assert "--debug or SWARM_PLANNER_DEBUG=1" in message
    assert "may not be installed" not in message
    assert "Traceback (most recent call last)" in host.failures[0].traceback


def test_the_load_warning_carries_the_traceback_only_in_debug(
    installed: list[FakeEntryPoint], monkeypatch: pytest.MonkeyPatch
) -> None:
    installed.append(FakeEntryPoint("broken", RuntimeError("boom"), "planner-broken"))
    monkeypatch.setenv(plugins.ENV_DEBUG, "0")
    with pytest.warns(PluginLoadWarning) as quiet:
        PluginHost().load_entry_points(allowlist=None)
    assert "Traceback" not in str(quiet[0].message)
    assert "(the traceback: --debug or SWARM_PLANNER_DEBUG=1)" in str(quiet[0].message)
    monkeypatch.setenv(plugins.ENV_DEBUG, "1")
    with pytest.warns(PluginLoadWarning) as loud:
        PluginHost().load_entry_points(allowlist=None)
    assert "Traceback (most recent call last)" in str(loud[0].message)
    assert "RuntimeError: boom" in str(loud[0].message)


def test_a_collision_with_a_builtin_is_a_configuration_error_even_when_not_strict(
    installed: list[FakeEntryPoint],
) -> None:
    installed.append(FakeEntryPoint("clash", selector_plugin("lexicographic"), "planner-clash"))
    with pytest.raises(DuplicatePluginError) as info:
        _load(allowlist=None, strict=False)
    message = str(info.value)
    assert (
        "uninstall one of them, or leave 'planner-clash' out with SWARM_PLANNER_LOAD_PLUGINS"
        in (message)
    )
    # Leaving it out, as the message says, loads the rest.
    assert _load(allowlist=[]).names("selector") == [
        "cheapest_pass",
        "lexicographic",
        "utility",
    ]
