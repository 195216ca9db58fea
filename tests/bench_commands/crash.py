"""A kernel that crashes: ``raise`` (an uncaught exception), ``abort`` or ``segv`` (a signal)."""

import os
import resource
import signal
import sys


def main() -> None:
    how = sys.argv[1] if len(sys.argv) > 1 else "segv"
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file left behind
    if how == "raise":
        raise RuntimeError("the kernel fell over")
    if how == "abort":
        os.abort()
    os.kill(os.getpid(), signal.SIGSEGV)


if __name__ == "__main__":
    main()
