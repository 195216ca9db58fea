"""Rendering of the data commands' results (the work is in core.dataset and sim.generate)."""

from __future__ import annotations

from typing import Any

from swarm_planner.core.dataset import GateResult


def render_stats(stats: dict[str, Any]) -> str:
    lines = [
        f"root: {stats['root']}",
        f"runs: {stats['runs']}   issues: {stats['issues']}   skipped: {stats['skipped']}",
    ]
    for reason, count in stats["skip_counts"].items():
        lines.append(f"  skipped, {reason}: {count}")
    for what, count in stats["coercions"].items():
        lines.append(f"  coerced, {what}: {count}")
    for table, counts in stats["counts"].items():
        total = sum(counts.values()) or 1
        lines.append(f"\n{table}")
        width = max((len(k) for k in counts), default=0)
        for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {key.ljust(width)}  {count:>7}  {100 * count / total:5.1f}%")
    return "\n".join(lines)


def render_gates(results: list[GateResult]) -> str:
    lines = []
    for r in results:
        mark = "PASS" if r.passed else "FAIL"
        lines.append(
            f"{mark}  {r.name:<22} {r.value:>10g}  (threshold {r.threshold:g})  {r.detail}"
        )
    return "\n".join(lines)


def render_build(meta: dict[str, Any]) -> str:
    report = meta["read_report"]
    lines = [
        f"rows: {meta['example_count']}  splits: {meta['split_counts']}",
        f"dataset_hash: {meta['dataset_hash']}",
        f"runs read: {report['runs_read']}  skipped: {report['skipped_count']}",
    ]
    for reason, count in report["skip_counts"].items():
        lines.append(f"  skipped, {reason}: {count}")
    for skip in report["skipped"][:20]:
        lines.append(f"    {skip['path']}: {skip['reason']}")
    if report["skipped_count"] > 20:
        lines.append(f"    … {report['skipped_count'] - 20} more in meta.json")
    for section in ("excluded", "repairs"):
        for what, count in meta[section].items():
            lines.append(f"  {section}, {what}: {count}")
    for what, count in report["coercions"].items():
        lines.append(f"  coerced, {what}: {count}")
    return "\n".join(lines)
