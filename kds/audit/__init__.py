"""The audit-trail write core (docs/audit.md): validate a notification record, store it exactly once.

No HTTP here: the server's route only translates between HTTP and these functions.
"""

from kds.audit.models import NotificationRecord, NotificationRequest
from kds.audit.parse import FieldProblem, parse_notification, validate_notification
from kds.audit.store import record_notification, store_notification

__all__ = [
    "FieldProblem",
    "NotificationRecord",
    "NotificationRequest",
    "parse_notification",
    "record_notification",
    "store_notification",
    "validate_notification",
]
