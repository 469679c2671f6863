"""``kds db``: schema migrations and synthetic data."""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import StrEnum

import typer

from kds.cli import partitions
from kds.cli.common import (
    DatabaseUrlOption,
    maintenance_timeout,
    reports_errors,
    session,
    settings,
    transaction_setup,
)

app = typer.Typer(help="Schema migrations, data and partition maintenance.", no_args_is_help=True)
app.add_typer(partitions.app, name="partitions")


class StatusFormat(StrEnum):
    text = "text"
    json = "json"


@app.command()
@reports_errors
def migrate(database_url: str | None = DatabaseUrlOption) -> None:
    """Apply every pending migration (idempotent; running it twice is a no-op)."""
    from kds.cli.present.progress import progress_bars
    from kds.db import migrate as migrations
    from kds.db.connection import database_errors

    config = settings(database_url=database_url)
    timeout = maintenance_timeout(config)
    with (
        session(config, read_only=False, statement_timeout=timeout) as conn,
        database_errors(),
        progress_bars() as add_bar,
    ):
        bars: dict[str, Callable[[int], None]] = {}

        def built(migration_id: str, done: int, total: int) -> None:
            bars.setdefault(migration_id, add_bar(f"{migration_id}: building indexes", total, unit="indexes"))(done)

        applied = migrations.migrate(conn, setup=transaction_setup(config, timeout), progress=built)
    if applied:
        for migration_id in applied:
            print(f"applied {migration_id}")
    else:
        print("nothing to apply: the schema is up to date", file=sys.stderr)


@app.command()
@reports_errors
def status(
    database_url: str | None = DatabaseUrlOption,
    output: StatusFormat = typer.Option(StatusFormat.text, "-o", "--output", metavar="FORMAT", help="text or json."),
) -> None:
    """Show applied and pending migrations."""
    from kds.db import migrate as migrations
    from kds.db.connection import database_errors

    with session(settings(database_url=database_url), read_only=True) as conn, database_errors():
        result = migrations.status(conn)
    if output is StatusFormat.json:
        import orjson

        sys.stdout.write(orjson.dumps({"applied": result.applied, "pending": result.pending}).decode() + "\n")
        return
    for migration_id in result.applied:
        print(f"applied  {migration_id}")
    for migration_id in result.pending:
        print(f"pending  {migration_id}")


@app.command()
@reports_errors
def seed(
    incidents: int = typer.Option(1000, "--incidents", min=0, metavar="N", help="How many incidents to write."),
    seed_value: int = typer.Option(42, "--seed", metavar="N", help="Seed for deterministic data."),
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """Write realistic synthetic incidents (1,000,000 rows in well under a minute)."""
    import time

    from kds.cli.present.progress import progress_bars
    from kds.db import seed as seeding
    from kds.db.connection import database_errors

    started = time.perf_counter()
    config = settings(database_url=database_url)
    timeout = maintenance_timeout(config)
    with (
        session(config, read_only=False, statement_timeout=timeout) as conn,
        database_errors(),
        progress_bars() as add_bar,
    ):
        bars: dict[str, Callable[[int], None]] = {}

        def rebuilt(done: int, total: int) -> None:
            bars.setdefault("indexes", add_bar("rebuilding indexes", total, unit="indexes"))(done)

        written = seeding.seed(
            conn,
            incidents,
            seed_value=seed_value,
            progress=add_bar("seeding", incidents),
            index_progress=rebuilt,
            setup=transaction_setup(config, timeout),
        )
    elapsed = time.perf_counter() - started
    print(f"seeded {written} incidents in {elapsed:.1f}s", file=sys.stderr)
