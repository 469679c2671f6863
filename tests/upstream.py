"""Request bodies as the clients of the replaced Go service send them (docs/clients.md).

Those clients ``json.Marshal`` the whole ``models.NotificationAudit`` of ``jordigilh/kubernaut``
(``pkg/datastorage/models/notification_audit.go``): every field in struct order, zero values for the
unset ones, ``delivery_status`` and ``error_message`` left out when empty (``omitempty``).
"""

from __future__ import annotations

from typing import Any

GO_ZERO = "0001-01-01T00:00:00Z"  # Go's zero time.Time, as encoding/json writes it
_OMITEMPTY = ("delivery_status", "error_message")


def go_record(**fields: Any) -> dict[str, Any]:
    """``json.Marshal(models.NotificationAudit{...fields})``."""
    record: dict[str, Any] = {
        "id": 0,
        "remediation_id": "",
        "notification_id": "",
        "recipient": "",
        "channel": "",
        "message_summary": "",
        "status": "",
        "sent_at": GO_ZERO,
        "delivery_status": "",
        "error_message": "",
        "escalation_level": 0,
        "created_at": GO_ZERO,
        "updated_at": GO_ZERO,
    }
    record.update(fields)
    return {key: value for key, value in record.items() if value or key not in _OMITEMPTY}
