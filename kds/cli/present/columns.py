"""The columns of ``table`` and ``wide`` (docs/terminal.md, "The table")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kds.cli.present.age import age

Incident = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    read: Callable[[Incident, datetime], str]
    keep: int | None = None  # never cut below this many cells (None: may be shortened or dropped)
    drop_rank: int | None = None  # dropped on a narrow terminal, lowest rank first


def _text(key: str) -> Callable[[Incident, datetime], str]:
    def read(incident: Incident, _now: datetime) -> str:
        value = incident.get(key)
        return "" if value is None else str(value)

    return read


def _time(incident: Incident, _now: datetime) -> str:
    stamp = incident.get("action_timestamp") or ""
    return f"{stamp[:19]}Z" if stamp else ""


def _resource(incident: Incident, _now: datetime = datetime.min) -> str:
    resource = incident.get("resource") or {}
    return f"{resource.get('kind', '')}/{resource.get('name', '')}"


def _age(incident: Incident, now: datetime) -> str:
    return age(incident.get("action_timestamp"), now)


ALERT = Column("ALERT", _text("alert_name"))
TABLE_COLUMNS: tuple[Column, ...] = (
    Column("ID", _text("id"), keep=10**6),
    Column("AGE", _age, keep=10**6),
    Column("SEVERITY", _text("severity"), keep=10**6),
    Column("NAMESPACE", _text("namespace"), keep=30),
    ALERT,
    Column("ACTION", _text("action_type"), drop_rank=2),
    Column("STATUS", _text("execution_status"), drop_rank=1),
)
WIDE_COLUMNS: tuple[Column, ...] = (
    *TABLE_COLUMNS,
    Column("TIME", _time),
    Column("CLUSTER", _text("cluster")),
    Column("ENVIRONMENT", _text("environment")),
    Column("RESOURCE", _resource),
    Column("MODEL", _text("model_used")),
    Column("CONFIDENCE", _text("model_confidence")),
)
SEVERITY_STYLES = {
    "critical": "bold red",
    "high": "red",
    "medium": "yellow",
    "warning": "yellow",
    "low": "cyan",
    "info": "blue",
}


def resource_text(incident: Incident) -> str:
    """``kind/name`` of an incident's resource."""
    return _resource(incident)
