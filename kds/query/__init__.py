"""The shared query core: what a valid incident query is, its SQL and its results.

Every front end (CLI flags, HTTP query strings, tests) goes through :func:`parse_incident_query`
and the statements of :mod:`kds.query.statements`. Nothing here imports CLI or HTTP code.
The names below load on first use, so that importing a light module such as
:mod:`kds.query.vocabulary` does not load pydantic (the CLI must start fast).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kds.query.models import IncidentQuery
    from kds.query.parse import parse_incident_id, parse_incident_query

_HOMES = {"IncidentQuery": "models", "parse_incident_id": "parse", "parse_incident_query": "parse"}
__all__ = ["IncidentQuery", "parse_incident_id", "parse_incident_query"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
