"""The terminal table: kubectl's AGE, column priority on narrow terminals, display-width alignment, colour."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from kds.cli.app import app
from kds.cli.present.age import age, human_duration
from kds.cli.present.table import TableWriter, shorten
from tests import factories
from tests.terminals import kds_in_pty

runner = CliRunner()

MINUTE, HOUR, DAY = 60, 3600, 86400


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-2.0, "<invalid>"),
        (-1.5, "0s"),  # truncated toward zero, like Go's int(d.Seconds())
        (-1.0, "0s"),
        (0.0, "0s"),
        (0.9, "0s"),
        (1.0, "1s"),
        (45.0, "45s"),
        (70.0, "70s"),
        (119.9, "119s"),
        (120.0, "2m"),
        (121.0, "2m1s"),
        (150.0, "2m30s"),
        (190.0, "3m10s"),
        (599.0, "9m59s"),
        (600.0, "10m"),
        (601.0, "10m"),
        (70 * MINUTE, "70m"),
        (179 * MINUTE + 59, "179m"),
        (3 * HOUR, "3h"),
        (3 * HOUR + 15 * MINUTE, "3h15m"),
        (7 * HOUR + 59 * MINUTE + 59, "7h59m"),
        (8 * HOUR, "8h"),
        (8 * HOUR + 30 * MINUTE, "8h"),
        (47 * HOUR + 59 * MINUTE, "47h"),
        (48 * HOUR, "2d"),
        (49 * HOUR, "2d1h"),
        (2 * DAY + 3 * HOUR, "2d3h"),
        (6 * DAY, "6d"),
        (7 * DAY + 23 * HOUR, "7d23h"),
        (8 * DAY, "8d"),
        (8 * DAY + 2 * HOUR, "8d"),
        (367 * DAY, "367d"),
        (729 * DAY + 23 * HOUR, "729d"),
        (730 * DAY, "2y"),
        (730 * DAY + 25 * HOUR, "2y1d"),
        (8 * 365 * DAY - 1, "7y364d"),
        (8 * 365 * DAY + 2 * HOUR, "8y"),
        (20 * 365 * DAY, "20y"),
    ],
)
def test_age_follows_kubectl_human_duration(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_age_of_a_document_timestamp() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert age("2026-12-01T11:56:30.000000Z", now) == "3m30s"
    assert age("2026-11-28T09:00:00.000000Z", now) == "3d3h"
    assert age(None, now) == ""


@pytest.mark.parametrize(
    ("text", "width", "expected"),
    [
        ("HighMemoryUsage", 15, "HighMemoryUsage"),
        ("HighMemoryUsage", 8, "HighMem…"),
        ("内存使用率过高", 7, "内存使…"),  # each ideograph takes two cells
        ("内存使用率过高", 8, "内存使…"),  # never half an ideograph
        ("Latency🔥Spike", 9, "Latency…"),
        ("Latency🔥Spike", 10, "Latency🔥…"),
        ("หน่วยความจำสูง", 12, "หน่วยความจำสูง"),  # 14 code points, 12 cells: combining marks take none
        ("หน่วยความจำสูง", 6, "หน่วยค…"),
        ("หน่วยความจำสูง", 3, "หน่…"),  # the tone mark stays with its consonant
    ],
)
def test_shorten_counts_display_cells(text: str, width: int, expected: str) -> None:
    assert shorten(text, width) == expected
    assert cell_len(shorten(text, width)) <= width


def _doc(i: int, namespace: str, alert: str, *, minutes: int = 5, severity: str = "high") -> dict[str, Any]:
    stamp = (datetime.now(UTC) - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    return {
        "id": i,
        "alert_name": alert,
        "severity": severity,
        "namespace": namespace,
        "cluster": "prod-eu",
        "environment": "production",
        "action_type": "restart_pod",
        "execution_status": "completed",
        "action_timestamp": stamp,
        "resource": {"kind": "Deployment", "name": "web"},
        "model_used": "gpt-4o",
        "model_confidence": 0.9,
    }


def _starts(lines: list[str], values: list[str]) -> set[int]:
    """The display column at which each line's value starts."""
    return {cell_len(line[: line.index(value)]) for line, value in zip(lines, values, strict=True)}


