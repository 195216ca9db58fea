"""The one reader of every file the planner reads: JSON documents, JSON lines and YAML.

Why one reader: a kernel embeds us, and the files we read come from kernels, users and tools we
do not control. Whatever they hold, reading them must end in data or in a
:class:`DocumentError` that names the file, where in it (line, column, byte offset or the JSON
path) and what was expected; never in a traceback, a hang or a blown-up process. So, for every
file:

- only regular files are opened (a FIFO would block, ``/dev/zero`` never ends), without
  blocking, after following symlinks (a loop is an error, not "missing");
- at most :attr:`ReadLimits.max_bytes` are read (JSON lines: per line);
- the text must be UTF-8 (the error gives the byte offset and the line);
- nesting is bounded (:attr:`ReadLimits.max_depth`): a 200,000-deep array is refused before a
  parser or a hash recurses into it;
- ``NaN``, ``Infinity``, numbers that overflow to infinity, integers beyond 64 bits and lone
  UTF-16 surrogates are refused with the JSON path of the value (none of them survives a
  canonical hash or a typed record);
- a key given twice in one object is an error (the last one would win silently);
- YAML is read with the YAML 1.2 core scalars: only ``true``/``false`` are booleans (``mode:
  off`` is the string ``"off"``), no sexagesimal or octal-by-leading-zero integers, no
  timestamps; aliases may not expand the document beyond :attr:`ReadLimits.max_nodes` nodes.

Limits have generous defaults and are raised per call or with environment variables
(``SWARM_PLANNER_MAX_FILE_BYTES``, ``SWARM_PLANNER_MAX_LINE_BYTES``, ``SWARM_PLANNER_MAX_DEPTH``,
``SWARM_PLANNER_MAX_NODES``).
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import reprlib
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import yaml

from swarm_planner.core.errors import PlannerError

MiB = 1 << 20
INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)


def fits_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


class DocumentError(PlannerError, ValueError):
    """A file that is not a readable document; ``kind`` says which way (for skip counts)."""

    def __init__(self, source: str, problem: str, *, kind: str = "malformed") -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem
        self.kind = kind


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise PlannerError(f"{name}={raw!r}: expected a whole number") from None
    if not 1 <= value <= 1 << 40:
        raise PlannerError(f"{name}={raw!r}: expected a whole number from 1 to 2**40")
    return value


@attrs.frozen
class ReadLimits:
    """How much a reader accepts; :meth:`from_env` applies the environment's overrides."""

    max_bytes: int = 16 * MiB
    """Largest JSON document read into memory (a planner_input is a few kB, a bundle file or
    a manifest well under a MiB)."""
    max_line_bytes: int = 4 * MiB
    """Largest line of a JSON lines file (the file itself is streamed)."""
    max_yaml_bytes: int = 256 * 1024
    """Largest YAML document (configs and universe files are a few kB; YAML parses slowly)."""
    max_depth: int = 64
    """Deepest nesting of arrays and objects."""
    max_nodes: int = 100_000
    """Most values a YAML document may hold, its aliases expanded."""

    @classmethod
    def from_env(cls) -> ReadLimits:
        d = cls()
        return cls(
            max_bytes=_env_int("SWARM_PLANNER_MAX_FILE_BYTES", d.max_bytes),
            max_line_bytes=_env_int("SWARM_PLANNER_MAX_LINE_BYTES", d.max_line_bytes),
            max_yaml_bytes=_env_int("SWARM_PLANNER_MAX_YAML_BYTES", d.max_yaml_bytes),
            max_depth=_env_int("SWARM_PLANNER_MAX_DEPTH", d.max_depth),
            max_nodes=_env_int("SWARM_PLANNER_MAX_NODES", d.max_nodes),
        )


def _limits(limits: ReadLimits | None) -> ReadLimits:
    return limits if limits is not None else ReadLimits.from_env()


