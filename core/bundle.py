"""The model bundle: a folder of named files plus ``metadata.json`` that vouches for them.

``metadata.json`` records the bundle format version, versions of what built it, the dataset
hash, metrics, the sha256 of every other file, and a ``seal``: the sha256 of its own canonical
JSON without the seal. Loading refuses a bundle of another format version, a metadata file whose
seal does not match (a hand-edited ``model_type``, say) and any file whose hash does not match,
with an error naming the file, so a half-copied or hand-edited bundle never serves decisions.

Every reader of a bundle goes through :func:`open_bundle` (the metadata, checked) and, to
serve it, :func:`load_served` (the typed parts a policy needs: encoder, action space,
temperature, validation).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import attrs

from swarm_planner import __version__
from swarm_planner.core.action_space import ActionSpace
from swarm_planner.core.canonical import canonical_json, sha256_hex
from swarm_planner.core.documents import DocumentError, read_json
from swarm_planner.core.errors import ContractError, PlannerError
from swarm_planner.core.jsonconv import (
    at_most,
    json_field,
    open_record,
    positive,
    structure,
    validator,
)
from swarm_planner.core.recording import now_rfc3339

BUNDLE_FORMAT = 2
"""2: ``metadata.json`` is sealed too (format 1 sealed only the other files)."""
METADATA = "metadata.json"
SEAL_KEYS = ("files", "sizes", "sealed_at", "bundle_format", "swarm_planner_version", "seal")
"""What :func:`seal` writes; everything else in the metadata is the caller's."""


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


def _seal_of(metadata: dict[str, Any]) -> str:
    return sha256_hex(canonical_json({k: v for k, v in metadata.items() if k != "seal"}))


def caller_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata without what :func:`seal` adds (to reseal it after changing a file)."""
    return {k: v for k, v in metadata.items() if k not in SEAL_KEYS}


def seal(folder: Path, metadata: dict[str, Any]) -> dict[str, Any]:
    """Write ``metadata.json`` with the hashes of every other file now in ``folder``, sealed."""
    paths = [
        p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != METADATA and not p.name.startswith(".")
    ]
    sealed = {
        **caller_metadata(metadata),
        "bundle_format": BUNDLE_FORMAT,
        "swarm_planner_version": __version__,
        "sealed_at": now_rfc3339(),
        "files": {p.name: _sha256_file(p) for p in paths},
        "sizes": {p.name: p.stat().st_size for p in paths},
    }
    sealed["seal"] = _seal_of(sealed)
    write_json(folder / METADATA, sealed)
    return sealed


def read_json_file(path: Path) -> Any:
    """A JSON file of a bundle; any problem is a :class:`BundleError` naming the file."""
    try:
        return read_json(path)
    except DocumentError as exc:
        raise BundleError(str(exc)) from exc


def open_bundle(
    folder: Path | str, *, required: tuple[str, ...] = (), upgrading: bool = False
) -> dict[str, Any]:
    """Check a bundle and return its metadata; :class:`BundleError` names what is wrong.

    ``upgrading`` (what ``planner export`` does before it seals the bundle again) also opens a
    format-1 bundle, whose metadata carries no seal and no sizes: its files are still checked
    against their hashes."""
    folder = Path(folder)
    path = folder / METADATA
    if not folder.is_dir():
        raise BundleError(f"{folder}: not a bundle folder")
    metadata = read_json_file(path)
    if not isinstance(metadata, dict):
        raise BundleError(f"{path}: expected a JSON object")
    version = metadata.get("bundle_format")
    old = upgrading and version == 1
    if version != BUNDLE_FORMAT and not old:
        raise BundleError(
            f"{path}: bundle_format {version!r} is not supported (this swarm-planner reads "
            f"format {BUNDLE_FORMAT}); re-export the bundle with `planner export`"
        )
    if not old and metadata.get("seal") != _seal_of(metadata):
        raise BundleError(
            f"{path}: the seal does not match its content; metadata.json was modified after the "
            "bundle was sealed"
        )
    files = metadata.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise BundleError(f"{path}: files: expected a mapping of file name to sha256")
    sizes = metadata.get("sizes")
    if old and sizes is None:
        sizes = {
            name: (folder / name).stat().st_size if (folder / name).is_file() else -1
            for name in files
        }
    if not isinstance(sizes, dict) or set(sizes) != set(files):
        raise BundleError(
            f"{path}: sizes: expected the size of every file listed in files; re-export the "
            "bundle with `planner export`"
        )
    for name in required:
        if name not in files:
            raise BundleError(f"{folder}: {name} is missing from the bundle")
    for name, expected in sorted(files.items()):
        file = folder / name
        if Path(name).name != name or not file.is_file():
            raise BundleError(f"{file}: listed in metadata.json but missing")
        size = file.stat().st_size
        if size != sizes[name]:  # before hashing: a file grown to gigabytes is refused at once
            raise BundleError(
                f"{file}: {size:,} bytes, not the {sizes[name]!r} of metadata.json; the bundle "
                "was modified after it was sealed"
            )
        actual = _sha256_file(file)
        if actual != expected:
            raise BundleError(
                f"{file}: sha256 {actual[:12]}… does not match metadata.json ({expected[:12]}…); "
                "the bundle was modified after it was sealed"
            )
    return dict(metadata)


EXPORTED_SERVER = "onnx"
"""The policy that serves an exported imitation bundle (``model.onnx``), without torch."""
_EXPORTABLE = ("mlp", "joint", "transformer", "mlp-ar")


def bundle_servers(metadata: dict[str, Any]) -> tuple[str, ...]:
    """The policies that can serve a bundle, the preferred first: the rule, in one place.

    A bundle names them (``served_by``, a list of policy names, written when it is sealed: how
    a third-party bundle says which plugin reads it). One sealed before ``served_by`` existed
    is served by its ``model_type``, except an exported ``mlp``/``joint`` bundle (``model.onnx``
    among its files), which ``onnx`` serves first, without torch. ``planner plan``,
    ``planner eval`` and the decision service all ask here."""
    named = metadata.get("served_by")
    if isinstance(named, list) and named and all(isinstance(n, str) for n in named):
        return tuple(named)
    kind = metadata.get("model_type")
    if not isinstance(kind, str) or not kind:
        raise BundleError("metadata.json: model_type: expected the name of a policy")
    files = metadata.get("files")
    if isinstance(files, dict) and "model.onnx" in files and kind in _EXPORTABLE:
        return (EXPORTED_SERVER, kind)
    return (kind,)


def serving_policy(folder: Path | str) -> str:
    """The policy plugin that serves the bundle at ``folder`` (its metadata checked first)."""
    return bundle_servers(open_bundle(folder))[0]


def read_bundle_json(folder: Path | str, name: str) -> Any:
    """A JSON file of a bundle (open the bundle first, so its hash has been checked)."""
    return read_json_file(Path(folder) / name)


# -- the parts a policy serves from ---------------------------------------------------------------


@attrs.frozen
class EncoderRef:
    name: str
    options: dict[str, Any] = attrs.field(factory=dict)


def _widths(widths: tuple[int, ...]) -> str | None:
    if len(widths) > 8 or any(not 1 <= w <= 65_536 for w in widths):
        return f"{list(widths)!r}: at most 8 layers of 1 to 65,536 units"
    return None


@open_record
@attrs.frozen
class ModelSpec:
    """``config.json``'s ``model``: what the network is (the torch policy rebuilds it)."""

    type: str
    n_features: int = json_field(validator=[positive, at_most(1 << 24)])
    n_actions: int = json_field(validator=positive)
    dim: int = json_field(default=32, validator=[positive, at_most(4096)])
    hidden: tuple[int, ...] = json_field(default=(), validator=validator(_widths))
    head_sizes: tuple[int, ...] = ()
    layers: int = json_field(default=2, validator=[positive, at_most(64)])
    """Transformer layers (a transformer bundle's; the others have none)."""
    heads: int = json_field(default=4, validator=[positive, at_most(64)])
    """Transformer attention heads."""


