"""Versioned, idempotent migrations recorded in ``kds_schema_migrations``.

Each record keeps the SHA-256 of the file as applied; a file changed afterwards is an error
(:class:`MigrationChanged`), never silently skipped or re-applied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from psycopg import sql

from kds.db.policy import transaction
from kds.errors import KdsError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    import psycopg

MIGRATIONS_TABLE = "kds_schema_migrations"
# Any constant works; it only has to be the same for every kds process.
_ADVISORY_LOCK_KEY = 0x6B64735F6D6967  # "kds_mig"

_TABLE = sql.Identifier(MIGRATIONS_TABLE)
_CREATE_TABLE = sql.SQL("""
CREATE TABLE IF NOT EXISTS {} (
    version     text PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
""").format(_TABLE)


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def id(self) -> str:
        return f"{self.version}_{self.name}"

    def steps(self) -> list[str]:
        """The migration as separate statements when it only builds indexes (each reported as progress).

        Anything else (e.g. a ``DO`` block, whose body holds semicolons) runs as one piece.
        """
        body = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        statements = [statement.strip() for statement in body.split(";") if statement.strip()]
        if statements and all(s.upper().startswith(("CREATE INDEX", "CREATE UNIQUE INDEX")) for s in statements):
            return statements
        return [self.sql]

    @property
    def filename(self) -> str:
        return f"{self.id}.sql"


class MigrationChanged(KdsError):
    """An applied migration's file no longer matches the checksum recorded when it was applied."""

    slug = "migration-changed"

    def __init__(self, changed: list[Migration]) -> None:
        self.changed = changed
        names = ", ".join(migration.filename for migration in changed)
        verb = "was" if len(changed) == 1 else "were"
        super().__init__(
            f"{names} {verb} changed after being applied to this database; restore the file as it was applied "
            "and put schema changes in a new migration"
        )


def migrations_folder() -> Traversable:
    """Where the migration files live (the ``kds.db.migrations`` package)."""
    return resources.files("kds.db.migrations")


def available_migrations() -> list[Migration]:
    """Every migration shipped with kds, in order."""
    folder = migrations_folder()
    migrations = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            version, _, name = entry.name.removesuffix(".sql").partition("_")
            migrations.append(Migration(version, name, entry.read_text(encoding="utf-8")))
    return migrations


def recorded_checksums(conn: psycopg.Connection) -> dict[str, str]:
    """Version → checksum of every migration recorded as applied (in order); empty when kds never migrated."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (MIGRATIONS_TABLE,)).fetchone()
    if not exists or not exists[0]:
        return {}
    rows = conn.execute(sql.SQL("SELECT version, checksum FROM {} ORDER BY version").format(_TABLE)).fetchall()
    return {version: checksum for version, checksum in rows}


def applied_versions(conn: psycopg.Connection) -> list[str]:
    """Versions recorded as applied; an empty list when kds never migrated this database."""
    return list(recorded_checksums(conn))


def changed_migrations(conn: psycopg.Connection) -> list[Migration]:
    """Applied migrations whose file differs from the checksum recorded when they were applied."""
    recorded = recorded_checksums(conn)
    return [m for m in available_migrations() if m.version in recorded and recorded[m.version] != m.checksum]


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    applied: list[str]
    pending: list[str]


def status(conn: psycopg.Connection) -> MigrationStatus:
    done = set(applied_versions(conn))
    every = available_migrations()
    return MigrationStatus(
        applied=[m.id for m in every if m.version in done],
        pending=[m.id for m in every if m.version not in done],
    )


# progress(migration id, statements done, statements in it)
Progress = Callable[[str, int, int], None]


def migrate(conn: psycopg.Connection, *, setup: sql.SQL | None = None, progress: Progress | None = None) -> list[str]:
    """Apply every pending migration, each in its own transaction; return the ids applied.

    Concurrent callers serialise on a transaction-scoped advisory lock, so two processes starting at
    once apply each migration exactly once. Raises :class:`MigrationChanged` (applying nothing) when
    an applied migration's file has changed since. ``setup`` starts every transaction (the
    per-transaction settings behind a pooler, docs/scaling.md). ``progress`` hears of each index
    built (docs/terminal.md).
    """
    applied: list[str] = []
    with transaction(conn, setup):
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK_KEY,))
        conn.execute(_CREATE_TABLE)
        changed = changed_migrations(conn)
    if changed:
        raise MigrationChanged(changed)
    for migration in available_migrations():
        with transaction(conn, setup):
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK_KEY,))
            done = conn.execute(
                sql.SQL("SELECT 1 FROM {} WHERE version = %s").format(_TABLE), (migration.version,)
            ).fetchone()
            if done:
                continue
            steps = migration.steps()
            for built, statement in enumerate(steps, start=1):
                conn.execute(statement.encode())
                if progress is not None and len(steps) > 1:
                    progress(migration.id, built, len(steps))
            conn.execute(
                sql.SQL("INSERT INTO {} (version, name, checksum) VALUES (%s, %s, %s)").format(_TABLE),
                (migration.version, migration.name, migration.checksum),
            )
            applied.append(migration.id)
    return applied
