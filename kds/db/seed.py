"""Realistic synthetic incidents, generated inside PostgreSQL (set-based, no row-by-row traffic).

Every choice is a hash of the row number and the seed, so the same seed gives the same data
(timestamps are relative to the start of the current UTC day). The first rows walk through every
value of each vocabulary, so even a small seed covers every namespace, severity and environment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from psycopg import sql

from kds.db.policy import transaction
from kds.query.vocabulary import ENVIRONMENTS, SEVERITIES

if TYPE_CHECKING:
    import psycopg

NAMESPACES = [
    "default", "kube-system", "monitoring", "payments", "checkout", "cart", "search", "auth",
    "billing", "inventory", "shipping", "notifications", "analytics", "logging", "ingress-nginx",
    "cert-manager", "data-pipeline", "ml-serving", "frontend", "backend-api",
    "طلبات-العملاء", "支付服务", "ระบบชำระเงิน", "rocket-🚀",
]  # fmt: skip
CLUSTERS = ["prod-us-east-1", "prod-eu-west-1", "prod-ap-south-1", "staging-us-east-1", "dev-local", "test-ci"]
ACTION_TYPES = [
    "restart_pod", "scale_deployment", "rollback_deployment", "increase_memory_limit",
    "increase_cpu_limit", "drain_node", "cordon_node", "delete_pod", "update_hpa", "notify_only",
]  # fmt: skip
ALERT_NAMES = [
    "HighMemoryUsage", "PodCrashLooping", "HighCPUUsage", "DiskPressure", "NodeNotReady",
    "KubeDeploymentReplicasMismatch", "HTTPErrorRateHigh", "CertificateExpiringSoon",
    "ذاكرة-عالية", "内存使用率过高", "หน่วยความจำสูง", "Latency🔥Spike",
]  # fmt: skip
KINDS = ["Deployment", "StatefulSet", "Pod", "DaemonSet", "Node"]
MODELS = ["gpt-4o", "claude-3-5-sonnet", "llama-3-70b", "granite-3-8b"]
STATUSES = ["completed", "completed", "completed", "failed", "pending", "rolled_back"]

SPREAD_DAYS = 45
CHUNK_ROWS = 50_000

# pick(salt, n): an index 0..n-1; rows 0..n-1 take every value once, then the hash decides.
_PICK = "(CASE WHEN i < {n} THEN i ELSE hashint8extended(i, %(seed)s + {salt}) & {mask} END %% {n})::int"
_MASK = 0x7FFFFFFFFFFFFFFF  # keep hashes non-negative without abs() overflowing


def _pick(salt: int, n: int | str) -> str:
    return _PICK.format(salt=salt, n=n, mask=_MASK)


_UID = "uuid_in(md5('kds-seed:' || %(seed)s || ':' || r)::cstring)::text"

_RESOURCES = sql.SQL(
    """
    INSERT INTO resource_references (resource_uid, api_version, kind, name, namespace)
    SELECT {uid},
           CASE WHEN kind IN ('Node', 'Pod') THEN 'v1' ELSE 'apps/v1' END,
           kind,
           lower(kind) || '-' || %(seed)s || '-' || r,
           CASE WHEN kind = 'Node' THEN NULL ELSE ns END
      FROM (SELECT r,
                   (%(kinds)s::text[])[1 + (r / %(ns_count)s) %% %(kind_count)s] AS kind,
                   (%(namespaces)s::text[])[1 + r %% %(ns_count)s] AS ns
              FROM generate_series(0, %(resources)s - 1) AS r) AS gen
    ON CONFLICT DO NOTHING
    """
).format(uid=sql.SQL(_UID))

_SEEDED = sql.SQL(
    """
    SELECT r, rr.id AS resource_id, coalesce(rr.namespace, '') AS namespace, rr.kind, rr.name
      FROM generate_series(0, %(resources)s - 1) AS r
      JOIN resource_references rr ON rr.resource_uid = {uid}
    """
).format(uid=sql.SQL(_UID))

_HISTORIES = sql.SQL(
    """
    INSERT INTO action_histories (resource_id)
    SELECT resource_id FROM ({seeded}) AS seeded
    ON CONFLICT (resource_id) DO NOTHING
    """
).format(seeded=_SEEDED)

_SEED_MAP = sql.SQL(
    """
    CREATE TEMP TABLE kds_seed_resources ON COMMIT DROP AS
    SELECT seeded.r, ah.id AS history_id, seeded.namespace, seeded.kind, seeded.name
      FROM ({seeded}) AS seeded JOIN action_histories ah ON ah.resource_id = seeded.resource_id
    """
).format(seeded=_SEEDED)

_TRACES = sql.SQL(
    """
    INSERT INTO resource_action_traces (
        action_history_id, action_id, correlation_id, action_timestamp, execution_start_time,
        execution_end_time, execution_duration_ms, alert_name, alert_severity, alert_labels,
        alert_annotations, alert_firing_time, alert_fingerprint, cluster_name, environment,
        model_used, model_confidence, model_reasoning, action_type, action_parameters,
        execution_status, execution_error, effectiveness_score)
    SELECT res.history_id,
           'act-' || md5(%(seed)s || ':' || %(offset)s + i),
           'corr-' || left(md5('c' || %(seed)s || ':' || %(offset)s + i), 24),
           ts, ts + interval '1 second', ts + interval '1 second' + duration * interval '1 millisecond',
           duration, alert, severity,
           jsonb_build_object('alertname', alert, 'namespace', res.namespace, 'severity', severity,
                              lower(res.kind), res.name),
           jsonb_build_object('summary', alert || ' on ' || res.kind || ' ' || res.name,
                              'runbook_url', 'https://runbooks.example.com/' || lower(alert)),
           ts - interval '2 minutes', left(md5('f' || alert || res.name), 16), cluster, env,
           model, 0.5 + (h %% 500) / 1000.0,
           'Observed ' || alert || ' for ' || res.name || '; chose ' || action || '.',
           action, jsonb_build_object('target', res.name, 'replicas', 1 + h %% 5),
           status, CASE WHEN status = 'failed' THEN 'timeout waiting for rollout' END,
           CASE WHEN status = 'completed' THEN (h / 1000 %% 1000) / 1000.0 END
      FROM (SELECT i, g.h,
                   %(anchor)s::timestamptz - (g.h %% (%(spread)s * 86400)) * interval '1 second' AS ts,
                   (g.h %% 90000)::int AS duration,
                   (%(alerts)s::text[])[1 + {alert}] AS alert,
                   (%(severities)s::text[])[1 + {severity}] AS severity,
                   (%(clusters)s::text[])[1 + {cluster}] AS cluster,
                   (%(environments)s::text[])[1 + {environment}] AS env,
                   (%(models)s::text[])[1 + {model}] AS model,
                   (%(actions)s::text[])[1 + {action}] AS action,
                   (%(statuses)s::text[])[1 + {status}] AS status,
                   {resource} AS r
              FROM generate_series(%(start)s, %(stop)s - 1) AS i,
                   LATERAL (SELECT hashint8extended(i, %(seed)s) & {mask} AS h) AS g) AS gen
      JOIN kds_seed_resources res ON res.r = gen.r
    """
).format(
    alert=sql.SQL(_pick(1, len(ALERT_NAMES))),
    severity=sql.SQL(_pick(2, len(SEVERITIES))),
    cluster=sql.SQL(_pick(3, len(CLUSTERS))),
    environment=sql.SQL(_pick(4, len(ENVIRONMENTS))),
    model=sql.SQL(_pick(5, len(MODELS))),
    action=sql.SQL(_pick(6, len(ACTION_TYPES))),
    status=sql.SQL(_pick(7, len(STATUSES))),
    resource=sql.SQL(_pick(8, "%(resources)s")),
    mask=sql.SQL(str(_MASK)),
)

_HISTORY_TOTALS = sql.SQL(
    """
    UPDATE action_histories ah
       SET total_actions = t.n, last_action_at = t.last, updated_at = now()
      FROM (SELECT action_history_id, count(*) AS n, max(action_timestamp) AS last
              FROM resource_action_traces
             WHERE action_history_id IN (SELECT history_id FROM kds_seed_resources)
             GROUP BY action_history_id) AS t
     WHERE ah.id = t.action_history_id
    """
)


# Above this many rows it is cheaper to rebuild the incident indexes once than to maintain them per row.
BULK_THRESHOLD = 100_000

_INDEX_DEFINITIONS = sql.SQL(
    """
    SELECT i.indexname, i.indexdef
      FROM pg_indexes i
     WHERE i.schemaname = current_schema() AND i.tablename = %s AND i.indexname = ANY(%s)
    """
)


def _drop_incident_indexes(conn: psycopg.Connection) -> list[str]:
    """Drop kds's own incident indexes and return the statements that recreate them."""
    from kds.db.schema import INCIDENT_TABLE, INDEXES

    names = [index.name for index in INDEXES if index.table == INCIDENT_TABLE]
    rows = conn.execute(_INDEX_DEFINITIONS, (INCIDENT_TABLE, names)).fetchall()
    for name, _ in rows:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    # A partitioned parent's definition reads "ON ONLY"; recreate it on every partition.
    return [definition.replace(" ON ONLY ", " ON ", 1) for _, definition in rows]


