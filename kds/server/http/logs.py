"""Log lines of the server: one JSON object per line (default) or a human text line.

Every server logger (kds's and Sanic's) writes through one handler on stdout with one of the two
formatters below. Structured fields travel in ``extra={"fields": {...}}``; the JSON formatter puts
them at the top level, the text formatter appends them as ``key=value``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson

from kds.timefmt import from_epoch

LOGGER_NAME = "kds.server"
log = logging.getLogger(LOGGER_NAME)
# terminal colour codes some libraries put into their messages (Sanic does on a terminal)
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def message_of(record: logging.LogRecord) -> str:
    """The record's message without terminal escape sequences."""
    return _ANSI_ESCAPE.sub("", record.getMessage())


def _timestamp(created: float) -> str:
    """RFC 3339 with milliseconds and a four-digit year (kds.timefmt; docs/clients.md, "Timestamps")."""
    return from_epoch(created, fraction_digits=3)


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...fields}``; exceptions as ``error`` + ``traceback``."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": message_of(record),
        }
        fields = getattr(record, "fields", None)
        if fields:
            document.update(fields)
        if record.exc_info:
            document["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(document, default=str).decode()


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <message> key=value ...`` for humans at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record.created), f"{record.levelname:<7}", f"[{record.process}]", message_of(record)]
        fields = getattr(record, "fields", None)
        if fields:
            parts.extend(f"{key}={value}" for key, value in fields.items())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


FORMATTERS: dict[str, type[logging.Formatter]] = {"json": JsonFormatter, "text": TextFormatter}
_SANIC_LOGGERS = ("sanic.root", "sanic.error", "sanic.server", "sanic.websockets")


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document for Sanic's ``log_config`` (applied in every process)."""
    formatter = FORMATTERS[log_format]
    handler = {"class": "logging.StreamHandler", "formatter": "kds", "stream": "ext://sys.stdout"}
    loggers: dict[str, Any] = {
        name: {"level": level, "handlers": ["kds"], "propagate": False} for name in (LOGGER_NAME, *_SANIC_LOGGERS)
    }
    # Sanic's access log is replaced by kds's own request line (kds.server).
    loggers["sanic.access"] = {"level": "CRITICAL", "handlers": [], "propagate": False}
    # Sanic says "Starting worker ..." at INFO on every start; keep them, they are useful in pods.
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"kds": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {"kds": handler},
        "loggers": loggers,
    }


def event(level: int, message: str, **fields: Any) -> None:
    """Log one structured line (fields become top-level JSON keys)."""
    if log.isEnabledFor(level):
        log.log(level, message, extra={"fields": fields})


def configure_current_process(log_format: str, level: str) -> None:
    """Apply :func:`logging_config` here (the main process logs shutdown steps too)."""
    import logging.config

    logging.config.dictConfig(logging_config(log_format, level))


__all__ = ["JsonFormatter", "TextFormatter", "configure_current_process", "event", "log", "logging_config"]
