"""The terminal dashboard: a status panel, three fixed-height signal tables (SPEC §9) and the
latest gate rejections ("why isn't X in my universe"): a fourth section when the terminal has the
lines for it, else the ``r`` key swaps it with CLOSED.

Traders watch this for hours, so it must never jump: every section is rendered into an exact number
of lines (:class:`FixedHeight`), every cell is one line (no wrapping, ellipsis instead), and column
widths are fixed per terminal width rather than sized by content, so a new row with a longer symbol
does not shift every other column. When the terminal is narrow, whole columns are dropped by
priority (reasons first, then TP3, TP2, liquidity, ...) instead of squeezing all of them.

:func:`render` is pure (status and width in, renderable out) so it can be snapshot-tested;
:class:`Dashboard` is the thin shell that puts it on the alternate screen with rich ``Live``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.rule import Rule
from rich.segment import Segment
from rich.table import Column, Table
from rich.text import Text

from dexscan.config import Settings
from dexscan.domain import Confidence
from dexscan.status import (
    ClosedRow,
    LiveRow,
    RejectedRow,
    RpcEndpointStatus,
    ScannerStatus,
    SignalRow,
    SourceStatus,
)
from dexscan.vtime import VirtualTimeLoop

log = logging.getLogger(__name__)

DEFAULT_TABLE_ROWS = 8
_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_DASH = "—"

# ---------------------------------------------------------------------------------------------
# Formatting (plain strings; also usable by alert cards)
# ---------------------------------------------------------------------------------------------


def format_price(price: float | None) -> str:
    """A USD price in at most ~9 characters with 4 significant digits.

    Meme-token prices are tiny, so three or more zeros after the decimal point are written as a
    subscript count, as DEX screeners do: 0.000001234 → ``0.0₅1234``. Large prices get thousands
    separators and no scientific notation.
    """
    if price is None or not math.isfinite(price):
        return _DASH
    if price == 0:
        return "0"
    sign = "-" if price < 0 else ""
    p = abs(price)
    mantissa, exp_text = f"{p:.3e}".split("e")
    exp = int(exp_text)
    digits = mantissa.replace(".", "")
    if exp >= 3:
        return f"{sign}{p:,.0f}"
    if exp >= 0:
        return f"{sign}{p:.{3 - exp}f}"
    zeros = -exp - 1
    if zeros >= 3:
        return f"{sign}0.0{str(zeros).translate(_SUBSCRIPT)}{digits}"
    return f"{sign}0.{'0' * zeros}{digits}"


def format_usd(value: float | None) -> str:
    """Compact dollars for liquidity and volume: $850, $12.3K, $4.56M, $1.2B."""
    if value is None or not math.isfinite(value):
        return _DASH
    v = abs(value)
    sign = "-" if value < 0 else ""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if v >= scale:
            q = v / scale
            return f"{sign}${q:.3g}{unit}" if q < 100 else f"{sign}${q:.0f}{unit}"
    return f"{sign}${v:.0f}"


def format_pct(value: float | None) -> str:
    """Signed percent with one decimal below 100: +2.4%, -11.0%, +245%."""
    if value is None or not math.isfinite(value):
        return _DASH
    return f"{value:+.1f}%" if abs(value) < 100 else f"{value:+.0f}%"


def format_ratio(value: float | None) -> str:
    """A volume multiple: 4.2×, 37×, 1.2k×."""
    if value is None or not math.isfinite(value):
        return _DASH
    if value >= 1000:
        return f"{value / 1000:.1f}k×"
    return f"{value:.1f}×" if value < 100 else f"{value:.0f}×"


def format_r(value: float | None) -> str:
    """A result in R: +1.50R, -1.00R."""
    if value is None or not math.isfinite(value):
        return _DASH
    return f"{value:+.2f}R" if abs(value) < 100 else f"{value:+.0f}R"


def format_duration(seconds: float | None) -> str:
    """Short elapsed time: 45s, 12m, 3h05m, 2d04h."""
    if seconds is None or not math.isfinite(seconds):
        return _DASH
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def short_mint(mint: str) -> str:
    """First and last four characters: ``7xKX…pump`` (pump.fun mints end in "pump")."""
    return mint if len(mint) <= 9 else f"{mint[:4]}…{mint[-4:]}"


def token_label(symbol: str, mint: str) -> str:
    """``BONK 7xKX…pump``; the symbol is cut to 6 characters so the mint always shows."""
    sym = symbol.strip()
    if len(sym) > 6:
        sym = sym[:5] + "…"
    return f"{sym} {short_mint(mint)}" if sym else short_mint(mint)


def confidence_label(conf: Confidence | None) -> str:
    """``72%`` when calibrated; ``r0.61`` (the raw score, explicitly not a probability) otherwise."""
    if conf is None:
        return _DASH
    if conf.probability is not None:
        return f"{conf.probability * 100:.0f}%"
    return f"r{conf.raw_score:.2f}"


def strategy_label(strategy: str, layer: str) -> str:
    """Strategy name, with the detector layer when the name does not already say it."""
    name = strategy.replace("_", " ").replace("confirmation", "confirm").replace("volume", "vol")
    if layer in ("ignition", "confirmation") and layer not in strategy:
        name = f"{name}/{'ign' if layer == 'ignition' else 'conf'}"
    return name


def zone_of(name: str) -> tzinfo:
    """The IANA zone ``name``, or UTC if this machine does not know it (the dashboard must not die)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def clock_text(ts: float, zone: tzinfo, seconds: bool = False) -> str:
    return datetime.fromtimestamp(ts, zone).strftime("%H:%M:%S" if seconds else "%H:%M")


