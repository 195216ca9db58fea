"""The one cattrs converter that knows the project's JSON.

Why a custom converter: cattrs' defaults are lenient in ways that lose data silently (``int("3")``
turns strings into numbers, ``int(3.7)`` truncates, extra keys are ignored). Here every primitive is
strict, extra keys are forbidden, ``Literal`` values are checked with a message that lists what is
allowed, and every failure is reported with its JSON path. The few repairs the contracts allow
(``dk_attempts`` as a string, missing enums) are done by the records that own them and counted in a
:class:`RepairLog`, never done by accident. Numbers must be finite and text must be text (no lone
UTF-16 surrogates), whether the data came from a file or was built in code.

Field metadata understood by the attrs hooks (set with :func:`json_field`):

- ``json_name``: the key in JSON when it differs from the Python name (``if`` is a keyword);
- ``optional``: the key may be absent; it is written only when the value is not ``None``;
- ``structure``: a hook of the field's own (a value with more than one JSON form).

Records marked with :func:`open_record` ignore keys they do not name: they describe the part we
read of a document someone else writes (a kernel's ``proof.json``), never our own formats.
:func:`structure_repairing` reads such documents value by value: a bad value is dropped (its
default applies) and counted, instead of losing the whole document.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import difflib
import math
import re
import types
import typing
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from swarm_planner.core.documents import INT64_MAX, INT64_MIN, format_path, short_repr
from swarm_planner.core.errors import ContractError

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=True)

Step = str | int
"""One step of a JSON path: an object key or an array index."""


# -- field metadata ---------------------------------------------------------------------------


def json_field(
    *,
    default: Any = attrs.NOTHING,
    factory: Callable[[], Any] | None = None,
    json_name: str | None = None,
    optional: bool = False,
    validator: Any = None,
    converter: Any = None,
    structure: Callable[[Any, Any], Any] | None = None,
) -> Any:
    """An attrs field with the JSON metadata this module's hooks read."""
    metadata = {"json_name": json_name, "optional": optional, "structure": structure}
    if optional and default is attrs.NOTHING and factory is None:
        default = None
    return attrs.field(
        default=default,
        factory=factory,
        metadata=metadata,
        validator=validator,
        converter=converter,
    )


def json_key(field: attrs.Attribute[Any]) -> str:
    """The JSON key of an attrs field."""
    return field.metadata.get("json_name") or field.name


