"""Turn raw parameters (CLI options or a query string) into an :class:`IncidentQuery`.

Rules are checked in the order docs/api.md lists them and every problem is collected, so a caller
sees all of them at once; the first decides the slug.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kds.errors import InvalidInput
from kds.query import cursor as cursors
from kds.query.models import IncidentQuery
from kds.query.rules import (
    CheckedFilter,
    Collector,
    check_limit,
    check_offset,
    shown,
    single_values,
)
from kds.query.vocabulary import MAX_INCIDENT_ID, PARAMETERS


def _check_cursor(
    values: dict[str, Any], fingerprint: str, key: bytes, problems: Collector
) -> cursors.CursorPosition | None:
    raw = values.get("cursor")
    if raw is None:
        return None
    try:
        position = cursors.decode(str(raw), key)
    except cursors.CursorError as exc:
        problems.add("invalid-cursor", "cursor", f"{exc}: got {shown(str(raw), 40)}")
        return None
    if "offset" in values:
        problems.add("invalid-cursor", "cursor", "cursor cannot be combined with offset; drop offset")
        return None
    if position.fingerprint != fingerprint:
        problems.add("invalid-cursor", "cursor", "cursor was issued for different filters; repeat the same filters")
        return None
    return position


# Parameters whose meaning depends on the moment (relative times) or that are unique per request
# (cursors): queries with them are never cached.
_UNCACHED = frozenset({"since", "until", "cursor"})
_CACHE_SIZE = 1024


def parse_incident_query(
    params: Mapping[str, Any],
    *,
    default_limit: int,
    now: datetime | None = None,
    cursor_key: bytes = cursors.DEFAULT_KEY,
    repeated_lists: bool = False,
) -> IncidentQuery:
    """Validate raw parameters; raise :class:`InvalidInput` listing every problem.

    A parameter given as a list of several values is ``invalid-parameter`` (a query string that
    repeats it), unless ``repeated_lists`` is set and it is a list filter: the CLI's repeated
    ``-s critical -s high`` means ``critical,high``.

    The same parameters always give the same (immutable) query unless they hold a time or a
    cursor, so the last :data:`_CACHE_SIZE` valid ones are remembered: a busy server sees the same
    few query strings again and again (invalid ones raise every time and are not kept).
    """
    if now is None and _UNCACHED.isdisjoint(params):
        key = _cache_key(params)
        if key is not None:
            return _parse_cached(key, default_limit, cursor_key, repeated_lists)
    return _parse(params, default_limit=default_limit, now=now, cursor_key=cursor_key, repeated_lists=repeated_lists)


def _cache_key(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...] | None:
    """The parameters as a hashable key, or None when a value is not plain text, an integer or a list of text."""
    key = []
    for name, value in params.items():
        if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            value = tuple(value)
        elif not isinstance(value, str | int) or isinstance(value, bool):
            return None
        key.append((name, value))
    return tuple(key)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _parse_cached(
    key: tuple[tuple[str, Any], ...], default_limit: int, cursor_key: bytes, repeated_lists: bool
) -> IncidentQuery:
    return _parse(
        dict(key), default_limit=default_limit, now=None, cursor_key=cursor_key, repeated_lists=repeated_lists
    )


def _parse(
    params: Mapping[str, Any],
    *,
    default_limit: int,
    now: datetime | None,
    cursor_key: bytes,
    repeated_lists: bool,
) -> IncidentQuery:
    problems, repeated = Collector(), Collector()
    values = single_values(params, PARAMETERS, repeated, repeated_lists=repeated_lists)

    limit = check_limit(values, default_limit, problems)
    offset = check_offset(values, problems)
    checked = CheckedFilter(values, now or datetime.now(UTC))
    problems.problems.extend(checked.early.problems)
    # The cursor's rule comes before text filters in the validation order; its check needs them parsed.
    position = _check_cursor(values, checked.fingerprint, cursor_key, problems)
    problems.problems.extend(checked.late.problems)
    problems.problems.extend(repeated.problems)
    for name in params:
        if name not in PARAMETERS:
            problems.add("invalid-parameter", name, f"unknown query parameter {shown(name)}")

    if problems.problems:
        raise InvalidInput(problems.problems)
    return IncidentQuery(
        filter=checked.filter, limit=limit, offset=offset, cursor=position, fingerprint=checked.fingerprint
    )


def parse_incident_id(raw: str | int) -> int:
    """An incident id: an integer 1..2^63-1, else ``invalid-id``."""
    text = str(raw).strip()
    if re.fullmatch(r"[0-9]{1,19}", text):
        value = int(text)
        if 1 <= value <= MAX_INCIDENT_ID:
            return value
    raise InvalidInput.single(
        "invalid-id", "id", f"incident id must be an integer between 1 and {MAX_INCIDENT_ID}, got {shown(str(raw))}"
    )
