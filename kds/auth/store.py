"""A tokens file kept current without a restart, and the ``Authorization: Bearer`` check against it.

The file is re-read when it changes: at most once per ``check_interval`` (1 s by default) a caller
that asks for the tokens makes the store read the file and compare the SHA-256 of its content with
the version in force. Reading the content (a few hundred bytes) instead of trusting timestamps
follows every way a file can change: an edit in place, an atomic rename, and a Kubernetes Secret
update, where the mounted path is a symlink into ``..data``, itself a symlink to a timestamped
directory that is swapped atomically. A version that does not parse (or a file that vanished) is
reported once and the previous tokens stay in force; the next valid version replaces them.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kds.auth.tokens import Principal, TokenFileError, TokenTable, decode_token_file, read_token_file

CHECK_INTERVAL = 1.0
BEARER = "bearer"

Report = Callable[..., None]
_log = logging.getLogger("kds.auth")


def _default_report(level: int, message: str, **fields: Any) -> None:
    _log.log(level, "%s %s", message, " ".join(f"{key}={value}" for key, value in fields.items()))


def bearer_token(authorization: str | None) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` header value (scheme case-insensitive), or None.

    Header values arrive decoded with ``surrogateescape`` (as Sanic decodes them); encoding them back
    the same way hashes exactly the bytes the client sent.
    """
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != BEARER:
        return None
    token = credentials.strip()
    if not token:
        return None
    return token.encode("utf-8", "surrogateescape")


class TokenStore:
    """The tokens in force, reloaded from ``path`` when its content changes."""

    def __init__(
        self,
        path: Path | str,
        *,
        check_interval: float = CHECK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        report: Report = _default_report,
    ) -> None:
        """Load the file now: a missing or malformed file raises :class:`TokenFileError`."""
        self.path = Path(path)
        self.check_interval = check_interval
        self._clock = clock
        self._report = report
        content = read_token_file(self.path)
        self._table = decode_token_file(content, self.path)
        self._version = hashlib.sha256(content).digest()
        self._rejected: bytes | None = None
        self._next_check = clock() + check_interval
        self._lock = threading.Lock()

    @property
    def table(self) -> TokenTable:
        """The tokens in force (reloading first when a check is due)."""
        if self._clock() >= self._next_check:
            self.check()
        return self._table

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal of an ``Authorization`` header value, or None when missing, malformed or unknown."""
        table = self.table
        token = bearer_token(authorization)
        if token is None:
            return None
        return table.authenticate(token)

    def check(self) -> bool:
        """Read the file now; return True when a new version was put in force."""
        if not self._lock.acquire(blocking=False):
            return False  # another thread is checking right now
        try:
            self._next_check = self._clock() + self.check_interval
            return self._reload()
        finally:
            self._lock.release()

    def _reload(self) -> bool:
        try:
            content = read_token_file(self.path)
        except TokenFileError as error:
            self._reject(hashlib.sha256(str(error).encode()).digest(), error)
            return False
        version = hashlib.sha256(content).digest()
        if version == self._version:
            self._rejected = None
            return False
        if version == self._rejected:
            return False  # reported already; wait for the next change
        try:
            table = decode_token_file(content, self.path)
        except TokenFileError as error:
            self._reject(version, error)
            return False
        self._table, self._version, self._rejected = table, version, None
        self._report(logging.INFO, "tokens file reloaded", path=str(self.path), tokens=len(table))
        return True

    def _reject(self, version: bytes, error: TokenFileError) -> None:
        if version == self._rejected:
            return
        self._rejected = version
        self._report(
            logging.ERROR,
            "tokens file rejected; the previous tokens stay in force",
            path=str(self.path),
            error=error.detail,
        )
