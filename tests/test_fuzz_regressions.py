"""Inputs the schemathesis run found that once became 500s; each is now a plain 400 problem."""

from datetime import UTC, datetime

import pytest

from kds.errors import InvalidInput
from kds.query import parse_incident_query

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "cursor",
    [
        "Ï\x8cË\U00011560.ªàx\x17\U000a8077A\x83",  # non-ASCII: hmac.compare_digest raised TypeError
        "abc.déf",
        "\udcff.abc",  # a lone surrogate (undecodable bytes) in the payload
        "é",
    ],
)
def test_non_ascii_cursor_is_invalid_cursor(cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_incident_query({"cursor": cursor}, default_limit=100, now=NOW)
    assert [(p.slug, p.name) for p in caught.value.problems] == [("invalid-cursor", "cursor")]
