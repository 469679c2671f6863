"""``partitions``: can ``resource_action_traces`` take a row for now and for next month."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kds.checks.common import connection
from kds.checks.runner import CheckResult, Context, failed, passed, skipped, warned
from kds.db.schema import INCIDENT_TABLE

_PARTITIONING_SQL = """
SELECT c.oid::bigint, c.relkind::text, pt.partstrat::text, pt.partnatts::int, a.attname::text
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = pt.partattrs[0]
 WHERE n.nspname = current_schema() AND c.relname = %s
"""

_PARTITIONS_SQL = """
SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid)
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = %s::oid
 ORDER BY c.relname
"""

_RANGE_BOUND = re.compile(r"^FOR VALUES FROM \((?P<low>.*)\) TO \((?P<high>.*)\)$", re.DOTALL)
_LITERAL = re.compile(r"^'((?:[^']|'')*)'$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class RangePartition:
    name: str
    low: datetime | None  # None: MINVALUE
    high: datetime | None  # None: MAXVALUE

    def covers(self, moment: datetime) -> bool:
        return (self.low is None or self.low <= moment) and (self.high is None or moment < self.high)


def _bound_literal(text: str) -> str | None:
    """The timestamp text of a bound literal; None for MINVALUE/MAXVALUE."""
    text = text.strip()
    if text in ("MINVALUE", "MAXVALUE"):
        return None
    match = _LITERAL.match(text)
    if match is None:
        raise ValueError(f"unexpected partition bound {text!r}")
    return match.group(1).replace("''", "'")


def _next_month(moment: datetime, months: int = 1) -> datetime:
    year, month = divmod(moment.month - 1 + months, 12)
    return datetime(moment.year + year, month + 1, 1, tzinfo=UTC)


PARTITION_FIX_EXAMPLE = (
    "CREATE TABLE {table}_{year:04d}_{month:02d} PARTITION OF {table} FOR VALUES FROM ('{start}') TO ('{end}')"
)


def _create_partition_sql(month_start: datetime) -> str:
    end = _next_month(month_start)
    return PARTITION_FIX_EXAMPLE.format(
        table=INCIDENT_TABLE,
        year=month_start.year,
        month=month_start.month,
        start=month_start.strftime("%Y-%m-%d 00:00:00+00"),
        end=end.strftime("%Y-%m-%d 00:00:00+00"),
    )


def check_partitions(context: Context) -> CheckResult:
    conn = connection(context)
    row = conn.execute(_PARTITIONING_SQL, (INCIDENT_TABLE,)).fetchone()
    if row is None:
        return skipped(f"skipped: {INCIDENT_TABLE} does not exist (see required-tables)")
    oid, relkind, strategy, key_count, key_column = row
    if relkind != "p":
        return passed(f"{INCIDENT_TABLE} is not partitioned: every row has a place")
    if strategy != "r" or key_count != 1 or key_column != "action_timestamp":
        return warned(
            f"{INCIDENT_TABLE} is not range-partitioned on action_timestamp alone; cannot verify where rows go",
            f"partition {INCIDENT_TABLE} by RANGE (action_timestamp), one partition per month plus a DEFAULT partition",
        )
    ranges: list[tuple[str, str | None, str | None]] = []
    defaults: list[str] = []
    for name, bound in conn.execute(_PARTITIONS_SQL, (oid,)):
        if bound == "DEFAULT":
            defaults.append(name)
            continue
        match = _RANGE_BOUND.match(bound or "")
        if match is None:
            return warned(f"cannot read the bound of partition {name}", "report this bound to the kds maintainers")
        ranges.append((name, _bound_literal(match["low"]), _bound_literal(match["high"])))
    # The server parses its own bound texts (same session, same DateStyle and TimeZone).
    literals = sorted({text for _, low, high in ranges for text in (low, high) if text is not None})
    parsed: dict[str, datetime] = {}
    clock = conn.execute("SELECT now()").fetchone()
    assert clock is not None, "SELECT now() returns one row"
    now: datetime = clock[0]
    if literals:
        parsed = dict(conn.execute("SELECT x, x::timestamptz FROM unnest(%s::text[]) AS x", (literals,)).fetchall())
    partitions = [
        RangePartition(name, parsed[low] if low else None, parsed[high] if high else None) for name, low, high in ranges
    ]
    now = now.astimezone(UTC)
    next_start = _next_month(now)
    next_end = _next_month(now, 2) - timedelta(microseconds=1)
    periods = {
        f"now ({now:%Y-%m-%d %H:%M} UTC)": ([now], _next_month(now, 0)),
        f"next month ({next_start:%Y-%m})": ([next_start, next_end], next_start),
    }
    dedicated: list[str] = []
    only_default: list[str] = []
    uncovered: list[str] = []
    needed_months: list[datetime] = []
    for label, (moments, month_start) in periods.items():
        owners = [[p.name for p in partitions if p.covers(moment)] for moment in moments]
        if all(owners):
            dedicated.append(f"{label}: {', '.join(sorted({name for names in owners for name in names}))}")
            continue
        needed_months.append(month_start)
        (only_default if defaults else uncovered).append(label)
    create = "; ".join(_create_partition_sql(month) for month in needed_months)
    if uncovered:
        return failed(
            f"no partition of {INCIDENT_TABLE} takes rows for {' and '.join(uncovered)}, and there is no "
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
