"""The query core's fast paths give exactly what the plain paths give.

- the server's one-row page (documents joined in SQL, binary format) is byte for byte the CLI's
  per-row page, for every filter shape, offset and keyset page, empty pages and pages over unicode;
- cached statement texts and cached parsed queries are the same as freshly built ones.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
import pytest

from kds.query import parse_incident_query
from kds.query.execute import afetch_incident, afetch_page, astream_incidents, fetch_incident, fetch_page
from kds.query.statements import page_document_statement, page_statement
from tests import factories

NAMESPACES = ["default", "支付服务", "طلبات-العملاء"]
SEVERITIES = ["high", "low", "critical"]


@pytest.fixture
def dataset(db: psycopg.Connection) -> list[int]:
    ids = []
    for i in range(23):
        ids.append(
            factories.incident(
                db,
                minutes=5 * (i if i != 7 else 6),  # rows 6 and 7 share a timestamp: id breaks the tie
                namespace=NAMESPACES[i % 3],
                resource_name=f"web-{i % 4}",
                alert_severity=SEVERITIES[i % 3],
                alert_name="ระบบ🔥ล่ม" if i % 4 == 0 else "HighMemoryUsage",
                model_confidence=0.6 if i % 2 else 0.875,
                effectiveness_score=None if i % 5 else 0.5,
            )
        )
    return ids


def _both(database_url: str, params: dict[str, Any]) -> tuple[bytes, bytes]:
    """(server page, CLI page) as JSON bytes for the same parameters."""
    query = parse_incident_query(params, default_limit=100)

    async def server() -> bytes:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            return (await afetch_page(conn, query)).to_json()

    with psycopg.connect(database_url, autocommit=True) as conn:
        plain = fetch_page(conn, query).to_json()
    return asyncio.run(server()), plain


CASES: list[dict[str, Any]] = [
    {},
    {"limit": "5"},
    {"limit": "5", "offset": "20"},
    {"limit": "1000"},
    {"namespace": "支付服务"},
    {"namespace": "支付服务", "severity": "HIGH", "limit": "2"},
    {"namespace": "nowhere"},
    {"severity": "low", "limit": "3", "offset": "1"},
    {"alert_name": "ระบบ🔥ล่ม", "limit": "2"},
    {"limit": "23"},
    {"limit": "22"},
]


@pytest.mark.parametrize("params", CASES, ids=[str(i) for i in range(len(CASES))])
def test_server_page_equals_plain_page_byte_for_byte(dataset: list[int], database_url: str, params: dict) -> None:
    server, plain = _both(database_url, params)
    assert server == plain
    document = orjson.loads(server)
    assert isinstance(document["data"], list)


def test_server_pages_follow_cursors_like_plain_pages(dataset: list[int], database_url: str) -> None:
    params: dict[str, Any] = {"namespace": "default", "limit": "3"}
    seen: list[int] = []
    while True:
        server, plain = _both(database_url, params)
        assert server == plain
        document = orjson.loads(server)
        seen += [row["id"] for row in document["data"]]
        cursor = document["pagination"]["next_cursor"]
        assert (cursor is None) == (not document["pagination"]["has_more"])
        if cursor is None:
            break
        params = {"namespace": "default", "limit": "3", "cursor": cursor}
    expected = [i for n, i in enumerate(dataset) if n % 3 == 0]
    assert sorted(seen, reverse=True) == sorted(expected, reverse=True)
    assert len(seen) == len(expected) == 8


def test_documents_are_compact_and_numbers_are_numbers(dataset: list[int], database_url: str) -> None:
    server, _ = _both(database_url, {"limit": "1", "offset": "22"})
    row = orjson.loads(server)["data"][0]
    assert row["id"] == dataset[0]
    assert row["model_confidence"] == 0.875 and row["effectiveness_score"] == 0.5
    assert row["resource"] == {"kind": "Deployment", "name": "web-0"}
    assert row["action_timestamp"] == "2026-11-01T12:00:00.000000Z"
    assert b'":' in server and b'" :' not in server and b", " not in server.split(b'"pagination"')[0]


def test_detail_and_export_bytes_equal_the_plain_documents(dataset: list[int], database_url: str) -> None:
    query = parse_incident_query({"namespace": "طلبات-العملاء"}, default_limit=100)

    async def server() -> tuple[bytes, list[bytes]]:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            detail = await afetch_incident(conn, dataset[2])
            rows = [row async for row in astream_incidents(conn, query)]
            return detail, rows

    detail, rows = asyncio.run(server())
    from kds.query.execute import stream_incidents

    with psycopg.connect(database_url, autocommit=True) as conn:
        assert detail == fetch_incident(conn, dataset[2]).encode()
        assert rows == [row.encode() for row in stream_incidents(conn, query)]
    assert len(rows) == 7


def test_statement_text_is_cached_per_shape_and_values_stay_parameters() -> None:
    first = parse_incident_query({"namespace": "a", "severity": "high"}, default_limit=10)
    second = parse_incident_query({"namespace": "b'; DROP TABLE x--", "severity": "low"}, default_limit=10)
    for build in (page_statement, page_document_statement):
        one, two = build(first), build(second)
        assert one.query is two.query
        assert "DROP" not in two.query.as_string(None)
        assert two.params["namespace"] == "b'; DROP TABLE x--"
    other_shape = parse_incident_query({"namespace": "a"}, default_limit=10)
    assert page_statement(other_shape).query is not page_statement(first).query
    assert page_document_statement(first).params["limit"] == 10
    assert page_document_statement(first).params["fetch"] == 11


def test_parsed_queries_are_reused_unless_they_hold_a_time_or_a_cursor() -> None:
    params = {"namespace": "default", "severity": "HIGH", "limit": "50"}
    first = parse_incident_query(params, default_limit=100)
    assert parse_incident_query(dict(params), default_limit=100) is first
    assert first.filter.severity == ("high",) and first.limit == 50
    assert parse_incident_query(params, default_limit=100, cursor_key=b"other") is not first
    assert parse_incident_query(params, default_limit=10) is not first
    timed = {"since": "1h"}
    a = parse_incident_query(timed, default_limit=100)
    b = parse_incident_query(timed, default_limit=100)
    assert a is not b and a.filter.since is not None and a.filter.since <= b.filter.since  # type: ignore[operator]
    fixed = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_incident_query(timed, default_limit=100, now=fixed).filter.since == datetime(
        2025, 12, 31, 23, 0, tzinfo=UTC
    )


def test_invalid_parameters_raise_every_time_cached_or_not() -> None:
    from kds.errors import InvalidInput

    for _ in range(2):
        with pytest.raises(InvalidInput) as caught:
            parse_incident_query({"limit": "0", "bogus": "1"}, default_limit=100)
        assert [p.slug for p in caught.value.problems] == ["invalid-limit", "invalid-parameter"]
