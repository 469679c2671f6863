"""Property-based fuzzing of ``kds serve`` from its own OpenAPI document (schemathesis, in-process).

A real server (authentication and CORS on, so their middleware is fuzzed too) on a database with a
few hundred incidents. Every documented operation gets generated requests, valid and invalid, with
a fixed seed (``derandomize``); each response must: not be a 5xx, have a documented status, content
type and headers, match its schema, reject schema-violating input with 4xx, and, when it is an
error, be ``application/problem+json`` with a problem ``type`` for its status.

``positive_data_acceptance`` is left out: some schema-valid inputs are invalid by rules a JSON
schema cannot express (``since`` after ``until``, a cursor kds did not sign), and the API answers
them 400 by design (docs/api.md).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.measurements import report
from tests.serving import Server, running

TOKEN = "fuzz-token-0123456789abcdef"
EXAMPLES_PER_OPERATION = 200
MINIMUM_REQUESTS = 500
PROBLEM = "https://api.kubernaut.io/problems/"
SENT: Counter[str] = Counter()


@pytest.fixture(scope="module")
def fuzz_server(pg_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from kds.db import seed

    directory = tmp_path_factory.mktemp("fuzz")
    tokens = directory / "tokens"
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    tokens.write_text(f"sha256:{digest} incidents:read,audit:write,metrics:read fuzzer\n")
    env = {"KDS_AUTH_TOKENS_FILE": str(tokens), "KDS_CORS_ORIGINS": "https://console.example.com"}
    with pg_cluster.fresh_database() as url:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            seed.seed(conn, 300)
        with running(url, "--shutdown-delay", "0", "--pool-size", "4", log_path=directory / "serve.log",
                     env=env) as served:  # fmt: skip
            yield served
            assert "Traceback" not in served.log_text()


@pytest.fixture
def api_schema(fuzz_server: Server) -> Any:
    schema = schemathesis.openapi.from_url(fuzz_server.url("/api/v1/openapi.json"))
    schema.config.update(base_url=fuzz_server.base_url)
    # a query string over 8 KiB is refused with 414 (docs/security.md): as much a rejection as a 400
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "414"]
    return schema


def errors_are_problems(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    """Every 4xx/5xx is application/problem+json with a type URI for its status."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type == "application/problem+json", f"{response.status_code} with {content_type!r}"
    document = orjson.loads(response.content)
    assert document["type"].startswith(PROBLEM), document
    assert document["status"] == response.status_code, document
    assert document["request_id"] == response.headers["x-request-id"][0], document
    return None


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,  # the same requests on every run
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case) -> None:
    SENT[case.operation.label] += 1
    if isinstance(case.query, dict) and "watch" in case.query:
        # a watch stream ends only when the server drains (tests/test_remote_watch.py covers it)
        case.query["watch"] = "false"
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN}"},
        additional_checks=[errors_are_problems],
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
        timeout=30,
    )


def test_fuzzing_sent_enough_requests(fuzz_server: Server) -> None:
    """Runs after the generated tests above (definition order): they sent at least 500 requests."""
    total = sum(SENT.values())
    per_operation = ", ".join(f"{label} {count}" for label, count in sorted(SENT.items()))
    report(f"schemathesis: {total} generated requests ({per_operation}); no 5xx, all conforming")
    assert total >= MINIMUM_REQUESTS
    assert httpx.get(fuzz_server.url("/health/ready"), timeout=10).status_code == 200