def zone_abbrev(ts: float, zone: tzinfo) -> str:
    return datetime.fromtimestamp(ts, zone).strftime("%Z") or "local"


# ---------------------------------------------------------------------------------------------
# Layout machinery
# ---------------------------------------------------------------------------------------------


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


def _fit_chunks(chunks: Sequence[tuple[Text, int]], width: int, sep: str = "   ") -> Text:
    """Joins the chunks that fit in ``width``, dropping whole low-priority chunks (never mid-word)."""
    kept = list(chunks)
    while len(kept) > 1 and sum(t.cell_len for t, _ in kept) + len(sep) * (len(kept) - 1) > width:
        kept.remove(min(kept, key=lambda c: c[1]))
    out = Text(sep).join(t for t, _ in kept)
    out.no_wrap = True
    out.overflow = "ellipsis"
    return out


def _table(cols: Sequence[tuple[ColumnSpec, int]]) -> Table:
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


def _section(
    title: str, total: int, columns: Sequence[ColumnSpec], rows: Sequence[Cells], width: int, table_rows: int,
    hint: str, key_hint: str = "",
) -> FixedHeight:
    """Title rule + header + exactly ``table_rows`` lines (data, blanks, and a "+N more" line);
    ``key_hint`` (e.g. "r: rejected") follows the title whatever the rows."""
    cols = fit_columns(columns, width)
    table = _table(cols)
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


def _styled(text: str, style: str = "") -> Text:
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def _signed_style(value: float | None) -> str:
    if value is None or value == 0:
        return ""
    return "green" if value > 0 else "red"


def _conf_cell(conf: Confidence | None) -> Text:
    if conf is None or conf.probability is None:
        return _styled(confidence_label(conf), "dim")
    return _styled(confidence_label(conf), "bold" if conf.probability >= 0.6 else "")


_OUTCOME_STYLES = {
    "tp1": "green",
    "tp2": "bold green",
    "tp3": "bold bright_green",
    "sl": "bold red",
    "breakeven": "yellow",
    "expired": "dim",
    "open": "",
}

# ---------------------------------------------------------------------------------------------
# The three tables
# ---------------------------------------------------------------------------------------------

NEW_COLUMNS = (
    ColumnSpec("time", "{zone}", 5, 100),
    ColumnSpec("utc", "UTC", 5, 20),
    ColumnSpec("token", "token", 16, 99),
    ColumnSpec("strategy", "strategy", 10, 90),
    ColumnSpec("rise", "rise", 6, 80, "right"),
    ColumnSpec("vol", "vol", 5, 60, "right"),
    ColumnSpec("conf", "conf", 6, 85, "right"),
    ColumnSpec("entry", "entry", 8, 95, "right"),
    ColumnSpec("sl", "SL", 8, 94, "right"),
    ColumnSpec("tp1", "TP1", 8, 93, "right"),
    ColumnSpec("tp2", "TP2", 8, 45, "right"),
    ColumnSpec("tp3", "TP3", 8, 40, "right"),
    ColumnSpec("liq", "liq", 7, 50, "right"),
    ColumnSpec("age", "age", 5, 55, "right"),
    ColumnSpec("reasons", "reasons", 16, 10, flex=True),
)

