"""Limits, slow clients, response hardening and CORS on a real ``kds serve`` (docs/api.md, docs/security.md).

Raw sockets where the limit is in the protocol (a client library would refuse to send the request).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.serving import Server, running

PROBLEM = "https://api.kubernaut.io/problems/"
MAX_BODY = 1024  # small on purpose: the header limit must not follow it
REQUEST_TIMEOUT = 1.0
ORIGIN = "https://console.example.com"


@pytest.fixture(scope="module")
def server(pg_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("limits-log") / "serve.log"
    env = {
        "KDS_MAX_BODY_BYTES": str(MAX_BODY),
        "KDS_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
        "KDS_CORS_ORIGINS": f"{ORIGIN}, https://other.example.com",
    }
    with (
        pg_cluster.fresh_database() as url,
        running(url, "--shutdown-delay", "0", "--pool-size", "2", log_path=log, env=env) as served,
    ):
        yield served


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        yield http


class RawResponse:
    def __init__(self, data: bytes, closed: bool) -> None:
        head, _, self.body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines[1:])}
        self.closed = closed

    def problem(self, status: int, slug: str) -> dict[str, Any]:
        assert self.status == status, self.body
        assert self.headers["content-type"] == "application/problem+json"
        document = orjson.loads(self.body)
        assert document["type"] == PROBLEM + slug
        assert document["status"] == status
        assert document["request_id"] == self.headers["x-request-id"]
        return document


def exchange(server: Server, request: bytes, *, timeout: float = 10.0) -> RawResponse:
    """Send raw bytes; read one response; report whether the server then closed the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)  # the server may answer and close before taking everything
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(
            next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        )
        while len(body) < length:
            body += sock.recv(65536)
        sock.settimeout(2.0)
        try:
            closed = sock.recv(1) == b""
        except (TimeoutError, ConnectionResetError):
            closed = False
        return RawResponse(head + b"\r\n\r\n" + body, closed)


def get(target: bytes, headers: bytes = b"") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: kds\r\n" + headers + b"\r\n"


def test_request_target_over_8_kib_is_414(server: Server) -> None:
    fits = b"/api/v1/incidents?namespace=" + b"a" * (8192 - len(b"/api/v1/incidents?namespace="))
    response = exchange(server, get(fits))
    response.problem(400, "invalid-parameter")  # 8 KiB exactly passes the limit (then the 253-character rule)
    for size in (8193, 12_000, 40_000):
        target = b"/api/v1/incidents?namespace=" + b"a" * (size - len(b"/api/v1/incidents?namespace="))
        response = exchange(server, get(target))
        document = response.problem(414, "uri-too-long")
        assert document["detail"] == "the request target is longer than 8192 bytes"
        assert document["instance"] == "/api/v1/incidents"  # also when the head outgrows 16 KiB (40,000)
        assert response.closed


def test_header_section_over_16_kib_is_431_whatever_the_body_limit(server: Server) -> None:
    ten_kib = b"X-Padding: " + b"p" * 10_000 + b"\r\n"
    response = exchange(server, get(b"/api/v1/incidents", ten_kib))
    assert response.status == 200  # 10 KiB of headers pass although the body limit is 1 KiB
    many = b"".join(b"X-Padding-%d: " % i + b"p" * 1000 + b"\r\n" for i in range(17))
    response = exchange(server, get(b"/api/v1/incidents", many))
    document = response.problem(431, "headers-too-large")
    assert document["detail"] == "the request header section is larger than 16384 bytes"
    assert document["instance"] == "/api/v1/incidents"  # the request line arrives first (was "*")
    assert response.closed


