"""What the database checks share: the runner's connection and the usual fix for a schema gap."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

    from kds.checks.runner import Context

MIGRATE_FIX = "run `kds db migrate` against this database (for example from the Kubernetes migration Job)"


def connection(context: Context) -> psycopg.Connection:
    """The connection the runner opened; database checks only run when there is one."""
    assert context.connection is not None, "the runner only calls database checks with a connection"
    return context.connection