LIVE_COLUMNS = (
    ColumnSpec("time", "{zone}", 5, 100),
    ColumnSpec("utc", "UTC", 5, 20),
    ColumnSpec("token", "token", 16, 99),
    ColumnSpec("strategy", "strategy", 10, 90),
    ColumnSpec("entry", "entry", 8, 92, "right"),
    ColumnSpec("price", "now", 8, 97, "right"),
    ColumnSpec("r_now", "R now", 6, 98, "right"),
    ColumnSpec("hits", "hits", 11, 96),
    ColumnSpec("stop", "stop", 8, 85, "right"),
    ColumnSpec("max_r", "max R", 6, 50, "right"),
    ColumnSpec("conf", "conf", 6, 60, "right"),
    ColumnSpec("tp1", "TP1", 8, 45, "right"),
    ColumnSpec("tp2", "TP2", 8, 40, "right"),
    ColumnSpec("tp3", "TP3", 8, 35, "right"),
    ColumnSpec("age", "age", 6, 65, "right"),
    ColumnSpec("reasons", "reasons", 16, 10, flex=True),
)

CLOSED_COLUMNS = (
    ColumnSpec("time", "{zone}", 5, 100),
    ColumnSpec("utc", "UTC", 5, 20),
    ColumnSpec("token", "token", 16, 99),
    ColumnSpec("strategy", "strategy", 10, 90),
    ColumnSpec("outcome", "outcome", 9, 98),
    ColumnSpec("r", "R", 6, 97, "right"),
    ColumnSpec("took", "took", 6, 85, "right"),
    ColumnSpec("entry", "entry", 8, 70, "right"),
    ColumnSpec("exit", "exit", 8, 72, "right"),
    ColumnSpec("max_r", "max R", 6, 60, "right"),
    ColumnSpec("conf", "conf", 6, 65, "right"),
    ColumnSpec("fired", "fired", 5, 30),
    ColumnSpec("path", "path", 16, 10, flex=True),
)


def _with_zone(columns: Sequence[ColumnSpec], zone_name: str, show_utc: bool) -> list[ColumnSpec]:
    out = []
    for c in columns:
        if c.key == "utc" and not show_utc:
            continue
        out.append(ColumnSpec(c.key, c.header.format(zone=zone_name), c.width, c.keep, c.justify, c.flex)
                   if "{zone}" in c.header else c)
    return out


@dataclass(frozen=True, slots=True)
class _Zones:
    local: tzinfo
    name: str  # abbreviation shown in headers, e.g. "IST"
    is_utc: bool


_UTC_NAMES = frozenset({"UTC", "ETC/UTC", "GMT", "ETC/GMT", "Z", "ZULU", "UNIVERSAL", "ETC/UNIVERSAL"})


def _zones(status: ScannerStatus) -> _Zones:
    zone = zone_of(status.local_zone)
    is_utc = zone is UTC or status.local_zone.upper() in _UTC_NAMES
    return _Zones(zone, "UTC" if is_utc else zone_abbrev(status.now, zone), is_utc)


def new_signals_table(status: ScannerStatus, width: int, table_rows: int = DEFAULT_TABLE_ROWS) -> FixedHeight:
    """New signals, newest first: exactly ``table_rows + 2`` lines."""
    z = _zones(status)
    rows: list[Cells] = []
    for r in sorted(status.new_signals, key=lambda r: (r.ts, r.mint), reverse=True):
        rows.append(_new_cells(r, z))
    return _section("NEW SIGNALS", len(status.new_signals), _with_zone(NEW_COLUMNS, z.name, not z.is_utc), rows,
                    width, table_rows, "  waiting for the first ignition")


_SHORT_STRATEGY = {"ignition": "ign", "volume_surge": "vol", "confirmation": "conf", "god_candle": "god"}


def move_label(r: SignalRow) -> str:
    """The row's strategies: one (``ignition``), or every strategy of the move in short (``ign+vol``;
    the reasons column names them in full), with ``⚠`` when one of them has a negative measured record."""
    names = r.strategies or (r.strategy,)
    label = strategy_label(r.strategy, r.layer) if len(names) == 1 else "+".join(
        _SHORT_STRATEGY.get(n, n[:4]) for n in names)
    return f"⚠{label}" if r.negative_record else label


def _new_cells(r: SignalRow, z: _Zones) -> Cells:
    return {
        "time": _styled(clock_text(r.ts, z.local), "bold"),
        "utc": _styled(clock_text(r.ts, UTC), "dim"),
        "token": _styled(token_label(r.symbol, r.mint), "bold cyan"),
        "strategy": _styled(move_label(r), "bold red" if r.negative_record else "medium_purple1"),
        "rise": _styled(format_pct(r.rise_pct), _signed_style(r.rise_pct)),
        "vol": _styled(format_ratio(r.volume_ratio)),
        "conf": _conf_cell(r.confidence),
        "entry": _styled(format_price(r.entry), "bold"),
        "sl": _styled(format_price(r.sl), "red"),
        "tp1": _styled(format_price(r.tp1), "green"),
        "tp2": _styled(format_price(r.tp2), "green"),
        "tp3": _styled(format_price(r.tp3), "green"),
        "liq": _styled(format_usd(r.liquidity_usd)),
        "age": _styled(format_duration(r.age_s), "dim"),
        "reasons": _styled("; ".join((*r.notes, *r.reasons)), "dim"),
    }


