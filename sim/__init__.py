"""The embedded synthetic kernel world, so that the whole loop runs with no external service."""
