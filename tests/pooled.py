"""Helpers of the PgBouncer tests (tests/test_pooler_*.py): the switch, CLI and validate-infra runs, expectations.

The topology itself (primary, PgBouncer, a seeded database per test) is :mod:`tests.topology_fixtures`.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from typer.testing import CliRunner

from kds.cli.app import app
from tests.serving import Server, running
from tests.topology import Primary
from tests.topology_fixtures import TopologyDatabase

runner = CliRunner()
POOLED = {"KDS_DATABASE_POOLER": "pgbouncer"}
PROBLEM = "https://api.kubernaut.io/problems/"


def kds(args: list[str], url: str, **env: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--database-url", url], env=env)
    return result.exit_code, result.stdout, result.stderr


def namespace_totals(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT rr.namespace, count(*) FROM resource_action_traces rat"
            " JOIN action_histories ah ON ah.id = rat.action_history_id"
            " JOIN resource_references rr ON rr.id = ah.resource_id GROUP BY rr.namespace"
        ).fetchall()
    return {namespace: total for namespace, total in rows if namespace is not None}


def newest_ids(url: str, count: int) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id FROM resource_action_traces ORDER BY action_timestamp DESC, id DESC LIMIT %s", (count,)
        ).fetchall()
    return [row[0] for row in rows]


def assert_problem(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == PROBLEM + slug


def empty_database(primary: Primary) -> str:
    name = f"kds_pooled_{time.monotonic_ns()}"
    with psycopg.connect(primary.url(), autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    return name


def serve_pooled(db: TopologyDatabase, tmp_path: Path, *args: str, **env: str) -> AbstractContextManager[Server]:
    return running(
        db.pooled_url,
        "--shutdown-delay",
        "0",
        *args,
        log_path=tmp_path / "serve.log",
        env={**POOLED, **env},
    )


def validate(url: str, *checks: str, **env: str) -> tuple[int, dict[str, dict[str, Any]]]:
    only = [arg for check in checks for arg in ("--only", check)]
    result = runner.invoke(app, ["validate-infra", "--database-url", url, "-o", "json", *only], env=env)
    document = orjson.loads(result.stdout)
    return result.exit_code, {check["id"]: check for check in document["checks"]}