def live_signals_table(status: ScannerStatus, width: int, table_rows: int = DEFAULT_TABLE_ROWS) -> FixedHeight:
    """Tracked signals, newest first, with current price, R now and the levels hit so far."""
    z = _zones(status)
    rows = [_live_cells(r, z) for r in sorted(status.live_signals, key=lambda r: (r.ts, r.mint), reverse=True)]
    return _section("LIVE", len(status.live_signals), _with_zone(LIVE_COLUMNS, z.name, not z.is_utc), rows,
                    width, table_rows, "  no open trades")


def _live_cells(r: LiveRow, z: _Zones) -> Cells:
    up = None if r.price is None else r.price - r.entry
    hits = " ".join(h.upper() for h in r.hits)
    return {
        "time": _styled(clock_text(r.ts, z.local), "bold"),
        "utc": _styled(clock_text(r.ts, UTC), "dim"),
        "token": _styled(token_label(r.symbol, r.mint), "bold cyan"),
        "strategy": _styled(strategy_label(r.strategy, r.layer), "medium_purple1"),
        "entry": _styled(format_price(r.entry)),
        "price": _styled(format_price(r.price), _signed_style(up)),
        "r_now": _styled(format_r(r.r_now), "bold " + _signed_style(r.r_now) if r.r_now else ""),
        "hits": _styled(hits, "green") if hits else _styled(_DASH, "dim"),
        "stop": _styled(format_price(r.stop), "yellow" if r.stop is not None and r.stop >= r.entry else "red"),
        "max_r": _styled(format_r(r.max_r), "dim"),
        "conf": _conf_cell(r.confidence),
        "tp1": _styled(format_price(r.tp1), "green" if "tp1" in r.hits else "dim"),
        "tp2": _styled(format_price(r.tp2), "green" if "tp2" in r.hits else "dim"),
        "tp3": _styled(format_price(r.tp3), "green" if "tp3" in r.hits else "dim"),
        "age": _styled(format_duration(r.age_s), "dim"),
        "reasons": _styled("; ".join(r.reasons), "dim"),
    }


def closed_signals_table(status: ScannerStatus, width: int, table_rows: int = DEFAULT_TABLE_ROWS,
                         key_hint: str = "") -> FixedHeight:
    """Finished trades, most recently closed first, with outcome, realized R and duration."""
    z = _zones(status)
    rows = [
        _closed_cells(r, z)
        for r in sorted(status.closed_signals, key=lambda r: (r.closed_at, r.ts, r.mint), reverse=True)
    ]
    return _section("CLOSED", len(status.closed_signals), _with_zone(CLOSED_COLUMNS, z.name, not z.is_utc), rows,
                    width, table_rows, "  nothing closed yet", key_hint)


REJECTED_COLUMNS = (
    ColumnSpec("time", "{zone}", 5, 100),
    ColumnSpec("utc", "UTC", 5, 20),
    ColumnSpec("token", "token", 16, 99),
    ColumnSpec("action", "", 8, 90),
    ColumnSpec("reason", "why the gates keep it out", 24, 98, flex=True),
)


def rejected_table(status: ScannerStatus, width: int, table_rows: int = DEFAULT_TABLE_ROWS,
                   key_hint: str = "") -> FixedHeight:
    """The latest gate rejections, newest first, one per token, each with the gate and its reason."""
    z = _zones(status)
    rows = [_rejected_cells(r, z) for r in sorted(status.rejected, key=lambda r: (r.at, r.mint), reverse=True)]
    return _section("REJECTED", len(status.rejected), _with_zone(REJECTED_COLUMNS, z.name, not z.is_utc), rows,
                    width, table_rows, "  no token rejected by the gates yet", key_hint)


def _rejected_cells(r: RejectedRow, z: _Zones) -> Cells:
    return {
        "time": _styled(clock_text(r.at, z.local), "bold"),
        "utc": _styled(clock_text(r.at, UTC), "dim"),
        "token": _styled(token_label(r.symbol, r.mint), "bold cyan"),
        "action": _styled("left" if r.left else "rejected", "yellow" if r.left else "red"),
        "reason": _styled(r.reason),
    }


