"""A kernel that answers an outcome with a key the contract does not have (``verdict``)."""

import json

outcome = {"verified": True, "status": "success", "duration_ms": 10, "cost_usd": 0.1}
print(json.dumps({**outcome, "verdict": "pass"}))
