"""Progress reporting for long work, kept out of the library's logic.

Library functions take an optional ``progress`` callable ``(done, total)``; the CLI passes one
that draws a bar on stderr (rich, which typer already depends on). Tests pass nothing.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

Progress = Callable[[int, int], None]


@contextlib.contextmanager
def progress_bar(description: str, *, enabled: bool = True, notes: bool = False) -> Iterator[Any]:
    """A ``(done, total)`` callback drawing a bar on stderr, or None when disabled; with
    ``notes`` it takes ``(done, total, note)`` and shows the note (a running pass rate)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress

    console = Console(file=sys.stderr)
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with RichProgress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int, note: str = "") -> None:
            if note:
                bar.update(task, completed=done, total=total, description=f"{description} {note}")
            else:
                bar.update(task, completed=done, total=total)

        yield update
