"""What kds needs of the database, in one place.

The migrations create it, the tests compare the migrated catalogue with it and
``kds validate-infra`` checks live databases against it, so the three can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    data_type: str  # as information_schema.columns.data_type reports it
    length: int | None = None  # character_maximum_length
    precision: tuple[int, int] | None = None  # numeric (precision, scale)
    nullable: bool = True

    def describe(self) -> str:
        return describe_type(self.data_type, self.length, self.precision)


def describe_type(data_type: str, length: int | None, precision: tuple[int, int] | None) -> str:
    """A column type as people write it: ``character varying(63)``, ``numeric(4,3)``, ``text``."""
    if length is not None:
        return f"{data_type}({length})"
    if precision is not None:
        return f"{data_type}({precision[0]},{precision[1]})"
    return data_type


def _v(name: str, length: int, *, nullable: bool = True) -> Column:
    return Column(name, "character varying", length=length, nullable=nullable)


def _ts(name: str, *, nullable: bool = True) -> Column:
    return Column(name, "timestamp with time zone", nullable=nullable)


TABLES: dict[str, tuple[Column, ...]] = {
    "resource_references": (
        Column("id", "bigint", nullable=False),
        _v("resource_uid", 36, nullable=False),
        _v("api_version", 100, nullable=False),
        _v("kind", 100, nullable=False),
        _v("name", 253, nullable=False),
        _v("namespace", 63),
        _ts("created_at"),
        _ts("deleted_at"),
        _ts("last_seen"),
    ),
    "action_histories": (
        Column("id", "bigint", nullable=False),
        Column("resource_id", "bigint", nullable=False),
        Column("total_actions", "integer"),
        _ts("last_action_at"),
        _ts("created_at"),
        _ts("updated_at"),
    ),
    "resource_action_traces": (
        Column("id", "bigint", nullable=False),
        Column("action_history_id", "bigint", nullable=False),
        _v("action_id", 64, nullable=False),
        _v("correlation_id", 64),
        _ts("action_timestamp", nullable=False),
        _ts("execution_start_time"),
        _ts("execution_end_time"),
        Column("execution_duration_ms", "integer"),
        _v("alert_name", 200, nullable=False),
        _v("alert_severity", 20, nullable=False),
        Column("alert_labels", "jsonb"),
        Column("alert_annotations", "jsonb"),
        _ts("alert_firing_time"),
        _v("alert_fingerprint", 64),
        _v("cluster_name", 100),
        _v("environment", 20),
        _v("model_used", 100, nullable=False),
        Column("model_confidence", "numeric", precision=(4, 3), nullable=False),
        Column("model_reasoning", "text"),
        _v("action_type", 50, nullable=False),
        Column("action_parameters", "jsonb"),
        _v("execution_status", 20),
        Column("execution_error", "text"),
        Column("effectiveness_score", "numeric", precision=(4, 3)),
        _ts("created_at"),
        _ts("updated_at"),
    ),
    "notification_audit": (
        Column("id", "bigint", nullable=False),
        _v("remediation_id", 255, nullable=False),
        _v("notification_id", 255, nullable=False),
        _v("recipient", 255, nullable=False),
        _v("channel", 50, nullable=False),
        Column("message_summary", "text", nullable=False),
        _v("status", 50, nullable=False),
        _ts("sent_at", nullable=False),
        Column("delivery_status", "text"),
        Column("error_message", "text"),
        Column("escalation_level", "integer"),
        _ts("created_at"),
        _ts("updated_at"),
    ),
}

INCIDENT_TABLE = "resource_action_traces"
AUDIT_TABLE = "notification_audit"
READ_TABLES = ("resource_references", "action_histories", "resource_action_traces")


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    table: str
    purpose: str


INDEXES: tuple[Index, ...] = (
    Index("kds_rat_timestamp_idx", INCIDENT_TABLE, "newest-first listing and keyset paging"),
    Index("kds_rat_history_severity_timestamp_idx", INCIDENT_TABLE, "namespace (+ severity) pages and counts"),
    Index("kds_rat_severity_timestamp_idx", INCIDENT_TABLE, "severity filter"),
    Index("kds_rat_cluster_timestamp_idx", INCIDENT_TABLE, "cluster filter"),
    Index("kds_rat_environment_timestamp_idx", INCIDENT_TABLE, "environment filter"),
    Index("kds_rat_action_type_timestamp_idx", INCIDENT_TABLE, "action_type filter"),
    Index("kds_rat_alert_name_timestamp_idx", INCIDENT_TABLE, "alert_name filter"),
    Index("kds_rat_status_timestamp_idx", INCIDENT_TABLE, "status filter"),
    Index("kds_rr_namespace_id_idx", "resource_references", "namespace to resource ids, index-only"),
    Index("kds_ah_resource_id_idx", "action_histories", "resource ids to history ids, index-only"),
)
