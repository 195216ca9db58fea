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

from swarm_planner.core import jsonconv
from swarm_planner.core.documents import short_repr
from swarm_planner.core.errors import ContractError, InvalidActionError
from swarm_planner.core.jsonconv import FieldProblem, converter, field_converter, json_field

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

    def as_list(self) -> list[Bin | str]:
        """The field's action tuple form ``[swarm, candidates, minutes, iterations]`` (its
        bench files write actions this way)."""
        return [
            self.swarm_id,
            self.max_candidates_bin,
            self.max_minutes_bin,
            self.max_iterations_bin,
        ]

    @classmethod
    def from_list(cls, value: Any) -> JointAction:
        """Read the action tuple form; a ValueError says what was expected."""
        if not isinstance(value, list | tuple) or len(value) != 4:
            raise ValueError(
                "expected an action [swarm_id, candidates, minutes, iterations], got "
                f"{short_repr(value)}"
            )
        swarm, *bins = value
        if not isinstance(swarm, str) or not swarm:
            raise ValueError(f"the swarm_id must be a non-empty string, got {swarm!r}")
        try:
            checked = [_check_bin(b) for b in bins]
        except TypeError as exc:
            raise ValueError(str(exc)) from None
        return cls(swarm, *checked)

    def canonical_key(self) -> tuple[str, tuple[int, int], tuple[int, int], tuple[int, int]]:
        return (
            self.swarm_id,
            bin_sort_key(self.max_candidates_bin),
            bin_sort_key(self.max_minutes_bin),
            bin_sort_key(self.max_iterations_bin),
        )


NOT_SUFFIX = "_not"
"""The field's kernels write "not equal" as a key ``<name>_not`` (``max_candidates_bin_not``)."""


@attrs.frozen
class Constraint:
    """What a rule demands of one field: ``eq`` (the default), ``ne`` or ``min`` (numbers only)."""

    op: Literal["eq", "ne", "min"]
    value: Bin | str

    def holds(self, actual: Bin | str | None) -> bool:
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

    def sort_key(self) -> tuple[str, str, str]:
        return (self.op, type(self.value).__name__, str(self.value))


Condition = tuple[str, Constraint]
"""A field name and what it must satisfy."""


def _conditions_key(conditions: tuple[Condition, ...]) -> tuple[Any, ...]:
    return tuple((field, c.op, type(c.value).__name__, c.value) for field, c in conditions)


@attrs.frozen(eq=False)
class ValidityRule:
    """``if`` every condition holds, ``then`` every constraint must hold.

    Two JSON forms are read into this one representation (and ours is written):

    - ours: ``{"id": ..., "description": ..., "if": {"swarm_id": "serial_handoff"}, "then":
      {"max_candidates_bin": 1}}``, where a constraint is a value (equality) or an object
      ``{"ne": "NA"}`` / ``{"min": 1}``;
    - the field's kernels': no ``id``, and "not equal" as a ``<name>_not`` key:
      ``{"then": {"max_candidates_bin_not": "NA"}}``.

    A rule in neither form is an error naming its position, its description and the key that
    is not understood; it never passes silently.
    """

    when: tuple[Condition, ...]
    then: tuple[Condition, ...]
    id: str | None = None
    description: str | None = None
    key: tuple[Any, ...] = attrs.field(init=False, repr=False, default=())
    """Everything the rule is, as plain values: equality and hashing compare it (an action space
    is compared on every decision whose input brings its own copy; comparing records field by
    field cost more than the decision's model run)."""

    def __attrs_post_init__(self) -> None:
        object.__setattr__(
            self,
            "key",
            (_conditions_key(self.when), _conditions_key(self.then), self.id, self.description),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ValidityRule) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def applies(self, context: Mapping[str, Bin | str]) -> bool:
        return all(c.holds(context.get(field)) for field, c in self.when)

    def holds(self, context: Mapping[str, Bin | str]) -> bool:
        if not self.applies(context):
            return True
        return all(c.holds(context.get(field)) for field, c in self.then)

    @property
    def label(self) -> str:
        return self.id or self.description or repr(self.to_json())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.id is not None:
            out["id"] = self.id
        if self.description is not None:
            out["description"] = self.description
        out["if"] = _conditions_json(self.when)
        out["then"] = _conditions_json(self.then)
        return out


