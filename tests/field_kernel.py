"""Kernel roots in the field kernel's own formats, quirks included, for the archive tests.

The field's kernel (the Cyntra kind) writes things our own simulator never does: validity rules
without ids and with ``<head>_not`` keys, ``hour_bucket`` as two digits, ``error`` for a crashed
run, gates as an array, bench overrides without ``schema_version``, fab-world history runs with
world fields, proofs without a manifest. :func:`write_field_root` writes a root of such runs and
returns, for each folder, what the field's own dataset builder does with it: whether it keeps a
row, and the label it gives. Labels are known by construction (each run's bins are chosen first,
then written as the raw numbers a kernel records), never computed by the code under test.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import attrs

BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z

FIELD_RULES = [
    {
        "description": "If swarm_id=serial_handoff, then max_candidates_bin=1.",
        "if": {"swarm_id": "serial_handoff"},
        "then": {"max_candidates_bin": 1},
    },
    {
        "description": 'If job_type="code", then max_iterations_bin="NA".',
        "if": {"job_type": "code"},
        "then": {"max_iterations_bin": "NA"},
    },
    {
        "description": 'If job_type="fab-world", then max_candidates_bin!="NA".',
        "if": {"job_type": "fab-world"},
        "then": {"max_candidates_bin_not": "NA"},
    },
]

UNKNOWN_RULE = {
    "description": "If swarm_id=speculate_vote, then max_minutes_bin<=60.",
    "if": {"swarm_id": "speculate_vote"},
    "then": {"max_minutes_bin_lte": 60},
}

MINUTES = {15: 15, 30: 30, 45: 45, 60: 60, 120: 120, 20: 15, 40: 45, 90: 60, 200: 120}
"""Minutes a run was given → the bin the field's rule maps them to (ties go lower)."""


PROOF_QUIRKS = {
    "status error",
    "status upper case",
    "status missing",
    "bad started_at",
    "gates list",
}
MANIFEST_QUIRKS = {"legacy", "bench override", "unknown rule", "planner era"}


@attrs.frozen
class Written:
    """One archive folder and what the field's builder makes of it."""

    folder: str
    run_id: str | None
    """The row's run id, or None when the field's builder keeps no row."""
    label: str | None
    quirks: tuple[str, ...]


def _iso(ms: int) -> str:
    seconds, milli = divmod(ms, 1000)
    import datetime as dt

    moment = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{milli:03d}000+00:00"


def _history(rng: random.Random, started: int, job_type: str) -> list[dict[str, Any]]:
    runs = []
    for j in range(rng.randint(0, 3)):
        run: dict[str, Any] = {
            "run_id": f"hist-{started}-{j}",
            "started_ms": started - (j + 1) * 3_600_000,
            "job_type": job_type,
            "domain": "fab_world" if job_type == "fab-world" else "code",
            "action_executed": {
                "swarm_id": "serial_handoff",
                "max_candidates": 1,
                "max_minutes": None,
                "max_iterations": None,
            },
            "outcome": {
                "status": rng.choice(["success", "failed"]),
                "fail_codes": [],
                "gates": [{"name": "pytest", "passed": True, "score": None}],
            },
            "runtime": {"duration_ms": 0},
            "tokens_in": 100,
            "tokens_out": None,
        }
        if job_type == "fab-world":
            run.update(universe_id="medica", world_id="w1", objective_id="realism")
        runs.append(run)
    return runs


