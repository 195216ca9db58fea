"""``planner report BENCH_DIR``: the report of a best-of-K bench, ours or the field's.

A bench answers "what happens if this issue runs that way": for each action tried, how often it
passed and what a pass cost; how much running K candidates buys over one; why candidates
failed. The folder is read by the one bench reader (:func:`~swarm_planner.core.bench.results.
read_bench`, which reads the field's ``bench_report.json`` folders too), every record it could
not use is counted in the report, and every line under a figure is written from the figures.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import attrs

from swarm_planner.core.bench.results import BenchRead, read_bench
from swarm_planner.demo.report import Page, Section, _money, _pct

MIN_TRIES = 5
"""An action tried fewer times than this is shown but not named as the best or the cheapest:
two lucky passes are not a finding."""


@attrs.frozen
class ActionFigures:
    """One action's record over the bench."""

    action: str
    tried: int
    passed: int
    cost_usd: float
    """Summed over the candidates that reported a cost."""
    costed: int
    """Candidates that reported a cost."""

    @property
    def pass_rate(self) -> float:
        return self.passed / self.tried

    @property
    def cost_per_pass(self) -> float | None:
        """Cost per pass, scaling the reported costs to every try (None: it never passed, or
        no try reported a cost)."""
        if self.passed == 0 or self.costed == 0:
            return None
        return self.cost_usd * (self.tried / self.costed) / self.passed


@attrs.frozen
class BenchFigures:
    folder: str
    source: str
    cases: int
    candidates: int
    k_max: int
    passed_candidates: int
    any_passed: int
    first_passed: int
    single_pass_rate: float
    actions: tuple[ActionFigures, ...]
    """By pass rate, then cost per pass, then name."""
    fail_codes: dict[str, int]
    errors: dict[str, int]
    skipped: dict[str, int]
    repairs: dict[str, int]


def bench_figures(read: BenchRead) -> BenchFigures:
    by_action: dict[str, list[float | int]] = {}
    fail_codes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    n_candidates = passes = any_passed = first_passed = 0
    k_max = 0
    for case in read.cases:
        k_max = max(k_max, len(case.candidates))
        any_passed += any(c.verified for c in case.candidates)
        first_passed += case.candidates[0].verified
        for c in case.candidates:
            n_candidates += 1
            passes += c.verified
            tried, passed, cost, costed = by_action.setdefault(c.action.text, [0, 0, 0.0, 0])
            by_action[c.action.text] = [
                tried + 1,
                passed + c.verified,
                cost + (c.cost_usd or 0.0),
                costed + (c.cost_usd is not None),
            ]
            if not c.verified:
                fail_codes.update(c.fail_codes or ("(no fail code)",))
            if c.error:
                errors[c.error.split(":", 1)[0][:60]] += 1
    actions = [
        ActionFigures(text, int(t), int(p), float(cost), int(costed))
        for text, (t, p, cost, costed) in by_action.items()
    ]
    actions.sort(
        key=lambda a: (
            -a.pass_rate,
            a.cost_per_pass if a.cost_per_pass is not None else 1e18,
            a.action,
        )
    )
    return BenchFigures(
        folder=read.folder,
        source=read.source,
        cases=len(read.cases),
        candidates=n_candidates,
        k_max=k_max,
        passed_candidates=passes,
        any_passed=any_passed,
        first_passed=first_passed,
        single_pass_rate=passes / n_candidates if n_candidates else 0.0,
        actions=tuple(actions),
        fail_codes=dict(fail_codes.most_common()),
        errors=dict(errors.most_common()),
        skipped=dict(read.skipped),
        repairs=dict(read.repairs.counts),
    )


# -- what each figure means, from its numbers ---------------------------------------------------


def _trusted(f: BenchFigures) -> list[ActionFigures]:
    return [a for a in f.actions if a.tried >= MIN_TRIES] or list(f.actions)


def actions_says(f: BenchFigures) -> str:
    if not f.actions:
        return "No candidate was read from this bench."
    tries = [a.tried for a in f.actions]
    start = (
        f"{len(f.actions)} actions were tried, each {min(tries)} to {max(tries)} times over "
        f"{f.cases} issues."
    )
    trusted = _trusted(f)
    best = trusted[0]  # actions are sorted by pass rate, then cost per pass
    text = (
        f"{start} {best.action} passes most often: {_pct(best.pass_rate)} of {best.tried} "
        f"tries, at {_money(best.cost_per_pass)} per pass."
    )
    priced = [a for a in trusted if a.cost_per_pass is not None]
    if not priced:
        return text + " No action that passed reported a cost."
    cheapest = min(priced, key=lambda a: (a.cost_per_pass, -a.pass_rate, a.action))
    if cheapest.action == best.action:
        return text + " It is also the cheapest per pass."
    return text + (
        f" The cheapest per pass is {cheapest.action}: {_money(cheapest.cost_per_pass)}, "
        f"passing {_pct(cheapest.pass_rate)} ({(cheapest.pass_rate - best.pass_rate) * 100:+.1f} "
        "points against the most passing one)."
    )