def _conditions_json(conditions: tuple[Condition, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, constraint in conditions:
        if field not in out:
            out[field] = constraint.to_json()
        else:  # a second demand on the same field (read from ``<name>_not``)
            out[f"{field}{NOT_SUFFIX}"] = constraint.value
    return out


@attrs.frozen
class _RuleDocument:
    """A validity rule as JSON holds it, before its conditions are read."""

    then: dict[str, Any]
    if_: dict[str, Any] = json_field(factory=dict, json_name="if")
    id: str | None = json_field(optional=True)
    description: str | None = json_field(optional=True)


def _constraint(raw: Any, key: str) -> Constraint:
    """One constraint: a value (equality), or ``{"ne": v}`` / ``{"min": n}``."""
    if isinstance(raw, Mapping):
        if len(raw) != 1 or next(iter(raw)) not in _OPS:
            raise ValueError(
                f"a constraint object has exactly one key of {'|'.join(_OPS)}, got {dict(raw)!r}"
            )
        op, value = next(iter(raw.items()))
        if op == "min" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"'min' takes an integer, got {value!r}")
    else:
        op, value = "eq", raw
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"a constraint value is a string or an integer, got {value!r}")
    return Constraint(op, value)


def _conditions(part: str, raw: Mapping[str, Any], rule: str) -> tuple[Condition, ...]:
    out: list[Condition] = []
    for key, value in raw.items():
        field, negated = key, False
        if key not in RULE_FIELDS and key.endswith(NOT_SUFFIX):
            field, negated = key[: -len(NOT_SUFFIX)], True
        if field not in RULE_FIELDS:
            raise FieldProblem(
                f"{part}.{key}",
                f"not a field a rule may name ({', '.join(RULE_FIELDS)}, or <name>{NOT_SUFFIX} "
                f"for 'not equal'); the rule {rule} is not understood",
            )
        try:
            constraint = _constraint(value, key)
        except ValueError as exc:
            raise FieldProblem(
                f"{part}.{key}", f"{exc}; the rule {rule} is not understood"
            ) from exc
        if negated:
            if constraint.op != "eq":
                raise FieldProblem(
                    f"{part}.{key}",
                    f"a {NOT_SUFFIX} key takes a value, got {value!r}; the rule {rule} is not "
                    "understood",
                )
            constraint = Constraint("ne", constraint.value)
        out.append((field, constraint))
    # JSON objects have no order, so neither do equal rules.
    return tuple(sorted(out, key=lambda c: (c[0], c[1].sort_key())))


def _structure_rule(raw: Any, _: Any) -> ValidityRule:
    try:
        document = jsonconv.structure(raw, _RuleDocument)
    except ContractError as exc:
        named = raw.get("description") or raw.get("id") if isinstance(raw, Mapping) else None
        raise ValueError(
            f"the rule {named or '(no description)'!r} is not understood: "
            + "; ".join(exc.problems)
        ) from exc
    rule = repr(document.description or document.id or "(no description)")
    when = _conditions("if", document.if_, rule)
    then = _conditions("then", document.then, rule)
    if not then:
        raise FieldProblem("then", f"names no constraint; the rule {rule} is not understood")
    return ValidityRule(when, then, document.id, document.description)


converter.register_structure_hook(ValidityRule, _structure_rule)
converter.register_unstructure_hook(ValidityRule, ValidityRule.to_json)


def read_rule(raw: Any) -> ValidityRule:
    """One validity rule from JSON (either form); a :class:`ContractError` says what is wrong."""
    rule: ValidityRule = jsonconv.structure(raw, ValidityRule, source="validity rule")
    return rule


