"""The dashboard never jumps: exact heights whatever the signals, readable prices, honest colours."""

from __future__ import annotations

import asyncio
import io

import pytest
from rich.console import Console, RenderableType
from rich.style import Style

from dexscan.domain import Confidence, Levels, Outcome, OutcomeResult, Reason, Signal
from dexscan.fmt import fmt_duration as format_duration
from dexscan.fmt import fmt_pct as format_pct
from dexscan.fmt import fmt_price_cell as format_price
from dexscan.fmt import fmt_r as format_r
from dexscan.fmt import fmt_usd as format_usd
from dexscan.status import (
    BudgetUse,
    ClosedRow,
    LiveRow,
    RejectedRow,
    RpcEndpointStatus,
    ScannerStatus,
    SignalRow,
    SourceStatus,
    open_r,
    shown_budget,
    stop_in_force,
)
from dexscan.ui.cells import short_mint, strategy_label, token_label
from dexscan.ui.dashboard import Dashboard, Layout, dashboard_height, plan_layout, render
from dexscan.ui.layout import fit_columns
from dexscan.ui.panel import status_panel
from dexscan.ui.tables import NEW_COLUMNS, closed_signals_table, live_signals_table, new_signals_table

NOW = 1_773_479_525  # 2026-03-14 09:12:05 UTC = 14:42:05 IST
ROWS = 8
BONK_MINT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
PUMP_MINT = "9Yq4bGxkU1mDkFNaCvW7rT3ZpLeHs5oJtAwe8QiRpump"


def _signal(i: int, price: float = 0.000001234, strategy: str = "ignition", symbol: str = "BONK") -> Signal:
    risk = price * 0.1
    levels = Levels(price, price - risk, price + 1.5 * risk, price + 3 * risk, price + 5 * risk,
                    risk / 1.5, "4h", "atr")
    return Signal(
        mint=PUMP_MINT if i % 2 else BONK_MINT, strategy=strategy, layer="ignition", candle_ts=NOW - NOW % 14400,
        ts=NOW - 60 * (i + 1), price=price, reasons=(Reason("rise", 2.4, ">=", 2.0, "%"),), symbol=symbol,
        rise_pct=2.4 if i % 3 else -0.5, volume_ratio=3.8, levels=levels,
        confidence=Confidence(0.61, 0.72 if i % 2 else None, "v3" if i % 2 else None), liquidity_usd=1_840_000,
    )


RUG_REASON = "mint_authority fail: mint authority is set (Auth111…): supply can be inflated"


def _status(n: int, zone: str = "Asia/Kolkata") -> ScannerStatus:
    new, live, closed = [], [], []
    rejected = [RejectedRow(NOW - 120 * i, f"{i:02d}" + BONK_MINT[2:], "RUG" if i % 2 else "", RUG_REASON,
                            left=i % 3 == 0) for i in range(n)]
    for i in range(n):
        sig = _signal(i)
        new.append(SignalRow.from_signal(sig, NOW, i))
        assert sig.levels is not None
        live.append(LiveRow.from_signal(sig, Outcome("open", 0.0, {}, None, None), NOW, sig.levels.entry * 1.05))
        result: OutcomeResult = ("sl", "tp1", "breakeven", "expired")[i % 4]
        hits = {"sl": {"sl": sig.ts + 600}, "tp1": {"tp1": sig.ts + 300}, "breakeven": {"tp1": sig.ts + 300,
                "breakeven": sig.ts + 900}, "expired": {}}[result]
        r = {"sl": -1.0, "tp1": 1.5, "breakeven": 0.0, "expired": 0.2}[result]
        closed.append(ClosedRow.from_outcome(sig, Outcome(result, r, hits, sig.ts + 1200, sig.price, 1.6)))
    return ScannerStatus(
        now=NOW, local_zone=zone, universe_size=143, gates_passed=143, gates_failed=402, gates_unverified=3,
        warming_up=11, calibrator_label="v3 · n=812 · ECE 0.031",
        sources=[
            SourceStatus("jupiter", True, "ok", 182.0, 12, 0, 0, 19, 30, 60),
            SourceStatus("dexscreener", True, "ok", 96.0, 8911, 0, 2, 211, 300, 60),
            SourceStatus("geckoterminal", False, "circuit open", None, 1877, 3, 1, 24, 25, 60),
        ],
        rpc=[RpcEndpointStatus("https://api.mainnet-beta.solana.com", True, "closed", 141.0, 2, 2120, 17)],
        active_rpc="https://api.mainnet-beta.solana.com", outbox_backlog=2,
        new_signals=new, live_signals=live, closed_signals=closed, rejected=rejected,
    )


