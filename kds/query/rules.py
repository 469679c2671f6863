"""The validation rules of single parameters, shared by every query the core parses (lists and summaries).

Each check reads the raw values (one per parameter, see :func:`single_values`), records every problem in
a :class:`Collector` and returns the normalised value. Callers run them in the order of the validation
table in docs/api.md, so the first problem decides the slug.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from kds.errors import Problem
from kds.query import cursor as cursors
from kds.query.models import IncidentFilter
from kds.query.times import AGE_EXAMPLES, parse_time
from kds.query.vocabulary import (
    ENVIRONMENTS,
    LIMIT_RANGE,
    LIST_FILTERS,
    MAX_LIMIT,
    MAX_OFFSET,
    MAX_TEXT_LENGTH,
    MIN_LIMIT,
    SEVERITIES,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
# More digits than any accepted integer has: never handed to int() (Python refuses > 4300 digits).
_MAX_DIGITS = 40
TEXT_FILTERS = ("namespace", "cluster", "action_type", "alert_name")
_CHOICES = {"severity": SEVERITIES, "environment": ENVIRONMENTS}


def shown(value: str, width: int = 60) -> str:
    """The received value as a detail shows it: quoted, escaped, shortened when long."""
    text = value if len(value) <= width else value[:width] + "…"
    return repr(text)


def integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and len(value) <= _MAX_DIGITS and _INTEGER.match(value.strip()):
        return int(value.strip())
    return None


class Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, slug: str, name: str, detail: str) -> None:
        self.problems.append(Problem(slug, name, detail))


def single_values(
    params: Mapping[str, Any], known: Collection[str], problems: Collector, *, repeated_lists: bool = False
) -> dict[str, Any]:
    """One value per parameter; empty values are absent.

    A parameter given several times is a problem (``invalid-parameter``), except for the list filters
    when ``repeated_lists`` is set (the CLI's ``-s critical -s high``): their values are then joined
    as one comma-separated list, each item validated.
    """
    values: dict[str, Any] = {}
    for name, raw in params.items():
        value = raw
        if isinstance(raw, Sequence) and not isinstance(raw, str):
            if len(raw) > 1:
                if repeated_lists and name in LIST_FILTERS:
                    values[name] = ",".join(str(item) for item in raw)
                elif name in known:
                    problems.add("invalid-parameter", name, f"{name} was given {len(raw)} times; give it once")
                continue
            value = raw[0] if raw else None
        if value is None or value == "":
            continue
        values[name] = value
    return values


def check_limit(values: dict[str, Any], default_limit: int, problems: Collector) -> int:
    raw = values.get("limit", default_limit)
    limit = integer(raw)
    if limit is None:
        problems.add("invalid-limit", "limit", f"limit must be an integer {LIMIT_RANGE}, got {shown(str(raw))}")
    elif not MIN_LIMIT <= limit <= MAX_LIMIT:
        problems.add("invalid-limit", "limit", f"limit must be {LIMIT_RANGE}, got {limit}")
    else:
        return limit
    return default_limit


def check_offset(values: dict[str, Any], problems: Collector) -> int:
    raw = values.get("offset", 0)
    offset = integer(raw)
    if offset is None or not 0 <= offset <= MAX_OFFSET:
        got = offset if offset is not None else shown(str(raw))
        problems.add("invalid-offset", "offset", f"offset must be an integer between 0 and {MAX_OFFSET}, got {got}")
        return 0
    return offset


def _check_choice_item(name: str, item: str, problems: Collector) -> str | None:
    choices = _CHOICES[name]
    if item.lower() not in choices:
        problems.add(f"invalid-{name}", name, f"{name} must be one of {', '.join(choices)}, got {shown(item)}")
        return None
    return item.lower()


def _check_text_value(name: str, text: str, problems: Collector) -> str | None:
    if len(text) > MAX_TEXT_LENGTH:
        problems.add(
            "invalid-parameter",
            name,
            f"{name} must be at most {MAX_TEXT_LENGTH} characters, got {len(text)}: {shown(text, 40)}",
        )
        return None
    if _CONTROL.search(text):
        problems.add("invalid-parameter", name, f"{name} must not contain control characters, got {shown(text)}")
        return None
    return text


def check_list(values: dict[str, Any], name: str, problems: Collector) -> tuple[str, ...] | None:
    """A comma-separated "any of" list: every item validated, normalised, sorted, without repeats."""
    raw = values.get(name)
    if raw is None:
        return None
    accepted: set[str] = set()
    for item in (part.strip() for part in str(raw).split(",")):
        if not item:
            slug = f"invalid-{name}" if name in _CHOICES else "invalid-parameter"
            problems.add(slug, name, f"{name} lists an empty item, got {shown(str(raw))}")
            return None
        value = (
            _check_choice_item(name, item, problems) if name in _CHOICES else _check_text_value(name, item, problems)
        )
        if value is None:
            return None
        accepted.add(value)
    return tuple(sorted(accepted))


def check_times(values: dict[str, Any], now: datetime, problems: Collector) -> tuple[datetime | None, datetime | None]:
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
                f"{name} must be an RFC 3339 timestamp or an age such as {AGE_EXAMPLES}, got {shown(str(raw))}",
            )
    since, until = parsed["since"], parsed["until"]
    if since is not None and until is not None and since > until:
        problems.add(
            "invalid-time-range",
            "since",
            f"since ({since.isoformat()}) must not be after until ({until.isoformat()})",
        )
    return since, until


def check_text(values: dict[str, Any], name: str, problems: Collector) -> str | None:
    raw = values.get(name)
    return None if raw is None else _check_text_value(name, str(raw), problems)


class CheckedFilter:
    """The filter of a query and the problems found, in the table's order, split where the cursor's rule goes."""

    def __init__(self, values: dict[str, Any], now: datetime) -> None:
        #: severity, environment and time-range problems (before the cursor's rule)
        self.early = Collector()
        #: text-filter problems (after it)
        self.late = Collector()
        severity = check_list(values, "severity", self.early)
        environment = check_list(values, "environment", self.early)
        since, until = check_times(values, now, self.early)
        texts = {name: check_text(values, name, self.late) for name in TEXT_FILTERS}
        status = check_list(values, "status", self.late)
        self.filter = IncidentFilter(
            severity=severity, environment=environment, status=status, since=since, until=until, **texts
        )
        self.fingerprint = cursors.fingerprint(
            {
                **texts,
                "severity": _joined(severity),
                "environment": _joined(environment),
                "status": _joined(status),
                "since": _raw_text(values.get("since")),
                "until": _raw_text(values.get("until")),
            }
        )


def _joined(items: tuple[str, ...] | None) -> str | None:
    return None if items is None else ",".join(items)


def _raw_text(value: Any) -> str | None:
    return None if value is None else str(value).strip()