@functools.lru_cache(maxsize=1)
def default_validity_rules() -> tuple[ValidityRule, ...]:
    """The four rules of docs/formats.md, as data (immutable, built once)."""
    return tuple(
        read_rule(r)
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


MAX_ACTIONS = 20_000
"""Most action tuples a space may have (the default has 240)."""
MAX_RULES = 256
"""Most validity rules a space may have."""

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


def _rule_tuple(rules: Sequence[ValidityRule]) -> tuple[ValidityRule, ...]:
    """Rules as a tuple (a space is hashed); a list built in code is fine."""
    if isinstance(rules, (str, bytes, Mapping)) or not isinstance(rules, Sequence):
        raise TypeError(f"expected an array of validity rules, got {type(rules).__name__}")
    for rule in rules:
        if not isinstance(rule, ValidityRule):
            raise TypeError(f"a validity rule is a ValidityRule, got {type(rule).__name__}")
    return tuple(rules)


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
    validity_rules: tuple[ValidityRule, ...] = json_field(
        factory=default_validity_rules,
        converter=field_converter("validity_rules", _rule_tuple),
    )

    def __attrs_post_init__(self) -> None:
        # Every mask and distribution is as wide as the tuples: a space too big to hold is
        # refused when it is built, not when the first decision enumerates it.
        size = (
            len(self.swarm_ids)
            * len(self.max_candidates_bins)
            * len(self.max_minutes_bins)
            * len(self.max_iterations_bins)
        )
        if size > MAX_ACTIONS:
            raise FieldProblem(
                "swarm_ids",
                f"the bins make {size:,} action tuples; at most {MAX_ACTIONS:,} are allowed",
            )
        if len(self.validity_rules) > MAX_RULES:
            raise FieldProblem(
                "validity_rules",
                f"{len(self.validity_rules):,} rules; at most {MAX_RULES:,} are allowed",
            )

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
        """Whether the rules allow ``action`` for the job type (a lookup in its cached set of
        valid actions, which :meth:`violations` agrees with: tested)."""
        return action in _valid_index(self, job_type)

    def check(self, action: JointAction, job_type: str) -> JointAction:
        """Return ``action`` or raise :class:`InvalidActionError` listing the broken rules."""
        if self.is_valid(action, job_type):
            return action
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

    def equivalent(self, other: ActionSpace) -> bool:
        """True when both spaces have the same bins and allow the same actions for every job
        type, however their rules are written (the field's three rules and our four with its
        bound on numbers, say, when every bin is at least 1)."""
        return self is other or self == other or _equivalent(self, other)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = converter.unstructure(self)
        return data


_OTHER_JOB_TYPE = "\x00any other job type"
"""Stands for every job type no rule names (they all get the same mask)."""


_EQUIVALENCE_BUDGET = 50_000
"""Most (job type × rule) evaluations spent comparing two spaces whose rules differ; past it
they count as different (the input is refused, never a long wait)."""


@functools.lru_cache(maxsize=64)
def _equivalent(a: ActionSpace, b: ActionSpace) -> bool:
    if (a.swarm_ids, a.max_candidates_bins, a.max_minutes_bins, a.max_iterations_bins) != (
        b.swarm_ids,
        b.max_candidates_bins,
        b.max_minutes_bins,
        b.max_iterations_bins,
    ):
        return False
    if _effective_rules(a) == _effective_rules(b):  # the same rules, however labelled
        return True
    named = {
        str(c.value)
        for space in (a, b)
        for rule in space.validity_rules
        for field, c in (*rule.when, *rule.then)
        if field == "job_type"
    }
    cost = (len(named) + 1) * (len(a.validity_rules) + len(b.validity_rules))
    if cost > _EQUIVALENCE_BUDGET:
        return False
    return all(
        bool(np.array_equal(_joint_mask(a, job), _joint_mask(b, job)))
        for job in sorted(named | {_OTHER_JOB_TYPE})
    )


@functools.lru_cache(maxsize=64)
def _effective_rules(space: ActionSpace) -> frozenset[tuple[Any, ...]]:
    """The rules that can forbid an action of this space's bins, without ids or descriptions:
    a rule whose demands every action meets (our bound on numbers, when every bin is at least
    1) forbids nothing."""
    columns = _columns(space)
    out = set()
    for rule in space.validity_rules:
        if all(field != "job_type" for field, _ in rule.then):
            holds = _evaluate(rule.then, columns, job_type=None)
            if bool(holds.all()):
                continue
        out.add(rule.key[:2])
    return frozenset(out)


_ACTION_FIELDS = ("swarm_id", "max_candidates_bin", "max_minutes_bin", "max_iterations_bin")


@functools.lru_cache(maxsize=64)
def _columns(space: ActionSpace) -> dict[str, npt.NDArray[Any]]:
    """Per action field, its value for every tuple (objects, for equality) and as numbers
    (``NA`` and text as infinity: no cap passes any minimum)."""
    actions = _all_actions(space)
    columns: dict[str, npt.NDArray[Any]] = {}
    for field in _ACTION_FIELDS:
        values = [getattr(a, field) for a in actions]
        objects = np.empty(len(values), dtype=object)
        objects[:] = values
        columns[field] = objects
        columns[f"{field}#"] = np.array(
            [v if isinstance(v, int) else np.inf for v in values], dtype=np.float64
        )
    return columns


def _evaluate(
    conditions: tuple[Condition, ...], columns: dict[str, npt.NDArray[Any]], job_type: str | None
) -> npt.NDArray[np.bool_]:
    """Where every condition holds, over all tuples at once (the vectorised
    :meth:`Constraint.holds`)."""
    n = len(columns["swarm_id"])
    out = np.ones(n, dtype=bool)
    for field, c in conditions:
        if field == "job_type":
            if not c.holds(job_type):
                return np.zeros(n, dtype=bool)
            continue
        if c.op == "min":
            out &= columns[f"{field}#"] >= c.value
        elif c.op == "eq":
            out &= columns[field] == c.value
        else:
            out &= columns[field] != c.value
    return out


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
    """Valid tuples of the job type: each rule evaluated over every tuple at once (a space may
    hold 20,000 tuples and 256 rules; one action at a time took a minute)."""
    columns = _columns(space)
    mask = np.ones(len(columns["swarm_id"]), dtype=bool)
    for rule in space.validity_rules:
        applies = _evaluate(rule.when, columns, job_type)
        if applies.any():
            mask &= ~applies | _evaluate(rule.then, columns, job_type)
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
    """Minutes of a timeout as docs/formats.md defines them: ``int(timeout_seconds / 60)``."""
    if timeout_seconds is None:
        return None
    return int(timeout_seconds / 60)
