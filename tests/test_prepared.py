"""Hot statements prepared behind a transaction-mode pooler (kds.db.prepared, migration 0005).

The pooled path runs on a direct connection with psycopg's own preparing off (what
``KDS_DATABASE_POOLER=pgbouncer`` does), so that this session's ``pg_prepared_statements`` shows what
kds left on the server connection; tests/test_pooler_server.py runs it through a real PgBouncer.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from kds.db.policy import ConnectionPolicy
from kds.db.prepared import positional, statement_name
from kds.query import IncidentQuery, parse_incident_query
from kds.query.execute import afetch_incident, afetch_page
from kds.query.results import EncodedPage
from kds.query.statements import page_document_statement

SETUP = ConnectionPolicy("kds-serve", 5, pooler="pgbouncer").transaction_setup()


def test_named_placeholders_become_positional() -> None:
    converted = positional("a = %(x)s AND b = ANY (%(y)s) OR c = %(x)s AND d LIKE 'q%%'")
    assert converted.text == "a = $1 AND b = ANY ($2) OR c = $1 AND d LIKE 'q%'"
    assert converted.names == ("x", "y")


def test_other_placeholders_cannot_be_prepared() -> None:
    with pytest.raises(ValueError, match="only %\\(name\\)s placeholders can be prepared"):
        positional("a = %s")


def test_the_name_is_the_hash_of_the_text() -> None:
    assert statement_name("SELECT 1") == statement_name("SELECT 1")
    assert statement_name("SELECT 1") != statement_name("SELECT 2")
    assert statement_name("SELECT 1").startswith("kds_")
    assert len(statement_name("SELECT 1")) == 4 + 24


def _query(**parameters: str | list[str]) -> IncidentQuery:
    return parse_incident_query(parameters, default_limit=50)


async def _pages(url: str, queries: list[IncidentQuery]) -> tuple[list[EncodedPage], list[EncodedPage], list[Any]]:
    direct = await psycopg.AsyncConnection.connect(url, autocommit=True)
    pooled = await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=None)
    try:
        expected = [await afetch_page(direct, query) for query in queries]
        got = [await afetch_page(pooled, query, setup=SETUP) for query in queries]
        again = [await afetch_page(pooled, query, setup=SETUP) for query in queries]
        assert again == got
        cur = await pooled.execute(
            "SELECT name, generic_plans + custom_plans FROM pg_prepared_statements ORDER BY name"
        )
        statements = await cur.fetchall()
    finally:
        await direct.close()
        await pooled.close()
    return expected, got, statements


def test_pooled_pages_equal_direct_pages_and_each_text_is_prepared_once(
    api_dataset: tuple[str, list[dict[str, Any]]],
) -> None:
    database_url, rows = api_dataset
    first = asyncio.run(_pages(database_url, [_query(limit="2")]))[1][0]
    assert first.next_cursor is not None
    queries = [
        _query(limit="2"),
        _query(namespace="payments", severity="warning"),  # rows 1, 13, 25, 37 (tests.factories.row_spec)
        _query(severity="critical,high", limit="3", offset="1"),
        _query(since="2020-01-01T00:00:00Z", until="2099-01-01T00:00:00Z"),
        _query(cursor=first.next_cursor, limit="2"),
        _query(namespace="o'brien\\ %% $1"),  # quoting: a value that is all quotes, backslashes and markers
        _query(namespace="支付服务"),
    ]
    expected, got, statements = asyncio.run(_pages(database_url, queries))
    assert got == expected
    assert [page.total for page in got] == [len(rows), 4, 14, len(rows), len(rows), 0, 10]
    assert got[5].data == b""
    texts = {page_document_statement(query).query.as_string(None) for query in queries}
    names = sorted(statement_name(positional(text).text) for text in texts)
    # one statement per distinct text, each planned or executed twice (got, again) per query using it
    assert [name for name, _ in statements] == names
    uses = {name: 0 for name in names}
    for query in queries:
        uses[statement_name(positional(page_document_statement(query).query.as_string(None)).text)] += 2
    assert dict(statements) == uses


def test_pooled_detail_equals_direct_detail(api_dataset: tuple[str, list[dict[str, Any]]]) -> None:
    database_url, rows = api_dataset
    incident_id = rows[-1]["id"]  # the one with every detail field

    async def both() -> tuple[bytes, bytes]:
        direct = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        pooled = await psycopg.AsyncConnection.connect(database_url, autocommit=True, prepare_threshold=None)
        try:
            return await afetch_incident(direct, incident_id), await afetch_incident(pooled, incident_id, setup=SETUP)
        finally:
            await direct.close()
            await pooled.close()

    direct, pooled = asyncio.run(both())
    assert pooled == direct
    assert pooled.startswith(b'{"id":%d,' % incident_id)


def test_a_server_connection_that_lost_its_statements_prepares_them_again(database_url: str) -> None:
    async def run() -> tuple[int, int, list[Any]]:
        conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True, prepare_threshold=None)
        try:
            before = (await afetch_page(conn, _query(), setup=SETUP)).total
            await conn.execute("DEALLOCATE ALL")  # e.g. a pooler's server_reset_query
            after = (await afetch_page(conn, _query(), setup=SETUP)).total
            cur = await conn.execute("SELECT name FROM pg_prepared_statements")
            return before, after, await cur.fetchall()
        finally:
            await conn.close()

    before, after, names = asyncio.run(run())
    assert before == after == 0
    assert names == [(statement_name(positional(page_document_statement(_query()).query.as_string(None)).text),)]


def test_the_settings_hold_for_the_prepared_statement(database_url: str) -> None:
    setup = ConnectionPolicy("kds-serve", 0.2, pooler="pgbouncer").transaction_setup()

    async def run(locker: psycopg.Connection) -> float:
        conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True, prepare_threshold=None)
        try:
            await afetch_page(conn, _query(), setup=setup)  # prepared on this server connection
            with locker.transaction():
                locker.execute("LOCK TABLE resource_action_traces IN ACCESS EXCLUSIVE MODE")
                started = asyncio.get_running_loop().time()
                with pytest.raises(psycopg.errors.QueryCanceled):
                    await afetch_page(conn, _query(), setup=setup)
                return asyncio.get_running_loop().time() - started
        finally:
            await conn.close()

    # the 0.2 s statement timeout of the settings ends the EXECUTE waiting behind the lock
    with psycopg.connect(database_url, autocommit=True) as locker:
        waited = asyncio.run(run(locker))
    assert 0.15 < waited < 5


def test_kds_prepare_keeps_at_most_64_statements(db: psycopg.Connection) -> None:
    for number in range(64):
        assert db.execute("SELECT kds_prepare(%s, 'SELECT 1')", (f"kds_filler_{number}",)).fetchone() == (True,)
    assert db.execute("SELECT kds_prepare('kds_filler_0', 'SELECT 1')").fetchone() == (False,)
    count = "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'kds\\_%'"
    assert db.execute(count).fetchone() == (64,)
    assert db.execute("SELECT kds_prepare('kds_one_more', 'SELECT $1::int + 1')").fetchone() == (True,)
    assert db.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'kds%'").fetchall() == [
        ("kds_one_more",)
    ]
    assert db.execute("EXECUTE kds_one_more(41)").fetchone() == (42,)


def test_literal_values_of_every_parameter_type_round_trip(database_url: str) -> None:
    moment = datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    query = _query(until=moment.isoformat().replace("+00:00", "Z"), namespace="x", severity="critical,high")
    expected, got, _ = asyncio.run(_pages(database_url, [query]))
    assert got == expected
    assert got[0].total == 0
