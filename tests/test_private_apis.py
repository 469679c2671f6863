"""The one module of private Sanic/prometheus-client/psycopg-pool APIs refuses releases kds was not tested with."""

from __future__ import annotations

import asyncio

import pytest

from kds.server.process import private_apis


def test_installed_releases_are_tested() -> None:
    private_apis.check_versions()


@pytest.mark.parametrize(
    ("installed", "message"),
    [
        (
            {"sanic": "26.3.0", "prometheus-client": "0.26.0", "psycopg-pool": "3.3.3"},
            "kds is tested with sanic 25.12.x, but 26.3.0 is installed",
        ),
        (
            {"sanic": "25.12.1", "prometheus-client": "0.27.1", "psycopg-pool": "3.3.3"},
            "prometheus-client 0.26.x, but 0.27.1 is installed",
        ),
        (
            {"sanic": "25.3.0", "prometheus-client": "0.26.0", "psycopg-pool": "3.3.3"},
            "sanic 25.12.x, but 25.3.0 is installed",
        ),
        (
            {"sanic": "25.12.1", "prometheus-client": "0.26.0", "psycopg-pool": "3.4.0"},
            "psycopg-pool 3.3.x, but 3.4.0 is installed",
        ),
    ],
)
def test_an_untested_release_fails_loudly(installed: dict[str, str], message: str) -> None:
    with pytest.raises(private_apis.UntestedDependency, match=message):
        private_apis.check_versions(installed.__getitem__)


def test_patch_releases_and_suffixes_of_a_tested_series_pass() -> None:
    installed = {"sanic": "25.12.7", "prometheus-client": "0.26.1rc1", "psycopg-pool": "3.3.10"}
    private_apis.check_versions(installed.__getitem__)


def test_the_pool_hands_out_the_connection_returned_last(database_url: str) -> None:
    async def backends() -> tuple[list[int], int, int]:
        async with private_apis.LifoConnectionPool(database_url, min_size=3, max_size=3, open=False) as pool:
            await pool.wait()
            one_at_a_time = []
            for _ in range(4):
                async with pool.connection() as conn:
                    one_at_a_time.append(conn.info.backend_pid)
            first, second = await pool.getconn(), await pool.getconn()
            await pool.putconn(second)
            await pool.putconn(first)
            async with pool.connection() as conn:
                return one_at_a_time, conn.info.backend_pid, first.info.backend_pid

    one_at_a_time, next_pid, returned_last = asyncio.run(backends())
    # psycopg-pool's own order would visit all three connections in turn
    assert len(set(one_at_a_time)) == 1
    assert next_pid == returned_last
