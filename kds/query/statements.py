"""SQL for incident queries, composed only from ``psycopg.sql`` objects and bound parameters.

Incident documents are built inside PostgreSQL (``row_to_json``, compact) so that rows travel to
the front ends as ready JSON text; one statement returns a page together with its exact total.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from kds.query.models import IncidentFilter, IncidentQuery
from kds.query.vocabulary import FILTER_COLUMNS
from kds.timefmt import sql_rfc3339

FROM = sql.SQL(
    "resource_action_traces rat"
    " JOIN action_histories ah ON ah.id = rat.action_history_id"
    " JOIN resource_references rr ON rr.id = ah.resource_id"
)
ORDER = sql.SQL("rat.action_timestamp DESC, rat.id DESC")


def _utc(column: str) -> sql.Composable:
    """A timestamptz column as RFC 3339 text in UTC (kds.timefmt: four-digit year, microseconds, ``Z``)."""
    return sql_rfc3339(sql.Identifier("rat", column))


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
    ("resource", sql.SQL("(SELECT r FROM (SELECT rr.kind, rr.name) r)")),
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
    """One JSON object per row, fields in order, without whitespace.

    ``row_to_json`` of a row of named columns writes compact JSON (``{"id":1,...}``) and costs the
    database about half of what ``json_build_object`` (which writes ``"id" : 1``) does: ~5 vs ~10 us per
    incident, and 9 % fewer bytes on the wire (bench/SQL_FINDINGS.md, section 7).
    """
    columns = sql.SQL(", ").join(sql.SQL("{} AS {}").format(expr, sql.Identifier(name)) for name, expr in fields)
    return sql.SQL("(SELECT row_to_json(d) FROM (SELECT {}) d)::text").format(columns)


LIST_DOCUMENT = document(LIST_FIELDS)
DETAIL_DOCUMENT = document(DETAIL_FIELDS)


@dataclass(frozen=True, slots=True)
class Statement:
    query: sql.SQL
    params: dict[str, Any]


# Namespace lives two joins away; as an array of history ids it becomes one index condition per
# partition on kds_rat_history_severity_timestamp_idx (bench/SQL_FINDINGS.md). The history ids come
# from two index-only array lookups (namespace -> resource ids -> history ids): written as a join, the
# generic plan of a prepared statement hashes every action_histories row instead (1M: 2.9 vs 0.7 ms).
_NAMESPACE_HISTORIES = sql.SQL(
    "rat.action_history_id = ANY (ARRAY("
    "SELECT ah.id FROM action_histories ah WHERE ah.resource_id = ANY (ARRAY("
    "SELECT rr.id FROM resource_references rr WHERE rr.namespace = %(namespace)s))))"
)


# Which filters are present, and whether a list filter holds one value or several: the statement
# text depends on nothing else (values are parameters). A list of one is compared with ``=`` so the
# ordered index of that column still returns rows newest first; several are ``= ANY`` of a bound array.
Shape = tuple[str, ...]
_ANY = "[]"


def _shape_and_params(query: IncidentQuery) -> tuple[Shape, dict[str, Any]]:
    """The names of the given filters (in the allow-list's order) and their bound values."""
    return filter_shape_and_params(query.filter)


def filter_shape_and_params(flt: IncidentFilter) -> tuple[Shape, dict[str, Any]]:
    """The shape of ``flt`` (see :data:`Shape`) and the bound values, named after the filters."""
    shape: list[str] = []
    params: dict[str, Any] = {}
    for name in FILTER_COLUMNS:
        value = getattr(flt, name)
        if value is None:
            continue
        if isinstance(value, tuple):
            if len(value) > 1:
                shape.append(name + _ANY)
                params[name] = list(value)
                continue
            value = value[0]
        shape.append(name)
        params[name] = value
    for name in ("since", "until"):
        value = getattr(flt, name)
        if value is not None:
            shape.append(name)
            params[name] = value
    return tuple(shape), params


def conditions(shape: Shape) -> list[sql.Composable]:
    """WHERE conditions on ``rat`` alone for the filters of ``shape`` (not the cursor)."""
    found: list[sql.Composable] = []
    for entry in shape:
        name = entry.removesuffix(_ANY)
        if name == "since":
            found.append(sql.SQL("rat.action_timestamp >= {}").format(sql.Placeholder("since")))
        elif name == "until":
            found.append(sql.SQL("rat.action_timestamp < {}").format(sql.Placeholder("until")))
        else:
            alias, column = FILTER_COLUMNS[name]
            if alias == "rr":
                found.append(_NAMESPACE_HISTORIES)
                continue
            operator = sql.SQL("= ANY ({})" if entry.endswith(_ANY) else "= {}").format(sql.Placeholder(name))
            found.append(sql.SQL("{} {}").format(sql.Identifier(alias, column), operator))
    return found


def where(conditions: list[sql.Composable]) -> sql.Composable:
    return sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("TRUE")


def rendered(composed: sql.Composable) -> sql.SQL:
    """The composed statement as one ``sql.SQL``: passing it to psycopg costs one encode, not a tree walk.

    Composing the page statement (~80 parts) took longer than the rest of the client side of a
    request; every text here is kds's own (identifiers from the allow-list, placeholders for values).
    """
    return sql.SQL(composed.as_string(None))


_MATCHES = sql.SQL(
    "WITH m AS {materialized} (SELECT rat.id, rat.action_timestamp FROM resource_action_traces rat WHERE {where}),"
    " total AS (SELECT count(*) AS n FROM m),"
    " ids AS (SELECT m.id, m.action_timestamp FROM m WHERE {keyset}"
    " ORDER BY m.action_timestamp DESC, m.id DESC LIMIT %(fetch)s OFFSET %(offset)s),"
    " page AS (SELECT rat.id, rat.action_timestamp, {doc} AS doc FROM ids"
    " JOIN resource_action_traces rat ON rat.id = ids.id AND rat.action_timestamp = ids.action_timestamp"
    " JOIN action_histories ah ON ah.id = rat.action_history_id"
    " JOIN resource_references rr ON rr.id = ah.resource_id)"
)
# Positions (action_timestamp) leave the database as UTC wall time, whatever the session's time zone:
# loaded in a zone east of UTC, 9999-12-31T23:59Z would be year 10000, which Python cannot hold.
# One row per incident (the CLI renders each document).
_ROWS = sql.SQL(
    " SELECT total.n, page.id, page.action_timestamp AT TIME ZONE 'UTC', page.doc FROM total LEFT JOIN page ON TRUE"
    " ORDER BY page.action_timestamp DESC, page.id DESC"
)
# One row for the whole page (the server answers it as it is): the documents already joined, and
# the position of the page's last row for the next cursor.
_ONE_ROW = sql.SQL(
    ", numbered AS (SELECT page.id, page.action_timestamp, page.doc,"
    " row_number() OVER (ORDER BY page.action_timestamp DESC, page.id DESC) AS k FROM page)"
    " SELECT total.n,"
    " (SELECT count(*) FROM numbered) AS fetched,"
    " (SELECT string_agg(numbered.doc, ',' ORDER BY numbered.k)"
    " FROM numbered WHERE numbered.k <= %(limit)s) AS data,"
    " (SELECT numbered.action_timestamp AT TIME ZONE 'UTC' FROM numbered WHERE numbered.k = %(limit)s) AS last_ts,"
    " (SELECT numbered.id FROM numbered WHERE numbered.k = %(limit)s) AS last_id"
    " FROM total"
)
_KEYSET = sql.SQL("(m.action_timestamp, m.id) < (%(cursor_ts)s, %(cursor_id)s)")


@functools.cache
def _page_sql(shape: Shape, keyset: bool, one_row: bool) -> sql.SQL:
    # A namespace filter matches few rows: materialise them once, count and sort them in memory.
    materialized = "MATERIALIZED" if "namespace" in shape else "NOT MATERIALIZED"
    matches = _MATCHES.format(
        materialized=sql.SQL(materialized),
        where=where(conditions(shape)),
        keyset=_KEYSET if keyset else sql.SQL("TRUE"),
        doc=LIST_DOCUMENT,
    )
    return rendered(sql.Composed([matches, _ONE_ROW if one_row else _ROWS]))


def _page_params(query: IncidentQuery) -> tuple[Shape, dict[str, Any]]:
    shape, params = _shape_and_params(query)
    if query.cursor is not None:
        params["cursor_ts"] = query.cursor.action_timestamp
        params["cursor_id"] = query.cursor.id
    params["fetch"] = query.limit + 1
    params["offset"] = query.offset
    return shape, params


def page_statement(query: IncidentQuery) -> Statement:
    """One round trip: the exact total and ``limit + 1`` rows (the extra one tells ``has_more``).

    Columns: total, id, action_timestamp, document; with no matching row, one row of NULLs beside
    the total. The matches are found on ``resource_action_traces`` alone (every trace has its
    history and resource, so the joins cannot change the count) and only the page rows are joined.
    A namespace filter matches few rows: they are materialised once and both counted and sorted
    in memory. Other filters can match most of the table: the count and the newest-first page
    then each use their own index. The text depends only on which filters are given (cached per
    shape; a few thousand texts at most), so psycopg prepares it once per connection and shape.
    """
    shape, params = _page_params(query)
    return Statement(_page_sql(shape, query.cursor is not None, False), params)


def page_document_statement(query: IncidentQuery) -> Statement:
    """The same page as :func:`page_statement`, in one row: what the server sends on without parsing.

    Columns: total; fetched (how many of the ``limit + 1`` rows exist, which tells ``has_more``);
    data (the page's documents joined with commas, NULL on an empty page);
    last_ts and last_id (the ``limit``-th row, for the next cursor; NULL when there is none). Read
    it in binary format: every column then loads without parsing text (bench/SQL_FINDINGS.md, 7).
    """
    shape, params = _page_params(query)
    params["limit"] = query.limit
    return Statement(_page_sql(shape, query.cursor is not None, True), params)


@functools.cache
def _export_sql(shape: Shape) -> sql.SQL:
    return rendered(
        sql.SQL("SELECT {doc} FROM {from_} WHERE {where} ORDER BY {order}").format(
            doc=LIST_DOCUMENT, from_=FROM, where=where(conditions(shape)), order=ORDER
        )
    )


def export_statement(query: IncidentQuery) -> Statement:
    """Every matching row (limit, offset and cursor ignored), newest first, one document per row."""
    shape, params = _shape_and_params(query)
    return Statement(_export_sql(shape), params)


_DETAIL = rendered(
    sql.SQL("SELECT {doc} FROM {from_} WHERE rat.id = %(id)s LIMIT 1").format(doc=DETAIL_DOCUMENT, from_=FROM)
)


def detail_statement(incident_id: int) -> Statement:
    return Statement(_DETAIL, {"id": incident_id})
