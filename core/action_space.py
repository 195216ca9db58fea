"""The action space (``cyntra.action_space.v1``): bins and validity rules as data.

An action is the tuple ``(swarm_id, max_candidates_bin, max_minutes_bin, max_iterations_bin)``.
Bins and rules are data, stored in every planner_input and every bundle, so that training and
inference always agree on what an action is and which ones are allowed. Every policy answers with
a distribution over :meth:`ActionSpace.valid_actions` of the job type, in canonical order, so that
decoding, confidence, calibration and sampling are written once.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
import numpy as np
import numpy.typing as npt

from swarm_planner.core.errors import InvalidActionError
from swarm_planner.core.jsonconv import converter, field_converter, json_field

NA: Literal["NA"] = "NA"
Bin = int | Literal["NA"]
"""A bin value: a number, or ``"NA"`` for no cap."""

HEADS: tuple[str, ...] = ("swarm", "candidates", "minutes", "iterations")
"""The four action heads, in tuple order."""

RULE_FIELDS: tuple[str, ...] = (
    "job_type",
    "swarm_id",
    "max_candidates_bin",
    "max_minutes_bin",
    "max_iterations_bin",
)
"""The names a validity rule may test or constrain."""

_OPS = ("eq", "ne", "min")


def bin_sort_key(value: Bin) -> tuple[int, int]:
    """Numbers ascending, ``NA`` last: the canonical bin order."""
    return (1, 0) if value == NA else (0, int(value))


def format_bin(value: Bin) -> str:
    return str(value)


def _check_bin(value: Any) -> Bin:
    if value == NA and isinstance(value, str):
        return NA
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer or 'NA', got {value!r}")
    return value


def _structure_bin(value: Any, _: Any) -> Bin:
    return _check_bin(value)


converter.register_structure_hook(Bin, _structure_bin)


@attrs.frozen(order=True)
class JointAction:
    """One joint action; ``text`` (``speculate_vote|2|30|NA``) is its stable printable key."""

    swarm_id: str
    max_candidates_bin: Bin
    max_minutes_bin: Bin
    max_iterations_bin: Bin

    @property
    def text(self) -> str:
        return "|".join(
            [
                self.swarm_id,
                format_bin(self.max_candidates_bin),
                format_bin(self.max_minutes_bin),
                format_bin(self.max_iterations_bin),
            ]
        )

    def as_fields(self) -> dict[str, Bin | str]:
        return {
            "swarm_id": self.swarm_id,
            "max_candidates_bin": self.max_candidates_bin,
            "max_minutes_bin": self.max_minutes_bin,
            "max_iterations_bin": self.max_iterations_bin,
        }

    def canonical_key(self) -> tuple[str, tuple[int, int], tuple[int, int], tuple[int, int]]:
        return (
            self.swarm_id,
            bin_sort_key(self.max_candidates_bin),
            bin_sort_key(self.max_minutes_bin),
            bin_sort_key(self.max_iterations_bin),
        )


@attrs.frozen
class Constraint:
    """What a rule demands of one field: ``eq`` (the default), ``ne`` or ``min`` (numbers only)."""

    op: Literal["eq", "ne", "min"]
    value: Bin | str

    def holds(self, actual: Bin | str) -> bool:
        if self.op == "eq":
            return actual == self.value
        if self.op == "ne":
            return actual != self.value
        # min: a cap of NA is no cap, so it never breaks a lower bound.
        if actual == NA or not isinstance(actual, int):
            return True
        assert isinstance(self.value, int)
        return actual >= self.value

    def to_json(self) -> Any:
        return self.value if self.op == "eq" else {self.op: self.value}

    @classmethod
    def from_json(cls, raw: Any) -> Constraint:
        if isinstance(raw, Mapping):
            if len(raw) != 1 or next(iter(raw)) not in _OPS:
                raise ValueError(
                    f"a constraint object has exactly one key of {'|'.join(_OPS)}, "
                    f"got {dict(raw)!r}"
                )
            op, value = next(iter(raw.items()))
            if op == "min" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"'min' takes an integer, got {value!r}")
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise ValueError(f"a constraint value is a string or an integer, got {value!r}")
            return cls(op, value)
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            raise ValueError(f"a constraint is a string, an integer or an object, got {raw!r}")
        return cls("eq", raw)


@attrs.frozen
class ValidityRule:
    """``if`` every condition holds, ``then`` every constraint must hold.

    JSON: ``{"id": ..., "description": ..., "if": {"swarm_id": "serial_handoff"},
    "then": {"max_candidates_bin": 1}}``; a constraint is a value (equality) or an object
    ``{"ne": "NA"}`` / ``{"min": 1}``. This is the shape kernels already store in
    ``action_space.validity_rules``.
    """

    when: tuple[tuple[str, Bin | str], ...]
    then: tuple[tuple[str, Constraint], ...]
    id: str | None = None
    description: str | None = None

    def applies(self, context: Mapping[str, Bin | str]) -> bool:
        return all(context.get(k) == v for k, v in self.when)

    def holds(self, context: Mapping[str, Bin | str]) -> bool:
        if not self.applies(context):
            return True
        return all(c.holds(context[field]) for field, c in self.then)

    @property
    def label(self) -> str:
        return self.id or self.description or repr(self.to_json())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.id is not None:
            out["id"] = self.id
        if self.description is not None:
            out["description"] = self.description
        out["if"] = dict(self.when)
        out["then"] = {k: c.to_json() for k, c in self.then}
        return out

    @classmethod
    def from_json(cls, raw: Any) -> ValidityRule:
        if not isinstance(raw, Mapping):
            raise TypeError(f"a validity rule is an object, got {raw!r}")
        extra = set(raw) - {"id", "description", "if", "then"}
        if extra:
            raise ValueError(
                f"unknown key(s) {sorted(extra)} in a validity rule; "
                "allowed: description, id, if, then"
            )
        if "then" not in raw:
            raise ValueError("a validity rule needs a 'then' object")
        when_raw = raw.get("if", {})
        then_raw = raw["then"]
        for part, obj in (("if", when_raw), ("then", then_raw)):
            if not isinstance(obj, Mapping):
                raise TypeError(f"'{part}' is an object, got {obj!r}")
            for key in obj:
                if key not in RULE_FIELDS:
                    raise ValueError(
                        f"'{part}' names {key!r}; a rule may name {', '.join(RULE_FIELDS)}"
                    )
        when = []
        for k, v in when_raw.items():
            if isinstance(v, bool) or not isinstance(v, (str, int)):
                raise ValueError(f"'if.{k}' is a string or an integer, got {v!r}")
            when.append((k, v))
        # Keys are kept sorted: JSON objects have no order, so neither do equal rules.
        then = tuple(sorted((k, Constraint.from_json(v)) for k, v in then_raw.items()))
        if not then:
            raise ValueError("'then' names no constraint")
        for label in ("id", "description"):
            if label in raw and not isinstance(raw[label], str):
                raise TypeError(f"'{label}' is a string, got {raw[label]!r}")
        return cls(tuple(sorted(when)), then, raw.get("id"), raw.get("description"))


converter.register_structure_hook(ValidityRule, lambda raw, _: ValidityRule.from_json(raw))
converter.register_unstructure_hook(ValidityRule, ValidityRule.to_json)


@functools.lru_cache(maxsize=1)
def default_validity_rules() -> tuple[ValidityRule, ...]:
    """The four rules of CONTRACTS.md, as data (immutable, built once)."""
    return tuple(
        ValidityRule.from_json(r)
        for r in (
            {
                "id": "serial_single_candidate",
                "description": "If swarm_id=serial_handoff, then max_candidates_bin=1.",
                "if": {"swarm_id": "serial_handoff"},
                "then": {"max_candidates_bin": 1},
            },
            {
                "id": "code_no_iterations",
                "description": 'If job_type="code", then max_iterations_bin="NA".',
                "if": {"job_type": "code"},
                "then": {"max_iterations_bin": "NA"},
            },
            {
                "id": "fab_world_capped_candidates",
                "description": 'If job_type="fab-world", then max_candidates_bin is not "NA".',
                "if": {"job_type": "fab-world"},
                "then": {"max_candidates_bin": {"ne": "NA"}},
            },
            {
                "id": "positive_bins",
                "description": "Every numeric bin is at least 1.",
                "if": {},
                "then": {
                    "max_candidates_bin": {"min": 1},
                    "max_minutes_bin": {"min": 1},
                    "max_iterations_bin": {"min": 1},
                },
            },
        )
    )


DEFAULT_SWARM_IDS: tuple[str, ...] = ("serial_handoff", "speculate_vote")
DEFAULT_CANDIDATES_BINS: tuple[Bin, ...] = (1, 2, 3, NA)
DEFAULT_MINUTES_BINS: tuple[Bin, ...] = (15, 30, 45, 60, 120, NA)
DEFAULT_ITERATIONS_BINS: tuple[Bin, ...] = (1, 2, 3, 5, NA)


def _canonical_bins(bins: Sequence[Bin]) -> tuple[Bin, ...]:
    checked = [_check_bin(b) for b in bins]
    if not checked:
        raise ValueError("a bin list is empty")
    if len(set(checked)) != len(checked):
        raise ValueError(f"bins repeat a value: {list(bins)!r}")
    return tuple(sorted(checked, key=bin_sort_key))


def _canonical_swarms(ids: Sequence[str]) -> tuple[str, ...]:
    if not ids:
        raise ValueError("swarm_ids is empty")
    for i in ids:
        if not isinstance(i, str) or not i:
            raise TypeError(f"a swarm id is a non-empty string, got {i!r}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"swarm_ids repeat a value: {list(ids)!r}")
    return tuple(sorted(ids))


@attrs.frozen(cache_hash=True)
class ActionSpace:
    """Bins and validity rules; the source of valid joint actions and masks for a job type.

    Bins are kept in canonical order whatever order they were given in, so two spaces that list
    the same bins differently are equal and enumerate actions identically.
    """

    swarm_ids: tuple[str, ...] = json_field(
        default=DEFAULT_SWARM_IDS, converter=field_converter("swarm_ids", _canonical_swarms)
    )
    max_candidates_bins: tuple[Bin, ...] = json_field(
        default=DEFAULT_CANDIDATES_BINS,
        converter=field_converter("max_candidates_bins", _canonical_bins),
    )
    max_minutes_bins: tuple[Bin, ...] = json_field(
        default=DEFAULT_MINUTES_BINS,
        converter=field_converter("max_minutes_bins", _canonical_bins),
    )
    max_iterations_bins: tuple[Bin, ...] = json_field(
        default=DEFAULT_ITERATIONS_BINS,
        converter=field_converter("max_iterations_bins", _canonical_bins),
    )
    validity_rules: tuple[ValidityRule, ...] = json_field(factory=default_validity_rules)

    def head_bins(self, head: str) -> tuple[Bin | str, ...]:
        return {
            "swarm": self.swarm_ids,
            "candidates": self.max_candidates_bins,
            "minutes": self.max_minutes_bins,
            "iterations": self.max_iterations_bins,
        }[head]

    def all_actions(self) -> tuple[JointAction, ...]:
        """Every tuple of the bins, valid or not, in canonical order (the fixed output width)."""
        return _all_actions(self)

    def violations(self, action: JointAction, job_type: str) -> list[str]:
        """Labels of the rules ``action`` breaks for ``job_type`` (empty when valid)."""
        if action.swarm_id not in self.swarm_ids:
            return [f"swarm_id {action.swarm_id!r} is not one of {'|'.join(self.swarm_ids)}"]
        out = []
        for head, value in zip(HEADS[1:], _bins_of(action), strict=True):
            if value not in self.head_bins(head):
                out.append(f"{head} bin {value!r} is not one of {list(self.head_bins(head))}")
        context: dict[str, Bin | str] = {"job_type": job_type, **action.as_fields()}
        out.extend(r.label for r in self.validity_rules if not r.holds(context))
        return out

    def is_valid(self, action: JointAction, job_type: str) -> bool:
        return not self.violations(action, job_type)

    def check(self, action: JointAction, job_type: str) -> JointAction:
        """Return ``action`` or raise :class:`InvalidActionError` listing the broken rules."""
        broken = self.violations(action, job_type)
        if broken:
            raise InvalidActionError(
                f"action {action.text} is not valid for job_type {job_type!r}: {'; '.join(broken)}"
            )
        return action

    def valid_actions(self, job_type: str) -> tuple[JointAction, ...]:
        """The valid joint actions of ``job_type`` in canonical order."""
        return _valid_actions(self, job_type)

    def joint_mask(self, job_type: str) -> npt.NDArray[np.bool_]:
        """Boolean mask over :meth:`all_actions`: True where the action is valid for the job."""
        return np.array(_joint_mask(self, job_type), dtype=bool)

    def job_mask(self, job_type: str) -> npt.NDArray[np.bool_]:
        """Like :meth:`joint_mask`, but the shared read-only array (no copy: the hot path)."""
        return _joint_mask(self, job_type)

    def head_masks(self, job_type: str) -> dict[str, npt.NDArray[np.bool_]]:
        """Per head, True for each bin that appears in at least one valid action of the job."""
        valid = self.valid_actions(job_type)
        out = {}
        for i, head in enumerate(HEADS):
            used = {_values_of(a)[i] for a in valid}
            out[head] = np.array([b in used for b in self.head_bins(head)], dtype=bool)
        return out

    def index_of(self, action: JointAction, job_type: str) -> int:
        """Position of ``action`` among the valid actions of the job (raises when invalid)."""
        index = _valid_index(self, job_type).get(action)
        if index is None:
            self.check(action, job_type)
            raise InvalidActionError(f"action {action.text} is not in the action space")
        return index

    def nearest_valid(self, action: JointAction, job_type: str) -> JointAction | None:
        """``action`` if valid, else the valid action of the same swarm that changes the fewest
        bins (ties: canonical order); None when the swarm has no valid action at all.

        Rule-driven, so it repairs what any rule set breaks (a serial run recorded with two
        candidates becomes one candidate; a code job's iteration cap becomes NA).
        """
        if self.is_valid(action, job_type):
            return action
        best: JointAction | None = None
        best_changes = 4
        for other in self.valid_actions(job_type):
            if other.swarm_id != action.swarm_id:
                continue
            changes = sum(a != b for a, b in zip(_bins_of(other), _bins_of(action), strict=True))
            if changes < best_changes:
                best, best_changes = other, changes
        return best

    def nearest_action(
        self,
        swarm_id: str,
        candidates: int | None,
        minutes: int | None,
        iterations: int | None,
    ) -> JointAction:
        """Map executed numbers to the bins of this space (exact, else nearest, ties lower)."""
        return JointAction(
            swarm_id,
            nearest_bin(candidates, self.max_candidates_bins),
            nearest_bin(minutes, self.max_minutes_bins),
            nearest_bin(iterations, self.max_iterations_bins),
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = converter.unstructure(self)
        return data


def _bins_of(action: JointAction) -> tuple[Bin, Bin, Bin]:
    return (action.max_candidates_bin, action.max_minutes_bin, action.max_iterations_bin)


def _values_of(action: JointAction) -> tuple[Bin | str, ...]:
    return (action.swarm_id, *_bins_of(action))


@functools.lru_cache(maxsize=64)
def _all_actions(space: ActionSpace) -> tuple[JointAction, ...]:
    return tuple(
        JointAction(s, c, m, i)
        for s, c, m, i in itertools.product(
            space.swarm_ids,
            space.max_candidates_bins,
            space.max_minutes_bins,
            space.max_iterations_bins,
        )
    )


@functools.lru_cache(maxsize=256)
def _joint_mask(space: ActionSpace, job_type: str) -> npt.NDArray[np.bool_]:
    mask = np.array([space.is_valid(a, job_type) for a in _all_actions(space)], dtype=bool)
    mask.setflags(write=False)
    return mask


@functools.lru_cache(maxsize=256)
def _valid_actions(space: ActionSpace, job_type: str) -> tuple[JointAction, ...]:
    mask = _joint_mask(space, job_type)
    return tuple(a for a, ok in zip(_all_actions(space), mask, strict=True) if ok)


@functools.lru_cache(maxsize=256)
def _valid_index(space: ActionSpace, job_type: str) -> dict[JointAction, int]:
    return {a: i for i, a in enumerate(_valid_actions(space, job_type))}


def nearest_bin(value: int | None, bins: Sequence[Bin]) -> Bin:
    """``None`` → NA; an exact bin; else the nearest numeric bin, ties to the lower (20→15, 90→60).

    A space with no numeric bin maps every number to NA, the only bin it has.
    """
    if value is None:
        return NA
    numeric = sorted(b for b in bins if b != NA and isinstance(b, int))
    if not numeric:
        return NA
    if value in numeric:
        return value
    return min(numeric, key=lambda b: (abs(b - value), b))


def minutes_from_timeout(timeout_seconds: int | float | None) -> int | None:
    """Minutes of a timeout as CONTRACTS.md defines them: ``int(timeout_seconds / 60)``."""
    if timeout_seconds is None:
        return None
    return int(timeout_seconds / 60)
