"""The audit store on a real PostgreSQL: exactly one row per notification_id, committed before returning.

The module shares one database; each test starts from an empty table (ids from 1) without triggers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from kds.audit import record_notification, store_notification, validate_notification
from kds.audit.models import NotificationRequest
from kds.errors import Conflict, ServiceUnavailable
from tests.pg import PgCluster

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
VALID: dict[str, Any] = {
    "remediation_id": "rem-1",
    "notification_id": "notif-1",
    "recipient": "oncall@example.com",
    "channel": "EMAIL",
    "message_summary": "Pod web-1 restarted",
    "status": "SENT",
    "sent_at": "2026-11-27T13:59:00.5+02:00",
}


@pytest.fixture(scope="module")
def module_database(pg_cluster: PgCluster) -> Iterator[str]:
    with pg_cluster.fresh_database() as url:
        yield url


@pytest.fixture
def database_url(module_database: str) -> str:
    """Overrides the per-test database of conftest (a fresh clone per test costs more than the test)."""
    with psycopg.connect(module_database, autocommit=True) as conn:
        conn.execute("DROP TRIGGER IF EXISTS fail_first ON notification_audit")
        conn.execute("DROP FUNCTION IF EXISTS fail_first()")
        conn.execute("DROP SEQUENCE IF EXISTS insert_attempts")
        conn.execute("TRUNCATE notification_audit RESTART IDENTITY")
    return module_database


def request(**changes: Any) -> NotificationRequest:
    return validate_notification({**VALID, **changes}, now=NOW)


async def store(url: str, notification: NotificationRequest, **connect: Any) -> tuple[dict[str, Any], bool]:
    async with await psycopg.AsyncConnection.connect(url, **connect) as conn:
        return await record_notification(conn, notification)


def rows(db: psycopg.Connection) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT notification_id, remediation_id, recipient, channel, message_summary, status, sent_at,"
        " delivery_status, error_message, escalation_level FROM notification_audit ORDER BY id"
    ).fetchall()


def test_new_record_is_committed_with_lower_case_enumerations(database_url: str, db: psycopg.Connection) -> None:
    before = db.execute("SELECT now()").fetchone()[0]
    record, created = asyncio.run(store(database_url, request(), autocommit=True))
    assert created is True
    created_at = record.pop("created_at")
    assert created_at == record.pop("updated_at")
    assert datetime.fromisoformat(created_at) >= before
    assert record == {
        "id": 1,
        "remediation_id": "rem-1",
        "notification_id": "notif-1",
        "recipient": "oncall@example.com",
        "channel": "email",
        "message_summary": "Pod web-1 restarted",
        "status": "sent",
        "sent_at": "2026-11-27T11:59:00.500000Z",
        "delivery_status": None,
        "error_message": None,
        "escalation_level": 0,
    }
    # visible from another session: committed
    assert rows(db) == [
        (
            "notif-1",
            "rem-1",
            "oncall@example.com",
            "email",
            "Pod web-1 restarted",
            "sent",
            datetime(2026, 11, 27, 11, 59, 0, 500000, tzinfo=UTC),
            None,
            None,
            0,
        )
    ]


@pytest.mark.parametrize("autocommit", [True, False])
def test_commits_on_either_kind_of_connection(database_url: str, db: psycopg.Connection, autocommit: bool) -> None:
    record, created = asyncio.run(store(database_url, request(), autocommit=autocommit))
    assert created is True
    assert db.execute("SELECT id FROM notification_audit").fetchall() == [(record["id"],)]


def test_identical_retry_returns_the_stored_record(database_url: str, db: psycopg.Connection) -> None:
    first, created = asyncio.run(store(database_url, request(), autocommit=True))
    assert created is True
    # the same notification, spelled differently: enumerations' case, the offset of sent_at, explicit defaults
    same = request(channel="Email", status="sent", sent_at="2026-11-27T11:59:00.500Z", escalation_level=0)
    again, created = asyncio.run(store(database_url, same, autocommit=True))
    assert (again, created) == (first, False)
    assert len(rows(db)) == 1


CONFLICTING = [
    ({"status": "failed"}, "status"),
    ({"sent_at": "2026-11-27T11:59:00.501Z"}, "sent_at"),
    ({"escalation_level": 1, "error_message": ""}, "error_message, escalation_level"),
    ({"remediation_id": "rem-2", "recipient": "Oncall@example.com"}, "remediation_id, recipient"),
    ({"message_summary": "Pod web-1 restarted "}, "message_summary"),
]


def test_conflicting_retry_is_refused(database_url: str, db: psycopg.Connection) -> None:
    asyncio.run(store(database_url, request(), autocommit=True))
    before = rows(db)
    for change, fields in CONFLICTING:
        with pytest.raises(Conflict) as caught:
            asyncio.run(store(database_url, request(**change), autocommit=True))
        assert caught.value.slug == "conflict"
        assert caught.value.detail == (
            f"notification_id 'notif-1' is already recorded with different content ({fields} differ);"
            " resend the original content, or use a new notification_id"
        )
    assert rows(db) == before


def test_legacy_upper_case_row_counts_as_the_same(database_url: str, db: psycopg.Connection) -> None:
    db.execute(
        "INSERT INTO notification_audit (remediation_id, notification_id, recipient, channel, message_summary,"
        " status, sent_at) VALUES ('rem-1', 'notif-1', 'oncall@example.com', 'EMAIL', 'Pod web-1 restarted', 'sent',"
        " '2026-11-27T11:59:00.5Z')"
    )
    record, created = asyncio.run(store(database_url, request(), autocommit=True))
    assert (created, record["channel"], record["escalation_level"]) == (False, "EMAIL", 0)


def test_different_ids_make_different_rows(database_url: str, db: psycopg.Connection) -> None:
    ids = [asyncio.run(store(database_url, request(notification_id=f"n-{i}")))[0]["id"] for i in range(3)]
    assert ids == [1, 2, 3]
    assert [row[0] for row in rows(db)] == ["n-0", "n-1", "n-2"]


def test_unicode_round_trip(database_url: str, db: psycopg.Connection) -> None:
    notification = request(
        notification_id="😀" * 63 + "abc", recipient="中" * 85, message_summary="تنبيه 警报 การแจ้งเตือน 🚨"
    )
    record, _ = asyncio.run(store(database_url, notification))
    assert (record["notification_id"], record["recipient"]) == ("😀" * 63 + "abc", "中" * 85)
    assert rows(db)[0][4] == "تنبيه 警报 การแจ้งเตือน 🚨"


def test_fifty_concurrent_identical_inserts_make_one_row(database_url: str, db: psycopg.Connection) -> None:
    async def race() -> list[tuple[dict[str, Any], bool]]:
        connections = [await psycopg.AsyncConnection.connect(database_url, autocommit=True) for _ in range(50)]
        try:
            return await asyncio.gather(*(record_notification(conn, request()) for conn in connections))
        finally:
            for conn in connections:
                await conn.close()

    results = asyncio.run(race())
    assert sorted(created for _, created in results) == [False] * 49 + [True]
    assert len({tuple(record.items()) for record, _ in results}) == 1
    assert db.execute("SELECT id FROM notification_audit").fetchall() == [(results[0][0]["id"],)]


def test_pool_target(database_url: str, db: psycopg.Connection) -> None:
    async def via_pool() -> tuple[tuple[dict[str, Any], bool], tuple[dict[str, Any], bool]]:
        async with AsyncConnectionPool(database_url, min_size=1, max_size=2, kwargs={"autocommit": True}) as pool:
            return await record_notification(pool, request()), await record_notification(pool, request())

    (first, created_first), (second, created_second) = asyncio.run(via_pool())
    assert (created_first, created_second, first) == (True, False, second)


def test_pool_exhausted_is_service_unavailable(database_url: str) -> None:
    async def exhausted() -> None:
        pool = AsyncConnectionPool(database_url, min_size=1, max_size=1, timeout=0.2)
        async with pool, pool.connection():
            await record_notification(pool, request())

    with pytest.raises(ServiceUnavailable) as caught:
        asyncio.run(exhausted())
    assert caught.value.detail == "no database connection became available in time; retry shortly"


def test_connection_inside_a_transaction_is_refused(database_url: str, db: psycopg.Connection) -> None:
    async def inside() -> None:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            await conn.execute("SELECT 1")
            await record_notification(conn, request())

    with pytest.raises(ValueError, match="not inside a transaction"):
        asyncio.run(inside())
    assert rows(db) == []


def test_lost_connection_is_service_unavailable(database_url: str, db: psycopg.Connection) -> None:
    async def lost() -> None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            db.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
            await record_notification(conn, request())

    with pytest.raises(ServiceUnavailable) as caught:
        asyncio.run(lost())
    assert caught.value.detail == "the database is unreachable"
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
    assert rows(db) == []


def test_store_notification_leaves_driver_errors_untranslated(database_url: str, db: psycopg.Connection) -> None:
    """For the server's pool wrapper, which recognises a broken connection by the driver's exception."""

    async def lost() -> None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            db.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
            await store_notification(conn, request())

    with pytest.raises(psycopg.OperationalError):
        asyncio.run(lost())
    assert rows(db) == []


def _fail_inserts(db: psycopg.Connection, sqlstate: str, times: int) -> None:
    """A trigger that raises ``sqlstate`` on the first ``times`` inserts (a sequence survives rollbacks)."""
    db.execute("CREATE SEQUENCE insert_attempts")
    db.execute(
        f"""CREATE FUNCTION fail_first() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF nextval('insert_attempts') <= {times} THEN
            RAISE EXCEPTION 'injected' USING ERRCODE = '{sqlstate}';
          END IF;
          RETURN NEW;
        END $$"""
    )
    db.execute(
        "CREATE TRIGGER fail_first BEFORE INSERT ON notification_audit FOR EACH ROW EXECUTE FUNCTION fail_first()"
    )


def attempts(db: psycopg.Connection) -> int:
    return db.execute("SELECT last_value FROM insert_attempts").fetchone()[0]


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_transient_failures_are_retried(database_url: str, db: psycopg.Connection, sqlstate: str) -> None:
    _fail_inserts(db, sqlstate, times=3)
    record, created = asyncio.run(store(database_url, request(), autocommit=True))
    assert (created, record["id"], attempts(db)) == (True, 4, 4)  # ids 1-3 went to the failed attempts
    assert len(rows(db)) == 1


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_persistent_transient_failures_become_conflict(
    database_url: str, db: psycopg.Connection, sqlstate: str
) -> None:
    _fail_inserts(db, sqlstate, times=1000)
    with pytest.raises(Conflict) as caught:
        asyncio.run(store(database_url, request(), autocommit=True))
    assert caught.value.detail == "the write kept conflicting with concurrent transactions; retry the same request"
    assert attempts(db) == 4
    assert rows(db) == []


def test_other_database_errors_are_not_retried_nor_leaked(database_url: str, db: psycopg.Connection) -> None:
    _fail_inserts(db, "22012", times=1000)  # division_by_zero
    with pytest.raises(Exception) as caught:
        asyncio.run(store(database_url, request(), autocommit=True))
    assert (type(caught.value).__name__, caught.value.slug) == ("KdsError", "internal-error")
    assert "injected" not in str(caught.value)
    assert attempts(db) == 1


# --- rows an existing deployment already holds (written by the replaced service or an older kds) ---

LEGACY_INSERT = (
    "INSERT INTO notification_audit (remediation_id, notification_id, recipient, channel, message_summary,"
    " status, sent_at, created_at, updated_at) VALUES ('rem-1', 'notif-1', 'oncall@example.com', 'email',"
    " 'Pod web-1 restarted', 'sent', %s, %s, %s)"
)


@pytest.mark.parametrize(
    ("stored", "text"),
    [
        ("0001-01-01 00:00:00.000005+00", "0001-01-01T00:00:00.000005Z"),
        ("0999-06-01 12:00:00+00", "0999-06-01T12:00:00.000000Z"),
        ("1969-12-31 23:59:59+00", "1969-12-31T23:59:59.000000Z"),
        ("1970-01-01 00:00:00+00", "1970-01-01T00:00:00.000000Z"),
        ("9999-12-31 23:59:59.999999+00", "9999-12-31T23:59:59.999999Z"),
        ("0001-01-01 00:00:00+01", "0000-12-31T23:00:00.000000Z"),  # year 0 in UTC (1 BC to PostgreSQL)
    ],
)
def test_retry_of_a_stored_record_formats_its_timestamps_with_four_digit_years(
    database_url: str, db: psycopg.Connection, stored: str, text: str
) -> None:
    """Before the formatting moved into SQL: '1-01-01T...' for year 1, and a DataError for year 0."""
    db.execute(LEGACY_INSERT, ("2026-11-27T11:59:00.5Z", stored, stored))
    record, created = asyncio.run(store(database_url, request(), autocommit=True))
    assert (created, record["sent_at"], record["created_at"], record["updated_at"]) == (
        False,
        "2026-11-27T11:59:00.500000Z",
        text,
        text,
    )


def test_conflict_with_a_stored_year_zero_sent_at_is_a_conflict_not_an_error(
    database_url: str, db: psycopg.Connection
) -> None:
    """The replaced service stored Go's zero time; comparing against it must not fail (it cannot match)."""
    db.execute(LEGACY_INSERT, ("0001-01-01 00:00:00+01", "2026-11-27T12:00:00Z", "2026-11-27T12:00:00Z"))
    with pytest.raises(Conflict) as caught:
        asyncio.run(store(database_url, request(), autocommit=True))
    assert "(sent_at differ)" in caught.value.detail
    assert db.execute("SELECT count(*) FROM notification_audit").fetchone() == (1,)
