"""Canonical JSON and the hashes built on it.

The dataset hash and ``input_hash`` must be identical on every machine and every rebuild, so the
encoding is fixed here once: sorted keys, ``(",", ":")`` separators, UTF-8, no NaN.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Serialise ``value`` (plain JSON data) the one way every hash in the project uses."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def sha256_hex(text: str) -> str:
    """Hex sha256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def input_hash(planner_input_json: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a planner_input without ``created_at`` (docs/formats.md).

    Two inputs built at different times for the same situation hash the same, which is what lets
    recorded decisions be joined back to their inputs.
    """
    body = {k: v for k, v in planner_input_json.items() if k != "created_at"}
    return sha256_hex(canonical_json(body))
