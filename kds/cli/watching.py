"""``kds incidents list --watch``: the first page, then new incidents as they commit.

A thin adapter over the source's watch (:mod:`kds.query.watch` on the database, the server's watch
stream in remote mode; docs/terminal.md, "Watch", docs/remote.md): it picks the writer of the output
format, reports a lost database or server once on stderr and ends quietly (exit 0) on Ctrl-C or
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
    from kds.cli.sources import IncidentSource
    from kds.query.models import IncidentQuery

LOST = "kds: lost {what}; retrying (the watch resumes where it stopped)"
LOST_NOTICE = LOST.format(what="the database connection")


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


def watch(
    source: IncidentSource, query: IncidentQuery, output: OutputFormat, *, headers: bool, interval: float
) -> None:
    """Print the watch until Ctrl-C (SIGINT) or SIGTERM.

    Both get kds's own handler, also when the process started with SIGINT ignored (a background job of
    a non-interactive shell inherits that): like ``kubectl get -w``, a watch always stops on SIGINT.
    """
    write = _writer(output, headers=headers)
    previous = {signum: signal.signal(signum, _stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        for documents in source.watch(query, interval=interval, on_lost=_report_lost):
            write(documents)
            sys.stdout.flush()
    except KeyboardInterrupt:
        return
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _report_lost(what: str) -> None:
    print(LOST.format(what=what), file=sys.stderr, flush=True)
