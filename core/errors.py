"""Every error the planner raises on purpose, so callers can catch the family at once."""

from __future__ import annotations


class PlannerError(Exception):
    """Base class of the planner's deliberate errors."""


class ContractError(PlannerError, ValueError):
    """A JSON document does not match its contract.

    ``problems`` holds one ``"json.path: what is wrong"`` line per bad field, so that a report can
    list every problem of a document at once instead of the first only.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class ConfigError(ContractError):
    """The ``planner:`` section of a kernel config is wrong (unknown key, bad value, bad name)."""


class InferenceError(PlannerError):
    """A model failed to answer, or answered something that is not a distribution over the
    valid actions (NaN, mass on an invalid action). Not bad input: the model is at fault; the
    kernel path falls back."""


class InvalidActionError(PlannerError, ValueError):
    """An action breaks the validity rules of its action space."""


class PluginError(PlannerError):
    """Base class of plugin-system errors."""


class DuplicatePluginError(PluginError):
    """Two providers registered the same name for the same kind of plugin."""


class UnknownPluginError(PluginError, LookupError):
    """A name was asked for that no loaded plugin registered."""


class PluginLoadError(PluginError):
    """A plugin failed to import or to register; fatal only in strict mode."""
