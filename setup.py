"""The one compiled part: the similar-run ranking (core/_retrieval.c).

Everything else is declared in pyproject.toml. The extension is optional: where it cannot be
built (no C compiler), the install goes on and core/history.py ranks with its numpy twin,
which chooses the same runs, only slower (``planner list-plugins`` says which one runs).
"""

import sys

from setuptools import Extension, setup

# No fused multiply-add: the compiled scores must be the numpy twin's bit for bit.
FLAGS = ["/fp:precise"] if sys.platform == "win32" else ["-O2", "-ffp-contract=off"]

setup(
    ext_modules=[
        Extension(
            "swarm_planner.core._retrieval",
            ["core/_retrieval.c"],
            extra_compile_args=FLAGS,
            optional=True,
        )
    ]
)
