"""The embedded world's truth is frozen while outcome policies are measured against it.

The bench targets (docs/bench.md) compare learned policies with today's rule on this world; if
its outcomes moved, the figures would measure world design instead of learning. This test pins a
digest of every outcome field over a fixed set of issues, job types, actions, attempts and salts:
a change to ``sim/world.py`` (or to anything it draws from) that moves any outcome fails here.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from swarm_planner.core.action_space import ActionSpace
from swarm_planner.sim.issues import draw_issue
from swarm_planner.sim.world import World

FROZEN_DIGEST = "e8767ada4ce2ac2bd47cffaa6833800da1e99d123a243032b3cf16d93b645173"


def _outcome_digest() -> tuple[str, int]:
    rng = np.random.default_rng(20261201)
    space = ActionSpace()
    digest = hashlib.sha256()
    count = 0
    for seed in (0, 1):
        world = World(seed)
        for number in range(1, 61):
            draw = draw_issue(rng, number)
            actions = space.valid_actions(draw.job_type)
            for action in actions[:: max(1, len(actions) // 12)]:
                for attempt, salt in ((0, ""), (1, "bench")):
                    out = world.run_action(
                        draw.issue, draw.job_type, action, attempt=attempt, salt=salt
                    )
                    record = [
                        seed,
                        draw.issue.issue_id,
                        action.text,
                        attempt,
                        salt,
                        out.status,
                        [list(g) for g in out.gates],
                        list(out.fail_codes),
                        out.duration_ms,
                        out.cost_usd,
                        out.tokens_in,
                        out.tokens_out,
                        [[r.solved, r.timed_out, round(r.minutes, 9)] for r in out.candidates],
                    ]
                    digest.update(json.dumps(record).encode())
                    count += 1
    return digest.hexdigest(), count


def test_world_outcomes_are_frozen() -> None:
    digest, count = _outcome_digest()
    assert count > 2_000
    assert digest == FROZEN_DIGEST, (
        "the embedded world's outcomes changed; its truth is frozen while outcome policies are "
        "measured against it (see docs/bench.md)"
    )