class FieldProblem(ValueError):
    """Raised by attrs validators and converters so that the error path names the field.

    cattrs attributes failures of nested structuring to a path, but a validator runs inside the
    class constructor; this exception carries the JSON key instead.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def validator(check: Callable[[Any], str | None]) -> Callable[[Any, Any, Any], None]:
    """An attrs validator from ``check(value) -> problem or None`` that raises FieldProblem."""

    def run(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        problem = check(value)
        if problem is not None:
            raise FieldProblem(json_key(attribute), problem)

    return run


positive = validator(lambda v: f"{v!r} is below 1" if v is not None and v < 1 else None)
"""At least 1 (``None`` passes: nullable fields)."""
non_negative = validator(lambda v: f"{v!r} is negative" if v is not None and v < 0 else None)
"""At least 0 (``None`` passes)."""


def at_most(limit: float) -> Callable[[Any, Any, Any], None]:
    """At most ``limit`` (``None`` passes)."""
    return validator(lambda v: f"{v!r} is above {limit}" if v is not None and v > limit else None)


unit_interval = validator(
    lambda v: f"{v!r} is not within [0, 1]" if v is not None and not 0.0 <= v <= 1.0 else None
)
"""Within [0, 1] (``None`` passes)."""


def field_converter(key: str, fn: Callable[[Any], T]) -> Callable[[Any], T]:
    """Wrap an attrs converter so that its failure names the field ``key``."""

    def convert(value: Any) -> T:
        try:
            return fn(value)
        except (TypeError, ValueError) as exc:
            raise FieldProblem(key, str(exc)) from exc

    return convert


# -- repair accounting ------------------------------------------------------------------------


EXAMPLES_PER_KIND = 5
"""Examples kept per kind of repair (the counts are always complete)."""
MAX_KINDS = 200
"""Kinds of repair counted apart; the rest count together under :data:`OTHER_KINDS`."""
OTHER_KINDS = f"other repairs (beyond {MAX_KINDS} kinds)"


@attrs.define
class RepairLog:
    """Counts the tolerated dirt that readers fixed, by kind, with the first few examples.

    Readers of field data report these (``issue.dk_attempts: string -> int``) so that a repair is
    never silent. ``where`` names the file being read, for the examples.
    """

    counts: Counter[str] = attrs.field(factory=Counter)
    examples: dict[str, list[str]] = attrs.field(factory=dict)
    where: str | None = None

    def add(self, kind: str, detail: str | None = None) -> None:
        if kind not in self.counts and len(self.counts) >= MAX_KINDS:
            kind = OTHER_KINDS  # a document full of distinct oddities must not grow the report
        self.counts[kind] += 1
        if detail is not None or self.where is not None:
            shown = self.examples.setdefault(kind, [])
            if len(shown) < EXAMPLES_PER_KIND:
                text = ": ".join(p for p in (self.where, detail) if p)
                shown.append(text)

    def merge(self, other: RepairLog) -> None:
        for kind, count in other.counts.items():
            mine_kind = kind if kind in self.counts or len(self.counts) < MAX_KINDS else OTHER_KINDS
            self.counts[mine_kind] += count
            shown = other.examples.get(kind, [])
            mine = self.examples.setdefault(mine_kind, [])
            mine.extend(shown[: EXAMPLES_PER_KIND - len(mine)])

    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": dict(sorted(self.counts.items())),
            "examples": {k: list(v) for k, v in sorted(self.examples.items())},
        }


_active_log: contextvars.ContextVar[RepairLog | None] = contextvars.ContextVar(
    "swarm_planner_repair_log", default=None
)


@contextlib.contextmanager
def recording_repairs(log: RepairLog | None = None) -> Iterator[RepairLog]:
    """Collect the repairs made by every structure call inside the block."""
    log = log if log is not None else RepairLog()
    token = _active_log.set(log)
    try:
        yield log
    finally:
        _active_log.reset(token)


def note_repair(kind: str, detail: str | None = None) -> None:
    """Record one tolerated repair in the active log (if a reader is recording)."""
    log = _active_log.get()
    if log is not None:
        log.add(kind, detail)


# -- strict primitives ------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {short_repr(value)} ({_type_name(value)})")
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("an integer beyond the 64-bit range")
    return value


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {short_repr(value)} ({_type_name(value)})")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


_SURROGATE = re.compile("[\ud800-\udfff]")


def _structure_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {short_repr(value)} ({_type_name(value)})")
    if not value.isascii() and _SURROGATE.search(value) is not None:
        raise ValueError(f"{short_repr(value)} holds a lone UTF-16 surrogate, which is not text")
    return value


def _structure_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {short_repr(value)} ({_type_name(value)})")
    return value


converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook(float, _structure_float)
converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(bool, _structure_bool)


def _is_literal(tp: Any) -> bool:
    return get_origin(tp) is Literal


def _literal_hook(tp: Any) -> Callable[[Any, Any], Any]:
    allowed = get_args(tp)

    def structure(value: Any, _: Any) -> Any:
        for choice in allowed:
            # bool is an int: never let True match 1 or the reverse.
            if value == choice and type(value) is type(choice):
                return value
        raise ValueError(f"{short_repr(value)} is not one of {'|'.join(str(a) for a in allowed)}")

    return structure


converter.register_structure_hook_factory(_is_literal, _literal_hook)


def _is_optional(tp: Any) -> bool:
    args = get_args(tp)
    return (
        get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args
    )


def _optional_structure(tp: Any) -> Callable[[Any, Any], Any]:
    """``X | None`` with the hook of ``X`` looked up once (cattrs looks it up on every value)."""
    (inner_t,) = (a for a in get_args(tp) if a is not type(None))
    inner = converter.get_structure_hook(inner_t)

    def structure(value: Any, _: Any) -> Any:
        return None if value is None else inner(value, inner_t)

    return structure


converter.register_structure_hook_factory(_is_optional, _optional_structure)


def _is_homogeneous_tuple(tp: Any) -> bool:
    args = get_args(tp)
    return get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _tuple_structure_strict(tp: Any) -> Callable[[Any, Any], Any]:
    """``tuple[X, ...]`` from a JSON array only: cattrs would take any iterable, turning the
    string ``"api"`` into ``("a", "p", "i")`` and an object into its keys."""
    inner_t = get_args(tp)[0]
    inner = converter.get_structure_hook(inner_t)

    def structure(value: Any, _: Any) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected an array, got {short_repr(value)} ({_type_name(value)})")
        try:
            return tuple([inner(v, inner_t) for v in value])
        except Exception:  # redone below to report the bad elements
            pass
        problems: list[Exception] = []
        for index, v in enumerate(value):
            try:
                inner(v, inner_t)
            except Exception as exc:  # collected and re-raised with the index as a note
                note = IterableValidationNote(f"Structuring {tp} @ index {index}", index, inner_t)
                setattr(exc, "__notes__", [*getattr(exc, "__notes__", []), note])  # noqa: B010
                problems.append(exc)
                if len(problems) >= MAX_PROBLEMS:  # enough to say what is wrong
                    break
        raise IterableValidationError(f"While structuring {tp!r}", problems, tp)

    return structure


converter.register_structure_hook_factory(_is_homogeneous_tuple, _tuple_structure_strict)


def _is_sequence_to_list(tp: Any) -> bool:
    return get_origin(tp) is tuple


def _tuple_unstructure_hook(tp: Any) -> Callable[[Any], Any]:
    args = get_args(tp)
    inner = args[0] if args else Any

    def unstructure(value: Any) -> list[Any]:
        return [converter.unstructure(v, unstructure_as=inner) for v in value]

    return unstructure


# JSON has arrays, not tuples: records keep tuples (hashable, frozen) and write lists.
converter.register_unstructure_hook_factory(_is_sequence_to_list, _tuple_unstructure_hook)


def _mapping_structure_strict(tp: Any) -> Callable[[Any, Any], Any]:
    args = get_args(tp)
    key_t, val_t = (*args, Any, Any)[:2]
    key_hook = None if key_t is Any else converter.get_structure_hook(key_t)
    val_hook = None if val_t is Any else converter.get_structure_hook(val_t)

    def structure(value: Any, _: Any) -> dict[Any, Any]:
        if type(value) is not dict and not isinstance(value, Mapping):  # dict: the fast case
            raise TypeError(f"expected an object, got {short_repr(value)} ({_type_name(value)})")
        out: dict[Any, Any] = {}
        problems: list[Exception] = []
        for k, v in value.items():
            try:
                kk = k if key_hook is None else key_hook(k, key_t)
                out[kk] = v if val_hook is None else val_hook(v, val_t)
            except Exception as exc:  # collected and re-raised with the key as a note
                setattr(exc, "__notes__", [*getattr(exc, "__notes__", []), f"@key {k}"])  # noqa: B010
                problems.append(exc)
                if len(problems) >= MAX_PROBLEMS:
                    break
        if problems:
            raise ClassValidationError("mapping has invalid values", problems, dict)
        return out

    return structure


def _is_mapping(tp: Any) -> bool:
    origin = get_origin(tp)
    return origin in (dict, Mapping, typing.Mapping) or tp in (dict, Mapping)


converter.register_structure_hook_factory(_is_mapping, _mapping_structure_strict)


# -- attrs classes with metadata ----------------------------------------------------------------


_OPEN_RECORDS: set[type] = set()


def open_record(cls: type[T]) -> type[T]:
    """Mark an attrs class as the part we read of someone else's document: keys it does not
    name are ignored (they are the rest of that document), not errors."""
    _OPEN_RECORDS.add(cls)
    return cls


def _overrides(cls: type, *, structuring: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if not field.init:  # derived from the other fields: never JSON
            out[field.name] = override(omit=True)
            continue
        rename = field.metadata.get("json_name")
        optional = bool(field.metadata.get("optional"))
        hook = field.metadata.get("structure") if structuring else None
        if rename or optional or hook:
            kwargs: dict[str, Any] = {"rename": rename, "omit_if_default": optional}
            if hook is not None:
                kwargs["struct_hook"] = hook
            out[field.name] = override(**kwargs)
    return out


def _attrs_structure(cls: type) -> Callable[[Any, Any], Any]:
    inner: Callable[[Any, Any], Any] = make_dict_structure_fn(
        cls,
        converter,
        _cattrs_forbid_extra_keys=cls not in _OPEN_RECORDS,
        _cattrs_detailed_validation=True,
        **_overrides(cls, structuring=True),
    )

    def structure(value: Any, tp: Any) -> Any:
        if type(value) is not dict and not isinstance(value, Mapping):  # dict: the fast case
            raise TypeError(f"expected an object, got {short_repr(value)} ({_type_name(value)})")
        return inner(value, tp)

    return structure


def _attrs_unstructure(cls: type) -> Callable[[Any], Any]:
    return make_dict_unstructure_fn(cls, converter, **_overrides(cls, structuring=False))


converter.register_structure_hook_factory(attrs.has, _attrs_structure)
converter.register_unstructure_hook_factory(attrs.has, _attrs_unstructure)


# -- errors with JSON paths -------------------------------------------------------------------


def _allowed_keys(cls: type) -> list[str]:
    return sorted(json_key(f) for f in attrs.fields(cls))


def _unknown_key_message(key: str, cls: type) -> str:
    allowed = _allowed_keys(cls) if attrs.has(cls) else []
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{hint}; allowed keys: {', '.join(allowed)}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return "required key is missing"
    return str(exc) if str(exc) else type(exc).__name__


@attrs.frozen
class Problem:
    """One bad value: where (JSON keys and array indices) and what is wrong."""

    steps: tuple[Step, ...]
    message: str

    def line(self) -> str:
        return f"{format_path(list(self.steps))}: {self.message}"


def _walk(exc: BaseException, steps: tuple[Step, ...], out: list[Problem]) -> None:
    if isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(map(str, exc.extra_fields))[:MAX_PROBLEMS]:
            out.append(Problem((*steps, key), _unknown_key_message(key, exc.cl)))
        return
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        cls = getattr(exc, "cl", None)
        for sub in exc.exceptions:
            step = _step_of(sub, cls)
            _walk(sub, steps if step is None else (*steps, step), out)
        return
    if isinstance(exc, FieldProblem):
        out.append(Problem((*steps, exc.key), exc.message))
        return
    out.append(Problem(steps, _describe(exc)))


def _step_of(exc: BaseException, cls: Any) -> Step | None:
    for note in getattr(exc, "__notes__", []):
        if isinstance(note, AttributeValidationNote):
            if cls is not None and attrs.has(cls):
                for field in attrs.fields(cls):
                    if field.name == note.name:
                        return json_key(field)
            return str(note.name)
        if isinstance(note, IterableValidationNote):
            return int(note.index)
        if isinstance(note, str) and note.startswith("@key "):
            return note[len("@key ") :]
    return None


MAX_PROBLEMS = 20
"""Problems reported per document (and per array or object): enough to say what is wrong; a
document with a million bad values must not become a million-line error."""


def problems_of(exc: BaseException, root: str = "") -> list[Problem]:
    """The bad values of a cattrs error tree, with JSON paths (JSON keys, not Python names)."""
    found: list[Problem] = []
    _walk(exc, (root,) if root else (), found)
    if len(found) > MAX_PROBLEMS:
        found = [*found[:MAX_PROBLEMS], Problem((), f"... and {len(found) - MAX_PROBLEMS} more")]
    return found


def error_lines(exc: BaseException, root: str = "") -> list[str]:
    """Flatten a cattrs error tree into ``"path: problem"`` lines."""
    return [p.line() for p in problems_of(exc, root)]


_STRUCTURE_ERRORS = (ClassValidationError, IterableValidationError, TypeError, ValueError, KeyError)


def structure(data: Any, cls: type[T], *, source: str = "<json>", root: str = "") -> T:
    """Structure JSON data into ``cls`` or raise a :class:`ContractError` naming every bad path."""
    try:
        return converter.structure(data, cls)
    except ContractError:
        raise
    except _STRUCTURE_ERRORS as exc:
        raise ContractError(source, error_lines(exc, root)) from exc
    except RecursionError as exc:
        raise ContractError(source, ["$: nested too deeply"]) from exc


MAX_REPAIR_ROUNDS = 8
"""Rounds of dropping bad values before a document counts as unreadable (each round drops up
to :data:`MAX_PROBLEMS` of them)."""


def structure_repairing(
    data: Any,
    cls: type[T],
    *,
    source: str = "<json>",
    repairs: RepairLog | None = None,
    root: str = "",
) -> T:
    """Structure ``data`` into ``cls``, dropping each bad value instead of failing.

    A bad object value is removed (the field's default applies); a field that is then missing
    and has no default is set to null; a bad array element is removed. Each drop is counted in
    ``repairs`` (or the active log) under ``bad value dropped: <source> <path>``, with the
    problem as an example. Raises a
    :class:`ContractError` when what is left still does not fit (a required value is bad or the
    document is not an object at all).
    """
    tried: dict[tuple[Step, ...], int] = {}
    copied = False
    for _ in range(MAX_REPAIR_ROUNDS):
        try:
            return converter.structure(data, cls)
        except ContractError:
            raise
        except _STRUCTURE_ERRORS as exc:
            problems = problems_of(exc)
        except RecursionError as exc:
            raise ContractError(source, ["$: nested too deeply"]) from exc
        shown = [attrs.evolve(p, steps=(root, *p.steps)) if root else p for p in problems]
        if not copied:
            data, copied = copy.deepcopy(data), True
        removals: list[tuple[list[Any], int]] = []
        progressed = False
        for problem in problems:
            stage = tried.get(problem.steps, 0)
            parent = _parent(data, problem.steps)
            if parent is None or stage >= 2:
                raise ContractError(source, [p.line() for p in shown])
            last = problem.steps[-1]
            if isinstance(parent, list) and isinstance(last, int) and last < len(parent):
                removals.append((parent, last))
            elif isinstance(parent, dict) and isinstance(last, str):
                if last in parent and stage == 0:
                    del parent[last]
                else:  # missing and required: null is the last resort
                    parent[last] = None
            else:
                raise ContractError(source, [p.line() for p in shown])
            tried[problem.steps] = stage + 1
            progressed = True
            if stage > 0:  # the same value, already counted
                continue
            where = ".".join("[]" if isinstance(s, int) else s for s in problem.steps)
            kind = f"bad value dropped: {source} {where.replace('.[]', '[]')}"
            line = (
                attrs.evolve(problem, steps=(root, *problem.steps)).line()
                if root
                else problem.line()
            )
            if repairs is not None:
                repairs.add(kind, line)
            else:
                note_repair(kind, line)
        for parent, index in sorted(removals, key=lambda r: -r[1]):
            del parent[index]
        if not progressed:
            raise ContractError(source, [p.line() for p in shown])
    raise ContractError(source, [f"$: more than {MAX_REPAIR_ROUNDS} rounds of bad values"])


def _parent(data: Any, steps: tuple[Step, ...]) -> Any:
    """The container holding the value at ``steps`` (None for the root or a broken path)."""
    if not steps:
        return None
    node = data
    for step in steps[:-1]:
        in_dict = isinstance(node, dict) and isinstance(step, str) and step in node
        in_list = isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)
        if in_dict or in_list:
            node = node[step]
        else:
            return None
    return node if isinstance(node, (dict, list)) else None


def unstructure(value: Any) -> Any:
    """Plain JSON data for a record."""
    return converter.unstructure(value)
