"""The files a kernel writes into its repo root, as records: the part of each that we read.

These are documents other programs write, so the records are :func:`open_record`s (keys we do
not name are the rest of the document, not errors) and every field has a default. They are
read with :func:`jsonconv.structure_repairing`: a value of the wrong type is dropped and
counted, so one odd field never costs a run. What the values mean (statuses, the action) is
decided in :mod:`swarm_planner.core.archives`; this module only says what the files hold.

Where kernels differ, both forms are read: ``verification.gates`` is an object
``{name: {passed, score, fail_codes}}`` or an array of ``{name, passed, score, fail_codes}``;
ids are strings or numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from cattrs.errors import IterableValidationError, IterableValidationNote

from swarm_planner.core.jsonconv import (
    converter,
    json_field,
    non_negative,
    note_repair,
    open_record,
)

ROLLOUT_V1 = "cyntra.rollout.v1"


def _structure_id(value: Any, _: Any) -> str | None:
    """An id: text, or a number written as text (noted)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        note_repair("id given as a number -> text")
        return str(value)
    text: str = converter.structure(value, str)
    return text or None


def id_field() -> Any:
    return json_field(default=None, structure=_structure_id)


# -- proof.json ---------------------------------------------------------------------------------


@open_record
@attrs.frozen
class GateResult:
    """One verification gate. ``name`` comes from the key in the object form of ``gates``."""

    name: str | None = None
    passed: bool = False
    score: float | None = None
    fail_codes: tuple[str, ...] = ()


def _structure_gates(value: Any, _: Any) -> tuple[GateResult, ...]:
    """``gates`` as an object ``{name: gate}`` or as an array of gates that carry a ``name``."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        named = converter.structure(value, dict[str, GateResult])
        return tuple(attrs.evolve(gate, name=name) for name, gate in named.items())
    gates: tuple[GateResult, ...] = converter.structure(value, tuple[GateResult, ...])
    problems: list[Exception] = []
    for index, gate in enumerate(gates):
        if not gate.name:
            problem = ValueError("a gate in an array of gates needs a name")
            note = IterableValidationNote(f"gate @ index {index}", index, GateResult)
            setattr(problem, "__notes__", [note])  # noqa: B010 (add_note is 3.11+)
            problems.append(problem)
    if problems:
        raise IterableValidationError("gates without a name", problems, tuple)
    return gates


@open_record
@attrs.frozen
class Verification:
    all_passed: bool = False
    gates: tuple[GateResult, ...] = json_field(factory=tuple, structure=_structure_gates)
    blocking_failures: tuple[str, ...] = ()


@open_record
@attrs.frozen
class ProofMetadata:
    started_at: str | None = None
    completed_at: str | None = None
    duration_ms: int | None = json_field(default=None, validator=non_negative)
    cost_usd: float | None = json_field(default=None, validator=non_negative)
    tokens_used: int | None = json_field(default=None, validator=non_negative)


@open_record
@attrs.frozen
class Proof:
    """``proof.json``: the outcome of one workcell."""

    workcell_id: str | None = id_field()
    status: str | None = None
    metadata: ProofMetadata = attrs.field(factory=ProofMetadata)
    verification: Verification = attrs.field(factory=Verification)


# -- manifest.json ------------------------------------------------------------------------------


@open_record
@attrs.frozen
class PlannerSection:
    """``manifest["planner"]`` (or a rollout's): each part is read on its own by the archive
    reader, so that a bad recorded input never costs the run its executed plan."""

    planner_input: Any = None
    planner_action: Any = None
    executed_plan: Any = None
    timeout_seconds_override: int | None = None


@open_record
@attrs.frozen
class ManifestIssue:
    id: str | None = id_field()
    tags: tuple[str, ...] = ()


@open_record
@attrs.frozen
class ManifestControl:
    speculate_parallelism: int | None = None


@open_record
@attrs.frozen
class Manifest:
    """``manifest.json``: what the kernel dispatched."""

    workcell_id: str | None = id_field()
    job_type: str | None = None
    issue: ManifestIssue = attrs.field(factory=ManifestIssue)
    speculate_mode: bool | None = None
    control: ManifestControl = attrs.field(factory=ManifestControl)
    planner: PlannerSection | None = None


# -- rollout.json -------------------------------------------------------------------------------


@open_record
@attrs.frozen
class RolloutOutcomes:
    verification: Verification = attrs.field(factory=Verification)
    """A rollout's verification: ``all_passed`` and ``blocking_failures`` (no gates)."""


@open_record
@attrs.frozen
class RolloutScores:
    duration_ms: int | None = json_field(default=None, validator=non_negative)
    cost_usd: float | None = json_field(default=None, validator=non_negative)


@open_record
@attrs.frozen
class RolloutMetadata:
    started_at: str | None = None


@open_record
@attrs.frozen
class Rollout:
    """``rollout.json`` (read when its ``schema_version`` is ``cyntra.rollout.v1``)."""

    schema_version: str | None = None
    workcell_id: str | None = id_field()
    job_type: str | None = None
    issue_id: str | None = id_field()
    metadata: RolloutMetadata = attrs.field(factory=RolloutMetadata)
    scores: RolloutScores = attrs.field(factory=RolloutScores)
    outcomes: RolloutOutcomes = attrs.field(factory=RolloutOutcomes)
    planner: PlannerSection | None = None


# -- .beads/issues.jsonl --------------------------------------------------------------------------


@open_record
@attrs.frozen
class IssueLine:
    """One line of ``.beads/issues.jsonl``; the beads format has more keys, which are ignored.

    Enum values stay raw here: :func:`contracts.repair_issue_fields` decides what an unknown
    one becomes."""

    id: str | None = id_field()
    title: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    dk_priority: Any = None
    dk_risk: Any = None
    dk_size: Any = None
    dk_tool_hint: str | None = None
    dk_attempts: Any = None

    def issue_fields(self) -> dict[str, Any]:
        """The fields of a planner ``Issue`` (before the issue-file repairs)."""
        out: dict[str, Any] = {"issue_id": self.id, "tags": list(self.tags)}
        for key in ("dk_priority", "dk_risk", "dk_size", "dk_attempts"):
            out[key] = getattr(self, key)
        for key in ("dk_tool_hint", "title", "description"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


# -- universes/<id>/ ----------------------------------------------------------------------------


@open_record
@attrs.frozen
class UniverseFileDefaults:
    swarm_id: str | None = None
    objective_id: str | None = None


@open_record
@attrs.frozen
class UniverseFile:
    """``universe.yaml``: the universe's defaults (the rest is the kernel's business)."""

    defaults: UniverseFileDefaults = attrs.field(factory=UniverseFileDefaults)


@open_record
@attrs.frozen
class SwarmsFile:
    """``swarms.yaml``: the swarm catalog; its ids (sorted) are the action space's swarms."""

    swarms: dict[str, Any] = attrs.field(factory=dict)


__all__ = [
    "ROLLOUT_V1",
    "GateResult",
    "IssueLine",
    "Manifest",
    "ManifestControl",
    "ManifestIssue",
    "PlannerSection",
    "Proof",
    "ProofMetadata",
    "Rollout",
    "RolloutMetadata",
    "RolloutOutcomes",
    "RolloutScores",
    "SwarmsFile",
    "UniverseFile",
    "UniverseFileDefaults",
    "Verification",
]
