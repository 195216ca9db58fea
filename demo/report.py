"""``report.html`` and ``report.md`` from a finished demo: the figures a person would rather look
at, each with a line under it that says what it shows, written from the figures themselves.

The HTML is self-contained (every plot embedded as a data URI, no script or style from the
network), so it opens from a mail attachment or an artefact store. A small inline script marks
the page once every image has loaded (``data-images-loaded``) and records any error
(``data-errors``): the browser check reads those.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

import attrs

from swarm_planner.core.documents import read_json_object
from swarm_planner.core.errors import PlannerError
from swarm_planner.demo.run import DEMO_V1, SUMMARY_FILE


class ReportError(PlannerError):
    """The folder holds nothing a report can be made from."""


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _money(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"${x:.3f}"


def summary_table(demo: dict[str, Any]) -> list[dict[str, Any]]:
    """Heuristic vs every policy: pass rate, cost per pass, regret, ECE, decision p50/p99,
    fallback rate (one row per policy, heuristic first)."""
    ev = demo["stages"]["evaluate"]["result"]
    outcomes, imitation, service = (
        ev["outcomes"]["policies"],
        ev["imitation"]["policies"],
        ev["service"],
    )
    value_ece = demo["stages"]["train-value"]["result"]["calibration"]["test_ece_after"]
    rows = []
    for name, o in outcomes.items():
        ece = imitation.get(name, {}).get("ece")
        if name == "value":
            ece = value_ece  # of its P(pass), on the tried candidates
        s = service.get(name, {})
        rows.append(
            {
                "policy": name,
                "pass_rate": o["pass_rate"],
                "cost_per_pass": o["cost_per_pass"],
                "regret": o["regret"],
                "ece": ece,
                "p50_us": s.get("p50_us"),
                "p99_us": s.get("p99_us"),
                "fallback_rate": s.get("fallback_rate"),
            }
        )
    rows.sort(key=lambda r: (r["policy"] != "heuristic", r["policy"]))
    return rows


def render_table(rows: list[dict[str, Any]]) -> str:
    """The summary table as aligned text (the CLI prints it; report.md embeds it)."""
    head = (
        f"{'policy':<12} {'pass %':>17} {'cost/pass $':>20} {'regret':>8} {'ECE':>7} "
        f"{'p50 µs':>8} {'p99 µs':>8} {'fallback':>9}"
    )
    lines = [head]
    for r in rows:
        pr, cp = r["pass_rate"], r["cost_per_pass"]
        ece = "n/a" if r["ece"] is None else f"{r['ece']:.3f}"
        lines.append(
            f"{r['policy']:<12} {100 * pr['value']:5.1f} "
            f"[{100 * pr['low']:4.1f},{100 * pr['high']:5.1f}]"
            f" {cp['value']:6.3f} [{cp['low']:.3f},{cp['high']:.3f}] {r['regret']['value']:8.3f}"
            f" {ece:>7} {r['p50_us']:8.0f} {r['p99_us']:8.0f} {_pct(r['fallback_rate']):>9}"
        )
    return "\n".join(lines)


# -- what each figure means, from its numbers ---------------------------------------------------


def frontier_says(ev: dict[str, Any]) -> str:
    o = ev["outcomes"]
    base = o["policies"]["heuristic"]
    points = o["frontier"].get("value", [])
    dominating = [
        p
        for p in points
        if p["vs_heuristic"]["pass_rate_points"]["low"] > 0
        and p["vs_heuristic"]["cost_per_pass_pct"]["high"] < 0
    ]
    as_often_cheaper = [
        p
        for p in points
        if p["vs_heuristic"]["pass_rate_points"]["value"] >= 0
        and p["vs_heuristic"]["cost_per_pass_pct"]["high"] < 0
    ]
    start = (
        f"The heuristic passes {_pct(base['pass_rate']['value'])} at "
        f"{_money(base['cost_per_pass']['value'])} per pass on {o['rows']} held-out issues. "
    )
    if dominating:
        p = max(dominating, key=lambda q: q["vs_heuristic"]["pass_rate_points"]["value"])
        v = p["vs_heuristic"]
        return start + (
            f"At cost weight {p['cost_weight']:g} the value policy passes "
            f"{v['pass_rate_points']['value']:+.1f} points more and costs "
            f"{-v['cost_per_pass_pct']['value']:.1f}% less per pass, both intervals clear of zero: "
            "it dominates the heuristic there."
        )
    if as_often_cheaper:
        p = min(as_often_cheaper, key=lambda q: q["vs_heuristic"]["cost_per_pass_pct"]["value"])
        v = p["vs_heuristic"]
        return start + (
            f"At cost weight {p['cost_weight']:g} the value policy passes as often "
            f"({v['pass_rate_points']['value']:+.1f} points, interval "
            f"{v['pass_rate_points']['low']:+.1f} to {v['pass_rate_points']['high']:+.1f}) for "
            f"{-v['cost_per_pass_pct']['value']:.1f}% less per pass."
        )
    best = max(points, key=lambda q: q["pass_rate"], default=None)
    tail = "No point of the value policy's frontier passes as often for less here"
    if best is not None:
        tail += (
            f"; its best pass rate is {_pct(best['pass_rate'])} at "
            f"{_money(best['cost_per_pass'])} per pass (cost weight {best['cost_weight']:g})"
        )
    oracle = o.get("oracle")
    if oracle:
        tail += (
            f". The per-issue oracle passes {_pct(oracle['pass_rate'])} at "
            f"{_money(oracle['cost_per_pass'])}: the headroom"
        )
    return start + tail + "."


def reliability_says(ev: dict[str, Any]) -> str:
    m = ev["imitation"]["policies"]
    ranked = sorted(m.items(), key=lambda kv: kv[1]["ece"])
    best, worst = ranked[0], ranked[-1]
    return (
        f"On {ev['imitation']['rows']} test rows, {best[0]}'s confidence is closest to its "
        f"accuracy (ECE {best[1]['ece']:.3f}); {worst[0]}'s is furthest (ECE "
        f"{worst[1]['ece']:.3f}). A line under the diagonal is over-confident."
    )


def actions_says(ev: dict[str, Any]) -> str:
    a = ev["actions"]
    labels: dict[str, int] = a["labels"]
    total = int(a["rows"])

    def distance(counts: dict[str, int]) -> float:
        keys = set(counts) | set(labels)
        return 0.5 * sum(abs(counts.get(k, 0) - labels.get(k, 0)) / float(total) for k in keys)

    gaps = sorted((distance(c), name) for name, c in a["policies"].items())
    top_label = max(labels.items(), key=lambda kv: kv[1])
    return (
        f"The kernel's labels are {_pct(top_label[1] / total)} {top_label[0]}. "
        f"{gaps[0][1]} chooses closest to them (total variation {gaps[0][0]:.2f}), "
        f"{gaps[-1][1]} furthest ({gaps[-1][0]:.2f}): a policy that learns from outcomes is "
        "expected to move away from the labels where they waste money."
    )


def fallbacks_says(loop: dict[str, Any]) -> str:
    parts = []
    for phase in loop["phases"]:
        reasons = phase["reasons"]
        top = max(reasons.items(), key=lambda kv: kv[1]) if reasons else ("none", 0)
        parts.append(
            f"in {phase['mode']} mode {_pct(phase['fallback_rate'])} of {phase['decisions']} "
            f"decisions fell back (most often {top[0]}, {top[1]}), pass rate "
            f"{_pct(phase['pass_rate'])} at {_money(phase['cost_per_pass'])} per pass"
        )
    return "In the kernel loop, " + "; ".join(parts) + "."


def latency_says(ev: dict[str, Any]) -> str:
    s = ev["service"]
    fastest = min(s.items(), key=lambda kv: kv[1]["p50_us"])
    slowest = max(s.items(), key=lambda kv: kv[1]["p99_us"])
    return (
        f"Through the decision service, {fastest[0]} decides fastest (p50 "
        f"{fastest[1]['p50_us']:.0f} µs); the slowest tail is {slowest[0]}'s (p99 "
        f"{slowest[1]['p99_us']:.0f} µs)."
    )


def skips_says(meta: dict[str, Any]) -> str:
    excluded = meta.get("excluded", {})
    report = meta.get("read_report", {})
    skipped = sum(v for v in excluded.values() if isinstance(v, int))
    n_read = int(report.get("skipped_count", 0))
    repairs = report.get("repairs", {})
    n_repaired = sum(v for v in repairs.values() if isinstance(v, int))
    return (
        f"{meta.get('example_count', 0)} rows built from {report.get('runs_read', '?')} runs; "
        f"{skipped} runs excluded by rule, {n_read} archive files skipped while reading, and "
        f"{n_repaired} field values repaired (the kernel's known quirks, counted below): nothing "
        "was dropped without being counted."
    )


def skip_lines(meta: dict[str, Any]) -> list[str]:
    report = meta.get("read_report", {})
    lines = [f"excluded: {k}: {v}" for k, v in sorted(meta.get("excluded", {}).items())]
    lines += [f"skipped: {k}: {v}" for k, v in sorted(report.get("skip_counts", {}).items())]
    lines += [f"repaired: {k}: {v}" for k, v in sorted(report.get("repairs", {}).items())]
    return lines


# -- plots ----------------------------------------------------------------------------------


def _bars(groups: dict[str, dict[str, float]], title: str, ylabel: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for g in groups.values() for k in g})
    fig, ax = plt.subplots(figsize=(7.5, 4))
    width = 0.8 / max(1, len(groups))
    for i, (name, values) in enumerate(groups.items()):
        xs = [j + i * width for j in range(len(keys))]
        ax.bar(xs, [values.get(k, 0.0) for k in keys], width=width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(keys))])
    ax.set_xticklabels(keys, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_plots(folder: Path, demo: dict[str, Any]) -> dict[str, Path]:
    ev = demo["stages"]["evaluate"]["result"]
    plots = folder / "plots"
    plots.mkdir(exist_ok=True)
    a = ev["actions"]
    shares = {"labels": {k: v / a["rows"] for k, v in a["labels"].items()}}
    shares.update({n: {k: v / a["rows"] for k, v in c.items()} for n, c in a["policies"].items()})
    _bars(
        shares,
        "Actions chosen (topology × candidates) vs the labels",
        "share",
        plots / "actions.png",
    )
    loop = demo["stages"]["kernel-loop"]["result"]
    _bars(
        {p["mode"]: {k: float(v) for k, v in p["reasons"].items()} for p in loop["phases"]},
        "Kernel loop: decisions by reason",
        "decisions",
        plots / "fallbacks.png",
    )
    _bars(
        {
            "p50": {n: s["p50_us"] for n, s in ev["service"].items()},
            "p99": {n: s["p99_us"] for n, s in ev["service"].items()},
        },
        "Decision latency through the decision service",
        "µs",
        plots / "latency.png",
    )
    return {
        "frontier": plots / "frontier.png",
        "reliability": plots / "reliability.png",
        "actions": plots / "actions.png",
        "fallbacks": plots / "fallbacks.png",
        "latency": plots / "latency.png",
    }


def read_demo(folder: Path) -> dict[str, Any]:
    path = folder / SUMMARY_FILE
    if not path.is_file():
        raise ReportError(
            f"{folder}: no {SUMMARY_FILE}, no {OUTCOMES_FILE} and no bench; give the folder of "
            "a finished `planner demo`, a `planner bench` folder (or the field's), or save "
            f"`planner eval-outcomes --json` there as {OUTCOMES_FILE}"
        )
    demo = read_json_object(path)
    if demo.get("schema_version") != DEMO_V1:
        raise ReportError(f"{path}: schema_version {demo.get('schema_version')!r}, not {DEMO_V1}")
    missing = [
        s
        for s in ("evaluate", "kernel-loop", "dataset", "train-value")
        if s not in demo.get("stages", {})
    ]
    if missing:
        raise ReportError(f"{path}: the demo did not finish (no stage {', '.join(missing)})")
    return demo


@attrs.frozen
class Section:
    """One figure of a report and the line under it."""

    title: str
    image: Path
    says: str


@attrs.frozen
class Page:
    """What a report shows: a heading line, a table, figures, and text sections at the end."""

    title: str
    intro: str
    table: str
    sections: tuple[Section, ...]
    notes: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    """(heading, paragraph, list items) after the figures."""


SCRIPT = """<script>
window.addEventListener("error", function (e) {
  var b = document.body;
  b.dataset.errors = (b.dataset.errors || "") + (e.message || "an image failed") + ";";
}, true);
window.addEventListener("load", function () {
  var all = Array.prototype.every.call(document.images, function (i) {
    return i.complete && i.naturalWidth > 0;
  });
  document.body.dataset.imagesLoaded = all ? String(document.images.length) : "no";
});
</script>"""
STYLE = (
    "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
    "img{max-width:100%}pre{overflow-x:auto;font-size:12px}</style>"
)


def write_pages(folder: Path, page: Page) -> tuple[Path, Path]:
    """``report.md`` (images beside it) and ``report.html`` (images embedded) in ``folder``."""
    md = [f"# {page.title}", "", page.intro, "", "```", page.table, "```", ""]
    for s in page.sections:
        rel = s.image.relative_to(folder).as_posix()
        md += [f"## {s.title}", "", f"![{s.title}]({rel})", "", s.says, ""]
    for heading, text, items in page.notes:
        md += [f"## {heading}", "", text, ""] + [f"- {i}" for i in items] + [""]
    md_path = folder / "report.md"
    md_path.write_text("\n".join(md), encoding="utf-8")

    def img(path: Path, alt: str) -> str:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'

    body = [
        f"<h1>{html.escape(page.title)}</h1>",
        f"<p>{html.escape(page.intro)}</p>",
        f"<pre>{html.escape(page.table)}</pre>",
    ]
    for s in page.sections:
        body += [f"<h2>{html.escape(s.title)}</h2>", img(s.image, s.title)]
        body += [f"<p>{html.escape(s.says)}</p>"]
    for heading, text, items in page.notes:
        body += [f"<h2>{html.escape(heading)}</h2>", f"<p>{html.escape(text)}</p>", "<ul>"]
        body += [f"<li>{html.escape(i)}</li>" for i in items] + ["</ul>"]
    document = "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(page.title)}</title>",
            STYLE,
            SCRIPT,
            "</head><body>",
            *body,
            "</body></html>",
            "",
        ]
    )
    html_path = folder / "report.html"
    html_path.write_text(document, encoding="utf-8")
    return md_path, html_path


def demo_page(folder: Path) -> Page:
    demo = read_demo(folder)
    ev = demo["stages"]["evaluate"]["result"]
    loop = demo["stages"]["kernel-loop"]["result"]
    meta = demo["stages"]["dataset"]["result"]["meta"]
    images = draw_plots(folder, demo)
    s = demo["settings"]
    return Page(
        title="swarm-planner demo report",
        intro=(
            f"{s['issues']} simulated dispatches, seed {s['seed']}, K={s['k']}; "
            f"{demo['seconds']:.0f} s. Outcome policies (table, value) are deployed with "
            "confidence_threshold 0: their confidence is a softmax over expected utilities."
        ),
        table=render_table(summary_table(demo)),
        sections=(
            Section("Cost per pass against pass rate", images["frontier"], frontier_says(ev)),
            Section(
                "Reliability of the imitation policies",
                images["reliability"],
                reliability_says(ev),
            ),
            Section("What each policy chooses", images["actions"], actions_says(ev)),
            Section("Why the kernel loop fell back", images["fallbacks"], fallbacks_says(loop)),
            Section("Decision latency", images["latency"], latency_says(ev)),
        ),
        notes=(("Dataset skip report", skips_says(meta), tuple(skip_lines(meta))),),
    )


OUTCOMES_FILE = "eval_outcomes.json"
"""What ``planner eval-outcomes --json`` prints, saved in a folder for ``planner report``."""


def outcomes_page(folder: Path) -> Page:
    """A report of a user's own ``eval-outcomes --json`` output (``eval_outcomes.json``)."""
    from swarm_planner.core.outcome_eval import OutcomeEvaluation, plot_frontier

    path = folder / OUTCOMES_FILE
    data = read_json_object(path)
    try:
        evaluation = OutcomeEvaluation(**data)
    except TypeError as exc:
        raise ReportError(
            f"{path}: not the output of `planner eval-outcomes --json` ({exc})"
        ) from None
    if "heuristic" not in evaluation.policies:
        raise ReportError(f"{path}: no heuristic policy to compare with (add --policy heuristic)")
    plots = folder / "plots"
    plots.mkdir(exist_ok=True)
    plot_frontier(evaluation, plots / "frontier.png")
    lines = [f"{'policy':<16} {'pass %':>7} {'cost/pass $':>12} {'regret':>8}"]
    for name, m in evaluation.policies.items():
        regret = m.get("regret", {}).get("value", float("nan"))
        lines.append(
            f"{name:<16} {100 * m['pass_rate']['value']:7.1f} "
            f"{m['cost_per_pass']['value']:12.3f} {regret:8.3f}"
        )
    return Page(
        title="swarm-planner outcome report",
        intro=f"{evaluation.mode} evaluation on {evaluation.rows} issues, from {path.name}.",
        table="\n".join(lines),
        sections=(
            Section(
                "Cost per pass against pass rate",
                plots / "frontier.png",
                frontier_says({"outcomes": data}),
            ),
        ),
    )


def write_report(folder: Path) -> tuple[Path, Path]:
    """Render ``report.md`` and ``report.html`` in ``folder``: a finished demo, a folder holding
    an ``eval_outcomes.json`` of the user's own, or a bench folder (ours or the field's)."""
    if (folder / SUMMARY_FILE).is_file():
        return write_pages(folder, demo_page(folder))
    if (folder / OUTCOMES_FILE).is_file():
        return write_pages(folder, outcomes_page(folder))
    from swarm_planner.core.bench.log import BenchError
    from swarm_planner.core.bench.results import resolve_bench_dir

    try:
        bench = resolve_bench_dir(folder)
    except BenchError:
        return write_pages(folder, demo_page(folder))  # names every kind of folder it takes
    from swarm_planner.demo.bench_report import bench_page

    return write_pages(bench, bench_page(bench))