def _console(width: int) -> Console:
    return Console(width=width, record=True, force_terminal=True, color_system="truecolor", file=io.StringIO(),
                   height=200)


def _lines(renderable: RenderableType, width: int) -> list[str]:
    console = _console(width)
    console.print(renderable)
    return console.export_text(styles=False).splitlines()


def _style_of(renderable: RenderableType, width: int, text: str) -> Style:
    console = _console(width)
    for seg in console.render(renderable):
        if seg.text.strip() == text:
            assert seg.style is not None
            return seg.style
    raise AssertionError(f"{text!r} not rendered")


# -- fixed heights ----------------------------------------------------------------------------


@pytest.mark.parametrize("width", [80, 160])
def test_whole_dashboard_and_every_table_keep_their_height_whatever_the_signals(width: int) -> None:
    totals, sections = set(), set()
    for n in (0, 3, 50):
        status = _status(n)
        lines = _lines(render(status, width, ROWS), width)
        totals.add(len(lines))
        assert all(len(line) <= width for line in lines)
        panel = len(_lines(status_panel(status, width), width))
        tables = tuple(len(_lines(f(status, width, ROWS), width))
                       for f in (new_signals_table, live_signals_table, closed_signals_table))
        sections.add((panel, *tables))
    # 2 borders + 3 info lines + sources header + 3 sources = 9; each table: title + header + 8 rows
    assert sections == {(9, 10, 10, 10)}
    assert totals == {9 + 3 * 10} == {dashboard_height(_status(0), ROWS)}


def test_heights_are_the_same_at_80_and_160_columns() -> None:
    status = _status(3)
    assert len(_lines(render(status, 80, ROWS), 80)) == len(_lines(render(status, 160, ROWS), 160)) == 39


def test_more_signals_than_rows_ends_with_a_plus_n_more_line() -> None:
    lines = _lines(new_signals_table(_status(50), 160, ROWS), 160)
    assert lines[0].startswith(" NEW SIGNALS  50 ")
    assert lines[-1].rstrip() == "+43 more"
    assert sum(1 for line in lines[2:-1] if "BONK" in line) == 7


def test_fewer_signals_are_padded_with_blank_rows() -> None:
    lines = _lines(live_signals_table(_status(3), 80, ROWS), 80)
    assert len(lines) == 10
    assert [bool(line.strip()) for line in lines] == [True, True, True, True, True] + [False] * 5


def test_empty_tables_say_what_they_wait_for() -> None:
    lines = _lines(new_signals_table(_status(0), 80, ROWS), 80)
    assert lines[0].startswith(" NEW SIGNALS  0   waiting for the first ignition")


# -- terminal size: everything on screen down to 80×24 ---------------------------------------------


def test_80x24_shows_all_three_tables_with_plus_n_more_and_one_line_of_sources() -> None:
    status = _status(7)
    lines = _lines(render(status, 80, ROWS, height=24), 80)
    assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
    assert lines[1].startswith("│ 14:42:05 IST   09:12:05 UTC   calibrator v3 · n=812 · ECE 0.031")
    assert lines[4] == ("│ sources 2/3 ok · jupiter 182ms 19/30/60s · geckoterminal ● circuit open      │")
    assert lines[5].startswith("╰")
    titles = {i: line.split("  ")[0].strip() for i, line in enumerate(lines) if line.startswith(" ") and "──" in line}
    assert titles == {6: "NEW SIGNALS", 12: "LIVE", 18: "CLOSED"}
    for title_at in (6, 12, 18):
        assert lines[title_at].split()[-2] == "7"
        assert [ln.split()[1] for ln in lines[title_at + 2:title_at + 5]] == ["BONK"] * 3
        assert lines[title_at + 5].rstrip() == "+4 more"
    assert lines[14].split()[:7] == ["14:41", "BONK", "7xKX…gAsU", "ignition", "0.0₅1234", "0.0₅1296", "+0.50R"]
    assert lines[20].split()[:7] == ["15:01", "BONK", "7xKX…gAsU", "ignition", "SL", "-1.00R", "20m"]


