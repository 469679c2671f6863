"""Run the core's statements on a psycopg connection (sync for the CLI, async for the server).

Driver exceptions propagate unchanged; front ends map them with
:func:`kds.db.connection.database_errors` (the CLI) or :func:`kds.db.connection.translate_error`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from psycopg.adapt import Loader
from psycopg.pq import Format

from kds.db.prepared import aexecute
from kds.errors import NotFound
from kds.query import cursor as cursors
from kds.query.models import IncidentQuery
from kds.query.results import EncodedPage, IncidentPage, assemble_encoded_page, assemble_page
from kds.query.statements import detail_statement, export_statement, page_document_statement, page_statement

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

EXPORT_BATCH_ROWS = 1000


class Utf8Bytes(Loader):
    """Text columns as their UTF-8 bytes: the server sends documents on as they came (no decode and re-encode)."""

    def load(self, data: Any) -> bytes:
        return bytes(data)


class Utf8BytesBinary(Utf8Bytes):
    """The same for text columns in binary format (the UTF-8 bytes too: the connection's encoding is UTF-8)."""

    format = Format.BINARY


def _raw_text(cur: psycopg.AsyncCursor[Any] | psycopg.AsyncServerCursor[Any]) -> None:
    cur.adapters.register_loader("text", Utf8Bytes)
    cur.adapters.register_loader("text", Utf8BytesBinary)


def _not_found(incident_id: int) -> NotFound:
    return NotFound(f"incident {incident_id} does not exist")


def fetch_page(conn: psycopg.Connection, query: IncidentQuery, cursor_key: bytes = cursors.DEFAULT_KEY) -> IncidentPage:
    statement = page_statement(query)
    rows = conn.execute(statement.query, statement.params).fetchall()
    return assemble_page(query, rows, cursor_key)


def fetch_incident(conn: psycopg.Connection, incident_id: int) -> str:
    statement = detail_statement(incident_id)
    row = conn.execute(statement.query, statement.params).fetchone()
    if row is None:
        raise _not_found(incident_id)
    document: str = row[0]
    return document


def stream_incidents(conn: psycopg.Connection, query: IncidentQuery) -> Iterator[str]:
    """Every matching row through a server-side cursor: memory stays flat whatever the size."""
    statement = export_statement(query)
    with conn.transaction(), conn.cursor(name=f"kds_export_{uuid.uuid4().hex[:8]}") as cur:
        cur.itersize = EXPORT_BATCH_ROWS
        cur.execute(statement.query, statement.params)
        for (document,) in cur:
            yield document


async def afetch_page(
    conn: psycopg.AsyncConnection,
    query: IncidentQuery,
    cursor_key: bytes = cursors.DEFAULT_KEY,
    *,
    setup: sql.SQL | None = None,
) -> EncodedPage:
    """The page in one row, read in binary format: the documents arrive as the bytes the response sends.

    ``setup``: the per-transaction settings behind a pooler (``ConnectionPolicy.transaction_setup``).
    """
    statement = page_document_statement(query)
    # Prepared from the first use (psycopg's default waits for 5), also behind a transaction-mode pooler:
    # planning this statement over every partition costs more than running it (kds.db.prepared).
    cur = conn.cursor()
    _raw_text(cur)
    await aexecute(cur, statement.query, statement.params, setup=setup, binary=True)
    row = await cur.fetchone()
    assert row is not None, "the page statement always returns one row"
    return assemble_encoded_page(query, row, cursor_key)


async def afetch_incident(conn: psycopg.AsyncConnection, incident_id: int, *, setup: sql.SQL | None = None) -> bytes:
    statement = detail_statement(incident_id)
    cur = conn.cursor()
    _raw_text(cur)
    await aexecute(cur, statement.query, statement.params, setup=setup)
    row = await cur.fetchone()
    if row is None:
        raise _not_found(incident_id)
    document: bytes = row[0]
    return document


async def astream_incidents(conn: psycopg.AsyncConnection, query: IncidentQuery) -> AsyncIterator[bytes]:
    statement = export_statement(query)
    async with conn.transaction(), conn.cursor(name=f"kds_export_{uuid.uuid4().hex[:8]}") as cur:
        _raw_text(cur)
        cur.itersize = EXPORT_BATCH_ROWS
        await cur.execute(statement.query, statement.params)
        async for (document,) in cur:
            yield document
