-- Namespace + severity (the most common incident query): with the severity leading, the history ids of
-- a namespace fall in one region of the index, so the exact count and the newest-first page read the
-- matches in one pass over that region instead of one index descent per history id and partition
-- (100,000 incidents: 1,074 -> ~390 buffers; 1,000,000: 6,119 -> 3,993; measurements in
-- bench/SQL_FINDINGS.md, section 8). Namespace-only queries keep kds_rat_history_severity_timestamp_idx.
CREATE INDEX IF NOT EXISTS kds_rat_severity_history_timestamp_idx
    ON resource_action_traces (alert_severity, action_history_id, action_timestamp DESC, id DESC);
