"""What the partitions of the incident table are, read from ``pg_catalog`` (never from their names).

An existing deployment may name its partitions anything; the range of each one comes from
``pg_get_expr(relpartbound)``, cast back to timestamps by the server itself in the same statement. Months are
calendar months in UTC, as the base migration creates them (see docs/partitions.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from kds.db.schema import INCIDENT_TABLE
from kds.errors import NotFound

if TYPE_CHECKING:
    import psycopg

# The bound text is 'FOR VALUES FROM (<low>) TO (<high>)' or 'DEFAULT'; a bound is a quoted literal,
# MINVALUE or MAXVALUE. The server casts the literals back in the same statement (same DateStyle, TimeZone).
_PARTITIONS_SQL = r"""
WITH bounds AS (
    SELECT n.nspname::text AS schema, c.relname::text AS name, c.reltuples,
           pg_get_expr(c.relpartbound, c.oid) AS bound
      FROM pg_class p
      JOIN pg_namespace pn ON pn.oid = p.relnamespace
      JOIN pg_inherits i ON i.inhparent = p.oid
      JOIN pg_class c ON c.oid = i.inhrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE pn.nspname = current_schema() AND p.relname = %(table)s
)
SELECT b.schema, b.name, b.bound = 'DEFAULT' AS is_default, m.v[1]::timestamptz AS low, m.v[2]::timestamptz AS high,
       CASE WHEN b.reltuples < 0 THEN NULL ELSE b.reltuples::bigint END
  FROM bounds b
  LEFT JOIN LATERAL (
      SELECT regexp_match(b.bound, '^FOR VALUES FROM \((?:''(.*)''|MINVALUE)\) TO \((?:''(.*)''|MAXVALUE)\)$') AS v
  ) m ON true
 ORDER BY is_default, low NULLS FIRST, b.name
"""

_PARENT_SQL = """
SELECT n.nspname::text, c.relkind = 'p',
       pt.partstrat = 'r' AND pt.partnatts = 1 AND a.attname IS NOT DISTINCT FROM %(key)s
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = pt.partattrs[0]
 WHERE n.nspname = current_schema() AND c.relname = %(table)s
"""

PARTITION_KEY = "action_timestamp"


@dataclass(frozen=True, slots=True)
class Parent:
    """The incident table: its schema and how it is partitioned."""

    schema: str
    partitioned: bool
    by_range: bool  # RANGE on action_timestamp alone: the layout kds reads and maintains


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition: its range ``[low, high)`` (None: MINVALUE / MAXVALUE) or the DEFAULT one."""

    schema: str
    name: str
    is_default: bool
    low: datetime | None
    high: datetime | None
    rows_estimate: int | None  # None until the table was first analysed

    def overlaps(self, low: datetime, high: datetime) -> bool:
        if self.is_default:
            return False
        return (self.low is None or self.low < high) and (self.high is None or low < self.high)

    def as_json(self) -> dict[str, object]:
        return {
            "schema": self.schema,
            "name": self.name,
            "default": self.is_default,
            "from": iso_utc(self.low),
            "to": iso_utc(self.high),
            "rows_estimate": self.rows_estimate,
        }

    def range_text(self) -> str:
        if self.is_default:
            return "DEFAULT"
        low = iso_utc(self.low) or "MINVALUE"
        high = iso_utc(self.high) or "MAXVALUE"
        return f"[{low}, {high})"


def iso_utc(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class NotPartitioned(NotFound):
    """The incident table is missing or not partitioned (nothing to maintain)."""


def describe_parent(conn: psycopg.Connection, table: str = INCIDENT_TABLE) -> Parent | None:
    """How ``table`` is partitioned; None when it does not exist."""
    row = conn.execute(_PARENT_SQL, {"table": table, "key": PARTITION_KEY}).fetchone()
    return None if row is None else Parent(row[0], row[1], bool(row[2]))


def parent_schema(conn: psycopg.Connection, table: str = INCIDENT_TABLE) -> str:
    """The schema of the incident table, range-partitioned on its timestamp; :class:`NotPartitioned` otherwise."""
    parent = describe_parent(conn, table)
    if parent is None:
        raise NotPartitioned(f"{table} does not exist (run kds db migrate)")
    if not parent.partitioned:
        raise NotPartitioned(f"{table} is not a partitioned table")
    if not parent.by_range:
        raise NotPartitioned(f"{table} is not range-partitioned on {PARTITION_KEY} alone")
    return parent.schema


def list_partitions(conn: psycopg.Connection, table: str = INCIDENT_TABLE) -> list[Partition]:
    """Every partition of ``table``: ranges in start order, then DEFAULT."""
    parent_schema(conn, table)
    rows = conn.execute(_PARTITIONS_SQL, {"table": table}).fetchall()
    return [Partition(schema, name, is_default, low, high, rows) for schema, name, is_default, low, high, rows in rows]


def month_start(moment: datetime, months: int = 0) -> datetime:
    """The first instant (UTC) of the calendar month ``months`` after the one holding ``moment``."""
    moment = moment.astimezone(UTC)
    year, month = divmod(moment.month - 1 + months, 12)
    return datetime(moment.year + year, month + 1, 1, tzinfo=UTC)


def owners(partitions: list[Partition], low: datetime, high: datetime) -> list[str]:
    """The names of the range partitions that take rows of ``[low, high)``."""
    return sorted(p.name for p in partitions if p.overlaps(low, high))


def uncovered(partitions: list[Partition], low: datetime, high: datetime) -> list[tuple[datetime, datetime]]:
    """The parts of ``[low, high)`` that no range partition covers (DEFAULT does not count)."""
    gaps: list[tuple[datetime, datetime]] = []
    cursor = low
    for part in sorted((p for p in partitions if p.overlaps(low, high)), key=lambda p: p.low or low):
        start = part.low if part.low is not None and part.low > low else low
        if start > cursor:
            gaps.append((cursor, start))
        end = part.high if part.high is not None and part.high < high else high
        cursor = max(cursor, end)
    if cursor < high:
        gaps.append((cursor, high))
    return gaps
