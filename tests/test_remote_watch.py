"""The watch stream ``GET /api/v1/incidents?watch=true`` on a real ``kds serve``, and the remote ``--watch``.

Bookmarks and ``resume`` (no gap, no repeat), the per-worker maximum (503 + Retry-After), the open
watches gauge, the stream's clean end when shutdown drains, and the CLI's remote watch: new incidents,
a lost server (one notice, resumed without gap) and SIGTERM (exit 0).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from tests import factories, remote
from tests.serving import Server, running, start, wait_for

WATCH = "/api/v1/incidents?watch=true"


class Stream:
    """A watch stream read line by line in a thread."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, client: httpx.Client | None = None) -> None:
        self.url = url
        self.client = client or httpx.Client(timeout=30)  # a given client keeps its connection after the stream
        self.headers = headers or {}
        self.events: list[dict[str, Any]] = []
        self.status: int | None = None
        self.ended = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self.client.stream("GET", self.url, headers=self.headers) as response:
                self.status = response.status_code
                for line in response.iter_lines():
                    if line:
                        self.events.append(orjson.loads(line))
        except BaseException as error:
            self.error = error
        finally:
            self.ended.set()

    def incidents(self) -> list[int]:
        return [event["incident"]["id"] for event in self.events if event["type"] == "incident"]

    def bookmarks(self) -> list[str]:
        return [event["resume"] for event in self.events if event["type"] == "bookmark"]

    def wait_incidents(self, count: int) -> list[int]:
        return wait_for(
            lambda: len(self.incidents()) >= count and self.incidents(), timeout=20, message=f"{count} incidents"
        )


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[str, Server]]:
    remote.seed(database_url, 10)
    with running(database_url, "--shutdown-delay", "0", log_path=tmp_path / "serve.log") as server:
        yield database_url, server


def insert(url: str, **fields: Any) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return factories.incident(conn, minutes=10_000, **{"namespace": "payments", **fields})


def test_first_page_then_new_incidents_then_resume_without_gap_or_repeat(served: tuple[str, Server]) -> None:
    url, server = served
    stream = Stream(server.url(WATCH + "&limit=3&interval=200ms"))
    assert stream.wait_incidents(3) == [8, 9, 10]  # the newest three, oldest first
    wait_for(lambda: stream.bookmarks(), timeout=10, message="the first bookmark")
    new = insert(url)
    assert stream.wait_incidents(4) == [8, 9, 10, new]
    assert stream.status == 200
    wait_for(lambda: len(stream.bookmarks()) >= 2, timeout=10, message="a bookmark after the new incident")
    token = stream.bookmarks()[-1]
    later = [insert(url), insert(url, namespace="default")]
    resumed = Stream(server.url(WATCH + f"&limit=3&interval=200ms&resume={token}"))
    assert resumed.wait_incidents(2) == later
    third = insert(url)
    assert resumed.wait_incidents(3) == [*later, third]


def test_filters_apply_to_the_watch(served: tuple[str, Server]) -> None:
    url, server = served
    stream = Stream(server.url(WATCH + "&namespace=payments&limit=1&interval=200ms"))
    first = stream.wait_incidents(1)
    insert(url, namespace="default")
    wanted = insert(url)
    assert stream.wait_incidents(2) == [*first, wanted]


def test_invalid_watch_requests_are_problems(served: tuple[str, Server]) -> None:
    _, server = served
    cases = {
        WATCH.replace("true", "maybe"): ("invalid-parameter", "watch must be true or false, got 'maybe'"),
        WATCH + "&resume=forged": ("invalid-cursor", "resume: watch token was not issued by kds or was altered"),
        "/api/v1/incidents?resume=x": ("invalid-parameter", None),
        WATCH + "&interval=10ms": ("invalid-parameter", "interval must be at least 200ms, got '10ms'"),
        WATCH + "&offset=5": ("invalid-parameter", "a watch starts at the newest page; drop offset/cursor"),
        WATCH + "&limit=0": ("invalid-limit", None),
    }
    for path, (slug, detail) in cases.items():
        response = server.get(path)
        assert response.status_code == 400, path
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/" + slug), path
        if detail is not None:
            assert response.json()["detail"] == detail


def test_quiet_streams_get_bookmarks_and_the_maximum_is_enforced(database_url: str, tmp_path: Path) -> None:
    env = {"KDS_MAX_WATCHES": "2", "KDS_RESPONSE_TIMEOUT": "2"}  # bookmarks every second of silence
    with running(database_url, "--shutdown-delay", "0", log_path=tmp_path / "serve.log", env=env) as server:
        streams = [Stream(server.url(WATCH + "&interval=200ms")) for _ in range(2)]
        for stream in streams:
            wait_for(lambda s=stream: len(s.bookmarks()) >= 3, timeout=20, message="three bookmarks")
        refused = server.get(WATCH)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["detail"] == "this server has its maximum of 2 open watches"
        metrics = server.get("/metrics").text
        assert "datastorage_open_watches 2.0" in metrics


