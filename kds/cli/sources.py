"""Where the incident commands get their data: the database, or a running ``kds serve``.

:class:`IncidentSource` is the one seam between the commands and their data. The commands parse
their options with the query core, ask a source, and hand what it returns to the same presenters,
whichever source it is; they do not branch per mode. :func:`open_source` picks the source:
``--server-url``/``KDS_SERVER_URL`` selects :class:`kds.remote.source.RemoteSource` (docs/remote.md),
otherwise :class:`DirectSource` reads the database (``--database-url``, ``KDS_DATABASE_URL`` or the
embedded default; reads from ``--read-database-url`` when set). Giving a database and a server is
``invalid-parameter``: the user must say which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from kds.errors import ConfigurationError

if TYPE_CHECKING:
    import psycopg

    from kds.query.models import IncidentQuery
    from kds.query.summary import Summary, SummaryQuery
    from kds.settings import Settings


class ListPage(Protocol):
    """A page of incidents as the presenters read it (:class:`kds.query.results.IncidentPage`)."""

    @property
    def rows(self) -> list[str]: ...
    @property
    def limit(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def total(self) -> int: ...
    @property
    def has_more(self) -> bool: ...

    def to_json(self) -> bytes: ...
    def document(self) -> dict[str, Any]: ...
    def incidents(self) -> list[dict[str, Any]]: ...


class IncidentSource(Protocol):
    """What ``kds incidents list/get/summary`` (and ``list --watch``) need from their data."""

    def list_query(self, params: Mapping[str, Any]) -> IncidentQuery:
        """The options (a list of values per option, as given), validated by the query core."""
        ...

    def page(self, query: IncidentQuery) -> ListPage: ...

    def export(self, query: IncidentQuery) -> Iterator[str]:
        """Every matching incident as one JSON document each, streamed (memory stays flat)."""
        ...

    def get(self, incident_id: int) -> dict[str, Any]: ...

    def summary(self, query: SummaryQuery) -> Summary: ...

    def watch(self, query: IncidentQuery, *, interval: float, on_lost: Callable[[str], None]) -> Iterator[list[str]]:
        """The newest page, then each batch of newly committed matches (exactly once), until stopped.

        A lost database or server is retried with backoff; ``on_lost`` hears what was lost, once per outage.
        """
        ...

    def close(self) -> None: ...


def open_source(config: Settings) -> IncidentSource:
    """The database, or the server when ``--server-url``/``KDS_SERVER_URL`` is set (not both)."""
    if config.server_url and (config.database_url or config.read_database_url):
        raise ConfigurationError(
            "give either a database (--database-url, KDS_DATABASE_URL) or a server (--server-url, KDS_SERVER_URL), "
            "not both"
        )
    if config.server_url:
        from kds.remote.source import RemoteSource

        return RemoteSource(config)
    return DirectSource(config)


class DirectSource:
    """The database, through one read-only connection opened on first use.

    Pages, exports, incidents and summaries come from the read database when one is configured
    (docs/scaling.md#read-replicas); the watch needs the primary's transaction ids, so it reads there.
    """

    def __init__(self, config: Settings) -> None:
        self.config = config
        self._conn: psycopg.Connection | None = None
        self._url: str | None = None

    def _database_url(self) -> str:
        if self._url is None:
            from kds.db.source import resolve

            self._url = resolve(self.config).url
        return self._url

    def _connect(self, *, autocommit: bool = False, reads: bool = False) -> psycopg.Connection:
        from kds.db.connection import connect

        read_url = self.config.read_database_url if reads else None
        return connect(
            read_url or self._database_url(),
            application_name="kds-cli",
            statement_timeout=self.config.statement_timeout,
            connect_timeout=self.config.connect_timeout,
            read_only=True,
            autocommit=autocommit,
            pooler=self.config.database_pooler,
        )

    def _connection(self) -> psycopg.Connection:
        if self._conn is None:
            self._conn = self._connect(reads=True)
        return self._conn

    def list_query(self, params: Mapping[str, Any]) -> IncidentQuery:
        from kds.query import parse_incident_query
        from kds.query.vocabulary import CLI_DEFAULT_LIMIT

        return parse_incident_query(
            params, default_limit=CLI_DEFAULT_LIMIT, cursor_key=self.config.cursor_key, repeated_lists=True
        )

    def page(self, query: IncidentQuery) -> ListPage:
        from kds.db.connection import database_errors
        from kds.query.execute import fetch_page

        with database_errors():
            return fetch_page(self._connection(), query, self.config.cursor_key)

    def export(self, query: IncidentQuery) -> Iterator[str]:
        from kds.db.connection import database_rows
        from kds.query.execute import stream_incidents

        yield from database_rows(stream_incidents(self._connection(), query))

    def get(self, incident_id: int) -> dict[str, Any]:
        import orjson

        from kds.db.connection import database_errors
        from kds.query.execute import fetch_incident

        with database_errors():
            incident: dict[str, Any] = orjson.loads(fetch_incident(self._connection(), incident_id))
        return incident

    def summary(self, query: SummaryQuery) -> Summary:
        from kds.db.connection import database_errors
        from kds.query.summary_sql import fetch_summary

        with database_errors():
            return fetch_summary(self._connection(), query)

    def watch(self, query: IncidentQuery, *, interval: float, on_lost: Callable[[str], None]) -> Iterator[list[str]]:
        from kds.cli.common import transaction_setup
        from kds.query.watch import Watch
        from kds.query.watch_loop import follow

        self._database_url()  # the embedded default is located (and announced) before the first page
        yield from follow(
            Watch(query),
            lambda: self._connect(autocommit=True),
            interval=interval,
            on_lost=lambda: on_lost("the database connection"),
            setup=transaction_setup(self.config, self.config.statement_timeout),
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
