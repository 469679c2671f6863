"""A validated query written back out as query-string parameters (the remote mode sends these).

The CLI validates its options with the core first; what goes to the server is the core's model,
not the raw options: relative times are sent as the absolute RFC 3339 moments they resolved to
(the client's clock decides "30m ago"), lists comma-separated, defaults included. The one thing
not re-encoded is a keyset cursor: it is signed with the server's key, so the client passes the
text it was given through unchanged (docs/remote.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from kds.query.models import IncidentFilter, IncidentQuery
from kds.timefmt import rfc3339

if TYPE_CHECKING:
    from kds.query.summary import SummaryQuery

QueryString = list[tuple[str, str]]


def _value(value: Any) -> str:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    return str(value)


def filter_parameters(filters: IncidentFilter) -> QueryString:
    """Every filter that is set, by its parameter name, in the model's field order."""
    values = filters.model_dump(exclude_none=True)
    return [(name, _value(value)) for name, value in values.items()]


def incident_query_parameters(query: IncidentQuery, *, cursor: str | None = None) -> QueryString:
    """The parameters of ``GET /api/v1/incidents`` that ask the server for ``query``."""
    parameters = [*filter_parameters(query.filter), ("limit", str(query.limit))]
    if query.offset:
        parameters.append(("offset", str(query.offset)))
    if cursor:
        parameters.append(("cursor", cursor))
    return parameters


def summary_query_parameters(query: SummaryQuery) -> QueryString:
    """The parameters of ``GET /api/v1/incidents/summary`` that ask the server for ``query``."""
    parameters = [("by", query.by), *filter_parameters(query.filter)]
    if not query.bucketed:
        parameters.append(("limit", str(query.limit)))
    return parameters
