"""Summaries in the query core: validation units, and results equal to SQL written by hand in the test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from kds.errors import InvalidInput
from kds.query.summary import parse_summary_query
from kds.query.summary_sql import fetch_summary, summary_json
from tests.summary_data import BASE, COLUMN, hand_buckets, hand_groups, summary_db_fixture  # noqa: F401  (a fixture)

NOW = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)
DIMENSIONS = "namespace, severity, cluster, environment, action_type, alert_name, status, hour, day"


def parse(**params: Any) -> Any:
    return parse_summary_query(params, now=NOW)


def problems(**params: Any) -> list[tuple[str, str, str]]:
    with pytest.raises(InvalidInput) as caught:
        parse(**params)
    return [(p.slug, p.name, p.detail) for p in caught.value.problems]


# -- validation ------------------------------------------------------------------------------------


def test_defaults() -> None:
    query = parse(by="namespace")
    assert (query.by, query.limit, query.filter.since, query.filter.until) == ("namespace", 20, None, None)
    hourly = parse(by="hour")
    assert (hourly.filter.since, hourly.filter.until) == (NOW - timedelta(hours=24), NOW)
    assert hourly.bucket_range() == (datetime(2026, 11, 26, 12), datetime(2026, 11, 27, 12))
    daily = parse(by="DAY", severity="high")
    assert (daily.by, daily.filter.since, daily.filter.until) == ("day", NOW - timedelta(days=30), NOW)
    assert daily.bucket_range() == (datetime(2026, 10, 28), datetime(2026, 11, 27))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [("invalid-parameter", "by", f"by is required: one of {DIMENSIONS}")]),
        ({"by": "week"}, [("invalid-parameter", "by", f"by must be one of {DIMENSIONS}, got 'week'")]),
        ({"by": "hour", "limit": "0"}, [("invalid-limit", "limit", "limit must be between 1 and 1000, got 0")]),
        ({"by": "status", "limit": "1001"}, [("invalid-limit", "limit", "limit must be between 1 and 1000, got 1001")]),
        (
            {"by": "namespace", "offset": "0"},
            [("invalid-parameter", "offset", "offset does not apply to a summary (it has no pages); drop it")],
        ),
        (
            {"by": "namespace", "cursor": "abc"},
            [("invalid-parameter", "cursor", "cursor does not apply to a summary (it has no pages); drop it")],
        ),
        (
            {"by": "severity", "severity": "high,urgent"},
            [
                (
                    "invalid-severity",
                    "severity",
                    "severity must be one of info, warning, critical, high, medium, low, got 'urgent'",
                )
            ],
        ),
        (
            {"by": "cluster", "environment": "moon"},
            [
                (
                    "invalid-environment",
                    "environment",
                    "environment must be one of production, staging, development, test, got 'moon'",
                )
            ],
        ),
        (
            {"by": "day", "since": "soon"},
            [
                (
                    "invalid-time-range",
                    "since",
                    "since must be an RFC 3339 timestamp or an age such as 30m, 6h, 7d, got 'soon'",
                )
            ],
        ),
        (
            {"by": "hour", "since": "2026-11-28T00:00:00Z"},
            [
                (
                    "invalid-time-range",
                    "since",
                    "since (2026-11-28T00:00:00+00:00) must not be after until (2026-11-27T12:30:00+00:00)",
                )
            ],
        ),
        (
            {"by": "hour", "since": "42d"},
            [
                (
                    "invalid-time-range",
                    "since",
                    "a summary by hour has at most 1000 buckets, got 1009 from 2026-10-16T12:30:00+00:00 "
                    "to 2026-11-27T12:30:00+00:00; narrow since/until",
                )
            ],
        ),
        (
            {"by": "namespace", "namespace": "a\x00"},
            [("invalid-parameter", "namespace", "namespace must not contain control characters, got 'a\\x00'")],
        ),
        ({"by": "namespace", "bogus": "1"}, [("invalid-parameter", "bogus", "unknown query parameter 'bogus'")]),
        ({"by": ["namespace", "status"]}, [("invalid-parameter", "by", "by was given 2 times; give it once")]),
    ],
)
def test_every_rule_with_its_slug_and_detail(params: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    assert problems(**params) == expected


def test_bucket_boundaries() -> None:
    # exactly 1000 hourly buckets is accepted; one more is not
    since = datetime(2026, 11, 27, 12, tzinfo=UTC) - timedelta(hours=999)
    assert parse(by="hour", since=since.isoformat(), until="2026-11-27T12:59:59Z").bucket_range()[0] == since.replace(
        tzinfo=None
    )
    assert problems(by="hour", since=(since - timedelta(seconds=1)).isoformat(), until="2026-11-27T12:00:00Z")[0][
        0
    ] == ("invalid-time-range")
    assert problems(by="day", since="1000d")[0][0] == "invalid-time-range"
    assert parse(by="day", since="999d").bucket_range()[0] == datetime(2024, 3, 3)
    # limit is validated for buckets too, though it does not apply to them
    assert parse(by="hour", limit="3").limit == 3


def test_problems_are_listed_in_the_validation_order() -> None:
    found = problems(bogus="1", namespace="x\x00", since="soon", environment="moon", limit="0", offset="1")
    assert [(slug, name) for slug, name, _ in found] == [
        ("invalid-limit", "limit"),
        ("invalid-parameter", "offset"),
        ("invalid-environment", "environment"),
        ("invalid-time-range", "since"),
        ("invalid-parameter", "namespace"),
        ("invalid-parameter", "by"),
        ("invalid-parameter", "bogus"),
    ]


# -- results against SQL written by hand -----------------------------------------------------------


def to_query(flt: dict[str, Any]) -> dict[str, str]:
    return {
        name: ",".join(value)
        if isinstance(value, list)
        else value.isoformat()
        if isinstance(value, datetime)
        else value
        for name, value in flt.items()
    }


def core(url: str, **params: Any) -> dict[str, Any]:
    query = parse_summary_query(params, now=NOW)
    with psycopg.connect(url) as conn:
        summary = fetch_summary(conn, query)
    document = summary.model_dump()
    assert summary_json(summary) == __import__("orjson").dumps(document)
    return document


FILTERS: list[dict[str, Any]] = [
    {},
    {"severity": ["critical", "high"]},
    {"status": ["completed", "failed"], "since": BASE},
    {"namespace": "payments", "environment": ["production", "test"]},
    {"cluster": "prod-a", "until": BASE + timedelta(hours=2)},
    {"alert_name": "ระบบ🔥ล่ม", "action_type": "restart_pod"},
]


@pytest.mark.parametrize("by", list(COLUMN))
@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: ",".join(f) or "none")
def test_value_groups_equal_a_hand_written_group_by(summary_db: str, by: str, flt: dict[str, Any]) -> None:
    expected = hand_groups(summary_db, by, flt, 20)
    assert expected["total"] > 0, "every case must match incidents"
    assert core(summary_db, by=by, **to_query(flt)) == expected


@pytest.mark.parametrize(("by", "limit"), [("namespace", 2), ("severity", 1), ("status", 3), ("alert_name", 1)])
def test_limit_keeps_the_largest_groups_and_other_counts_the_rest(summary_db: str, by: str, limit: int) -> None:
    expected = hand_groups(summary_db, by, {}, limit)
    assert expected["other"] > 0
    assert core(summary_db, by=by, limit=str(limit)) == expected


def test_null_is_a_group_and_ties_order_by_key(summary_db: str) -> None:
    document = core(summary_db, by="cluster", limit="1000")
    keys = [group["key"] for group in document["data"]]
    assert None in keys
    counts = [group["count"] for group in document["data"]]
    assert counts == sorted(counts, reverse=True)


def test_no_match_is_an_empty_summary(summary_db: str) -> None:
    assert core(summary_db, by="namespace", namespace="nowhere") == {
        "by": "namespace",
        "data": [],
        "total": 0,
        "other": 0,
    }


def test_hourly_buckets_are_all_present_with_empty_ones_zero(summary_db: str) -> None:
    since, until = BASE - timedelta(minutes=90), BASE + timedelta(hours=8, minutes=1)
    flt = {"since": since, "until": until}
    expected = hand_buckets(summary_db, "hour", flt, datetime(2026, 11, 1, 10), datetime(2026, 11, 1, 20))
    assert len(expected["data"]) == 11
    assert [g["count"] for g in expected["data"]][:2] == [0, 0] and expected["data"][7]["count"] == 0
    assert core(summary_db, by="hour", since=since.isoformat(), until=until.isoformat()) == expected
    # with filters, and limit ignored
    flt = {"since": since, "until": until, "severity": ["high", "critical"], "namespace": "payments"}
    expected = hand_buckets(summary_db, "hour", flt, datetime(2026, 11, 1, 10), datetime(2026, 11, 1, 20))
    assert expected["total"] > 0
    assert core(summary_db, by="hour", limit="1", **to_query(flt)) == expected


def test_daily_buckets_from_the_bucket_of_since_to_the_bucket_of_until(summary_db: str) -> None:
    since, until = BASE - timedelta(days=10), BASE + timedelta(days=1)
    expected = hand_buckets(
        summary_db, "day", {"since": since, "until": until}, datetime(2026, 10, 22), datetime(2026, 11, 2)
    )
    assert len(expected["data"]) == 12 and expected["data"][-1] == {"key": "2026-11-02T00:00:00Z", "count": 0}
    assert [g["key"] for g in expected["data"] if g["count"]] == [
        "2026-10-23T00:00:00Z",
        "2026-10-30T00:00:00Z",
        "2026-11-01T00:00:00Z",
    ]
    assert core(summary_db, by="day", since=since.isoformat(), until=until.isoformat()) == expected


def test_default_window_ends_now(summary_db: str) -> None:
    """``until`` defaults to now: with NOW far after the data, the last 24 hours are 25 empty buckets."""
    document = core(summary_db, by="hour")
    assert document["total"] == 0 and len(document["data"]) == 25
    assert (
        document["data"][0]["key"] == "2026-11-26T12:00:00Z" and document["data"][-1]["key"] == "2026-11-27T12:00:00Z"
    )


def test_bucket_keys_have_four_digit_years(summary_db: str) -> None:
    document = core(summary_db, by="hour", since="0001-01-01T00:00:00Z", until="0001-01-01T02:30:00Z")
    assert [g["key"] for g in document["data"]] == [
        "0001-01-01T00:00:00Z",
        "0001-01-01T01:00:00Z",
        "0001-01-01T02:00:00Z",
    ]
    assert problems(by="day", since="0001-01-01T00:00:00+01:00")[0][:2] == ("invalid-time-range", "since")
