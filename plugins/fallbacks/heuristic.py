"""The ``heuristic`` fallback: the rule table decides when the model abstains or fails."""

from __future__ import annotations

from swarm_planner import hookimpl
from swarm_planner.core.heuristic import HeuristicOptions, HeuristicRules
from swarm_planner.core.hookspecs import Register


@hookimpl
def register_fallbacks(register: Register) -> None:
    register("heuristic", HeuristicRules.from_options, options=HeuristicOptions)