def _planner_input(
    rng: random.Random, started: int, job_type: str, issue: dict[str, Any], rules: list[Any]
) -> dict[str, Any]:
    hour = (started // 3_600_000) % 24
    return {
        "schema_version": "cyntra.planner_input.v1",
        "created_at": _iso(started),
        "universe_id": "medica",
        "job_type": job_type,
        "universe_defaults": {"swarm_id": "serial_handoff", "objective_id": None},
        "issue": {
            "issue_id": issue["id"],
            "dk_priority": issue.get("dk_priority", "P2"),
            "dk_risk": issue.get("dk_risk", "medium"),
            "dk_size": issue.get("dk_size", "M"),
            "dk_tool_hint": None,
            "dk_attempts": 0,
            "tags": issue["tags"],
            "title": issue["title"] if rng.random() < 0.9 else None,
            "keywords": ["login", "token"],
        },
        "history": {"last_n_similar_runs": _history(rng, started, job_type)},
        "action_space": {
            "swarm_ids": ["serial_handoff", "speculate_vote"],
            "max_minutes_bins": [15, 30, 45, 60, 120, "NA"],
            "max_candidates_bins": [1, 2, 3, "NA"],
            "max_iterations_bins": [1, 2, 3, 5, "NA"],
            "validity_rules": rules,
        },
        "system_state": {
            "active_workcells_bin": rng.choice(["0", "1_2", "3_5", "6_plus"]),
            "queue_depth_bin": None,
            "available_toolchains": ["claude", "codex"],
            "toolchain_health": None,
            "hour_bucket": f"{hour:02d}",
            "budget_remaining_bin": None,
        },
    }


def _gates(rng: random.Random, passed: bool, as_list: bool) -> tuple[Any, list[str]]:
    names = ["pytest", "mypy"]
    codes = [] if passed else ["pytest_failed"]
    gates = {n: {"passed": passed or n != "pytest", "score": 1.0, "fail_codes": []} for n in names}
    if not passed:
        gates["pytest"]["fail_codes"] = codes
    if as_list:
        return [{"name": n, **g} for n, g in gates.items()], codes
    return gates, codes


def write_field_root(root: Path, runs: int = 600, seed: int = 0) -> list[Written]:
    """A kernel root of ``runs`` archives in the field kernel's formats; see the module doc."""
    rng = random.Random(seed)
    archives = root / ".cyntra" / "archives"
    archives.mkdir(parents=True)
    universe = root / "universes" / "medica"
    universe.mkdir(parents=True)
    (universe / "universe.yaml").write_text(
        "universe_id: medica\ndefaults:\n  swarm_id: serial_handoff\n  objective_id: realism\n"
        "worlds: [w1]\n"
    )
    (universe / "swarms.yaml").write_text(
        "swarms:\n  serial_handoff: {type: serial}\n  speculate_vote: {type: speculate, "
        "population_size: 2}\n"
    )
    issues = []
    for n in range(max(1, runs // 3)):
        issue: dict[str, Any] = {
            "id": str(100 + n),
            "title": f"Fix login token refresh {n}",
            "description": "The token expires early.",
            "status": "open",
            "tags": rng.sample(["api", "auth", "ui", "docs", "asset:tree"], 2),
            "dk_attempts": str(rng.randint(0, 3)),
        }
        if rng.random() < 0.9:
            issue["dk_risk"] = rng.choice(["low", "medium", "high", "critical"])
        if rng.random() < 0.9:
            issue["dk_size"] = rng.choice(["XS", "S", "M", "L"])
        if rng.random() < 0.9:
            issue["dk_priority"] = rng.choice(["P0", "P1", "P2", "P3"])
        issues.append(issue)
    (root / ".beads").mkdir()
    (root / ".beads" / "issues.jsonl").write_text("\n".join(json.dumps(i) for i in issues) + "\n")

    written = []
    for i in range(runs):
        written.append(_write_run(rng, archives, i, issues))
    return written


def _write_run(rng: random.Random, archives: Path, i: int, issues: list[dict[str, Any]]) -> Written:
    folder = archives / f"wc-{i:05d}"
    folder.mkdir()
    quirks: list[str] = []
    started = BASE_MS + i * 600_000 + rng.randint(0, 999)
    issue = rng.choice(issues)
    job_type = "fab-world" if rng.random() < 0.15 else "code"
    legacy = rng.random() < 0.2
    speculate = rng.random() < 0.4
    if job_type == "fab-world":
        candidates = rng.choice([1, 2, 3]) if speculate else 1
        iterations: int | None = rng.choice([1, 2, 3, 5])
    else:
        candidates = rng.choice([2, 3]) if speculate else 1
        iterations = None
    swarm = "speculate_vote" if speculate else "serial_handoff"
    manifest: dict[str, Any] = {
        "schema_version": "cyntra.manifest.v1",
        "workcell_id": folder.name,
        "job_type": job_type,
        "issue": {"id": issue["id"], "title": issue["title"], "tags": issue["tags"]},
        "speculate_mode": speculate,
        "control": {"speculate_parallelism": candidates},
        "toolchain": "claude",
    }
    if legacy:
        minutes_bin: int | str = "NA"
        iterations_bin: int | str = "NA"
        candidates_bin: int | str = candidates
        quirks.append("legacy")
    else:
        given = rng.choice([*list(MINUTES), None])
        minutes_bin = "NA" if given is None else MINUTES[given]
        iterations_bin = "NA" if iterations is None else iterations
        candidates_bin = candidates
        timeout = None if given is None else given * 60 + rng.choice([0, 7, 59])
        plan: dict[str, Any] = {
            "schema_version": "cyntra.executed_plan.v1",
            "swarm_id_executed": swarm,
            "max_candidates_executed": candidates,
            "timeout_seconds_executed": timeout,
            "max_iterations_executed": iterations,
            "fallback_applied": False,
            "fallback_reason": None,
        }
        section: dict[str, Any] = {"executed_plan": plan, "timeout_seconds_override": None}
        roll = rng.random()
        if roll < 0.05:  # a best-of-K override, as the field's bench writes it
            plan = {k: plan[k] for k in list(plan)[1:5]}
            section = {"override_applied": True, "executed_plan": plan}
            quirks.append("bench override")
        else:
            rules = list(FIELD_RULES)
            if roll < 0.09:
                rules.append(UNKNOWN_RULE)
                quirks.append("unknown rule")
            section["planner_input"] = _planner_input(rng, started, job_type, issue, rules)
            section["planner_action"] = {
                "schema_version": "cyntra.planner_action.v1",
                "created_at": _iso(started),
                "swarm_id": swarm,
                "budgets": {
                    "max_candidates_bin": candidates_bin,
                    "max_minutes_bin": minutes_bin,
                    "max_iterations_bin": iterations_bin,
                },
                "confidence": 1.0,
                "abstain_to_default": False,
                "reason": None,
                "model": {"checkpoint_id": "baseline_heuristic_v0"},
                "input_hash": "0" * 64,
            }
            quirks.append("planner era")
        manifest["planner"] = section
    label = f"{swarm}|{candidates_bin}|{minutes_bin}|{iterations_bin}"

    passed = rng.random() < 0.6
    status = "success" if passed else rng.choice(["failed", "timeout", "partial"])
    kind = rng.random()
    if kind < 0.03:
        status, passed = "error", False
        quirks.append("status error")
    elif kind < 0.05:
        status = status.upper()
        quirks.append("status upper case")
    gates, codes = _gates(rng, passed, as_list=rng.random() < 0.3)
    if isinstance(gates, list):
        quirks.append("gates list")
    proof: dict[str, Any] = {
        "schema_version": "cyntra.proof.v1",
        "workcell_id": folder.name,
        "issue_id": issue["id"],
        "status": status,
        "metadata": {
            "started_at": _iso(started),
            "completed_at": _iso(started + 300_000),
            "duration_ms": 300_000,
            "cost_usd": round(rng.random(), 3),
            "tokens_used": rng.randint(1000, 9000),
            "toolchain": "claude",
        },
        "verification": {
            "all_passed": passed,
            "gates": gates,
            "blocking_failures": codes,
        },
        "patch": {"files_changed": 2},
    }
    if rng.random() < 0.02:
        proof["metadata"]["started_at"] = "yesterday at noon"
        quirks.append("bad started_at")
    if rng.random() < 0.02:
        del proof["status"]
        quirks.append("status missing")

    fate = rng.random()
    files: dict[str, Any] = {"manifest.json": manifest, "proof.json": proof}
    run_id: str | None = folder.name
    if fate < 0.02:
        files["proof.json"] = json.dumps(proof)[:50]  # truncated: the field's builder drops it
        run_id = None
        quirks.append("truncated proof")
    elif fate < 0.04:
        del files["proof.json"]  # a run still in flight
        run_id = None
        quirks.append("no proof")
    elif fate < 0.06:
        del files["manifest.json"]  # the field's builder reads the proof alone: serial, legacy
        label = "serial_handoff|1|NA|NA"
        quirks.append("no manifest")
    elif fate < 0.08:
        files["manifest.json"] = "{not json"
        label = "serial_handoff|1|NA|NA"
        quirks.append("broken manifest")
    elif fate < 0.14:
        files["rollout.json"] = {
            "schema_version": "cyntra.rollout.v1",
            "workcell_id": folder.name,
            "job_type": job_type,
            "issue_id": issue["id"],
            "metadata": {"started_at": _iso(started)},
            "scores": {"duration_ms": 300_000, "cost_usd": 0.5},
            "outcomes": {"verification": {"all_passed": passed, "blocking_failures": codes}},
        }
        quirks.append("rollout")
    elif fate < 0.16:
        files["rollout.json"] = {"schema_version": "cyntra.rollout.v0"}
        run_id = None  # the field's builder stops at a rollout it does not know
        quirks.append("old rollout")
    if "rollout" in quirks:  # the proof is not read
        quirks = [q for q in quirks if q not in PROOF_QUIRKS]
    if "no manifest" in quirks or "broken manifest" in quirks:
        quirks = [q for q in quirks if q not in MANIFEST_QUIRKS]
    for name, content in files.items():
        text = content if isinstance(content, str) else json.dumps(content, indent=2)
        (folder / name).write_text(text)
    return Written(folder.name, run_id, label if run_id else None, tuple(quirks))


def quirk_counts(written: list[Written]) -> Counter[str]:
    """How many runs that we read carry each quirk: the runs the field's builder keeps, and
    those it drops at a rollout of an older schema (we read their proof instead)."""
    return Counter(
        q for w in written if w.run_id is not None or "old rollout" in w.quirks for q in w.quirks
    )
