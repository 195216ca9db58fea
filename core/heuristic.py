"""The field's hand-written rule, as data: risk → topology and candidates, budgets uncapped.

One class serves as the ``heuristic`` policy (``predict``) and the ``heuristic`` fallback
(``decide``), and the kernel path uses it when it needs a baseline; the table is configurable per
deployment through the plugins' options.
"""

from __future__ import annotations

from typing import Any

import attrs

from swarm_planner.core.action_space import NA, ActionSpace, Bin, JointAction
from swarm_planner.core.contracts import RISKS, PlannerInput, check_input
from swarm_planner.core.jsonconv import json_field, validator
from swarm_planner.core.protocols import ActionDistribution

# A rule table built in code is checked when it is built, so that deciding never meets a
# non-text swarm or a bool for a bin.
_text = validator(lambda v: None if isinstance(v, str) and v else f"{v!r} is not a swarm id")
_bin = validator(
    lambda v: (
        None
        if v == NA or (isinstance(v, int) and not isinstance(v, bool))
        else f"{v!r} is not a bin (an integer or 'NA')"
    )
)


@attrs.frozen
class RuleAction:
    """What the rule runs for one risk level (bins; ``NA`` = no cap)."""

    swarm_id: str = json_field(validator=_text)
    max_candidates: Bin = json_field(default=1, validator=_bin)
    max_minutes: Bin = json_field(default=NA, validator=_bin)
    max_iterations: Bin = json_field(default=NA, validator=_bin)

    def action(self) -> JointAction:
        return JointAction(
            self.swarm_id, self.max_candidates, self.max_minutes, self.max_iterations
        )


def _default_rules() -> dict[str, RuleAction]:
    return {
        "critical": RuleAction("speculate_vote", 3),
        "high": RuleAction("speculate_vote", 2),
    }


def _check_risks(rules: Any) -> str | None:
    if not isinstance(rules, dict):
        return f"expected an object of risk level to rule, got {type(rules).__name__}"
    if not all(isinstance(rule, RuleAction) for rule in rules.values()):
        return "each rule is a RuleAction"
    unknown = sorted(set(rules) - set(RISKS))
    if unknown:
        return f"unknown risk level(s) {unknown}; allowed: {'|'.join(RISKS)}"
    return None


@attrs.frozen
class HeuristicOptions:
    """``rules``: risk → action; risks not listed get ``default``."""

    rules: dict[str, RuleAction] = json_field(
        factory=_default_rules, validator=validator(_check_risks)
    )
    default: RuleAction = json_field(
        factory=lambda: RuleAction("serial_handoff", 1),
        validator=validator(lambda v: None if isinstance(v, RuleAction) else "not a RuleAction"),
    )

    def problems_in(self, space: ActionSpace) -> list[str]:
        """Each action of the table that the space has no room for (``rules.high: ...``): a
        swarm it does not have, a bin it does not have, or an action no job type allows."""
        out = []
        entries = [(f"rules.{risk}", rule) for risk, rule in sorted(self.rules.items())]
        for where, rule in [*entries, ("default", self.default)]:
            action = rule.action()
            broken = space.violations(action, "code")
            if broken and any(not space.violations(action, j) for j in ("fab-world", "other")):
                continue  # valid for some job type: decided per input
            if broken:
                out.append(
                    f"{where}: {action.text} is not an action of planner.action_space: {broken[0]}"
                )
        return out


@attrs.frozen
class HeuristicRules:
    """critical → speculate_vote ×3, high → speculate_vote ×2, else serial_handoff ×1 (defaults)."""

    options: HeuristicOptions = attrs.field(factory=HeuristicOptions)

    @classmethod
    def from_options(cls, options: HeuristicOptions) -> HeuristicRules:
        return cls(options)

    def decide(self, planner_input: PlannerInput) -> JointAction:
        """The rule's action, checked against the input's own action space and job type."""
        check_input(planner_input)
        rule = self.options.rules.get(planner_input.issue.dk_risk, self.options.default)
        return planner_input.action_space.check(rule.action(), planner_input.job_type)

    def predict(self, planner_input: PlannerInput) -> ActionDistribution:
        """The rule as a one-hot distribution, so it is evaluated like any learned policy."""
        chosen = self.decide(planner_input)  # checks the input first
        actions = planner_input.action_space.valid_actions(planner_input.job_type)
        return ActionDistribution.one_hot(actions, chosen)
