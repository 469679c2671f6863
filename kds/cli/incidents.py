"""``kds incidents list`` and ``kds incidents get``: a thin adapter over the query core."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kds.cli.common import (
    CaFileOption,
    DatabaseUrlOption,
    ServerUrlOption,
    TokenFileOption,
    reports_errors,
    source_settings,
)
from kds.cli.output import OutputFormat
from kds.query.times import AGE_EXAMPLES
from kds.query.vocabulary import CLI_DEFAULT_LIMIT, LIMIT_RANGE

if TYPE_CHECKING:
    from kds.cli.sources import IncidentSource

app = typer.Typer(help="Inspect incidents straight from the database.", no_args_is_help=True)

OutputOption = typer.Option(
    OutputFormat.table, "-o", "--output", metavar="FORMAT", help="table, wide, json, yaml, csv or ndjson."
)


@app.command("list")
@reports_errors
def list_incidents(
    namespace: str | None = typer.Option(None, "-n", "--namespace", metavar="NS", help="Exact namespace."),
    severity: str | None = typer.Option(
        None, "-s", "--severity", metavar="S", help="info, warning, critical, high, medium, low."
    ),
    cluster: str | None = typer.Option(None, "--cluster", metavar="C", help="Exact cluster name."),
    environment: str | None = typer.Option(
        None, "-e", "--environment", metavar="E", help="production, staging, development, test."
    ),
    action_type: str | None = typer.Option(None, "--action-type", metavar="T", help="Exact action type."),
    alert_name: str | None = typer.Option(None, "--alert-name", metavar="A", help="Exact alert name."),
    since: str | None = typer.Option(
        None, "--since", metavar="T", help=f"RFC 3339 time or an age ({AGE_EXAMPLES}: that long ago)."
    ),
    until: str | None = typer.Option(None, "--until", metavar="T", help="RFC 3339 time or an age (exclusive)."),
    limit: str | None = typer.Option(
        None, "-l", "--limit", metavar="N", help=f"Rows per page, {LIMIT_RANGE} [default: {CLI_DEFAULT_LIMIT}]."
    ),
    offset: str | None = typer.Option(None, "--offset", metavar="N", help="Rows to skip [default: 0]."),
    cursor: str | None = typer.Option(
        None, "--cursor", metavar="C", help="next_cursor of a previous page (json output)."
    ),
    all_rows: bool = typer.Option(False, "--all", help="Every matching incident, streamed (ignores paging)."),
    output: OutputFormat = OutputOption,
    no_headers: bool = typer.Option(False, "--no-headers", help="Omit table and csv headers."),
    database_url: str | None = DatabaseUrlOption,
    server_url: str | None = ServerUrlOption,
    token_file: Path | None = TokenFileOption,
    ca_file: Path | None = CaFileOption,
) -> None:
    """List incidents, newest first."""
    from kds.cli.sources import open_source

    params = {
        "namespace": namespace,
        "severity": severity,
        "cluster": cluster,
        "environment": environment,
        "action_type": action_type,
        "alert_name": alert_name,
        "since": since,
        "until": until,
        "limit": limit,
        "offset": offset,
        "cursor": cursor,
    }
    config = source_settings(database_url=database_url, server_url=server_url, token_file=token_file, ca_file=ca_file)
    source = open_source(config)
    try:
        query = source.list_query({k: v for k, v in params.items() if v is not None})
        if all_rows:
            count = _write_all(source, query, output, headers=not no_headers)
        else:
            count = _write_page(source, query, output, headers=not no_headers)
    finally:
        source.close()
    if count == 0:
        print("no incidents found", file=sys.stderr)


def _write_page(source: IncidentSource, query: Any, output: OutputFormat, *, headers: bool) -> int:
    from kds.cli import output as out

    page = source.page(query)
    stdout = sys.stdout
    if output is OutputFormat.json:
        stdout.write(page.to_json().decode() + "\n")
    elif output is OutputFormat.yaml:
        stdout.write(out.yaml_document(page.document()))
    elif output is OutputFormat.ndjson:
        out.write_ndjson(page.rows, out=stdout)
    elif output is OutputFormat.csv:
        out.write_csv(page.incidents(), headers=headers, out=stdout)
    else:
        out.render_table(page.incidents(), wide=output is OutputFormat.wide, headers=headers, out=stdout)
        if page.has_more and sys.stderr.isatty():
            shown = f"{page.offset + 1}-{page.offset + len(page.rows)}"
            print(f"showing {shown} of {page.total}; more with --offset or --all", file=sys.stderr)
    return len(page.rows)


def _write_all(source: IncidentSource, query: Any, output: OutputFormat, *, headers: bool) -> int:
    from kds.cli import output as out

    documents = source.export(query)
    stdout = sys.stdout
    if output is OutputFormat.json:
        return out.write_json_array(documents, out=stdout)
    if output is OutputFormat.ndjson:
        return out.write_ndjson(documents, out=stdout)
    if output is OutputFormat.csv:
        return out.write_csv(out.parsed(documents), headers=headers, out=stdout)
    if output is OutputFormat.yaml:
        return out.write_yaml_list(out.parsed(documents), out=stdout)
    rows = out.parsed(documents)
    return out.render_table(rows, wide=output is OutputFormat.wide, headers=headers, out=stdout)


@app.command("get")
@reports_errors
def get_incident(
    incident_id: str = typer.Argument(..., metavar="ID", hidden=True),  # described in the docstring
    output: OutputFormat = OutputOption,
    database_url: str | None = DatabaseUrlOption,
    server_url: str | None = ServerUrlOption,
    token_file: Path | None = TokenFileOption,
    ca_file: Path | None = CaFileOption,
) -> None:
    """Show one incident with its detail fields (labels, annotations, parameters)."""
    from kds.cli import output as out
    from kds.cli.sources import open_source
    from kds.query import parse_incident_id

    config = source_settings(database_url=database_url, server_url=server_url, token_file=token_file, ca_file=ca_file)
    wanted = parse_incident_id(incident_id)
    source = open_source(config)
    try:
        incident = source.get(wanted)
    finally:
        source.close()
    if output in (OutputFormat.json, OutputFormat.ndjson):
        sys.stdout.write(out.json_document(incident) + "\n")
    elif output is OutputFormat.yaml:
        sys.stdout.write(out.yaml_document(incident))
    elif output is OutputFormat.csv:
        out.write_csv([incident], headers=True, out=sys.stdout)
    else:
        out.render_detail(incident, out=sys.stdout)
