import pytest

from kds.durations import parse_duration
from kds.errors import ConfigurationError
from kds.settings import load_settings


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5", 5.0), ("2.5", 2.5), ("500ms", 0.5), ("5s", 5.0), ("1m", 60.0), ("2h", 7200.0), (3, 3.0), ("0", 0.0)],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["abc", "-1", "5 minutes", "", "1d", True])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_defaults_match_the_spec() -> None:
    s = load_settings()
    assert (s.host, s.port, s.workers, s.pool_size) == ("0.0.0.0", 8080, 1, 10)
    assert (s.statement_timeout, s.shutdown_delay, s.drain_timeout, s.pool_timeout) == (5.0, 5.0, 30.0, 2.0)
    assert (s.max_body_bytes, s.log_format, s.termination_grace_period) == (65536, "json", 40.0)
    assert s.database_url is None


def test_environment_then_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDS_STATEMENT_TIMEOUT", "750ms")
    monkeypatch.setenv("KDS_PORT", "9000")
    monkeypatch.setenv("KDS_LOG_LEVEL", "debug")
    s = load_settings(port=None)
    assert (s.statement_timeout, s.port, s.log_level) == (0.75, 9000, "DEBUG")
    assert load_settings(port=7000).port == 7000


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDS_POOL_SIZE", "lots")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert str(caught.value).startswith("invalid-parameter: KDS_POOL_SIZE=lots: ")


def test_bad_option_names_the_option() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(drain_timeout="soon")
    assert str(caught.value).startswith("invalid-parameter: --drain-timeout=soon: invalid duration 'soon'")


def test_cors_origins_split() -> None:
    assert load_settings(cors_origins=" https://a.example , https://b.example,").cors_origin_list == [
        "https://a.example",
        "https://b.example",
    ]
