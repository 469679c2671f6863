"""Where the database comes from (docs/configuration.md): ``--database-url`` > ``KDS_DATABASE_URL`` > embedded."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from kds.settings import Settings


@dataclass(frozen=True, slots=True)
class DatabaseSource:
    url: str
    embedded: bool


def _notice(message: str) -> None:
    print(message, file=sys.stderr)


def resolve(settings: Settings, *, notify: Callable[[str], None] = _notice) -> DatabaseSource:
    """The configured database, or the embedded default (announced once on stderr)."""
    if settings.database_url:
        return DatabaseSource(settings.database_url, embedded=False)
    from kds.db import embedded

    database = embedded.ensure()
    created = " (created with demo data)" if database.created else ""
    notify(
        f"kds: using the embedded PostgreSQL in {database.data_dir}{created}; "
        "set KDS_DATABASE_URL or pass --database-url to use a real database"
    )
    return DatabaseSource(database.url, embedded=True)
