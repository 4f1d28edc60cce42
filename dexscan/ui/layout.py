"""The machinery behind "never jumps": fixed-height sections, fixed-width columns that are dropped by
priority when the terminal is narrow, and lines of chunks that drop whole low-priority chunks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.rule import Rule
from rich.segment import Segment
from rich.table import Column, Table
from rich.text import Text

DEFAULT_TABLE_ROWS = 8


class FixedHeight:
    """Renders its content into exactly ``height`` lines: padded with blank lines, or cropped.

    This is the guarantee behind "never jumps": whatever a section contains, the sections below it
    stay where they are.
    """

    def __init__(self, renderable: RenderableType, height: int) -> None:
        self.renderable = renderable
        self.height = height

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = console.render_lines(self.renderable, options.update(height=self.height), pad=True)
        new_line = Segment.line()
        for line in lines:
            yield from line
            yield new_line


Justify = Literal["left", "right", "center"]


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One table column: fixed width, and how long it survives when the terminal is narrow."""

    key: str
    header: str
    width: int
    keep: int  # columns with the lowest ``keep`` are dropped first when space runs out
    justify: Justify = "left"
    flex: bool = False  # takes the width left over; ``width`` is then its minimum


def fit_columns(columns: Sequence[ColumnSpec], width: int) -> list[tuple[ColumnSpec, int]]:
    """Columns that fit in ``width`` (one space between columns), in display order, with widths."""
    kept = list(columns)

    def total(cols: Sequence[ColumnSpec]) -> int:
        return sum(c.width for c in cols) + max(0, len(cols) - 1)

    while len(kept) > 1 and total(kept) > width:
        kept.remove(min(kept, key=lambda c: c.keep))
    spare = max(0, width - total(kept))
    return [(c, c.width + spare if c.flex else c.width) for c in kept]


def fit_chunks(chunks: Sequence[tuple[Text, int]], width: int, sep: str = "   ") -> Text:
    """Joins the chunks that fit in ``width``, dropping whole low-priority chunks (never mid-word)."""
    kept = list(chunks)
    while len(kept) > 1 and sum(t.cell_len for t, _ in kept) + len(sep) * (len(kept) - 1) > width:
        kept.remove(min(kept, key=lambda c: c[1]))
    out = Text(sep).join(t for t, _ in kept)
    out.no_wrap = True
    out.overflow = "ellipsis"
    return out


def column_table(cols: Sequence[tuple[ColumnSpec, int]]) -> Table:
    table = Table(
        *[
            Column(c.header, width=w, min_width=w, max_width=w, no_wrap=True, overflow="ellipsis",
                   justify=c.justify, header_style="bold")
            for c, w in cols
        ],
        box=None,
        padding=(0, 1, 0, 0),
        pad_edge=False,
        show_edge=False,
        collapse_padding=False,
        expand=False,
        header_style="bold",
    )
    return table


Cells = dict[str, Text]


def section(
    title: str, total: int, columns: Sequence[ColumnSpec], rows: Sequence[Cells], width: int, table_rows: int,
    hint: str, key_hint: str = "",
) -> FixedHeight:
    """Title rule + header + exactly ``table_rows`` lines (data, blanks, and a "+N more" line);
    ``key_hint`` (e.g. "r: rejected") follows the title whatever the rows."""
    cols = fit_columns(columns, width)
    table = column_table(cols)
    overflow = len(rows) > table_rows
    shown = rows[: table_rows - 1] if overflow else rows
    for cells in shown:
        table.add_row(*[cells.get(c.key, Text("")) for c, _ in cols])
    for _ in range(table_rows - len(shown) - (1 if overflow else 0)):
        table.add_row(*["" for _ in cols])
    heading = Text.assemble((f" {title} ", "bold reverse"), (f" {total} ", "bold"))
    if total == 0:
        heading.append(hint, style="dim italic")
    if key_hint:
        heading.append(f"  {key_hint} ", style="dim")
    parts: list[RenderableType] = [Rule(heading, align="left", style="grey42"), table]
    if overflow:
        parts.append(Text(f"+{len(rows) - len(shown)} more", style="dim italic", no_wrap=True))
    return FixedHeight(Group(*parts), table_rows + 2)


def with_zone(columns: Sequence[ColumnSpec], zone_name: str, show_utc: bool) -> list[ColumnSpec]:
    out = []
    for c in columns:
        if c.key == "utc" and not show_utc:
            continue
        out.append(ColumnSpec(c.key, c.header.format(zone=zone_name), c.width, c.keep, c.justify, c.flex)
                   if "{zone}" in c.header else c)
    return out
