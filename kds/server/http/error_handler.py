"""Sanic's error handler, replaced: every exception becomes a problem document (docs/api.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sanic.handlers import ErrorHandler

from kds.errors import InvalidInput
from kds.server.http import metrics
from kds.server.http.problems import classify, render, report

if TYPE_CHECKING:
    from sanic import Request
    from sanic.response import HTTPResponse


class ProblemErrorHandler(ErrorHandler):
    """Classify, log what the client must not see, count validation failures, answer problem+json."""

    def default(self, request: Request, exception: BaseException) -> HTTPResponse:
        problem = classify(exception)
        report(request, problem)
        if isinstance(exception, InvalidInput):
            metrics.record_validation_failures(exception.problems)
        return render(request, problem)
