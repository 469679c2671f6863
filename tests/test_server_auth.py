"""Bearer-token authentication on a real ``kds serve`` (docs/security.md).

The tokens file is laid out as the kubelet mounts a Secret (``tokens -> ..data/tokens``), so the
rotation test swaps it exactly the way a Secret update does.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.secret_volume import SecretVolume
from tests.serving import Server, running, wait_for

PROBLEM = "https://api.kubernaut.io/problems/"
READER = "reader-0123456789abcdef"
PROMETHEUS = "prometheus-0123456789abcdef"
WRITER = "writer-0123456789abcdef"
ROTATED = "rotated-0123456789abcdef"
UNKNOWN = "nobody-0123456789abcdef"
ALL_TOKENS = (READER, PROMETHEUS, WRITER, ROTATED, UNKNOWN)
ROTATION_DEADLINE = 5.0


def tokens_file(*entries: tuple[str, str, str]) -> str:
    lines = ["# kds tokens (test)"]
    lines += [f"sha256:{hashlib.sha256(token.encode()).hexdigest()} {scopes} {name}" for token, scopes, name in entries]
    return "\n".join(lines) + "\n"


FIRST_VERSION = tokens_file(
    (READER, "incidents:read", "dashboards"),
    (PROMETHEUS, "metrics:read", "prometheus"),
    (WRITER, "audit:write,incidents:read", "notifier"),
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, slug: str, path: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document = response.json()
    assert document["type"] == PROBLEM + slug
    assert document["status"] == status
    assert document["instance"] == path
    assert document["request_id"] == response.headers["x-request-id"]
    return document


@pytest.fixture(scope="module")
def server(pg_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    secret = tmp_path_factory.mktemp("secret")
    volume = SecretVolume(secret)
    volume.publish(FIRST_VERSION)
    log = tmp_path_factory.mktemp("auth-log") / "serve.log"
    with (
        pg_cluster.fresh_database() as url,
        running(
            url, "--shutdown-delay", "0", log_path=log, workers=2, env={"KDS_AUTH_TOKENS_FILE": str(volume.path)}
        ) as served,
    ):
        served.volume = volume  # type: ignore[attr-defined]
        yield served


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        yield http


@pytest.mark.parametrize(
    ("path", "status"),
    [("/health/live", 200), ("/health/ready", 200), ("/health", 200), ("/api/v1/openapi.json", 200)],
)
def test_health_and_openapi_are_open(client: httpx.Client, path: str, status: int) -> None:
    assert client.get(path).status_code == status
    assert client.get(path, headers=bearer(UNKNOWN)).status_code == status


def test_missing_token_is_401_with_challenge(client: httpx.Client) -> None:
    response = client.get("/api/v1/incidents")
    document = assert_problem(response, 401, "unauthorized", "/api/v1/incidents")
    assert response.headers["www-authenticate"] == "Bearer"
    assert document["detail"] == "a bearer token is required"
    assert document["title"] == "Unauthorized"


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {UNKNOWN}", f"Bearer {READER}x", f"Basic {READER}", "Bearer", READER, f"Bearer  {READER[:-1]}"],
)
def test_wrong_token_is_401(client: httpx.Client, authorization: str) -> None:
    response = client.get("/api/v1/incidents", headers={"Authorization": authorization})
    document = assert_problem(response, 401, "unauthorized", "/api/v1/incidents")
    assert response.headers["www-authenticate"] == "Bearer"
    assert document["detail"] == "the bearer token is not valid"


def test_scheme_is_case_insensitive(client: httpx.Client) -> None:
    response = client.get("/api/v1/incidents", headers={"Authorization": f"bearer {READER}"})
    assert response.status_code == 200
    assert response.json()["data"] == []


def test_read_token_reads_incidents(client: httpx.Client) -> None:
    assert client.get("/api/v1/incidents", headers=bearer(READER)).status_code == 200
    assert_problem(client.get("/api/v1/incidents/42", headers=bearer(READER)), 404, "not-found", "/api/v1/incidents/42")
    assert_problem(client.get("/api/v1/incidents/42"), 401, "unauthorized", "/api/v1/incidents/42")


def test_read_only_token_cannot_write_audit_records(client: httpx.Client) -> None:
    body = {"remediation_id": "r", "notification_id": "n", "recipient": "x", "channel": "email",
            "message_summary": "m", "status": "sent", "sent_at": "2024-01-01T00:00:00Z"}  # fmt: skip
    path = "/api/v1/audit/notifications"
    response = client.post(path, json=body, headers=bearer(READER))
    document = assert_problem(response, 403, "forbidden", path)
    assert document["detail"] == "the token does not grant the scope audit:write"
    assert "www-authenticate" not in response.headers
    assert_problem(client.post(path, json=body), 401, "unauthorized", path)
    assert_problem(client.post(path, json=body, headers=bearer(PROMETHEUS)), 403, "forbidden", path)


def test_metrics_needs_metrics_scope(client: httpx.Client) -> None:
    assert_problem(client.get("/metrics"), 401, "unauthorized", "/metrics")
    document = assert_problem(client.get("/metrics", headers=bearer(READER)), 403, "forbidden", "/metrics")
    assert document["detail"] == "the token does not grant the scope metrics:read"
    response = client.get("/metrics", headers=bearer(PROMETHEUS))
    assert response.status_code == 200
    assert "http_requests_total" in response.text
    # the metrics token reads metrics only
    assert_problem(client.get("/api/v1/incidents", headers=bearer(PROMETHEUS)), 403, "forbidden", "/api/v1/incidents")


def test_unknown_paths_need_a_token_before_404_and_405(client: httpx.Client) -> None:
    assert_problem(client.get("/no/such/path"), 401, "unauthorized", "/no/such/path")
    assert_problem(client.get("/no/such/path", headers=bearer(READER)), 404, "not-found", "/no/such/path")
    assert_problem(client.delete("/api/v1/incidents"), 401, "unauthorized", "/api/v1/incidents")
    response = client.delete("/api/v1/incidents", headers=bearer(READER))
    assert_problem(response, 405, "method-not-allowed", "/api/v1/incidents")
    assert_problem(client.post("/health/live"), 405, "method-not-allowed", "/health/live")  # health stays open


def test_valid_token_then_limits_and_validation(client: httpx.Client) -> None:
    response = client.get("/api/v1/incidents?limit=0", headers=bearer(READER))
    assert_problem(response, 400, "invalid-limit", "/api/v1/incidents")


def test_rotated_secret_is_picked_up_without_restart_and_tokens_never_logged(server: Server) -> None:
    volume: SecretVolume = server.volume  # type: ignore[attr-defined]
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        assert http.get("/api/v1/incidents", headers=bearer(READER)).status_code == 200
        assert http.get("/api/v1/incidents", headers=bearer(ROTATED)).status_code == 401
        # a malformed update: logged, the tokens in force stay
        volume.publish(FIRST_VERSION + "sha256:0123 incidents:read broken\n")
        wait_for(lambda: "tokens file rejected" in server.log_text(), timeout=ROTATION_DEADLINE, message="rejection")
        assert http.get("/api/v1/incidents", headers=bearer(READER)).status_code == 200
        # the rotation: READER replaced by ROTATED
        volume.publish(tokens_file((ROTATED, "incidents:read", "dashboards"), (PROMETHEUS, "metrics:read", "prom")))
        published = time.monotonic()

        def rotated() -> bool:
            # two workers: every answer must agree, so ask several times
            statuses = {http.get("/api/v1/incidents", headers=bearer(ROTATED)).status_code for _ in range(4)}
            old = {http.get("/api/v1/incidents", headers=bearer(READER)).status_code for _ in range(4)}
            return statuses == {200} and old == {401}

        wait_for(rotated, timeout=ROTATION_DEADLINE, interval=0.1, message="the rotated token to be in force")
        print(f"rotated token in force after {time.monotonic() - published:.2f}s")
    log = server.log_text()
    assert "tokens file reloaded" in log
    assert "line 5: the first field must be" in log
    for token in ALL_TOKENS:
        assert token not in log
        assert token[: len(token) // 2] not in log


def run_serve(tmp_path: Path, env: dict[str, str], *args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    import os

    environment = {k: v for k, v in os.environ.items() if not k.startswith("KDS_")}
    environment.update(env)
    command = [sys.executable, "-m", "kds", "serve", "--host", "127.0.0.1", "--port", "0", "--database-url"]
    return subprocess.run(
        [*command, database_url, *args], env=environment, capture_output=True, text=True, timeout=60, check=False
    )


def test_missing_or_malformed_tokens_file_stops_the_start(tmp_path: Path, database_url: str) -> None:
    missing = tmp_path / "absent"
    done = run_serve(tmp_path, {"KDS_AUTH_TOKENS_FILE": str(missing)}, database_url=database_url)
    assert done.returncode == 1
    assert f"invalid-tokens-file: tokens file {missing} does not exist" in done.stderr
    malformed = tmp_path / "tokens"
    malformed.write_text(FIRST_VERSION + f"sha256:{'ab' * 32} incidents:read,root oops\n")
    done = run_serve(tmp_path, {"KDS_AUTH_TOKENS_FILE": str(malformed)}, database_url=database_url)
    assert done.returncode == 1
    assert (
        f"invalid-tokens-file: tokens file {malformed} line 5: unknown scope 'root' "
        "(scopes are incidents:read, audit:write, metrics:read)"
    ) in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_warning_once_when_auth_is_off_on_a_non_loopback_address(tmp_path: Path, database_url: str) -> None:
    """Two workers, one warning (the loopback case, without a warning, is in test_server_limits)."""
    from tests import serving

    # bound to every address; nothing but this test talks to it, over loopback
    port = serving.free_port()
    env = {"KDS_HOST": "0.0.0.0", "KDS_PORT": str(port), "KDS_DATABASE_URL": database_url, "KDS_WORKERS": "2",
           "KDS_SHUTDOWN_DELAY": "0"}  # fmt: skip
    server = serving.start(database_url, log_path=tmp_path / "any.log", env=env, port=port, workers=2, options=False)
    try:
        assert server.get("/health/live").status_code == 200
    finally:
        server.stop()
    warnings = [r for r in server.log_records() if r.get("message", "").startswith("authentication is off")]
    assert len(warnings) == 1
    assert warnings[0]["level"] == "warning"
    assert warnings[0]["host"] == "0.0.0.0"
