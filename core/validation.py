"""Checking records built in code against their types, before any model work.

A record read with :func:`swarm_planner.core.contracts.load` is checked by the converter. A
kernel that embeds the planner may build records in code instead, and attrs does not check
types: ``Issue("7", tags=None)``, ``started_ms="yesterday"``, a NaN toolchain health or a lone
surrogate in a tag would otherwise travel into the encoder or the hash and fail there (or, for
NaN, silently decide wrong). :func:`check_record` walks a record against its annotations with
the converter's rules (integers that are not booleans and fit 64 bits, finite numbers, text
without lone surrogates, literals by value and type, arrays, objects) and raises one
:class:`ContractError` listing every bad path.

Why not dump and load again: that costs as much as a decision. The checkers here are built once
per class from its annotations; an input the converter built is remembered by identity (records
are frozen), so inputs read from JSON are not walked twice.
"""

from __future__ import annotations

import contextlib
import math
import re
import types
import typing
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args, get_origin

import attrs

from swarm_planner.core.documents import short_repr
from swarm_planner.core.errors import ContractError
from swarm_planner.core.jsonconv import MAX_PROBLEMS, json_key

INT64_MAX = (1 << 63) - 1
_SURROGATE = re.compile("[\ud800-\udfff]")

Problems = list[tuple[str, str]]
Check = Callable[[Any, str, Problems], None]


def _join(path: str, step: str | int) -> str:
    if isinstance(step, int):
        return f"{path}[{step}]"
    return f"{path}.{step}" if path else step


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_int(value: Any, path: str, problems: Problems) -> None:
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, int)):
        problems.append(
            (path, f"expected an integer, got {short_repr(value)} ({_type_name(value)})")
        )
        return
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        problems.append((path, "an integer beyond the 64-bit range"))


def _check_float(value: Any, path: str, problems: Problems) -> None:
    if type(value) is float:
        if not math.isfinite(value):
            problems.append((path, f"expected a finite number, got {value!r}"))
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append((path, f"expected a number, got {short_repr(value)} ({_type_name(value)})"))
    elif isinstance(value, float) and not math.isfinite(value):
        problems.append((path, f"expected a finite number, got {value!r}"))


def _check_str(value: Any, path: str, problems: Problems) -> None:
    if type(value) is not str and not isinstance(value, str):
        problems.append((path, f"expected a string, got {short_repr(value)} ({_type_name(value)})"))
    elif _SURROGATE.search(value) is not None:
        problems.append(
            (path, f"{short_repr(value)} holds a lone UTF-16 surrogate, which is not text")
        )


def _check_bool(value: Any, path: str, problems: Problems) -> None:
    if not isinstance(value, bool):
        problems.append(
            (path, f"expected true or false, got {short_repr(value)} ({_type_name(value)})")
        )


def _check_any(value: Any, path: str, problems: Problems) -> None:
    return None


_PRIMITIVES: dict[Any, Check] = {
    int: _check_int,
    float: _check_float,
    str: _check_str,
    bool: _check_bool,
    Any: _check_any,
}

_CACHE: dict[Any, Check] = {}


def checker(tp: Any) -> Check:
    """The check of a type (built once, then reused)."""
    found = _CACHE.get(tp)
    if found is None:
        found = _CACHE[tp] = _build(tp)
    return found


def _build(tp: Any) -> Check:
    if tp in _PRIMITIVES:
        return _PRIMITIVES[tp]
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return _literal(args)
    if origin in (typing.Union, types.UnionType):
        return _union(args)
    if origin is tuple:
        if (len(args) == 2 and args[1] is Ellipsis) or not args:
            return _array(args[0] if args else Any)
        return _fixed(args)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        key_t, value_t = (*args, Any, Any)[:2]
        return _mapping(key_t, value_t)
    if isinstance(tp, type) and attrs.has(tp):
        return _record(tp)
    if isinstance(tp, type):
        return _instance(tp)
    raise TypeError(f"no check for {tp!r}")


def _literal(allowed: tuple[Any, ...]) -> Check:
    text = "|".join(str(a) for a in allowed)

    def check(value: Any, path: str, problems: Problems) -> None:
        for choice in allowed:
            if value == choice and type(value) is type(choice):
                return
        problems.append((path, f"{short_repr(value)} is not one of {text}"))

    return check


def _union(options: tuple[Any, ...]) -> Check:
    nullable = type(None) in options
    inner = [checker(o) for o in options if o is not type(None)]

    def check(value: Any, path: str, problems: Problems) -> None:
        if value is None:
            if not nullable:
                problems.append((path, "expected a value, got null"))
            return
        if len(inner) == 1:
            inner[0](value, path, problems)
            return
        first: Problems = []
        for option in inner:
            mine: Problems = []
            option(value, path, mine)
            if not mine:
                return
            first = first or mine
        problems.extend(first)

    return check


