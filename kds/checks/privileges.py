"""``privileges``: the connecting role can read the incident tables and write the audit trail.

Behind a pooler (``KDS_DATABASE_POOLER=pgbouncer``) it must also be allowed to call ``kds_prepare``
(migration 0005), which keeps kds's prepared statements on the pooler's server connections
(docs/scaling.md, "Prepared statements behind a pooler").
"""

from __future__ import annotations

from kds.checks.common import connection
from kds.checks.pooler import configured_pooler
from kds.checks.runner import CheckResult, Context, failed, passed, skipped
from kds.db.schema import AUDIT_TABLE, READ_TABLES, TABLES

_PRIVILEGES_SQL = """
SELECT c.relname::text, has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname = ANY(%s)
"""

_SEQUENCE_SQL = """
SELECT s.seq, has_sequence_privilege(s.seq, 'USAGE')
  FROM (SELECT pg_get_serial_sequence(format('%%I.%%I', current_schema(), %s::text), 'id') AS seq) AS s
 WHERE s.seq IS NOT NULL
"""

PREPARE_FUNCTION = "kds_prepare(text, text)"
_FUNCTION_SQL = """
SELECT has_function_privilege(p.oid, 'EXECUTE')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = current_schema() AND p.proname = 'kds_prepare'
"""


def check_privileges(context: Context) -> CheckResult:
    conn = connection(context)
    role = conn.info.user
    rights = {name: (select, insert) for name, select, insert in conn.execute(_PRIVILEGES_SQL, (list(TABLES),))}
    lacking: list[str] = []
    grants: list[str] = []
    for table in READ_TABLES:
        if table in rights and not rights[table][0]:
            lacking.append(f"SELECT on {table}")
            grants.append(f"GRANT SELECT ON {table} TO {role}")
    if AUDIT_TABLE in rights:
        if not rights[AUDIT_TABLE][1]:
            lacking.append(f"INSERT on {AUDIT_TABLE}")
            grants.append(f"GRANT INSERT ON {AUDIT_TABLE} TO {role}")
        sequence = conn.execute(_SEQUENCE_SQL, (AUDIT_TABLE,)).fetchone()
        if sequence is not None and not sequence[1]:
            lacking.append(f"USAGE on sequence {sequence[0]} (needed to insert into {AUDIT_TABLE})")
            grants.append(f"GRANT USAGE ON SEQUENCE {sequence[0]} TO {role}")
    if configured_pooler(context) != "none":
        function = conn.execute(_FUNCTION_SQL).fetchone()
        if function is not None and not function[0]:
            lacking.append(f"EXECUTE on function {PREPARE_FUNCTION} (needed behind a pooler)")
            grants.append(f"GRANT EXECUTE ON FUNCTION {PREPARE_FUNCTION} TO {role}")
    absent = [table for table in (*READ_TABLES, AUDIT_TABLE) if table not in rights]
    not_checked = f"; not checked (table missing, see required-tables): {', '.join(absent)}" if absent else ""
    if lacking:
        return failed(f"role {role} lacks {', '.join(lacking)}{not_checked}", "; ".join(grants))
    if not rights:
        return skipped("skipped: none of the tables exists (see required-tables)")
    return passed(
        f"role {role} can SELECT {', '.join(t for t in READ_TABLES if t in rights)}"
        + (f" and INSERT into {AUDIT_TABLE}" if AUDIT_TABLE in rights else "")
        + not_checked
    )
