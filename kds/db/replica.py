"""How far a read database (a streaming replica) is behind its primary (docs/scaling.md#read-replicas).

The lag is measured on the read database itself, in seconds:

- not in recovery (a primary, or a pooler in front of one): 0;
- everything received is replayed (``pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()``): 0. The
  replay timestamp alone is not enough: on an idle primary nothing new is committed, so
  ``now() - pg_last_xact_replay_timestamp()`` grows although the replica has everything;
- otherwise: the age of the last replayed transaction, ``now() - pg_last_xact_replay_timestamp()``
  (0 before the first one). This covers a replica whose replay is slow or paused while WAL arrives; a
  replica that no longer receives anything (its primary is unreachable) reports 0 through this measure,
  so the streaming state belongs to the primary's ``pg_stat_replication`` monitoring.

One statement, no session state: it runs the same through a transaction-mode pooler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

REPLICA_LAG_SQL = """\
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE GREATEST(COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0), 0)
END::float8 AS lag_seconds, pg_is_in_recovery() AS in_recovery"""


def replica_lag(conn: psycopg.Connection) -> tuple[float, bool]:
    """(lag in seconds, whether the database is a replica in recovery) of a synchronous connection."""
    row = conn.execute(REPLICA_LAG_SQL).fetchone()
    assert row is not None
    return float(row[0]), bool(row[1])


async def areplica_lag(conn: psycopg.AsyncConnection) -> float:
    """The lag in seconds, over an async connection (the server's periodic gauge)."""
    cursor = await conn.execute(REPLICA_LAG_SQL)
    row = await cursor.fetchone()
    assert row is not None
    return float(row[0])
