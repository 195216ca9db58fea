"""Property tests: whatever the bytes, JSON or records, nothing but the project's own errors
escapes the readers, the archive reader, the config loader or the kernel path."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarm_planner.core.archives import read_root
from swarm_planner.core.canonical import canonical_json
from swarm_planner.core.config import load_config
from swarm_planner.core.contracts import PlannerInput, dump, load
from swarm_planner.core.documents import DocumentError, parse_json, parse_yaml
from swarm_planner.core.errors import ConfigError, ContractError, InvalidActionError

FIXTURES = Path(__file__).parent / "fixtures"
TINY = json.loads((FIXTURES / "tiny_planner_input.json").read_text())

# Text with everything JSON can carry, lone surrogates included.
TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=20,
)

EXAMPLES = int(os.environ.get("SWARM_PLANNER_FUZZ_EXAMPLES", "150"))
"""Examples per property (raise it for a deep run: SWARM_PLANNER_FUZZ_EXAMPLES=5000)."""
FUZZ = settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow])


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=bool(value) and not isinstance(value, bool)).encode(
        "utf-8", "surrogatepass"
    )


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_json_or_a_document_error(data: bytes) -> None:
    try:
        value = parse_json(data, "fuzz.json")
    except DocumentError as exc:
        assert exc.problem  # refused with a reason
        return
    # Whatever was accepted survives the one hash encoding unchanged.
    assert json.loads(canonical_json(value)) == value


@FUZZ
@given(JSON_VALUES)
def test_arbitrary_json_values_are_read_or_refused_by_path(value: Any) -> None:
    try:
        parsed = parse_json(_dumps(value), "fuzz.json")
    except DocumentError as exc:
        assert exc.problem
        return
    canonical_json(parsed)


@FUZZ
@given(st.text(max_size=200))
def test_arbitrary_text_is_yaml_or_a_document_error(text: str) -> None:
    try:
        value = parse_yaml(text, "fuzz.yaml")
    except DocumentError as exc:
        assert exc.problem
        return
    assert json.loads(json.dumps(value, allow_nan=False)) == value  # plain JSON data


@FUZZ
@given(st.one_of(st.binary(max_size=200), JSON_VALUES.map(lambda v: {"planner": v})))
def test_the_config_loader_raises_only_config_errors(content: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "kernel.yaml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(_dumps(content))  # JSON is YAML
        try:
            load_config(path)
        except ConfigError as exc:
            assert exc.problems


ARCHIVE_FILE = st.one_of(
    st.binary(max_size=120),
    JSON_VALUES.map(_dumps),
    st.fixed_dictionaries(
        {"status": SCALARS, "metadata": JSON_VALUES, "verification": JSON_VALUES}
    ).map(_dumps),
    st.fixed_dictionaries({"job_type": SCALARS, "issue": JSON_VALUES, "planner": JSON_VALUES}).map(
        _dumps
    ),
)


@settings(
    max_examples=max(20, EXAMPLES // 3), suppress_health_check=[HealthCheck.too_slow], deadline=None
)
@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "proof.json": ARCHIVE_FILE,
                "manifest.json": ARCHIVE_FILE,
                "rollout.json": ARCHIVE_FILE,
            },
        ),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.one_of(st.binary(max_size=60), JSON_VALUES.map(_dumps)), max_size=4),
)
def test_the_archive_reader_never_raises_and_accounts_for_every_folder(
    runs: list[dict[str, bytes]], issue_lines: list[bytes]
) -> None:
    root = Path(tempfile.mkdtemp())
    try:
        archives = root / ".cyntra" / "archives"
        for i, files in enumerate(runs):
            folder = archives / f"wc-{i}"
            folder.mkdir(parents=True)
            for name, content in files.items():
                (folder / name).write_bytes(content)
        (root / ".beads").mkdir()
        (root / ".beads" / "issues.jsonl").write_bytes(b"\n".join(issue_lines))
        kernel = read_root(root)
        assert kernel.report.runs_read + kernel.report.skipped_count >= len(runs)
        for run in kernel.runs:
            canonical_json(dump(run.summary))
    finally:
        shutil.rmtree(root)


# -- the kernel path --------------------------------------------------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(TINY)


def _replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(document))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return copy


@pytest.fixture(scope="module")
def policies() -> list[Any]:
    from swarm_planner.core.heuristic import HeuristicRules
    from swarm_planner.plugins.models.onnx_policy import OnnxPolicy

    return [OnnxPolicy(FIXTURES / "tiny-bundle"), HeuristicRules()]


@FUZZ
@given(st.sampled_from(PATHS), JSON_VALUES)
def test_any_json_planner_input_decides_or_is_a_contract_error(
    policies: list[Any], path: tuple[Any, ...], value: Any
) -> None:
    document = _replaced(TINY, path, value)
    try:
        planner_input = load(document, PlannerInput, source="fuzz")
    except ContractError:
        return
    assert len(planner_input.input_hash()) == 64
    for policy in policies:
        try:
            dist = policy.predict(planner_input)
        except (ContractError, InvalidActionError):
            continue  # bad input, or a space whose rules forbid what the rule table picks
        assert math.isclose(float(dist.probs.sum()), 1.0, abs_tol=1e-5)


def _set(record: Any, path: tuple[str, ...], value: Any) -> Any:
    if len(path) == 1:
        return attrs.evolve(record, **{path[0]: value})
    return attrs.evolve(record, **{path[0]: _set(getattr(record, path[0]), path[1:], value)})


RECORD_PATHS = [
    ("job_type",),
    ("created_at",),
    ("issue",),
    ("issue", "tags"),
    ("issue", "keywords"),
    ("issue", "issue_id"),
    ("issue", "dk_tool_hint"),
    ("history",),
    ("universe_defaults",),
    ("universe_defaults", "swarm_id"),
    ("system_state",),
    ("action_space",),
]
PYTHON_VALUES = st.one_of(
    JSON_VALUES,
    st.tuples(SCALARS, SCALARS),
    st.sets(st.integers(), max_size=3),
    st.builds(object),
)


@FUZZ
@given(st.sampled_from(RECORD_PATHS), PYTHON_VALUES)
def test_any_record_built_in_code_decides_or_is_a_contract_error(
    policies: list[Any], path: tuple[str, ...], value: Any
) -> None:
    base = load(TINY, PlannerInput)
    try:
        planner_input = _set(base, path, value)
    except (TypeError, ValueError):
        return  # attrs refused it at construction, in the caller's own code
    for policy in policies:
        try:
            dist = policy.predict(planner_input)
        except (ContractError, InvalidActionError):
            continue
        assert math.isclose(float(dist.probs.sum()), 1.0, abs_tol=1e-5)
