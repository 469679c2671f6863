"""The one HTTP client of the remote mode, on httpx (docs/remote.md, "Connections").

One :class:`httpx.Client` per command: the connection is reused (HTTP/1.1 keep-alive) for retries,
pages and watch reconnects. Timeouts: ``KDS_SERVER_CONNECT_TIMEOUT`` (default 5 s) to connect,
``KDS_SERVER_TIMEOUT`` (default 30 s) for each read. ``https`` is verified against the system's CA
store (:func:`ssl.create_default_context`, which also honours ``SSL_CERT_FILE``/``SSL_CERT_DIR``), or
only against ``--ca-file``/``KDS_SERVER_CA_FILE`` when given. A 503 answer with ``Retry-After`` is
retried up to :data:`RETRIES` times (every request here is a read). Transport failures become
:class:`kds.remote.errors.ServerUnreachable` with a one-line reason.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from kds import __version__
from kds.errors import ConfigurationError, KdsError
from kds.remote.credentials import bearer_token
from kds.remote.errors import ServerProblem, ServerTimeout, ServerUnreachable, problem_error

if TYPE_CHECKING:
    from kds.settings import Settings

NDJSON = "application/x-ndjson"
JSON = "application/json"
RETRIES = 3
LONGEST_RETRY_AFTER = 5.0  # seconds; a longer Retry-After is shortened to this

Params = Sequence[tuple[str, str]]


def ssl_context(config: Settings, url: str) -> ssl.SSLContext:
    """The system CAs, or only ``--ca-file``; for an ``http`` URL a context that trusts nothing.

    The client never follows redirects, so an ``http`` URL never negotiates TLS; not loading the
    system store there saves its cost at every start.
    """
    if urlsplit(url).scheme != "https":
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, and trusts no CA: never used
    if config.server_ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(config.server_ca_file))
    except (OSError, ssl.SSLError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigurationError(f"--ca-file={config.server_ca_file}: cannot load ({reason})") from None


class Client:
    """GET requests to one kds server, with its errors mapped to :mod:`kds.remote.errors`."""

    def __init__(self, config: Settings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        assert config.server_url is not None
        self.base_url = config.server_url
        self.read_timeout = config.server_timeout
        self.connect_timeout = config.server_connect_timeout
        headers = {"User-Agent": f"kds/{__version__}", "Accept": JSON}
        token = bearer_token(config)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(self.read_timeout, connect=self.connect_timeout),
            verify=ssl_context(config, self.base_url),
            follow_redirects=False,
            trust_env=False,  # proxies and CA files come from kds's own settings only
        )
        self._sleep = sleep

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, params: Params = ()) -> bytes:
        """The body of a successful answer (after retrying 503s that say when to retry)."""
        for attempt in range(RETRIES + 1):
            with self.errors():
                response = self._http.get(path, params=list(params))
                if response.is_success:
                    return response.content
                error = self._problem(response, response.content)
            self._retry_or_raise(error, attempt)
        raise AssertionError("unreachable")

    @contextmanager
    def stream(self, path: str, params: Params = (), *, accept: str = NDJSON) -> Iterator[Iterator[str]]:
        """The lines of a successful streamed answer; the connection goes back to the pool on exit."""
        for attempt in range(RETRIES + 1):
            with self.errors(), self._http.stream("GET", path, params=list(params), headers={"Accept": accept}) as r:
                if r.is_success:
                    yield self._lines(r)
                    return
                error = self._problem(r, r.read())
            self._retry_or_raise(error, attempt)

    def _lines(self, response: httpx.Response) -> Iterator[str]:
        with self.errors():
            yield from (line for line in response.iter_lines() if line)

    def _problem(self, response: httpx.Response, body: bytes) -> KdsError:
        return problem_error(response.status_code, body, self.base_url, _retry_after(response.headers))

    def _retry_or_raise(self, error: KdsError, attempt: int) -> None:
        """Sleep before the next attempt of a 503 that says when to retry; raise anything else."""
        if not isinstance(error, ServerProblem) or error.status != 503 or error.retry_after is None:
            raise error
        if attempt >= RETRIES:
            raise error
        self._sleep(min(error.retry_after, LONGEST_RETRY_AFTER))

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn httpx's transport exceptions into one-line :class:`ServerUnreachable` errors."""
        try:
            yield
        except httpx.ConnectTimeout:
            raise ServerTimeout(
                f"could not connect to {self._where()} within {self.connect_timeout:g}s (KDS_SERVER_CONNECT_TIMEOUT)"
            ) from None
        except httpx.TimeoutException:
            raise ServerTimeout(
                f"no answer from {self.base_url} within {self.read_timeout:g}s (KDS_SERVER_TIMEOUT)"
            ) from None
        except httpx.TransportError as error:
            raise ServerUnreachable(self._reason(error)) from None

    def _where(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"

    def _reason(self, error: httpx.TransportError) -> str:
        cause = _root_cause(error)
        where = self._where()
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                f"TLS verification of {where} failed ({cause.verify_message}); "
                "give the server's CA with --ca-file or KDS_SERVER_CA_FILE"
            )
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake with {where} failed ({cause.reason or cause})"
        if isinstance(cause, ConnectionRefusedError):
            return f"connection to {where} refused; is kds serve running at {self.base_url}?"
        if _is_dns_failure(cause):
            return f"cannot resolve the host of {self.base_url} ({getattr(cause, 'strerror', None) or cause})"
        if isinstance(error, httpx.RemoteProtocolError | httpx.ReadError):
            return f"the connection to {where} broke mid-answer ({error})"
        return f"cannot reach {self.base_url} ({cause or error})"


def _root_cause(error: BaseException) -> BaseException | None:
    seen = error
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    return seen if seen is not error else None


def _is_dns_failure(cause: BaseException | None) -> bool:
    import socket

    return isinstance(cause, socket.gaierror)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds (delay-seconds or an HTTP date), None when absent or unreadable."""
    value = headers.get("retry-after")
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