@pytest.mark.parametrize(("width", "height", "sections"), [
    (120, 40, ["NEW SIGNALS", "LIVE", "CLOSED"]),
    (160, 50, ["NEW SIGNALS", "LIVE", "CLOSED", "REJECTED"]),  # 11 lines to spare: the fourth section
])
def test_larger_terminals_show_the_configured_rows_and_the_full_sources_table(
    width: int, height: int, sections: list[str],
) -> None:
    status = _status(12)
    lines = _lines(render(status, width, ROWS, height=height), width)
    assert len(lines) == 9 + 10 * len(sections) <= height and all(len(line) <= width for line in lines)
    assert lines[4].split("│")[1].split()[:4] == ["source", "state", "latency", "requests"]
    assert lines[7].split("│")[1].split()[:3] == ["geckoterminal", "●", "circuit"]
    starts = [i for i, line in enumerate(lines) if line.startswith(" ") and "──" in line]
    assert [lines[i].split("  ")[0].strip() for i in starts] == sections
    assert starts == [9, 19, 29, 39][:len(sections)]
    for i in starts:
        assert sum(1 for ln in lines[i + 2:i + 10] if "…" in ln) == 7
        assert lines[i + 9].rstrip() == "+5 more"


@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 40)])
def test_rejected_view_takes_closeds_place_where_there_is_no_room_for_it(width: int, height: int) -> None:
    """Issue 16: "why isn't X in my universe" — the latest gate rejections with their reasons, newest
    first; the ``r`` key swaps them with CLOSED when the terminal has no lines for a fourth section."""
    status = _status(12)
    closed = _lines(render(status, width, ROWS, height=height, key_hints=True), width)
    lines = _lines(render(status, width, ROWS, height=height, show_rejected=True, key_hints=True), width)
    assert len(lines) == len(closed) == min(height, 39) and all(len(line) <= width for line in lines)
    starts = [i for i, line in enumerate(lines) if line.startswith(" ") and "──" in line]
    assert [lines[i].split("  ")[0].strip() for i in starts] == ["NEW SIGNALS", "LIVE", "REJECTED"]
    assert lines[:starts[-1]] == closed[:starts[-1]]  # only the last section changes
    at = starts[-1]
    assert lines[at].split()[:4] == ["REJECTED", "12", "r:", "closed"]
    assert closed[at].split()[:4] == ["CLOSED", "12", "r:", "rejected"]
    assert lines[at + 1].split()[:3] == ["IST", "UTC", "token"] and "why the gates keep it out" in lines[at + 1]
    rows = 4 if height == 24 else 8  # 80x24: the compact panel and 4 rows per section
    assert lines[at + 2].split()[:4] == ["14:42", "09:12", "00KX…gAsU", "left"]
    assert lines[at + 3].split()[:5] == ["14:40", "09:10", "RUG", "01KX…gAsU", "rejected"]
    if width >= 120:
        assert lines[at + 2].endswith(RUG_REASON + " " * (width - len(lines[at + 2].rstrip())))
    assert lines[at + 1 + rows].rstrip() == f"+{12 - (rows - 1)} more"


def test_r_key_swaps_closed_and_rejected_in_the_frame() -> None:
    console = Console(width=80, height=24, record=True, force_terminal=True, file=io.StringIO())
    dash = Dashboard(lambda: _status(7), console=console)
    assert _lines(dash.frame(), 80)[18].startswith(" CLOSED  7 ")
    assert dash.on_key("x") is False and dash.on_key("r") is True
    assert _lines(dash.frame(), 80)[18].startswith(" REJECTED  7 ")
    assert dash.on_key("R") is True
    assert _lines(dash.frame(), 80)[18].startswith(" CLOSED  7 ")


def test_empty_rejected_view_says_so() -> None:
    lines = _lines(render(_status(0), 160, ROWS, height=50), 160)
    assert lines[39].startswith(" REJECTED  0   no token rejected by the gates yet ")


