"""The kernel decision point: decide, gate, record; never raises into the kernel."""
