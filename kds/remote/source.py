"""The remote :class:`kds.cli.sources.IncidentSource`: the same questions, asked of ``kds serve``.

Queries are validated by the core before anything is sent and go out as the core's model
(:mod:`kds.query.encode`); answers are read into the same page, incident and summary shapes the
database source returns, so the presenters write the same bytes (docs/remote.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from kds.query.results import IncidentPage
from kds.remote.client import JSON, NDJSON, Client
from kds.remote.errors import ServerProblem, ServerUnreachable

if TYPE_CHECKING:
    from kds.query.models import IncidentQuery
    from kds.query.summary import Summary, SummaryQuery
    from kds.settings import Settings

INCIDENTS = "/api/v1/incidents"
SUMMARY = "/api/v1/incidents/summary"
FIRST_RETRY = 0.2  # seconds; doubles per failed reconnect of a watch, up to LONGEST_RETRY
LONGEST_RETRY = 5.0


class RemotePage(IncidentPage):
    """A page read from the server; its JSON document is the answer's body, byte for byte."""

    __slots__ = ("body",)
    body: bytes

    def __init__(self, body: bytes) -> None:
        document = orjson.loads(body)
        pagination = document["pagination"]
        super().__init__(
            rows=[orjson.dumps(incident).decode() for incident in document["data"]],
            limit=pagination["limit"],
            offset=pagination["offset"],
            total=pagination["total"],
            has_more=pagination["has_more"],
            next_cursor=pagination.get("next_cursor"),
        )
        object.__setattr__(self, "body", body)

    def to_json(self) -> bytes:
        return self.body


class RemoteSource:
    """A running ``kds serve`` at ``--server-url``/``KDS_SERVER_URL``."""

    def __init__(self, config: Settings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.client = Client(config, sleep=sleep)
        self._sleep = sleep
        self._cursor: str | None = None

    def list_query(self, params: Mapping[str, Any]) -> IncidentQuery:
        """Validated locally, except a keyset cursor: it is signed with the server's key, so the server checks it."""
        from kds.query import parse_incident_query
        from kds.query.vocabulary import CLI_DEFAULT_LIMIT

        local = dict(params)
        given = local.get("cursor")
        cursors = given if isinstance(given, list) else [given] if given else []
        if len(cursors) == 1:  # given twice, it stays for the core to reject
            del local["cursor"]
            self._cursor = cursors[0]
        return parse_incident_query(
            local, default_limit=CLI_DEFAULT_LIMIT, cursor_key=self.config.cursor_key, repeated_lists=True
        )

    def page(self, query: IncidentQuery) -> RemotePage:
        from kds.query.encode import incident_query_parameters

        return RemotePage(self.client.get(INCIDENTS, incident_query_parameters(query, cursor=self._cursor)))

    def export(self, query: IncidentQuery) -> Iterator[str]:
        from kds.query.encode import incident_query_parameters

        with self.client.stream(INCIDENTS, incident_query_parameters(query), accept=NDJSON) as lines:
            yield from lines

    def get(self, incident_id: int) -> dict[str, Any]:
        result: dict[str, Any] = orjson.loads(self.client.get(f"{INCIDENTS}/{incident_id}"))
        return result

    def summary(self, query: SummaryQuery) -> Summary:
        from kds.query.encode import summary_query_parameters
        from kds.query.summary import Summary

        return Summary.model_validate_json(self.client.get(SUMMARY, summary_query_parameters(query)))

    def watch(self, query: IncidentQuery, *, interval: float, on_lost: Callable[[str], None]) -> Iterator[list[str]]:
        """The server's watch stream, resumed after its last bookmark whenever it ends or breaks.

        Incidents that arrived after the last bookmark of a broken stream were already printed; the
        resumed stream sends them again (it continues after the bookmark), so they are skipped.
        """
        from kds.query.encode import incident_query_parameters

        base = [*incident_query_parameters(query), ("watch", "true"), ("interval", f"{interval:g}s")]
        resume: str | None = None
        printed_after_bookmark: set[int] = set()
        retry = 0.0
        while True:
            skip, printed_after_bookmark = printed_after_bookmark, set()
            batch: list[str] = []
            try:
                params = [*base, ("resume", resume)] if resume else base
                with self.client.stream(INCIDENTS, params, accept=NDJSON) as lines:
                    for line in lines:
                        event = orjson.loads(line)
                        if event.get("type") == "incident":
                            incident = event["incident"]
                            if incident["id"] in skip:
                                continue
                            printed_after_bookmark.add(incident["id"])
                            batch.append(orjson.dumps(incident).decode())
                        elif event.get("type") == "bookmark":
                            resume = event["resume"]
                            skip, printed_after_bookmark = set(), set()
                            retry = 0.0
                            yield batch
                            batch = []
            except (ServerUnreachable, ServerProblem) as error:
                if isinstance(error, ServerProblem) and error.status < 500:
                    raise
                if resume is None:  # unreachable before the first page: an error, not an outage
                    raise
                if batch:
                    yield batch
                if not retry:
                    on_lost(f"the server {self.client.base_url}")
                retry = min(retry * 2, LONGEST_RETRY) if retry else FIRST_RETRY
                self._sleep(retry)
                printed_after_bookmark |= skip
                continue
            if batch:  # a stream that ended without a final bookmark
                yield batch
            printed_after_bookmark |= skip

    def close(self) -> None:
        self.client.close()


__all__ = ["JSON", "RemotePage", "RemoteSource"]
