"""The status filter, "any of" lists, repeated parameters and the offset bound: core, SQL, CLI."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from kds.cli.app import app
from kds.errors import InvalidInput
from kds.query import cursor as cursors
from kds.query import parse_incident_query
from kds.query.execute import fetch_page
from kds.query.statements import page_statement
from tests import factories

runner = CliRunner()
STATUSES = ["completed", "failed", "pending", "rolled_back", "failed"]
SEVERITIES = ["info", "warning", "critical", "high", "medium", "low"]
ENVIRONMENTS = ["production", "staging", "development", "test"]
NAMESPACES = ["payments", "支付服务", "default"]


def parse(**params: Any) -> Any:
    return parse_incident_query(params, default_limit=100)


def problems(repeated_lists: bool = False, **params: Any) -> list[tuple[str, str, str]]:
    with pytest.raises(InvalidInput) as caught:
        parse_incident_query(params, default_limit=100, repeated_lists=repeated_lists)
    return [(p.slug, p.name, p.detail) for p in caught.value.problems]


# -- the core's rules ------------------------------------------------------------------------------


def test_lists_are_validated_normalised_sorted_and_deduplicated() -> None:
    flt = parse(severity="HIGH, critical,high", environment="Test,production", status="failed,pending").filter
    assert flt.severity == ("critical", "high")
    assert flt.environment == ("production", "test")
    assert flt.status == ("failed", "pending")
    assert parse(status="Failed").filter.status == ("Failed",)  # status is an exact match, like the text filters


def test_each_list_item_is_checked_with_the_filters_slug() -> None:
    assert problems(severity="high,urgent") == [
        (
            "invalid-severity",
            "severity",
            "severity must be one of info, warning, critical, high, medium, low, got 'urgent'",
        )
    ]
    env_detail = "environment must be one of production, staging, development, test, got 'prod'"
    assert problems(environment="prod,test") == [("invalid-environment", "environment", env_detail)]
    assert problems(status="failed,x\x01") == [
        ("invalid-parameter", "status", "status must not contain control characters, got 'x\\x01'")
    ]
    assert problems(status="a" * 254)[0][:2] == ("invalid-parameter", "status")
    assert problems(severity="high,") == [("invalid-severity", "severity", "severity lists an empty item, got 'high,'")]
    assert problems(status=",failed") == [("invalid-parameter", "status", "status lists an empty item, got ',failed'")]


def test_repeated_parameters_over_http_are_invalid_and_in_the_cli_only_lists_join() -> None:
    # a query string: every repeat is invalid-parameter, lists included (lists are written with commas)
    assert problems(severity=["critical", "high"]) == [
        ("invalid-parameter", "severity", "severity was given 2 times; give it once")
    ]
    # the CLI: repeated list options join, every other repeat is invalid-parameter
    cli = parse_incident_query(
        {"severity": ["critical", "HIGH"], "status": ["failed"], "environment": ["test", "staging"]},
        default_limit=50,
        repeated_lists=True,
    )
    assert (cli.filter.severity, cli.filter.status, cli.filter.environment) == (
        ("critical", "high"),
        ("failed",),
        ("staging", "test"),
    )
    for name in ("namespace", "cluster", "action_type", "alert_name", "since", "until", "limit", "offset"):
        assert problems(repeated_lists=True, **{name: ["1", "2"]}) == [
            ("invalid-parameter", name, f"{name} was given 2 times; give it once")
        ]
    assert problems(repeated_lists=True, severity=["critical", "bad"])[0] == (
        "invalid-severity",
        "severity",
        "severity must be one of info, warning, critical, high, medium, low, got 'bad'",
    )


def test_offset_is_bounded_to_a_63_bit_integer() -> None:
    assert parse(offset=str(2**63 - 1)).offset == 2**63 - 1
    detail = "offset must be an integer between 0 and 9223372036854775807, got {}"
    assert problems(offset=str(2**63)) == [("invalid-offset", "offset", detail.format(2**63))]
    assert problems(offset="-1") == [("invalid-offset", "offset", detail.format(-1))]
    huge = "9" * 5000  # more digits than Python's int() accepts: still this error, never a crash
    assert problems(offset=huge) == [("invalid-offset", "offset", detail.format(repr("9" * 60 + "…")))]
    assert problems(limit=huge)[0][0] == "invalid-limit"


def test_cursors_are_bound_to_the_new_filters() -> None:
    query = parse(status="failed", severity="high,critical")
    token = cursors.encode(cursors.CursorPosition(factories.BASE_TIME, 7, query.fingerprint))
    # the same filters in another order and case: the same query, the cursor is accepted
    assert parse(status="failed", severity="CRITICAL,high", cursor=token).cursor is not None
    assert problems(status="pending", severity="high,critical", cursor=token)[0][0] == "invalid-cursor"
    assert problems(status="failed", severity="high", cursor=token)[0][0] == "invalid-cursor"
    assert parse().fingerprint == parse_incident_query({}, default_limit=50).fingerprint


def test_one_value_and_several_values_are_different_statement_shapes() -> None:
    one, several = page_statement(parse(severity="high")), page_statement(parse(severity="high,low"))
    text_one, text_several = one.query.as_string(None), several.query.as_string(None)  # type: ignore[arg-type]
    assert '"rat"."alert_severity" = %(severity)s' in text_one and "ANY" not in text_one
    assert '"rat"."alert_severity" = ANY (%(severity)s)' in text_several
    assert (one.params["severity"], several.params["severity"]) == ("high", ["high", "low"])
    status = page_statement(parse(status="failed,pending")).query.as_string(None)  # type: ignore[arg-type]
    assert '"rat"."execution_status" = ANY (%(status)s)' in status


# -- real PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture
def rows(database_url: str) -> list[dict[str, Any]]:
    """60 incidents cycling through statuses, severities, environments and namespaces."""
    made = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        for i in range(60):
            spec = {
                "minutes": i,
                "namespace": NAMESPACES[i % 3],
                "alert_severity": SEVERITIES[i % 6],
                "environment": ENVIRONMENTS[(i // 2) % 4],
                "execution_status": STATUSES[i % 5],
            }
            spec["id"] = factories.incident(conn, resource_name=f"app-{i % 4}", **spec)
            made.append(spec)
    return made


def expected(rows: list[dict[str, Any]], **any_of: Any) -> list[int]:
    """Ids newest first of the rows whose every field is one of the given values (written independently)."""
    matching = [r for r in rows if all(r[field] in values for field, values in any_of.items())]
    return [r["id"] for r in sorted(matching, key=lambda r: (r["minutes"], r["id"]), reverse=True)]


def page_ids(url: str, **params: Any) -> tuple[list[int], int]:
    query = parse_incident_query({**params, "limit": "1000"}, default_limit=100)
    with psycopg.connect(url) as conn:
        page = fetch_page(conn, query)
    return [incident["id"] for incident in page.incidents()], page.total


@pytest.mark.parametrize(
    ("params", "any_of"),
    [
        ({"status": "failed"}, {"execution_status": {"failed"}}),
        ({"status": "failed,pending"}, {"execution_status": {"failed", "pending"}}),
        ({"severity": "critical,high"}, {"alert_severity": {"critical", "high"}}),
        ({"environment": "staging,TEST"}, {"environment": {"staging", "test"}}),
        (
            {"namespace": "支付服务", "severity": "warning,medium,low", "status": "completed,rolled_back"},
            {
                "namespace": {"支付服务"},
                "alert_severity": {"warning", "medium", "low"},
                "execution_status": {"completed", "rolled_back"},
            },
        ),
        (
            {"severity": "critical", "environment": "production,development"},
            {"alert_severity": {"critical"}, "environment": {"production", "development"}},
        ),
    ],
)
def test_lists_return_exactly_the_matching_rows(rows, database_url: str, params: dict[str, str], any_of) -> None:
    want = expected(rows, **any_of)
    assert want, "the data set must hold matches"
    assert page_ids(database_url, **params) == (want, len(want))


def cli_ids(url: str, *args: str) -> list[int]:
    import orjson

    result = runner.invoke(app, ["incidents", "list", "--database-url", url, "-o", "json", "-l", "1000", *args])
    assert result.exit_code == 0, result.stderr
    return [incident["id"] for incident in orjson.loads(result.stdout)["data"]]


def test_cli_repeated_list_options_mean_any_of(rows, database_url: str) -> None:
    both = expected(rows, alert_severity={"critical", "high"})
    assert cli_ids(database_url, "-s", "critical", "-s", "high") == both
    assert cli_ids(database_url, "--severity", "critical,high") == both
    assert cli_ids(
        database_url, "--status", "failed", "--status", "pending", "-e", "test", "-e", "staging"
    ) == expected(rows, execution_status={"failed", "pending"}, environment={"test", "staging"})


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["-n", "a", "-n", "b"], "invalid-parameter: namespace was given 2 times; give it once\n"),
        (["--cluster", "a", "--cluster", "a"], "invalid-parameter: cluster was given 2 times; give it once\n"),
        (["--since", "1h", "--since", "2h"], "invalid-parameter: since was given 2 times; give it once\n"),
        (["-l", "5", "-l", "6"], "invalid-parameter: limit was given 2 times; give it once\n"),
        (["-s", "high", "-s", "urgent"],
         "invalid-severity: severity must be one of info, warning, critical, high, medium, low, got 'urgent'\n"),
        (["-e", "prod"],
         "invalid-environment: environment must be one of production, staging, development, test, got 'prod'\n"),
        (["--status", "fa\x07iled"],
         "invalid-parameter: status must not contain control characters, got 'fa\\x07iled'\n"),
        (["--offset", str(2**63)],
         "invalid-offset: offset must be an integer between 0 and 9223372036854775807, got 9223372036854775808\n"),
    ],
)  # fmt: skip
def test_cli_rejects_repeats_and_bad_items(database_url: str, args: list[str], stderr: str) -> None:
    result = runner.invoke(app, ["incidents", "list", "--database-url", database_url, *args])
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", stderr)
