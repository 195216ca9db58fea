"""A kernel that leaves a grandchild holding its stdout open.

``grandchild.py PIDFILE MODE``: starts a grandchild that ignores SIGTERM and sleeps, sharing
this process's stdout and stderr; writes the grandchild's pid to PIDFILE; then MODE ``hang``
sleeps forever, MODE ``exit`` prints a valid outcome and exits 0 (the grandchild still holds
the pipe).
"""

import json
import os
import subprocess
import sys
import time

GRANDCHILD = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"


def main() -> None:
    pidfile, mode = sys.argv[1], sys.argv[2]
    sys.stdin.buffer.read()
    child = subprocess.Popen([sys.executable, "-c", GRANDCHILD])
    with open(pidfile + ".tmp", "w") as out:
        out.write(str(child.pid))
    os.replace(pidfile + ".tmp", pidfile)
    if mode == "exit":
        outcome = {"verified": True, "status": "success", "duration_ms": 5, "cost_usd": 0.25}
        sys.stdout.write(json.dumps(outcome))
        sys.stdout.flush()
        os._exit(0)  # no wait for the grandchild
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
