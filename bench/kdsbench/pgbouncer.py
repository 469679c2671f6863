"""PgBouncer (the OS package) in transaction pooling mode in front of the bench PostgreSQL's unix socket.

Only the pool mode and the database entry differ from the package's defaults (plus where it listens and
writes, and trust authentication for the throwaway bench server), as docs/scaling.md describes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from kdsbench.pg import Server

INSTALL = ["apt-get", "install", "-y", "pgbouncer"]


def ensure_installed() -> str:
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    if found:
        return found
    subprocess.run(INSTALL, check=True, capture_output=True, timeout=600)
    return ensure_installed()


class PgBouncer:
    def __init__(self, binary: str, server: Server, port: int, work_dir: Path) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        work_dir.chmod(0o777)
        self.port = port
        self.config = work_dir / "pgbouncer.ini"
        users = work_dir / "userlist.txt"
        users.write_text('"postgres" ""\n')
        self.config.write_text(
            "[databases]\n"
            f"* = host={server.socket_dir}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {users}\n"
            "pool_mode = transaction\n"
            f"logfile = {work_dir / 'pgbouncer.log'}\n"
            f"pidfile = {work_dir / 'pgbouncer.pid'}\n"
            "admin_users = postgres\n"  # SHOW VERSION for the report
        )
        argv = [binary, str(self.config)]
        if os.geteuid() == 0 and server.system_user:  # PgBouncer refuses to run as root
            for path in (self.config, users):
                shutil.chown(path, server.system_user)
            argv = [binary, "-u", server.system_user, str(self.config)]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_until_accepting()

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def version(self) -> str:
        with psycopg.connect(self.url("pgbouncer"), autocommit=True, prepare_threshold=None) as conn:
            return conn.execute("SHOW VERSION").fetchone()[0]  # type: ignore[index]

    def _wait_until_accepting(self, deadline: float = 30.0) -> None:
        end = time.monotonic() + deadline
        while True:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2, prepare_threshold=None) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > end or self.process.poll() is not None:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
