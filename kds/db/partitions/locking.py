"""Short lock waits, retried: how partition maintenance stays out of live traffic's way.

Every change runs in its own transaction that first takes a transaction-level advisory lock (so two
``kds db partitions`` runs take turns instead of racing) and then sets a short ``lock_timeout``
(``SET LOCAL`` only, so it also holds behind PgBouncer). A DDL statement waiting for a lock makes
every later reader of the same table queue behind it; the short timeout bounds that queue, and the
attempt is retried after a pause that lets the readers through (see docs/partitions.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from kds.errors import QueryTimeout

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")

# One key for every `kds db partitions` change (the second half of pg_advisory_xact_lock(int, int)).
ADVISORY_LOCK_KEY = (0x6B6473, 0x70617274)  # "kds", "part"


@dataclass(frozen=True, slots=True)
class LockPolicy:
    """How long one attempt may wait for a lock, and how often to try."""

    lock_timeout: float = 1.0
    attempts: int = 5
    first_pause: float = 0.5
    max_pause: float = 10.0

    def pause(self, attempt: int) -> float:
        return min(self.max_pause, self.first_pause * 2.0 ** (attempt - 1))


def locked_transaction(
    conn: psycopg.Connection,
    policy: LockPolicy,
    work: Callable[[psycopg.Connection], T],
    *,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``work`` in one transaction under the advisory lock, retrying lock timeouts and deadlocks.

    Raises :class:`QueryTimeout` naming ``what`` when every attempt timed out.
    """
    from psycopg import errors as pg_errors

    conn.autocommit = True
    for attempt in range(1, policy.attempts + 1):
        try:
            with conn.transaction():
                # Waiting for another kds run holds no table lock, so it needs no short timeout.
                conn.execute("SELECT set_config('lock_timeout', '0', true)")
                conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", ADVISORY_LOCK_KEY)
                conn.execute(
                    "SELECT set_config('lock_timeout', %s, true)", (f"{max(1, round(policy.lock_timeout * 1000))}ms",)
                )
                return work(conn)
        except (pg_errors.LockNotAvailable, pg_errors.DeadlockDetected):
            if attempt == policy.attempts:
                break
            sleep(policy.pause(attempt))
    raise QueryTimeout(
        f"could not {what}: the locks it needs were held by other transactions for longer than "
        f"{policy.lock_timeout:g}s in each of {policy.attempts} attempts; find long transactions in "
        "pg_stat_activity (docs/runbooks.md#partition-maintenance-fails) and run it again"
    )
