"""Store one audit record exactly once, and tell a new record from a retried one.

The unique constraint on ``notification_id`` decides, never a read-then-write race:
``INSERT ... ON CONFLICT (notification_id) DO NOTHING RETURNING ...`` either inserts the row (a new
record) or, when the id is taken (also by a concurrent transaction, which the insert waits for),
returns nothing; the stored row is then read back and compared with the request after
normalisation. The function returns only after the transaction has committed, so a caller never
acknowledges a record that is not durable.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from psycopg import sql

from kds.audit.models import FIELDS, RECORD_FIELDS, NotificationRequest
from kds.db.connection import pool_exhausted, translate_error
from kds.errors import Conflict
from kds.timefmt import rfc3339, sql_rfc3339

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import AsyncConnectionPool

# (the stored record as JSON-ready values, whether this call inserted it)
Outcome = tuple[dict[str, Any], bool]

TABLE = "notification_audit"
# Identifier allow-lists, owned by the audit models: the columns kds writes, and the record it returns.
WRITE_COLUMNS = FIELDS
RECORD_COLUMNS = RECORD_FIELDS
TIMESTAMP_COLUMNS = frozenset({"sent_at", "created_at", "updated_at"})
CASE_INSENSITIVE = frozenset({"channel", "status"})

# A single-row insert rarely meets these; when it does, a short jittered wait usually suffices.
MAX_ATTEMPTS = 4
RETRY_BASE_DELAY = 0.01


def _record_columns() -> sql.Composed:
    """The record as the API returns it; timestamps formatted by PostgreSQL (kds.timefmt), so the
    response is complete before the commit and no stored value can make formatting fail after it."""
    return sql.SQL(", ").join(
        sql_rfc3339(sql.Identifier(name)) if name in TIMESTAMP_COLUMNS else sql.Identifier(name)
        for name in RECORD_COLUMNS
    )


INSERT = sql.SQL(
    "INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ({key}) DO NOTHING RETURNING {record}"
).format(
    table=sql.Identifier(TABLE),
    columns=sql.SQL(", ").join(sql.Identifier(name) for name in WRITE_COLUMNS),
    values=sql.SQL(", ").join(sql.Placeholder(name) for name in WRITE_COLUMNS),
    key=sql.Identifier("notification_id"),
    record=_record_columns(),
)
SELECT = sql.SQL("SELECT {record} FROM {table} WHERE {key} = %(notification_id)s").format(
    record=_record_columns(),
    table=sql.Identifier(TABLE),
    key=sql.Identifier("notification_id"),
)


def _record(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(RECORD_COLUMNS, row, strict=True))


def differences(stored: dict[str, Any], notification: NotificationRequest) -> list[str]:
    """The request fields whose normalised value differs from the stored record."""
    different = []
    for name in WRITE_COLUMNS:
        old, new = stored[name], getattr(notification, name)
        if name in CASE_INSENSITIVE and isinstance(old, str):
            old = old.lower()
        if name in TIMESTAMP_COLUMNS:
            new = rfc3339(new)  # the same instant formats to the same text
        if old != new:
            different.append(name)
    return different


async def _attempt(
    conn: psycopg.AsyncConnection, notification: NotificationRequest, setup: sql.SQL | None
) -> Outcome | None:
    params = notification.model_dump(include=set(WRITE_COLUMNS))
    async with conn.transaction():
        if setup is not None:  # behind a pooler: the statement timeout, for this transaction only
            await conn.execute(setup)
        cur = await conn.execute(INSERT, params)
        row = await cur.fetchone()
        if row is not None:
            return _record(row), True
        # READ COMMITTED: this new statement sees the row that won the conflict.
        cur = await conn.execute(SELECT, {"notification_id": notification.notification_id})
        row = await cur.fetchone()
        if row is None:  # the conflicting row vanished (deleted meanwhile): try again
            return None
        stored = _record(row)
        different = differences(stored, notification)
        if different:
            raise Conflict(
                f"notification_id {notification.notification_id!r} is already recorded with different content"
                f" ({', '.join(different)} differ); resend the original content, or use a new notification_id"
            )
    return stored, False


def _transient(exc: BaseException) -> bool:
    from psycopg import errors as pg_errors

    return isinstance(exc, pg_errors.SerializationFailure | pg_errors.DeadlockDetected)


async def store_notification(
    conn: psycopg.AsyncConnection, notification: NotificationRequest, *, setup: sql.SQL | None = None
) -> Outcome:
    """:func:`record_notification` on one connection, with driver exceptions left untranslated.

    For callers that own the connection's bookkeeping (the server's pool wrapper must see a broken
    connection's own exception); they map driver errors with :func:`kds.db.connection.translate_error`.
    Transient serialization failures and deadlocks are retried here, then become ``Conflict``.
    ``setup`` starts each transaction (the per-transaction settings behind a pooler, docs/scaling.md).
    """
    import psycopg

    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError("record_notification needs a connection that is not inside a transaction")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            result = await _attempt(conn, notification, setup)
        except psycopg.Error as exc:
            if not _transient(exc):
                raise
            if attempt == MAX_ATTEMPTS:
                raise Conflict(
                    "the write kept conflicting with concurrent transactions; retry the same request"
                ) from exc
        else:
            if result is not None:
                return result
        await asyncio.sleep(RETRY_BASE_DELAY * attempt * (1 + random.random()))
    raise Conflict("the record changed while it was being written; retry the same request")


async def record_notification(
    target: psycopg.AsyncConnection | AsyncConnectionPool, notification: NotificationRequest
) -> Outcome:
    """Store ``notification`` once; return ``(record, created)``, after the commit.

    ``created`` is True when this call inserted the row (201), False when the same notification was
    already stored (a safe retry, 200). A different notification under the same id raises
    :class:`kds.errors.Conflict`; driver failures become kds errors (``ServiceUnavailable`` when
    the database is unreachable). ``target`` is an async connection outside any transaction
    (autocommit or not) or an async pool.
    """
    import psycopg
    from psycopg_pool import AsyncConnectionPool, PoolTimeout

    try:
        if not isinstance(target, AsyncConnectionPool):
            return await store_notification(target, notification)
        async with target.connection() as conn:
            return await store_notification(conn, notification)
    except PoolTimeout as exc:
        raise pool_exhausted() from exc
    except psycopg.Error as exc:
        raise translate_error(exc) from exc
