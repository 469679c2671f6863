"""A kubectl-like table, written as rows arrive (docs/terminal.md, "The table").

Columns are sized once, from the first page, and never change: ``--all`` and ``--watch`` append
rows under one header with flat memory. On a terminal ``table`` fits the width: ``ID``, ``AGE``,
``SEVERITY`` and ``NAMESPACE`` (up to 30 cells) are never cut, ``STATUS`` then ``ACTION`` are
dropped before ``ALERT`` is shortened with ``…``. ``wide`` never shortens a value. Widths are
display widths (CJK and emoji take two cells, Thai combining marks none).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TextIO

from rich.cells import cell_len, set_cell_size

from kds.cli.present.columns import ALERT, SEVERITY_STYLES, TABLE_COLUMNS, WIDE_COLUMNS, Column, Incident

GAP = "   "  # kubectl's column padding
ELLIPSIS = "…"
FIRST_PAGE = 1000  # rows that size the columns of a streamed table
WRITE_LINES = 500  # lines per write: one system call per line is slow on an unbuffered stdout
# Widths a streamed table (watch) gives its shortenable columns at least: its first page may be tiny.
STREAM_MINIMUM = {"ALERT": 28, "ACTION": 20, "STATUS": 11}


def cell_width(text: str) -> int:
    """Display width: CJK and emoji take two cells, combining marks none (ASCII: its length)."""
    return len(text) if text.isascii() else cell_len(text)


def shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, ending with ``…`` when it had to be cut."""
    if cell_width(text) <= width:
        return text
    if width < 1:
        return ""
    return set_cell_size(text, width - 1).rstrip(" ") + ELLIPSIS


def fit(columns: list[Column], widths: list[int], limit: int) -> tuple[list[Column], list[int]]:
    """Drop and shorten columns (in the documented order) until a line fits ``limit`` cells."""
    columns, widths = list(columns), list(widths)

    def overflow() -> int:
        return sum(widths) + len(GAP) * (len(columns) - 1) - limit

    for rank in (1, 2):
        dropped = [i for i, column in enumerate(columns) if column.drop_rank == rank]
        if overflow() > 0 and dropped:
            del columns[dropped[0]], widths[dropped[0]]
    if overflow() > 0 and ALERT in columns:
        i = columns.index(ALERT)
        widths[i] = max(len(ALERT.header), widths[i] - overflow())
    for i, column in enumerate(columns):  # a terminal too narrow even for the promised columns
        if overflow() > 0 and column.keep is not None and widths[i] > column.keep:
            widths[i] = max(column.keep, widths[i] - overflow())
    return columns, widths


class TableWriter:
    """Writes incidents as table rows; the first :meth:`write` with rows sizes the columns."""

    def __init__(
        self, out: TextIO, *, wide: bool, headers: bool, width: int | None, colour: bool, streaming: bool = False
    ) -> None:
        self.out = out
        self.wide = wide
        self.headers = headers
        self.width = None if wide else width
        self.streaming = streaming
        self._columns: list[Column] = []
        self._widths: list[int] = []
        self._limits: list[int | None] = []
        self._styles = _severity_codes() if colour else {}

    def write(self, rows: Iterable[Incident]) -> int:
        """Write ``rows``; return how many were written."""
        now = datetime.now(UTC)
        remaining: Iterator[Incident] = iter(rows)
        lines: list[str] = []
        count = 0
        if not self._columns:
            first = [self._cells(WIDE_COLUMNS if self.wide else TABLE_COLUMNS, row, now) for row in
                     itertools.islice(remaining, FIRST_PAGE)]  # fmt: skip
            if not first:
                return 0
            self._size(first)
            if self.headers:
                lines.append(self._line([column.header for column in self._columns], header=True))
            lines += [self._line([cells[column.header] for column in self._columns]) for cells in first]
            count = len(first)
        for row in remaining:
            lines.append(self._line([column.read(row, now) for column in self._columns]))
            count += 1
            if len(lines) >= WRITE_LINES:
                self.out.write("".join(lines))
                lines.clear()
        self.out.write("".join(lines))
        return count

    @staticmethod
    def _cells(columns: tuple[Column, ...], row: Incident, now: datetime) -> dict[str, str]:
        return {column.header: column.read(row, now) for column in columns}

    def _size(self, first: list[dict[str, str]]) -> None:
        columns = list(WIDE_COLUMNS if self.wide else TABLE_COLUMNS)
        widths = []
        for column in columns:
            natural = max(cell_width(column.header), *(cell_width(cells[column.header]) for cells in first))
            if self.streaming and not self.wide:
                natural = max(natural, STREAM_MINIMUM.get(column.header, 0))
            widths.append(natural)
        if self.width is not None:
            columns, widths = fit(columns, widths, self.width)
        self._columns, self._widths = columns, widths
        self._limits = [self._limit(column, width) for column, width in zip(columns, widths, strict=True)]

    def _limit(self, column: Column, width: int) -> int | None:
        """The most cells a value of ``column`` may take (None: never shortened)."""
        if self.wide:
            return None
        if column.keep is None:
            return width
        return max(width, column.keep) if self.width is not None else None

    def _line(self, cells: list[str], *, header: bool = False) -> str:
        parts = []
        used = 0  # cells taken by the columns before this one
        last = len(cells) - 1
        columns = zip(self._columns, cells, self._widths, self._limits, strict=True)
        for i, (column, text, width, limit) in enumerate(columns):
            size = cell_width(text)
            if limit is not None and size > limit:
                text = shorten(text, limit)
                size = cell_width(text)
            if i == last:
                if self.width is not None and used + size > self.width:  # a later row wider than the first page
                    text = shorten(text, max(self.width - used, 0))
                parts.append(text)
                break
            style = None if header else self._styles.get(text) if column.header == "SEVERITY" else None
            parts.append(f"{style[0]}{text}{style[1]}" if style else text)
            parts.append(" " * max(width - size, 0) + GAP)
            used += max(width, size) + len(GAP)
        return "".join(parts).rstrip(" ") + "\n"


def _severity_codes() -> dict[str, tuple[str, str]]:
    """ANSI start and end sequences of each severity's colour."""
    from rich.color import ColorSystem
    from rich.style import Style

    codes = {}
    for severity, style in SEVERITY_STYLES.items():
        start, _, end = Style.parse(style).render("\0", color_system=ColorSystem.STANDARD).partition("\0")
        codes[severity] = (start, end)
    return codes
