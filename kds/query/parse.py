"""Turn raw parameters (CLI options or a query string) into an :class:`IncidentQuery`.

Rules are checked in the order docs/api.md lists them and every problem is collected, so a caller sees all of
them at once; the first decides the slug.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from kds.errors import InvalidInput, Problem
from kds.query import cursor as cursors
from kds.query.models import IncidentFilter, IncidentQuery
from kds.query.times import AGE_EXAMPLES, parse_time
from kds.query.vocabulary import (
    ENVIRONMENTS,
    LIMIT_RANGE,
    MAX_INCIDENT_ID,
    MAX_LIMIT,
    MAX_TEXT_LENGTH,
    MIN_LIMIT,
    PARAMETERS,
    SEVERITIES,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_TEXT_FILTERS = ("namespace", "cluster", "action_type", "alert_name")


def _shown(value: str, width: int = 60) -> str:
    """The received value as a detail shows it: quoted, escaped, shortened when long."""
    text = value if len(value) <= width else value[:width] + "…"
    return repr(text)


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value.strip())
    return None


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, slug: str, name: str, detail: str) -> None:
        self.problems.append(Problem(slug, name, detail))


def _single_values(params: Mapping[str, Any], problems: _Collector) -> dict[str, Any]:
    """One value per known parameter; empty values are absent; repeats and unknowns are problems."""
    values: dict[str, Any] = {}
    for name, raw in params.items():
        value = raw
        if isinstance(raw, Sequence) and not isinstance(raw, str):
            if len(raw) > 1:
                if name in PARAMETERS:
                    problems.add("invalid-parameter", name, f"{name} was given {len(raw)} times; give it once")
                continue
            value = raw[0] if raw else None
        if value is None or value == "":
            continue
        values[name] = value
    return values


def _check_limit(values: dict[str, Any], default_limit: int, problems: _Collector) -> int:
    raw = values.get("limit", default_limit)
    limit = _integer(raw)
    if limit is None:
        problems.add("invalid-limit", "limit", f"limit must be an integer {LIMIT_RANGE}, got {_shown(str(raw))}")
    elif not MIN_LIMIT <= limit <= MAX_LIMIT:
        problems.add("invalid-limit", "limit", f"limit must be {LIMIT_RANGE}, got {limit}")
    else:
        return limit
    return default_limit


def _check_offset(values: dict[str, Any], problems: _Collector) -> int:
    raw = values.get("offset", 0)
    offset = _integer(raw)
    if offset is None or offset < 0:
        shown = offset if offset is not None else _shown(str(raw))
        problems.add("invalid-offset", "offset", f"offset must be an integer of 0 or more, got {shown}")
        return 0
    return offset


def _check_choice(values: dict[str, Any], name: str, choices: tuple[str, ...], problems: _Collector) -> str | None:
    raw = values.get(name)
    if raw is None:
        return None
    text = str(raw)
    if text.lower() not in choices:
        problems.add(f"invalid-{name}", name, f"{name} must be one of {', '.join(choices)}, got {_shown(text)}")
        return None
    return text.lower()


def _check_times(values: dict[str, Any], now: datetime, problems: _Collector) -> tuple[datetime | None, ...]:
    parsed: dict[str, datetime | None] = {"since": None, "until": None}
    for name in ("since", "until"):
        raw = values.get(name)
        if raw is None:
            continue
        try:
            parsed[name] = parse_time(str(raw), now)
        except (ValueError, OverflowError):
            problems.add(
                "invalid-time-range",
                name,
                f"{name} must be an RFC 3339 timestamp or an age such as {AGE_EXAMPLES}, got {_shown(str(raw))}",
            )
    since, until = parsed["since"], parsed["until"]
    if since is not None and until is not None and since > until:
        problems.add(
            "invalid-time-range",
            "since",
            f"since ({since.isoformat()}) must not be after until ({until.isoformat()})",
        )
    return since, until


def _check_text(values: dict[str, Any], name: str, problems: _Collector) -> str | None:
    raw = values.get(name)
    if raw is None:
        return None
    text = str(raw)
    if len(text) > MAX_TEXT_LENGTH:
        problems.add(
            "invalid-parameter",
            name,
            f"{name} must be at most {MAX_TEXT_LENGTH} characters, got {len(text)}: {_shown(text, 40)}",
        )
        return None
    if _CONTROL.search(text):
        problems.add("invalid-parameter", name, f"{name} must not contain control characters, got {_shown(text)}")
        return None
    return text


def _check_cursor(
    values: dict[str, Any], fingerprint: str, key: bytes, problems: _Collector
) -> cursors.CursorPosition | None:
    raw = values.get("cursor")
    if raw is None:
        return None
    try:
        position = cursors.decode(str(raw), key)
    except cursors.CursorError as exc:
        problems.add("invalid-cursor", "cursor", f"{exc}: got {_shown(str(raw), 40)}")
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
) -> IncidentQuery:
    """Validate raw parameters; raise :class:`InvalidInput` listing every problem.

    The same parameters always give the same (immutable) query unless they hold a time or a
    cursor, so the last :data:`_CACHE_SIZE` valid ones are remembered: a busy server sees the same
    few query strings again and again (invalid ones raise every time and are not kept).
    """
    if now is None and _UNCACHED.isdisjoint(params):
        key = _cache_key(params)
        if key is not None:
            return _parse_cached(key, default_limit, cursor_key)
    return _parse(params, default_limit=default_limit, now=now, cursor_key=cursor_key)


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
def _parse_cached(key: tuple[tuple[str, Any], ...], default_limit: int, cursor_key: bytes) -> IncidentQuery:
    return _parse(dict(key), default_limit=default_limit, now=None, cursor_key=cursor_key)


def _parse(
    params: Mapping[str, Any],
    *,
    default_limit: int,
    now: datetime | None,
    cursor_key: bytes,
) -> IncidentQuery:
    problems, repeated = _Collector(), _Collector()
    values = _single_values(params, repeated)
    now = now or datetime.now(UTC)

    limit = _check_limit(values, default_limit, problems)
    offset = _check_offset(values, problems)
    severity = _check_choice(values, "severity", SEVERITIES, problems)
    environment = _check_choice(values, "environment", ENVIRONMENTS, problems)
    since, until = _check_times(values, now, problems)
    texts = {name: _check_text(values, name, problems) for name in _TEXT_FILTERS}
    fingerprint = cursors.fingerprint(
        {
            **texts,
            "severity": severity,
            "environment": environment,
            "since": _raw_text(values.get("since")),
            "until": _raw_text(values.get("until")),
        }
    )
    # The cursor's rule comes before text filters in the documented order (docs/api.md); its check needs them parsed.
    cursor_problems = _Collector()
    position = _check_cursor(values, fingerprint, cursor_key, cursor_problems)
    _insert_before(problems.problems, cursor_problems.problems, before_names=set(_TEXT_FILTERS))
    problems.problems.extend(repeated.problems)
    for name in params:
        if name not in PARAMETERS:
            problems.add("invalid-parameter", name, f"unknown query parameter {_shown(name)}")

    if problems.problems:
        raise InvalidInput(problems.problems)
    return IncidentQuery(
        filter=IncidentFilter(severity=severity, environment=environment, since=since, until=until, **texts),
        limit=limit,
        offset=offset,
        cursor=position,
        fingerprint=fingerprint,
    )


def _raw_text(value: Any) -> str | None:
    return None if value is None else str(value).strip()


def _insert_before(problems: list[Problem], extra: list[Problem], *, before_names: set[str]) -> None:
    """Insert ``extra`` before the first problem about one of ``before_names`` (keeps the documented order)."""
    index = next(
        (i for i, p in enumerate(problems) if p.name in before_names and p.slug == "invalid-parameter"),
        len(problems),
    )
    problems[index:index] = extra


def parse_incident_id(raw: str | int) -> int:
    """An incident id: an integer 1..2^63-1, else ``invalid-id``."""
    text = str(raw).strip()
    if re.fullmatch(r"[0-9]{1,19}", text):
        value = int(text)
        if 1 <= value <= MAX_INCIDENT_ID:
            return value
    raise InvalidInput.single(
        "invalid-id", "id", f"incident id must be an integer between 1 and {MAX_INCIDENT_ID}, got {_shown(str(raw))}"
    )