def _array(item_t: Any) -> Check:
    item = checker(item_t)

    def check(value: Any, path: str, problems: Problems) -> None:
        if not isinstance(value, (tuple, list)):
            problems.append(
                (path, f"expected an array, got {short_repr(value)} ({_type_name(value)})")
            )
            return
        for i, element in enumerate(value):
            item(element, _join(path, i), problems)
            if len(problems) > MAX_PROBLEMS:  # enough to say what is wrong
                return

    return check


def _fixed(item_types: tuple[Any, ...]) -> Check:
    items = [checker(t) for t in item_types]

    def check(value: Any, path: str, problems: Problems) -> None:
        if not isinstance(value, (tuple, list)) or len(value) != len(items):
            problems.append((path, f"expected {len(items)} values, got {short_repr(value)}"))
            return
        for i, (element, item) in enumerate(zip(value, items, strict=True)):
            item(element, _join(path, i), problems)

    return check


def _mapping(key_t: Any, value_t: Any) -> Check:
    key_check, value_check = checker(key_t), checker(value_t)

    def check(value: Any, path: str, problems: Problems) -> None:
        if not isinstance(value, Mapping):
            problems.append(
                (path, f"expected an object, got {short_repr(value)} ({_type_name(value)})")
            )
            return
        for k, v in value.items():
            key_check(k, _join(path, str(k)), problems)
            value_check(v, _join(path, str(k)), problems)
            if len(problems) > MAX_PROBLEMS:
                return

    return check


def _instance(cls: type) -> Check:
    def check(value: Any, path: str, problems: Problems) -> None:
        if not isinstance(value, cls):
            problems.append((path, f"expected a {cls.__name__}, got {_type_name(value)}"))

    return check


def _record(cls: type) -> Check:
    hints = typing.get_type_hints(cls)
    fields = [(f.name, json_key(f), checker(hints[f.name])) for f in attrs.fields(cls) if f.init]

    def check(value: Any, path: str, problems: Problems) -> None:
        if not isinstance(value, cls):
            problems.append((path or "$", f"expected a {cls.__name__}, got {_type_name(value)}"))
            return
        for name, key, field_check in fields:
            field_check(getattr(value, name), _join(path, key), problems)

    return check


# -- the fast pass: True/False, no paths (the slow pass above names the problems) ------------
#
# A decision checks its whole input, so this pass is generated code: one function per record
# class whose body tests each field inline (``type(v.run_id) is str and ...``), calling out only
# for nested records and arrays. A generic walk cost as much as the decision itself.

Fast = Callable[[Any], bool]
_FAST: dict[Any, Fast] = {}


