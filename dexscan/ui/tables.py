"""The dashboard's signal tables (SPEC §9): NEW, LIVE, CLOSED and REJECTED, each exactly
``table_rows + 2`` lines whatever it holds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from rich.text import Text

from dexscan.fmt import DASH, fmt_duration, fmt_pct, fmt_price_cell, fmt_r, fmt_ratio, fmt_usd
from dexscan.status import ClosedRow, LiveRow, RejectedRow, ScannerStatus, SignalRow
from dexscan.ui.cells import (
    OUTCOME_STYLES,
    Zones,
    clock_text,
    conf_cell,
    signed_style,
    strategy_label,
    styled,
    token_label,
    zones,
)
from dexscan.ui.layout import DEFAULT_TABLE_ROWS, Cells, ColumnSpec, FixedHeight, section, with_zone

#: Width of a price cell: ``0.0₅1234`` (:func:`~dexscan.fmt.fmt_price_cell`).
PRICE_WIDTH = 8


def _lead_columns(with_strategy: bool = True) -> tuple[ColumnSpec, ...]:
    """Every table starts with the time (local, then UTC) and the token; the signal tables add the strategy."""
    lead = (ColumnSpec("time", "{zone}", 5, 100), ColumnSpec("utc", "UTC", 5, 20), ColumnSpec("token", "token", 16, 99))
    return (*lead, ColumnSpec("strategy", "strategy", 10, 90)) if with_strategy else lead


def _prices(*columns: tuple[str, str, int]) -> tuple[ColumnSpec, ...]:
    """Right-aligned price columns (key, header, keep)."""
    return tuple(ColumnSpec(key, header, PRICE_WIDTH, keep, "right") for key, header, keep in columns)


NEW_COLUMNS = (
    *_lead_columns(),
    ColumnSpec("rise", "rise", 6, 80, "right"),
    ColumnSpec("vol", "vol", 5, 60, "right"),
    ColumnSpec("conf", "conf", 6, 85, "right"),
    *_prices(("entry", "entry", 95), ("sl", "SL", 94), ("tp1", "TP1", 93), ("tp2", "TP2", 45), ("tp3", "TP3", 40)),
    ColumnSpec("liq", "liq", 7, 50, "right"),
    ColumnSpec("age", "age", 5, 55, "right"),
    ColumnSpec("reasons", "reasons", 16, 10, flex=True),
)

LIVE_COLUMNS = (
    *_lead_columns(),
    *_prices(("entry", "entry", 92), ("price", "now", 97)),
    ColumnSpec("r_now", "R now", 6, 98, "right"),
    ColumnSpec("hits", "hits", 11, 96),
    *_prices(("stop", "stop", 85)),
    ColumnSpec("max_r", "max R", 6, 50, "right"),
    ColumnSpec("conf", "conf", 6, 60, "right"),
    *_prices(("tp1", "TP1", 45), ("tp2", "TP2", 40), ("tp3", "TP3", 35)),
    ColumnSpec("age", "age", 6, 65, "right"),
    ColumnSpec("reasons", "reasons", 16, 10, flex=True),
)

CLOSED_COLUMNS = (
    *_lead_columns(),
    ColumnSpec("outcome", "outcome", 9, 98),
    ColumnSpec("r", "R", 6, 97, "right"),
    ColumnSpec("took", "took", 6, 85, "right"),
    *_prices(("entry", "entry", 70), ("exit", "exit", 72)),
    ColumnSpec("max_r", "max R", 6, 60, "right"),
    ColumnSpec("conf", "conf", 6, 65, "right"),
    ColumnSpec("fired", "fired", 5, 30),
    ColumnSpec("path", "path", 16, 10, flex=True),
)

REJECTED_COLUMNS = (
    *_lead_columns(with_strategy=False),
    ColumnSpec("action", "", 8, 90),
    ColumnSpec("reason", "why the gates keep it out", 24, 98, flex=True),
)


def _lead_cells(ts: int, symbol: str, mint: str, z: Zones) -> Cells:
    """The cells of :func:`_lead_columns` but the strategy: when (local, UTC) and which token."""
    return {
        "time": styled(clock_text(ts, z.local), "bold"),
        "utc": styled(clock_text(ts, UTC), "dim"),
        "token": styled(token_label(symbol, mint), "bold cyan"),
    }


def new_signals_table(status: ScannerStatus, width: int, table_rows: int = DEFAULT_TABLE_ROWS) -> FixedHeight:
    """New signals, newest first: exactly ``table_rows + 2`` lines."""
    z = zones(status)
    rows: list[Cells] = []
    for r in sorted(status.new_signals, key=lambda r: (r.ts, r.mint), reverse=True):
        rows.append(_new_cells(r, z))
    return section("NEW SIGNALS", len(status.new_signals), with_zone(NEW_COLUMNS, z.name, not z.is_utc), rows,
                    width, table_rows, "  waiting for the first ignition")


_SHORT_STRATEGY = {"ignition": "ign", "volume_surge": "vol", "confirmation": "conf", "god_candle": "god"}


def move_label(r: SignalRow) -> str:
    """The row's strategies: one (``ignition``), or every strategy of the move in short (``ign+vol``;
    the reasons column names them in full), with ``⚠`` when one of them has a negative measured record."""
    names = r.strategies or (r.strategy,)
    label = strategy_label(r.strategy, r.layer) if len(names) == 1 else "+".join(
        _SHORT_STRATEGY.get(n, n[:4]) for n in names)
    return f"⚠{label}" if r.negative_record else label


def _new_cells(r: SignalRow, z: Zones) -> Cells:
    return {
        **_lead_cells(r.ts, r.symbol, r.mint, z),
        "strategy": styled(move_label(r), "bold red" if r.negative_record else "medium_purple1"),
        "rise": styled(fmt_pct(r.rise_pct, DASH), signed_style(r.rise_pct)),
        "vol": styled(fmt_ratio(r.volume_ratio, DASH)),
        "conf": conf_cell(r.confidence),
        "entry": styled(fmt_price_cell(r.entry), "bold"),
        "sl": styled(fmt_price_cell(r.sl), "red"),
        "tp1": styled(fmt_price_cell(r.tp1), "green"),
        "tp2": styled(fmt_price_cell(r.tp2), "green"),
        "tp3": styled(fmt_price_cell(r.tp3), "green"),
        "liq": styled(fmt_usd(r.liquidity_usd, DASH)),
        "age": styled(fmt_duration(r.age_s, DASH), "dim"),
        "reasons": styled("; ".join((*r.notes, *r.reasons)), "dim"),
    }


def live_signals_table(status: ScannerStatus, width: int, table_rows: int = DEFAULT_TABLE_ROWS) -> FixedHeight:
    """Tracked signals, newest first, with current price, R now and the levels hit so far."""
    z = zones(status)
    rows = [_live_cells(r, z) for r in sorted(status.live_signals, key=lambda r: (r.ts, r.mint), reverse=True)]
    return section("LIVE", len(status.live_signals), with_zone(LIVE_COLUMNS, z.name, not z.is_utc), rows,
                    width, table_rows, "  no open trades")


def _live_cells(r: LiveRow, z: Zones) -> Cells:
    up = None if r.price is None else r.price - r.entry
    hits = " ".join(h.upper() for h in r.hits)
    return {
        **_lead_cells(r.ts, r.symbol, r.mint, z),
        "strategy": styled(strategy_label(r.strategy, r.layer), "medium_purple1"),
        "entry": styled(fmt_price_cell(r.entry)),
        "price": styled(fmt_price_cell(r.price), signed_style(up)),
        "r_now": styled(fmt_r(r.r_now, DASH), "bold " + signed_style(r.r_now) if r.r_now else ""),
        "hits": styled(hits, "green") if hits else styled(DASH, "dim"),
        "stop": styled(fmt_price_cell(r.stop), "yellow" if r.stop is not None and r.stop >= r.entry else "red"),
        "max_r": styled(fmt_r(r.max_r, DASH), "dim"),
        "conf": conf_cell(r.confidence),
        "tp1": styled(fmt_price_cell(r.tp1), "green" if "tp1" in r.hits else "dim"),
        "tp2": styled(fmt_price_cell(r.tp2), "green" if "tp2" in r.hits else "dim"),
        "tp3": styled(fmt_price_cell(r.tp3), "green" if "tp3" in r.hits else "dim"),
        "age": styled(fmt_duration(r.age_s, DASH), "dim"),
        "reasons": styled("; ".join(r.reasons), "dim"),
    }


def closed_signals_table(status: ScannerStatus, width: int, table_rows: int = DEFAULT_TABLE_ROWS,
                         key_hint: str = "") -> FixedHeight:
    """Finished trades, most recently closed first, with outcome, realized R and duration."""
    z = zones(status)
    rows = [
        _closed_cells(r, z)
        for r in sorted(status.closed_signals, key=lambda r: (r.closed_at, r.ts, r.mint), reverse=True)
    ]
    return section("CLOSED", len(status.closed_signals), with_zone(CLOSED_COLUMNS, z.name, not z.is_utc), rows,
                    width, table_rows, "  nothing closed yet", key_hint)


def rejected_table(status: ScannerStatus, width: int, table_rows: int = DEFAULT_TABLE_ROWS,
                   key_hint: str = "") -> FixedHeight:
    """The latest gate rejections, newest first, one per token, each with the gate and its reason."""
    z = zones(status)
    rows = [_rejected_cells(r, z) for r in sorted(status.rejected, key=lambda r: (r.at, r.mint), reverse=True)]
    return section("REJECTED", len(status.rejected), with_zone(REJECTED_COLUMNS, z.name, not z.is_utc), rows,
                    width, table_rows, "  no token rejected by the gates yet", key_hint)


def _rejected_cells(r: RejectedRow, z: Zones) -> Cells:
    return {
        **_lead_cells(r.at, r.symbol, r.mint, z),
        "action": styled("left" if r.left else "rejected", "yellow" if r.left else "red"),
        "reason": styled(r.reason),
    }


def _closed_cells(r: ClosedRow, z: Zones) -> Cells:
    return {
        **_lead_cells(r.closed_at, r.symbol, r.mint, z),
        "fired": styled(clock_text(r.ts, z.local), "dim"),
        "strategy": styled(strategy_label(r.strategy, r.layer), "medium_purple1"),
        "outcome": styled(r.result.upper() if r.result.startswith("tp") or r.result == "sl" else r.result,
                           OUTCOME_STYLES.get(r.result, "")),
        "r": styled(fmt_r(r.realized_r, DASH), signed_style(r.realized_r)),
        "took": styled(fmt_duration(r.duration_s, DASH)),
        "entry": styled(fmt_price_cell(r.entry)),
        "exit": styled(fmt_price_cell(r.exit_price)),
        "max_r": styled(fmt_r(r.max_r, DASH), "dim"),
        "conf": conf_cell(r.confidence),
        "path": _path_text(r.path),
    }


def _path_text(path: Sequence[tuple[str, int]]) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    for i, (level, after_s) in enumerate(path):
        if i:
            out.append(" → ", style="dim")
        out.append(level.upper() if level.startswith("tp") or level == "sl" else level, OUTCOME_STYLES.get(level, ""))
        out.append(f" +{fmt_duration(after_s, DASH)}", style="dim")
    return out
