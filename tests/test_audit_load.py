"""No acknowledged audit write is ever lost: 2,000 posts from 16 clients while the database restarts.

A throwaway embedded PostgreSQL (not the session's shared one) is stopped with ``pg_ctl stop -m
fast`` once a third of the posts are answered, kept down until the server has answered at least
64 posts with 503, and started again. Afterwards: every notification answered 201/200 is in the
table under the id it was answered with, none twice; every other answer was a 503 problem with
``Retry-After``; and resending those (the client retry recipe) records each exactly once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.audit_load import Load, retry_unavailable
from tests.pg import StandaloneServer
from tests.serving import Server, running, wait_for

POSTS = 2000
CLIENTS = 16
RESTART_AFTER = POSTS // 3
UNAVAILABLE_BEFORE_RESTART = 64
DEADLINE = 180.0


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[StandaloneServer]:
    """A separate embedded server the test may stop and start (the session cluster is shared)."""
    server = StandaloneServer(tmp_path / "pgdata")
    try:
        yield server
    finally:
        server.destroy()


def documents() -> list[dict[str, object]]:
    run = uuid.uuid4().hex[:8]
    sent_at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    return [
        {
            "remediation_id": f"rem-{i % 97}",
            "notification_id": f"load-{run}-{i:05d}",
            "recipient": f"team-{i % 13}@example.com",
            "channel": ("email", "slack", "pagerduty", "sms")[i % 4],
            "message_summary": f"remediation {i % 97} applied — 通知 {i}",
            "status": ("sent", "failed", "acknowledged", "escalated")[i % 4],
            "sent_at": sent_at,
            "escalation_level": i % 101,
        }
        for i in range(POSTS)
    ]


@pytest.mark.slow
def test_no_acknowledged_write_is_lost_across_a_database_restart(standalone: StandaloneServer, tmp_path: Path) -> None:
    url = standalone.migrated_database()
    posts = documents()
    by_id = {str(document["notification_id"]): document for document in posts}
    outage: dict[str, float] = {}

    def restart_database(load: Load) -> None:
        deadline = time.monotonic() + DEADLINE
        wait_for(lambda: load.answered >= RESTART_AFTER, timeout=DEADLINE, interval=0.01, message="a third")
        outage["answered_before"] = load.answered
        standalone.stop()
        outage["stopped"] = time.monotonic()
        wait_for(
            lambda: load.unavailable_count >= UNAVAILABLE_BEFORE_RESTART or load.answered >= POSTS,
            timeout=deadline - time.monotonic(),
            interval=0.01,
            message="503 answers while the database is down",
        )
        standalone.start()
        outage["seconds_down"] = time.monotonic() - outage["stopped"]

    env = {"KDS_POOL_TIMEOUT": "500ms"}
    log = tmp_path / "serve.log"
    server: Server
    with running(url, "--pool-size", "4", "--shutdown-delay", "0", log_path=log, env=env, workers=2) as server:
        load = Load(server.base_url, posts, clients=CLIENTS)
        result = load.run(during=restart_database)
        retried, retry_statuses = retry_unavailable(
            server.base_url, by_id, result.unavailable, deadline=time.monotonic() + 60
        )
    errors = [record for record in server.log_records() if record.get("level") in ("error", "critical")]

    with psycopg.connect(url) as conn:
        table = dict(conn.execute("SELECT notification_id, id FROM notification_audit").fetchall())
        twice = conn.execute(
            "SELECT notification_id FROM notification_audit GROUP BY notification_id HAVING count(*) > 1"
        ).fetchall()

    print(
        f"\naudit load: {POSTS} posts from {CLIENTS} clients in {result.elapsed:.1f}s;"
        f" database stopped after {outage['answered_before']} answers for {outage['seconds_down']:.1f}s;"
        f" 201={result.created} 200={result.duplicates} 503={len(result.unavailable)}"
        f" other={len(result.unexpected)}; retried the 503s: {retry_statuses};"
        f" rows={len(table)} duplicates={len(twice)}"
    )
    assert result.unexpected == []
    assert errors == []  # outage answers are warnings; nothing unexpected happened in the server
    assert result.answered == POSTS
    assert len(result.unavailable) >= UNAVAILABLE_BEFORE_RESTART  # the restart was felt
    assert result.duplicates == 0  # each notification was posted once before the retries
    # every acknowledged record is stored under the id it was acknowledged with; none twice
    assert {nid: table.get(nid) for nid in result.acknowledged} == result.acknowledged
    assert twice == []
    # the retry recipe: each 503 ends acknowledged, exactly once (200 when the lost answer had committed)
    assert {nid: table.get(nid) for nid in retried} == retried
    assert set(table) == set(by_id)
    assert len(table) == POSTS
