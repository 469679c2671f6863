"""Summaries: the incident filters, grouped by a value or by UTC hour/day buckets (docs/summary.md).

:func:`parse_summary_query` validates raw parameters (CLI options or a query string) with the same
rules and slugs as incident lists; :mod:`kds.query.summary_sql` turns the result into one statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kds.errors import InvalidInput
from kds.query.models import IncidentFilter
from kds.query.rules import CheckedFilter, Collector, check_limit, shown, single_values
from kds.query.vocabulary import (
    MAX_BUCKETS,
    MAX_LIMIT,
    SUMMARY_DEFAULT_LIMIT,
    SUMMARY_DIMENSIONS,
    SUMMARY_PARAMETERS,
    TIME_BUCKETS,
)

Dimension = Literal[
    "namespace", "severity", "cluster", "environment", "action_type", "alert_name", "status", "hour", "day"
]
# Bucket width and how far back ``since`` goes when it is not given.
BUCKET_STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
DEFAULT_SPAN = {"hour": timedelta(hours=24), "day": timedelta(days=30)}
# Accepted only to say clearly that a summary has no pages (``invalid-parameter``).
_PAGING = ("offset", "cursor")


class SummaryQuery(BaseModel):
    """A validated summary. For ``hour``/``day`` the filter's ``since`` and ``until`` are always set."""

    model_config = ConfigDict(frozen=True)

    by: Dimension
    filter: IncidentFilter = IncidentFilter()
    limit: int = Field(SUMMARY_DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)

    @property
    def bucketed(self) -> bool:
        return self.by in TIME_BUCKETS

    def bucket_range(self) -> tuple[datetime, datetime]:
        """The first and the last bucket start (naive UTC): the buckets of ``since`` and of ``until``."""
        assert self.filter.since is not None and self.filter.until is not None, "bucketed summaries have both"
        return bucket_start(self.by, self.filter.since), bucket_start(self.by, self.filter.until)


class SummaryGroup(BaseModel):
    key: str | None = Field(description="The group's value (null included), or the UTC start of a bucket (RFC 3339).")
    count: int


class Summary(BaseModel):
    """``GET /api/v1/incidents/summary`` and ``kds incidents summary -o json``."""

    by: Dimension
    data: list[SummaryGroup] = Field(
        description="Value groups: the `limit` largest, by count descending, then key ascending. "
        "hour/day: every bucket from the bucket of since to the bucket of until, oldest first, empty ones with 0."
    )
    total: int = Field(description="Incidents matching the filters (exact).")
    other: int = Field(description="Incidents in the value groups left out of `data`; 0 for hour/day.")


def bucket_start(by: str, moment: datetime) -> datetime:
    """The start of the UTC hour or day holding ``moment``, as a naive UTC datetime."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.replace(minute=0, second=0, microsecond=0) if by == "hour" else datetime(utc.year, utc.month, utc.day)


def parse_summary_query(
    params: Mapping[str, Any], *, now: datetime | None = None, repeated_lists: bool = False
) -> SummaryQuery:
    """Validate raw parameters; raise :class:`InvalidInput` listing every problem (first one decides the slug)."""
    problems, repeated = Collector(), Collector()
    values = single_values(params, (*SUMMARY_PARAMETERS, *_PAGING), repeated, repeated_lists=repeated_lists)
    now = now or datetime.now(UTC)

    limit = check_limit(values, SUMMARY_DEFAULT_LIMIT, problems)
    for name in _PAGING:
        if name in values:
            problems.add("invalid-parameter", name, f"{name} does not apply to a summary (it has no pages); drop it")
    checked = CheckedFilter(values, now)
    problems.problems.extend(checked.early.problems)
    by_problems = Collector()
    by = None if any(p.name == "by" for p in repeated.problems) else _check_by(values, by_problems)
    flt = checked.filter
    if by in TIME_BUCKETS and not any(p.slug == "invalid-time-range" for p in checked.early.problems):
        flt = _bucketed_filter(by, flt, now, problems)
    problems.problems.extend(checked.late.problems)
    problems.problems.extend(by_problems.problems)
    problems.problems.extend(repeated.problems)
    for name in params:
        if name not in SUMMARY_PARAMETERS and name not in _PAGING:
            problems.add("invalid-parameter", name, f"unknown query parameter {shown(name)}")

    if problems.problems:
        raise InvalidInput(problems.problems)
    assert by is not None
    return SummaryQuery(by=by, filter=flt, limit=limit)  # type: ignore[arg-type]


def _check_by(values: dict[str, Any], problems: Collector) -> str | None:
    allowed = ", ".join(SUMMARY_DIMENSIONS)
    raw = values.get("by")
    if raw is None:
        problems.add("invalid-parameter", "by", f"by is required: one of {allowed}")
        return None
    by = str(raw).strip().lower()
    if by not in SUMMARY_DIMENSIONS:
        problems.add("invalid-parameter", "by", f"by must be one of {allowed}, got {shown(str(raw))}")
        return None
    return by


def _bucketed_filter(by: str, flt: IncidentFilter, now: datetime, problems: Collector) -> IncidentFilter:
    """The filter with since (default: a day or 30 days ago) and until (default: now) set; at most 1000 buckets."""
    since = flt.since if flt.since is not None else now - DEFAULT_SPAN[by]
    until = flt.until if flt.until is not None else now
    if since > until:
        problems.add(
            "invalid-time-range", "since", f"since ({since.isoformat()}) must not be after until ({until.isoformat()})"
        )
        return flt
    buckets = (bucket_start(by, until) - bucket_start(by, since)) // BUCKET_STEP[by] + 1
    if buckets > MAX_BUCKETS:
        problems.add(
            "invalid-time-range",
            "since",
            f"a summary by {by} has at most {MAX_BUCKETS} buckets, got {buckets} "
            f"from {since.isoformat()} to {until.isoformat()}; narrow since/until",
        )
        return flt
    return flt.model_copy(update={"since": since, "until": until})
