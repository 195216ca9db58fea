"""docs/formats.md documents every field of every record we read or write.

Each record has a ``<!-- record: module.Class -->`` marker in the page; the text after it (up
to the next marker that is followed by text) must name each of the record's JSON keys in
backticks. A record added to the contracts, the kernel files or the config without a marker
fails here.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import attrs
import pytest

from swarm_planner.core import action_space, config, contracts, kernel_files
from swarm_planner.core.jsonconv import json_key

DOC = Path(__file__).parent.parent / "docs" / "formats.md"
MARKER = re.compile(r"<!-- record: ([\w.]+) -->")

# Records whose JSON is not their attrs fields: the keys they read and write.
JSON_SHAPES = {
    "swarm_planner.core.action_space.ValidityRule": [
        json_key(f) for f in attrs.fields(action_space._RuleDocument)
    ],
}


def _sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    pieces = MARKER.split(text)
    sections: dict[str, str] = {}
    waiting: list[str] = []
    for name, body in zip(pieces[1::2], pieces[2::2], strict=True):
        waiting.append(name)
        if body.strip():
            for record in waiting:
                sections[record] = body
            waiting = []
    assert not waiting, f"markers without text after them: {waiting}"
    return sections


def _json_keys(path: str) -> list[str]:
    if path in JSON_SHAPES:
        return JSON_SHAPES[path]
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return [json_key(f) for f in attrs.fields(cls) if f.init]


SECTIONS = _sections()


@pytest.mark.parametrize("record", sorted(SECTIONS))
def test_every_json_key_of_the_record_is_named_in_its_section(record: str) -> None:
    body = SECTIONS[record]
    missing = [key for key in _json_keys(record) if f"`{key}`" not in body]
    assert missing == [], f"{record}: {missing} not documented in docs/formats.md"


@pytest.mark.parametrize("module", [contracts, kernel_files, config, action_space])
def test_every_public_record_of_the_module_has_a_section(module: object) -> None:
    records = {
        f"{obj.__module__}.{name}"
        for name, obj in vars(module).items()
        if inspect.isclass(obj)
        and attrs.has(obj)
        and not name.startswith("_")
        and obj.__module__ == module.__name__  # type: ignore[attr-defined]
    }
    undocumented = sorted(r for r in records - set(SECTIONS) if r not in NOT_FILE_FORMATS)
    assert undocumented == []


NOT_FILE_FORMATS = {
    # In-memory values, never a file or a JSON record of their own.
    "swarm_planner.core.action_space.JointAction",
    "swarm_planner.core.action_space.Constraint",
}


def test_the_dataset_row_and_the_markers_point_at_real_records() -> None:
    for record in SECTIONS:
        _json_keys(record)  # imports it: a marker naming a renamed class fails
    assert "swarm_planner.core.dataset.DatasetRow" in SECTIONS


def test_the_docs_never_point_into_the_developers_folder() -> None:
    docs = [*Path(DOC.parent).glob("*.md"), DOC.parent.parent / "README.md"]
    for page in docs:
        text = page.read_text(encoding="utf-8")
        assert "CONTRACTS" + ".md" not in text and "../shared/" not in text, page
