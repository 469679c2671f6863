"""``kds incidents list`` and ``kds incidents get``: a thin adapter over the query core."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kds.cli import filters, summary
from kds.cli.common import (
    CaFileOption,
    DatabaseUrlOption,
    ReadDatabaseUrlOption,
    ServerUrlOption,
    TokenFileOption,
    reports_errors,
    source_settings,
)
from kds.cli.present.formats import OutputFormat
from kds.query.vocabulary import CLI_DEFAULT_LIMIT, LIMIT_RANGE

if TYPE_CHECKING:
    from kds.cli.present.table import TableWriter
    from kds.cli.sources import IncidentSource

app = typer.Typer(help="Inspect incidents straight from the database.", no_args_is_help=True)

OutputOption = typer.Option(
    OutputFormat.table, "-o", "--output", metavar="FORMAT", help="table, wide, json, yaml, csv or ndjson."
)


@app.command("list")
@reports_errors
def list_incidents(
    namespace: list[str] | None = filters.NamespaceOption,
    severity: list[str] | None = filters.SeverityOption,
    cluster: list[str] | None = filters.ClusterOption,
    environment: list[str] | None = filters.EnvironmentOption,
    action_type: list[str] | None = filters.ActionTypeOption,
    alert_name: list[str] | None = filters.AlertNameOption,
    status: list[str] | None = filters.StatusOption,
    since: list[str] | None = filters.SinceOption,
    until: list[str] | None = filters.UntilOption,
    limit: list[str] | None = typer.Option(
        None, "-l", "--limit", metavar="N", help=f"Rows per page, {LIMIT_RANGE} [default: {CLI_DEFAULT_LIMIT}]."
    ),
    offset: list[str] | None = typer.Option(None, "--offset", metavar="N", help="Rows to skip [default: 0]."),
    cursor: list[str] | None = typer.Option(
        None, "--cursor", metavar="CURSOR", help="next_cursor of a previous page (json output)."
    ),
    all_rows: bool = typer.Option(False, "--all", help="Every matching incident, streamed (ignores paging)."),
    watch: bool = typer.Option(False, "-w", "--watch", help="Then print new incidents as they commit."),
    interval: str = typer.Option(
        "2s", "--interval", metavar="D", help="How often --watch polls (at least 200ms) [default: 2s]."
    ),
    output: OutputFormat = OutputOption,
    no_headers: bool = typer.Option(False, "--no-headers", help="Omit table and csv headers."),
    database_url: str | None = DatabaseUrlOption,
    read_database_url: str | None = ReadDatabaseUrlOption,
    server_url: str | None = ServerUrlOption,
    token_file: Path | None = TokenFileOption,
    ca_file: Path | None = CaFileOption,
) -> None:
    """List incidents, newest first."""
    from kds.cli.sources import open_source

    params = filters.filter_params(
        namespace=namespace,
        severity=severity,
        cluster=cluster,
        environment=environment,
        action_type=action_type,
        alert_name=alert_name,
        status=status,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
        cursor=cursor,
    )
    config = source_settings(
        database_url=database_url,
        read_database_url=read_database_url,
        server_url=server_url,
        token_file=token_file,
        ca_file=ca_file,
    )
    source = open_source(config)
    try:
        query = source.list_query(params)
        if watch:
            _check_watch(output, all_rows=all_rows, offset=offset, cursor=cursor)
            from kds.cli.watching import watch as run_watch
            from kds.query.watch import parse_interval

            run_watch(source, query, output, headers=not no_headers, interval=parse_interval(interval))
            return
        if all_rows:
            count = _write_all(source, query, output, headers=not no_headers)
        else:
            count = _write_page(source, query, output, headers=not no_headers)
    finally:
        source.close()
    if count == 0:
        print("no incidents found", file=sys.stderr)


def _check_watch(output: OutputFormat, *, all_rows: bool, offset: list[str] | None, cursor: list[str] | None) -> None:
    from kds.cli.present.formats import WATCH_FORMATS
    from kds.errors import InvalidInput

    if output not in WATCH_FORMATS:
        names = ", ".join(f.value for f in WATCH_FORMATS)
        raise InvalidInput.single("invalid-parameter", "output", f"--watch writes {names}; got -o {output.value}")
    for given, name in ((all_rows, "--all"), (offset, "--offset"), (cursor, "--cursor")):
        if given:
            detail = f"--watch starts at the newest page; {name} does not apply"
            raise InvalidInput.single("invalid-parameter", name, detail)


def _table(output: OutputFormat, *, headers: bool, streaming: bool = False) -> TableWriter:
    from kds.cli.present.table import TableWriter
    from kds.cli.terminal import stdout_colour, stdout_width

    return TableWriter(
        sys.stdout,
        wide=output is OutputFormat.wide,
        headers=headers,
        width=stdout_width(),
        colour=stdout_colour(),
        streaming=streaming,
    )


def _write_page(source: IncidentSource, query: Any, output: OutputFormat, *, headers: bool) -> int:
    from kds.cli.present import machine
    from kds.cli.terminal import stdout_is_terminal

    page = source.page(query)
    stdout = sys.stdout
    if output is OutputFormat.json:
        if stdout_is_terminal():
            stdout.write(machine.json_text(page.document(), indent=True) + "\n")
        else:
            stdout.write(page.to_json().decode() + "\n")
    elif output is OutputFormat.yaml:
        stdout.write(machine.yaml_document(page.document()))
    elif output is OutputFormat.ndjson:
        machine.write_ndjson(page.rows, out=stdout)
    elif output is OutputFormat.csv:
        machine.write_csv(page.incidents(), headers=headers, out=stdout)
    else:
        _table(output, headers=headers).write(page.incidents())
        if page.has_more and sys.stderr.isatty():
            shown = f"{page.offset + 1}-{page.offset + len(page.rows)}"
            print(f"showing {shown} of {page.total}; more with --offset or --all", file=sys.stderr)
    return len(page.rows)


def _write_all(source: IncidentSource, query: Any, output: OutputFormat, *, headers: bool) -> int:
    """Every matching row, streamed; a progress bar on stderr when the rows go to a file or a pipe."""
    from kds.cli.present import machine
    from kds.cli.present.progress import counted, progress_bars
    from kds.cli.terminal import stdout_is_terminal

    stdout = sys.stdout
    on_terminal = stdout_is_terminal()
    with progress_bars() as add_bar:
        documents = source.export(query)
        if not on_terminal:  # on a terminal the rows themselves show the progress
            documents = counted(documents, add_bar("exporting"))
        if output is OutputFormat.json:
            return machine.write_json_array(documents, out=stdout, indent=on_terminal)
        if output is OutputFormat.ndjson:
            return machine.write_ndjson(documents, out=stdout)
        if output is OutputFormat.csv:
            return machine.write_csv(machine.parsed(documents), headers=headers, out=stdout)
        if output is OutputFormat.yaml:
            return machine.write_yaml_list(machine.parsed(documents), out=stdout)
        return _table(output, headers=headers, streaming=True).write(machine.parsed(documents))


app.command("summary")(summary.summarize_incidents)


@app.command("get")
@reports_errors
def get_incident(
    incident_id: str = typer.Argument(..., metavar="ID", hidden=True),  # described in the docstring
    output: OutputFormat = OutputOption,
    database_url: str | None = DatabaseUrlOption,
    read_database_url: str | None = ReadDatabaseUrlOption,
    server_url: str | None = ServerUrlOption,
    token_file: Path | None = TokenFileOption,
    ca_file: Path | None = CaFileOption,
) -> None:
    """Show the incident ID with its detail fields (labels, annotations, parameters)."""
    from kds.cli.present import machine
    from kds.cli.present.detail import render_detail
    from kds.cli.sources import open_source
    from kds.cli.terminal import stdout_is_terminal
    from kds.query import parse_incident_id

    config = source_settings(
        database_url=database_url,
        read_database_url=read_database_url,
        server_url=server_url,
        token_file=token_file,
        ca_file=ca_file,
    )
    wanted = parse_incident_id(incident_id)
    source = open_source(config)
    try:
        incident = source.get(wanted)
    finally:
        source.close()
    if output in (OutputFormat.json, OutputFormat.ndjson):
        indent = output is OutputFormat.json and stdout_is_terminal()
        sys.stdout.write(machine.json_text(incident, indent=indent) + "\n")
    elif output is OutputFormat.yaml:
        sys.stdout.write(machine.yaml_document(incident))
    elif output is OutputFormat.csv:
        machine.write_csv([incident], headers=True, out=sys.stdout)
    else:
        render_detail(incident, out=sys.stdout)
