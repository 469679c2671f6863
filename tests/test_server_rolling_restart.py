"""A rolling restart behind HAProxy loses no request (docs/operations.md), on loopback, bounded in time.

HAProxy health-checks two ``kds serve`` instances on ``/health/ready`` (inter 1 s, fall 1, rise 1)
and is configured with ``retries 0``, so it never hides a failed request by retrying it. While a
client sends a steady stream of requests, each instance in turn gets SIGTERM, exits and is started
again on the same port; the next one is only stopped once HAProxy sees the new one up (what a
Deployment with ``maxUnavailable: 0`` does).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest

from tests import factories
from tests.serving import Server, free_port, start, wait_for

DELAY = 3.0
LOAD_SECONDS = 20.0
CLIENTS = 4
CONFIG = """\
global
    maxconn 512
defaults
    mode http
    retries 0
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend kds
    bind 127.0.0.1:{front}
    default_backend servers
backend servers
    balance roundrobin
    option httpchk GET /health/ready
    http-check expect status 200
    default-server inter 1s fall 1 rise 1
    server a 127.0.0.1:{a} check
    server b 127.0.0.1:{b} check
listen stats
    bind 127.0.0.1:{stats}
    stats enable
    stats uri /stats
"""


def _which_haproxy() -> str | None:
    # /usr/sbin is where the Debian package puts it, and not on a normal user's PATH
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")


def _install_haproxy() -> str | None:
    """The haproxy binary, installed with apt-get when missing; None with the reason logged by the caller."""
    found = _which_haproxy()
    if found or not shutil.which("apt-get") or os.geteuid() != 0:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "install", "-y", "-q", "haproxy"], ["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "haproxy"]):  # fmt: skip
        subprocess.run(command, capture_output=True, env=env, timeout=600, check=False)
        found = _which_haproxy()
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def haproxy_binary() -> str:
    binary = _install_haproxy()
    if binary is None:
        pytest.skip(
            "HAProxy is not installed and could not be installed with apt-get (needs root and the Debian mirror)"
        )
    return binary


class HAProxy:
    def __init__(self, binary: str, config: Path, stats_port: int, log: Path) -> None:
        check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        with log.open("ab") as out:
            self.process = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)  # fmt: skip
        self.stats_url = f"http://127.0.0.1:{stats_port}/stats;csv"

    def status(self, server: str) -> str:
        try:
            lines = httpx.get(self.stats_url, timeout=2).text.splitlines()
        except httpx.HTTPError:
            return "unknown"
        header = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            fields = dict(zip(header, line.split(","), strict=False))
            if fields.get("pxname") == "servers" and fields.get("svname") == server:
                return fields["status"]
        return "unknown"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class Load:
    """Clients sending requests through HAProxy until stopped; every answer is checked."""

    def __init__(self, url: str, expected: list[int]) -> None:
        self.url = url
        self.expected = expected
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.succeeded = 0
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                try:
                    response = client.get(self.url)
                    ok = response.status_code == 200 and [i["id"] for i in response.json()["data"]] == self.expected
                    problem = None if ok else f"{response.status_code} {response.text[:200]}"
                except (httpx.HTTPError, ValueError) as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                with self.lock:
                    if problem is None:
                        self.succeeded += 1
                    else:
                        self.failures.append(problem)
                self.stop.wait(0.005)  # pacing: a steady stream, not a benchmark

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


class Watchers:
    """Watch streams (``?watch=true``) through HAProxy, resumed after every end, as ``kds incidents list --watch``
    does; a stream that fails or is cut without its final bookmark is a failure. Every incident seen is recorded."""

    def __init__(self, url: str, count: int = 2) -> None:
        self.url = url
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.failures: list[str] = []
        self.seen: list[list[int]] = [[] for _ in range(count)]
        self.streams = [0] * count
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(count)]

    def _run(self, index: int) -> None:
        resume: str | None = None
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                ended_cleanly = False
                try:
                    url = f"{self.url}&resume={resume}" if resume else self.url
                    with client.stream("GET", url) as response:
                        if response.status_code != 200:
                            raise ValueError(f"{response.status_code} {response.read()[:200]!r}")
                        for line in response.iter_lines():
                            event = orjson.loads(line)
                            ended_cleanly = event["type"] == "bookmark"
                            if ended_cleanly:
                                resume = event["resume"]
                            else:
                                self.seen[index].append(event["incident"]["id"])
                            if self.stop.is_set():
                                return
                    if not ended_cleanly:
                        raise ValueError("the stream ended without its final bookmark")
                    self.streams[index] += 1
                except (httpx.HTTPError, ValueError) as exc:
                    with self.lock:
                        self.failures.append(f"watcher {index}: {type(exc).__name__}: {exc}")
                    self.stop.wait(0.2)

    def __enter__(self) -> Watchers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


@pytest.fixture
def rows(database_url: str) -> tuple[str, list[int]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        made = [factories.incident(conn, minutes=i, namespace="payments") for i in range(5)]
    return database_url, list(reversed(made))


def test_rolling_restart_behind_haproxy_fails_no_request(haproxy_binary: str, rows: tuple[str, list[int]],
                                                        tmp_path: Path) -> None:  # fmt: skip
    url, expected = rows
    ports = {"a": free_port(), "b": free_port()}
    front, stats = free_port(), free_port()
    options = ("--shutdown-delay", str(DELAY), "--drain-timeout", "10", "--pool-size", "2")
    with ThreadPoolExecutor(2) as pool:  # start both at once (start-up dominates this test's time)
        launched = {name: pool.submit(start, url, *options, port=port, log_path=tmp_path / f"{name}.log")
                    for name, port in ports.items()}  # fmt: skip
        servers: dict[str, Server] = {}
        try:
            servers.update({name: future.result() for name, future in launched.items()})
        except BaseException:
            for future in launched.values():
                if future.exception() is None:
                    future.result().stop()
            raise
    config = tmp_path / "haproxy.cfg"
    config.write_text(CONFIG.format(front=front, stats=stats, **ports))
    proxy = HAProxy(haproxy_binary, config, stats, tmp_path / "haproxy.log")
    timings: list[str] = []
    try:
        for name in ports:
            wait_for(lambda n=name: proxy.status(n) == "UP", timeout=15, interval=0.1, message=f"{name} UP")
        started = time.monotonic()
        watched = f"http://127.0.0.1:{front}/api/v1/incidents?watch=true&namespace=watched&limit=1&interval=200ms"
        inserted: list[int] = []
        with Load(f"http://127.0.0.1:{front}/api/v1/incidents?namespace=payments", expected) as load, \
                Watchers(watched) as watchers, psycopg.connect(url, autocommit=True) as conn:  # fmt: skip
            inserted.append(factories.incident(conn, namespace="watched"))
            wait_for(lambda: load.succeeded >= 20, timeout=15, message="the load to flow")
            wait_for(lambda: all(inserted[0] in seen for seen in watchers.seen), timeout=15, message="the watches")
            for name, port in ports.items():
                old = servers[name]
                signalled = time.monotonic()
                old.signal(signal.SIGTERM)
                inserted.append(factories.incident(conn, namespace="watched"))
                wait_for(lambda n=name: proxy.status(n).startswith("DOWN"), timeout=DELAY, interval=0.05,
                         message=f"HAProxy to take {name} out")  # fmt: skip
                down_after = time.monotonic() - signalled
                assert old.wait(timeout=DELAY + 15) == 0
                drained = next(r for r in old.log_records() if r.get("message", "").startswith("shutdown step 3/4"))
                assert drained["message"] == "shutdown step 3/4: drained"
                assert drained["duration_s"] < 10, "the open watch streams held the drain until its timeout"
                exited_after = time.monotonic() - signalled
                servers[name] = start(url, *options, port=port, log_path=tmp_path / f"{name}-2.log")
                wait_for(lambda n=name: proxy.status(n) == "UP", timeout=15, interval=0.05, message=f"{name} back")
                inserted.append(factories.incident(conn, namespace="watched"))
                timings.append(f"{name}: out of HAProxy after {down_after:.2f}s, exited 0 after {exited_after:.2f}s, "
                               f"back after {time.monotonic() - signalled:.2f}s")  # fmt: skip
            load.stop.wait(max(0.0, started + LOAD_SECONDS - time.monotonic()))  # keep the stream going ~20 s
            wait_for(lambda: all(seen[-1:] == inserted[-1:] for seen in watchers.seen), timeout=15,
                     message="the watches to see the last incident")  # fmt: skip
        elapsed = time.monotonic() - started
        print(f"\nrolling restart: {load.succeeded} requests succeeded, {len(load.failures)} failed in {elapsed:.1f}s")
        for line in timings:
            print("  " + line)
        print(f"watches: {watchers.streams} streams ended cleanly and were resumed; failures {watchers.failures}")
        assert load.failures == []
        assert watchers.failures == []
        assert watchers.seen == [inserted, inserted]  # every incident once: no gap, no repeat across restarts
        assert all(count >= 1 for count in watchers.streams)  # each watch was ended by a drain and resumed
        assert load.succeeded > 100
    finally:
        proxy.stop()
        for server in servers.values():
            server.stop()
