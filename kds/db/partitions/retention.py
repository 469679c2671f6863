"""``kds db partitions drop --older-than 13mo``: detach and drop whole partitions past retention.

A partition is past retention when its whole range ends at or before ``now() - retention`` (interval
arithmetic by the server, so "13mo" means calendar months). DEFAULT is never a candidate, nor a
partition without an upper bound, nor one that still holds a moment inside the retention.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from kds.db.partitions.catalog import Partition, list_partitions, parent_schema
from kds.db.partitions.locking import LockPolicy, locked_transaction
from kds.db.schema import INCIDENT_TABLE
from kds.errors import InvalidInput

if TYPE_CHECKING:
    import psycopg

_RETENTION = re.compile(r"^\s*(\d+)\s*(mo|d)\s*$", re.ASCII)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long incidents are kept: whole calendar months or days."""

    months: int = 0
    days: int = 0

    def __str__(self) -> str:
        return f"{self.months}mo" if self.months else f"{self.days}d"


def parse_retention(text: str, *, option: str = "--older-than") -> Retention:
    """``13mo`` (calendar months) or ``400d`` (days), at least one; else ``invalid-parameter``."""
    match = _RETENTION.match(text)
    if match is None or int(match.group(1)) < 1:
        raise InvalidInput.single(
            "invalid-parameter",
            option,
            f"{option} must be a positive number of months or days such as 13mo or 400d, got {text!r}",
        )
    amount = int(match.group(1))
    return Retention(months=amount) if match.group(2) == "mo" else Retention(days=amount)


def cutoff(conn: psycopg.Connection, retention: Retention) -> datetime:
    row = conn.execute(
        "SELECT now() - make_interval(months => %s, days => %s)", (retention.months, retention.days)
    ).fetchone()
    assert row is not None
    limit: datetime = row[0]
    return limit


def past_retention(partitions: list[Partition], limit: datetime) -> list[Partition]:
    """The range partitions whose every row is older than ``limit``."""
    return [p for p in partitions if not p.is_default and p.high is not None and p.high <= limit]


def expired(conn: psycopg.Connection, retention: Retention, table: str = INCIDENT_TABLE) -> list[Partition]:
    return past_retention(list_partitions(conn, table), cutoff(conn, retention))


def drop(
    conn: psycopg.Connection,
    retention: Retention,
    *,
    policy: LockPolicy | None = None,
    table: str = INCIDENT_TABLE,
) -> list[Partition]:
    """Detach, then drop, each partition past ``retention``; one short transaction per partition."""
    policy = policy or LockPolicy()
    conn.autocommit = True
    dropped: list[Partition] = []
    for candidate in expired(conn, retention, table):
        work = functools.partial(_detach_and_drop, table=table, retention=retention, candidate=candidate)
        if locked_transaction(conn, policy, work, what=f"drop partition {candidate.name}"):
            dropped.append(candidate)
    return dropped


def _detach_and_drop(conn: psycopg.Connection, *, table: str, retention: Retention, candidate: Partition) -> bool:
    from psycopg import sql

    # Look again under the lock: another run may have dropped it, or its bounds may differ now.
    still = {(p.schema, p.name, p.low, p.high) for p in expired(conn, retention, table)}
    if (candidate.schema, candidate.name, candidate.low, candidate.high) not in still:
        return False
    schema = parent_schema(conn, table)
    partition = sql.Identifier(candidate.schema, candidate.name)
    conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(sql.Identifier(schema, table), partition))
    conn.execute(sql.SQL("DROP TABLE {}").format(partition))
    return True
