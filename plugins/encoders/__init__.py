"""Encoder plugins: planner_input → sparse features."""
