"""Benchmark databases: kds schema + seeded incidents + the PostgREST `incidents` view."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from psycopg import sql

from kdsbench.pg import Server

REPO = Path(__file__).resolve().parents[2]
# Every incident field of the API (docs/api.md), from the same join kds uses.
VIEW = """
CREATE SCHEMA IF NOT EXISTS api;
CREATE OR REPLACE VIEW api.incidents AS
SELECT rat.id, rat.action_id, rat.correlation_id, rat.alert_name, rat.alert_severity AS severity,
       rr.namespace, rat.cluster_name AS cluster, rat.environment, rat.action_type, rat.execution_status,
       rat.action_timestamp, json_build_object('kind', rr.kind, 'name', rr.name) AS resource,
       rat.model_used, rat.model_confidence, rat.effectiveness_score, rat.execution_duration_ms
  FROM public.resource_action_traces rat
  JOIN public.action_histories ah ON ah.id = rat.action_history_id
  JOIN public.resource_references rr ON rr.id = ah.resource_id;
DO $$ BEGIN CREATE ROLE web_anon NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT USAGE ON SCHEMA api TO web_anon;
GRANT SELECT ON api.incidents TO web_anon;
"""


def database_name(incidents: int) -> str:
    return f"kds_bench_{incidents}"


def kds(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run the kds CLI of this checkout (long statements allowed: index builds on 1M rows take seconds)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "KDS_STATEMENT_TIMEOUT": "30m"}
    return subprocess.run(
        [sys.executable, "-m", "kds", *args], env=env, capture_output=True, text=True, timeout=timeout, check=True
    )


def _row_count(server: Server, dbname: str) -> int | None:
    with server.connect() as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
    if not exists:
        return None
    with server.connect(dbname) as conn:
        table = conn.execute("SELECT to_regclass('resource_action_traces')").fetchone()[0]  # type: ignore[index]
        if table is None:
            return 0
        return conn.execute("SELECT count(*) FROM resource_action_traces").fetchone()[0]  # type: ignore[index]


SCHEMA_DB = "kds_bench_schema"
_KDS_INDEXES = """
SELECT i.indexname, i.indexdef FROM pg_indexes i
 WHERE i.schemaname = 'public' AND i.indexname LIKE 'kds\\_%' AND i.indexname <> 'kds_schema_migrations_pkey'
"""


def _kds_indexes(conn) -> dict[str, str]:
    return {name: definition for name, definition in conn.execute(_KDS_INDEXES).fetchall()}


def expected_indexes(server: Server) -> dict[str, str]:
    """kds's own indexes (name -> definition) as this checkout's migrations create them on a fresh database."""
    with server.connect() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(SCHEMA_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SCHEMA_DB)))
    try:
        kds("db", "migrate", "--database-url", server.url(SCHEMA_DB), timeout=600)
        with server.connect(SCHEMA_DB) as conn:
            return _kds_indexes(conn)
    finally:
        with server.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(SCHEMA_DB)))


def sync_indexes(server: Server, dbname: str, expected: dict[str, str], log) -> bool:
    """Make the database's kds indexes exactly the current migrations' (a reused database may predate them).

    Drops kds indexes the migrations no longer create (or define differently), builds the missing ones
    from their definitions (a partitioned parent's "ON ONLY" becomes a build on every partition),
    and forgets migration records of versions this checkout does not ship. Returns whether anything changed.
    """
    from kds.db.migrate import MIGRATIONS_TABLE, available_migrations

    changed = False
    with server.connect(dbname) as conn:
        present = _kds_indexes(conn)
        for name, definition in sorted(present.items()):
            if expected.get(name) != definition:
                log(f"{dbname}: dropping index {name} (not in the current migrations, or defined differently)")
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
                present.pop(name)
                changed = True
        conn.execute("SET maintenance_work_mem = '256MB'")
        for name, definition in sorted(expected.items()):
            if name not in present:
                log(f"{dbname}: building index {name}")
                conn.execute(definition.replace(" ON ONLY ", " ON ", 1).encode())
                changed = True
        shipped = [m.version for m in available_migrations()]
        stale = conn.execute(
            sql.SQL("DELETE FROM {} WHERE NOT version = ANY(%s) RETURNING version").format(
                sql.Identifier(MIGRATIONS_TABLE)
            ),
            (shipped,),
        ).fetchall()
        if stale:
            log(f"{dbname}: forgot migration records not shipped any more: {', '.join(r[0] for r in stale)}")
        assert _kds_indexes(conn) == expected, f"{dbname}: index set still differs from the migrations"
    return changed


def prepare(server: Server, incidents: int, log, expected: dict[str, str]) -> str:
    """A migrated, seeded, vacuumed database with exactly ``incidents`` rows; reused when already there."""
    dbname = database_name(incidents)
    url = server.url(dbname)
    count = _row_count(server, dbname)
    if count != incidents:
        with server.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    migrated = kds("db", "migrate", "--database-url", url, timeout=1800).stdout.strip()
    if count != incidents:
        log(f"seeding {incidents:,} incidents into {dbname} ...")
        kds("db", "seed", "--incidents", str(incidents), "--database-url", url, timeout=1800)
    reindexed = sync_indexes(server, dbname, expected, log)
    if migrated or reindexed or count != incidents:
        synced = ", indexes synced to the migrations" if reindexed else ""
        log(f"{dbname}: {migrated or 'schema up to date'}{synced}; VACUUM ANALYZE")
        with server.connect(dbname) as conn:
            conn.execute("VACUUM ANALYZE")
    else:
        log(f"{dbname}: reusing {incidents:,} seeded incidents")
    with server.connect(dbname) as conn:
        conn.execute(VIEW)
    return url


def each_size(server: Server, sizes: str, log) -> Iterator[tuple[int, str, str]]:
    """``(incidents, url, dbname)`` for every size of ``--sizes``, its data set prepared (:func:`prepare`)."""
    for incidents in (int(n) for n in sizes.split(",")):
        yield incidents, prepare(server, incidents, log, expected_indexes(server)), database_name(incidents)
