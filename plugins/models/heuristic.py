"""The ``heuristic`` policy: today's hand-written rule, scored as a one-hot distribution.

A one-hot distribution lets the rule be evaluated with the same metrics as learned policies.
"""

from __future__ import annotations

from swarm_planner import hookimpl
from swarm_planner.core.heuristic import HeuristicOptions, HeuristicRules
from swarm_planner.core.hookspecs import Register


@hookimpl
def register_policies(register: Register) -> None:
    register("heuristic", HeuristicRules.from_options, options=HeuristicOptions)