def resource_count(incidents: int) -> int:
    """How many resources to spread ``incidents`` over: about 20 incidents each, 48..20,000."""
    return max(2 * len(NAMESPACES), min(incidents // 20, 20_000))


def seed(
    conn: psycopg.Connection,
    incidents: int,
    *,
    seed_value: int = 42,
    progress: Callable[[int], None] | None = None,
    index_progress: Callable[[int, int], None] | None = None,
    setup: sql.SQL | None = None,
) -> int:
    """Insert ``incidents`` synthetic incidents in one transaction; return how many were written.

    ``progress`` is called with the number of rows written after each chunk; ``index_progress``
    with (rebuilt, to rebuild) after each index rebuilt at the end of a bulk seed; ``setup`` starts
    the transaction (the per-transaction settings behind a pooler, docs/scaling.md).
    """
    if incidents < 0:
        raise ValueError("incidents must be >= 0")
    params = {
        "seed": seed_value,
        "resources": resource_count(incidents),
        "namespaces": NAMESPACES,
        "ns_count": len(NAMESPACES),
        "kinds": KINDS,
        "kind_count": len(KINDS),
        "alerts": ALERT_NAMES,
        "severities": list(SEVERITIES),
        "clusters": CLUSTERS,
        "environments": list(ENVIRONMENTS),
        "models": MODELS,
        "actions": ACTION_TYPES,
        "statuses": STATUSES,
        "spread": SPREAD_DAYS,
    }
    with transaction(conn, setup):
        conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        rebuild = _drop_incident_indexes(conn) if incidents >= BULK_THRESHOLD else []
        anchor = conn.execute("SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'")
        params["anchor"] = anchor.fetchone()[0]  # type: ignore[index]
        offset = conn.execute("SELECT count(*) FROM resource_action_traces").fetchone()[0]  # type: ignore[index]
        params["offset"] = offset
        conn.execute(_RESOURCES, params)
        conn.execute(_HISTORIES, params)
        conn.execute(_SEED_MAP, params)
        conn.execute("CREATE UNIQUE INDEX ON kds_seed_resources (r)")
        conn.execute("ANALYZE kds_seed_resources")
        written = 0
        while written < incidents:
            stop = min(written + CHUNK_ROWS, incidents)
            conn.execute(_TRACES, {**params, "start": written, "stop": stop})
            written = stop
            if progress is not None:
                progress(written)
        for done, statement in enumerate(rebuild, start=1):
            conn.execute(statement.encode())
            if index_progress is not None:
                index_progress(done, len(rebuild))
        conn.execute(_HISTORY_TOTALS)
    return written
