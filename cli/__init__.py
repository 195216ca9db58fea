"""The ``planner`` command line: thin commands over library functions."""
