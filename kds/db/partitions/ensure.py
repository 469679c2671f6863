"""``kds db partitions ensure``: create every missing monthly partition, moving rows out of DEFAULT.

A month is created as a standalone table shaped like the parent (``LIKE ... INCLUDING ALL``: columns,
defaults, checks, indexes), with a CHECK constraint equal to its range, then attached. Attaching takes
only SHARE UPDATE EXCLUSIVE on the parent (reads and writes of other months go on) and ACCESS
EXCLUSIVE on the DEFAULT partition while the server checks that DEFAULT holds no row of the range.

When DEFAULT already holds rows of the month, the same transaction first copies them into the new
table (blocking nobody), then takes SHARE on DEFAULT (readers go on, writers into DEFAULT wait),
catches up with what writers changed meanwhile and deletes the rows from DEFAULT; the attach then
finds DEFAULT clean. Every row ends up exactly once, in the new partition, or the transaction rolls
back and nothing changed. What it locks and how long it takes: docs/partitions.md.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from kds.db.partitions.catalog import Partition, list_partitions, month_start, parent_schema, uncovered
from kds.db.partitions.locking import LockPolicy, locked_transaction
from kds.db.schema import INCIDENT_TABLE

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

PARTITION_KEY = "action_timestamp"
DEFAULT_AHEAD = 3
_MOVING = "kds_partition_moving_rows"  # a temporary table, dropped at commit

_COLUMNS_SQL = """
SELECT a.attname::text
  FROM pg_attribute a
 WHERE a.attrelid = to_regclass(format('%%I.%%I', %s::text, %s::text)) AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attgenerated = ''
 ORDER BY a.attnum
