"""The plugin host: entry points → pluggy → strict name registries, one per kind.

Why this shape:

- Built-ins are plugins registered through the project's own ``swarm_planner`` entry points, so the
  path third-party packages take is the path every test of the built-ins exercises.
- Each entry point is imported and registered on its own: one broken plugin is reported (name,
  distribution, error; the traceback with ``SWARM_PLANNER_DEBUG=1``) and skipped;
  ``SWARM_PLANNER_STRICT_PLUGINS=1`` makes it fatal. A plugin whose hook names are misspelled
  fails ``check_pending()`` and is treated as broken. Asking for a name that no loaded plugin
  registered says which plugins failed to load, since the name may be theirs.
- A name registered twice (by two packages, or by a package and a built-in) is a configuration
  error, as in datasette, strict or not: the host refuses to start and names both providers and
  how to leave one out. Picking "the first" would silently run code the user did not choose.
- ``SWARM_PLANNER_LOAD_PLUGINS=a,b`` loads only those third-party plugins (distribution or entry
  point names); set and empty, it loads the built-ins only.
- Registries are strict: a duplicate name is an error naming both providers; an unknown name is an
  error listing the registered names of that kind and hinting at a missing package.
- Each plugin's registry hooks are called as soon as it is registered, with a ``register`` bound
  to that plugin, so every entry knows which distribution provided it.
"""

from __future__ import annotations

import difflib
import importlib.metadata as md
import os
import re
import traceback
import types
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs
import pluggy

from swarm_planner.core import hookspecs
from swarm_planner.core.errors import (
    ConfigError,
    ContractError,
    DuplicatePluginError,
    PluginLoadError,
    UnknownPluginError,
)
from swarm_planner.core.jsonconv import structure

ENTRY_POINT_GROUP = "swarm_planner"
DISTRIBUTION = "swarm-planner"
ENV_STRICT = "SWARM_PLANNER_STRICT_PLUGINS"
ENV_ALLOWLIST = "SWARM_PLANNER_LOAD_PLUGINS"
ENV_DEBUG = "SWARM_PLANNER_DEBUG"

PluginKind = Literal["encoder", "policy", "sampler", "selector", "fallback", "executor"]

KINDS: dict[str, str] = {
    "encoder": "register_encoders",
    "policy": "register_policies",
    "sampler": "register_samplers",
    "selector": "register_selectors",
    "fallback": "register_fallbacks",
    "executor": "register_executors",
}
"""Plugin kind → the registry hook that fills it."""

_PLURAL = {
    "encoder": "encoders",
    "policy": "policies",
    "sampler": "samplers",
    "selector": "selectors",
    "fallback": "fallbacks",
    "executor": "executors",
}

FROM_ENV = "<from SWARM_PLANNER_LOAD_PLUGINS>"
"""Default of :meth:`PluginHost.load_entry_points`: read the allowlist from the environment."""

_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")


class PluginLoadWarning(UserWarning):
    """A plugin failed to load and was skipped."""


@attrs.frozen
class Provider:
    """Where a plugin came from: the pluggy plugin name, its module and distribution if known."""

    plugin: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None

    def describe(self) -> str:
        if self.distribution is None:
            return f"plugin {self.plugin!r} (no distribution)"
        return f"{self.distribution} {self.version} (plugin {self.plugin!r})"


@attrs.frozen
class PluginEntry:
    """One registered name of one kind."""

    kind: str
    name: str
    factory: Callable[..., Any]
    options: type | None
    provider: Provider

    @property
    def module(self) -> str:
        """The module of the plugin that registered the name (not of the factory it points to)."""
        return self.provider.module or getattr(self.factory, "__module__", None) or "?"

    def describe(self) -> str:
        return f"{self.provider.describe()}, {self.module}"

    def listing(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "distribution": self.provider.distribution,
            "version": self.provider.version,
            "module": self.module,
            "plugin": self.provider.plugin,
        }


@attrs.frozen
class PluginFailure:
    """A plugin that was skipped, why, and the traceback of the error."""

    plugin: str
    distribution: str | None
    version: str | None
    error: str
    traceback: str = ""

    def describe(self) -> str:
        where = f" from {self.distribution} {self.version}" if self.distribution else ""
        return f"plugin {self.plugin!r}{where} failed to load: {self.error}"


def debug_enabled() -> bool:
    """``SWARM_PLANNER_DEBUG=1`` (``planner --debug`` sets it): show tracebacks."""
    return _env_flag(ENV_DEBUG)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


