"""A kernel that writes to stdout without end."""

import sys

chunk = b"x" * 65536
while True:
    sys.stdout.buffer.write(chunk)