def test_layout_depends_on_the_terminal_not_on_the_signals() -> None:
    # 3 sources: the full panel is 9 lines, the compact one 6
    assert plan_layout(_status(0), None, 8) == Layout(False, 8, 8, 8)
    assert plan_layout(_status(0), 50, 8) == Layout(False, 8, 8, 8, 8)  # 11 spare lines: REJECTED
    assert plan_layout(_status(0), 43, 8) == Layout(False, 8, 8, 8, 2)
    assert plan_layout(_status(0), 42, 8) == Layout(False, 8, 8, 8, 0)  # 3 spare lines: too few for it
    assert plan_layout(_status(0), 33, 8) == Layout(False, 6, 6, 6)  # 9 + 3 × 8
    assert plan_layout(_status(0), 34, 8) == Layout(False, 6, 7, 6)  # the spare line goes to LIVE
    assert plan_layout(_status(0), 27, 8) == Layout(False, 4, 4, 4)
    assert plan_layout(_status(0), 26, 8) == Layout(True, 4, 6, 4)  # 3 rows each is too few: sources in one line
    assert plan_layout(_status(0), 24, 8) == Layout(True, 4, 4, 4)
    assert plan_layout(_status(0), 25, 8) == Layout(True, 4, 5, 4)
    assert plan_layout(_status(0), 10, 8) == Layout(True, 2, 2, 2)  # never fewer than 2 rows: cropped below
    for height, lines in ((24, 24), (30, 30), (40, 39), (50, 49)):
        assert {len(_lines(render(_status(n), 80, ROWS, height), 80)) for n in (0, 3, 50)} == {
            lines} == {dashboard_height(_status(0), ROWS, height)}


def test_dashboard_frame_fits_the_console_height() -> None:
    console = Console(width=80, height=24, record=True, force_terminal=True, file=io.StringIO())
    lines = _lines(Dashboard(lambda: _status(7), console=console).frame(), 80)
    assert len(lines) == 24
    assert lines[-1].rstrip() == "+4 more" and lines[18].startswith(" CLOSED  7 ")


def test_rpc_says_probing_before_the_first_call_not_none_healthy() -> None:
    fresh = [RpcEndpointStatus(f"https://rpc{i}.example", True, "closed", None, None, 0, 0) for i in range(3)]
    asked = [RpcEndpointStatus("https://rpc0.example", True, "closed", 120.0, 0, 4, 0), *fresh[1:]]
    down = [RpcEndpointStatus(e.name, False, "open", None, None, 5, 5) for e in fresh]
    texts = [_lines(status_panel(ScannerStatus(now=NOW, rpc=rpc), 80), 80)[3] for rpc in (fresh, asked, down)]
    assert "rpc ● probing (3/3 up)" in texts[0]
    assert "rpc ● no answer yet (3/3 up)" in texts[1]
    assert "rpc ● none healthy (0/3 up)" in texts[2]


def test_the_prices_cell_says_stream_or_polling_beside_the_rpc() -> None:
    rpc = [RpcEndpointStatus("https://rpc0.example", True, "closed", 120.0, 0, 4, 0)]
    cell = "stream · 38 streamed / 4 polled · 3.2 tr/s · lag 1s · rc 0 · drop 0"
    line = _lines(status_panel(ScannerStatus(now=NOW, rpc=rpc, stream=cell), 160), 160)[3]
    assert line.split("│")[1].split() == ["rpc", "●", "no", "answer", "yet", "(1/1", "up)", "prices", *cell.split()]
    polling = "polling · 0 streamed / 42 polled · 0.0 tr/s · rc 3 · drop 0"
    assert _style_of(status_panel(ScannerStatus(now=NOW, rpc=rpc, stream=polling), 160), 160,
                     polling) == Style(color="yellow")
    assert "prices" not in _lines(status_panel(ScannerStatus(now=NOW, rpc=rpc), 160), 160)[3]


# -- columns ------------------------------------------------------------------------------------


def test_narrow_terminal_drops_reasons_tp3_tp2_liquidity_first() -> None:
    header80 = _lines(new_signals_table(_status(3), 80, ROWS), 80)[1].split()
    header160 = _lines(new_signals_table(_status(3), 160, ROWS), 160)[1].split()
    assert header80 == ["IST", "token", "strategy", "rise", "vol", "conf", "entry", "SL", "TP1"]
    assert header160 == ["IST", "UTC", "token", "strategy", "rise", "vol", "conf", "entry", "SL", "TP1", "TP2",
                         "TP3", "liq", "age", "reasons"]