class PluginHost:
    """Owns the pluggy manager and the per-kind registries."""

    def __init__(self, *, strict: bool | None = None) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.strict = _env_flag(ENV_STRICT) if strict is None else strict
        self.failures: list[PluginFailure] = []
        self._entries: dict[str, dict[str, PluginEntry]] = {kind: {} for kind in KINDS}
        self._providers: dict[str, Provider] = {}

    # -- loading ------------------------------------------------------------------------------

    def load_entry_points(self, allowlist: Iterable[str] | str | None = FROM_ENV) -> None:
        """Load every ``swarm_planner`` entry point (built-ins always; others per allowlist).

        ``allowlist``: names of distributions or entry points to load besides the built-ins;
        ``None`` loads everything installed; by default it is read from
        ``SWARM_PLANNER_LOAD_PLUGINS`` (unset: everything; empty: built-ins only).
        """
        if isinstance(allowlist, str):
            raw = os.environ.get(ENV_ALLOWLIST)
            allowlist = None if raw is None else [n for n in raw.split(",") if n.strip()]
        allowed = None if allowlist is None else {_normalise(n.strip()) for n in allowlist}
        seen: set[str] = set()
        eps = sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value))
        # Built-ins first, so a third-party duplicate is the one reported as the newcomer.
        eps.sort(key=lambda e: _dist_name(e) != DISTRIBUTION)
        for ep in eps:
            dist = _dist_name(ep)
            if dist != DISTRIBUTION and allowed is not None:
                keys = {_normalise(ep.name), _normalise(dist or "")}
                if not keys & allowed:
                    continue
                seen |= keys & allowed
            provider = Provider(ep.name, dist, _dist_version(ep))
            if ep.name in self._providers:
                continue  # the same distribution seen twice on sys.path
            try:
                plugin = ep.load()
            except Exception as exc:  # any import failure of third-party code
                self._fail(provider, exc)
                continue
            self.add_plugin(plugin, provider=provider)
        if allowed:
            for missing in sorted(allowed - seen):
                warnings.warn(
                    f"{ENV_ALLOWLIST} names {missing!r}, but no installed distribution or entry "
                    f"point of group {ENTRY_POINT_GROUP!r} has that name",
                    PluginLoadWarning,
                    stacklevel=2,
                )

    def add_plugin(
        self,
        plugin: object,
        *,
        name: str | None = None,
        provider: Provider | None = None,
    ) -> bool:
        """Register one plugin object (module or instance) and collect its registrations.

        Returns False when it failed and was skipped. Used by entry-point loading and by tests.
        """
        provider = provider or Provider(name or _object_name(plugin))
        if provider.module is None:
            provider = attrs.evolve(provider, module=_module_name(plugin))
        added: list[tuple[str, str]] = []
        try:
            self.pm.register(plugin, name=provider.plugin)
        except Exception as exc:
            self._fail(provider, exc)
            return False
        try:
            self.pm.check_pending()
            for kind, hook_name in KINDS.items():
                for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                    if impl.plugin is plugin:
                        impl.function(register=self._register_fn(kind, provider, added))
        except DuplicatePluginError:
            self._rollback(plugin, added)
            raise
        except Exception as exc:
            self._rollback(plugin, added)
            self._fail(provider, exc)
            return False
        self._providers[provider.plugin] = provider
        return True

    def remove_plugin(self, name: str) -> None:
        """Unregister a plugin and every name it registered (tests use this to clean up)."""
        plugin = self.pm.get_plugin(name)
        if plugin is None:
            raise UnknownPluginError(f"no plugin named {name!r} is registered")
        self.pm.unregister(plugin)
        for table in self._entries.values():
            for key in [k for k, e in table.items() if e.provider.plugin == name]:
                del table[key]
        self._providers.pop(name, None)

    def _rollback(self, plugin: object, added: list[tuple[str, str]]) -> None:
        for kind, entry_name in added:
            self._entries[kind].pop(entry_name, None)
        if self.pm.is_registered(plugin):
            self.pm.unregister(plugin)

    def _fail(self, provider: Provider, exc: BaseException) -> None:
        failure = PluginFailure(
            provider.plugin,
            provider.distribution,
            provider.version,
            f"{type(exc).__name__}: {exc}",
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        )
        if self.strict:
            raise PluginLoadError(failure.describe()) from exc
        self.failures.append(failure)
        shown = (
            f"\n{failure.traceback.rstrip()}"
            if debug_enabled()
            else f" (the traceback: --debug or {ENV_DEBUG}=1)"
        )
        warnings.warn(
            f"{failure.describe()}; skipped (set {ENV_STRICT}=1 to make this fatal){shown}",
            PluginLoadWarning,
            stacklevel=3,
        )

    def _register_fn(
        self, kind: str, provider: Provider, added: list[tuple[str, str]]
    ) -> hookspecs.Register:
        def register(name: str, factory: Any, *, options: type | None = None) -> None:
            if not isinstance(name, str) or not _NAME.match(name):
                raise ValueError(
                    f"{kind} name {name!r} must be lower case letters, digits, '_' or '-'"
                )
            if not callable(factory):
                raise TypeError(f"{kind} {name!r}: factory {factory!r} is not callable")
            if options is not None and not attrs.has(options):
                raise TypeError(f"{kind} {name!r}: options must be an attrs class")
            entry = PluginEntry(kind, name, factory, options, provider)
            existing = self._entries[kind].get(name)
            if existing is not None:
                newcomer = provider.distribution or provider.plugin
                raise DuplicatePluginError(
                    f"{kind} {name!r} is registered twice: by {existing.describe()} "
                    f"and by {entry.describe()}. A name must be unique; uninstall one of them, "
                    f"or leave {newcomer!r} out with {ENV_ALLOWLIST} (a comma-separated list of "
                    "the third-party plugins to load)"
                )
            self._entries[kind][name] = entry
            added.append((kind, name))

        return register

    # -- lookup -------------------------------------------------------------------------------

    def names(self, kind: str) -> list[str]:
        return sorted(self._table(kind))

    def entry(self, kind: str, name: str) -> PluginEntry:
        table = self._table(kind)
        if name in table:
            return table[name]
        plural = _PLURAL[kind]
        registered = ", ".join(sorted(table)) or "(none)"
        close = difflib.get_close_matches(name, list(table), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        if self.failures:
            failed = "; ".join(f.describe() for f in self.failures)
            why = (
                f" It may come from a plugin that is installed but failed to load: {failed} "
                f"(the traceback: --debug or {ENV_DEBUG}=1)."
            )
        else:
            why = (
                " If it comes from a separate package, that package may not be installed or may "
                f"be excluded by {ENV_ALLOWLIST} (see `planner list-plugins`)."
            )
        raise UnknownPluginError(
            f"no {kind} named {name!r}; registered {plural}: {registered}.{hint}{why}"
        )

    def parse_options(
        self, kind: str, name: str, options: Mapping[str, Any] | None, *, path: str
    ) -> Any:
        """Structure config options for a plugin strictly; errors name ``path`` and the key."""
        entry = self.entry(kind, name)
        options = options or {}
        if entry.options is None:
            if options:
                raise ConfigError(path, [f"{path}: {kind} {name!r} takes no options"])
            return None
        try:
            return structure(dict(options), entry.options, source=path, root=path)
        except ContractError as exc:
            raise ConfigError(exc.source, exc.problems) from exc

    def create(
        self,
        kind: str,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        path: str = "",
        space: Any = None,
    ) -> Any:
        """Build the plugin ``name`` of ``kind`` with (strictly checked) options; with
        ``space`` (an ActionSpace), options that name actions are checked against it too
        (an options class's ``problems_in(space)``)."""
        entry = self.entry(kind, name)
        where = path or f"{kind}.{name}.options"
        parsed = self.parse_options(kind, name, options, path=where)
        check = getattr(parsed, "problems_in", None)
        if space is not None and callable(check):
            problems = [f"{where}.{p}" for p in check(space)]
            if problems:
                raise ConfigError(where, problems)
        return entry.factory() if entry.options is None else entry.factory(parsed)

    def entries(self) -> list[PluginEntry]:
        """Every registered entry, sorted by kind then name (a stable listing)."""
        return sorted(
            (e for table in self._entries.values() for e in table.values()),
            key=lambda e: (e.kind, e.name),
        )

    def _table(self, kind: str) -> dict[str, PluginEntry]:
        if kind not in self._entries:
            raise UnknownPluginError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}")
        return self._entries[kind]


def _dist_name(ep: md.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return None if dist is None else _normalise(dist.metadata["Name"])


def _dist_version(ep: md.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return None if dist is None else str(dist.version)


def _module_name(plugin: object) -> str:
    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    return type(plugin).__module__


def _object_name(plugin: object) -> str:
    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    return f"{type(plugin).__name__}-{id(plugin):x}"


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide host, loaded on first use (lazily, once)."""
    global _host
    if _host is None:
        host = PluginHost()
        host.load_entry_points()
        _host = host
    return _host


def reset_host(host: PluginHost | None = None) -> None:
    """Forget the process-wide host (or install ``host``); the next ``get_host()`` reloads."""
    global _host
    _host = host
