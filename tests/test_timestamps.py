"""Every timestamp kds writes is RFC 3339 with a four-digit year (docs/clients.md, "Timestamps").

Stored values can come from an existing deployment's data, so the years that break naive
formatting (1, 999: ``strftime("%Y")`` does not pad them on Linux; 1969/1970 around the epoch;
9999, the last four-digit year) are inserted with plain SQL and read back through every front end:
the CLI's table, wide, csv, yaml, json and ndjson output, ``incidents get``, and the API's list,
export and detail documents on a real ``kds serve``. The formatters themselves are checked for
agreement (Python and SQL) and for totality (no value makes them raise).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import psycopg
import pytest
import yaml
from psycopg import sql
from typer.testing import CliRunner

from kds import timefmt
from kds.cli.app import app
from tests import factories
from tests.pg import PgCluster
from tests.serving import Server, running

runner = CliRunner()

# (year, the instant stored, its RFC 3339 text as kds writes it)
YEARS: list[tuple[int, datetime, str]] = [
    (1, datetime(1, 1, 1, 0, 0, 0, 5, tzinfo=UTC), "0001-01-01T00:00:00.000005Z"),
    (999, datetime(999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), "0999-12-31T23:59:59.999999Z"),
    (1969, datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC), "1969-12-31T23:59:59.500000Z"),
    (1970, datetime(1970, 1, 1, tzinfo=UTC), "1970-01-01T00:00:00.000000Z"),
    (9999, datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), "9999-12-31T23:59:59.999999Z"),
]
PLUS_ONE = timezone(timedelta(hours=1))
MINUS_ONE = timezone(-timedelta(hours=1))


# --- the formatters -------------------------------------------------------------------------------


@pytest.mark.parametrize(("year", "value", "text"), YEARS, ids=[str(y[0]) for y in YEARS])
def test_python_formatter_pads_the_year_to_four_digits(year: int, value: datetime, text: str) -> None:
    assert timefmt.rfc3339(value) == text
    assert timefmt.rfc3339(value.replace(tzinfo=None)) == text  # naive values are UTC
    assert timefmt.rfc3339(value, fraction_digits=3) == text[:23] + "Z"
    assert timefmt.rfc3339(value, fraction_digits=0) == text[:19] + "Z"


def test_python_formatter_is_total_at_the_edges_of_datetime() -> None:
    # Go's zero time one hour east of UTC is in year 0: astimezone(UTC) overflows on it.
    assert timefmt.rfc3339(datetime(1, 1, 1, tzinfo=PLUS_ONE)) == "0000-12-31T23:00:00.000000Z"
    assert timefmt.rfc3339(datetime.min.replace(tzinfo=timezone(timedelta(hours=23, minutes=59)))) == (
        "0000-12-31T00:01:00.000000Z"
    )
    assert timefmt.rfc3339(datetime(9999, 12, 31, 23, 30, tzinfo=MINUS_ONE)) == "+10000-01-01T00:30:00.000000Z"
    assert timefmt.rfc3339(datetime(2026, 3, 1, 0, 30, tzinfo=PLUS_ONE)) == "2026-02-28T23:30:00.000000Z"
    assert timefmt.rfc3339(datetime(2024, 3, 1, 0, 30, tzinfo=PLUS_ONE)) == "2024-02-29T23:30:00.000000Z"


def test_log_times_have_four_digit_years() -> None:
    """The server's log formatter; before kds.timefmt it wrote year 1 as ``1-01-01T...``."""
    from kds.server.http import logs

    year_one = datetime(1, 1, 1, tzinfo=UTC).timestamp()
    assert timefmt.from_epoch(year_one) == "0001-01-01T00:00:00.000Z"
    record = logging.LogRecord("kds.server", logging.INFO, __file__, 1, "hello", None, None)
    record.created = year_one + 0.25
    assert orjson.loads(logs.JsonFormatter().format(record))["time"] == "0001-01-01T00:00:00.250Z"
    record.created = datetime(2026, 12, 1, 4, 5, 6, 789_000, tzinfo=UTC).timestamp()
    assert orjson.loads(logs.JsonFormatter().format(record))["time"] == "2026-12-01T04:05:06.789Z"


def _sql_text(conn: psycopg.Connection, literal: str, fraction_digits: int = 6) -> str | None:
    value = sql.SQL("{}::timestamptz").format(sql.Literal(literal))
    query = sql.SQL("SELECT {}").format(timefmt.sql_rfc3339(value, fraction_digits=fraction_digits))
    return conn.execute(query).fetchone()[0]


