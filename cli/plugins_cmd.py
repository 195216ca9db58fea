"""Rendering of ``planner list-plugins`` (the work is in core.plugins)."""

from __future__ import annotations

import json
from typing import Any

from swarm_planner.core.plugins import PluginHost

COLUMNS = ("kind", "name", "distribution", "version", "module")


def plugin_rows(host: PluginHost) -> list[dict[str, Any]]:
    """One object per registered plugin, sorted by kind then name."""
    return [e.listing() for e in host.entries()]


def render_json(host: PluginHost) -> str:
    return json.dumps(plugin_rows(host), indent=2, sort_keys=True)


def render_table(host: PluginHost) -> str:
    rows = [[str(r[c] if r[c] is not None else "-") for c in COLUMNS] for r in plugin_rows(host)]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)
