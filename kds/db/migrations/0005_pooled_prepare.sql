-- kds_prepare(name, body): prepare `body` as the session-level statement `name` on the server
-- connection this transaction runs on, unless that connection already has it; true when it had to.
-- Behind a transaction-mode pooler (PgBouncer) a client cannot keep its own named statements, but the
-- pooler reuses server connections: kds calls this in the same transaction as `EXECUTE name(...)`, so
-- every server connection plans a statement once instead of on every request (docs/scaling.md,
-- "Prepared statements behind a pooler"). SECURITY INVOKER: it runs nothing the caller could not run
-- itself. At most 64 kds_ statements per server connection: preparing a 65th clears them first.
CREATE OR REPLACE FUNCTION kds_prepare(statement_name text, statement_body text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    stale text;
BEGIN
    PERFORM FROM pg_prepared_statements p WHERE p.name = statement_name;
    IF FOUND THEN
        RETURN false;
    END IF;
    IF (SELECT count(*) FROM pg_prepared_statements p WHERE p.name LIKE 'kds\_%') >= 64 THEN
        FOR stale IN SELECT p.name FROM pg_prepared_statements p WHERE p.name LIKE 'kds\_%' LOOP
            EXECUTE format('DEALLOCATE %I', stale);
        END LOOP;
    END IF;
    EXECUTE format('PREPARE %I AS %s', statement_name, statement_body);
    RETURN true;
END
$$;
