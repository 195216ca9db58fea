"""A kernel that hangs: reads stdin, then sleeps forever.

``--ignore-term``: SIGTERM is ignored, so only SIGKILL ends it.
"""

import signal
import sys
import time


def main() -> None:
    if "--ignore-term" in sys.argv[1:]:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.stdin.buffer.read()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
