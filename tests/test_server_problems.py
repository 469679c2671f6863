"""Pure units of the server's error classification."""

import logging

from sanic.exceptions import RequestCancelled

from kds.errors import QueryTimeout, ServiceUnavailable
from kds.server.http.problems import classify


def test_a_client_hanging_up_is_information_not_an_error() -> None:
    problem = classify(RequestCancelled())
    assert (problem.slug, problem.status, problem.log_level, problem.cause) == (
        "internal-error",
        500,
        logging.INFO,
        None,
    )


def test_unexpected_exceptions_are_errors_with_their_cause() -> None:
    cause = RuntimeError("boom")
    problem = classify(cause)
    assert (problem.slug, problem.log_level, problem.cause) == ("internal-error", logging.ERROR, cause)
    assert "boom" not in problem.detail


def test_database_trouble_is_a_warning() -> None:
    assert (classify(ServiceUnavailable("x")).status, classify(ServiceUnavailable("x")).log_level) == (
        503,
        logging.WARNING,
    )
    assert (classify(QueryTimeout("x")).status, classify(QueryTimeout("x")).log_level) == (504, logging.WARNING)
