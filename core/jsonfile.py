"""Reading a JSON document from disk with an error that names the file and the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json_document(path: Path, error: type[Exception]) -> Any:
    """The parsed JSON of ``path``; an unreadable or malformed file raises ``error``."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise error(f"{path}: malformed JSON: {exc.msg} at line {exc.lineno}") from exc
