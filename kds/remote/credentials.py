"""The bearer token of the remote mode and of ``validate-infra``'s server check (docs/remote.md, "Token").

Never an option value (it would show in ``ps``): ``--token-file FILE``/``KDS_SERVER_TOKEN_FILE``, which
wins when given, or ``KDS_SERVER_TOKEN``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kds.errors import ConfigurationError

if TYPE_CHECKING:
    from pathlib import Path

    from kds.settings import Settings


def bearer_token(config: Settings) -> str | None:
    """``--token-file``/``KDS_SERVER_TOKEN_FILE`` when given, else ``KDS_SERVER_TOKEN`` (docs/remote.md)."""
    if config.server_token_file is not None:
        return read_token_file(config.server_token_file)
    if config.server_token is not None and config.server_token.get_secret_value():
        return config.server_token.get_secret_value()
    return None


def read_token_file(path: Path) -> str:
    """The token in ``path`` (surrounding whitespace, such as a final newline, dropped)."""
    where = f"--token-file={path}"
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigurationError(f"{where}: cannot read ({reason})") from None
    if not token:
        raise ConfigurationError(f"{where}: the file is empty")
    if any(character.isspace() for character in token):
        raise ConfigurationError(f"{where}: the file holds more than one token (whitespace inside)")
    return token