@open_record
@attrs.frozen
class BundleConfig:
    """``config.json``: the encoder and the model (and, once exported, the ONNX graph)."""

    encoder: EncoderRef
    model: ModelSpec
    onnx: dict[str, Any] | None = None


_above_zero = validator(lambda v: None if v > 0 else f"{v!r} is not above 0")


@open_record
@attrs.frozen
class Calibration:
    method: str
    temperature: float = json_field(validator=_above_zero)


@open_record
@attrs.frozen
class Validation:
    passed: bool


@attrs.frozen
class ServedBundle:
    """A checked bundle, typed: what serving it takes."""

    path: Path
    metadata: dict[str, Any]
    config: BundleConfig
    space: ActionSpace
    temperature: float
    validation: Validation | None

    @property
    def model_type(self) -> str:
        return self.config.model.type


def _part(folder: Path, name: str, cls: type[Any]) -> Any:
    try:
        return structure(read_bundle_json(folder, name), cls, source=str(folder / name))
    except ContractError as exc:
        raise BundleError(str(exc)) from exc


def load_served(folder: Path | str, *, required: tuple[str, ...]) -> ServedBundle:
    """Open a bundle (seal and hashes checked) and read its config, action space, calibration
    and, when exported, its validation, each as a record; any problem is a BundleError."""
    folder = Path(folder)
    metadata = open_bundle(folder, required=required)
    config = _part(folder, "config.json", BundleConfig)
    space = _part(folder, "action_space.json", ActionSpace)
    calibration = _part(folder, "calibration.json", Calibration)
    validation = None
    if "validation.json" in metadata["files"]:
        validation = _part(folder, "validation.json", Validation)
    if metadata.get("model_type") != config.model.type:
        raise BundleError(
            f"{folder}: metadata.json says model_type {metadata.get('model_type')!r}, "
            f"config.json {config.model.type!r}"
        )
    if config.model.n_actions != len(space.all_actions()):
        raise BundleError(
            f"{folder}: config.json's model answers over {config.model.n_actions} actions, "
            f"action_space.json has {len(space.all_actions())}"
        )
    return ServedBundle(folder, metadata, config, space, calibration.temperature, validation)
