-- The four tables of SPEC 2.1. Every statement is additive and idempotent so that the migration
-- also runs on an existing deployment that already holds them (it then creates only what is missing).

CREATE TABLE IF NOT EXISTS resource_references (
    id            bigserial PRIMARY KEY,
    resource_uid  varchar(36)  NOT NULL UNIQUE,
    api_version   varchar(100) NOT NULL,
    kind          varchar(100) NOT NULL,
    name          varchar(253) NOT NULL,
    namespace     varchar(63),
    created_at    timestamptz DEFAULT now(),
    deleted_at    timestamptz,
    last_seen     timestamptz DEFAULT now(),
    UNIQUE (namespace, kind, name)
);

CREATE TABLE IF NOT EXISTS action_histories (
    id              bigserial PRIMARY KEY,
    resource_id     bigint NOT NULL UNIQUE REFERENCES resource_references (id) ON DELETE CASCADE,
    total_actions   int DEFAULT 0,
    last_action_at  timestamptz,
    created_at      timestamptz DEFAULT now(),
    updated_at      timestamptz DEFAULT now()
);

DO $migration$
DECLARE
    month_start date;
BEGIN
    IF to_regclass('resource_action_traces') IS NOT NULL THEN
        RETURN;  -- an existing deployment manages its own partitions
    END IF;

    CREATE TABLE resource_action_traces (
        id                    bigserial,
        action_history_id     bigint NOT NULL REFERENCES action_histories (id),
        action_id             varchar(64) NOT NULL,
        correlation_id        varchar(64),
        action_timestamp      timestamptz NOT NULL,
        execution_start_time  timestamptz,
        execution_end_time    timestamptz,
        execution_duration_ms int,
        alert_name            varchar(200) NOT NULL,
        alert_severity        varchar(20) NOT NULL,
        alert_labels          jsonb,
        alert_annotations     jsonb,
        alert_firing_time     timestamptz,
        alert_fingerprint     varchar(64),
        cluster_name          varchar(100),
        environment           varchar(20)
            CHECK (environment IS NULL OR environment IN ('production', 'staging', 'development', 'test')),
        model_used            varchar(100) NOT NULL,
        model_confidence      numeric(4, 3) NOT NULL,
        model_reasoning       text,
        action_type           varchar(50) NOT NULL,
        action_parameters     jsonb,
        execution_status      varchar(20) DEFAULT 'pending',
        execution_error       text,
        effectiveness_score   numeric(4, 3),
        created_at            timestamptz DEFAULT now(),
        updated_at            timestamptz DEFAULT now(),
        PRIMARY KEY (id, action_timestamp)
    ) PARTITION BY RANGE (action_timestamp);

    -- Monthly partitions from three months back to three months ahead, and a DEFAULT partition so
    -- that an insert never fails for lack of a partition.
    FOR i IN -3..3 LOOP
        month_start := (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i))::date;
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF resource_action_traces FOR VALUES FROM (%L) TO (%L)',
            'resource_action_traces_' || to_char(month_start, 'YYYY_MM'),
            month_start::timestamp AT TIME ZONE 'UTC',
            (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC'
        );
    END LOOP;
    CREATE TABLE resource_action_traces_default PARTITION OF resource_action_traces DEFAULT;
END
$migration$;

CREATE TABLE IF NOT EXISTS notification_audit (
    id                bigserial PRIMARY KEY,
    remediation_id    varchar(255) NOT NULL,
    notification_id   varchar(255) NOT NULL UNIQUE,
    recipient         varchar(255) NOT NULL,
    channel           varchar(50)  NOT NULL,
    message_summary   text NOT NULL,
    status            varchar(50)  NOT NULL
        CHECK (status IN ('sent', 'failed', 'acknowledged', 'escalated')),
    sent_at           timestamptz NOT NULL,
    delivery_status   text,
    error_message     text,
    escalation_level  int DEFAULT 0,
    created_at        timestamptz DEFAULT now(),
    updated_at        timestamptz DEFAULT now()
);
