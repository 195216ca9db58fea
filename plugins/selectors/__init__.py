"""Selector plugins: the winner among K candidate outcomes."""
