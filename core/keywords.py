"""Cheap, deterministic keywords from an issue's title and description.

Lower-cased alphanumeric words of three letters or more, without stop words or numbers, in order
of first appearance, at most :data:`MAX_KEYWORDS`. The stop list includes the boilerplate of issue
templates ("reproduce", "tests"), which would otherwise make every issue similar to every other.
"""

from __future__ import annotations

import re

from swarm_planner.core.contracts import Issue

MAX_KEYWORDS = 12

_WORD = re.compile(r"[a-z][a-z0-9_]{2,}")

_STOP_TEXT = """
about above after again against all also and any are area as because been before being
below between both but can cannot could did does doing down during each few for from further
had has have having her here hers him his how however into its itself just more most must
not now off once only other our ours out over own same she should some such than that the
their theirs them then there these they this those through too under until very was were
what when where which while who whom why will with would you your yours
issue issues fix fixed fixes add added adds please make makes need needs new use used using
reproduce cover tests test it shows show blocks block release
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())


def extract_keywords(text: str, limit: int = MAX_KEYWORDS) -> tuple[str, ...]:
    """Keywords of free text, in order of first appearance."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word in STOP_WORDS or word in seen:
            continue
        seen[word] = None
        if len(seen) >= limit:
            break
    return tuple(seen)


def issue_keywords(issue: Issue) -> tuple[str, ...]:
    """The issue's own ``keywords`` if it has them, else those of its title and description."""
    if issue.keywords:
        return tuple(dict.fromkeys(k.lower() for k in issue.keywords))[:MAX_KEYWORDS]
    return extract_keywords(f"{issue.title or ''} {issue.description or ''}")
