"""Disturbances of the embedded world: the days a kernel's world is not calm.

Off by default (every share 0): the world's outcomes are then exactly its frozen truth
(tests/test_world_frozen.py pins them), so switching a disturbance on is the only way to see
one. When on, each is drawn from its own seeded stream, after the calm outcome was drawn, so a
disturbed run differs from its calm twin only where a disturbance struck:

- ``toolchain_outage``: the share of dispatches whose toolchain is down; the run fails at the
  ``build`` gate with ``toolchain_unavailable``, whatever the action;
- ``queue_pressure``: busy workcells leave each candidate this share less of its minutes cap, so
  tight caps time out more often;
- ``flaky_gates``: the share of passing runs that a flaky ``e2e`` gate fails anyway
  (``flaky_selector``); a second candidate of a vote is a second chance;
- ``system_shift``: how far the recorded ``system_state`` moves towards pressure (busier bins,
  lower toolchain health, toolchains missing), so that a planner sees what the kernel saw.
"""

from __future__ import annotations

import attrs

from swarm_planner.core.jsonconv import at_most, json_field, non_negative


@attrs.frozen
class Disturbances:
    """How disturbed the world is (all 0: calm, the frozen truth)."""

    toolchain_outage: float = json_field(default=0.0, validator=[non_negative, at_most(1.0)])
    queue_pressure: float = json_field(default=0.0, validator=[non_negative, at_most(0.9)])
    flaky_gates: float = json_field(default=0.0, validator=[non_negative, at_most(1.0)])
    system_shift: float = json_field(default=0.0, validator=[non_negative, at_most(1.0)])

    @property
    def active(self) -> bool:
        return any(
            (self.toolchain_outage, self.queue_pressure, self.flaky_gates, self.system_shift)
        )


CALM = Disturbances()