def test_column_widths_do_not_depend_on_content() -> None:
    short = _lines(new_signals_table(_status(1), 160, ROWS), 160)[1]
    long_status = _status(1)
    long_row = SignalRow.from_signal(_signal(0, price=123456.7, symbol="SUPERLONGSYMBOL"), NOW)
    long = _lines(new_signals_table(ScannerStatus(now=NOW, new_signals=[long_row]), 160, ROWS), 160)[1]
    assert short == long
    assert long_status.new_signals[0].symbol == "BONK"


def test_fit_columns_fills_the_width_with_the_flexible_column() -> None:
    fitted = fit_columns(NEW_COLUMNS, 160)
    assert sum(w for _, w in fitted) + len(fitted) - 1 == 160
    assert fitted[-1][0].key == "reasons" and fitted[-1][1] == 160 - 119


def test_utc_zone_shows_one_clock_column() -> None:
    header = _lines(new_signals_table(_status(3, zone="UTC"), 160, ROWS), 160)[1].split()
    assert header[:3] == ["UTC", "token", "strategy"]


# -- cells ----------------------------------------------------------------------------------------


def test_status_panel_shows_ist_and_utc_time_for_now() -> None:
    lines = _lines(status_panel(_status(0), 80), 80)
    assert lines[1].startswith("│ 14:42:05 IST   09:12:05 UTC   calibrator v3 · n=812 · ECE 0.031")
    assert "universe 143   last gate round ✓143 ✗402 ?3   warming up 11   outbox 2" in lines[2]
    assert "rpc ● api.mainnet-beta.solana.com 141ms lag 2 (1/1 up)" in lines[3]
    assert lines[5].split("│")[1].split() == ["jupiter", "●", "ok", "182ms", "12", "0", "0", "19/30/60s"]
    assert _style_of(status_panel(_status(0), 80), 80, "● circuit open") == Style(color="red", bold=True)


def test_tiny_price_is_written_with_a_subscript_zero_count() -> None:
    lines = _lines(new_signals_table(_status(1), 80, ROWS), 80)
    assert lines[2].split() == ["14:41", "BONK", "7xKX…gAsU", "ignition", "-0.5%", "3.8×", "r0.61", "0.0₅1234",
                                "0.0₅1111", "0.0₅1419"]
    assert _style_of(new_signals_table(_status(1), 80, ROWS), 80, "-0.5%").color.name == "red"  # type: ignore[union-attr]


def test_live_row_shows_price_r_and_direction_colour() -> None:
    table = live_signals_table(_status(2), 80, ROWS)
    lines = _lines(table, 80)
    assert lines[2].split()[4:7] == ["0.0₅1234", "0.0₅1296", "+0.50R"]
    assert _style_of(table, 80, "+0.50R") == Style(color="green", bold=True)


def test_closed_outcomes_are_coloured_by_result() -> None:
    table = closed_signals_table(_status(4), 160, ROWS)
    assert _style_of(table, 160, "SL") == Style(color="red", bold=True)
    assert _style_of(table, 160, "TP1") == Style(color="green")
    assert _style_of(table, 160, "breakeven") == Style(color="yellow")
    assert _style_of(table, 160, "expired") == Style(dim=True)
    lines = _lines(table, 160)
    # newest close first: signal 0 (sl) fired at 14:41 IST, closed 20 min later
    assert lines[2].split()[:8] == ["15:01", "09:31", "BONK", "7xKX…gAsU", "ignition", "SL", "-1.00R", "20m"]


# -- formatting helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "text"),
    [
        (0.000001234, "0.0₅1234"),
        (0.00009999, "0.0₄9999"),
        (0.000099999, "0.0₃1000"),
        (0.0001872, "0.0₃1872"),
        (0.001234, "0.001234"),
        (0.01234, "0.01234"),
        (0.5, "0.5000"),
        (1.8734, "1.873"),
        (12345.6, "12,346"),
        (0.0, "0"),
        (None, "—"),
        (float("nan"), "—"),
        (1.234e-13, "0.0₁₂1234"),
    ],
)
def test_format_price(price: float | None, text: str) -> None:
    assert format_price(price) == text


