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
    for what, count in stats["repairs"].items():
        lines.append(f"  repaired, {what}: {count}")
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
    for what, count in report["repairs"].items():
        lines.append(f"  repaired, {what}: {count}")
    return "\n".join(lines)


def render_metrics_table(metrics: dict[str, dict[str, Any]]) -> str:
    """Policies side by side: one column each, one row per metric."""
    names = list(metrics)
    rows: list[tuple[str, list[str]]] = []

    def add(label: str, fn: Any) -> None:
        rows.append((label, [fn(metrics[n]) for n in names]))

    add("exact match", lambda m: f"{m['exact_match']:.3f}")
    for head in ("swarm", "candidates", "minutes", "iterations"):
        add(f"  {head} accuracy", lambda m, h=head: f"{m['head_accuracy'][h]:.3f}")
    add("NLL", lambda m: f"{m['nll']:.3f}")
    add("ECE (15 bins)", lambda m: f"{m['ece']:.3f}")
    add("Brier", lambda m: f"{m['brier']:.3f}")
    add("predicted-action entropy (bits)", lambda m: f"{m['action_entropy_bits']:.2f}")
    add("distinct actions predicted", lambda m: str(m["distinct_actions"]))
    add(
        "label actions >1% never predicted", lambda m: str(len(m["label_actions_over_1pct_missed"]))
    )
    for point in next(iter(metrics.values()))["coverage"]:
        t = point["threshold"]
        add(
            f"coverage/accuracy @ {t:.1f}",
            lambda m, t=t: next(
                f"{p['coverage']:.2f}/{p['accuracy']:.3f}"
                for p in m["coverage"]
                if p["threshold"] == t
            ),
        )
    width = max(len(label) for label, _ in rows)
    cols = [max(len(n), *(len(v[i]) for _, v in rows)) for i, n in enumerate(names)]
    lines = [" " * width + "  " + "  ".join(n.rjust(c) for n, c in zip(names, cols, strict=True))]
    for label, values in rows:
        cells = "  ".join(v.rjust(c) for v, c in zip(values, cols, strict=True))
        lines.append(f"{label.ljust(width)}  {cells}")
    return "\n".join(lines)


def render_ablation(table: list[dict[str, Any]]) -> str:
    lines = [
        f"{'N':>3}  {'exact':>6}  {'swarm':>6}  {'cand':>6}  {'min':>6}  {'iter':>6}  "
        f"{'NLL':>6}  {'ECE':>6}  {'heur':>5}  {'train s':>7}"
    ]
    for row in table:
        h = row["head_accuracy"]
        lines.append(
            f"{row['n_similar']:>3}  {row['exact_match']:>6.3f}  {h['swarm']:>6.3f}  "
            f"{h['candidates']:>6.3f}  {h['minutes']:>6.3f}  {h['iterations']:>6.3f}  "
            f"{row['nll']:>6.3f}  {row['ece']:>6.3f}  {row['heuristic_exact_match']:>5.3f}  "
            f"{row['train_seconds']:>7.1f}"
        )
    return "\n".join(lines)


def render_outcome_table(result: Any) -> str:
    """The policies of an outcome evaluation side by side, intervals in brackets."""
    from swarm_planner.core.outcome_eval import render_frontier

    def cell(m: dict[str, float], scale: float = 1.0, fmt: str = ".1f") -> str:
        return f"{m['value'] * scale:{fmt}} [{m['low'] * scale:{fmt}}, {m['high'] * scale:{fmt}}]"

    lines = [
        f"{result.mode} evaluation on {result.rows} held-out issues; weights {result.weights}",
        f"{'policy':<22} {'pass %':<22} {'cost/pass $':<22} {'min/pass':<22} {'oracle-match %':<20} {'regret':<22} not tried",
    ]
    for name, m in result.policies.items():
        lines.append(
            f"{name:<22} {cell(m['pass_rate'], 100):<22} {cell(m['cost_per_pass'], 1, '.3f'):<22} "
            f"{cell(m['time_per_pass_min']):<22} {cell(m['oracle_match'], 100):<20} "
            f"{cell(m['regret'], 1, '.3f'):<22} {result.not_tried.get(name, 0)}"
        )
        for base, d in ((k, v) for k, v in m.items() if k.startswith("vs_")):
            lines.append(
                f"{'':<22} {base}: pass {cell(d['pass_rate_points'], 1, '+.2f')} points, "
                f"cost/pass {cell(d['cost_per_pass_pct'], 1, '+.2f')} %"
            )
    lines += render_frontier(result.frontier)
    if result.oracle is not None:
        o = result.oracle
        lines.append(
            f"per-issue oracle (every valid action run): pass {100 * o['pass_rate']:.1f}%, "
            f"cost/pass ${o['cost_per_pass']:.3f}, utility {o['utility']:.3f}"
        )
    lines.append(
        f"best of the K tried: utility {result.best_of_k['utility']:.3f}, pass {100 * result.best_of_k['pass_rate']:.1f}%"
    )
    return "\n".join(lines)