# -- opening files ------------------------------------------------------------------------------

_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _open_regular(path: Path, source: str) -> int:
    """A descriptor of ``path`` if it is a regular file (symlinks followed), without blocking."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DocumentError(source, "a symlink loop", kind="unreadable") from exc
        if exc.errno == errno.ENOENT:
            raise DocumentError(source, "no such file", kind="missing") from exc
        raise DocumentError(
            source, f"cannot read: {exc.strerror or exc}", kind="unreadable"
        ) from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        what = next((name for test, name in _FILE_KINDS if test(info.st_mode)), "not a file")
        raise DocumentError(source, f"not a regular file ({what})", kind="unreadable")
    return fd


def is_regular_file(path: Path) -> bool:
    """True for a regular file (following symlinks); False for anything else, loops included."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def read_bytes(
    path: Path | str, *, limits: ReadLimits | None = None, limit: int | None = None
) -> bytes:
    """The bytes of a regular file of at most ``limit`` (default: ``max_bytes``)."""
    limit = limit if limit is not None else _limits(limits).max_bytes
    path = Path(path)
    source = str(path)
    fd = _open_regular(path, source)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise DocumentError(source, _too_big(size, limit), kind="too large")
        chunks: list[bytes] = []
        total = 0
        while True:
            try:
                chunk = os.read(fd, min(MiB, limit + 1 - total))
            except OSError as exc:
                raise DocumentError(
                    source, f"cannot read: {exc.strerror or exc}", kind="unreadable"
                ) from exc
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # grew while being read
                raise DocumentError(source, _too_big(total, limit), kind="too large")
    finally:
        os.close(fd)
    return b"".join(chunks)


def _too_big(size: int, limit: int) -> str:
    return (
        f"is larger than the limit of {limit:,} bytes (at least {size:,}); raise it with "
        "SWARM_PLANNER_MAX_FILE_BYTES (YAML: SWARM_PLANNER_MAX_YAML_BYTES)"
    )


def _decode(data: bytes, source: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DocumentError(
            source,
            f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}) "
            f"{exc.reason}",
            kind="not UTF-8",
        ) from exc
    return text[1:] if text.startswith("\ufeff") else text


# -- checking parsed values -------------------------------------------------------------------