def _closed_cells(r: ClosedRow, z: _Zones) -> Cells:
    return {
        "time": _styled(clock_text(r.closed_at, z.local), "bold"),
        "utc": _styled(clock_text(r.closed_at, UTC), "dim"),
        "fired": _styled(clock_text(r.ts, z.local), "dim"),
        "token": _styled(token_label(r.symbol, r.mint), "bold cyan"),
        "strategy": _styled(strategy_label(r.strategy, r.layer), "medium_purple1"),
        "outcome": _styled(r.result.upper() if r.result.startswith("tp") or r.result == "sl" else r.result,
                           _OUTCOME_STYLES.get(r.result, "")),
        "r": _styled(format_r(r.realized_r), _signed_style(r.realized_r)),
        "took": _styled(format_duration(r.duration_s)),
        "entry": _styled(format_price(r.entry)),
        "exit": _styled(format_price(r.exit_price)),
        "max_r": _styled(format_r(r.max_r), "dim"),
        "conf": _conf_cell(r.confidence),
        "path": _path_text(r.path),
    }


def _path_text(path: Sequence[tuple[str, int]]) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    for i, (level, after_s) in enumerate(path):
        if i:
            out.append(" → ", style="dim")
        out.append(level.upper() if level.startswith("tp") or level == "sl" else level, _OUTCOME_STYLES.get(level, ""))
        out.append(f" +{format_duration(after_s)}", style="dim")
    return out


# ---------------------------------------------------------------------------------------------
# Status panel
# ---------------------------------------------------------------------------------------------

_STATE_STYLES = {"ok": "green", "degraded": "yellow", "down": "red", "circuit open": "bold red"}


def status_panel_height(status: ScannerStatus, compact: bool = False) -> int:
    """Borders (2) + three info lines + the sources header + one line per source; or, ``compact``,
    borders + three info lines + one line summing up every source."""
    return 2 + 3 + 1 if compact else 2 + 3 + 1 + len(status.sources)


def _budget_bar(used: int, limit: int, cells: int = 10) -> Text:
    share = 0.0 if limit <= 0 else min(1.0, used / limit)
    filled = round(share * cells)
    style = "green" if share < 0.7 else "yellow" if share < 0.9 else "red"
    return Text.assemble(("▰" * filled, style), ("▱" * (cells - filled), "grey35"))


def _sources_table(sources: Sequence[SourceStatus], width: int) -> Table:
    columns = (
        ColumnSpec("name", "source", 13, 100),
        ColumnSpec("state", "state", 14, 99),
        ColumnSpec("latency", "latency", 7, 95, "right"),
        ColumnSpec("requests", "requests", 8, 80, "right"),
        ColumnSpec("r429", "429s", 5, 96, "right"),
        ColumnSpec("errors", "errors", 6, 90, "right"),
        ColumnSpec("budget", "budget", 11, 97, "right"),
        ColumnSpec("bar", "", 10, 60),
    )
    cols = fit_columns(columns, width)
    table = _table(cols)
    for s in sources:
        cells = {
            "name": _styled(s.name, "bold"),
            "state": _styled(f"● {s.state}", _STATE_STYLES.get(s.state, "")),
            "latency": _styled(_DASH if s.latency_ms is None else f"{s.latency_ms:.0f}ms"),
            "requests": _styled(f"{s.requests:,}"),
            "r429": _styled(str(s.rate_limited), "yellow" if s.rate_limited else "dim"),
            "errors": _styled(str(s.errors), "red" if s.errors else "dim"),
            "budget": _styled(_budget_text(s)),
            "bar": _budget_bar(s.budget_used, s.budget_limit),
        }
        table.add_row(*[cells[c.key] for c, _ in cols])
    return table


def _rpc_text(status: ScannerStatus) -> Text:
    up = sum(1 for e in status.rpc if e.healthy)
    active: RpcEndpointStatus | None = next((e for e in status.rpc if e.name == status.active_rpc), None)
    out = Text("rpc ", style="grey62")
    if status.active_rpc is None:
        if not status.rpc or not any(e.requests or e.latency_ms is not None for e in status.rpc):
            out.append("● probing", style="yellow")  # nothing asked yet: no verdict to give
        elif up:
            out.append("● no answer yet", style="yellow")
        else:
            out.append("● none healthy", style="bold red")
    else:
        out.append("● ", style="green" if active is None or active.healthy else "red")
        out.append(status.active_rpc.split("://", 1)[-1], style="bold")
        if active is not None:
            if active.latency_ms is not None:
                out.append(f" {active.latency_ms:.0f}ms")
            if active.slot_lag is not None:
                out.append(f" lag {active.slot_lag}", style="dim")
    if status.rpc:
        out.append(f" ({up}/{len(status.rpc)} up)", style="dim" if up == len(status.rpc) else "yellow")
    return out


