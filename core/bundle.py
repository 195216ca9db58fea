"""The model bundle: a folder of named files plus ``metadata.json`` that vouches for them.

``metadata.json`` records the bundle format version, versions of what built it, the dataset
hash, metrics, and the sha256 of every other file. Loading refuses a bundle of another format
version or any file whose hash does not match, with an error naming the file, so a half-copied
or hand-edited bundle never serves decisions.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from swarm_planner import __version__
from swarm_planner.core.documents import DocumentError, read_json
from swarm_planner.core.errors import PlannerError
from swarm_planner.core.recording import now_rfc3339

BUNDLE_FORMAT = 1
METADATA = "metadata.json"


class BundleError(PlannerError, ValueError):
    """A bundle is missing, of another format version, or tampered with."""


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_revision() -> str | None:
    """The git revision of the working directory, if it is a checkout (for provenance only)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def seal(folder: Path, metadata: dict[str, Any]) -> dict[str, Any]:
    """Write ``metadata.json`` with the hashes of every other file now in ``folder``."""
    files = {
        p.name: _sha256_file(p)
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != METADATA and not p.name.startswith(".")
    }
    sealed = {
        **metadata,
        "bundle_format": BUNDLE_FORMAT,
        "swarm_planner_version": __version__,
        "sealed_at": now_rfc3339(),
        "files": files,
    }
    write_json(folder / METADATA, sealed)
    return sealed


def open_bundle(folder: Path | str, *, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Check a bundle and return its metadata; :class:`BundleError` names what is wrong."""
    folder = Path(folder)
    path = folder / METADATA
    if not folder.is_dir():
        raise BundleError(f"{folder}: not a bundle folder")
    metadata = read_json_file(path)
    if not isinstance(metadata, dict):
        raise BundleError(f"{path}: expected a JSON object")
    version = metadata.get("bundle_format")
    if version != BUNDLE_FORMAT:
        raise BundleError(
            f"{path}: bundle_format {version!r} is not supported (this swarm-planner reads "
            f"format {BUNDLE_FORMAT}); re-export the bundle"
        )
    files = metadata.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"{path}: files: expected a mapping of file name to sha256")
    for name in required:
        if name not in files:
            raise BundleError(f"{folder}: {name} is missing from the bundle")
    for name, expected in sorted(files.items()):
        file = folder / name
        if not file.is_file():
            raise BundleError(f"{file}: listed in metadata.json but missing")
        actual = _sha256_file(file)
        if actual != expected:
            raise BundleError(
                f"{file}: sha256 {actual[:12]}… does not match metadata.json ({expected[:12]}…); "
                "the bundle was modified after it was sealed"
            )
    return dict(metadata)


def read_json_file(path: Path) -> Any:
    """A JSON file of a bundle; any problem is a :class:`BundleError` naming the file."""
    try:
        return read_json(path)
    except DocumentError as exc:
        raise BundleError(str(exc)) from exc


def read_bundle_json(folder: Path | str, name: str) -> Any:
    """A JSON file of a bundle (open the bundle first, so its hash has been checked)."""
    return read_json_file(Path(folder) / name)
