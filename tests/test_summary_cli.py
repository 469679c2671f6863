"""``kds incidents summary`` through CliRunner against real databases: every format, bars, slugs and exit codes."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta

import orjson
import psycopg
import pytest
import yaml
from typer.testing import CliRunner

from kds.cli.app import app
from kds.cli.summary import bar
from tests import factories
from tests.pg import PgCluster
from tests.summary_data import hand_groups, summary_db_fixture  # noqa: F401  (the module's data set, as a fixture)

runner = CliRunner()
BASE = factories.BASE_TIME


def summary(url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["incidents", "summary", "--database-url", url, *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def small_db(pg_cluster: PgCluster) -> Iterator[str]:
    """Four incidents: two in payments (10:xx and 12:xx), one in 支付服务 (12:xx), one cluster-scoped (13:xx)."""
    with pg_cluster.fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            factories.incident(conn, minutes=-110, namespace="payments", resource_name="a")
            factories.incident(conn, minutes=5, namespace="payments", resource_name="a", alert_severity="critical")
            factories.incident(conn, minutes=10, namespace="支付服务", resource_name="b")
            factories.incident(conn, minutes=70, namespace=None, resource_name="node-1", kind="Node")
        yield url


def test_table_has_key_count_share_bars_and_the_other_and_total_lines(small_db: str) -> None:
    code, out, err = summary(small_db, "--by", "namespace")
    assert (code, err) == (0, "")
    assert out == (
        "KEY       COUNT  SHARE\n"
        f"payments      2  50.0%  {'█' * 40}\n"
        f"支付服务      1  25.0%  {'█' * 20}\n"
        f"<none>        1  25.0%  {'█' * 20}\n"
        "other         0   0.0%\n"
        "total         4\n"
    )
    code, out, _ = summary(small_db, "--by", "namespace", "-l", "1")
    assert out.splitlines()[-2:] == ["other         2  50.0%", "total         4"]


def test_hourly_trend_has_a_bar_per_bucket_with_empty_buckets(small_db: str) -> None:
    since, until = (BASE - timedelta(hours=2)).isoformat(), (BASE + timedelta(hours=2)).isoformat()
    code, out, err = summary(small_db, "--by", "hour", "--since", since, "--until", until)
    assert (code, err) == (0, "")
    assert out == (
        "KEY                   COUNT  SHARE\n"
        f"2026-11-01T10:00:00Z      1  25.0%  {'█' * 20}\n"
        "2026-11-01T11:00:00Z      0   0.0%\n"
        f"2026-11-01T12:00:00Z      2  50.0%  {'█' * 40}\n"
        f"2026-11-01T13:00:00Z      1  25.0%  {'█' * 20}\n"
        "2026-11-01T14:00:00Z      0   0.0%\n"
        "other                     0   0.0%\n"
        "total                     4\n"
    )


def test_bars_are_proportional_to_the_eighth_of_a_character() -> None:
    assert bar(40, 40) == "█" * 40
    assert bar(1, 320) == "▏"  # an eighth of a cell: the smallest non-zero bar
    assert bar(1, 10_000) == "▏"
    assert bar(3, 8, width=4) == "█▌"  # 1.5 cells
    assert bar(0, 5) == ""


def test_json_is_the_api_document_and_csv_and_yaml_hold_the_same_groups(summary_db: str) -> None:
    expected = hand_groups(summary_db, "severity", {"status": ["completed", "failed"]}, 3)
    code, out, err = summary(summary_db, "--by", "severity", "--status", "completed", "--status", "failed", "-l", "3",
                             "-o", "json")  # fmt: skip
    assert (code, err) == (0, "")
    assert out == orjson.dumps(expected).decode() + "\n"
    _, out, _ = summary(summary_db, "--by", "severity", "--status", "completed,failed", "-l", "3", "-o", "yaml")
    assert yaml.safe_load(out) == expected
    _, out, _ = summary(summary_db, "--by", "cluster", "-o", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    document = hand_groups(summary_db, "cluster", {}, 20)
    assert rows == [["key", "count"]] + [
        ["" if g["key"] is None else g["key"], str(g["count"])] for g in document["data"]
    ]


def test_no_match_says_so_on_stderr_and_exits_0(small_db: str) -> None:
    code, out, err = summary(small_db, "--by", "status", "-n", "nowhere", "-o", "json")
    assert (code, out, err) == (0, '{"by":"status","data":[],"total":0,"other":0}\n', "no incidents found\n")


DIMENSIONS = "namespace, severity, cluster, environment, action_type, alert_name, status, hour, day"


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        ([], f"invalid-parameter: by is required: one of {DIMENSIONS}\n"),
        (["--by", "pod"], f"invalid-parameter: by must be one of {DIMENSIONS}, got 'pod'\n"),
        (["--by", "namespace", "--by", "status"], "invalid-parameter: by was given 2 times; give it once\n"),
        (["--by", "namespace", "-l", "0"], "invalid-limit: limit must be between 1 and 1000, got 0\n"),
        (["--by", "namespace", "-l", "x"], "invalid-limit: limit must be an integer between 1 and 1000, got 'x'\n"),
        (["--by", "status", "-s", "high", "-s", "loud"],
         "invalid-severity: severity must be one of info, warning, critical, high, medium, low, got 'loud'\n"),
        (["--by", "status", "-e", "qa"],
         "invalid-environment: environment must be one of production, staging, development, test, got 'qa'\n"),
        (["--by", "day", "--since", "yesterday"], "invalid-time-range: since must be an RFC 3339 timestamp or an "
         "age such as 30m, 6h, 7d, got 'yesterday'\n"),
        (["--by", "hour", "--since", "2026-01-01T00:00:00Z", "--until", "2026-03-01T00:00:00Z"],
         "invalid-time-range: a summary by hour has at most 1000 buckets, got 1417 from 2026-01-01T00:00:00+00:00 "
         "to 2026-03-01T00:00:00+00:00; narrow since/until\n"),
        (["--by", "cluster", "-n", "a", "-n", "b"], "invalid-parameter: namespace was given 2 times; give it once\n"),
        (["--by", "cluster", "--alert-name", "x\ty"],
         "invalid-parameter: alert_name must not contain control characters, got 'x\\ty'\n"),
    ],
)  # fmt: skip
def test_bad_input_is_the_slug_and_detail_with_exit_2(small_db: str, args: list[str], stderr: str) -> None:
    assert summary(small_db, *args) == (2, "", stderr)
