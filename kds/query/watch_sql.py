"""SQL of the watch (docs/terminal.md, "How the watch finds new incidents").

Every statement runs inside one REPEATABLE READ transaction per poll, so they all read the same
snapshot: the one ``pg_current_snapshot()`` returns in the first statement.
"""

from __future__ import annotations

import functools

from psycopg import sql

from kds.query.models import IncidentQuery
from kds.query.statements import (
    FROM,
    LIST_DOCUMENT,
    Shape,
    Statement,
    _shape_and_params,
    conditions,
    rendered,
    where,
)

# The poll's snapshot; the next transaction id not yet assigned when it was read (``age()`` of a
# normal xid counts from the next xid, read once per transaction, here after the snapshot); and the
# largest incident id visible in the snapshot.
_POSITION = rendered(
    sql.SQL(
        "SELECT pg_current_snapshot()::text,"
        " age((pg_snapshot_xmax(pg_current_snapshot())::text::bigint %% 4294967296)::text::xid),"
        " (SELECT max(id) FROM resource_action_traces)"
    )
)

# 1 when ids come from a sequence that hands them out in order (no per-session cache).
_ORDERED_IDS = rendered(
    sql.SQL(
        "SELECT coalesce((SELECT s.seqcache = 1 FROM pg_sequence s"
        " WHERE s.seqrelid = pg_get_serial_sequence('resource_action_traces', 'id')::regclass), false)"
    )
)

# The 64-bit transaction id of a row's 32-bit xmin, relative to a recent full id (the poll's xmax):
# a committed row's xmin is below it and less than 2^31 older than it.
_XMIN8 = sql.SQL(
    "((%(ref)s - ((%(ref)s - rat.xmin::text::bigint) %% 4294967296 + 4294967296) %% 4294967296)::text::xid8)"
)

_NEW_ROWS = sql.SQL(
    "SELECT rat.id, rat.action_timestamp, CASE WHEN {match} THEN {doc} END FROM {from_}"
    " WHERE {where} AND NOT pg_visible_in_snapshot({xmin8}, %(previous)s::pg_snapshot)"
)


def position_statement() -> Statement:
    return Statement(_POSITION, {})


def ordered_ids_statement() -> Statement:
    return Statement(_ORDERED_IDS, {})


@functools.cache
def _new_rows_sql(shape: Shape, early: bool) -> sql.SQL:
    match = where(conditions(shape))
    recent = _NEW_ROWS.format(
        match=match, doc=LIST_DOCUMENT, from_=FROM, where=sql.SQL("rat.id > %(floor)s"), xmin8=_XMIN8
    )
    if not early:
        return rendered(recent)
    # Rows of transactions that were already writing when the watch began: their ids have no
    # known lower bound, so they are found by their xmin (a scan, once per such commit).
    older = _NEW_ROWS.format(
        match=match,
        doc=LIST_DOCUMENT,
        from_=FROM,
        where=sql.SQL("rat.id <= %(floor)s AND rat.xmin = ANY (%(early)s::text[]::xid[])"),
        xmin8=_XMIN8,
    )
    return rendered(sql.Composed([recent, sql.SQL(" UNION ALL "), older]))


def new_rows_statement(query: IncidentQuery, *, previous: str, ref: int, floor: int, early: list[int]) -> Statement:
    """Rows visible now whose inserting (or updating) transaction was not visible in ``previous``.

    Columns: id, action_timestamp, the document (NULL when the row does not match the filters).
    ``floor``: only ids above it can be new, except rows written by the ``early`` transactions.
    """
    shape, params = _shape_and_params(query)
    params.update(previous=previous, ref=ref, floor=floor)
    if early:
        params["early"] = [str(xid & 0xFFFFFFFF) for xid in early]
    return Statement(_new_rows_sql(shape, bool(early)), params)
