"""A load harness for ``POST /api/v1/audit/notifications``: many clients, one outcome per notification.

Each of ``clients`` threads takes the next document, posts it once and files the answer:
acknowledged (201/200, with the record id), unavailable (a well-formed 503 problem with
``Retry-After``), or unexpected (anything else, transport errors included). :func:`retry_unavailable`
is the client retry recipe of docs/audit.md: resend the same body until it is acknowledged.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

ROUTE = "/api/v1/audit/notifications"
HEADERS = {"Content-Type": "application/json"}
UNAVAILABLE_TYPE = "https://api.kubernaut.io/problems/service-unavailable"


@dataclass
class LoadResult:
    acknowledged: dict[str, int] = field(default_factory=dict)  # notification_id -> record id
    created: int = 0
    duplicates: int = 0
    unavailable: list[str] = field(default_factory=list)  # notification_ids answered 503
    unexpected: list[tuple[str, str]] = field(default_factory=list)  # (notification_id, what happened)
    elapsed: float = 0.0

    @property
    def answered(self) -> int:
        return self.created + self.duplicates + len(self.unavailable) + len(self.unexpected)


def classify(response: httpx.Response) -> tuple[str, Any]:
    """("ack", (id, created)) | ("unavailable", None) | ("unexpected", description)."""
    status = response.status_code
    if status in (200, 201):
        return "ack", (response.json()["id"], status == 201)
    if status == 503:
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        well_formed = (
            response.headers.get("content-type") == "application/problem+json"
            and problem.get("type") == UNAVAILABLE_TYPE
            and problem.get("status") == 503
            and response.headers.get("retry-after", "").isdigit()
        )
        if well_formed:
            return "unavailable", None
    return "unexpected", f"{status} {response.headers.get('content-type')} {response.text[:300]}"


class Load:
    """Post ``documents`` from ``clients`` threads; :attr:`answered` and :attr:`unavailable_count` are live."""

    def __init__(self, base_url: str, documents: list[dict[str, Any]], *, clients: int, timeout: float = 30.0):
        self.base_url = base_url
        self.bodies = [(document["notification_id"], orjson.dumps(document)) for document in documents]
        self.clients = clients
        self.timeout = timeout
        self.result = LoadResult()
        self._next = itertools.count()
        self._lock = threading.Lock()

    @property
    def answered(self) -> int:
        with self._lock:
            return self.result.answered

    @property
    def unavailable_count(self) -> int:
        with self._lock:
            return len(self.result.unavailable)

    def _file(self, notification_id: str, kind: str, detail: Any) -> None:
        with self._lock:
            result = self.result
            if kind == "ack":
                record_id, created = detail
                result.acknowledged[notification_id] = record_id
                if created:
                    result.created += 1
                else:
                    result.duplicates += 1
            elif kind == "unavailable":
                result.unavailable.append(notification_id)
            else:
                result.unexpected.append((notification_id, detail))

    def _client(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=self.timeout) as http:
            while True:
                index = next(self._next)
                if index >= len(self.bodies):
                    return
                notification_id, body = self.bodies[index]
                try:
                    kind, detail = classify(http.post(ROUTE, content=body, headers=HEADERS))
                except httpx.HTTPError as exc:
                    kind, detail = "unexpected", f"{type(exc).__name__}: {exc}"
                self._file(notification_id, kind, detail)

    def run(self, during: Callable[[Load], None] | None = None) -> LoadResult:
        """Run to completion; ``during(self)`` runs meanwhile in this thread (e.g. to restart the database)."""
        started = time.monotonic()
        threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for thread in threads:
            thread.start()
        try:
            if during is not None:
                during(self)
        finally:
            for thread in threads:
                thread.join()
        self.result.elapsed = time.monotonic() - started
        return self.result


def retry_unavailable(
    base_url: str, documents: dict[str, dict[str, Any]], notification_ids: list[str], *, deadline: float
) -> tuple[dict[str, int], dict[str, int]]:
    """Resend each body until acknowledged (docs/audit.md#client-retry-recipe).

    Returns ({id: record id}, status counts).
    """
    acknowledged: dict[str, int] = {}
    statuses: dict[str, int] = {}
    with httpx.Client(base_url=base_url, timeout=30.0) as http:
        for notification_id in notification_ids:
            body = orjson.dumps(documents[notification_id])
            while True:
                response = http.post(ROUTE, content=body, headers=HEADERS)
                kind, detail = classify(response)
                if kind == "ack":
                    statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
                    acknowledged[notification_id] = detail[0]
                    break
                if kind != "unavailable" or time.monotonic() > deadline:
                    raise AssertionError(f"retrying {notification_id}: {detail or 'still unavailable'}")
                statuses["503"] = statuses.get("503", 0) + 1
                time.sleep(min(float(response.headers["retry-after"]), 0.2))
    return acknowledged, statuses
