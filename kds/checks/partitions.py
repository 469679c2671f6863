"""``partitions``: can ``resource_action_traces`` take a row for now and for next month.

The partitions are read by :mod:`kds.db.partitions.catalog`, the module ``kds db partitions`` uses
(docs/partitions.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kds.checks.common import connection
from kds.checks.runner import CheckResult, Context, failed, passed, skipped, warned
from kds.db.partitions.catalog import PARTITION_KEY, describe_parent, list_partitions, month_start, owners, uncovered
from kds.db.schema import INCIDENT_TABLE

PARTITION_FIX_EXAMPLE = (
    "CREATE TABLE {table}_{year:04d}_{month:02d} PARTITION OF {table} FOR VALUES FROM ('{start}') TO ('{end}')"
)


def _create_partition_sql(start: datetime) -> str:
    return PARTITION_FIX_EXAMPLE.format(
        table=INCIDENT_TABLE,
        year=start.year,
        month=start.month,
        start=start.strftime("%Y-%m-%d 00:00:00+00"),
        end=month_start(start, 1).strftime("%Y-%m-%d 00:00:00+00"),
    )


def check_partitions(context: Context) -> CheckResult:
    conn = connection(context)
    parent = describe_parent(conn)
    if parent is None:
        return skipped(f"skipped: {INCIDENT_TABLE} does not exist (see required-tables)")
    if not parent.partitioned:
        return passed(f"{INCIDENT_TABLE} is not partitioned: every row has a place")
    if not parent.by_range:
        return warned(
            f"{INCIDENT_TABLE} is not range-partitioned on {PARTITION_KEY} alone; cannot verify where rows go",
            f"partition {INCIDENT_TABLE} by RANGE ({PARTITION_KEY}), one partition per month plus a DEFAULT partition",
        )
    partitions = list_partitions(conn)
    defaults = [p.name for p in partitions if p.is_default]
    clock = conn.execute("SELECT now()").fetchone()
    assert clock is not None, "SELECT now() returns one row"
    now: datetime = clock[0].astimezone(UTC)
    next_start = month_start(now, 1)
    # label -> (the period that must have a place, the month a fix creates)
    periods = {
        f"now ({now:%Y-%m-%d %H:%M} UTC)": ((now, now + timedelta(microseconds=1)), month_start(now)),
        f"next month ({next_start:%Y-%m})": ((next_start, month_start(now, 2)), next_start),
    }
    dedicated: list[str] = []
    only_default: list[str] = []
    missing: list[str] = []
    needed_months: list[datetime] = []
    for label, ((low, high), month) in periods.items():
        if not uncovered(partitions, low, high):
            dedicated.append(f"{label}: {', '.join(owners(partitions, low, high))}")
            continue
        needed_months.append(month)
        (only_default if defaults else missing).append(label)
    create = "; ".join(_create_partition_sql(month) for month in needed_months)
    if missing:
        return failed(
            f"no partition of {INCIDENT_TABLE} takes rows for {' and '.join(missing)}, and there is no "
            "DEFAULT partition: inserts fail",
            f"run `kds db partitions ensure` daily or create the months ({create}), and a DEFAULT partition "
            f"(CREATE TABLE {INCIDENT_TABLE}_default PARTITION OF {INCIDENT_TABLE} DEFAULT)",
        )
    if only_default:
        return warned(
            f"only the DEFAULT partition {defaults[0]} takes rows for {' and '.join(only_default)}",
            f"run `kds db partitions ensure` (it moves rows of those months out of DEFAULT; docs/partitions.md), "
            f"and schedule it daily (deploy/cronjob-db-partitions.yaml); by hand: {create}",
        )
    default_note = f"; DEFAULT partition {defaults[0]}" if defaults else "; no DEFAULT partition"
    return passed(f"dedicated partitions for {'; '.join(dedicated)}{default_note}")
