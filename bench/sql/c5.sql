SELECT count(*) FROM action_histories ah JOIN resource_references rr ON rr.id = ah.resource_id WHERE rr.namespace = %(ns)s
