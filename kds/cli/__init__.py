"""The ``kds`` command line: a thin adapter over the core."""
