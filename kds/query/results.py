"""Query results as documents: the list page of SPEC 5.1, assembled from JSON built in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from kds.query import cursor as cursors
from kds.query.models import IncidentQuery


@dataclass(frozen=True, slots=True)
class IncidentPage:
    rows: list[str]  # one JSON document per incident
    limit: int
    offset: int
    total: int
    has_more: bool
    next_cursor: str | None

    def pagination(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "offset": self.offset,
            "total": self.total,
            "has_more": self.has_more,
            "next_cursor": self.next_cursor,
        }

    def to_json(self) -> bytes:
        """``{"data": [...], "pagination": {...}}`` without re-encoding the rows."""
        data = ",".join(self.rows).encode()
        return b'{"data":[' + data + b'],"pagination":' + orjson.dumps(self.pagination()) + b"}"

    def incidents(self) -> list[dict[str, Any]]:
        return [orjson.loads(row) for row in self.rows]

    def document(self) -> dict[str, Any]:
        return {"data": self.incidents(), "pagination": self.pagination()}


def assemble_page(
    query: IncidentQuery,
    rows: Sequence[tuple[int, int | None, datetime | None, str | None]],
    cursor_key: bytes = cursors.DEFAULT_KEY,
) -> IncidentPage:
    """Build the page from :func:`kds.query.statements.page_statement` rows."""
    total = rows[0][0] if rows else 0
    found = [row for row in rows if row[1] is not None]
    has_more = len(found) > query.limit
    found = found[: query.limit]
    next_cursor = None
    if has_more and found:
        _, last_id, last_ts, _ = found[-1]
        assert last_id is not None and last_ts is not None
        next_cursor = cursors.encode(cursors.CursorPosition(last_ts, last_id, query.fingerprint), cursor_key)
    return IncidentPage(
        rows=[row[3] for row in found if row[3] is not None],
        limit=query.limit,
        offset=query.offset,
        total=total,
        has_more=has_more,
        next_cursor=next_cursor,
    )