def _budget_text(s: SourceStatus) -> str:
    window = f"/{s.budget_window_s:.0f}s" if s.budget_window_s else ""
    return f"{s.budget_used}/{s.budget_limit}{window}"


def _sources_line(sources: Sequence[SourceStatus], width: int) -> Text:
    """Every source in one line (the compact panel): how many are ok, then the ones that are not
    (they matter most), then the healthy ones with latency and budget, as far as the width allows."""
    ok = sum(1 for s in sources if s.state == "ok")
    chunks: list[tuple[Text, int]] = [(Text.assemble(
        ("sources ", "grey62"), (f"{ok}/{len(sources)} ok", "green" if ok == len(sources) else "yellow")), 100)]
    for i, s in enumerate(sources):
        if s.state == "ok":
            latency = "" if s.latency_ms is None else f" {s.latency_ms:.0f}ms"
            chunks.append((Text.assemble((s.name, "bold"), f"{latency} {_budget_text(s)}"), 50 - i))
        else:
            chunks.append((Text.assemble((s.name, "bold"), " ", (f"● {s.state}", _STATE_STYLES.get(s.state, ""))),
                           90 - i))
    return _fit_chunks(chunks, width, sep=" · ")


def status_panel(status: ScannerStatus, width: int, compact: bool = False) -> FixedHeight:
    """Time (UTC and local), universe and gates, calibrator, RPC, backlog, and every source's health
    (a table, or one summary line when ``compact``, for short terminals)."""
    z = _zones(status)
    inner = max(10, width - 4)
    utc = datetime.fromtimestamp(status.now, UTC)
    local = datetime.fromtimestamp(status.now, z.local)
    time_chunks: list[tuple[Text, int]] = [
        (Text.assemble((local.strftime("%H:%M:%S"), "bold"), f" {z.name}"), 100),
        (Text.assemble((utc.strftime("%H:%M:%S"), "bold"), " UTC"), 99),
        (Text(utc.strftime("%a %d %b %Y"), style="grey62"), 50),
        (Text(status.local_zone, style="dim"), 20),
    ]
    if z.is_utc:
        time_chunks = [time_chunks[1], time_chunks[2]]
    uncalibrated = status.calibrator_label.strip().lower().startswith("uncalibrated")
    time_chunks.append((Text.assemble(
        ("calibrator ", "grey62"), (status.calibrator_label, "yellow" if uncalibrated else "green"),
    ), 95))
    if uncalibrated:
        time_chunks.append((Text("(conf column = raw score)", style="dim italic"), 10))
    if status.mode != "live":
        time_chunks.append((Text(f"mode {status.mode}", style="bold magenta"), 90))
    if status.started_at is not None:
        time_chunks.append((Text(f"up {format_duration(status.now - status.started_at)}", style="grey62"), 40))

    gates = Text.assemble(
        ("last gate round ", "grey62"), (f"✓{status.gates_passed}", "green"), " ",
        (f"✗{status.gates_failed}", "red"), " ",
        (f"?{status.gates_unverified}", "yellow" if status.gates_unverified else "dim"),
    )
    universe_chunks: list[tuple[Text, int]] = [
        (Text.assemble(("universe ", "grey62"), (str(status.universe_size), "bold")), 100),
        (gates, 95),
        (Text.assemble(("warming up ", "grey62"), (str(status.warming_up), "yellow" if status.warming_up else "")), 90),
        (Text.assemble(("outbox ", "grey62"), (str(status.outbox_backlog), "yellow" if status.outbox_backlog else "")),
         85),
    ]
    rpc_chunks: list[tuple[Text, int]] = [(_rpc_text(status), 100)]
    if status.stream is not None:
        rpc_chunks.append((Text.assemble(("prices ", "grey62"), (status.stream, "green" if status.stream.startswith(
            "stream") else "yellow")), 90))
    if status.queue_depths:
        queues = " · ".join(f"{k} {v}" for k, v in sorted(status.queue_depths.items()))
        rpc_chunks.append((Text.assemble(("queues ", "grey62"), queues), 30))
    signal_total = sum(status.signals_by_strategy.values())
    if status.signals_by_strategy:
        universe_chunks.append((Text.assemble(("signals ", "grey62"), (str(signal_total), "bold")), 40))

    body_lines = [_fit_chunks(time_chunks, inner), _fit_chunks(universe_chunks, inner), _fit_chunks(rpc_chunks, inner)]
    sources = _sources_line(status.sources, inner) if compact else _sources_table(status.sources, inner)
    body = Group(*body_lines, sources)
    title = Text.assemble((" dexscan ", "bold black on cyan"))
    panel = Panel(body, title=title, title_align="left", border_style="cyan", padding=(0, 1), width=width)
    return FixedHeight(panel, status_panel_height(status, compact))


