"""Pure units of the SQL builder: user text only ever travels as a bound parameter."""

import pytest

from kds.query import parse_incident_query
from kds.query.statements import detail_statement, export_statement, page_statement

INJECTIONS = [
    "'; DROP TABLE resource_action_traces--",
    "' OR '1'='1",
    "test'; --",
    "' UNION SELECT * FROM users--",
]
TEXT_PARAMETERS = ["namespace", "cluster", "action_type", "alert_name"]


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize("parameter", TEXT_PARAMETERS)
def test_injection_values_are_parameters_only(payload: str, parameter: str) -> None:
    query = parse_incident_query({parameter: payload}, default_limit=10)
    for statement in (page_statement(query), export_statement(query)):
        text = statement.query.as_string(None)
        assert payload not in text
        assert "DROP" not in text and "UNION" not in text and "OR '1'" not in text
        assert statement.params[parameter] == payload


def test_filters_map_to_allow_listed_columns() -> None:
    query = parse_incident_query(
        {
            "namespace": "n",
            "severity": "high",
            "cluster": "c",
            "environment": "test",
            "action_type": "a",
            "alert_name": "x",
            "since": "2026-01-01T00:00:00Z",
            "until": "2026-02-01T00:00:00Z",
            "limit": "10",
            "offset": "5",
        },
        default_limit=10,
    )
    statement = page_statement(query)
    text = statement.query.as_string(None)
    assert text.count("rr.namespace = %(namespace)s") == 1
    assert "WITH m AS MATERIALIZED" in text
    for condition in (
        '"rat"."alert_severity" = %(severity)s',
        '"rat"."cluster_name" = %(cluster)s',
        '"rat"."environment" = %(environment)s',
        '"rat"."action_type" = %(action_type)s',
        '"rat"."alert_name" = %(alert_name)s',
        "rat.action_timestamp >= %(since)s",
        "rat.action_timestamp < %(until)s",
    ):
        assert text.count(condition) == 1  # in the matches, which feed both the total and the page
    assert "ORDER BY m.action_timestamp DESC, m.id DESC LIMIT %(fetch)s OFFSET %(offset)s" in text
    assert (statement.params["fetch"], statement.params["offset"]) == (11, 5)


def test_without_namespace_the_matches_are_not_materialised() -> None:
    text = page_statement(parse_incident_query({"severity": "high"}, default_limit=10)).query.as_string(None)
    assert "WITH m AS NOT MATERIALIZED" in text
    assert "action_histories" not in text.split(" total AS ")[0]  # the count needs no join


def test_unicode_is_a_parameter() -> None:
    for value in ["طلبات-العملاء", "支付服务", "ระบบชำระเงิน", "rocket-🚀", "mix-支付-🚀-ระบบ"]:
        statement = page_statement(parse_incident_query({"namespace": value}, default_limit=10))
        assert statement.params["namespace"] == value
        assert value not in statement.query.as_string(None)


def test_detail_statement_binds_the_id() -> None:
    statement = detail_statement(12)
    assert statement.params == {"id": 12}
    assert "WHERE rat.id = %(id)s" in statement.query.as_string(None)