def test_small_formatters() -> None:
    assert format_usd(1_840_000) == "$1.84M"
    assert format_usd(412_000) == "$412K"
    assert format_usd(850) == "$850"
    assert format_pct(2.4) == "+2.4%"
    assert format_pct(-11.04) == "-11.0%"
    assert format_pct(245.3) == "+245%"
    assert format_r(1.5) == "+1.50R"
    assert format_duration(45) == "45s"
    assert format_duration(3 * 3600 + 5 * 60) == "3h05m"
    assert format_duration(2 * 86400 + 4 * 3600) == "2d04h"
    assert short_mint(PUMP_MINT) == "9Yq4…pump"
    assert token_label("BONK", BONK_MINT) == "BONK 7xKX…gAsU"
    assert token_label("CHILLGUY", PUMP_MINT) == "CHILL… 9Yq4…pump"
    assert strategy_label("volume_surge", "strategy") == "vol surge"
    assert strategy_label("dual", "confirmation") == "dual/conf"


# -- row helpers ------------------------------------------------------------------------------------


def test_live_row_moves_the_stop_to_entry_after_tp1() -> None:
    sig = _signal(0, price=2.0)
    assert sig.levels is not None
    before = LiveRow.from_signal(sig, Outcome("open", 0.0, {}, None, 1.9), NOW)
    after = LiveRow.from_signal(sig, Outcome("open", 0.0, {"tp1": NOW - 10}, None, 2.31, 1.6), NOW, price=2.35)
    assert before.stop == pytest.approx(1.8) and before.price == 1.9 and before.r_now == pytest.approx(-0.5)
    assert after.stop == 2.0 and after.price == 2.35 and after.r_now == pytest.approx(1.75)
    assert after.hits == ("tp1",) and after.max_r == 1.6 and after.age_s == 60


def test_closed_row_duration_and_path() -> None:
    sig = _signal(0)
    outcome = Outcome("tp2", 3.0, {"tp2": sig.ts + 5400, "tp1": sig.ts + 1800}, sig.ts + 5400, 0.0000016, 3.0)
    row = ClosedRow.from_outcome(sig, outcome, signal_id=9)
    assert (row.duration_s, row.path, row.result, row.signal_id) == (5400, (("tp1", 1800), ("tp2", 5400)), "tp2", 9)
    with pytest.raises(ValueError, match="still open"):
        ClosedRow.from_outcome(sig, Outcome("open", 0.0))


def test_signal_row_without_ladder_uses_the_signal_price() -> None:
    sig = Signal(BONK_MINT, "god_candle", "strategy", NOW, NOW - 30, 0.5, (), symbol="BONK")
    row = SignalRow.from_signal(sig, NOW)
    assert (row.entry, row.sl, row.tp3, row.age_s, row.reasons) == (0.5, None, None, 30, ())


# -- the live shell -----------------------------------------------------------------------------------


def test_dashboard_takes_refresh_and_rows_from_settings() -> None:
    from dexscan.config import load_settings

    settings = load_settings().with_overrides({"scan.dashboard_refresh_per_s": 4.0, "scan.table_rows": 5})
    dash = Dashboard.from_settings(settings, lambda: _status(0), console=_console(80))
    assert (dash.refresh_per_s, dash.table_rows) == (4.0, 5)
    assert len(_lines(dash.frame(), 80)) == 9 + 4 * 7  # a 200-line console: REJECTED too


def test_dashboard_keeps_the_last_frame_when_the_status_cannot_be_read() -> None:
    calls = {"n": 0}

    def provider() -> ScannerStatus:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("engine hiccup")
        return _status(1)

    dash = Dashboard(provider, console=_console(100), table_rows=4)
    first = dash.frame()
    assert dash.frame() is first
    assert calls["n"] == 2


async def test_dashboard_run_draws_on_the_alternate_screen_until_stopped() -> None:
    out = io.StringIO()
    console = Console(file=out, width=100, height=60, force_terminal=True, color_system="truecolor")
    stop = asyncio.Event()
    frames = {"n": 0}

    def provider() -> ScannerStatus:
        frames["n"] += 1
        if frames["n"] == 2:
            stop.set()
        return _status(2)

    await Dashboard(provider, console=console, refresh_per_s=30, table_rows=4).run(stop)
    text = out.getvalue()
    assert frames["n"] == 2
    assert text.startswith("\x1b[?1049h")  # alternate screen on
    assert "\x1b[?1049l" in text  # and off again
    assert "NEW SIGNALS" in text and "14:42:05" in text
    after = text.split("\x1b[?1049l", 1)[1]  # the last frame stays on the normal screen
    assert "NEW SIGNALS" in after and "CLOSED" in after and "14:42:05" in after