@pytest.mark.parametrize("path", ["/api/v1/audit/notifications", "/api/v1/incidents", "/nowhere"])
def test_body_over_the_limit_is_413_on_any_path(server: Server, path: str) -> None:
    body = b'{"x": "' + b"a" * MAX_BODY + b'"}'
    request = (
        f"POST {path} HTTP/1.1\r\nHost: kds\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    response = exchange(server, request)
    document = response.problem(413, "payload-too-large")
    assert document["detail"] == f"the request body is larger than {MAX_BODY} bytes"
    assert response.closed


def test_chunked_body_over_the_limit_is_413(server: Server) -> None:
    chunk = b"a" * 700
    request = (
        b"POST /api/v1/audit/notifications HTTP/1.1\r\nHost: kds\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 2 + b"0\r\n\r\n"
    )
    response = exchange(server, request)
    response.problem(413, "payload-too-large")
    assert response.closed


def test_body_sent_too_slowly_is_408(server: Server) -> None:
    """Head in time, then half the declared body and silence: cut at the request timeout, not later."""
    started = time.monotonic()
    request = (
        b"POST /api/v1/audit/notifications HTTP/1.1\r\nHost: kds\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200\r\n\r\n" + b'{"remediation_id": "'
    )
    response = exchange(server, request)
    response.problem(408, "request-timeout")
    assert response.closed
    assert REQUEST_TIMEOUT <= time.monotonic() - started < REQUEST_TIMEOUT + 2.0


def test_slow_client_is_cut_at_the_request_timeout_while_others_are_served(
    client: httpx.Client, server: Server
) -> None:
    """Half a request, then silence; and a client dribbling one byte at a time (Sanic alone would wait)."""
    outcome: dict[str, Any] = {}

    def half_request() -> None:
        started = time.monotonic()
        response = exchange(server, b"GET /api/v1/incidents HTTP/1.1\r\nHost: kds\r\nX-Partial: ")
        outcome["half"] = (response, time.monotonic() - started)

    def dribble() -> None:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.settimeout(0.1)
            data = b""
            for byte in b"GET /api/v1/incidents HTTP/1.1\r\nHost: kds\r\nX-Slow: " + b"s" * 200:
                try:
                    sock.send(bytes([byte]))
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                data += chunk
                if b"}" in data:
                    break
            outcome["dribble"] = (data, time.monotonic() - started)

    threads = [threading.Thread(target=half_request), threading.Thread(target=dribble)]
    for thread in threads:
        thread.start()
    served = [client.get("/health/live").status_code for _ in range(5)]
    served.append(client.get("/api/v1/incidents").status_code)
    for thread in threads:
        thread.join(timeout=30)
    assert served == [200] * 6

    response, seconds = outcome["half"]
    document = response.problem(408, "request-timeout")
    assert document["detail"] == "the request was not received in time"
    assert response.closed
    assert REQUEST_TIMEOUT <= seconds < REQUEST_TIMEOUT + 2.0

    data, seconds = outcome["dribble"]
    assert data.startswith(b"HTTP/1.1 408 ")
    assert REQUEST_TIMEOUT <= seconds < REQUEST_TIMEOUT + 2.0


def test_silent_connection_is_closed_but_idle_keep_alive_is_not(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b""  # closed without a word
        # The server's clock starts at accept, a moment before the client's: allow 0.1 s earlier.
        assert REQUEST_TIMEOUT - 0.1 <= time.monotonic() - started < REQUEST_TIMEOUT + 2.0
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(get(b"/health/live"))
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        time.sleep(REQUEST_TIMEOUT * 2)  # idle between requests: the keep-alive timeout applies, not this one
        sock.sendall(get(b"/health/live"))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_hardening_headers_on_success_and_error(client: httpx.Client) -> None:
    for response in (client.get("/api/v1/incidents"), client.get("/nowhere"), client.get("/health/live")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "server" not in response.headers
        assert "x-powered-by" not in response.headers


def test_cors_echoes_only_listed_origins(client: httpx.Client) -> None:
    allowed = client.get("/api/v1/incidents", headers={"Origin": ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "Origin" in allowed.headers["vary"]
    assert "X-Request-ID" in allowed.headers["access-control-expose-headers"]
    other = client.get("/api/v1/incidents", headers={"Origin": "https://evil.example.com"})
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers
    error = client.get("/nowhere", headers={"Origin": ORIGIN})
    assert error.headers["access-control-allow-origin"] == ORIGIN


def test_cors_preflight(client: httpx.Client) -> None:
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization, content-type"}  # fmt: skip
    response = client.options("/api/v1/audit/notifications", headers=headers)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
    assert response.headers["access-control-allow-headers"] == "Authorization, Content-Type, Accept, X-Request-ID"
    assert response.headers["access-control-max-age"] == "600"
    refused = client.options("/api/v1/incidents", headers={**headers, "Origin": "https://evil.example.com"})
    assert refused.status_code == 405
    assert refused.headers["content-type"] == "application/problem+json"
    assert "access-control-allow-origin" not in refused.headers


def test_no_cors_and_no_warning_by_default(database_url: str, tmp_path: Any) -> None:
    """CORS is off unless configured; authentication off on loopback: no warning."""
    with running(database_url, "--shutdown-delay", "0", "--pool-size", "1", log_path=tmp_path / "s.log") as plain:
        response = plain.get("/api/v1/incidents", headers={"Origin": ORIGIN})
        assert response.status_code == 200
        assert not [name for name in response.headers if name.startswith("access-control-")]
        preflight = httpx.options(plain.url("/api/v1/incidents"),
                                  headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})  # fmt: skip
        assert preflight.status_code == 405
    assert "authentication is off" not in plain.log_text()
