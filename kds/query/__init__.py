"""The shared query core: what a valid incident query is, its SQL and its results.

Every front end (CLI flags, HTTP query strings, tests) goes through :func:`parse_incident_query`
and the statements of :mod:`kds.query.statements`. Nothing here imports CLI or HTTP code.
"""

from kds.query.models import IncidentQuery
from kds.query.parse import parse_incident_id, parse_incident_query

__all__ = ["IncidentQuery", "parse_incident_id", "parse_incident_query"]
