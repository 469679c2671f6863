"""The tokens file (docs/configuration.md) and the comparison of a presented token against it.

Format: each non-empty line that does not start with ``#`` is ::

    sha256:<64 hex digits> <scope>[,<scope>...] [name]

The digest is the SHA-256 of the token's bytes (``kds auth hash-token`` prints it); hex digits are
case-insensitive; the name (the rest of the line) labels the client in logs and defaults to a short
prefix of the digest. The file only ever holds digests, so reading it leaks no token, and error
messages never echo the first field (a plaintext token pasted there by mistake stays out of logs).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

from kds.errors import KdsError

INCIDENTS_READ = "incidents:read"
AUDIT_WRITE = "audit:write"
METRICS_READ = "metrics:read"
SCOPES = (INCIDENTS_READ, AUDIT_WRITE, METRICS_READ)

DIGEST_PREFIX = "sha256:"
MAX_FILE_BYTES = 1 << 20
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_LINE_FORMAT = "'sha256:<hex digest> <scope>[,<scope>...] [name]'"


class TokenFileError(KdsError):
    """The tokens file is missing, unreadable or malformed (the detail names the file and the line)."""

    slug = "invalid-tokens-file"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who presented a known token: the name from the file and the scopes it grants."""

    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


@dataclass(frozen=True, slots=True)
class TokenEntry:
    digest: bytes
    principal: Principal
    line: int


def hash_token(token: bytes) -> str:
    """The ``sha256:<hex>`` form of a token, as the tokens file holds it."""
    return DIGEST_PREFIX + hashlib.sha256(token).hexdigest()


class TokenTable:
    """The parsed tokens of one version of the file."""

    def __init__(self, entries: tuple[TokenEntry, ...]) -> None:
        self.entries = entries

    def __len__(self) -> int:
        return len(self.entries)

    def authenticate(self, token: bytes) -> Principal | None:
        """The principal of ``token``, or None.

        The presented token is hashed and its digest compared with *every* entry in constant time
        (no early exit), so neither the timing of one comparison nor the number of comparisons tells
        which entry, or how much of a digest, matched.
        """
        presented = hashlib.sha256(token).digest()
        found: Principal | None = None
        for entry in self.entries:
            matches = hmac.compare_digest(presented, entry.digest)
            found = entry.principal if matches else found
        return found


def parse_tokens(text: str, *, source: str = "tokens file") -> TokenTable:
    """Parse the file's text; raise :class:`TokenFileError` naming the first bad line."""
    entries: list[TokenEntry] = []
    first_line_of: dict[bytes, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entry = _parse_line(line, number, source)
        if entry.digest in first_line_of:
            raise TokenFileError(
                f"{source} line {number}: the same token digest is already on line {first_line_of[entry.digest]}"
            )
        first_line_of[entry.digest] = number
        entries.append(entry)
    if not entries:
        raise TokenFileError(f"{source} holds no token (every line is blank or a comment)")
    return TokenTable(tuple(entries))


def _parse_line(line: str, number: int, source: str) -> TokenEntry:
    where = f"{source} line {number}"
    fields = line.split(None, 2)
    if len(fields) < 2:
        raise TokenFileError(f"{where}: expected {_LINE_FORMAT}")
    digest_field, scope_field = fields[0], fields[1]
    hex_digest = digest_field[len(DIGEST_PREFIX) :] if digest_field.startswith(DIGEST_PREFIX) else None
    if hex_digest is None or not _HEX_DIGEST.fullmatch(hex_digest):
        # Never echo this field: a plaintext token pasted here by mistake must not reach a log.
        raise TokenFileError(
            f"{where}: the first field must be 'sha256:' followed by 64 hex digits "
            "(print it with `kds auth hash-token`)"
        )
    scopes: set[str] = set()
    for scope in scope_field.split(","):
        if scope not in SCOPES:
            shown = repr(scope) if scope else "an empty scope"
            raise TokenFileError(f"{where}: unknown scope {shown} (scopes are {', '.join(SCOPES)})")
        scopes.add(scope)
    digest = bytes.fromhex(hex_digest)
    name = fields[2].strip() if len(fields) == 3 else f"sha256:{hex_digest[:12].lower()}"
    return TokenEntry(digest=digest, principal=Principal(name, frozenset(scopes)), line=number)


def read_token_file(path: Path) -> bytes:
    """The file's bytes (following symlinks, as a mounted Secret needs); TokenFileError if unreadable."""
    try:
        with path.open("rb") as handle:
            content = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise TokenFileError(f"tokens file {path} does not exist") from None
    except IsADirectoryError:
        raise TokenFileError(f"tokens file {path} is a directory, not a file") from None
    except PermissionError:
        raise TokenFileError(f"tokens file {path} is not readable by this process") from None
    except OSError as exc:
        raise TokenFileError(f"tokens file {path} cannot be read: {exc.strerror or exc}") from None
    if len(content) > MAX_FILE_BYTES:
        raise TokenFileError(f"tokens file {path} is larger than {MAX_FILE_BYTES} bytes")
    return content


def decode_token_file(content: bytes, path: Path) -> TokenTable:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise TokenFileError(f"tokens file {path} line {line}: not UTF-8 text") from None
    return parse_tokens(text.removeprefix("\ufeff"), source=f"tokens file {path}")


def load_token_file(path: Path) -> TokenTable:
    """Read and parse the tokens file at ``path``."""
    return decode_token_file(read_token_file(path), path)
