-- Indexes the incident queries rely on (names are checked by `kds validate-infra`).
-- Newest-first listing without filters, and keyset paging.
CREATE INDEX IF NOT EXISTS kds_rat_timestamp_idx
    ON resource_action_traces (action_timestamp DESC, id DESC);
-- Namespace filters reach traces through action_histories; per history, newest first.
CREATE INDEX IF NOT EXISTS kds_rat_history_timestamp_idx
    ON resource_action_traces (action_history_id, action_timestamp DESC, id DESC);
CREATE INDEX IF NOT EXISTS kds_rat_severity_timestamp_idx
    ON resource_action_traces (alert_severity, action_timestamp DESC, id DESC);
CREATE INDEX IF NOT EXISTS kds_rat_cluster_timestamp_idx
    ON resource_action_traces (cluster_name, action_timestamp DESC, id DESC);
CREATE INDEX IF NOT EXISTS kds_rat_environment_timestamp_idx
    ON resource_action_traces (environment, action_timestamp DESC, id DESC);
CREATE INDEX IF NOT EXISTS kds_rat_action_type_timestamp_idx
    ON resource_action_traces (action_type, action_timestamp DESC, id DESC);
CREATE INDEX IF NOT EXISTS kds_rat_alert_name_timestamp_idx
    ON resource_action_traces (alert_name, action_timestamp DESC, id DESC);
-- Namespace lookup (existing deployments may lack the unique (namespace, kind, name) constraint).
CREATE INDEX IF NOT EXISTS kds_rr_namespace_idx
    ON resource_references (namespace);
