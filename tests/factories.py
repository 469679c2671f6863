"""Build incidents with known attributes, so tests can assert exact ids and order."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

BASE_TIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
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
