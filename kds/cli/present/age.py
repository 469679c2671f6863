"""``AGE`` as kubectl prints it: the rules of k8s.io/apimachinery ``duration.HumanDuration``.

About two to three significant figures: ``45s``, ``2m30s``, ``12m``, ``3h15m``, ``3h``, ``2d3h``,
``6d``, ``2y45d``, ``9y`` (docs/terminal.md, "AGE").
"""

from __future__ import annotations

from datetime import datetime

_MINUTE, _HOUR, _DAY = 60, 3600, 86400


def human_duration(seconds: float) -> str:
    """The duration as ``kubectl get`` shows an age; ``<invalid>`` more than 1 s in the future."""
    whole = int(seconds)  # like Go's int(d.Seconds()): truncated toward zero
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 2 * _MINUTE:
        return f"{whole}s"
    minutes = whole // _MINUTE
    if minutes < 10:
        rest = whole % _MINUTE
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 3 * 60:
        return f"{minutes}m"
    hours = whole // _HOUR
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        rest = days % 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"


def age(timestamp: str | None, now: datetime) -> str:
    """The age of an RFC 3339 timestamp (as the documents carry it) at ``now``."""
    if not timestamp:
        return ""
    return human_duration((now - datetime.fromisoformat(timestamp)).total_seconds())
