"""Time-range values: RFC 3339 timestamps, or an *age* (``30m``, ``6h``, ``7d``, ``2w``) meaning "that long ago".

An age is not a :mod:`kds.durations` duration (how long to wait, in seconds: ``5``, ``2.5``, ``500ms``):
it needs a unit, takes whole numbers only, and knows days and weeks.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_AGE = re.compile(r"^(\d+)(s|m|h|d|w)$", re.ASCII)
AGE_EXAMPLES = "30m, 6h, 7d"
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: str, now: datetime) -> datetime:
    """Parse ``value``; raise ValueError when it is neither a timestamp nor an age.

    A timestamp without an offset (or a bare date) is taken as UTC.
    """
    text = value.strip()
    match = _AGE.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        try:
            return now - timedelta(**{_UNITS[unit]: amount})
        except OverflowError:
            raise ValueError(f"age {value!r} is too large") from None
    if not re.match(r"^\d{4}-\d{2}-\d{2}", text, re.ASCII):
        raise ValueError(value)
    parsed = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
