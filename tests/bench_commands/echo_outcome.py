"""A well-behaved kernel: reads the bench's stdin document and answers a valid outcome.

Verified when the action's minutes bin is 60 or more; cost = candidates x 0.1 (NA: 1);
``duration_ms`` is the ``timeout_seconds`` received, in milliseconds (so a test sees what came
through). Environment: ``BENCH_STDIN_COPY`` (a file to copy the stdin document to),
``BENCH_SLEEP`` (seconds to sleep before answering), ``BENCH_SLOW_ISSUES`` (comma-separated
issue ids that sleep ``BENCH_SLOW_SLEEP`` seconds instead).
"""

import json
import os
import sys
import time


def main() -> None:
    answer(sys.stdin.buffer.read())


def answer(raw: bytes) -> None:
    document = json.loads(raw)
    copy = os.environ.get("BENCH_STDIN_COPY")
    if copy:
        with open(copy, "wb") as out:
            out.write(raw)
    issue_id = document["planner_input"]["issue"]["issue_id"]
    if issue_id in os.environ.get("BENCH_SLOW_ISSUES", "").split(","):
        time.sleep(float(os.environ["BENCH_SLOW_SLEEP"]))
    else:
        time.sleep(float(os.environ.get("BENCH_SLEEP", "0")))
    action = document["action"]
    minutes = action["max_minutes_bin"]
    candidates = action["max_candidates_bin"]
    n = 1 if candidates == "NA" else candidates
    verified = minutes != "NA" and minutes >= 60
    outcome = {
        "verified": verified,
        "status": "success" if verified else "failed",
        "duration_ms": round(document["timeout_seconds"] * 1000),
        "cost_usd": round(n * 0.1, 6),
        "fail_codes": [] if verified else ["tests_failed"],
        "gates": [{"name": "build", "passed": True}, {"name": "tests", "passed": verified}],
        "candidate_minutes": n * 1.5,
        "details": {"issue_id": issue_id},
    }
    # Pretty-printed, with a blank line after: whitespace around the object is allowed.
    sys.stdout.write(json.dumps(outcome, indent=2) + "\n\n")


if __name__ == "__main__":
    main()
