"""Pydantic models of the query core: the validated query, and the documents it produces.

The response models describe the JSON that :mod:`kds.query.statements` builds inside PostgreSQL;
the server's OpenAPI document is generated from them and the tests check real responses against
them, so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kds.query.cursor import CursorPosition
from kds.query.times import AGE_EXAMPLES
from kds.query.vocabulary import API_DEFAULT_LIMIT, ENVIRONMENTS, MAX_LIMIT, MAX_OFFSET, MIN_LIMIT, SEVERITIES


class IncidentFilter(BaseModel):
    """Exact-match filters (combined with AND) and the time range.

    ``severity``, ``environment`` and ``status`` hold every accepted value ("any of"), normalised,
    without repeats and sorted, so equal filters compare equal whatever order they were given in.
    """

    model_config = ConfigDict(frozen=True)

    namespace: str | None = Field(None, description="Kubernetes namespace of the resource.")
    severity: tuple[str, ...] | None = Field(
        None, description=f"Any of {', '.join(SEVERITIES)} (case-insensitive); comma-separated for several."
    )
    cluster: str | None = Field(None, description="Cluster name.")
    environment: tuple[str, ...] | None = Field(
        None, description=f"Any of {', '.join(ENVIRONMENTS)} (case-insensitive); comma-separated for several."
    )
    action_type: str | None = Field(None, description="Remediation action type, e.g. restart_pod.")
    alert_name: str | None = Field(None, description="Alert name.")
    status: tuple[str, ...] | None = Field(
        None, description="Execution status, e.g. completed, failed, pending; comma-separated for several."
    )
    since: datetime | None = Field(
        None, description=f"Inclusive lower bound: RFC 3339 or an age ({AGE_EXAMPLES}: that long ago)."
    )
    until: datetime | None = Field(None, description="Exclusive upper bound: RFC 3339 or an age.")


class IncidentQuery(BaseModel):
    """A validated incident list query."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    filter: IncidentFilter = IncidentFilter()
    limit: int = Field(API_DEFAULT_LIMIT, ge=MIN_LIMIT, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    cursor: CursorPosition | None = None
    # Digest of the filters as given, carried by the cursors this query issues.
    fingerprint: str = ""


class Resource(BaseModel):
    kind: str
    name: str


class Incident(BaseModel):
    """An incident as listed: one remediation action and the alert that caused it."""

    id: int
    action_id: str
    correlation_id: str | None
    alert_name: str
    severity: str
    namespace: str | None
    cluster: str | None
    environment: str | None
    action_type: str
    execution_status: str | None
    action_timestamp: str = Field(description="RFC 3339, UTC.")
    resource: Resource
    model_used: str
    model_confidence: float
    effectiveness_score: float | None
    execution_duration_ms: int | None


class IncidentDetail(Incident):
    """An incident with its detail fields."""

    alert_labels: dict[str, Any] | None
    alert_annotations: dict[str, Any] | None
    action_parameters: dict[str, Any] | None
    alert_fingerprint: str | None
    alert_firing_time: str | None
    model_reasoning: str | None
    execution_start_time: str | None
    execution_end_time: str | None
    execution_error: str | None


class Pagination(BaseModel):
    limit: int
    offset: int
    total: int = Field(description="Rows matching the filters, not the page length.")
    has_more: bool
    next_cursor: str | None = Field(description="Pass back as `cursor` for the next page; null on the last page.")


class IncidentList(BaseModel):
    data: list[Incident]
    pagination: Pagination