class _Bad:
    """A value the JSON parser met that no document may hold; reported with its path."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


class _DuplicateKeys(dict[str, Any]):
    """An object in which a key was given twice (``keys`` lists them)."""

    duplicates: list[str]


_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def format_path(steps: list[str | int] | tuple[str | int, ...]) -> str:
    out = ""
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            step = step if len(step) <= 60 else f"{step[:57]}..."
            out += f".{step}" if out else step
    return out or "$"


def _surrogate_problem(text: str) -> str | None:
    match = _SURROGATE.search(text)
    if match is None:
        return None
    return f"holds a lone UTF-16 surrogate (U+{ord(match.group()):04X}), which is not text"


def _leaf_problem(node: Any, surrogates: bool) -> str | None:
    """What is wrong with a scalar no document may hold (None: nothing)."""
    if isinstance(node, str):
        return _surrogate_problem(node) if surrogates and not node.isascii() else None
    if isinstance(node, _Bad):
        return node.problem
    if isinstance(node, float):
        return None if math.isfinite(node) else f"{node!r} is not a finite number"
    if isinstance(node, int) and not isinstance(node, bool) and not fits_int64(node):
        return _huge_int(len(str(abs(node))))
    return None


_MAX_PROBLEMS = 20


def check_tree(value: Any, source: str, *, max_depth: int, surrogates: bool = True) -> None:
    """Raise a :class:`DocumentError` listing the values no document may hold (non-finite
    numbers, integers beyond 64 bits, lone surrogates, repeated keys, nesting deeper than
    ``max_depth``), each with its path, the first 20 of them. Iterative, and only containers go
    on the stack (with their path), so any depth and any width is safe to check."""
    problems: list[str] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = []
    if isinstance(value, (dict, list)):
        stack.append((value, ()))
    elif (problem := _leaf_problem(value, surrogates)) is not None:
        problems.append(f"$: {problem}")
    while stack and len(problems) < _MAX_PROBLEMS:
        node, steps = stack.pop()
        if len(steps) >= max_depth:
            problems.append(f"{format_path(list(steps))}: nested deeper than {max_depth} levels")
            continue
        if isinstance(node, dict):
            if isinstance(node, _DuplicateKeys):
                for key in node.duplicates[:_MAX_PROBLEMS]:
                    path = format_path([*steps, key])
                    problems.append(f"{path}: key given more than once")
            items: Any = node.items()
        else:
            items = enumerate(node)
        for key, child in items:
            if isinstance(node, dict):
                if not isinstance(key, str):
                    problems.append(
                        f"{format_path(list(steps))}: key {short_repr(key)} is a "
                        f"{type(key).__name__}, not a string"
                    )
                    if len(problems) >= _MAX_PROBLEMS:
                        break
                    continue
                if surrogates and (problem := _surrogate_problem(key)) is not None:
                    problems.append(f"{format_path(list(steps))}: a key {problem}")
                    if len(problems) >= _MAX_PROBLEMS:
                        break
                    continue
            if isinstance(child, (dict, list)):
                stack.append((child, (*steps, key)))
            elif (problem := _leaf_problem(child, surrogates)) is not None:
                problems.append(f"{format_path([*steps, key])}: {problem}")
                if len(problems) >= _MAX_PROBLEMS:
                    break
    if problems:
        shown = sorted(problems[:_MAX_PROBLEMS])
        more = len(problems) - len(shown)
        text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        raise DocumentError(source, text, kind="bad value")


def short_repr(value: Any) -> str:
    """A value's repr, cut short: an error line never repeats a whole document."""
    return _REPR.repr(value)


_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4
_REPR.maxlevel = 2


def _huge_int(digits: int) -> str:
    return f"a {digits}-digit integer is beyond the 64-bit range"


# -- JSON ---------------------------------------------------------------------------------------


class _Flags:
    __slots__ = ("bad",)

    def __init__(self) -> None:
        self.bad = False


def _decoder(flags: _Flags) -> json.JSONDecoder:
    def constant(name: str) -> Any:
        flags.bad = True
        return _Bad(f"{name} is not a finite number (JSON has no {name})")

    def integer(text: str) -> Any:
        digits = len(text.lstrip("-"))
        if digits > 18:
            value = int(text) if digits <= 4000 else None
            if value is None or not fits_int64(value):
                flags.bad = True
                return _Bad(_huge_int(digits))
            return value
        return int(text)

    def number(text: str) -> Any:
        value = float(text)
        if not math.isfinite(value):
            flags.bad = True
            return _Bad(f"{text} overflows to infinity")
        return value

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(items)
        if len(out) == len(items):
            return out
        flags.bad = True
        counts: dict[str, int] = {}
        for key, _ in items:
            counts[key] = counts.get(key, 0) + 1
        marked = _DuplicateKeys(out)
        marked.duplicates = sorted(k for k, n in counts.items() if n > 1)
        return marked

    return json.JSONDecoder(
        parse_constant=constant, parse_int=integer, parse_float=number, object_pairs_hook=pairs
    )


_SCAN_BYTES = 1 * MiB
"""Texts up to this size have their nesting scanned before parsing."""

