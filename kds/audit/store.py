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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from psycopg import sql

from kds.audit.models import NotificationRequest
from kds.db.connection import translate_error
from kds.errors import Conflict, ServiceUnavailable

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import AsyncConnectionPool

# (the stored record as JSON-ready values, whether this call inserted it)
Outcome = tuple[dict[str, Any], bool]

TABLE = "notification_audit"
# Identifier allow-lists: the columns kds writes, and the record it returns.
WRITE_COLUMNS: tuple[str, ...] = (
    "remediation_id",
    "notification_id",
    "recipient",
    "channel",
    "message_summary",
    "status",
    "sent_at",
    "delivery_status",
    "error_message",
    "escalation_level",
)
RECORD_COLUMNS: tuple[str, ...] = ("id", *WRITE_COLUMNS, "created_at", "updated_at")
TIMESTAMP_COLUMNS = frozenset({"sent_at", "created_at", "updated_at"})
CASE_INSENSITIVE = frozenset({"channel", "status"})

# A single-row insert rarely meets these; when it does, a short jittered wait usually suffices.
MAX_ATTEMPTS = 4
RETRY_BASE_DELAY = 0.01


def _columns(names: tuple[str, ...]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(name) for name in names)


INSERT = sql.SQL(
    "INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ({key}) DO NOTHING RETURNING {record}"
).format(
    table=sql.Identifier(TABLE),
    columns=_columns(WRITE_COLUMNS),
    values=sql.SQL(", ").join(sql.Placeholder(name) for name in WRITE_COLUMNS),
    key=sql.Identifier("notification_id"),
    record=_columns(RECORD_COLUMNS),
)
SELECT = sql.SQL("SELECT {record} FROM {table} WHERE {key} = %(notification_id)s").format(
    record=_columns(RECORD_COLUMNS),
    table=sql.Identifier(TABLE),
    key=sql.Identifier("notification_id"),
)


def rfc3339(value: datetime | None) -> str | None:
    """A timestamp as RFC 3339 text in UTC, microsecond precision, ``Z`` suffix (as incidents show them)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        name: rfc3339(value) if name in TIMESTAMP_COLUMNS else value
        for name, value in zip(RECORD_COLUMNS, row, strict=True)
    }


def differences(stored: tuple[Any, ...], notification: NotificationRequest) -> list[str]:
    """The request fields whose normalised value differs from the stored row."""
    values = dict(zip(RECORD_COLUMNS, stored, strict=True))
    different = []
    for name in WRITE_COLUMNS:
        old, new = values[name], getattr(notification, name)
        if name in CASE_INSENSITIVE and isinstance(old, str):
            old = old.lower()
        if old != new:  # aware datetimes compare as instants
            different.append(name)
    return different


async def _attempt(
    conn: psycopg.AsyncConnection, notification: NotificationRequest, setup: sql.Composed | None
) -> Outcome | None:
    params = notification.model_dump(include=set(WRITE_COLUMNS))
    async with conn.transaction():
        if setup is not None:  # behind a pooler: the statement timeout, for this transaction only
            await conn.execute(setup)
        cur = await conn.execute(INSERT, params)
        row = await cur.fetchone()
        if row is not None:
            created = True
        else:
            # READ COMMITTED: this new statement sees the row that won the conflict.
            cur = await conn.execute(SELECT, {"notification_id": notification.notification_id})
            row = await cur.fetchone()
            if row is None:  # the conflicting row vanished (deleted meanwhile): try again
                return None
            created = False
            different = differences(row, notification)
            if different:
                raise Conflict(
                    f"notification_id {notification.notification_id!r} is already recorded with different content"
                    f" ({', '.join(different)} differ); resend the original content, or use a new notification_id"
                )
    return _record(row), created


def _transient(exc: BaseException) -> bool:
    from psycopg import errors as pg_errors

    return isinstance(exc, pg_errors.SerializationFailure | pg_errors.DeadlockDetected)


async def store_notification(
    conn: psycopg.AsyncConnection, notification: NotificationRequest, *, setup: sql.Composed | None = None
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
        raise ServiceUnavailable("no database connection became available in time; retry shortly") from exc
    except psycopg.Error as exc:
        raise translate_error(exc) from exc
