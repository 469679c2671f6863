WITH total AS (SELECT count(*) AS n FROM resource_action_traces rat JOIN action_histories ah ON ah.id = rat.action_history_id JOIN resource_references rr ON rr.id = ah.resource_id WHERE rr.namespace = %(ns)s AND rat.alert_severity = %(sev)s),
page AS (SELECT rat.id, rat.action_timestamp, json_build_object('id', rat.id, 'action_id', rat.action_id, 'correlation_id', rat.correlation_id,
           'alert_name', rat.alert_name, 'severity', rat.alert_severity, 'namespace', rr.namespace,
           'cluster', rat.cluster_name, 'environment', rat.environment, 'action_type', rat.action_type,
           'execution_status', rat.execution_status, 'action_timestamp', rat.action_timestamp,
           'resource', json_build_object('kind', rr.kind, 'name', rr.name), 'model_used', rat.model_used,
           'model_confidence', rat.model_confidence, 'effectiveness_score', rat.effectiveness_score,
           'execution_duration_ms', rat.execution_duration_ms)::text AS doc FROM resource_action_traces rat JOIN action_histories ah ON ah.id = rat.action_history_id JOIN resource_references rr ON rr.id = ah.resource_id WHERE rr.namespace = %(ns)s AND rat.alert_severity = %(sev)s ORDER BY rat.action_timestamp DESC, rat.id DESC LIMIT 51 OFFSET 0)
SELECT total.n, page.id, page.action_timestamp, page.doc FROM total LEFT JOIN page ON true
ORDER BY page.action_timestamp DESC, page.id DESC
