"""Progress of long work on stderr: rich progress bars when stderr is a terminal, nothing otherwise.

Used by ``kds db seed``, ``kds db migrate`` (index builds) and ``--all`` exports written to a file
or a pipe (docs/terminal.md, "Progress").
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from rich.progress import Task
    from rich.text import Text

T = TypeVar("T")
Update = Callable[[int], None]
AddBar = Callable[..., Update]
EVERY = 500  # rows between updates of a counted stream


def _columns() -> list[Any]:
    from rich.progress import BarColumn, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class CountColumn(ProgressColumn):
        """``done/total unit``, or ``done unit`` when the total is unknown."""

        def render(self, task: Task) -> Text:
            unit = task.fields.get("unit", "rows")
            done = f"{int(task.completed):,}"
            return Text(f"{done}/{int(task.total):,} {unit}" if task.total else f"{done} {unit}")

    class RateColumn(ProgressColumn):
        """Rows per second so far."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            if task.fields.get("unit", "rows") != "rows" or not speed:
                return Text("")
            return Text(f"{speed:,.0f} rows/s", style="progress.data.speed")

    return [TextColumn("{task.description}"), BarColumn(), CountColumn(), RateColumn(), TimeElapsedColumn()]


@contextmanager
def progress_bars() -> Iterator[AddBar]:
    """Yield ``add(label, total=None, unit="rows")``, which returns ``update(done)`` for a new bar.

    A bar appears at its first update; every bar disappears when the block ends.
    """
    if not sys.stderr.isatty():
        yield lambda *_args, **_kwargs: lambda _done: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(*_columns(), console=Console(stderr=True), transient=True) as progress:

        def add(label: str, total: int | None = None, *, unit: str = "rows") -> Update:
            task: list[Any] = []

            def update(done: int) -> None:
                if not task:
                    task.append(progress.add_task(label, total=total, unit=unit))
                progress.update(task[0], completed=done)

            return update

        yield add


def counted(items: Iterable[T], update: Update) -> Iterator[T]:
    """``items`` unchanged, reporting how many went by every few hundred."""
    count = 0
    for item in items:
        yield item
        count += 1
        if count % EVERY == 0:
            update(count)
    update(count)
