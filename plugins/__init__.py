"""Built-in plugins. Each module registers itself through the project's entry points."""