def test_sql_formatter_agrees_with_python_and_is_total(db: psycopg.Connection) -> None:
    values = [value for _, value, _ in YEARS] + [
        datetime(1, 1, 1, tzinfo=PLUS_ONE),
        datetime(9999, 12, 31, 23, 30, tzinfo=MINUS_ONE),
        datetime(2026, 2, 28, 23, 30, 0, 123_456, tzinfo=MINUS_ONE),
    ]
    for value in values:
        stored = f"{value.replace(tzinfo=None).isoformat()}{value.strftime('%z')[:3]}:00"
        for digits in (0, 3, 6):
            assert _sql_text(db, stored, digits) == timefmt.rfc3339(value, fraction_digits=digits), stored
    # Values PostgreSQL holds and Python cannot: still text, never an error.
    assert _sql_text(db, "0002-06-01 12:00:00+00 BC") == "-0001-06-01T12:00:00.000000Z"
    assert _sql_text(db, "0001-12-31 23:00:00+00 BC") == "0000-12-31T23:00:00.000000Z"
    assert _sql_text(db, "12345-01-01 00:00:00+00") == "+12345-01-01T00:00:00.000000Z"
    assert _sql_text(db, "infinity") is None
    db.execute("SET TIME ZONE 'Asia/Kolkata'")  # the session time zone never shows
    assert _sql_text(db, "1970-01-01 05:30:00+05:30") == "1970-01-01T00:00:00.000000Z"


# --- incidents from an existing deployment, through the CLI and the API ------------------------------

DETAIL_TIMES = ("alert_firing_time", "execution_start_time", "execution_end_time")


@pytest.fixture(scope="module")
def old_rows(pg_cluster: PgCluster) -> Iterator[tuple[str, dict[int, str]]]:
    """One incident per year of YEARS, every timestamp column set to it; the URL and {id: text}.

    The database's time zone is east of UTC (as an existing deployment's may be): 9999-12-31T23:59Z
    is year 10000 there, and must still come out as the UTC instant.
    """
    with pg_cluster.fresh_database() as url:
        texts: dict[int, str] = {}
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET timezone = 'Asia/Tokyo'").format(sql.Identifier(conn.info.dbname))
            )
            for year, value, text in YEARS:
                times = dict.fromkeys(DETAIL_TIMES, value)
                incident_id = factories.incident(conn, resource_name=f"y{year}", action_timestamp=value, **times)
                texts[incident_id] = text
        yield url, texts


def _newest_first(texts: dict[int, str]) -> list[tuple[int, str]]:
    return sorted(texts.items(), key=lambda item: item[1].replace("+", "~"), reverse=True)


def _cli(*args: str) -> str:
    result = runner.invoke(app, ["incidents", *args])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_cli_writes_four_digit_years_in_every_format(old_rows: tuple[str, dict[int, str]]) -> None:
    url, texts = old_rows
    expected = _newest_first(texts)
    document = orjson.loads(_cli("list", "--database-url", url, "-o", "json"))
    assert [(i["id"], i["action_timestamp"]) for i in document["data"]] == expected
    lines = _cli("list", "--database-url", url, "-o", "ndjson").splitlines()
    assert [(orjson.loads(line)["id"], orjson.loads(line)["action_timestamp"]) for line in lines] == expected
    everything = orjson.loads(_cli("list", "--database-url", url, "--all", "-o", "json"))
    assert [(i["id"], i["action_timestamp"]) for i in everything] == expected
    listed = yaml.safe_load(_cli("list", "--database-url", url, "-o", "yaml"))
    assert [(i["id"], i["action_timestamp"]) for i in listed["data"]] == expected  # strings, not YAML dates
    rows = list(csv.DictReader(io.StringIO(_cli("list", "--database-url", url, "-o", "csv"))))
    assert [(int(r["id"]), r["action_timestamp"]) for r in rows] == expected
    wide = _cli("list", "--database-url", url, "-o", "wide")
    table = _cli("list", "--database-url", url)
    for _, text in expected:
        assert text[:10] in wide  # the absolute TIME column, UTC
    table_lines = table.splitlines()
    assert len(table_lines) == len(expected) + 1  # header, then one line per incident (kubectl style: no rule)
    assert table_lines[1].split()[:2] == [str(expected[0][0]), "<invalid>"]  # year 9999: in the future, as kubectl
    for incident_id, text in expected:
        detail = orjson.loads(_cli("get", str(incident_id), "--database-url", url, "-o", "json"))
        assert [detail["action_timestamp"], *(detail[name] for name in DETAIL_TIMES)] == [text] * 4
        as_yaml = yaml.safe_load(_cli("get", str(incident_id), "--database-url", url, "-o", "yaml"))
        assert [as_yaml[name] for name in DETAIL_TIMES] == [text] * 3
        lines = _cli("get", str(incident_id), "--database-url", url).splitlines()
        shown = {line.split()[0]: line.split()[-1] for line in lines if line.split()[0] in DETAIL_TIMES}
        assert shown == dict.fromkeys(DETAIL_TIMES, text)