def test_columns_line_up_by_display_width_for_cjk_thai_and_emoji() -> None:
    rows = [
        _doc(1, "default", "HighMemoryUsage"),
        _doc(22, "支付服务", "内存使用率过高"),
        _doc(333, "ระบบชำระเงิน", "หน่วยความจำสูง"),
        _doc(4444, "rocket-🚀", "Latency🔥Spike"),
    ]
    out = io.StringIO()
    TableWriter(out, wide=False, headers=True, width=None, colour=False).write(rows)
    lines = out.getvalue().splitlines()
    assert len(lines) == 5
    for column in ("SEVERITY", "NAMESPACE", "ALERT", "ACTION", "STATUS"):
        header_at = cell_len(lines[0][: lines[0].index(column)])
        values = [{"SEVERITY": "high", "NAMESPACE": r["namespace"], "ALERT": r["alert_name"]}.get(column) for r in rows]
        values = [v or {"ACTION": "restart_pod", "STATUS": "completed"}[column] for v in values]
        assert _starts(lines[1:], values) == {header_at}, column


def test_a_streamed_table_shortens_later_rows_to_the_first_page_widths() -> None:
    out = io.StringIO()
    writer = TableWriter(out, wide=False, headers=True, width=100, colour=False, streaming=True)
    writer.write([_doc(1, "default", "Short")])
    writer.write([_doc(2, "default", "A" * 60)])
    header, _, later = out.getvalue().splitlines()
    assert later.split()[4] == "A" * 27 + "…"  # ALERT keeps the width of the first page (28 cells)
    assert len({cell_len(header[: header.index("ACTION")]), later.index("restart_pod")}) == 1
    wide = io.StringIO()
    writer = TableWriter(wide, wide=True, headers=False, width=100, colour=False, streaming=True)
    writer.write([_doc(1, "default", "Short")])
    writer.write([_doc(2, "default", "A" * 60)])
    assert "A" * 60 in wide.getvalue()  # wide never shortens


LONG_NAMESPACE = "payments-processing-eu-west-01"  # 30 characters: never cut
LONG_ALERT = "KubeDeploymentReplicasMismatchCriticalForTooLongInProduction"


