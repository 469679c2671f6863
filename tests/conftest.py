from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.pg import PgCluster, start_cluster

pytest_plugins = ["tests.topology_fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    """Give every pytest session its own base temp directory.

    pytest's default (``/tmp/pytest-of-<user>/pytest-<N>``) deletes all but the newest three on
    start, which removes the data directory under a concurrent session's running PostgreSQL.
    """
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        config.option.basetemp = tempfile.mkdtemp(prefix="kds-pytest-")
        config._kds_basetemp = config.option.basetemp  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    basetemp = getattr(config, "_kds_basetemp", None)
    if basetemp:
        shutil.rmtree(basetemp, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    with start_cluster(Path(tmp_path_factory.mktemp("pg"))) as cluster:
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


@pytest.fixture(scope="module")
def api_dataset(pg_cluster: PgCluster) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A database with the API tests' incidents (tests.factories.api_rows), shared by a module: URL and rows."""
    from tests import factories

    with factories.api_database(pg_cluster) as data:
        yield data


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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show what the fault, fuzz and limit tests measured (tests.measurements), also when they pass."""
    from tests.measurements import LINES

    if LINES:
        terminalreporter.section("kds measurements")
        for line in LINES:
            terminalreporter.write_line(line)