_STEP = np.zeros(256, dtype=np.int8)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def nesting_depth(data: bytes) -> int:
    """How deep arrays and objects nest in JSON text (brackets inside strings do not count).

    With escaped backslashes and then escaped quotes removed, every quote left delimits a
    string, so the text outside strings is every other piece between quotes (bytes methods
    only: a regex over the text cost as much as parsing it)."""
    if b"\\\\" in data:
        data = data.replace(b"\\\\", b"")
    if b'\\"' in data:
        data = data.replace(b'\\"', b"")
    bare = b"".join(data.split(b'"')[::2]).translate(None, _NOT_BRACKETS)
    if len(bare) > 4096:
        steps = _STEP[np.frombuffer(bare, dtype=np.uint8)]
        return int(np.cumsum(steps, dtype=np.int64).max(initial=0))
    depth = deepest = 0
    for byte in bare:  # a short run of brackets: a loop beats numpy's call overhead
        if byte == 91 or byte == 123:
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_json(data: bytes | str, source: str, *, limits: ReadLimits | None = None) -> Any:
    """Parse one JSON text with every check of this module."""
    limits = _limits(limits)
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    opening = raw.count(b"[") + raw.count(b"{")  # no deeper than this: most texts stop here
    # A big text is parsed first (the parser refuses runaway nesting itself) and its depth
    # checked on the tree: the scan below builds a list of pieces as long as the text.
    scan = opening > limits.max_depth and len(raw) <= _SCAN_BYTES
    depth = nesting_depth(raw) if scan else min(opening, limits.max_depth)
    if depth > limits.max_depth:
        raise DocumentError(
            source,
            f"nested {depth} levels deep; the limit is {limits.max_depth} "
            "(raise it with SWARM_PLANNER_MAX_DEPTH)",
            kind="too deep",
        )
    text = _decode(raw, source) if isinstance(data, bytes) else data
    flags = _Flags()
    try:
        value = _decoder(flags).decode(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(
            source,
            f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            kind="malformed",
        ) from exc
    except RecursionError as exc:  # only if max_depth is set above what Python can parse
        raise DocumentError(source, "nested too deeply to parse", kind="too deep") from exc
    if (
        flags.bad
        or (opening > limits.max_depth and not scan)
        or ("\\u" in text and _SURROGATE_ESCAPE.search(text) is not None)
    ):
        check_tree(value, source, max_depth=limits.max_depth)
    return value


def read_json(path: Path | str, *, limits: ReadLimits | None = None) -> Any:
    """The parsed JSON document of a regular file."""
    limits = _limits(limits)
    return parse_json(read_bytes(path, limits=limits), str(path), limits=limits)


def read_json_object(path: Path | str, *, limits: ReadLimits | None = None) -> dict[str, Any]:
    """A JSON document that must be an object."""
    value = read_json(path, limits=limits)
    if not isinstance(value, dict):
        raise DocumentError(
            str(path), f"expected a JSON object, got {_json_type(value)}", kind="malformed"
        )
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


@attrs.frozen
class Line:
    """One line of a JSON lines file: its value, or why it cannot be read."""

    number: int
    value: Any = None
    error: DocumentError | None = None


def iter_json_lines(path: Path | str, *, limits: ReadLimits | None = None) -> Iterator[Line]:
    """Every non-blank line of a JSON lines file, each parsed on its own: one bad line is one
    :class:`Line` with an error, and the lines after it are still read. The file must be
    regular; it is streamed, so only a line (not the file) is bounded in size."""
    limits = _limits(limits)
    path = Path(path)
    fd = _open_regular(path, str(path))
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as handle:
        number = 0
        while True:
            line = handle.readline(limits.max_line_bytes + 1)
            if not line:
                return
            number += 1
            where = f"{path}:{number}"
            if len(line) > limits.max_line_bytes and not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):  # skip the rest of the long line
                    line = handle.readline(MiB)
                yield Line(
                    number,
                    error=DocumentError(
                        where,
                        f"a line longer than {limits.max_line_bytes:,} bytes (raise the limit "
                        "with SWARM_PLANNER_MAX_LINE_BYTES)",
                        kind="too large",
                    ),
                )
                continue
            if not line.strip():
                continue
            try:
                yield Line(number, parse_json(line, where, limits=limits))
            except DocumentError as exc:
                yield Line(number, error=exc)


