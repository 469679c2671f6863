"""Durations (how long to wait: timeouts, delays) as operators write them: ``5``, ``2.5``, ``500ms``, ``5s``,
``1m``, ``2h``; in seconds. Not the *age* of a time range (``7d`` ago): that is :mod:`kds.query.times`."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$", re.ASCII)
_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
DURATION_EXAMPLES = "5, 2.5, 500ms, 5s, 1m"  # for help texts


def parse_duration(value: object) -> float:
    """Return the duration in seconds; raise ValueError with a readable message otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}")
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"invalid duration {value!r} (use seconds such as 5 or 2.5, or 500ms, 5s, 1m)")
    return float(match.group(1)) * _FACTORS[match.group(2)]
