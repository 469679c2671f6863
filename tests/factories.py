"""Build incidents with known attributes, so tests can assert exact ids and order."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

BASE_TIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
# formats the API answers with
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
_counter = itertools.count(1)


def resource(conn: psycopg.Connection, namespace: str | None, name: str, kind: str = "Deployment") -> int:
    """The action_histories id for a resource, created when missing."""
    row = conn.execute(
        "SELECT ah.id FROM resource_references rr JOIN action_histories ah ON ah.resource_id = rr.id"
        " WHERE rr.namespace IS NOT DISTINCT FROM %s AND rr.kind = %s AND rr.name = %s",
        (namespace, kind, name),
    ).fetchone()
    if row:
        return row[0]
    rr = conn.execute(
        "INSERT INTO resource_references (resource_uid, api_version, kind, name, namespace)"
        " VALUES (gen_random_uuid()::text, 'apps/v1', %s, %s, %s) RETURNING id",
        (kind, name, namespace),
    ).fetchone()[0]
    return conn.execute("INSERT INTO action_histories (resource_id) VALUES (%s) RETURNING id", (rr,)).fetchone()[0]


def incident(
    conn: psycopg.Connection,
    *,
    minutes: float = 0,
    namespace: str | None = "default",
    resource_name: str = "web",
    kind: str = "Deployment",
    **fields: Any,
) -> int:
    """Insert one incident ``minutes`` after BASE_TIME; return its id."""
    values: dict[str, Any] = {
        "action_id": f"act-{next(_counter)}",
        "action_timestamp": BASE_TIME + timedelta(minutes=minutes),
        "alert_name": "HighMemoryUsage",
        "alert_severity": "high",
        "cluster_name": "prod-us-east-1",
        "environment": "production",
        "model_used": "gpt-4o",
        "model_confidence": 0.9,
        "action_type": "restart_pod",
        "execution_status": "completed",
        **fields,
    }
    for key in ("alert_labels", "alert_annotations", "action_parameters"):
        if isinstance(values.get(key), dict):
            values[key] = Jsonb(values[key])
    values["action_history_id"] = resource(conn, namespace, resource_name, kind)
    columns = ", ".join(values)
    placeholders = ", ".join(f"%({k})s" for k in values)
    return conn.execute(
        f"INSERT INTO resource_action_traces ({columns}) VALUES ({placeholders}) RETURNING id", values
    ).fetchone()[0]


# -- the 40 rows of the CLI and API listing tests ----------------------------------------------------
NAMESPACES = ["default", "payments", "支付服务", "طلبات-العملاء"]
SEVERITIES = ["info", "warning", "critical", "high", "medium", "low"]
ENVIRONMENTS = ["production", "staging", "development", "test"]
CLUSTERS = ["prod-a", "prod-b", "dev-c"]
ACTIONS = ["restart_pod", "scale_deployment"]


def row_spec(i: int) -> dict[str, Any]:
    return {
        "minutes": 10 * (i if i != 11 else 10),  # rows 10 and 11 share a timestamp: id breaks the tie
        "namespace": NAMESPACES[i % 4],
        "alert_severity": SEVERITIES[i % 6],
        "cluster_name": CLUSTERS[i % 3],
        "environment": ENVIRONMENTS[(i // 2) % 4],
        "action_type": ACTIONS[i % 2],
        "alert_name": "ระบบ🔥ล่ม" if i % 5 == 0 else "HighMemoryUsage",
    }


def expected_ids(rows: list[dict[str, Any]], **where: Any) -> list[int]:
    matching = [r for r in rows if all(r[k] == v for k, v in where.items())]
    return [r["id"] for r in sorted(matching, key=lambda r: (r["timestamp"], r["id"]), reverse=True)]


DETAIL = {
    "alert_labels": {"pod": "web-1", "team": "支付"},
    "alert_annotations": {"summary": "memory above 90%"},
    "action_parameters": {"replicas": 3, "dry_run": False},
    "alert_fingerprint": "fp-123",
    "model_reasoning": "memory grows linearly; restart",
    "execution_error": "none",
}


def api_rows(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """The listing tests' 40 incidents plus one with every detail field (:data:`DETAIL`); the rows, with ids."""
    rows = []
    for i in range(40):
        spec = row_spec(i)
        spec["id"] = incident(conn, resource_name=f"app-{i % 7}", **spec)
        spec["timestamp"] = BASE_TIME + timedelta(minutes=spec["minutes"])
        rows.append(spec)
    detail: dict[str, Any] = {
        "minutes": -60, "namespace": "details", "alert_severity": "info", "cluster_name": "dc",
        "environment": "test", "action_type": "restart_pod", "alert_name": "Detailed",
    }  # fmt: skip
    fired = BASE_TIME - timedelta(minutes=61)
    started, ended = BASE_TIME - timedelta(minutes=60), BASE_TIME - timedelta(minutes=59)
    detail["id"] = incident(
        conn, resource_name="detailed", kind="Pod", alert_firing_time=fired, execution_start_time=started,
        execution_end_time=ended, execution_duration_ms=60000, effectiveness_score=0.75,
        correlation_id="corr-1", **DETAIL, **detail,
    )  # fmt: skip
    detail["timestamp"] = BASE_TIME + timedelta(minutes=-60)
    rows.append(detail)
    return rows


@contextmanager
def api_database(cluster: Any) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A fresh database holding :func:`api_rows`: its URL and the rows."""
    with cluster.fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            rows = api_rows(conn)
        yield url, rows
