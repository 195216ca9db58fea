"""Types of the compiled ranking (core/_retrieval.c); its twin is ``history._top_numpy``."""

from typing import Any

def top_similar(
    postings: list[Any],
    kinds: list[int],
    by_job: Any,
    job_started: Any,
    sizes: Any,
    started: Any,
    window: int,
    query_sizes: tuple[float, float, float],
    weights: tuple[float, float, float],
    recency: float,
    n: int,
    in_order: bool,
    before_ms: int,
    edges: tuple[int, int, int],
    /,
) -> list[int]: ...
