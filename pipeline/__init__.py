"""Staged training with graduation: ``planner pipeline run`` (see docs/pipeline.md)."""
