"""Prints ``argv[1]`` verbatim on stdout and exits with ``argv[2]`` (default 0)."""

import sys

sys.stdout.write(sys.argv[1])
sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
