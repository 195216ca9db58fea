"""The model registry: versioned, sealed bundles with their lineage, and the one the kernel runs.

A registry is a folder::

    versions/v1/ v2/ ...     sealed bundles, copied in whole and never changed afterwards
    lineage/v1.json ...      how each came to be (parent, data and bench hashes, stage, criteria)
    current.json             {"version": "v3", ...}: what a kernel naming registry://DIR runs
    promotions.jsonl         every promotion and rollback, in order

Why a pointer file: promotion and rollback must be atomic for a kernel that reads the registry
while they happen. ``current.json`` is replaced by a rename (after the new content is on disk),
so a reader sees the old version or the new one, never a torn file; a process killed mid-way
leaves the old ``current``. ``promotions.jsonl`` is appended *before* the pointer moves, so a
rollback always knows what came before (an entry whose promotion was cut short is the log's
last line and disagrees with the pointer: it is left out). Writers take a lock file; readers
need none.

A kernel config names ``planner.model.path: registry://DIR``; the decision service resolves it
with :func:`resolve_model_path` and follows ``current`` (see kernel_integration/service.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import attrs

from swarm_planner.core.bundle import BundleError, open_bundle
from swarm_planner.core.documents import read_json_object
from swarm_planner.core.errors import PlannerError
from swarm_planner.core.jsonconv import json_field, structure, unstructure
from swarm_planner.core.recording import now_rfc3339, write_json_atomic

SCHEME = "registry://"
CURRENT = "current.json"
PROMOTIONS = "promotions.jsonl"
LINEAGE_V1 = "swarm_planner.lineage.v1"
_VERSION = re.compile(r"^v([1-9][0-9]*)$")


class RegistryError(PlannerError, ValueError):
    """A registry that is not one, or a version it does not hold."""


@attrs.frozen
class CriterionResult:
    """One graduation criterion as it was checked."""

    name: str
    metric: str
    value: float | None
    op: str
    threshold: float
    passed: bool
    evaluation: str
    """Which evaluation set: the stage's own, or an earlier stage's (a regression check)."""


@attrs.frozen
class Lineage:
    """How a version came to be; what ``planner models show`` prints."""

    version: str
    created_at: str
    bundle_id: str | None
    model_type: str | None
    source: str
    """Where the bundle was copied from."""
    parent: str | None = None
    """The version it was fine-tuned from (or the version current when it was made)."""
    dataset_hash: str | None = None
    bench_hash: str | None = None
    stage: str | None = None
    pipeline: str | None = None
    criteria: tuple[CriterionResult, ...] = ()
    notes: dict[str, Any] = json_field(factory=dict)
    promoted_by: str | None = None
    promoted_at: str | None = None
    schema_version: str = LINEAGE_V1


@attrs.frozen
class Current:
    """``current.json``."""

    version: str
    promoted_at: str
    promoted_by: str


@attrs.frozen
class Promotion:
    """One line of ``promotions.jsonl``."""

    action: Literal["promote", "rollback"]
    version: str
    previous: str | None
    by: str
    at: str


def _number(version: str) -> int:
    match = _VERSION.match(version)
    if match is None:
        raise RegistryError(f"{version!r} is not a version (v1, v2, ...)")
    return int(match.group(1))


def _who() -> str:
    try:
        return os.environ.get("SWARM_PLANNER_USER") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container): still a name
        return f"uid {os.getuid()}"


class Registry:
    """A registry folder (created on first write)."""

    def __init__(self, folder: str | Path) -> None:
        text = str(folder)
        self.folder = Path(text[len(SCHEME) :] if text.startswith(SCHEME) else text)

    # -- reading ------------------------------------------------------------------------------

    def versions(self) -> list[str]:
        root = self.folder / "versions"
        if not root.is_dir():
            return []
        found = [p.name for p in root.iterdir() if p.is_dir() and _VERSION.match(p.name)]
        return sorted(found, key=_number)

    def path_of(self, version: str) -> Path:
        _number(version)
        path = self.folder / "versions" / version
        if not path.is_dir():
            known = ", ".join(self.versions()) or "none"
            raise RegistryError(f"{self.folder}: no version {version} (versions: {known})")
        return path

    def lineage(self, version: str) -> Lineage:
        self.path_of(version)
        path = self.folder / "lineage" / f"{version}.json"
        try:
            return structure(read_json_object(path), Lineage, source=str(path))
        except PlannerError as exc:
            raise RegistryError(f"{path}: {exc}") from None

    def current(self) -> Current | None:
        """What ``current.json`` says (None: nothing promoted yet)."""
        path = self.folder / CURRENT
        if not path.is_file():
            return None
        try:
            return structure(read_json_object(path), Current, source=str(path))
        except PlannerError as exc:
            raise RegistryError(f"{path}: {exc}") from None

    def current_version(self) -> str | None:
        current = self.current()
        return None if current is None else current.version

    def promotions(self) -> list[Promotion]:
        path = self.folder / PROMOTIONS
        if not path.is_file():
            return []
        out = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                out.append(structure(json.loads(line), Promotion, source=f"{path}:{number}"))
            except (ValueError, PlannerError):
                continue  # a line torn by a crash while it was appended: it never happened
        return out

    # -- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def add(self, bundle: str | Path, lineage: dict[str, Any] | None = None) -> Lineage:
        """Copy a (checked) bundle in as the next version, with its lineage; not promoted."""
        bundle = Path(bundle)
        try:
            metadata = open_bundle(bundle)
        except BundleError as exc:
            raise RegistryError(f"not added: {exc}") from None
        with self._locked():
            versions = self.versions()
            version = f"v{_number(versions[-1]) + 1 if versions else 1}"
            root = self.folder / "versions"
            root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=root, prefix=".adding-"))
            try:
                shutil.copytree(bundle, staging / "bundle")
                open_bundle(staging / "bundle")  # the copy is the bundle, seal and all
                data = {
                    "version": version,
                    "created_at": now_rfc3339(),
                    "bundle_id": str(metadata.get("seal", ""))[:12] or None,
                    "model_type": metadata.get("model_type"),
                    "source": str(bundle.resolve()),
                    "dataset_hash": metadata.get("dataset_hash"),
                    **(lineage or {}),
                }
                record = structure(data, Lineage, source="lineage")  # extra keys refused
                write_json_atomic(
                    self.folder / "lineage" / f"{version}.json", unstructure(record), durable=True
                )
                # The version exists once its folder does: one rename.
                os.rename(staging / "bundle", root / version)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return record

    def promote(
        self, version: str, *, action: Literal["promote", "rollback"] = "promote"
    ) -> Current:
        """Make ``version`` current (atomically); its lineage records who and when."""
        with self._locked():
            return self._promote(version, action)

    def _promote(self, version: str, action: Literal["promote", "rollback"]) -> Current:
        path = self.path_of(version)
        try:
            open_bundle(path)
        except BundleError as exc:
            raise RegistryError(f"{version} is not promoted: {exc}") from None
        previous = self.current_version()
        who, at = _who(), now_rfc3339()
        entry = Promotion(action, version, previous, who, at)
        with open(self.folder / PROMOTIONS, "a", encoding="utf-8") as log:
            log.write(json.dumps(unstructure(entry), sort_keys=True) + "\n")
            log.flush()
            os.fsync(log.fileno())
        current = Current(version, at, who)
        write_json_atomic(self.folder / CURRENT, unstructure(current), durable=True)
        lineage = self.lineage(version)
        write_json_atomic(
            self.folder / "lineage" / f"{version}.json",
            unstructure(attrs.evolve(lineage, promoted_by=who, promoted_at=at)),
            durable=True,
        )
        return current

    def history(self) -> list[str]:
        """The versions that were current, oldest first, as promotions and rollbacks stacked
        them: a promotion pushes, a rollback pops; the last is current. The log's last line
        may be a promotion cut short (appended, the pointer never moved): it is left out."""

        def replay(entries: list[Promotion]) -> list[str]:
            stack: list[str] = []
            for entry in entries:
                if entry.action == "promote":
                    stack.append(entry.version)
                elif stack:
                    stack.pop()
            return stack

        entries = self.promotions()
        now = self.current_version()
        stack = replay(entries)
        if stack[-1:] != ([now] if now else []):
            stack = replay(entries[:-1])
        return stack

    def rollback(self) -> Current:
        """Make current again the version that was current before this one (an undo: rolling
        back twice goes two promotions back)."""
        with self._locked():
            now = self.current_version()
            if now is None:
                raise RegistryError(f"{self.folder}: nothing is current, nothing to roll back")
            stack = self.history()
            if len(stack) < 2 or stack[-1] != now:
                raise RegistryError(f"{self.folder}: nothing was current before {now}")
            return self._promote(stack[-2], "rollback")


def resolve_model_path(path: str) -> tuple[str, str | None]:
    """A ``planner.model.path`` as a bundle folder, and the registry version it is (None for a
    plain folder): ``registry://DIR`` is DIR's current version."""
    if not path.startswith(SCHEME):
        return path, None
    registry = Registry(path)
    version = registry.current_version()
    if version is None:
        raise BundleError(f"{path}: the registry has no current version (planner models promote)")
    return str(registry.path_of(version)), version
