from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.pg import PgCluster, start_cluster


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    with start_cluster(tmp_path_factory.mktemp("pg")) as cluster:
        template = cluster.build_template()
        try:
            yield cluster
        finally:
            cluster.drop_database(template)


@pytest.fixture
def database_url(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh, migrated database for this test."""
    with pg_cluster.fresh_database() as url:
        yield url


@pytest.fixture
def empty_database_url(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh database without any kds schema."""
    with pg_cluster.fresh_database(migrated=False) as url:
        yield url


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test's database."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(autouse=True)
def _clean_kds_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never inherit the developer's KDS_* settings."""
    import os

    for name in list(os.environ):
        if name.startswith("KDS_") and name != "KDS_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
