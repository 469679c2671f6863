"""Progress of long work on stderr: a rich progress bar when stderr is a terminal, nothing otherwise.

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
EVERY = 500  # rows between updates of a counted stream


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def _rate_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Rows per second so far."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} rows/s" if speed else "", style="progress.data.speed")

    return RateColumn()


@contextmanager
def progress_bar(label: str, total: int | None, *, rate: bool = False) -> Iterator[Callable[[int], None]]:
    """Yield ``update(done)``; the bar shows ``done`` of ``total`` (a count alone when total is None)."""
    if not stderr_is_terminal():
        yield lambda _done: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns: list[Any] = [TextColumn(label)]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    else:
        columns.append(TextColumn("{task.completed:,} rows"))
    if rate:
        columns.append(_rate_column())
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda done: progress.update(task, completed=done)


def counted(items: Iterable[T], update: Callable[[int], None]) -> Iterator[T]:
    """``items`` unchanged, reporting how many went by every few hundred."""
    count = 0
    for item in items:
        yield item
        count += 1
        if count % EVERY == 0:
            update(count)
    update(count)
