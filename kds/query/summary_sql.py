"""One SQL statement per summary, and running it (sync for the CLI, async for the server).

Value groups: the matching incidents are counted per group, and the ``limit`` largest groups come
back (count descending, then key ascending in code-point order, ``null`` last) with the exact total of
all groups beside each row (a window sum over the groups, computed before the limit). A namespace lives
two joins away: the matches are first counted per action history on ``resource_action_traces`` alone
(an index-only scan), and only those few thousand counts are joined to their resources.

Buckets: ``generate_series`` of every UTC bucket start from the bucket of ``since`` to the bucket of
``until``, left-joined to the counts per bucket, so empty buckets are present with 0. Buckets are
computed on ``timestamp`` values in UTC, never in the session's time zone.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from psycopg import sql

from kds.db.policy import may_prepare
from kds.query.statements import Shape, Statement, conditions, filter_shape_and_params, rendered, where
from kds.query.summary import BUCKET_STEP, Summary, SummaryGroup, SummaryQuery
from kds.query.vocabulary import FILTER_COLUMNS
from kds.timefmt import sql_rfc3339

if TYPE_CHECKING:
    import psycopg

_RANKED = sql.SQL(
    "SELECT g.key, g.n, sum(g.n) OVER ()::bigint AS total FROM ({groups}) g"
    ' ORDER BY g.n DESC, g.key COLLATE "C" ASC NULLS LAST LIMIT %(limit)s'
)
_GROUPS = sql.SQL("SELECT {key} AS key, count(*) AS n FROM resource_action_traces rat WHERE {where} GROUP BY 1")
_NAMESPACE_GROUPS = sql.SQL(
    "SELECT rr.namespace AS key, sum(h.n)::bigint AS n"
    " FROM (SELECT rat.action_history_id, count(*) AS n FROM resource_action_traces rat WHERE {where}"
    " GROUP BY 1) h"
    " JOIN action_histories ah ON ah.id = h.action_history_id"
    " JOIN resource_references rr ON rr.id = ah.resource_id"
    " GROUP BY 1"
)
_BUCKETS = sql.SQL(
    "SELECT {key} AS key, coalesce(c.n, 0) AS n,"
    " sum(coalesce(c.n, 0)) OVER ()::bigint AS total"
    " FROM generate_series(%(first)s::timestamp, %(last)s::timestamp, %(step)s::interval) AS b(start)"
    " LEFT JOIN (SELECT date_trunc({unit}, rat.action_timestamp AT TIME ZONE 'UTC') AS start, count(*) AS n"
    " FROM resource_action_traces rat WHERE {where} GROUP BY 1) c ON c.start = b.start"
    " ORDER BY b.start"
)

# The bucket start (a UTC ``timestamp``) as RFC 3339 text: kds's one timestamp format, without a fraction.
_BUCKET_KEY = sql_rfc3339(sql.SQL("(b.start AT TIME ZONE 'UTC')"), fraction_digits=0)


@functools.cache
def _summary_sql(by: str, shape: Shape) -> sql.SQL:
    condition = where(conditions(shape))
    if by in BUCKET_STEP:
        composed = _BUCKETS.format(key=_BUCKET_KEY, unit=sql.Literal(by), where=condition)
    elif by == "namespace":
        composed = _RANKED.format(groups=_NAMESPACE_GROUPS.format(where=condition))
    else:
        alias, column = FILTER_COLUMNS[by]
        composed = _RANKED.format(groups=_GROUPS.format(key=sql.Identifier(alias, column), where=condition))
    return rendered(composed)


def summary_statement(query: SummaryQuery) -> Statement:
    """Rows (key, count, total): the groups of ``data`` in order, each with the exact total.

    The text depends only on ``by`` and the filters' shape (cached); values are bound parameters.
    """
    shape, params = filter_shape_and_params(query.filter)
    if query.bucketed:
        first, last = query.bucket_range()
        params.update(first=first, last=last, step=BUCKET_STEP[query.by])
    else:
        params["limit"] = query.limit
    return Statement(_summary_sql(query.by, shape), params)


def assemble_summary(query: SummaryQuery, rows: Sequence[tuple[str | None, int, int]]) -> Summary:
    """The summary document from the statement's rows; ``other`` is what the groups left out hold."""
    data = [SummaryGroup(key=key, count=count) for key, count, _ in rows]
    total = rows[0][2] if rows else 0
    return Summary(by=query.by, data=data, total=total, other=total - sum(group.count for group in data))


def fetch_summary(conn: psycopg.Connection, query: SummaryQuery) -> Summary:
    statement = summary_statement(query)
    return assemble_summary(query, conn.execute(statement.query, statement.params).fetchall())


async def afetch_summary(conn: psycopg.AsyncConnection, query: SummaryQuery) -> Summary:
    statement = summary_statement(query)
    cur = await conn.execute(statement.query, statement.params, prepare=may_prepare(conn))
    return assemble_summary(query, await cur.fetchall())


def summary_json(summary: Summary, *, indent: bool = False) -> bytes:
    """``{"by", "data": [{"key", "count"}], "total", "other"}``: the API's body and the CLI's ``-o json``."""
    import orjson

    return orjson.dumps(summary.model_dump(), option=orjson.OPT_INDENT_2 if indent else 0)
