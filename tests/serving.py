"""Run a real ``kds serve`` subprocess for tests: start, wait until live, read its logs, stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson

from kds.server.process.metrics_dir import MULTIPROC_ENV

T = TypeVar("T")
START_DEADLINE = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], T], *, timeout: float, interval: float = 0.02, message: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
        time.sleep(interval)


class Server:
    """A running ``kds serve`` (its own session, so signals reach only it)."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str) -> str:
        return self.base_url + path

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url(path), timeout=kwargs.pop("timeout", 30.0), **kwargs)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        os.kill(self.process.pid, signum)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                records.append(orjson.loads(line))
        return records

    def worker_pids(self) -> set[int]:
        """Pids of the worker processes (children of the main process that serve HTTP)."""
        records = self.log_records()
        return {r["pid"] for r in records if r.get("message", "").startswith("Worker ready")}

    def alive(self) -> bool:
        return self.process.poll() is None

    def is_live(self) -> bool:
        try:
            return httpx.get(self.url("/health/live"), timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = 20.0) -> None:
        if not self.alive():
            return
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def spawn(
    database_url: str,
    *args: str,
    log_path: Path,
    env: dict[str, str] | None = None,
    port: int | None = None,
    workers: int = 1,
    options: bool = True,
) -> Server:
    """Launch ``kds serve`` without waiting for it; with ``options=False`` everything comes from ``env``."""
    port = port or free_port()
    command = [sys.executable, "-m", "kds", "serve", *args]
    if options:
        command += ["--host", "127.0.0.1", "--port", str(port), "--database-url", database_url]
        command += ["--workers", str(workers)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KDS_") or k == "KDS_TEST_DATABASE_URL"}
    environment.pop(MULTIPROC_ENV, None)
    environment.update(env or {})
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True
        )
    return Server(process, port, log_path)


def start(database_url: str, *args: str, log_path: Path, workers: int = 1, **kwargs: Any) -> Server:
    """Launch ``kds serve`` and wait until it answers ``/health/live`` with all its workers up."""
    server = spawn(database_url, *args, log_path=log_path, workers=workers, **kwargs)
    env = kwargs.get("env") or {}

    def up() -> bool:
        if not server.alive():
            raise AssertionError(f"kds serve exited with {server.process.returncode}:\n{server.log_text()}")
        if not server.is_live():
            return False
        json_logs = "--log-format" not in args and env.get("KDS_LOG_FORMAT", "json") == "json"
        return not json_logs or len(server.worker_pids()) >= workers

    try:
        wait_for(up, timeout=START_DEADLINE, interval=0.05, message="kds serve to answer /health/live")
    except BaseException:
        server.stop(timeout=5)
        raise
    return server


@contextmanager
def running(database_url: str, *args: str, log_path: Path, **kwargs: Any) -> Iterator[Server]:
    server = start(database_url, *args, log_path=log_path, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def kds_backends(database_url: str, *, waiting_on_lock: bool = False) -> int:
    """How many connections of ``kds serve`` the database has (optionally: waiting for a lock)."""
    import psycopg

    condition = " AND wait_event_type = 'Lock'" if waiting_on_lock else ""
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kds-serve'"
            " AND datname = current_database()" + condition
        ).fetchone()[0]


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status
