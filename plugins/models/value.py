"""The ``value`` policy: decides by the expected utility of every valid action.

A value bundle (``planner train --model value`` on an outcome dataset) predicts, for each valid
action, P(pass), the expected wall time and the expected cost; this policy serves it with
onnxruntime (never torch) and weighs them with :class:`UtilityWeights` set in config, so moving
along the cost/pass-rate frontier needs no re-training::

    planner:
      model: {type: value, path: models/value, options: {cost_weight: 0.3}}

Its answer is a distribution like every policy's: ``softmax(utility / decision_temperature)``
over the valid actions. The confidence is the best action's share, so when another action's
expected utility is within a few hundredths the policy is not sure, and below the kernel's
threshold it abstains to the fallback (the best action is not clearly best).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import attrs
import numpy as np

from swarm_planner import hookimpl
from swarm_planner.core.bundle import BundleError, load_served
from swarm_planner.core.contracts import PlannerInput, check_input, no_valid_action
from swarm_planner.core.errors import InferenceError
from swarm_planner.core.hookspecs import Register
from swarm_planner.core.jsonconv import json_field, validator
from swarm_planner.core.protocols import ActionDistribution, ActionEstimates
from swarm_planner.core.utility import UtilityWeights, utility_distribution
from swarm_planner.plugins.models.bundled import check_space, load_encoder

REQUIRED_FILES = ("model.onnx", "config.json", "action_space.json", "calibration.json")
OUTPUTS = ("p_pass", "duration_ms", "cost_usd")
_CHUNK = 128


@attrs.frozen
class ValueOptions:
    path: str
    pass_value: float = 1.0
    cost_weight: float = 0.2
    time_weight: float = 0.0
    decision_temperature: float = json_field(
        default=0.02, validator=validator(lambda v: None if v > 0 else f"{v!r} is not above 0")
    )
    """Utility units: two actions this far apart in expected utility split about 73/27."""

    def weights(self) -> UtilityWeights:
        return UtilityWeights(self.pass_value, self.cost_weight, self.time_weight)


class ValuePolicy:
    """Serves a value bundle; ``weights`` may be changed per call of :meth:`decide_with`."""

    def __init__(self, options: ValueOptions) -> None:
        import onnxruntime as ort

        self.options = options
        self.weights = options.weights()
        self.bundle = load_served(options.path, required=REQUIRED_FILES)
        self.path = self.bundle.path
        if self.bundle.model_type != "value":
            raise BundleError(
                f"{self.path}: a {self.bundle.model_type} bundle, not a value bundle (serve it "
                "with type onnx)"
            )
        if self.bundle.validation is None or not self.bundle.validation.passed:
            raise BundleError(f"{self.path}: validation.json says the export did not pass")
        self.encoder = load_encoder(self.bundle)
        self.space = self.bundle.space
        self._lock = threading.Lock()
        session_options = ort.SessionOptions()
        session_options.intra_op_num_threads = 1
        session_options.inter_op_num_threads = 1
        session_options.log_severity_level = 4
        try:
            self.session = ort.InferenceSession(
                str(self.path / "model.onnx"), session_options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise BundleError(f"{self.path / 'model.onnx'}: cannot be loaded: {exc}") from exc
        names = {i.name for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if names != {"ids", "weights", "mask"} or not set(OUTPUTS) <= outputs:
            raise BundleError(
                f"{self.path / 'model.onnx'}: inputs {sorted(names)} and outputs "
                f"{sorted(outputs)} are not those of a value bundle"
            )

    def estimates_batch(self, inputs: Sequence[PlannerInput]) -> list[ActionEstimates]:
        for x in inputs:
            check_input(x)
            check_space(x, self.space, self.path)
        out: list[ActionEstimates] = []
        for start in range(0, len(inputs), _CHUNK):
            chunk = list(inputs[start : start + _CHUNK])
            masks = np.stack([self.space.job_mask(x.job_type) for x in chunk])
            for x, m in zip(chunk, masks, strict=True):
                if not m.any():
                    raise no_valid_action(x)
            batch = self.encoder.encode_batch(chunk, masks=masks)
            ids, weights = batch.padded()
            try:
                p, d, c = self.session.run(
                    list(OUTPUTS), {"ids": ids, "weights": weights, "mask": masks}
                )
            except Exception as exc:
                raise InferenceError(f"{self.path}: the value model failed: {exc}") from exc
            for i, x in enumerate(chunk):
                m = masks[i]
                pi, di, ci = (np.asarray(a[i][m], dtype=np.float64) for a in (p, d, c))
                if not (
                    np.all(np.isfinite(pi))
                    and np.all((pi >= 0) & (pi <= 1))
                    and np.all(np.isfinite(di))
                    and np.all(di >= 0)
                    and np.all(np.isfinite(ci))
                    and np.all(ci >= 0)
                ):
                    raise InferenceError(f"{self.path}: the value model answered out of range")
                out.append(ActionEstimates(self.space.valid_actions(x.job_type), pi, di, ci))
        return out

    def estimates(self, planner_input: PlannerInput) -> ActionEstimates:
        return self.estimates_batch([planner_input])[0]

    def distribution(
        self, estimates: ActionEstimates, weights: UtilityWeights | None = None
    ) -> ActionDistribution:
        """The decision over the valid actions for these estimates and weights."""
        w = weights or self.weights
        utility = np.asarray(
            w.of(estimates.p_pass, estimates.cost_usd, estimates.duration_ms), dtype=np.float64
        )
        return utility_distribution(  # type: ignore[no-any-return]
            estimates.actions, utility, self.options.decision_temperature
        )

    def predict(self, planner_input: PlannerInput) -> ActionDistribution:
        return self.distribution(self.estimates(planner_input))


def _build(options: ValueOptions) -> ValuePolicy:
    return ValuePolicy(options)


@hookimpl
def register_policies(register: Register) -> None:
    register("value", _build, options=ValueOptions)
