"""Partition maintenance of the incident table: list, ensure ahead, drop past retention (docs/partitions.md)."""

from kds.db.partitions.catalog import NotPartitioned, Partition, list_partitions
from kds.db.partitions.ensure import DEFAULT_AHEAD, Created, ensure
from kds.db.partitions.locking import LockPolicy
from kds.db.partitions.retention import Retention, drop, expired, parse_retention

__all__ = [
    "DEFAULT_AHEAD",
    "Created",
    "LockPolicy",
    "NotPartitioned",
    "Partition",
    "Retention",
    "drop",
    "ensure",
    "expired",
    "list_partitions",
    "parse_retention",
]