async def test_dashboard_cancelled_like_ctrl_c_still_leaves_the_last_frame() -> None:
    out = io.StringIO()
    console = Console(file=out, width=100, height=60, force_terminal=True, color_system="truecolor")
    task = asyncio.create_task(Dashboard(lambda: _status(2), console=console, refresh_per_s=30).run(asyncio.Event()))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after = out.getvalue().split("\x1b[?1049l", 1)[1]
    assert "LIVE" in after and "+0.50R" in after


def test_breakeven_stop_follows_the_ladder_setting() -> None:
    sig = _signal(0, price=2.0)
    after_tp1 = Outcome("open", 0.0, {"tp1": NOW - 10}, None, 2.31, 1.6)
    assert LiveRow.from_signal(sig, after_tp1, NOW).stop == 2.0
    assert LiveRow.from_signal(sig, after_tp1, NOW, breakeven_after_tp1=False).stop == pytest.approx(1.8)
    assert stop_in_force(sig.levels, ("tp1",), breakeven_after_tp1=False) == pytest.approx(1.8)
    assert stop_in_force(None, ("tp1",)) is None
    # R now: at the given price, else at the outcome's last price (what /signals and /live show too)
    assert open_r(sig, after_tp1, 2.35) == pytest.approx(1.75)
    assert open_r(sig, after_tp1) == pytest.approx(1.55)
    assert open_r(sig, None) is None


def test_a_source_with_two_budgets_always_shows_the_scarcer_one() -> None:
    pairs, profiles = BudgetUse("pairs", 4, 300, 60.0), BudgetUse("profiles", 2, 60, 60.0)
    for budgets in ((pairs, profiles), (profiles, pairs), (BudgetUse("pairs", 290, 300, 60.0), profiles)):
        src = SourceStatus.from_budgets("dexscreener", "ok", 96.0, 10, 0, 0, budgets)
        assert (src.budget_used, src.budget_limit, src.budget_window_s) == (2, 60, 60.0)
        assert src.budgets == budgets and src.healthy
    assert shown_budget(()) is None
    empty = SourceStatus.from_budgets("birdeye", "down", None, 3, 0, 3, ())
    assert (empty.budget_used, empty.budget_limit, empty.budget_window_s, empty.healthy) == (0, 0, None, False)


def test_a_move_is_one_row_naming_every_strategy_and_a_negative_record() -> None:
    from dataclasses import replace

    from dexscan.ui.tables import move_label

    lead = _signal(0)
    joined = replace(lead, strategy="volume_surge", layer="strategy", ts=lead.ts + 120,
                     reasons=(Reason("volume_z20", 9.1, ">=", 4.0, "σ"),))
    notes = {"ignition": ("TP1 first 23% historically, no edge measured",),
             "volume_surge": ("negative record: −0.96R mean over 53 signals",)}
    row = SignalRow.from_move([(1, lead), (2, joined)], NOW, lambda s: notes[s])
    assert (row.strategies, row.signal_ids, row.negative_record) == (("ignition", "volume_surge"), (1, 2), True)
    assert move_label(row) == "⚠ign+vol"
    assert row.notes == ("ignition: TP1 first 23% historically, no edge measured",
                         "volume_surge: negative record: −0.96R mean over 53 signals")
    assert row.reasons == ("ignition: rise 2.4% >= 2%", "volume_surge: volume 9.1σ above its 20-bar mean (needs 4σ)")
    wide = _lines(new_signals_table(ScannerStatus(now=NOW, new_signals=[row]), 400, ROWS), 400)
    assert len([line for line in wide if BONK_MINT[:4] in line]) == 1  # one row for the move
    body = next(line for line in wide if BONK_MINT[:4] in line)
    assert " ⚠ign+vol " in body
    assert "ignition: TP1 first 23% historically, no edge measured; volume_surge: negative record" in body
    single = SignalRow.from_move([(1, lead)], NOW, lambda s: notes[s])
    assert move_label(single) == strategy_label("ignition", "ignition") and not single.negative_record
    assert single.notes == ("TP1 first 23% historically, no edge measured",)
