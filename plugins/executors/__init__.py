"""Executor plugins: how one bench candidate is run."""