def best_of_k_says(f: BenchFigures) -> str:
    if not f.cases:
        return "No issue was read from this bench."
    any_rate, first_rate = f.any_passed / f.cases, f.first_passed / f.cases
    return (
        f"At least one of up to {f.k_max} candidates passed {f.any_passed} of {f.cases} issues "
        f"({_pct(any_rate)}); the first candidate alone passed {_pct(first_rate)}, and a "
        f"candidate passes {_pct(f.single_pass_rate)} on average: choosing the right action per "
        f"issue is worth up to {(any_rate - f.single_pass_rate) * 100:.1f} points over a random "
        "one, the headroom a planner can reach for."
    )


def failures_says(f: BenchFigures) -> str:
    failed = f.candidates - f.passed_candidates
    if failed == 0:
        return "No candidate failed."
    top = list(f.fail_codes.items())[:2]
    text = f"{failed} of {f.candidates} candidates did not pass; the commonest fail code is "
    text += f"{top[0][0]} ({top[0][1]})"
    if len(top) > 1:
        text += f", then {top[1][0]} ({top[1][1]})"
    text += "."
    if f.errors:
        kind, n = next(iter(f.errors.items()))
        text += f" {sum(f.errors.values())} ended in an executor error, most often {kind} ({n})."
    return text


# -- figures -------------------------------------------------------------------------------------


def draw_bench_plots(f: BenchFigures, plots: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots.mkdir(parents=True, exist_ok=True)
    paths = {
        "actions": plots / "bench_actions.png",
        "best_of_k": plots / "bench_best_of_k.png",
        "failures": plots / "bench_failures.png",
    }
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    # Cost per try (defined for every action, passing or not) against pass rate: cost per pass
    # is their ratio, so the cheap, often-passing corner is the top left.
    shown = [a for a in f.actions if a.costed]
    ax.scatter(
        [a.cost_usd / a.costed for a in shown],
        [100 * a.pass_rate for a in shown],
        s=[12 + 4 * a.tried**0.5 for a in shown],
        alpha=0.5,
    )
    for rank, a in enumerate(_trusted(f)[:3]):
        if a.costed:
            ax.annotate(
                a.action,
                (a.cost_usd / a.costed, 100 * a.pass_rate),
                xytext=(6, -10 * rank),
                textcoords="offset points",
                fontsize=7,
            )
    ax.set_xlabel("cost per try ($)")
    ax.set_ylabel("pass rate (%)")
    ax.set_title(f"Each action tried ({len(shown)} with a reported cost; size: tries)")
    fig.tight_layout()
    fig.savefig(paths["actions"], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    rates = {
        "any of K": f.any_passed / max(1, f.cases),
        "first candidate": f.first_passed / max(1, f.cases),
        "one candidate (mean)": f.single_pass_rate,
    }
    ax.bar(list(rates), [100 * v for v in rates.values()], color=["C2", "C0", "C1"])
    ax.set_ylabel("issues passed (%)")
    ax.set_title(f"Best of up to {f.k_max} against one candidate ({f.cases} issues)")
    fig.tight_layout()
    fig.savefig(paths["best_of_k"], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    codes = dict(list(f.fail_codes.items())[:10])
    ax.barh(list(codes)[::-1] or ["(none)"], list(codes.values())[::-1] or [0])
    ax.set_xlabel("candidates")
    ax.set_title("Why candidates did not pass (fail codes)")
    fig.tight_layout()
    fig.savefig(paths["failures"], dpi=110)
    plt.close(fig)
    return paths


def action_table(f: BenchFigures, limit: int = 15) -> str:
    """The actions tried at least MIN_TRIES times first (by pass rate), then the others."""
    lines = [f"{'action':<34} {'tried':>6} {'pass %':>7} {'cost/pass $':>12}"]
    ordered = sorted(f.actions, key=lambda a: a.tried < MIN_TRIES)  # stable: keeps the ranking
    for a in ordered[:limit]:
        cost = "-" if a.cost_per_pass is None else f"{a.cost_per_pass:.3f}"
        lines.append(f"{a.action:<34} {a.tried:>6} {100 * a.pass_rate:7.1f} {cost:>12}")
    if len(f.actions) > limit:
        lines.append(f"... and {len(f.actions) - limit} more actions")
    return "\n".join(lines)


def bench_page(folder: Path) -> Page:
    """The report of the bench in ``folder`` (or of the newest ``run_*`` bench inside it)."""
    f = bench_figures(read_bench(folder))
    images = draw_bench_plots(f, folder / "plots")
    skipped = [f"{kind}: {n}" for kind, n in sorted(f.skipped.items())]
    repaired = [f"{kind}: {n}" for kind, n in sorted(f.repairs.items())]
    kept = (
        f"Every record of the bench was read: {f.cases} issues, {f.candidates} candidates."
        if not skipped and not repaired
        else f"{f.cases} issues and {f.candidates} candidates were read; what was not, or was "
        "repaired on the way, is counted here."
    )
    return Page(
        title="swarm-planner bench report",
        intro=(
            f"The {'field kernel' if f.source == 'field' else 'swarm-planner'} bench in "
            f"{f.folder}: {f.cases} issues, up to {f.k_max} candidates each."
        ),
        table=action_table(f),
        sections=(
            Section(
                "Pass rate and cost per pass of each action", images["actions"], actions_says(f)
            ),
            Section("Best of K against one candidate", images["best_of_k"], best_of_k_says(f)),
            Section("Why candidates did not pass", images["failures"], failures_says(f)),
        ),
        notes=(("What was read", kept, (*skipped, *repaired)),),
    )