def test_cli_pages_through_the_edge_years_with_cursors(old_rows: tuple[str, dict[int, str]]) -> None:
    url, texts = old_rows
    seen: list[tuple[int, str]] = []
    cursor: list[str] = []
    while True:
        page = orjson.loads(_cli("list", "--database-url", url, "-o", "json", "-l", "1", *cursor))
        seen += [(i["id"], i["action_timestamp"]) for i in page["data"]]
        if page["pagination"]["next_cursor"] is None:
            break
        cursor = ["--cursor", page["pagination"]["next_cursor"]]
    assert seen == _newest_first(texts)


@pytest.fixture(scope="module")
def old_server(old_rows: tuple[str, dict[int, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("timestamps") / "serve.log"
    with running(old_rows[0], "--pool-size", "2", "--shutdown-delay", "0", log_path=log) as served:
        yield served


def test_api_writes_four_digit_years_in_list_export_and_detail(
    old_rows: tuple[str, dict[int, str]], old_server: Server
) -> None:
    _, texts = old_rows
    expected = _newest_first(texts)
    with httpx.Client(base_url=old_server.base_url, timeout=30) as client:
        seen: list[tuple[int, str]] = []
        params: dict[str, Any] = {"limit": 1}
        while True:
            page = client.get("/api/v1/incidents", params=params)
            assert page.status_code == 200, page.text
            seen += [(i["id"], i["action_timestamp"]) for i in page.json()["data"]]
            if page.json()["pagination"]["next_cursor"] is None:
                break
            params = {"limit": 1, "cursor": page.json()["pagination"]["next_cursor"]}
        assert seen == expected
        export = client.get("/api/v1/incidents", headers={"Accept": "application/x-ndjson"})
        assert [(d["id"], d["action_timestamp"]) for d in map(orjson.loads, export.text.splitlines())] == expected
        for incident_id, text in expected:
            detail = client.get(f"/api/v1/incidents/{incident_id}").json()
            assert [detail["action_timestamp"], *(detail[name] for name in DETAIL_TIMES)] == [text] * 4
    times = [record["time"] for record in old_server.log_records() if "time" in record]
    assert times and all(len(t) == 24 and t[4] == "-" and t.endswith("Z") for t in times)


def test_api_retry_of_a_stored_audit_record_has_four_digit_years(
    old_rows: tuple[str, dict[int, str]], old_server: Server
) -> None:
    """Audit rows an existing deployment holds, created in the edge years, answered on a safe retry."""
    url, _ = old_rows
    body = {
        "remediation_id": "rem-old",
        "recipient": "oncall@example.com",
        "channel": "email",
        "message_summary": "restarted",
        "status": "sent",
        "sent_at": "1970-01-01T00:00:00Z",
    }
    with psycopg.connect(url, autocommit=True) as conn:
        for year, value, _ in YEARS:
            conn.execute(
                "INSERT INTO notification_audit (remediation_id, notification_id, recipient, channel,"
                " message_summary, status, sent_at, created_at, updated_at)"
                " VALUES ('rem-old', %s, 'oncall@example.com', 'email', 'restarted', 'sent', %s, %s, %s)",
                (f"old-{year}", body["sent_at"], value, value),
            )
    with httpx.Client(base_url=old_server.base_url, timeout=30) as client:
        for year, _, text in YEARS:
            response = client.post("/api/v1/audit/notifications", json={**body, "notification_id": f"old-{year}"})
            assert response.status_code == 200, response.text
            record = response.json()
            assert (record["sent_at"], record["created_at"], record["updated_at"]) == (
                "1970-01-01T00:00:00.000000Z",
                text,
                text,
            )