#: Fewest table rows worth showing (one signal and the "+N more" line); below this the panel shrinks.
MIN_TABLE_ROWS = 2
#: Rows per table below which the sources table gives way to a one-line summary.
_FULL_PANEL_MIN_ROWS = 4


@dataclass(frozen=True, slots=True)
class Layout:
    """How the dashboard uses a terminal: the panel's form and each table's data rows.

    It depends only on the terminal's size, the configured rows and the number of sources, never
    on the signals, so the screen does not jump when a signal arrives.
    """

    compact_panel: bool
    new_rows: int
    live_rows: int
    closed_rows: int
    rejected_rows: int = 0  # a fourth section, REJECTED, when the terminal has lines to spare

    def height(self, status: ScannerStatus) -> int:
        rejected = self.rejected_rows + 2 if self.rejected_rows else 0
        return (status_panel_height(status, self.compact_panel) + self.new_rows + self.live_rows + self.closed_rows
                + 6 + rejected)


def plan_layout(status: ScannerStatus, height: int | None, table_rows: int = DEFAULT_TABLE_ROWS) -> Layout:
    """The layout for a terminal ``height`` lines tall (None: unknown, as tall as needed).

    Degrades by priority: first every table loses rows (``table_rows`` is the most each gets),
    then the sources table becomes one summary line so the three tables keep at least
    ``MIN(4, table_rows)`` rows; every table keeps at least :data:`MIN_TABLE_ROWS`. Lines left
    over go to LIVE first (open trades), then NEW; once all three have ``table_rows``, to a fourth
    section, REJECTED (at least :data:`MIN_TABLE_ROWS` rows, at most ``table_rows``).
    """
    most = max(MIN_TABLE_ROWS, table_rows)
    if height is None:
        return Layout(False, most, most, most)
    compact = False
    per_table = (height - status_panel_height(status)) // 3 - 2
    if per_table < min(most, _FULL_PANEL_MIN_ROWS):
        compact = True
        per_table = (height - status_panel_height(status, compact=True)) // 3 - 2
    per_table = min(most, max(MIN_TABLE_ROWS, per_table))
    spare = height - status_panel_height(status, compact) - 3 * (per_table + 2)
    live = min(most, per_table + max(0, spare))
    spare -= live - per_table
    new = min(most, per_table + max(0, spare))
    layout = Layout(compact, new, live, per_table)
    left = height - layout.height(status) - 2
    if (new, live, per_table) == (most, most, most) and left >= MIN_TABLE_ROWS:
        layout = replace(layout, rejected_rows=min(most, left))
    return layout


def render(
    status: ScannerStatus, width: int, table_rows: int = DEFAULT_TABLE_ROWS, height: int | None = None,
    show_rejected: bool = False, key_hints: bool = False,
) -> RenderableType:
    """The whole dashboard for ``status`` at ``width`` columns (and ``height`` lines, if known).

    Height is ``plan_layout(status, height, table_rows).height(status)`` whatever the signals are:
    without a ``height``, ``status_panel_height(status) + 3 * (table_rows + 2)``. REJECTED is the
    fourth section when the layout has room for it; otherwise ``show_rejected`` puts it in CLOSED's
    place (the ``r`` key; ``key_hints`` names the key in that section's title).
    """
    layout = plan_layout(status, height, table_rows)
    last: list[RenderableType]
    if layout.rejected_rows:
        last = [closed_signals_table(status, width, layout.closed_rows),
                rejected_table(status, width, layout.rejected_rows)]
    elif show_rejected:
        last = [rejected_table(status, width, layout.closed_rows, "r: closed" if key_hints else "")]
    else:
        last = [closed_signals_table(status, width, layout.closed_rows, "r: rejected" if key_hints else "")]
    return Group(
        status_panel(status, width, layout.compact_panel),
        new_signals_table(status, width, layout.new_rows),
        live_signals_table(status, width, layout.live_rows),
        *last,
    )


def dashboard_height(status: ScannerStatus, table_rows: int = DEFAULT_TABLE_ROWS, height: int | None = None) -> int:
    return plan_layout(status, height, table_rows).height(status)


# ---------------------------------------------------------------------------------------------
# The live shell
# ---------------------------------------------------------------------------------------------


