"""Streamed trades into the market books (Detector.on_trade, trade_bars.TradeBook): exact values.

A token warmed up on twenty 100-USD 5m bars at price 1.0 then trades on chain: its 5m bar's volume
is the exact sum of its trades, its 1m bars and trade flow (count, buy/sell split, distinct signers)
follow every trade, and ignition is judged at each trade on the last five minutes of trade volume.
"""

from __future__ import annotations

import pytest

from dexscan.config import Settings, load_settings
from dexscan.detector import Detector
from dexscan.domain import Candle, Timeframe
from dexscan.market import LiveBar
from dexscan.trade_bars import FlowBar, TradeBook

T0 = 1_700_006_400  # a 4H boundary
MINT = "Mint1111111111111111111111111111111111111111"


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(env={})


def warm(settings: Settings) -> Detector:
    det = Detector(settings)
    bars = [Candle(T0 - (20 - i) * 300, 1.0, 1.0, 1.0, 1.0, 100.0) for i in range(20)]
    det.bootstrap(MINT, Timeframe.M5, bars, symbol="TOK", pool="Pool", as_of=T0)
    assert det.warming_up(MINT) == 0
    return det


def test_trades_build_exact_bars_flow_and_fire_ignition_at_the_trade(settings: Settings) -> None:
    det = warm(settings)
    assert det.on_trade(MINT, T0 + 10, 1.0, 100.0, "buy", "A") == []
    assert det.on_trade(MINT, T0 + 20, 1.01, 150.0, "sell", "B") == []
    (sig,) = det.on_trade(MINT, T0 + 70, 1.02, 200.0, "buy", "A")  # +2.00% on 450 USD > 3 x 100
    assert (sig.strategy, sig.ts, sig.price, sig.candle_ts, sig.volume_ratio) == ("ignition", T0 + 70, 1.02, T0, 4.5)
    assert [(r.name, r.value) for r in sig.reasons] == [("rise_vs_4h_open", (1.02 / 1.0 - 1) * 100),
                                                        ("volume_5m_vs_sma20", 4.5)]
    # the next bar's first trade completes bar T0 (450 USD, 4.5x its SMA: a volume surge too)
    assert [s.strategy for s in det.on_trade(MINT, T0 + 310, 1.03, 50.0, "sell", "C")] == ["volume_surge"]
    m = det.market(MINT)
    assert m is not None and m.trades is not None
    assert m.last5 == Candle(T0, 1.0, 1.02, 1.0, 1.02, 450.0)
    assert m.trades.rolling_volume() == 400.0  # T0+20 .. T0+310: the first trade left the 5-minute window
    det.advance(MINT, T0 + 600)
    assert m.last5 == Candle(T0 + 300, 1.02, 1.03, 1.02, 1.03, 50.0)
    assert list(m.trades.m1.bars) == [
        Candle(T0, 1.0, 1.01, 1.0, 1.01, 250.0), Candle(T0 + 60, 1.01, 1.02, 1.01, 1.02, 200.0),
        Candle(T0 + 120, 1.02, 1.02, 1.02, 1.02, 0.0), Candle(T0 + 180, 1.02, 1.02, 1.02, 1.02, 0.0),
        Candle(T0 + 240, 1.02, 1.02, 1.02, 1.02, 0.0), Candle(T0 + 300, 1.02, 1.03, 1.02, 1.03, 50.0)]
    assert list(m.trades.flow1) == [FlowBar(T0, 60, 2, 1, 1, 100.0, 150.0, 2),
                                    FlowBar(T0 + 60, 60, 1, 1, 0, 200.0, 0.0, 1),
                                    FlowBar(T0 + 300, 60, 1, 0, 1, 0.0, 50.0, 1)]
    assert list(m.trades.flow5) == [FlowBar(T0, 300, 3, 2, 1, 300.0, 150.0, 2),
                                    FlowBar(T0 + 300, 300, 1, 0, 1, 0.0, 50.0, 1)]


def test_ignition_volume_is_strict_on_the_exact_trade_volume(settings: Settings) -> None:
    det = warm(settings)
    assert det.on_trade(MINT, T0 + 5, 1.02, 300.0, "buy", "A") == []  # exactly 3.00 x: no
    (sig,) = det.on_trade(MINT, T0 + 6, 1.02, 1.5, "buy", "B")
    assert (sig.ts, sig.volume_ratio) == (T0 + 6, 3.015)
    assert det.on_trade(MINT, T0 + 7, 1.05, 500.0, "buy", "C") == []  # once per 4H candle


def test_late_and_bad_trades_are_counted_not_judged(settings: Settings) -> None:
    det = warm(settings)
    assert det.on_trade(MINT, T0 - 1, 1.5, 10_000.0, "buy", "A") == []  # inside the last completed bar
    assert det.on_trade(MINT, T0 + 1, float("nan"), 1.0, "buy", "A") == []
    assert det.on_trade(MINT, T0 + 1, 1.0, -1.0, "buy", "A") == []
    det.on_trade(MINT, T0 + 400, 1.0, 1.0, "buy", "A")
    assert det.on_trade(MINT, T0 + 299, 1.0, 1.0, "buy", "A") == []  # its 5m bar completed
    assert (det.late_trades, det.rejected_trades) == (2, 2)
    m = det.market(MINT)
    assert m is not None and m.last5 == Candle(T0, 1.0, 1.0, 1.0, 1.0, 0.0)  # no trade in it: empty


def test_rolling_volume_takes_out_of_order_seconds_and_drops_what_is_too_old() -> None:
    book = TradeBook()
    book.add(T0 + 100, 1.0, 10.0, "buy", "A")
    book.add(T0 + 120, 1.0, 20.0, "buy", "A")
    book.add(T0 + 110, 1.0, 5.0, "sell", "B")  # a slot later, a block time earlier: its minute is closed (late)
    book.add(T0 + 120, 1.0, 1.0, "sell", "B")
    assert [tuple(c) for c in book.window] == [(T0 + 100, 10.0), (T0 + 110, 5.0), (T0 + 120, 21.0)]
    book.add(T0 + 405, 1.0, 2.0, "buy", "C")  # T0+100 falls out (window is (105, 405])
    book.add(T0 + 100, 1.0, 7.0, "buy", "C")  # older than the window and than the forming minute: late
    assert (book.rolling_volume(), book.late) == (28.0, 2)
    assert list(book.flow1) == [FlowBar(T0 + 60, 60, 1, 1, 0, 10.0, 0.0, 1),
                                FlowBar(T0 + 120, 60, 2, 1, 1, 20.0, 1.0, 2)]


def test_a_half_streamed_half_polled_bar_keeps_the_larger_volume() -> None:
    bar = LiveBar(T0, 1.0)
    bar.add_trade(T0 + 10, 1.1, 40.0)
    bar.add_trade(T0 + 5, 0.9, 10.0)  # older: low moves, the close does not
    assert bar.finish() == Candle(T0, 1.0, 1.1, 0.9, 1.1, 50.0)
    bar.update(T0 + 200, 1.05, 80.0)  # the stream fell over; a poll's m5 reading covers more
    assert bar.finish() == Candle(T0, 1.0, 1.1, 0.9, 1.05, 80.0)
