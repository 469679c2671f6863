"""Query results as documents: the list page of docs/api.md, assembled from JSON built in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from kds.query import cursor as cursors
from kds.query.models import IncidentQuery


@dataclass(frozen=True, slots=True, kw_only=True)
class _Page:
    """What every list page carries beside its documents."""

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

    def _joined_documents(self) -> bytes:
        raise NotImplementedError

    def to_json(self) -> bytes:
        """``{"data": [...], "pagination": {...}}`` without re-encoding the documents."""
        return _list_document(self._joined_documents(), self.pagination())


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentPage(_Page):
    rows: list[str]  # one JSON document per incident

    def _joined_documents(self) -> bytes:
        return ",".join(self.rows).encode()

    def incidents(self) -> list[dict[str, Any]]:
        return [orjson.loads(row) for row in self.rows]

    def document(self) -> dict[str, Any]:
        return {"data": self.incidents(), "pagination": self.pagination()}


@dataclass(frozen=True, slots=True, kw_only=True)
class EncodedPage(_Page):
    """A page whose documents arrived from the database already joined (UTF-8 JSON, comma-separated)."""

    data: bytes

    def _joined_documents(self) -> bytes:
        return self.data


def _list_document(data: bytes, pagination: dict[str, Any]) -> bytes:
    return b'{"data":[' + data + b'],"pagination":' + orjson.dumps(pagination) + b"}"


def _next_cursor(query: IncidentQuery, last_ts: datetime | None, last_id: int | None, key: bytes) -> str | None:
    assert last_id is not None and last_ts is not None
    if last_ts.tzinfo is None:  # the statements send UTC wall time (kds.query.statements)
        last_ts = last_ts.replace(tzinfo=UTC)
    return cursors.encode(cursors.CursorPosition(last_ts, last_id, query.fingerprint), key)


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
        next_cursor = _next_cursor(query, last_ts, last_id, cursor_key)
    return IncidentPage(
        rows=[row[3] for row in found if row[3] is not None],
        limit=query.limit,
        offset=query.offset,
        total=total,
        has_more=has_more,
        next_cursor=next_cursor,
    )


def assemble_encoded_page(
    query: IncidentQuery,
    row: tuple[int, int, bytes | None, datetime | None, int | None],
    cursor_key: bytes = cursors.DEFAULT_KEY,
) -> EncodedPage:
    """Build the page from the one row of :func:`kds.query.statements.page_document_statement`."""
    total, fetched, data, last_ts, last_id = row
    has_more = fetched > query.limit
    return EncodedPage(
        data=data or b"",
        limit=query.limit,
        offset=query.offset,
        total=total,
        has_more=has_more,
        next_cursor=_next_cursor(query, last_ts, last_id, cursor_key) if has_more else None,
    )