def _surrogate_free(text: str) -> bool:
    return text.isascii() or _SURROGATE.search(text) is None


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int64(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -INT64_MAX - 1 <= v <= INT64_MAX


def _expression(tp: Any, var: str, names: dict[str, Any]) -> str:
    """A Python expression that is true when the value ``var`` fits ``tp``."""
    if tp is Any:
        return "True"
    if tp is str:
        return f"(type({var}) is str and ({var}.isascii() or _surrogate_free({var})))"
    if tp is int:
        return f"(type({var}) is int and -{INT64_MAX + 1} <= {var} <= {INT64_MAX} or _int64({var}))"
    if tp is float:
        return f"(type({var}) is float and _isfinite({var}) or _finite_number({var}))"
    if tp is bool:
        return f"({var} is True or {var} is False)"
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        key = f"_lit{len(names)}"
        names[key] = frozenset((type(a), a) for a in args)
        return f"((type({var}), {var}) in {key})"
    if origin in (typing.Union, types.UnionType):
        parts = [_expression(a, var, names) for a in args if a is not type(None)]
        if type(None) in args:
            parts.insert(0, f"{var} is None")
        return "(" + " or ".join(parts) + ")"
    key = f"_f{len(names)}"
    names[key] = fast(tp)
    return f"{key}({var})"


def fast(tp: Any) -> Fast:
    """A function telling whether a value fits ``tp`` (built once per type)."""
    found = _FAST.get(tp)
    if found is None:
        found = _FAST[tp] = _build_fast(tp)
    return found


def _build_fast(tp: Any) -> Fast:
    origin, args = get_origin(tp), get_args(tp)
    if isinstance(tp, type) and attrs.has(tp):
        return _fast_record(tp)
    if origin is tuple:
        if (len(args) == 2 and args[1] is Ellipsis) or not args:
            item = _compile(args[0] if args else Any)
            return lambda v: isinstance(v, (tuple, list)) and all(map(item, v))
        items = [_compile(t) for t in args]
        return lambda v: (
            isinstance(v, (tuple, list))
            and len(v) == len(items)
            and all(f(e) for f, e in zip(items, v, strict=True))
        )
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        key_t, value_t = (*args, Any, Any)[:2]
        kf, vf = _compile(key_t), _compile(value_t)
        return lambda v: isinstance(v, Mapping) and all(kf(k) and vf(x) for k, x in v.items())
    if isinstance(tp, type) and tp not in (str, int, float, bool):
        return lambda v: isinstance(v, tp)
    return _compile(tp)


_HELPERS = {
    "_surrogate_free": _surrogate_free,
    "_finite_number": _finite_number,
    "_int64": _int64,
    "_isfinite": math.isfinite,
}


def _compile(tp: Any) -> Fast:
    names: dict[str, Any] = dict(_HELPERS)
    body = _expression(tp, "v", names)
    namespace = dict(names)
    exec(f"def check(v):\n    return {body}\n", namespace)
    check: Fast = namespace["check"]
    return check


def _fast_record(cls: type) -> Fast:
    # Placeholder first: a record type that nests itself finds it while being built.
    _FAST[cls] = lambda v: _FAST[cls](v)
    hints = typing.get_type_hints(cls)
    names: dict[str, Any] = {**_HELPERS, "_cls": cls}
    tests = []
    for i, field in enumerate(f for f in attrs.fields(cls) if f.init):
        var = f"x{i}"
        tests.append(
            f"    {var} = v.{field.name}\n    if not {_expression(hints[field.name], var, names)}:"
            "\n        return False"
        )
    by_value = cls in _BY_VALUE
    head = "    if type(v) is not _cls and not isinstance(v, _cls):\n        return False\n"
    # A record the converter built or a check passed (a history run read from an archive)
    # is not walked again when it turns up inside another.
    names["_checked"] = _CHECKED
    head += (
        "    ref = _checked.get(id(v))\n"
        "    if ref is not None and ref() is v:\n        return True\n"
    )
    if by_value:
        names["_known"] = _KNOWN_VALUES
        head += "    if v in _known:\n        return True\n"
    tail = "    _known.add(v)\n" if by_value else ""
    source = "def check(v):\n" + head + "\n".join(tests) + "\n" + tail + "    return True\n"
    namespace = dict(names)
    exec(source, namespace)
    check: Fast = namespace["check"]
    return check


_BY_VALUE: set[type] = set()
"""Hashable record types whose checked values are remembered by value (an action space is
shared by every input of a deployment: checked once, not once per decision)."""
_KNOWN_VALUES: set[Any] = set()
_KNOWN_LIMIT = 256


def check_by_value(cls: type) -> None:
    """Remember the checked values of the hashable record type ``cls``."""
    _BY_VALUE.add(cls)
    _FAST.pop(cls, None)


_CHECKED: dict[int, weakref.ref[Any]] = {}
"""Records the converter built or a check passed, by identity (a weak reference each, removed
when the record dies; a plain dict: WeakValueDictionary's lookups are Python code)."""


def remember_valid(record: Any) -> None:
    """Note that ``record`` was just built and checked by the converter (identity only)."""
    key = id(record)

    def forget(_: object, checked: dict[int, weakref.ref[Any]] = _CHECKED) -> None:
        # The table is bound here: at interpreter exit the module's globals are gone first.
        ref = checked.get(key)
        if ref is not None and ref() is None:
            del checked[key]

    with contextlib.suppress(TypeError):  # a record without weak references is walked each time
        _CHECKED[key] = weakref.ref(record, forget)


def _known(record: Any) -> bool:
    ref = _CHECKED.get(id(record))
    return ref is not None and ref() is record


def check_record(record: Any, cls: type, *, source: str = "record") -> None:
    """Raise a :class:`ContractError` naming every value of ``record`` that ``cls`` does not
    allow. A record the converter built (and nobody could change since: records are frozen)
    is not walked again."""
    if _known(record):
        return
    problems: Problems = []
    try:
        if len(_KNOWN_VALUES) > _KNOWN_LIMIT:
            _KNOWN_VALUES.clear()
        if fast(cls)(record):
            remember_valid(record)
            return
        checker(cls)(record, "", problems)
    except RecursionError:
        problems.append(("$", "nested too deeply"))
    except (AttributeError, TypeError) as exc:  # a record built around attrs' constructor
        problems.append(("$", f"not a {cls.__name__} record: {exc}"))
    if problems:
        lines = [f"{path or '$'}: {message}" for path, message in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            lines.append(f"... and {len(problems) - MAX_PROBLEMS} more")
        raise ContractError(source, lines)
    remember_valid(record)


def _by_value_defaults() -> None:
    from swarm_planner.core.action_space import ActionSpace

    check_by_value(ActionSpace)


_by_value_defaults()
