"""tox's inline plugin: find every installed CPython, so `python -m tox` is the whole story.

On a pyenv machine only the global version is on PATH; the shims of the others refuse to run
("pyenv: python3.12: command not found"), so tox's discovery finds no 3.10, 3.12 or 3.13 and the
run fails. This hook hands tox the interpreters that pyenv (or a plain ``~/.pyenv``) installed,
newest patch first, as if ``--discover`` had listed them. Interpreters on PATH still count, and a
version that is installed nowhere is still a failure (``skip_missing_interpreters = false``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tox.plugin import impl

_RELEASE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
"""A CPython release folder of pyenv (``3.12.1``); pypy, miniconda and dev builds are left out."""


def _pyenv_root() -> Path | None:
    root = os.environ.get("PYENV_ROOT")
    if root:
        return Path(root)
    if shutil.which("pyenv"):
        try:
            done = subprocess.run(
                ["pyenv", "root"], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            done = None
        if done is not None and done.returncode == 0 and done.stdout.strip():
            return Path(done.stdout.strip())
    fallback = Path.home() / ".pyenv"
    return fallback if fallback.is_dir() else None


def installed_interpreters(root: Path | None = None) -> list[str]:
    """The ``pythonX.Y`` executables of every CPython release under ``root/versions``, newest
    patch of each minor first."""
    root = root if root is not None else _pyenv_root()
    versions = root / "versions" if root is not None else None
    if versions is None or not versions.is_dir():
        return []
    found: list[tuple[tuple[int, int, int], str]] = []
    for folder in versions.iterdir():
        match = _RELEASE.match(folder.name)
        if match is None:
            continue
        major, minor, patch = (int(x) for x in match.groups())
        executable = folder / "bin" / f"python{major}.{minor}"
        if executable.is_file() and os.access(executable, os.X_OK):
            found.append(((major, minor, patch), str(executable)))
    return [path for _, path in sorted(found, reverse=True)]


@impl
def tox_add_core_config(core_conf: Any, state: Any) -> None:
    options = state.conf.options
    given = list(getattr(options, "discover", None) or [])
    options.discover = given + [p for p in installed_interpreters() if p not in given]
