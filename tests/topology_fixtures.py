"""Session-scoped pytest fixtures for the production topology of :mod:`tests.topology`.

Registered in ``tests/conftest.py`` (``pytest_plugins``). One primary (embedded PostgreSQL on TCP) and one
PgBouncer in transaction mode in front of it serve the whole session; each test that needs data gets its
own migrated database on the primary (:func:`topology_database`), reachable directly and through the pooler.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from tests.topology import PgBouncer, Primary, Replica

SEEDED_INCIDENTS = 240


@dataclass(frozen=True)
class TopologyDatabase:
    """One migrated, seeded database on the primary, and its URLs."""

    name: str
    direct_url: str
    pooled_url: str


@pytest.fixture(scope="session")
def topology_primary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Primary]:
    primary = Primary(tmp_path_factory.mktemp("topology"))
    try:
        yield primary
    finally:
        primary.destroy()


@pytest.fixture(scope="session")
def pgbouncer(topology_primary: Primary, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(
        topology_primary.port, tmp_path_factory.mktemp("pgbouncer"), system_user=topology_primary.system_user
    )
    try:
        yield bouncer
    finally:
        bouncer.destroy()


@pytest.fixture
def topology_database(topology_primary: Primary, pgbouncer: PgBouncer) -> TopologyDatabase:
    """A fresh migrated database with :data:`SEEDED_INCIDENTS` seeded incidents (deterministic seed)."""
    from kds.db.seed import seed

    name = topology_primary.migrated_database()
    with psycopg.connect(topology_primary.url(name)) as conn:
        seed(conn, SEEDED_INCIDENTS, seed_value=17)
    return TopologyDatabase(name, topology_primary.url(name), pgbouncer.url(name))


@pytest.fixture(scope="session")
def topology_replica(topology_primary: Primary) -> Iterator[Replica]:
    """A hot standby streaming from :func:`topology_primary` (``pg_basebackup -R``), for the read database.

    Its data directory sits beside the primary's (a directory the server user may write).
    """
    replica = Replica(topology_primary, topology_primary.data_dir.parent / "replica")
    try:
        yield replica
    finally:
        replica.destroy()