def test_a_watch_ends_cleanly_when_shutdown_drains_and_never_holds_it(database_url: str, tmp_path: Path) -> None:
    remote.seed(database_url, 3)
    options = ("--shutdown-delay", "1", "--drain-timeout", "30")
    server = start(database_url, *options, log_path=tmp_path / "serve.log")
    keep_alive = httpx.Client(timeout=30)  # holds its connection open after the stream, as a proxy does
    try:
        stream = Stream(server.url(WATCH + "&interval=200ms"), client=keep_alive)
        wait_for(lambda: stream.bookmarks(), timeout=10, message="the first bookmark")
        server.signal(signal.SIGTERM)
        assert stream.ended.wait(timeout=10)
        assert server.wait(timeout=25) == 0
    finally:
        keep_alive.close()
        server.stop()
    assert stream.error is None
    assert stream.events[-1]["type"] == "bookmark"
    messages = [record.get("message") for record in server.log_records()]
    assert "watch ended: shutdown draining" in messages
    drained = next(r for r in server.log_records() if r.get("message", "").startswith("shutdown step 3/4"))
    assert drained["message"] == "shutdown step 3/4: drained"
    assert drained["duration_s"] < 5  # the drain did not wait for its 30 s timeout


# -- the CLI's remote watch ---------------------------------------------------------------------------
class Watcher:
    """``kds incidents list --watch`` as a subprocess, its stdout lines collected in a thread."""

    def __init__(self, *args: str) -> None:
        command = [sys.executable, "-m", "kds", "incidents", "list", "--watch", "--interval", "200ms", *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=remote.clean_env())
        self.lines: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_lines(self, count: int) -> list[bytes]:
        return wait_for(lambda: len(self.lines) >= count and list(self.lines), timeout=30, message=f"{count} lines")

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=20)
        self.reader.join(timeout=5)
        assert self.process.stderr is not None
        return code, self.process.stderr.read().decode()


def test_remote_watch_prints_what_the_direct_watch_prints(served: tuple[str, Server]) -> None:
    url, server = served
    direct = Watcher("-o", "ndjson", "-l", "4", "--database-url", url)
    through = Watcher("-o", "ndjson", "-l", "4", "--server-url", server.base_url)
    try:
        assert direct.wait_lines(4) == through.wait_lines(4)
        insert(url)
        insert(url, namespace="支付服务", alert_name="ระบบ🔥ล่ม")
        assert direct.wait_lines(6) == through.wait_lines(6)
    finally:
        results = [direct.stop(), through.stop()]
    assert results == [(0, ""), (0, "")]
    assert direct.lines == through.lines
    assert [orjson.loads(line)["id"] for line in through.lines] == [7, 8, 9, 10, 11, 12]


def test_remote_watch_survives_a_server_restart_without_gap_or_repeat(database_url: str, tmp_path: Path) -> None:
    remote.seed(database_url, 2)
    server = start(database_url, "--shutdown-delay", "0", log_path=tmp_path / "a.log")
    watcher = Watcher("-o", "ndjson", "--server-url", server.base_url)
    try:
        watcher.wait_lines(2)
        first = insert(database_url)
        watcher.wait_lines(3)
        server.stop()
        while_down = insert(database_url)
        server = start(database_url, "--shutdown-delay", "0", port=server.port, log_path=tmp_path / "b.log")
        after = insert(database_url)
        watcher.wait_lines(5)
    finally:
        code, stderr = watcher.stop()
        server.stop()
    assert code == 0
    assert [orjson.loads(line)["id"] for line in watcher.lines] == [1, 2, first, while_down, after]
    assert stderr == f"kds: lost the server {server.base_url}; retrying (the watch resumes where it stopped)\n"


def test_remote_watch_of_an_unreachable_server_is_an_error() -> None:
    from tests.serving import free_port

    port = free_port()
    done = remote.kds("incidents", "list", "--watch", "--server-url", f"http://127.0.0.1:{port}", timeout=30)
    assert (done.returncode, done.stdout) == (1, b"")
    assert done.stderr.decode() == (
        f"server-unreachable: connection to 127.0.0.1:{port} refused; is kds serve running at http://127.0.0.1:{port}?\n"
    )