@pytest.fixture
def terminal_rows(database_url: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    specs = [
        dict(namespace=LONG_NAMESPACE, alert_name=LONG_ALERT, alert_severity="critical", seconds=45),
        dict(namespace="支付服务", alert_name="内存使用率过高", alert_severity="high", seconds=3 * HOUR + 15 * MINUTE),
        dict(namespace="ระบบชำระเงิน", alert_name="หน่วยความจำสูง", alert_severity="info", seconds=2 * DAY + 3 * HOUR),
        dict(namespace="rocket-🚀", alert_name="Latency🔥Spike", alert_severity="low", seconds=6 * DAY),
    ]
    rows = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        for i, spec in enumerate(specs):
            seconds = spec.pop("seconds")
            stamp = now - timedelta(seconds=seconds)
            incident_id = factories.incident(
                conn,
                resource_name=f"web-{i}",
                action_timestamp=stamp,
                action_type="increase_memory_limit",
                execution_status="rolled_back",
                **spec,
            )
            rows.append({**spec, "id": incident_id, "seconds": seconds})
    return rows


def _ages_near(seconds: int) -> set[str]:
    """What AGE may show a few seconds after the rows were written (the test takes time)."""
    return {human_duration(seconds + delay) for delay in range(0, 30)}


def _body(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("columns", [80, 200])
def test_table_in_a_real_terminal(database_url: str, terminal_rows: list[dict[str, Any]], columns: int) -> None:
    ran = kds_in_pty(["incidents", "list", "--database-url", database_url], columns=columns)
    assert ran.returncode == 0, ran.piped
    lines = _body(ran.plain())
    assert all(cell_len(line) <= columns for line in lines), [cell_len(line) for line in lines]
    header = lines[0].split()
    if columns == 80:
        assert header == ["ID", "AGE", "SEVERITY", "NAMESPACE", "ALERT"]  # STATUS, then ACTION dropped
    else:
        assert header == ["ID", "AGE", "SEVERITY", "NAMESPACE", "ALERT", "ACTION", "STATUS"]
    assert len(lines) == 1 + len(terminal_rows)
    by_id = {int(line.split()[0]): line for line in lines[1:]}
    assert set(by_id) == {row["id"] for row in terminal_rows}
    for row in terminal_rows:
        fields = by_id[row["id"]].split("   ")
        cells = [cell.strip() for cell in fields if cell.strip()]
        assert cells[1] in _ages_near(row["seconds"])
        assert cells[2] == row["alert_severity"]
        assert cells[3] == row["namespace"]  # never cut, 30 characters included
    long_line = by_id[terminal_rows[0]["id"]]
    if columns == 80:
        assert LONG_ALERT not in long_line
        assert long_line.endswith("…")
        assert cell_len(long_line) == 80  # ALERT takes what is left
        assert "内存使用率过高" in ran.plain()  # short alerts stay whole
    else:
        assert LONG_ALERT in long_line
        assert "…" not in ran.plain()
        assert long_line.split()[-2:] == ["increase_memory_limit", "rolled_back"]
    assert "\x1b[" in ran.terminal  # severity coloured on a terminal


def test_wide_in_a_narrow_terminal_never_shortens(database_url: str, terminal_rows: list[dict[str, Any]]) -> None:
    ran = kds_in_pty(["incidents", "list", "--database-url", database_url, "-o", "wide"], columns=80)
    assert ran.returncode == 0, ran.piped
    text = ran.plain()
    assert "…" not in text
    lines = _body(text)
    assert lines[0].split() == [
        "ID", "AGE", "SEVERITY", "NAMESPACE", "ALERT", "ACTION", "STATUS",
        "TIME", "CLUSTER", "ENVIRONMENT", "RESOURCE", "MODEL", "CONFIDENCE",
    ]  # fmt: skip
    assert LONG_ALERT in text
    first = next(line for line in lines if LONG_ALERT in line)
    stamp = first.split()[7]
    assert len(stamp) == 20 and stamp.endswith("Z") and stamp[:4].isdigit()  # UTC, four-digit year
    assert "Deployment/web-0" in first.split()


def test_columns_env_sets_the_width(database_url: str, terminal_rows: list[dict[str, Any]]) -> None:
    ran = kds_in_pty(["incidents", "list", "--database-url", database_url], columns=200, env={"COLUMNS": "80"})
    assert ran.returncode == 0, ran.piped
    assert all(cell_len(line) <= 80 for line in _body(ran.plain()))


def test_no_colour_with_no_color_or_into_a_pipe(database_url: str, terminal_rows: list[dict[str, Any]]) -> None:
    ran = kds_in_pty(["incidents", "list", "--database-url", database_url], columns=200, env={"NO_COLOR": "1"})
    assert ran.returncode == 0
    assert "\x1b[" not in ran.terminal
    piped = runner.invoke(app, ["incidents", "list", "--database-url", database_url])
    assert piped.exit_code == 0
    assert "\x1b[" not in piped.stdout
    assert LONG_ALERT in piped.stdout  # into a pipe the table is not fitted to any width


def test_json_is_indented_on_a_terminal_and_compact_into_a_pipe(
    database_url: str, terminal_rows: list[dict[str, Any]]
) -> None:
    ran = kds_in_pty(["incidents", "list", "--database-url", database_url, "-o", "json", "-l", "1"], columns=120)
    assert ran.returncode == 0
    assert ran.terminal.startswith('{\n  "data": [\n    {\n      "id": ')
    piped = runner.invoke(app, ["incidents", "list", "--database-url", database_url, "-o", "json", "-l", "1"])
    assert piped.stdout.startswith('{"data":[{"id":') and piped.stdout.count("\n") == 1
