"""The token store: reloads on change (including a Kubernetes Secret symlink swap), keeps the last
good version when a new one is malformed."""

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from kds.auth import INCIDENTS_READ, METRICS_READ, Principal, TokenFileError, TokenStore
from tests.secret_volume import SecretVolume

OLD = b"old-token-aaaaaaaaaaaa"
NEW = b"new-token-bbbbbbbbbbbb"


def line(token: bytes, scopes: str, name: str) -> str:
    return f"sha256:{hashlib.sha256(token).hexdigest()} {scopes} {name}\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Reports:
    def __init__(self) -> None:
        self.lines: list[tuple[int, str, dict[str, Any]]] = []

    def __call__(self, level: int, message: str, **fields: Any) -> None:
        self.lines.append((level, message, fields))


def store_for(path: Path) -> tuple[TokenStore, Clock, Reports]:
    clock, reports = Clock(), Reports()
    return TokenStore(path, check_interval=1.0, clock=clock, report=reports), clock, reports


def test_authenticates_bearer_headers(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(line(OLD, "incidents:read", "dash"))
    store, _, _ = store_for(path)
    assert store.authenticate(f"Bearer {OLD.decode()}") == Principal("dash", frozenset({INCIDENTS_READ}))
    assert store.authenticate(f"Bearer {NEW.decode()}") is None
    assert store.authenticate(None) is None
    assert store.authenticate(OLD.decode()) is None


def test_missing_or_malformed_file_at_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError) as caught:
        TokenStore(tmp_path / "absent")
    assert caught.value.detail == f"tokens file {tmp_path / 'absent'} does not exist"
    path = tmp_path / "tokens"
    path.write_text("# nothing yet\nsha256:00 incidents:read\n")
    with pytest.raises(TokenFileError) as caught:
        TokenStore(path)
    assert caught.value.detail.startswith(f"tokens file {path} line 2: the first field must be")


def test_edit_in_place_is_picked_up_after_the_check_interval(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(line(OLD, "incidents:read", "a"))
    store, clock, reports = store_for(path)
    path.write_text(line(NEW, "metrics:read", "b"))
    clock.advance(0.5)
    assert store.authenticate(f"Bearer {OLD.decode()}") is not None  # not checked yet
    clock.advance(0.5)
    assert store.authenticate(f"Bearer {OLD.decode()}") is None
    assert store.authenticate(f"Bearer {NEW.decode()}") == Principal("b", frozenset({METRICS_READ}))
    assert reports.lines == [(logging.INFO, "tokens file reloaded", {"path": str(path), "tokens": 1})]


def test_same_size_and_mtime_still_reloads(tmp_path: Path) -> None:
    """Detection compares content, not timestamps (coarse mtimes and equal sizes do not hide a change)."""
    path = tmp_path / "tokens"
    path.write_text(line(OLD, "incidents:read", "a"))
    stat = path.stat()
    store, clock, _ = store_for(path)
    path.write_text(line(NEW, "incidents:read", "a"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    clock.advance(1)
    assert store.check() is True
    assert store.authenticate(f"Bearer {NEW.decode()}") is not None


def test_unchanged_file_is_not_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(line(OLD, "incidents:read", "a"))
    store, clock, reports = store_for(path)
    clock.advance(5)
    assert store.check() is False
    assert reports.lines == []


def test_malformed_version_is_reported_once_and_previous_tokens_stay(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(line(OLD, "incidents:read", "a"))
    store, clock, reports = store_for(path)
    path.write_text(line(OLD, "incidents:read", "a") + line(NEW, "admin", "b"))
    for _ in range(3):
        clock.advance(1)
        assert store.authenticate(f"Bearer {OLD.decode()}") == Principal("a", frozenset({INCIDENTS_READ}))
        assert store.authenticate(f"Bearer {NEW.decode()}") is None
    assert reports.lines == [
        (
            logging.ERROR,
            "tokens file rejected; the previous tokens stay in force",
            {
                "path": str(path),
                "error": f"tokens file {path} line 2: unknown scope 'admin' "
                "(scopes are incidents:read, audit:write, metrics:read)",
            },
        )
    ]
    path.write_text(line(NEW, "metrics:read", "b"))
    clock.advance(1)
    assert store.authenticate(f"Bearer {OLD.decode()}") is None
    assert store.authenticate(f"Bearer {NEW.decode()}") == Principal("b", frozenset({METRICS_READ}))
    assert reports.lines[-1] == (logging.INFO, "tokens file reloaded", {"path": str(path), "tokens": 1})


def test_vanished_file_keeps_previous_tokens(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(line(OLD, "incidents:read", "a"))
    store, clock, reports = store_for(path)
    path.unlink()
    clock.advance(1)
    assert store.authenticate(f"Bearer {OLD.decode()}") is not None
    clock.advance(1)
    store.check()
    assert reports.lines == [
        (
            logging.ERROR,
            "tokens file rejected; the previous tokens stay in force",
            {"path": str(path), "error": f"tokens file {path} does not exist"},
        )
    ]


def test_kubernetes_secret_symlink_swap(tmp_path: Path) -> None:
    volume = SecretVolume(tmp_path)
    volume.publish(line(OLD, "incidents:read", "a"))
    store, clock, reports = store_for(volume.path)
    assert store.authenticate(f"Bearer {OLD.decode()}") is not None
    volume.publish(line(NEW, "incidents:read", "a"))
    assert os.readlink(tmp_path / "..data") == volume.current.name
    clock.advance(1)
    assert store.authenticate(f"Bearer {OLD.decode()}") is None
    assert store.authenticate(f"Bearer {NEW.decode()}") == Principal("a", frozenset({INCIDENTS_READ}))
    assert [message for _, message, _ in reports.lines] == ["tokens file reloaded"]
    # a malformed Secret update keeps the tokens in force
    volume.publish("sha256:nothex incidents:read\n")
    clock.advance(1)
    assert store.authenticate(f"Bearer {NEW.decode()}") is not None
    assert [message for _, message, _ in reports.lines][-1] == "tokens file rejected; the previous tokens stay in force"


def test_default_report_logs_without_tokens(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "tokens"
    path.write_text(line(OLD, "incidents:read", "a"))
    clock = Clock()
    store = TokenStore(path, clock=clock)
    path.write_text(line(NEW, "incidents:read", "b"))
    clock.advance(1)
    with caplog.at_level(logging.INFO, logger="kds.auth"):
        assert store.authenticate(f"Bearer {NEW.decode()}") is not None
    assert caplog.messages == [f"tokens file reloaded path={path} tokens=1"]
    assert NEW.decode() not in caplog.text and OLD.decode() not in caplog.text
