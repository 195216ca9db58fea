"""The one cattrs converter that knows the project's JSON.

Why a custom converter: cattrs' defaults are lenient in ways that lose data silently (``int("3")``
turns strings into numbers, ``int(3.7)`` truncates, extra keys are ignored). Here every primitive is
strict, extra keys are forbidden, ``Literal`` values are checked with a message that lists what is
allowed, and every failure is reported with its JSON path. The few coercions the contracts allow
(``dk_attempts`` as a string, missing enums) are done by the records that own them and counted in a
:class:`CoercionLog`, never done by accident.

Field metadata understood by the attrs hooks (set with :func:`json_field`):

- ``json_name``: the key in JSON when it differs from the Python name (``if`` is a keyword);
- ``optional``: the key may be absent; it is written only when the value is not ``None``.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
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

from swarm_planner.core.errors import ContractError

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=True)


# -- field metadata ---------------------------------------------------------------------------


def json_field(
    *,
    default: Any = attrs.NOTHING,
    factory: Callable[[], Any] | None = None,
    json_name: str | None = None,
    optional: bool = False,
    validator: Any = None,
    converter: Any = None,
) -> Any:
    """An attrs field with the JSON metadata this module's hooks read."""
    metadata = {"json_name": json_name, "optional": optional}
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


def field_converter(key: str, fn: Callable[[Any], T]) -> Callable[[Any], T]:
    """Wrap an attrs converter so that its failure names the field ``key``."""

    def convert(value: Any) -> T:
        try:
            return fn(value)
        except (TypeError, ValueError) as exc:
            raise FieldProblem(key, str(exc)) from exc

    return convert


# -- coercion accounting ----------------------------------------------------------------------


@attrs.define
class CoercionLog:
    """Counts the tolerated dirt that readers fixed, keyed by what was fixed.

    Readers of field data report these counts (``issue.dk_attempts: string -> int``) so that
    a coercion is never silent.
    """

    counts: Counter[str] = attrs.field(factory=Counter)

    def add(self, what: str) -> None:
        self.counts[what] += 1

    def total(self) -> int:
        return sum(self.counts.values())


_active_log: contextvars.ContextVar[CoercionLog | None] = contextvars.ContextVar(
    "swarm_planner_coercion_log", default=None
)


@contextlib.contextmanager
def recording_coercions(log: CoercionLog | None = None) -> Iterator[CoercionLog]:
    """Collect the coercions made by every structure call inside the block."""
    log = log if log is not None else CoercionLog()
    token = _active_log.set(log)
    try:
        yield log
    finally:
        _active_log.reset(token)


def note_coercion(what: str) -> None:
    """Record one tolerated coercion in the active log (if a reader is recording)."""
    log = _active_log.get()
    if log is not None:
        log.add(what)


# -- strict primitives ------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r} ({_type_name(value)})")
    return value


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r} ({_type_name(value)})")
    return float(value)


def _structure_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r} ({_type_name(value)})")
    return value


def _structure_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r} ({_type_name(value)})")
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
        raise ValueError(f"{value!r} is not one of {'|'.join(str(a) for a in allowed)}")

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
            raise TypeError(f"expected an array, got {value!r} ({_type_name(value)})")
        try:
            return tuple([inner(v, inner_t) for v in value])
        except Exception:  # redone below to report every bad element
            pass
        problems: list[Exception] = []
        for index, v in enumerate(value):
            try:
                inner(v, inner_t)
            except Exception as exc:  # collected and re-raised with the index as a note
                note = IterableValidationNote(f"Structuring {tp} @ index {index}", index, inner_t)
                setattr(exc, "__notes__", [*getattr(exc, "__notes__", []), note])  # noqa: B010
                problems.append(exc)
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
            raise TypeError(f"expected an object, got {value!r} ({_type_name(value)})")
        out: dict[Any, Any] = {}
        problems: list[Exception] = []
        for k, v in value.items():
            try:
                kk = k if key_hook is None else key_hook(k, key_t)
                out[kk] = v if val_hook is None else val_hook(v, val_t)
            except Exception as exc:  # collected and re-raised with the key as a note
                setattr(exc, "__notes__", [*getattr(exc, "__notes__", []), f"@key {k}"])  # noqa: B010
                problems.append(exc)
        if problems:
            raise ClassValidationError("mapping has invalid values", problems, dict)
        return out

    return structure


def _is_mapping(tp: Any) -> bool:
    origin = get_origin(tp)
    return origin in (dict, Mapping, typing.Mapping) or tp in (dict, Mapping)


converter.register_structure_hook_factory(_is_mapping, _mapping_structure_strict)


# -- attrs classes with metadata ----------------------------------------------------------------


def _overrides(cls: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in attrs.fields(cls):
        rename = field.metadata.get("json_name")
        optional = bool(field.metadata.get("optional"))
        if rename or optional:
            out[field.name] = override(rename=rename, omit_if_default=optional)
    return out


def _attrs_structure(cls: type) -> Callable[[Any, Any], Any]:
    inner: Callable[[Any, Any], Any] = make_dict_structure_fn(
        cls,
        converter,
        _cattrs_forbid_extra_keys=True,
        _cattrs_detailed_validation=True,
        **_overrides(cls),
    )

    def structure(value: Any, tp: Any) -> Any:
        if type(value) is not dict and not isinstance(value, Mapping):  # dict: the fast case
            raise TypeError(f"expected an object, got {value!r} ({_type_name(value)})")
        return inner(value, tp)

    return structure


def _attrs_unstructure(cls: type) -> Callable[[Any], Any]:
    return make_dict_unstructure_fn(cls, converter, **_overrides(cls))


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


def _join(path: str, step: str) -> str:
    if step.startswith("["):
        return f"{path}{step}"
    return f"{path}.{step}" if path else step


def _walk(exc: BaseException, path: str, out: list[tuple[str, str]]) -> None:
    if isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            out.append((_join(path, key), _unknown_key_message(key, exc.cl)))
        return
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        cls = getattr(exc, "cl", None)
        for sub in exc.exceptions:
            step = _step_of(sub, cls)
            _walk(sub, _join(path, step) if step else path, out)
        return
    if isinstance(exc, FieldProblem):
        out.append((_join(path, exc.key), exc.message))
        return
    out.append((path or "$", _describe(exc)))


def _step_of(exc: BaseException, cls: Any) -> str:
    for note in getattr(exc, "__notes__", []):
        if isinstance(note, AttributeValidationNote):
            if cls is not None and attrs.has(cls):
                for field in attrs.fields(cls):
                    if field.name == note.name:
                        return json_key(field)
            return str(note.name)
        if isinstance(note, IterableValidationNote):
            return f"[{note.index}]"
        if isinstance(note, str) and note.startswith("@key "):
            return note[len("@key ") :]
    return ""


def error_lines(exc: BaseException, root: str = "") -> list[str]:
    """Flatten a cattrs error tree into ``"path: problem"`` lines (JSON keys, not Python names)."""
    found: list[tuple[str, str]] = []
    _walk(exc, root, found)
    return [f"{p}: {m}" for p, m in found]


def structure(data: Any, cls: type[T], *, source: str = "<json>", root: str = "") -> T:
    """Structure JSON data into ``cls`` or raise a :class:`ContractError` naming every bad path."""
    try:
        return converter.structure(data, cls)
    except ContractError:
        raise
    except (ClassValidationError, IterableValidationError, TypeError, ValueError, KeyError) as exc:
        raise ContractError(source, error_lines(exc, root)) from exc


def unstructure(value: Any) -> Any:
    """Plain JSON data for a record."""
    return converter.unstructure(value)
