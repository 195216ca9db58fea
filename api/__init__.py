"""swarm-planner: learns how an agent kernel should run each issue it dispatches.

Plugin authors need only this module: ``from swarm_planner import hookimpl``.
Importing it stays cheap (no numpy, torch or onnxruntime) so that ``planner --help`` is fast.
"""

from swarm_planner.core.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
