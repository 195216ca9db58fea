"""Hand-written kernel archive documents shared by the tests (pytest puts tests/ on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

START = "2025-03-01T12:00:00Z"
START_MS = 1740830400000


def manifest(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "workcell_id": "wc-manifest",
        "job_type": "code",
        "issue": {"id": "7", "tags": ["api", "auth"]},
        "speculate_mode": False,
        "control": {"speculate_parallelism": 1},
    }
    doc.update(extra)
    return doc


def proof(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "workcell_id": "wc-proof",
        "status": "success",
        "metadata": {
            "started_at": START,
            "completed_at": "2025-03-01T12:10:00Z",
            "duration_ms": 600000,
            "cost_usd": 0.42,
            "tokens_used": 12000,
        },
        "verification": {
            "all_passed": True,
            "gates": {"pytest": {"passed": True, "score": 1.0, "fail_codes": []}},
            "blocking_failures": [],
        },
    }
    doc.update(extra)
    return doc


def write_run(root: Path, name: str, files: dict[str, Any]) -> Path:
    directory = root / ".cyntra" / "archives" / name
    directory.mkdir(parents=True, exist_ok=True)
    for filename, content in files.items():
        text = content if isinstance(content, str) else json.dumps(content)
        (directory / filename).write_text(text)
    return directory
