"""Optional bearer-token authentication (docs/api.md), free of any HTTP framework.

:mod:`kds.auth.tokens` parses the tokens file and compares tokens; :mod:`kds.auth.store` keeps the
file's current version in force without a restart. The server's middleware is a thin adapter.
"""

from kds.auth.store import TokenStore, bearer_token
from kds.auth.tokens import (
    AUDIT_WRITE,
    INCIDENTS_READ,
    METRICS_READ,
    SCOPES,
    Principal,
    TokenFileError,
    TokenTable,
    hash_token,
    load_token_file,
    parse_tokens,
)

__all__ = [
    "AUDIT_WRITE",
    "INCIDENTS_READ",
    "METRICS_READ",
    "SCOPES",
    "Principal",
    "TokenFileError",
    "TokenStore",
    "TokenTable",
    "bearer_token",
    "hash_token",
    "load_token_file",
    "parse_tokens",
]