"""


@dataclass(frozen=True, slots=True)
class Created:
    """A partition ``ensure`` created, and how many rows it moved out of DEFAULT."""

    name: str
    low: datetime
    high: datetime
    moved_rows: int


def months_to_cover(now: datetime, ahead: int) -> list[tuple[datetime, datetime]]:
    """The current month (UTC) and ``ahead`` more, as ``[start, end)`` pairs."""
    return [(month_start(now, i), month_start(now, i + 1)) for i in range(ahead + 1)]


def ensure(
    conn: psycopg.Connection,
    *,
    ahead: int = DEFAULT_AHEAD,
    policy: LockPolicy | None = None,
    table: str = INCIDENT_TABLE,
) -> list[Created]:
    """Create what is missing from the current month to ``ahead`` months ahead (idempotent)."""
    policy = policy or LockPolicy()
    conn.autocommit = True
    parent_schema(conn, table)
    now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    created: list[Created] = []
    for low, high in months_to_cover(now, ahead):
        work = functools.partial(_cover, table=table, low=low, high=high)
        done = locked_transaction(conn, policy, work, what=f"create the partition of {table} for {low:%Y-%m}")
        created.extend(done)
    for item in created:
        if item.moved_rows:
            _tidy(conn, table, item)
    return created


def _cover(conn: psycopg.Connection, *, table: str, low: datetime, high: datetime) -> list[Created]:
    """Inside the locked transaction: look again (another run may have been first), then fill the gaps."""
    partitions = list_partitions(conn, table)
    schema = parent_schema(conn, table)
    default = next((p for p in partitions if p.is_default), None)
    whole_month = [(low, high)]
    created = []
    for gap_low, gap_high in uncovered(partitions, low, high):
        name = _free_name(conn, schema, table, gap_low, whole=[(gap_low, gap_high)] == whole_month)
        moved = _create_and_attach(conn, schema, table, name, default, gap_low, gap_high)
        created.append(Created(name, gap_low, gap_high, moved))
    return created


def _free_name(conn: psycopg.Connection, schema: str, table: str, low: datetime, *, whole: bool) -> str:
    base = f"{table}_{low:%Y_%m}" if whole else f"{table}_{low:%Y_%m_%d_%H%M%S}"
    candidate, suffix = base, 0
    taken = "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL"
    while conn.execute(taken, (schema, candidate)).fetchone()[0]:  # type: ignore[index]
        suffix += 1
        candidate = f"{base}_{suffix}"
    return candidate


def _create_and_attach(
    conn: psycopg.Connection,
    schema: str,
    table: str,
    name: str,
    default: Partition | None,
    low: datetime,
    high: datetime,
) -> int:
    from psycopg import sql

    parent = sql.Identifier(schema, table)
    new = sql.Identifier(schema, name)
    key = sql.Identifier(PARTITION_KEY)
    bounds = sql.Identifier(f"{name}_bounds"[:63])
    in_range = sql.SQL("{key} >= {low} AND {key} < {high}").format(
        key=key, low=sql.Literal(low), high=sql.Literal(high)
    )
    conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(new, parent))
    # A constraint equal to the range lets the attach skip scanning the new table.
    conn.execute(
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({} IS NOT NULL AND {})").format(new, bounds, key, in_range)
    )
    moved = 0
    if default is not None:
        moved = _move_out_of_default(conn, sql.Identifier(default.schema, default.name), new, schema, table, in_range)
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            parent, new, sql.Literal(low), sql.Literal(high)
        )
    )
    conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(new, bounds))
    return moved


def _move_out_of_default(
    conn: psycopg.Connection,
    default: sql.Composable,
    new: sql.Composable,
    schema: str,
    table: str,
    in_range: sql.Composable,
) -> int:
    """Move the range's rows from DEFAULT into the new table; the number of rows moved.

    The bulk copy runs without blocking anyone; then SHARE on DEFAULT stops its writers while the
    copy catches up with what they changed meanwhile (rows added, updated or deleted since the
    copy's snapshot), and the rows are deleted from DEFAULT. Writers into DEFAULT wait only for the
    catch-up, never for the bulk copy (measured in docs/partitions.md).
    """
    from psycopg import sql

    probe = sql.SQL("SELECT EXISTS (SELECT 1 FROM ONLY {} WHERE {})").format(default, in_range)
    if not conn.execute(probe).fetchone()[0]:  # type: ignore[index]
        return 0
    names = [c for (c,) in conn.execute(_COLUMNS_SQL, (schema, table))]
    parts = {
        "new": new,
        "default": default,
        "in_range": in_range,
        "moving": sql.Identifier(_MOVING),
        "columns": sql.SQL(", ").join(sql.Identifier(c) for c in names),
        "d_columns": sql.SQL(", ").join(sql.Identifier("d", c) for c in names),
    }
    key = sql.Identifier(PARTITION_KEY)

    def same_key(side: str) -> sql.Composed:
        return sql.SQL("n.id = {side}.id AND n.{key} = {side}.{key}").format(side=sql.Identifier(side), key=key)

    # 1. Bulk copy, blocking nobody; each source row version is remembered by (ctid, xmin).
    conn.execute(
        sql.SQL(
            "CREATE TEMPORARY TABLE {moving} ON COMMIT DROP AS SELECT d.ctid AS source_ctid, d.xmin AS source_xmin,"
            " {d_columns} FROM ONLY {default} AS d WHERE {in_range}"
        ).format(**parts)
    )
    conn.execute(sql.SQL("INSERT INTO {new} ({columns}) SELECT {columns} FROM {moving}").format(**parts))
    # 2. Stop DEFAULT's writers, then catch up with what they changed since the copy's snapshot:
    #    drop the copies whose source version is gone (updated or deleted), copy what is new.
    conn.execute(sql.SQL("LOCK TABLE ONLY {} IN SHARE MODE").format(default))
    conn.execute(
        sql.SQL(
            "DELETE FROM {new} AS n USING {moving} AS m WHERE {same_key} AND NOT EXISTS"
            " (SELECT 1 FROM ONLY {default} AS d WHERE d.ctid = m.source_ctid AND d.xmin = m.source_xmin)"
        ).format(**parts, same_key=same_key("m"))
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO {new} ({columns}) SELECT {d_columns} FROM ONLY {default} AS d WHERE {in_range}"
            " AND NOT EXISTS (SELECT 1 FROM {new} AS n WHERE {same_key})"
        ).format(**parts, same_key=same_key("d"))
    )
    deleted = conn.execute(sql.SQL("DELETE FROM ONLY {} WHERE {}").format(default, in_range)).rowcount
    copied = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(new)).fetchone()[0]  # type: ignore[index]
    if copied != deleted:  # impossible under the SHARE lock; never commit a half move
        raise RuntimeError(f"moved {copied} rows out of DEFAULT but deleted {deleted}")
    return int(copied)


def _tidy(conn: psycopg.Connection, table: str, item: Created) -> None:
    """After a move: fresh statistics for the new partition, dead rows of DEFAULT reclaimed (no blocking locks)."""
    from psycopg import sql

    schema = parent_schema(conn, table)
    default = next((p for p in list_partitions(conn, table) if p.is_default), None)
    conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, item.name)))
    if default is not None:
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(default.schema, default.name)))
