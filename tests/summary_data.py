"""The summaries' test data set and the summaries written by hand (plain GROUP BY) that results are compared with."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests import factories
from tests.pg import PgCluster

BASE = factories.BASE_TIME  # 2026-11-01T12:00:00Z

NAMESPACES = ["payments", "支付服务", "checkout", None, "payments", "ระบบ", "payments", "checkout"]
SEVERITIES = ["critical", "high", "info", "high", "low", "critical", "high"]
CLUSTERS = ["prod-a", "prod-b", None, "prod-a", "dev"]
ENVIRONMENTS = ["production", None, "staging", "production", "test", "production"]
ACTIONS = ["restart_pod", "scale_deployment", "drain_node"]
ALERTS = ["HighMemoryUsage", "ระบบ🔥ล่ม", "DiskPressure", "HighMemoryUsage"]
STATUSES = ["completed", "failed", None, "completed", "pending", "completed", "rolled_back"]
# minutes after BASE: hours 0..3 and 6 (4 and 5 empty), two days back, and one row far earlier
MINUTES = [0, 5, 59, 60, 61, 130, 170, 180, 239, 360, 370, 419, -1440 * 2, -1440 * 2 + 7, -1440 * 9]


@pytest.fixture(scope="module", name="summary_db")
def summary_db_fixture(pg_cluster: PgCluster) -> Iterator[str]:
    """About 90 incidents whose every attribute cycles with a different period (nulls included)."""
    with pg_cluster.fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            for i in range(90):
                factories.incident(
                    conn,
                    minutes=MINUTES[i % len(MINUTES)] + (i // len(MINUTES)) * 0.5,
                    namespace=NAMESPACES[i % len(NAMESPACES)],
                    resource_name=f"app-{i % 5}",
                    alert_severity=SEVERITIES[i % len(SEVERITIES)],
                    cluster_name=CLUSTERS[i % len(CLUSTERS)],
                    environment=ENVIRONMENTS[i % len(ENVIRONMENTS)],
                    action_type=ACTIONS[i % len(ACTIONS)],
                    alert_name=ALERTS[i % len(ALERTS)],
                    execution_status=STATUSES[i % len(STATUSES)],
                )
        yield url


COLUMN = {
    "namespace": "r.namespace",
    "severity": "t.alert_severity",
    "cluster": "t.cluster_name",
    "environment": "t.environment",
    "action_type": "t.action_type",
    "alert_name": "t.alert_name",
    "status": "t.execution_status",
}
HAND_FROM = (
    " FROM resource_action_traces t JOIN action_histories h ON h.id = t.action_history_id"
    " JOIN resource_references r ON r.id = h.resource_id"
)


def hand_where(flt: dict[str, Any]) -> tuple[str, list[Any]]:
    """The filters as plain SQL (lists as IN); time bounds as given."""
    clauses, args = ["TRUE"], []
    for name, value in flt.items():
        if name == "since":
            clauses.append("t.action_timestamp >= %s")
            args.append(value)
        elif name == "until":
            clauses.append("t.action_timestamp < %s")
            args.append(value)
        elif isinstance(value, list):
            clauses.append(f"{COLUMN[name]} IN ({', '.join(['%s'] * len(value))})")
            args.extend(value)
        else:
            clauses.append(f"{COLUMN[name]} = %s")
            args.append(value)
    return " AND ".join(clauses), args


def hand_groups(url: str, by: str, flt: dict[str, Any], limit: int) -> dict[str, Any]:
    where, args = hand_where(flt)
    with psycopg.connect(url) as conn:
        counted = conn.execute(f"SELECT {COLUMN[by]}, count(*){HAND_FROM} WHERE {where} GROUP BY 1", args).fetchall()
    ordered = sorted(counted, key=lambda row: (-row[1], row[0] is None, row[0] or ""))
    total = sum(n for _, n in counted)
    data = [{"key": key, "count": n} for key, n in ordered[:limit]]
    return {"by": by, "data": data, "total": total, "other": total - sum(g["count"] for g in data)}


def hand_buckets(url: str, unit: str, flt: dict[str, Any], first: datetime, last: datetime) -> dict[str, Any]:
    where, args = hand_where(flt)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"SELECT date_trunc('{unit}', t.action_timestamp AT TIME ZONE 'UTC'), count(*){HAND_FROM}"
            f" WHERE {where} GROUP BY 1",
            args,
        ).fetchall()
    counts = dict(rows)
    step = timedelta(hours=1) if unit == "hour" else timedelta(days=1)
    data, moment = [], first
    while moment <= last:
        data.append({"key": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "count": counts.get(moment, 0)})
        moment += step
    return {"by": unit, "data": data, "total": sum(g["count"] for g in data), "other": 0}
