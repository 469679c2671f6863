"""Timestamps as kds writes them everywhere (docs/clients.md, "Timestamps").

One format for API documents, CLI output and logs: RFC 3339 in UTC with a ``Z`` suffix, a
four-digit year and a fixed number of fraction digits (``0001-01-01T00:00:00.000000Z``).
Python's ``strftime("%Y")`` does not pad the year on Linux (year 1 comes out as ``1``), so nothing
here uses it; PostgreSQL's ``to_char`` pattern ``YYYY`` does pad.

Both formatters are total: every value a ``datetime`` or a ``timestamptz`` column can hold formats
without raising, so a response is never lost to its formatter after a commit. Instants in year 0
(what ``0001-01-01T00:00:00+01:00`` is in UTC) come out as year ``0000``, still RFC 3339; instants
RFC 3339 cannot express (after year 9999, or before year 0 in a database) keep a signed ISO 8601
expanded year (``+10000-...``, ``-0001-...``) rather than failing. The Python and SQL formatters
agree on every value both can hold (tests/test_timestamps.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from psycopg import sql

# One Gregorian cycle: 400 years are exactly this many days, so shifting by it keeps every date's
# month, day and weekday and changes only the year by 400.
_CYCLE = timedelta(days=146_097)
_CYCLE_YEARS = 400


def _year(year: int) -> str:
    if 0 <= year <= 9999:
        return f"{year:04d}"
    return f"{'-' if year < 0 else '+'}{abs(year):04d}"


def _utc_fields(value: datetime) -> tuple[int, datetime]:
    """(the year in UTC, a naive datetime holding the same month/day/time) without overflowing.

    ``astimezone(UTC)`` raises OverflowError for year 1 with a positive offset (the instant is in
    year 0) and for year 9999 with a negative one; shifting by a whole Gregorian cycle first keeps
    the arithmetic inside ``datetime``'s range.
    """
    naive = value.replace(tzinfo=None)
    offset = value.utcoffset() or timedelta(0)
    try:
        utc = naive - offset
    except OverflowError:
        pass
    else:
        return utc.year, utc
    if naive.year <= _CYCLE_YEARS:
        shifted = naive + _CYCLE - offset
        return shifted.year - _CYCLE_YEARS, shifted
    shifted = naive - _CYCLE - offset
    return shifted.year + _CYCLE_YEARS, shifted


def rfc3339(value: datetime, *, fraction_digits: int = 6) -> str:
    """``value`` as RFC 3339 UTC text with ``fraction_digits`` (0, 3 or 6) digits after the seconds.

    A naive ``value`` is taken as UTC. Never raises for any ``datetime``.
    """
    year, utc = _utc_fields(value)
    text = f"{_year(year)}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    if fraction_digits:
        text += "." + f"{utc.microsecond:06d}"[:fraction_digits]
    return text + "Z"


def from_epoch(seconds: float, *, fraction_digits: int = 3) -> str:
    """A POSIX time (``time.time()``, a log record's ``created``) as :func:`rfc3339` text."""
    return rfc3339(datetime.fromtimestamp(seconds, UTC), fraction_digits=fraction_digits)


def now() -> str:
    return rfc3339(datetime.now(UTC))


# PostgreSQL: the same text built in SQL, so documents travel as ready JSON. ``to_char`` writes AD
# years with at least four digits; years past 9999 get the "+" of the expanded form, and BC years
# (year 0 and before in ISO 8601 numbering: 1 BC is year 0) are computed from the BC year number.
_SQL = (
    "CASE WHEN {v} >= '0001-01-01 00:00:00+00'::timestamptz AND {v} < '10000-01-01 00:00:00+00'::timestamptz"
    " THEN to_char({v} AT TIME ZONE 'UTC', {whole})"
    " ELSE CASE WHEN {v} > '0001-01-01 00:00:00+00'::timestamptz THEN '+' || to_char({v} AT TIME ZONE 'UTC', 'YYYY')"
    " ELSE to_char(1 - to_char({v} AT TIME ZONE 'UTC', 'YYYY')::int, 'FM0000') END"
    " || to_char({v} AT TIME ZONE 'UTC', {rest}) END"
)
_SQL_FRACTION = {0: "", 3: ".MS", 6: ".US"}


def sql_rfc3339(expression: sql.Composable, *, fraction_digits: int = 6) -> sql.Composable:
    """A ``timestamptz`` SQL expression as :func:`rfc3339` text (NULL stays NULL; so do infinities).

    ``fraction_digits`` is 0, 3 or 6, as for :func:`rfc3339`. Whatever the session's time zone.
    """
    from psycopg import sql

    rest = f'-MM-DD"T"HH24:MI:SS{_SQL_FRACTION[fraction_digits]}"Z"'
    return sql.SQL(_SQL).format(v=expression, whole=sql.Literal("YYYY" + rest), rest=sql.Literal(rest))
