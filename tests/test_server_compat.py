"""The Sanic/prometheus-client compatibility layer refuses releases kds was not tested with."""

from __future__ import annotations

import pytest

from kds.server.process import sanic_compat


def test_installed_releases_are_tested() -> None:
    sanic_compat.check_versions()


@pytest.mark.parametrize(
    ("installed", "message"),
    [
        (
            {"sanic": "26.3.0", "prometheus-client": "0.26.0"},
            "kds is tested with sanic 25.12.x, but 26.3.0 is installed",
        ),
        ({"sanic": "25.12.1", "prometheus-client": "0.27.1"}, "prometheus-client 0.26.x, but 0.27.1 is installed"),
        ({"sanic": "25.3.0", "prometheus-client": "0.26.0"}, "sanic 25.12.x, but 25.3.0 is installed"),
    ],
)
def test_an_untested_release_fails_loudly(installed: dict[str, str], message: str) -> None:
    with pytest.raises(sanic_compat.UntestedDependency, match=message):
        sanic_compat.check_versions(installed.__getitem__)


def test_patch_releases_and_suffixes_of_a_tested_series_pass() -> None:
    sanic_compat.check_versions({"sanic": "25.12.7", "prometheus-client": "0.26.1rc1"}.__getitem__)
