"""SQL for incident queries, composed only from ``psycopg.sql`` objects and bound parameters.

Incident documents are built inside PostgreSQL (``json_build_object``) so that rows travel to
the front ends as ready JSON text; one statement returns a page together with its exact total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from kds.query.models import IncidentQuery
from kds.query.vocabulary import FILTER_COLUMNS

FROM = sql.SQL(
    "resource_action_traces rat"
    " JOIN action_histories ah ON ah.id = rat.action_history_id"
    " JOIN resource_references rr ON rr.id = ah.resource_id"
)
ORDER = sql.SQL("rat.action_timestamp DESC, rat.id DESC")


def _utc(column: str) -> sql.Composable:
    """A timestamptz column as RFC 3339 text in UTC (microsecond precision, ``Z`` suffix)."""
    return sql.SQL("""to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""").format(
        sql.Identifier("rat", column)
    )


def _col(column: str, alias: str = "rat") -> sql.Composable:
    return sql.Identifier(alias, column)


# (JSON field, SQL expression) in the order the documents show them.
LIST_FIELDS: tuple[tuple[str, sql.Composable], ...] = (
    ("id", _col("id")),
    ("action_id", _col("action_id")),
    ("correlation_id", _col("correlation_id")),
    ("alert_name", _col("alert_name")),
    ("severity", _col("alert_severity")),
    ("namespace", _col("namespace", "rr")),
    ("cluster", _col("cluster_name")),
    ("environment", _col("environment")),
    ("action_type", _col("action_type")),
    ("execution_status", _col("execution_status")),
    ("action_timestamp", _utc("action_timestamp")),
    ("resource", sql.SQL("json_build_object('kind', rr.kind, 'name', rr.name)")),
    ("model_used", _col("model_used")),
    ("model_confidence", _col("model_confidence")),
    ("effectiveness_score", _col("effectiveness_score")),
    ("execution_duration_ms", _col("execution_duration_ms")),
)
DETAIL_FIELDS: tuple[tuple[str, sql.Composable], ...] = (
    *LIST_FIELDS,
    ("alert_labels", _col("alert_labels")),
    ("alert_annotations", _col("alert_annotations")),
    ("action_parameters", _col("action_parameters")),
    ("alert_fingerprint", _col("alert_fingerprint")),
    ("alert_firing_time", _utc("alert_firing_time")),
    ("model_reasoning", _col("model_reasoning")),
    ("execution_start_time", _utc("execution_start_time")),
    ("execution_end_time", _utc("execution_end_time")),
    ("execution_error", _col("execution_error")),
)


def document(fields: tuple[tuple[str, sql.Composable], ...]) -> sql.Composable:
    pairs = sql.SQL(", ").join(sql.SQL("{}, {}").format(sql.Literal(name), expr) for name, expr in fields)
    return sql.SQL("json_build_object({})::text").format(pairs)


LIST_DOCUMENT = document(LIST_FIELDS)
DETAIL_DOCUMENT = document(DETAIL_FIELDS)


@dataclass(frozen=True, slots=True)
class Statement:
    query: sql.Composable
    params: dict[str, Any]


# Namespace lives two joins away; as an array of history ids it becomes one index condition per
# partition on kds_rat_history_severity_timestamp_idx (bench/SQL_FINDINGS.md).
_NAMESPACE_HISTORIES = sql.SQL(
    "rat.action_history_id = ANY (ARRAY("
    "SELECT ah.id FROM action_histories ah JOIN resource_references rr ON rr.id = ah.resource_id"
    " WHERE rr.namespace = %(namespace)s))"
)


def _conditions(query: IncidentQuery) -> tuple[list[sql.Composable], dict[str, Any]]:
    """WHERE conditions on ``rat`` alone for the filters (not the cursor), and their parameters."""
    conditions: list[sql.Composable] = []
    params: dict[str, Any] = {}
    values = query.filter.model_dump()
    for name, (alias, column) in FILTER_COLUMNS.items():
        if values[name] is None:
            continue
        params[name] = values[name]
        if alias == "rr":
            conditions.append(_NAMESPACE_HISTORIES)
        else:
            conditions.append(sql.SQL("{} = {}").format(sql.Identifier(alias, column), sql.Placeholder(name)))
    if query.filter.since is not None:
        conditions.append(sql.SQL("rat.action_timestamp >= {}").format(sql.Placeholder("since")))
        params["since"] = query.filter.since
    if query.filter.until is not None:
        conditions.append(sql.SQL("rat.action_timestamp < {}").format(sql.Placeholder("until")))
        params["until"] = query.filter.until
    return conditions, params


def _where(conditions: list[sql.Composable]) -> sql.Composable:
    return sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("TRUE")


_PAGE = sql.SQL(
    "WITH m AS {materialized} (SELECT rat.id, rat.action_timestamp FROM resource_action_traces rat WHERE {where}),"
    " total AS (SELECT count(*) AS n FROM m),"
    " ids AS (SELECT m.id, m.action_timestamp FROM m WHERE {keyset}"
    " ORDER BY m.action_timestamp DESC, m.id DESC LIMIT %(fetch)s OFFSET %(offset)s),"
    " page AS (SELECT rat.id, rat.action_timestamp, {doc} AS doc FROM ids"
    " JOIN resource_action_traces rat ON rat.id = ids.id AND rat.action_timestamp = ids.action_timestamp"
    " JOIN action_histories ah ON ah.id = rat.action_history_id"
    " JOIN resource_references rr ON rr.id = ah.resource_id)"
    " SELECT total.n, page.id, page.action_timestamp, page.doc FROM total LEFT JOIN page ON TRUE"
    " ORDER BY page.action_timestamp DESC, page.id DESC"
)


def page_statement(query: IncidentQuery) -> Statement:
    """One round trip: the exact total and ``limit + 1`` rows (the extra one tells ``has_more``).

    Columns: total, id, action_timestamp, document; with no matching row, one row of NULLs beside
    the total. The matches are found on ``resource_action_traces`` alone (every trace has its
    history and resource, so the joins cannot change the count) and only the page rows are joined.
    A namespace filter matches few rows: they are materialised once and both counted and sorted
    in memory. Other filters can match most of the table: the count and the newest-first page
    then each use their own index.
    """
    conditions, params = _conditions(query)
    keyset: sql.Composable = sql.SQL("TRUE")
    if query.cursor is not None:
        keyset = sql.SQL("(m.action_timestamp, m.id) < ({}, {})").format(
            sql.Placeholder("cursor_ts"), sql.Placeholder("cursor_id")
        )
        params["cursor_ts"] = query.cursor.action_timestamp
        params["cursor_id"] = query.cursor.id
    params["fetch"] = query.limit + 1
    params["offset"] = query.offset
    materialized = "MATERIALIZED" if query.filter.namespace is not None else "NOT MATERIALIZED"
    statement = _PAGE.format(
        materialized=sql.SQL(materialized), where=_where(conditions), keyset=keyset, doc=LIST_DOCUMENT
    )
    return Statement(statement, params)


def export_statement(query: IncidentQuery) -> Statement:
    """Every matching row (limit, offset and cursor ignored), newest first, one document per row."""
    conditions, params = _conditions(query)
    statement = sql.SQL("SELECT {doc} FROM {from_} WHERE {where} ORDER BY {order}").format(
        doc=LIST_DOCUMENT, from_=FROM, where=_where(conditions), order=ORDER
    )
    return Statement(statement, params)


def detail_statement(incident_id: int) -> Statement:
    statement = sql.SQL("SELECT {doc} FROM {from_} WHERE rat.id = %(id)s LIMIT 1").format(
        doc=DETAIL_DOCUMENT, from_=FROM
    )
    return Statement(statement, {"id": incident_id})
