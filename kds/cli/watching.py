"""``kds incidents list --watch``: the first page, then new incidents as they commit.

A thin adapter over :mod:`kds.query.watch` (docs/terminal.md, "Watch"): it picks the writer of
the output format, reports a lost database once on stderr and ends quietly (exit 0) on Ctrl-C or
SIGTERM.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from kds.cli.present.formats import OutputFormat

if TYPE_CHECKING:
    import psycopg

    from kds.query.models import IncidentQuery
    from kds.settings import Settings

LOST_NOTICE = "kds: lost the database connection; retrying (the watch resumes where it stopped)"


def _stop(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _writer(output: OutputFormat, *, headers: bool) -> Callable[[list[Any]], int]:
    from kds.cli.present import machine
    from kds.cli.present.table import TableWriter
    from kds.cli.terminal import stdout_colour, stdout_width

    out = sys.stdout
    if output is OutputFormat.ndjson:
        return lambda documents: machine.write_ndjson(documents, out=out)
    if output is OutputFormat.csv:
        csv_writer = machine.CsvWriter(out, headers=headers)
        csv_writer.header()
        return lambda documents: csv_writer.write(machine.parsed(documents))
    table = TableWriter(
        out,
        wide=output is OutputFormat.wide,
        headers=headers,
        width=stdout_width(),
        colour=stdout_colour(),
        streaming=True,
    )
    return lambda documents: table.write(machine.parsed(documents))


def watch(config: Settings, query: IncidentQuery, output: OutputFormat, *, headers: bool, interval: float) -> None:
    """Print the watch until Ctrl-C or SIGTERM."""
    from kds.cli.common import transaction_setup
    from kds.db.connection import connect
    from kds.db.source import resolve
    from kds.query.watch import Watch
    from kds.query.watch_loop import follow

    url = resolve(config).url

    def open_connection() -> psycopg.Connection:
        return connect(
            url,
            application_name="kds-cli",
            statement_timeout=config.statement_timeout,
            connect_timeout=config.connect_timeout,
            read_only=True,
            autocommit=True,
            pooler=config.database_pooler,
        )

    write = _writer(output, headers=headers)
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        setup = transaction_setup(config, config.statement_timeout)
        polls = follow(Watch(query), open_connection, interval=interval, on_lost=_report_lost, setup=setup)
        for documents in polls:
            write(documents)
            sys.stdout.flush()
    except KeyboardInterrupt:
        return
    finally:
        signal.signal(signal.SIGTERM, previous)


def _report_lost() -> None:
    print(LOST_NOTICE, file=sys.stderr, flush=True)
