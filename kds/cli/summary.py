"""``kds incidents summary``: counts per group or per hour/day, with a bar chart (docs/summary.md).

A thin adapter: options go to :func:`kds.query.summary.parse_summary_query` as given, the summary
comes from the query core, and this module only presents it.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import typer

from kds.cli import filters
from kds.cli.common import (
    CaFileOption,
    DatabaseUrlOption,
    ReadDatabaseUrlOption,
    ServerUrlOption,
    TokenFileOption,
    reports_errors,
    source_settings,
)
from kds.query.vocabulary import LIMIT_RANGE, SUMMARY_DEFAULT_LIMIT

if TYPE_CHECKING:
    from kds.query.summary import Summary

# Eighths of a block: a bar's length is exact to 1/8 of a character.
_BLOCKS = " ▏▎▍▌▋▊▉█"
BAR_WIDTH = 40
NULL_KEY = "<none>"


class SummaryFormat(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"
    csv = "csv"


@reports_errors
def summarize_incidents(
    by: list[str] | None = typer.Option(
        None,
        "--by",
        metavar="DIM",
        help="namespace, severity, cluster, environment, action_type, alert_name, status, hour or day.",
        show_default=False,
    ),
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
        None,
        "-l",
        "--limit",
        metavar="N",
        help=f"Largest groups shown, {LIMIT_RANGE} [default: {SUMMARY_DEFAULT_LIMIT}; not for hour/day].",
    ),
    output: SummaryFormat = typer.Option(SummaryFormat.table, "-o", "--output", help="table, json, yaml or csv."),
    database_url: str | None = DatabaseUrlOption,
    read_database_url: str | None = ReadDatabaseUrlOption,
    server_url: str | None = ServerUrlOption,
    token_file: Path | None = TokenFileOption,
    ca_file: Path | None = CaFileOption,
) -> None:
    """Count incidents per group (largest first) or per UTC hour/day (oldest first, empty ones included)."""
    from kds.cli.sources import open_source
    from kds.query.summary import parse_summary_query

    params = filters.filter_params(
        by=by,
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
    )
    query = parse_summary_query(params, repeated_lists=True)
    config = source_settings(
        database_url=database_url,
        read_database_url=read_database_url,
        server_url=server_url,
        token_file=token_file,
        ca_file=ca_file,
    )
    source = open_source(config)
    try:
        summary = source.summary(query)
    finally:
        source.close()
    write_summary(summary, output, out=sys.stdout)
    if summary.total == 0:
        print("no incidents found", file=sys.stderr)


def write_summary(summary: Summary, output: SummaryFormat, *, out: TextIO) -> None:
    from kds.query.summary_sql import summary_json

    if output is SummaryFormat.json:
        out.write(summary_json(summary, indent=out.isatty()).decode() + "\n")
    elif output is SummaryFormat.yaml:
        from kds.cli.present.machine import yaml_document

        out.write(yaml_document(summary.model_dump()))
    elif output is SummaryFormat.csv:
        import csv

        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["key", "count"])
        writer.writerows(["" if group.key is None else group.key, group.count] for group in summary.data)
    else:
        out.write(render_summary_table(summary))


def bar(count: int, largest: int, width: int = BAR_WIDTH) -> str:
    """A bar of ``width * count / largest`` characters, to the nearest eighth; at least ``▏`` for a non-zero count."""
    if count <= 0 or largest <= 0:
        return ""
    eighths = max(1, round(8 * width * count / largest))
    full, part = divmod(eighths, 8)
    return "█" * full + (_BLOCKS[part] if part else "")


def _share(count: int, total: int) -> str:
    return f"{100 * count / total:.1f}%" if total else "-"


def render_summary_table(summary: Summary) -> str:
    """``KEY COUNT SHARE`` and a bar per group (a trend chart for hour/day), then the other and total lines."""
    from rich.cells import cell_len

    largest = max((group.count for group in summary.data), default=0)
    rows = [
        (NULL_KEY if group.key is None else group.key, str(group.count), _share(group.count, summary.total))
        for group in summary.data
    ]
    footer = [("other", str(summary.other), _share(summary.other, summary.total)), ("total", str(summary.total), "")]
    every = [("KEY", "COUNT", "SHARE"), *rows, *footer]
    widths = [max(cell_len(row[column]) for row in every) for column in range(3)]

    def line(key: str, count: str, share: str, chart: str = "") -> str:
        text = f"{key}{' ' * (widths[0] - cell_len(key))}  {count:>{widths[1]}}  {share:>{widths[2]}}"
        return (f"{text}  {chart}" if chart else text).rstrip() + "\n"

    lines = [line("KEY", "COUNT", "SHARE")]
    lines += [line(*row, bar(group.count, largest)) for row, group in zip(rows, summary.data, strict=True)]
    lines += [line(*row) for row in footer]
    return "".join(lines)
