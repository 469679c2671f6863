"""An existing (pre-kds) deployment's schema and a way to add an incident row, for migration and check tests."""

from __future__ import annotations

from datetime import datetime

import psycopg


def _new_id(conn: psycopg.Connection, query: str, params: tuple[object, ...] = ()) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None, "INSERT ... RETURNING id returns one row"
    return int(row[0])


def insert_incident(conn: psycopg.Connection, when: datetime) -> int:
    rr = _new_id(
        conn,
        "INSERT INTO resource_references (resource_uid, api_version, kind, name, namespace)"
        " VALUES (gen_random_uuid()::text, 'apps/v1', 'Deployment', 'web-' || gen_random_uuid(), 'default')"
        " RETURNING id",
    )
    ah = _new_id(conn, "INSERT INTO action_histories (resource_id) VALUES (%s) RETURNING id", (rr,))
    return _new_id(
        conn,
        "INSERT INTO resource_action_traces (action_history_id, action_id, action_timestamp, alert_name,"
        " alert_severity, model_used, model_confidence, action_type)"
        " VALUES (%s, 'a1', %s, 'HighMemory', 'high', 'gpt', 0.9, 'restart_pod') RETURNING id",
        (ah, when),
    )


LEGACY_SCHEMA = """
CREATE TABLE resource_references (
    id bigserial PRIMARY KEY, resource_uid varchar(36) UNIQUE NOT NULL, api_version varchar(100) NOT NULL,
    kind varchar(100) NOT NULL, name varchar(253) NOT NULL, namespace varchar(63),
    created_at timestamptz DEFAULT now(), deleted_at timestamptz, last_seen timestamptz DEFAULT now(),
    owner_team text DEFAULT 'sre', UNIQUE (namespace, kind, name));
CREATE TABLE action_histories (
    id bigserial PRIMARY KEY, resource_id bigint NOT NULL UNIQUE REFERENCES resource_references(id) ON DELETE CASCADE,
    total_actions int DEFAULT 0, last_action_at timestamptz, created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(), max_actions int DEFAULT 10, cooldown_minutes int DEFAULT 5);
CREATE TABLE resource_action_traces (
    id bigserial, action_history_id bigint NOT NULL REFERENCES action_histories(id),
    action_id varchar(64) NOT NULL, correlation_id varchar(64), action_timestamp timestamptz NOT NULL,
    execution_start_time timestamptz, execution_end_time timestamptz, execution_duration_ms int,
    alert_name varchar(200) NOT NULL, alert_severity varchar(20) NOT NULL, alert_labels jsonb,
    alert_annotations jsonb, alert_firing_time timestamptz, alert_fingerprint varchar(64),
    cluster_name varchar(100), environment varchar(20), model_used varchar(100) NOT NULL,
    model_confidence numeric(4,3) NOT NULL, model_reasoning text, action_type varchar(50) NOT NULL,
    action_parameters jsonb, execution_status varchar(20) DEFAULT 'pending', execution_error text,
    effectiveness_score numeric(4,3), created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now(),
    rollback_action_id varchar(64), PRIMARY KEY (id, action_timestamp)
) PARTITION BY RANGE (action_timestamp);
CREATE TABLE resource_action_traces_y2026m11 PARTITION OF resource_action_traces
    FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00');
CREATE TABLE resource_action_traces_y2026m12 PARTITION OF resource_action_traces
    FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00');
"""
