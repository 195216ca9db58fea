"""Stages of a long job that re-runs only what changed.

Why: the demo (and a user's own runs) is a chain of steps of a minute each; re-running the same
command after a failure, or after changing one setting, should redo the failed or changed step and
everything after it, not the whole chain. A stage's *input hash* covers its own settings and the
input hashes of the stages it reads, so a change anywhere upstream invalidates it. A finished
stage writes ``stages/<name>.json`` (its input hash, its seconds, its result); a stage whose
record matches and whose outputs still exist is reused. The package version and a fingerprint
of the package's Python source are part of every hash: a new release, or an edit to the code
(an editable checkout), redoes everything rather than reusing what older code computed.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from swarm_planner import __version__
from swarm_planner.core.canonical import canonical_json, sha256_hex
from swarm_planner.core.documents import DocumentError, read_json_object
from swarm_planner.core.errors import PlannerError
from swarm_planner.core.recording import write_json_atomic

STAGE_RECORD_V1 = "swarm_planner.stage.v1"

PACKAGES = ("core", "plugins", "kernel_integration", "sim", "demo", "cli")
"""The subpackages whose source a stage's result may depend on (the root module too)."""


def source_fingerprint(folders: dict[str, Path], top: Path | None = None) -> str:
    """sha256 over every ``.py`` file under each folder (keyed by the folder's name and the
    file's path inside it, so that an editable checkout and a wheel of the same code agree)
    and the ``.py`` files directly in ``top``."""
    digest = hashlib.sha256()
    files: list[tuple[str, Path]] = []
    for name, folder in folders.items():
        files += [
            (f"{name}/{p.relative_to(folder).as_posix()}", p)
            for p in folder.rglob("*.py")
            if "__pycache__" not in p.parts
        ]
    if top is not None:
        files += [(p.name, p) for p in top.glob("*.py")]
    for key, path in sorted(files):
        digest.update(key.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.cache
def code_fingerprint() -> str:
    """This installation's :func:`source_fingerprint`: once per process."""
    import swarm_planner

    folders = {
        name: Path(next(iter(importlib.import_module(f"swarm_planner.{name}").__path__)))
        for name in PACKAGES
    }
    return source_fingerprint(folders, Path(next(iter(swarm_planner.__path__))))


class StageError(PlannerError):
    """A stage failed: the message names it and what to look at."""

    def __init__(self, stage: str, message: str, look_at: str) -> None:
        super().__init__(f"stage {stage} failed: {message}\n  look at: {look_at}")
        self.stage = stage
        self.look_at = look_at


@attrs.frozen
class StageRecord:
    """``stages/<name>.json``: what a finished stage was run with and what it found."""

    name: str
    input_hash: str
    seconds: float
    result: dict[str, Any]
    outputs: tuple[str, ...] = ()
    schema_version: str = STAGE_RECORD_V1


StageProgress = Callable[[int, int, str, str, float], None]
"""``(index, total, name, state, seconds)``: state is ``done``, ``reused`` or ``failed``."""


@attrs.frozen
class Stage:
    """One step: ``run()`` returns a JSON-able result; ``outputs`` are the paths it writes
    (relative to the job folder), checked to exist before a record is reused."""

    name: str
    settings: dict[str, Any]
    after: tuple[str, ...]
    run: Callable[[], dict[str, Any]]
    outputs: tuple[str, ...] = ()


class StageRunner:
    """Runs stages in order in ``folder``, reusing the ones whose inputs did not change."""

    def __init__(self, folder: Path, progress: StageProgress | None = None) -> None:
        self.folder = folder
        self.progress = progress
        self.records: dict[str, StageRecord] = {}
        (folder / "stages").mkdir(parents=True, exist_ok=True)

    def input_hash(self, stage: Stage) -> str:
        upstream = {name: self.records[name].input_hash for name in stage.after}
        return sha256_hex(
            canonical_json(
                {
                    "stage": stage.name,
                    "version": __version__,
                    "code": code_fingerprint(),
                    **stage.settings,
                    "after": upstream,
                }
            )
        )

    def _previous(self, stage: Stage, wanted: str) -> StageRecord | None:
        path = self.folder / "stages" / f"{stage.name}.json"
        if not path.is_file():
            return None
        try:
            data = read_json_object(path)
        except DocumentError:
            return None
        if data.get("input_hash") != wanted or data.get("schema_version") != STAGE_RECORD_V1:
            return None
        if not all((self.folder / p).exists() for p in data.get("outputs", [])):
            return None
        return StageRecord(
            name=stage.name,
            input_hash=wanted,
            seconds=float(data.get("seconds", 0.0)),
            result=dict(data.get("result", {})),
            outputs=tuple(data.get("outputs", [])),
        )

    def run_all(self, stages: Sequence[Stage]) -> dict[str, StageRecord]:
        total = len(stages)
        for index, stage in enumerate(stages, start=1):
            missing = [name for name in stage.after if name not in self.records]
            if missing:
                raise ValueError(f"stage {stage.name} runs after unknown stages {missing}")
            wanted = self.input_hash(stage)
            previous = self._previous(stage, wanted)
            if previous is not None:
                self.records[stage.name] = previous
                if self.progress is not None:
                    self.progress(index, total, stage.name, "reused", previous.seconds)
                continue
            started = time.perf_counter()
            try:
                result = stage.run()
            except StageError:
                raise
            except Exception as exc:
                seconds = time.perf_counter() - started
                if self.progress is not None:
                    self.progress(index, total, stage.name, "failed", seconds)
                log = self.folder / "stages" / f"{stage.name}.error.txt"
                log.write_text(traceback.format_exc(), encoding="utf-8")
                where = ", ".join(str(self.folder / p) for p in stage.outputs) or str(self.folder)
                raise StageError(
                    stage.name,
                    f"{type(exc).__name__}: {exc}",
                    f"{where} (traceback in {log})",
                ) from exc
            seconds = round(time.perf_counter() - started, 3)
            record = StageRecord(stage.name, wanted, seconds, result, stage.outputs)
            write_json_atomic(
                self.folder / "stages" / f"{stage.name}.json",
                {
                    "schema_version": STAGE_RECORD_V1,
                    "name": stage.name,
                    "input_hash": wanted,
                    "seconds": seconds,
                    "outputs": list(stage.outputs),
                    "result": result,
                },
            )
            self.records[stage.name] = record
            if self.progress is not None:
                self.progress(index, total, stage.name, "done", seconds)
        return self.records
