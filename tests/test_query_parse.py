"""Pure units: the validation rules of the filters (docs/api.md, docs/cli.md), at their boundaries."""

from datetime import UTC, datetime, timedelta

import pytest

from kds.errors import InvalidInput
from kds.query import cursor as cursors
from kds.query import parse_incident_id, parse_incident_query

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def parse(**params: object):
    return parse_incident_query(params, default_limit=100, now=NOW)


def problems(**params: object) -> list[tuple[str, str, str]]:
    with pytest.raises(InvalidInput) as caught:
        parse(**params)
    return [(p.slug, p.name, p.detail) for p in caught.value.problems]


@pytest.mark.parametrize("limit", ["1", "1000", 1, 1000])
def test_limit_bounds_accepted(limit: object) -> None:
    assert parse(limit=limit).limit == int(limit)


@pytest.mark.parametrize(
    ("limit", "detail"),
    [
        ("0", "limit must be between 1 and 1000, got 0"),
        ("1001", "limit must be between 1 and 1000, got 1001"),
        ("-1", "limit must be between 1 and 1000, got -1"),
        ("abc", "limit must be an integer between 1 and 1000, got 'abc'"),
        ("1.5", "limit must be an integer between 1 and 1000, got '1.5'"),
        ("\u0661\u0660", "limit must be an integer between 1 and 1000, got '\u0661\u0660'"),
    ],
)
def test_limit_rejected(limit: str, detail: str) -> None:
    assert problems(limit=limit) == [("invalid-limit", "limit", detail)]


def test_defaults() -> None:
    query = parse()
    assert (query.limit, query.offset, query.cursor) == (100, 0, None)
    assert parse_incident_query({}, default_limit=50).limit == 50


def test_offset() -> None:
    assert parse(offset="0").offset == 0
    assert parse(offset="25").offset == 25
    assert problems(offset="-1") == [
        ("invalid-offset", "offset", "offset must be an integer between 0 and 9223372036854775807, got -1")
    ]
    assert problems(offset="x") == [
        ("invalid-offset", "offset", "offset must be an integer between 0 and 9223372036854775807, got 'x'")
    ]


@pytest.mark.parametrize("given", ["info", "WARNING", "Critical", "hIgH", "MEDIUM", "low"])
def test_severity_is_case_insensitive_and_normalised(given: str) -> None:
    assert parse(severity=given).filter.severity == (given.lower(),)


def test_unknown_severity_and_environment() -> None:
    assert problems(severity="urgent") == [
        (
            "invalid-severity",
            "severity",
            "severity must be one of info, warning, critical, high, medium, low, got 'urgent'",
        )
    ]
    assert parse(environment="PRODUCTION").filter.environment == ("production",)
    assert problems(environment="prod") == [
        (
            "invalid-environment",
            "environment",
            "environment must be one of production, staging, development, test, got 'prod'",
        )
    ]


def test_time_range() -> None:
    query = parse(since="7d", until="2026-11-27T11:00:00+01:00")
    assert query.filter.since == NOW - timedelta(days=7)
    assert query.filter.until == datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert parse(since="30m").filter.since == NOW - timedelta(minutes=30)
    assert parse(since="6h").filter.since == NOW - timedelta(hours=6)
    assert parse(since="2026-11-01T00:00:00Z").filter.since == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse(since="2026-11-01").filter.since == datetime(2026, 11, 1, tzinfo=UTC)


def test_time_range_rejected() -> None:
    assert problems(since="yesterday") == [
        (
            "invalid-time-range",
            "since",
            "since must be an RFC 3339 timestamp or an age such as 30m, 6h, 7d, got 'yesterday'",
        )
    ]
    assert problems(since="1h", until="2h") == [
        (
            "invalid-time-range",
            "since",
            "since (2026-11-27T11:00:00+00:00) must not be after until (2026-11-27T10:00:00+00:00)",
        )
    ]
    assert problems(until="2026-13-01T00:00:00Z")[0][0] == "invalid-time-range"
    assert problems(since="99999999999d")[0][0] == "invalid-time-range"


def test_text_filters() -> None:
    assert parse(namespace="a" * 253).filter.namespace == "a" * 253
    (problem,) = problems(namespace="a" * 254)
    assert problem[:2] == ("invalid-parameter", "namespace")
    assert problem[2].startswith("namespace must be at most 253 characters, got 254: 'aaaa")
    assert problems(cluster="prod\x00") == [
        ("invalid-parameter", "cluster", "cluster must not contain control characters, got 'prod\\x00'")
    ]
    assert problems(alert_name="a\nb")[0][:2] == ("invalid-parameter", "alert_name")


def test_empty_values_are_absent() -> None:
    query = parse(namespace="", severity="", limit="", offset="", since="")
    assert query == parse()


def test_unknown_parameter_is_named() -> None:
    assert problems(namespce="default") == [("invalid-parameter", "namespce", "unknown query parameter 'namespce'")]


def test_repeated_parameter() -> None:
    assert problems(namespace=["a", "b"]) == [
        ("invalid-parameter", "namespace", "namespace was given 2 times; give it once")
    ]
    assert parse(namespace=["a"]).filter.namespace == "a"


def test_every_problem_is_listed_in_spec_order() -> None:
    found = problems(
        bogus="1", namespace="x\x00", since="soon", environment="moon", severity="bad", offset="-3", limit="0"
    )
    assert [(slug, name) for slug, name, _ in found] == [
        ("invalid-limit", "limit"),
        ("invalid-offset", "offset"),
        ("invalid-severity", "severity"),
        ("invalid-environment", "environment"),
        ("invalid-time-range", "since"),
        ("invalid-parameter", "namespace"),
        ("invalid-parameter", "bogus"),
    ]


def test_cursor_round_trip_and_tampering() -> None:
    position = cursors.CursorPosition(NOW, 42, parse(namespace="default").fingerprint)
    token = cursors.encode(position)
    query = parse(namespace="default", cursor=token)
    assert query.cursor == position
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert problems(namespace="default", cursor=tampered)[0][:2] == ("invalid-cursor", "cursor")
    assert problems(namespace="default", cursor="garbage")[0][0] == "invalid-cursor"
    assert problems(namespace="other", cursor=token) == [
        ("invalid-cursor", "cursor", "cursor was issued for different filters; repeat the same filters")
    ]
    assert problems(namespace="default", cursor=token, offset="10") == [
        ("invalid-cursor", "cursor", "cursor cannot be combined with offset; drop offset")
    ]
    other_key = cursors.encode(position, key=b"another-secret")
    assert problems(namespace="default", cursor=other_key)[0][0] == "invalid-cursor"


def test_cursor_problem_comes_before_text_filter_problems() -> None:
    found = problems(cursor="garbage", namespace="\x00")
    assert [slug for slug, _, _ in found] == ["invalid-cursor", "invalid-parameter"]


@pytest.mark.parametrize("raw", ["1", "42", str(2**63 - 1), 7])
def test_incident_id_accepted(raw: object) -> None:
    assert parse_incident_id(raw) == int(raw)


@pytest.mark.parametrize(
    "raw",
    ["0", "-1", "abc", "\u0661\u0662", "\uff11\uff12", "1' OR '1'='1", "99999999999999999999", str(2**63), "1.0", ""],
)
def test_incident_id_rejected(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_incident_id(raw)
    assert caught.value.slug == "invalid-id"
    assert caught.value.detail == (f"incident id must be an integer between 1 and 9223372036854775807, got {raw!r}")
