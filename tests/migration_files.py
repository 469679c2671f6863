"""A private copy of kds's migration files that a test may edit; kds reads the copy instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from kds.db import migrate

# Every migration kds ships, in order: what a fresh database records as applied (written out, not read
# from kds/db/migrations, so that a new or renamed file fails the tests that name them).
SHIPPED = [
    "0001_base_schema",
    "0002_incident_indexes",
    "0003_status_index",
    "0004_severity_history_index",
    "0005_pooled_prepare",
]


def editable_migrations(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Copy the shipped migrations into ``directory`` and point :mod:`kds.db.migrate` at the copy."""
    directory.mkdir(parents=True, exist_ok=True)
    for entry in migrate.migrations_folder().iterdir():
        if entry.name.endswith(".sql"):
            (directory / entry.name).write_text(entry.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(migrate, "migrations_folder", lambda: directory)
    return directory


def edit(path: Path) -> None:
    """Change a migration file the way a careless edit would: same statements, one more comment."""
    path.write_text(path.read_text(encoding="utf-8") + "\n-- edited after it was applied\n", encoding="utf-8")
