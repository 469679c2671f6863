"""How kds's session settings travel: startup options (direct) or per transaction (behind a pooler)."""

from __future__ import annotations

import psycopg

from kds.db.failures import Cause, cause_of, describe
from kds.db.policy import ConnectionPolicy


def test_direct_connection_sends_options_and_prepares() -> None:
    policy = ConnectionPolicy("kds-cli", 2.5, connect_timeout=3, read_only=True)
    assert policy.kwargs() == {
        "application_name": "kds-cli",
        "client_encoding": "utf8",
        "connect_timeout": 3,
        "options": "-c statement_timeout=2500 -c default_transaction_read_only=on",
    }
    assert policy.transaction_setup() is None


def test_pooled_connection_moves_settings_into_each_transaction() -> None:
    policy = ConnectionPolicy("kds-serve", 5, pooler="pgbouncer")
    assert policy.kwargs() == {
        "application_name": "kds-serve",
        "client_encoding": "utf8",
        "connect_timeout": 5,
        "prepare_threshold": None,
    }
    setup = policy.transaction_setup()
    assert setup is not None
    assert setup.as_string() == "SELECT set_config('statement_timeout', '5000', true)"
    read_only = ConnectionPolicy("kds-cli", 0.2, read_only=True, pooler="pgbouncer").transaction_setup()
    assert read_only is not None
    assert read_only.as_string() == (
        "SELECT set_config('statement_timeout', '200', true), set_config('transaction_read_only', 'on', true)"
    )


def test_pgbouncer_refusal_is_recognised() -> None:
    refused = psycopg.OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 6432 failed: '
        "FATAL:  unsupported startup parameter: options"
    )
    assert cause_of(refused) is Cause.POOLER_REFUSED_OPTIONS
    assert describe(Cause.POOLER_REFUSED_OPTIONS).fix.startswith("set KDS_DATABASE_POOLER=pgbouncer")
