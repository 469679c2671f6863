"""``kds incidents`` through CliRunner against a real database with known rows."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import orjson
import psycopg
import pytest
import yaml
from typer.testing import CliRunner

from kds.cli.app import app
from tests import factories
from tests.factories import expected_ids, row_spec

runner = CliRunner()


@pytest.fixture
def dataset(database_url: str) -> tuple[str, list[dict[str, Any]]]:
    """40 incidents with known attributes; returns the URL and the rows (with their ids)."""
    rows = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        for i in range(40):
            spec = row_spec(i)
            spec["id"] = factories.incident(conn, resource_name=f"app-{i % 7}", **spec)
            spec["timestamp"] = factories.BASE_TIME + timedelta(minutes=spec["minutes"])
            rows.append(spec)
    return database_url, rows


def list_json(url: str, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["incidents", "list", "--database-url", url, "-o", "json", *args])
    assert result.exit_code == 0, result.stderr
    return orjson.loads(result.stdout)


def ids(document: dict[str, Any]) -> list[int]:
    return [incident["id"] for incident in document["data"]]


FILTERS = [
    (["-n", "payments"], {"namespace": "payments"}),
    (["--namespace", "支付服务"], {"namespace": "支付服务"}),
    (["-n", "طلبات-العملاء"], {"namespace": "طلبات-العملاء"}),
    (["-s", "HIGH"], {"alert_severity": "high"}),
    (["--cluster", "dev-c"], {"cluster_name": "dev-c"}),
    (["-e", "Staging"], {"environment": "staging"}),
    (["--action-type", "scale_deployment"], {"action_type": "scale_deployment"}),
    (["--alert-name", "ระบบ🔥ล่ม"], {"alert_name": "ระบบ🔥ล่ม"}),
    (["-n", "default", "-s", "critical"], {"namespace": "default", "alert_severity": "critical"}),
    (
        ["-n", "payments", "--cluster", "prod-b", "--action-type", "scale_deployment"],
        {"namespace": "payments", "cluster_name": "prod-b", "action_type": "scale_deployment"},
    ),
]


@pytest.mark.parametrize(("args", "where"), FILTERS)
def test_each_filter_returns_exactly_the_expected_rows(dataset, args: list[str], where: dict[str, Any]) -> None:
    url, rows = dataset
    document = list_json(url, *args, "--limit", "1000")
    expected = expected_ids(rows, **where)
    assert expected, "the dataset must contain matches"
    assert ids(document) == expected
    assert document["pagination"] == {
        "limit": 1000,
        "offset": 0,
        "total": len(expected),
        "has_more": False,
        "next_cursor": None,
    }


def test_default_order_and_cli_default_limit(dataset) -> None:
    url, rows = dataset
    document = list_json(url)
    assert ids(document) == expected_ids(rows)[:40]
    assert document["pagination"]["limit"] == 50
    # rows 10 and 11 share a timestamp: the higher id comes first
    order = ids(document)
    assert order.index(rows[11]["id"]) == order.index(rows[10]["id"]) - 1


def test_time_range_since_inclusive_until_exclusive(dataset) -> None:
    url, rows = dataset
    since = (factories.BASE_TIME + timedelta(minutes=100)).isoformat()
    until = (factories.BASE_TIME + timedelta(minutes=200)).isoformat()
    document = list_json(url, "--since", since, "--until", until, "-l", "1000")
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r["timestamp"], r["id"]), reverse=True)
                if 100 <= r["minutes"] < 200]  # fmt: skip
    assert ids(document) == expected
    assert rows[10]["id"] in ids(document) and rows[20]["id"] not in ids(document)


def test_total_counts_every_match_not_the_page(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        made = [factories.incident(conn, minutes=i, cluster_name="twenty-five") for i in range(25)]
        factories.incident(conn, minutes=100, cluster_name="other")
    document = list_json(database_url, "--cluster", "twenty-five", "--limit", "10")
    assert ids(document) == list(reversed(made))[:10]
    pagination = document["pagination"]
    assert (pagination["total"], pagination["has_more"], pagination["limit"]) == (25, True, 10)
    assert isinstance(pagination["next_cursor"], str)


def test_offset_and_cursor_paging_visit_every_row_once(dataset) -> None:
    url, rows = dataset
    everything = expected_ids(rows)
    by_offset: list[int] = []
    for offset in range(0, 40, 7):
        by_offset += ids(list_json(url, "-l", "7", "--offset", str(offset)))
    assert by_offset == everything

    by_cursor: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        args = ["-l", "7"] + (["--cursor", cursor] if cursor else [])
        document = list_json(url, *args)
        by_cursor += ids(document)
        assert document["pagination"]["total"] == 40
        pages += 1
        cursor = document["pagination"]["next_cursor"]
        if cursor is None:
            assert document["pagination"]["has_more"] is False
            break
    assert by_cursor == everything
    assert pages == 6


def test_cursor_with_other_filters_is_rejected(dataset) -> None:
    url, _ = dataset
    cursor = list_json(url, "-n", "payments", "-l", "2")["pagination"]["next_cursor"]
    result = runner.invoke(app, ["incidents", "list", "--database-url", url, "-n", "default", "--cursor", cursor])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "invalid-cursor: cursor was issued for different filters; repeat the same filters\n"


def test_all_ndjson_returns_every_row(database_url: str) -> None:
    from kds.db import seed

    with psycopg.connect(database_url, autocommit=True) as conn:
        seed.seed(conn, 6000)
        expected = {row[0] for row in conn.execute("SELECT id FROM resource_action_traces")}
    result = runner.invoke(app, ["incidents", "list", "--all", "-o", "ndjson", "--database-url", database_url])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 6000
    got = [orjson.loads(line)["id"] for line in lines]
    assert set(got) == expected and len(set(got)) == 6000


def test_all_json_is_one_array(dataset) -> None:
    url, rows = dataset
    result = runner.invoke(app, ["incidents", "list", "--all", "-o", "json", "-n", "payments", "--database-url", url])
    assert result.exit_code == 0, result.stderr
    assert [i["id"] for i in orjson.loads(result.stdout)] == expected_ids(rows, namespace="payments")


INJECTIONS = [
    "'; DROP TABLE resource_action_traces--",
    "' OR '1'='1",
    "test'; --",
    "' UNION SELECT * FROM users--",
]


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize("option", ["-n", "--cluster", "--action-type", "--alert-name"])
def test_injection_values_match_nothing_and_change_nothing(dataset, payload: str, option: str) -> None:
    url, _ = dataset
    document = list_json(url, option, payload)
    assert document == {
        "data": [],
        "pagination": {"limit": 50, "offset": 0, "total": 0, "has_more": False, "next_cursor": None},
    }
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM resource_action_traces").fetchone()[0] == 40


def test_no_incidents_found_is_success(dataset) -> None:
    url, _ = dataset
    result = runner.invoke(app, ["incidents", "list", "--database-url", url, "-n", "nowhere"])
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "no incidents found\n")


def test_every_format_carries_the_same_rows(dataset) -> None:
    url, rows = dataset
    expected = expected_ids(rows, namespace="payments")

    def run(fmt: str, *extra: str) -> str:
        result = runner.invoke(app, ["incidents", "list", "--database-url", url, "-n", "payments", "-o", fmt, *extra])
        assert result.exit_code == 0, result.stderr
        assert result.stderr == ""
        return result.stdout

    assert ids(orjson.loads(run("json"))) == expected
    as_yaml = yaml.safe_load(run("yaml"))
    assert ids(as_yaml) == expected
    assert as_yaml["pagination"]["total"] == len(expected)
    assert [orjson.loads(line)["id"] for line in run("ndjson").splitlines()] == expected
    parsed_csv = list(csv.DictReader(io.StringIO(run("csv"))))
    assert [int(r["id"]) for r in parsed_csv] == expected
    assert parsed_csv[0]["namespace"] == "payments"
    assert parsed_csv[0]["resource_kind"] == "Deployment"
    no_header = list(csv.reader(io.StringIO(run("csv", "--no-headers"))))
    assert [int(r[0]) for r in no_header] == expected
    table = run("table").splitlines()
    assert table[0].split()[:3] == ["ID", "AGE", "SEVERITY"]
    body = [line for line in table[1:] if line.strip() and not set(line.strip()) <= {"─", " "}]
    assert [int(line.split()[0]) for line in body] == expected
    wide = run("wide").splitlines()
    assert "CLUSTER" in wide[0].split() and "RESOURCE" in wide[0].split()
    headless = run("table", "--no-headers").splitlines()
    assert [int(line.split()[0]) for line in headless if line.strip()] == expected


def test_json_fields_and_types(dataset) -> None:
    url, rows = dataset
    first = list_json(url, "-l", "1")["data"][0]
    assert list(first) == [
        "id", "action_id", "correlation_id", "alert_name", "severity", "namespace", "cluster", "environment",
        "action_type", "execution_status", "action_timestamp", "resource", "model_used", "model_confidence",
        "effectiveness_score", "execution_duration_ms",
    ]  # fmt: skip
    newest = max(rows, key=lambda r: (r["timestamp"], r["id"]))
    assert first["id"] == newest["id"]
    assert first["action_timestamp"] == newest["timestamp"].strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    assert first["model_confidence"] == 0.9 and isinstance(first["model_confidence"], float)
    assert first["resource"] == {"kind": "Deployment", "name": f"app-{39 % 7}"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-l", "0"], "invalid-limit: limit must be between 1 and 1000, got 0\n"),
        (["-l", "abc"], "invalid-limit: limit must be an integer between 1 and 1000, got 'abc'\n"),
        (["--offset", "-1"], "invalid-offset: offset must be an integer between 0 and 9223372036854775807, got -1\n"),
        (
            ["-s", "urgent"],
            "invalid-severity: severity must be one of info, warning, critical, high, medium, low, got 'urgent'\n",
        ),
        (
            ["-e", "prod"],
            "invalid-environment: environment must be one of production, staging, development, test, got 'prod'\n",
        ),
        (
            ["--since", "soon"],
            "invalid-time-range: since must be an RFC 3339 timestamp or an age such as 30m, 6h, 7d, got 'soon'\n",
        ),
        (["--cursor", "forged"], "invalid-cursor: cursor was not issued by kds or was altered: got 'forged'\n"),
        (["-n", "a\x00b"], "invalid-parameter: namespace must not contain control characters, got 'a\\x00b'\n"),
    ],
)
def test_invalid_input_exits_2_with_the_slug(database_url: str, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["incidents", "list", "--database-url", database_url, *args])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == message


def test_unreachable_database_exits_1_with_one_line() -> None:
    result = runner.invoke(app, ["incidents", "list", "--database-url", "postgresql://kds@127.0.0.1:1/kds"])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "service-unavailable: cannot connect to kds@127.0.0.1:1/kds: connection refused\n"


def test_get_shows_detail_fields_as_objects(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        incident_id = factories.incident(
            conn,
            namespace="支付服务",
            alert_labels={"team": "payments", "emoji": "🔥"},
            alert_annotations={"summary": "memory high"},
            action_parameters={"replicas": 3},
            model_reasoning="because",
            alert_fingerprint="abc123",
        )
    result = runner.invoke(app, ["incidents", "get", str(incident_id), "-o", "json", "--database-url", database_url])
    assert result.exit_code == 0, result.stderr
    incident = orjson.loads(result.stdout)
    assert incident["id"] == incident_id
    assert incident["namespace"] == "支付服务"
    assert incident["alert_labels"] == {"team": "payments", "emoji": "🔥"}
    assert incident["alert_annotations"] == {"summary": "memory high"}
    assert incident["action_parameters"] == {"replicas": 3}
    assert (incident["model_reasoning"], incident["alert_fingerprint"]) == ("because", "abc123")
    assert incident["execution_error"] is None
    as_yaml = runner.invoke(app, ["incidents", "get", str(incident_id), "-o", "yaml", "--database-url", database_url])
    assert yaml.safe_load(as_yaml.stdout) == incident
    table = runner.invoke(app, ["incidents", "get", str(incident_id), "--database-url", database_url])
    assert table.stdout.splitlines()[0].split() == ["id", str(incident_id)]


def test_get_missing_and_invalid_ids(database_url: str) -> None:
    missing = runner.invoke(app, ["incidents", "get", "424242", "--database-url", database_url])
    assert (missing.exit_code, missing.stdout, missing.stderr) == (1, "", "not-found: incident 424242 does not exist\n")
    invalid = runner.invoke(app, ["incidents", "get", "abc", "--database-url", database_url])
    assert invalid.exit_code == 2
    assert invalid.stderr == (
        "invalid-id: incident id must be an integer between 1 and 9223372036854775807, got 'abc'\n"
    )


def test_cli_session_is_read_only(database_url: str) -> None:
    from kds.cli.common import session
    from kds.settings import load_settings

    with session(load_settings(database_url=database_url), read_only=True) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM resource_action_traces")
        conn.rollback()
        name = conn.execute("SHOW application_name").fetchone()[0]
        assert name == "kds-cli"


def test_statement_timeout_exits_1(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDS_STATEMENT_TIMEOUT", "200ms")
    with psycopg.connect(database_url) as locker:
        locker.execute("LOCK TABLE resource_action_traces IN ACCESS EXCLUSIVE MODE")
        result = runner.invoke(app, ["incidents", "list", "--database-url", database_url])
        locker.rollback()
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "query-timeout: the query took longer than the statement timeout\n"


def test_existing_deployment_never_migrated(empty_database_url: str) -> None:
    from tests.legacy_schema import LEGACY_SCHEMA

    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(LEGACY_SCHEMA)
        made = factories.incident(conn, minutes=24 * 60 * 20, namespace="legacy")  # 2026-11-21
    document = list_json(empty_database_url, "-n", "legacy")
    assert ids(document) == [made]
    detail = runner.invoke(app, ["incidents", "get", str(made), "-o", "json", "--database-url", empty_database_url])
    assert orjson.loads(detail.stdout)["namespace"] == "legacy"
