"""The fixed vocabulary of incident queries (docs/api.md, docs/cli.md, docs/summary.md): the one owner of these."""

from __future__ import annotations

SEVERITIES = ("info", "warning", "critical", "high", "medium", "low")
ENVIRONMENTS = ("production", "staging", "development", "test")

MIN_LIMIT, MAX_LIMIT = 1, 1000
LIMIT_RANGE = f"between {MIN_LIMIT} and {MAX_LIMIT}"
API_DEFAULT_LIMIT = 100
CLI_DEFAULT_LIMIT = 50
MAX_TEXT_LENGTH = 253
MAX_INCIDENT_ID = 2**63 - 1
MAX_OFFSET = 2**63 - 1

# Exact-match filters and the column each one reads (the identifier allow-list).
FILTER_COLUMNS: dict[str, tuple[str, str]] = {
    "namespace": ("rr", "namespace"),
    "severity": ("rat", "alert_severity"),
    "cluster": ("rat", "cluster_name"),
    "environment": ("rat", "environment"),
    "action_type": ("rat", "action_type"),
    "alert_name": ("rat", "alert_name"),
    "status": ("rat", "execution_status"),
}
# Filters that take a comma-separated list meaning "any of" (docs/summary.md, "Filters").
LIST_FILTERS = ("severity", "environment", "status")
TIME_PARAMETERS = ("since", "until")
PAGING_PARAMETERS = ("limit", "offset", "cursor")
PARAMETERS = (*FILTER_COLUMNS, *TIME_PARAMETERS, *PAGING_PARAMETERS)

# Summaries: what ``by`` may group on, and their own limits.
TIME_BUCKETS = ("hour", "day")
SUMMARY_DIMENSIONS = (*FILTER_COLUMNS, *TIME_BUCKETS)
SUMMARY_DEFAULT_LIMIT = 20
MAX_BUCKETS = 1000
SUMMARY_PARAMETERS = (*FILTER_COLUMNS, *TIME_PARAMETERS, "by", "limit")
