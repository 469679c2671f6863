"""``kds incidents list`` and ``kds incidents get``: a thin adapter over the query core."""

from __future__ import annotations

import sys
from typing import Any

import typer

from kds.cli import filters, summary
from kds.cli.common import DatabaseUrlOption, reports_errors, session, settings
from kds.cli.output import OutputFormat
from kds.query.vocabulary import CLI_DEFAULT_LIMIT, LIMIT_RANGE

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
    output: OutputFormat = OutputOption,
    no_headers: bool = typer.Option(False, "--no-headers", help="Omit table and csv headers."),
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """List incidents, newest first."""
    from kds.query import parse_incident_query

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
    config = settings(database_url=database_url)
    query = parse_incident_query(
        params, default_limit=CLI_DEFAULT_LIMIT, cursor_key=config.cursor_key, repeated_lists=True
    )
    with session(config, read_only=True) as conn:
        if all_rows:
            count = _write_all(conn, query, output, headers=not no_headers)
        else:
            count = _write_page(conn, query, output, headers=not no_headers, cursor_key=config.cursor_key)
    if count == 0:
        print("no incidents found", file=sys.stderr)


def _write_page(conn: Any, query: Any, output: OutputFormat, *, headers: bool, cursor_key: bytes) -> int:
    from kds.cli import output as out
    from kds.db.connection import database_errors
    from kds.query.execute import fetch_page

    with database_errors():
        page = fetch_page(conn, query, cursor_key)
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


def _write_all(conn: Any, query: Any, output: OutputFormat, *, headers: bool) -> int:
    from kds.cli import output as out
    from kds.db.connection import database_rows
    from kds.query.execute import stream_incidents

    documents = database_rows(stream_incidents(conn, query))
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


app.command("summary")(summary.summarize_incidents)


@app.command("get")
@reports_errors
def get_incident(
    incident_id: str = typer.Argument(..., metavar="ID", hidden=True),  # described in the docstring
    output: OutputFormat = OutputOption,
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """Show the incident ID with its detail fields (labels, annotations, parameters)."""
    import orjson

    from kds.cli import output as out
    from kds.db.connection import database_errors
    from kds.query import parse_incident_id
    from kds.query.execute import fetch_incident

    wanted = parse_incident_id(incident_id)
    with session(settings(database_url=database_url), read_only=True) as conn, database_errors():
        document = fetch_incident(conn, wanted)
    incident = orjson.loads(document)
    if output in (OutputFormat.json, OutputFormat.ndjson):
        sys.stdout.write(out.json_document(incident) + "\n")
    elif output is OutputFormat.yaml:
        sys.stdout.write(out.yaml_document(incident))
    elif output is OutputFormat.csv:
        out.write_csv([incident], headers=True, out=sys.stdout)
    else:
        out.render_detail(incident, out=sys.stdout)
