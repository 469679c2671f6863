"""``kds db partitions [ensure | drop]``: partition maintenance of the incident table (docs/partitions.md)."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING

import typer

from kds.cli.common import DatabaseUrlOption, maintenance_timeout, reports_errors, session, settings
from kds.errors import InvalidInput

if TYPE_CHECKING:
    from kds.db.partitions import LockPolicy, Partition

APPLICATION_NAME = "kds-partitions"

app = typer.Typer(
    help="List the partitions of resource_action_traces; create the coming months; drop months past retention.",
    invoke_without_command=True,
)


class ListFormat(StrEnum):
    table = "table"
    json = "json"


LockTimeoutOption = typer.Option(
    "1s", "--lock-timeout", metavar="DURATION", help="How long one attempt may wait for a table lock (500ms, 2s, ...)."
)
AttemptsOption = typer.Option(5, "--attempts", min=1, max=100, metavar="N", help="Attempts before giving up on locks.")


def _policy(lock_timeout: str, attempts: int) -> LockPolicy:
    from kds.db.partitions import LockPolicy
    from kds.durations import parse_duration

    try:
        seconds = parse_duration(lock_timeout)
    except ValueError as error:
        raise InvalidInput.single("invalid-parameter", "--lock-timeout", f"--lock-timeout: {error}") from None
    if seconds <= 0:
        raise InvalidInput.single("invalid-parameter", "--lock-timeout", "--lock-timeout must be more than 0")
    return LockPolicy(lock_timeout=seconds, attempts=attempts)


@app.callback()
@reports_errors
def partitions(
    ctx: typer.Context,
    output: ListFormat = typer.Option(ListFormat.table, "-o", "--output", help="table or json."),
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """List the partitions of resource_action_traces: name, range and estimated rows."""
    if ctx.invoked_subcommand is not None:
        return
    from kds.db.partitions import list_partitions

    with session(settings(database_url=database_url), read_only=True, application_name=APPLICATION_NAME) as conn:
        found = list_partitions(conn)
    if output is ListFormat.json:
        import orjson

        document = {"table": "resource_action_traces", "partitions": [p.as_json() for p in found]}
        sys.stdout.write(orjson.dumps(document).decode() + "\n")
        return
    _print_table(found)


def _print_table(found: list[Partition]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console.width = 1000
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for header in ("NAME", "RANGE", "ROWS (ESTIMATE)"):
        table.add_column(
            header, no_wrap=True, header_style="bold", justify="right" if header.startswith("ROWS") else "left"
        )
    for p in found:
        rows = "unknown" if p.rows_estimate is None else f"{p.rows_estimate}"
        table.add_row(p.name if p.schema == "public" else f"{p.schema}.{p.name}", p.range_text(), rows)
    console.print(table)


@app.command()
@reports_errors
def ensure(
    ahead: int = typer.Option(
        3, "--ahead", min=0, max=120, metavar="N", help="Months ahead of the current one to create."
    ),
    lock_timeout: str = LockTimeoutOption,
    attempts: int = AttemptsOption,
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """Create every missing monthly partition from the current month (UTC) to --ahead months ahead.

    Idempotent. Rows of a created month that sit in the DEFAULT partition are moved into it.
    """
    from kds.db import partitions as maintenance
    from kds.db.partitions.catalog import iso_utc

    policy = _policy(lock_timeout, attempts)
    config = settings(database_url=database_url)
    with session(
        config, read_only=False, application_name=APPLICATION_NAME, statement_timeout=maintenance_timeout(config)
    ) as conn:
        created = maintenance.ensure(conn, ahead=ahead, policy=policy)
    if not created:
        print(f"nothing to do: every month up to {ahead} ahead has a partition", file=sys.stderr)
    for item in created:
        moved = f" (moved {item.moved_rows} rows out of DEFAULT)" if item.moved_rows else ""
        print(f"created {item.name} for [{iso_utc(item.low)}, {iso_utc(item.high)}){moved}")


@app.command()
@reports_errors
def drop(
    older_than: str = typer.Option(
        ..., "--older-than", metavar="AGE", help="Retention: 13mo (calendar months) or 400d (days)."
    ),
    yes: bool = typer.Option(False, "--yes", help="Really detach and drop (the data is gone)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only print the partitions that would be dropped."),
    lock_timeout: str = LockTimeoutOption,
    attempts: int = AttemptsOption,
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """Detach and drop whole partitions whose every row is older than --older-than. Never DEFAULT."""
    from kds.db import partitions as maintenance

    retention = maintenance.parse_retention(older_than)
    policy = _policy(lock_timeout, attempts)
    if not yes and not dry_run:
        raise InvalidInput.single(
            "invalid-parameter",
            "--yes",
            f"dropping partitions deletes their rows; pass --yes to drop the partitions older than {retention}, "
            "or --dry-run to see which they are",
        )
    config = settings(database_url=database_url)
    with session(
        config, read_only=dry_run, application_name=APPLICATION_NAME, statement_timeout=maintenance_timeout(config)
    ) as conn:
        chosen = maintenance.expired(conn, retention) if dry_run else maintenance.drop(conn, retention, policy=policy)
    verb = "would drop" if dry_run else "dropped"
    if not chosen:
        print(f"nothing to do: no partition is entirely older than {retention}", file=sys.stderr)
    for p in chosen:
        print(f"{verb} {p.name} {p.range_text()}")
