-- Indexes the incident queries rely on (names are checked by `kds validate-infra`); the
-- measurements behind them are in bench/SQL_FINDINGS.md.

-- Newest-first listing without filters, and keyset paging.
CREATE INDEX IF NOT EXISTS kds_rat_timestamp_idx
    ON resource_action_traces (action_timestamp DESC, id DESC);
-- Namespace filters: namespace -> resource ids -> history ids are index-only lookups, and per
-- history the traces are grouped by severity, newest first, so the exact count of a namespace
-- (+ severity) page is an index-only scan and only the returned rows touch the heap.
CREATE INDEX IF NOT EXISTS kds_rr_namespace_id_idx
    ON resource_references (namespace) INCLUDE (id);
CREATE INDEX IF NOT EXISTS kds_ah_resource_id_idx
    ON action_histories (resource_id) INCLUDE (id);
CREATE INDEX IF NOT EXISTS kds_rat_history_severity_timestamp_idx
    ON resource_action_traces (action_history_id, alert_severity, action_timestamp DESC, id DESC);
-- One ordered index per other exact-match filter: index-only counts and newest-first pages.
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
