-- The status filter (execution_status, "any of" a list) gets the same ordered index as every other
-- exact-match filter in 0002: an index-only exact count and a newest-first page. Without it a
-- status filter read the whole table (EXPLAIN in bench/RESULTS.md, section "Summaries").
CREATE INDEX IF NOT EXISTS kds_rat_status_timestamp_idx
    ON resource_action_traces (execution_status, action_timestamp DESC, id DESC);
