"""The candidate log: one JSON line per finished candidate, appended the moment it finishes.

Why a log and not a results file written at the end: a bench runs for hours against real
kernels, and a kill (SIGKILL, a lost machine) must cost at most the candidates that were running.
Each line is written with one ``write`` and flushed at once, so after a kill the file holds
whole lines plus at most one torn last line; reopening drops (and reports) that torn tail, and a
re-run skips every (case, slot) already in the log. A line that is whole but unreadable is an
error naming the file and line, never silently dropped.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from swarm_planner.core.bench.records import AttemptLine, CandidateLine
from swarm_planner.core.canonical import canonical_json
from swarm_planner.core.contracts import dump
from swarm_planner.core.documents import DocumentError, parse_json
from swarm_planner.core.errors import PlannerError
from swarm_planner.core.jsonconv import structure

LOG_FILE = "candidates.jsonl"
ATTEMPTS_FILE = "attempts.jsonl"


class BenchError(PlannerError, ValueError):
    """A bench directory or its inputs cannot be used; the message says which and why."""


class CandidateLog:
    """The append-only log of one bench directory (thread-safe appends)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.torn_bytes = 0
        self.lines: dict[tuple[str, int], CandidateLine] = {}
        self._lock = threading.Lock()
        self._read()
        self._handle = self.path.open("ab")

    def _read(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        whole = data.rfind(b"\n") + 1
        if whole < len(data):
            # A torn last line (the process died inside a write): it never finished, so the
            # candidate is not done; cut it so that the next append starts a clean line.
            self.torn_bytes = len(data) - whole
            with self.path.open("r+b") as handle:
                handle.truncate(whole)
        for number, raw in enumerate(data[:whole].splitlines(), start=1):
            source = f"{self.path}:{number}"
            if not raw.strip():
                continue
            try:
                line = structure(parse_json(raw, source), CandidateLine, source=source)
            except (DocumentError, PlannerError, ValueError) as exc:
                raise BenchError(f"{source}: not a candidate line: {exc}") from None
            key = (line.case_id, line.slot)
            if key in self.lines:
                raise BenchError(
                    f"{source}: case {line.case_id!r} slot {line.slot} is logged twice"
                )
            self.lines[key] = line

    def append(self, line: CandidateLine) -> None:
        data = (canonical_json(dump(line)) + "\n").encode("utf-8")
        with self._lock:
            key = (line.case_id, line.slot)
            if key in self.lines:
                raise BenchError(f"case {line.case_id!r} slot {line.slot} is already logged")
            self._handle.write(data)
            self._handle.flush()
            self.lines[key] = line

    def close(self) -> None:
        with self._lock:
            if not self._handle.closed:
                self._handle.flush()
                os.fsync(self._handle.fileno())
                self._handle.close()

    def __enter__(self) -> CandidateLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AttemptLog:
    """``attempts.jsonl``: every lost attempt, appended and flushed as it is lost (a record of
    the faults a bench survived; the candidate log stays one line per candidate)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._lock = threading.Lock()
        self._handle: Any = None

    def append(self, line: AttemptLine) -> None:
        data = (canonical_json(dump(line)) + "\n").encode("utf-8")
        with self._lock:
            if self._handle is None:
                self._handle = self.path.open("ab")
            self._handle.write(data)
            self._handle.flush()
            self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._handle is not None and not self._handle.closed:
                self._handle.close()


def read_attempts(path: Path) -> list[AttemptLine]:
    """The lost attempts logged in ``path`` (none if it does not exist); a torn last line is
    ignored (its attempt was being written when the driver died)."""
    if not path.exists():
        return []
    lines = []
    data = path.read_bytes()
    whole = data.rfind(b"\n") + 1
    for number, raw in enumerate(data[:whole].splitlines(), start=1):
        source = f"{path}:{number}"
        if raw.strip():
            try:
                lines.append(structure(parse_json(raw, source), AttemptLine, source=source))
            except (DocumentError, PlannerError, ValueError) as exc:
                raise BenchError(f"{source}: not an attempt line: {exc}") from None
    return lines