# -- YAML ---------------------------------------------------------------------------------------


class _CoreLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 core schema's scalars and strict mappings."""

    max_nodes = 100_000
    composed = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        # Counted as they are composed: a huge flat document stops here, not after PyYAML has
        # built all of it (slow and big).
        self.composed += 1
        if self.composed > self.max_nodes:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"it holds more than {self.max_nodes:,} values; raise the limit with "
                "SWARM_PLANNER_MAX_NODES",
                self.peek_event().start_mark,  # type: ignore[no-untyped-call]
            )
        return super().compose_node(parent, index)

    def compose_document(self) -> Any:
        node = super().compose_document()
        _check_expansion(node, self.max_nodes)
        return node

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hashable = hash(key) is not None
                except TypeError:
                    hashable = False
                if hashable and key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping",
                        node.start_mark,
                        f"the key {key!r} is given more than once",
                        key_node.start_mark,
                    )
                if hashable:
                    seen[key] = True
        return super().construct_mapping(node, deep=deep)


def _check_expansion(root: Any, max_nodes: int) -> None:
    """Refuse a document whose aliases would expand it beyond ``max_nodes`` values."""
    sizes: dict[int, int] = {}
    order: list[Any] = []
    stack = [root]
    while stack:  # post-order without recursion: children before parents
        node = stack.pop()
        if node is None or id(node) in sizes:
            continue
        sizes[id(node)] = -1
        order.append(node)
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack.extend((k, v))
    for node in reversed(order):
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(sizes[id(child)] for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(sizes[id(k)] + sizes[id(v)] for k, v in node.value)
        sizes[id(node)] = total
        if total > max_nodes:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"its aliases expand it to more than {max_nodes:,} values (an alias bomb?); "
                "raise the limit with SWARM_PLANNER_MAX_NODES",
                node.start_mark,
            )


_CoreLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", "<"),
):
    _CoreLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _construct_int(loader: _CoreLoader, node: Any) -> Any:
    text = str(loader.construct_scalar(node))
    digits = len(text.lstrip("+-"))
    if digits > 4000:
        return _Bad(_huge_int(digits))
    value = int(text, 0) if text.startswith(("0x", "0o")) else int(text, 10)
    return value if fits_int64(value) else _Bad(_huge_int(digits))


def _construct_bool(loader: _CoreLoader, node: Any) -> bool:
    return str(loader.construct_scalar(node)).lower() == "true"


_CoreLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_CoreLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
# Timestamps and other YAML 1.1 types are no longer resolved implicitly; explicit tags of them
# are refused rather than turned into Python objects a record cannot hold.
for _name in ("timestamp", "binary", "set", "omap", "pairs"):
    _CoreLoader.yaml_constructors.pop(f"tag:yaml.org,2002:{_name}", None)


def parse_yaml(text: str, source: str, *, limits: ReadLimits | None = None) -> Any:
    """One YAML document with every check of this module."""
    limits = _limits(limits)
    loader_class = type("_Loader", (_CoreLoader,), {"max_nodes": limits.max_nodes})
    loader = None
    try:
        loader = loader_class(text)  # the reader refuses control characters here
        value = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DocumentError(source, f"{where}not valid YAML: {problem}", kind="malformed") from exc
    except RecursionError as exc:
        raise DocumentError(source, "nested too deeply to parse", kind="too deep") from exc
    finally:
        if loader is not None:
            loader.dispose()
    check_tree(value, source, max_depth=limits.max_depth)
    return value


def read_yaml(path: Path | str, *, limits: ReadLimits | None = None) -> Any:
    """The parsed YAML document of a regular file (an empty file is ``None``)."""
    limits = _limits(limits)
    source = str(path)
    data = read_bytes(path, limits=limits, limit=limits.max_yaml_bytes)
    return parse_yaml(_decode(data, source), source, limits=limits)
