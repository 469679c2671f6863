"""The error vocabulary shared by every front end.

Each expected failure carries a *slug* (listed in docs/api.md) and a human detail
that names the value received. Front ends map the classes to exit codes (CLI) or HTTP
statuses (server); nothing here knows about either.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One invalid input: the slug, the parameter it concerns and a human detail."""

    slug: str
    name: str
    detail: str


class KdsError(Exception):
    """Base class of every expected failure."""

    slug = "internal-error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.slug}: {self.detail}"


class InvalidInput(KdsError):
    """One or more invalid inputs; the first problem decides the slug."""

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("InvalidInput needs at least one problem")
        self.problems = problems
        super().__init__(problems[0].detail)

    @property
    def slug(self) -> str:  # type: ignore[override]
        return self.problems[0].slug

    @classmethod
    def single(cls, slug: str, name: str, detail: str) -> InvalidInput:
        return cls([Problem(slug, name, detail)])


class NotFound(KdsError):
    slug = "not-found"


class Conflict(KdsError):
    slug = "conflict"


class ServiceUnavailable(KdsError):
    """The database cannot be reached, the pool is exhausted, or the process is shutting down."""

    slug = "service-unavailable"


class ConnectionFailed(ServiceUnavailable):
    """A connection attempt failed; ``cause`` is a :class:`kds.db.failures.Cause` value (refused, ...)."""

    def __init__(self, detail: str, cause: str, fix: str = "") -> None:
        super().__init__(detail)
        self.cause = cause
        self.fix = fix


class QueryTimeout(KdsError):
    slug = "query-timeout"


class ConfigurationError(KdsError):
    """A setting (environment variable or option) that does not parse."""

    slug = "invalid-parameter"

    @classmethod
    def of(cls, source: str, value: object, reason: str) -> ConfigurationError:
        """``invalid-parameter: KDS_X=value: reason`` (or ``--x=value``): the one way to name a bad setting."""
        return cls(f"{source}={value!s}: {reason}")


class EmbeddedUnavailable(KdsError):
    """The embedded default was needed but the optional extra is missing."""

    slug = "embedded-unavailable"
