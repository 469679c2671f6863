"""``GET /api/v1/incidents/summary`` and the new list filters over HTTP, in process (the app ``kds serve`` runs)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from kds.cli.app import app
from tests.inprocess import InProcessClient, serving_in_process
from tests.summary_data import BASE, hand_buckets, hand_groups, summary_db_fixture  # noqa: F401  (the module's data set)

PROBLEM = "https://api.kubernaut.io/problems/"
ROUTE = "/api/v1/incidents/summary"
DIMENSIONS = "namespace, severity, cluster, environment, action_type, alert_name, status, hour, day"


@pytest.fixture(scope="module")
def client(summary_db: str) -> Iterator[InProcessClient]:
    with serving_in_process(summary_db, pool_size=2) as served:
        yield served


def problem(response: httpx.Response, slug: str, instance: str = ROUTE) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["type"], body["status"], body["instance"]) == (PROBLEM + slug, 400, instance)
    assert body["errors"][0]["detail"] == body["detail"]
    return body


@pytest.mark.parametrize(
    ("params", "by", "flt", "limit"),
    [
        ({"by": "namespace"}, "namespace", {}, 20),
        ({"by": "severity", "status": "completed,failed"}, "severity", {"status": ["completed", "failed"]}, 20),
        ({"by": "status", "namespace": "payments", "limit": "2"}, "status", {"namespace": "payments"}, 2),
        ({"by": "alert_name", "severity": "critical,high"}, "alert_name", {"severity": ["critical", "high"]}, 20),
        ({"by": "cluster", "environment": "production,test"}, "cluster", {"environment": ["production", "test"]}, 1),
    ],
)
def test_summary_equals_the_hand_written_group_by(
    client: InProcessClient,
    summary_db: str,
    params: dict[str, str],
    by: str,
    flt: dict[str, Any],
    limit: int,
) -> None:
    params = {**params, "limit": str(limit)}
    response = client.get(ROUTE, params=params)
    assert (response.status_code, response.headers["content-type"]) == (200, "application/json")
    assert response.json() == hand_groups(summary_db, by, flt, limit)


def test_hourly_buckets_over_http(client: InProcessClient, summary_db: str) -> None:
    since, until = BASE - timedelta(hours=1), BASE + timedelta(hours=7)
    response = client.get(ROUTE, params={"by": "hour", "since": since.isoformat(), "until": until.isoformat()})
    expected = hand_buckets(
        summary_db, "hour", {"since": since, "until": until}, since.replace(tzinfo=None), until.replace(tzinfo=None)
    )
    assert response.json() == expected and len(expected["data"]) == 9


def test_the_cli_prints_the_api_document_byte_for_byte(client: InProcessClient, summary_db: str) -> None:
    query = {"by": "namespace", "severity": "high,critical", "limit": "3"}
    api = client.get(ROUTE, params=query).content
    cli = CliRunner().invoke(
        app, ["incidents", "summary", "--database-url", summary_db, "--by", "namespace", "-s", "high", "-s",
              "critical", "-l", "3", "-o", "json"],
    )  # fmt: skip
    assert cli.stdout.encode() == api + b"\n"


@pytest.mark.parametrize(
    ("query", "slug", "name", "detail"),
    [
        ("", "invalid-parameter", "by", f"by is required: one of {DIMENSIONS}"),
        ("by=pod", "invalid-parameter", "by", f"by must be one of {DIMENSIONS}, got 'pod'"),
        ("by=namespace&by=status", "invalid-parameter", "by", "by was given 2 times; give it once"),
        ("by=namespace&offset=0", "invalid-parameter", "offset",
         "offset does not apply to a summary (it has no pages); drop it"),
        ("by=namespace&cursor=abc", "invalid-parameter", "cursor",
         "cursor does not apply to a summary (it has no pages); drop it"),
        ("by=namespace&limit=0", "invalid-limit", "limit", "limit must be between 1 and 1000, got 0"),
        ("by=namespace&severity=high,loud", "invalid-severity", "severity",
         "severity must be one of info, warning, critical, high, medium, low, got 'loud'"),
        ("by=namespace&severity=high&severity=low", "invalid-parameter", "severity",
         "severity was given 2 times; give it once"),
        ("by=status&environment=qa", "invalid-environment", "environment",
         "environment must be one of production, staging, development, test, got 'qa'"),
        ("by=day&since=2023-01-01&until=2026-11-27T00:00:00Z", "invalid-time-range", "since",
         "a summary by day has at most 1000 buckets, got 1427 from 2023-01-01T00:00:00+00:00 to "
         "2026-11-27T00:00:00+00:00; narrow since/until"),
        ("by=status&namespace=a%00b", "invalid-parameter", "namespace",
         "namespace must not contain control characters, got 'a\\x00b'"),
        ("by=status&bogus=1", "invalid-parameter", "bogus", "unknown query parameter 'bogus'"),
    ],
)  # fmt: skip
def test_every_validation_slug_is_a_400_problem(
    client: InProcessClient, query: str, slug: str, name: str, detail: str
) -> None:
    body = problem(client.get(f"{ROUTE}?{query}"), slug)
    assert body["detail"] == detail
    assert body["errors"][0]["name"] == name


def test_summary_never_reaches_the_incident_id_route(client: InProcessClient) -> None:
    response = client.get(ROUTE, params={"by": "status"})
    assert response.status_code == 200 and set(response.json()) == {"by", "data", "total", "other"}
    assert client.get("/api/v1/incidents/summary2").json()["type"] == PROBLEM + "invalid-id"


def test_new_list_filters_over_http(client: InProcessClient, summary_db: str) -> None:
    listed = client.get(
        "/api/v1/incidents", params={"status": "failed,pending", "severity": "high,low", "limit": "1000"}
    )
    assert listed.status_code == 200
    document = listed.json()
    assert {(i["execution_status"], i["severity"]) for i in document["data"]} == {
        ("failed", "high"),
        ("pending", "low"),
    }
    counted = hand_groups(summary_db, "status", {"status": ["failed", "pending"], "severity": ["high", "low"]}, 20)[
        "total"
    ]
    assert document["pagination"]["total"] == counted == len(document["data"])
    problem(client.get("/api/v1/incidents?status=failed&status=pending"), "invalid-parameter", "/api/v1/incidents")
    body = problem(client.get(f"/api/v1/incidents?offset={2**63}"), "invalid-offset", "/api/v1/incidents")
    assert body["detail"] == f"offset must be an integer between 0 and {2**63 - 1}, got {2**63}"


def test_openapi_and_metrics_know_the_endpoint(client: InProcessClient) -> None:
    from openapi_spec_validator import validate

    document = client.get("/api/v1/openapi.json").json()
    validate(document)
    operation = document["paths"][ROUTE]["get"]
    assert operation["operationId"] == "summarizeIncidents"
    assert operation["security"] == [{}, {"bearerAuth": []}]
    assert set(operation["responses"]) >= {"200", "400", "401", "403", "503", "504"}
    names = [p["name"] for p in operation["parameters"]]
    assert names[0] == "by" and "status" in names and "offset" not in names and "cursor" not in names
    assert set(document["components"]["schemas"]["Summary"]["properties"]) == {"by", "data", "total", "other"}
    client.get(ROUTE, params={"by": "day"})
    metrics = client.get("/metrics").text
    assert re.search(r'^datastorage_query_total\{operation="summarize_incidents",status="success"\} [1-9]', metrics,
                     re.MULTILINE)  # fmt: skip
    assert f'route="{ROUTE}"' in metrics
