"""A kernel whose first run of some candidates kills the process that started it (a Ray
worker, when the bench runs on Ray): the fault of a worker lost mid-candidate.

``BENCH_KILL_ISSUES``: comma-separated issue ids whose candidates kill their parent on their
first attempt; ``BENCH_MARKS``: a folder where a first attempt leaves a mark (so the re-run
answers; ``BENCH_KILL_ALWAYS=1``: every attempt kills). Otherwise it answers as ``echo_outcome.py`` does.
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from echo_outcome import answer


def main() -> None:
    raw = sys.stdin.buffer.read()
    document = json.loads(raw)
    issue_id = document["planner_input"]["issue"]["issue_id"]
    action = document["action"]
    mark = Path(os.environ["BENCH_MARKS"]) / (
        f"{issue_id}-{action['swarm_id']}-{action['max_candidates_bin']}-"
        f"{action['max_minutes_bin']}"
    )
    always = os.environ.get("BENCH_KILL_ALWAYS") == "1"
    if issue_id in os.environ.get("BENCH_KILL_ISSUES", "").split(",") and (
        always or not mark.exists()
    ):
        mark.write_text("killed its worker once\n")
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(2)  # an orphan now (its worker is gone); it ends on its own
        return
    answer(raw)


if __name__ == "__main__":
    main()
