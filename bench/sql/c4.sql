SELECT count(*) FROM resource_action_traces rat WHERE rat.alert_severity = %(sev)s