class Dashboard:
    """Shows :func:`render` of the latest status full-screen until ``stop`` is set.

    Rendering happens on the event loop (not rich's refresh thread), so ``status_provider`` may read
    engine state without locks. A provider that raises leaves the last good frame on screen (the
    error goes to the log file) rather than tearing the terminal.
    """

    def __init__(
        self,
        status_provider: Callable[[], ScannerStatus],
        *,
        refresh_per_s: float = 2.0,
        table_rows: int = DEFAULT_TABLE_ROWS,
        console: Console | None = None,
        screen: bool = True,
    ) -> None:
        if refresh_per_s <= 0:
            raise ValueError("refresh_per_s must be > 0 (scan.dashboard_refresh_per_s)")
        self.status_provider = status_provider
        self.refresh_per_s = refresh_per_s
        self.table_rows = table_rows
        self.console = console or Console()
        self.screen = screen
        self.show_rejected = False  # REJECTED in CLOSED's place (the ``r`` key)
        self.reads_keys = False
        self._last: RenderableType = Text("starting…")

    @classmethod
    def from_settings(
        cls, settings: Settings, status_provider: Callable[[], ScannerStatus], console: Console | None = None
    ) -> Dashboard:
        """Refresh rate and table height from ``scan.dashboard_refresh_per_s`` and ``scan.table_rows``."""
        return cls(status_provider, refresh_per_s=settings.scan.dashboard_refresh_per_s,
                   table_rows=settings.scan.table_rows, console=console)

    def frame(self) -> RenderableType:
        """The renderable for right now (or the previous one if the status cannot be read)."""
        try:
            size = self.console.size
            self._last = render(self.status_provider(), size.width, self.table_rows, size.height,
                                show_rejected=self.show_rejected, key_hints=self.reads_keys)
        except Exception:
            log.exception("dashboard: could not build the status; keeping the previous frame")
        return self._last

    def on_key(self, key: str) -> bool:
        """A key pressed while the dashboard shows; True when the frame changes (``r``: swap CLOSED
        and REJECTED)."""
        if key.lower() == "r":
            self.show_rejected = not self.show_rejected
            return True
        return False

    async def run(self, stop: asyncio.Event) -> None:
        """Redraws until ``stop`` is set (or the task is cancelled, as Ctrl-C does). Leaving the
        alternate screen would leave the terminal as it was before the run, so the last frame is
        then printed on the normal screen: what the scanner showed when it stopped stays readable."""
        interval = 1.0 / self.refresh_per_s
        # Frames are for a person: ``refresh_per_s`` per *real* second. On the demo's virtual-time
        # loop (dexscan.vtime) the loop's seconds are simulated; paced at ``speed`` they pass
        # ``speed`` times faster, unpaced as fast as the work allows (then only the real-time check
        # below keeps the frame rate).
        loop = asyncio.get_running_loop()
        step = interval * (getattr(loop, "speed", None) or 60.0) if isinstance(loop, VirtualTimeLoop) else interval
        keys = _KeyReader.open() if self.screen and self.console.is_terminal else None
        self.reads_keys = keys is not None
        try:
            with Live(
                self.frame(), console=self.console, screen=self.screen, auto_refresh=False, transient=False,
                redirect_stdout=True, redirect_stderr=True,
            ) as live:
                if keys is not None:
                    def pressed() -> None:
                        if any([self.on_key(k) for k in keys.read()]):
                            live.update(self.frame(), refresh=True)

                    loop.add_reader(keys.fd, pressed)
                drawn = time.monotonic()
                while not stop.is_set():
                    if time.monotonic() - drawn >= interval * 0.9:
                        live.update(self.frame(), refresh=True)
                        drawn = time.monotonic()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=step)
        finally:
            if keys is not None:
                with contextlib.suppress(Exception):
                    loop.remove_reader(keys.fd)
                keys.close()
                self.reads_keys = False
            if self.screen:
                try:
                    self.console.print(self._last)
                except Exception:
                    log.exception("dashboard: could not print the last frame")


class _KeyReader:
    """Single key presses from a terminal on stdin (cbreak mode: no Enter needed, Ctrl-C still
    interrupts), restored as it was on :meth:`close`. None from :meth:`open` without a terminal."""

    def __init__(self, fd: int, saved: Any) -> None:
        self.fd = fd
        self._saved = saved

    @classmethod
    def open(cls) -> _KeyReader | None:
        try:
            import termios
            import tty

            fd = sys.stdin.fileno()
            if not os.isatty(fd):
                return None
            saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        except (ImportError, OSError, ValueError, AttributeError):  # no terminal, or not a POSIX one
            return None
        return cls(fd, saved)

    def read(self) -> str:
        try:
            return os.read(self.fd, 64).decode(errors="ignore")
        except OSError:
            return ""

    def close(self) -> None:
        import termios

        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
