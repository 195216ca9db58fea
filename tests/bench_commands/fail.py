"""A kernel that exits 3 after a long stderr whose last line says why."""

import sys


def main() -> None:
    for i in range(100):
        sys.stderr.write(f"noise line {i:03d} of the build log\n")
    sys.stderr.write("fatal: the build broke\n")
    sys.exit(3)


if __name__ == "__main__":
    main()
