"""Helpers of the remote-mode tests: a dataset, the CLI as a subprocess, a TLS front, a token file."""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg

from tests import factories

NAMESPACES = ["default", "payments", "支付服务", "طلبات-العملاء"]
SEVERITIES = ["info", "warning", "critical", "high", "medium", "low"]
ENVIRONMENTS = ["production", "staging", "development", "test"]
STATUSES = ["completed", "failed", "pending"]


def seed(url: str, count: int = 60) -> list[int]:
    """``count`` incidents with varied attributes (Unicode included); their ids."""
    ids = []
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(count):
            ids.append(
                factories.incident(
                    conn,
                    minutes=7 * i,
                    namespace=NAMESPACES[i % 4],
                    resource_name=f"app-{i % 5}",
                    alert_severity=SEVERITIES[i % 6],
                    environment=ENVIRONMENTS[(i // 2) % 4],
                    execution_status=STATUSES[i % 3],
                    alert_name="ระบบ🔥ล่ม" if i % 5 == 0 else "HighMemoryUsage",
                    model_confidence=[0.9, 0.125, 0.333][i % 3],
                    effectiveness_score=None if i % 4 else 0.75,
                    alert_labels={"team": "sre", "n": i},
                )
            )
    return ids


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KDS_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1"})
    env.update(extra)
    return env


def kds(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, input_bytes: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the real ``kds`` entry point; stdout and stderr as bytes."""
    return subprocess.run(
        [sys.executable, "-m", "kds", *args],
        capture_output=True,
        env=env or clean_env(),
        timeout=timeout,
        check=False,
        input=input_bytes,
    )


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (an IP address SAN), made with ``cryptography``."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kds test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class TlsFront:
    """A TLS-terminating TCP relay on 127.0.0.1 in front of a plain-HTTP port (what an ingress does)."""

    def __init__(self, backend_port: int, cert: Path, key: Path) -> None:
        self.backend_port = backend_port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            secure = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            client.close()
            return
        backend = socket.create_connection(("127.0.0.1", self.backend_port))
        relay = threading.Thread(target=_pump, args=(backend, secure), daemon=True)
        relay.start()
        _pump(secure, backend)
        relay.join(timeout=5)

    def __enter__(self) -> TlsFront:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.closing.set()
        self.listener.close()


def _pump(source: socket.socket, target: socket.socket) -> None:
    with suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with suppress(OSError):
        target.shutdown(socket.SHUT_WR)


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung server): its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        for conn in accepted:
            conn.close()


def token_line(token: str, scopes: str, name: str = "") -> str:
    import hashlib

    return f"sha256:{hashlib.sha256(token.encode()).hexdigest()} {scopes} {name}".rstrip() + "\n"


def lines(data: bytes) -> list[Any]:
    import orjson

    return [orjson.loads(line) for line in data.splitlines() if line]


class Stub:
    """A local HTTP server answering from a script of (status, headers, body); records request paths.

    For what a real ``kds serve`` cannot be made to do on cue (a 503 exactly N times, a proxy's HTML error).
    """

    def __init__(self, script: list[tuple[int, dict[str, str], bytes]]) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.script = script
        self.requests: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                stub.requests.append(self.path)
                status, headers, body = stub.script[min(len(stub.requests), len(stub.script)) - 1]
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Stub:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
