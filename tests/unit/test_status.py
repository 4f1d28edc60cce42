"""Status rows show the ladder's own rules: the stop in force is where the tracker exits."""

from __future__ import annotations

import pytest

from dexscan.config import load_settings
from dexscan.domain import Candle, Levels, Signal
from dexscan.ladder import LadderTracker
from dexscan.status import LiveRow, stop_in_force

T = 1_750_003_200
LEVELS = Levels(2.0, 1.8, 2.3, 2.6, 3.0, 0.2, "4h", "atr")
SIGNAL = Signal(mint="So11111111111111111111111111111111111111112", strategy="ignition", layer="ignition",
                candle_ts=T, ts=T, price=2.0, reasons=(), symbol="AAA", levels=LEVELS)


@pytest.mark.parametrize(("breakeven_after_tp1", "stop", "exit"), [(True, 2.0, ("breakeven", 0.0)),
                                                                    (False, 1.8, ("sl", -1.0))])
def test_after_tp1_the_live_row_shows_the_stop_the_ladder_setting_gives_and_the_tracker_exits_there(
        breakeven_after_tp1: bool, stop: float, exit: tuple[str, float]) -> None:
    settings = load_settings(env={}).with_overrides({"ladder.breakeven_after_tp1": breakeven_after_tp1})
    tracker = LadderTracker.from_settings(LEVELS, T, settings.ladder, bar_s=300)
    tracker.update(Candle(T, 2.0, 2.35, 1.95, 2.31, 1e3))  # TP1 (2.3) reached
    row = LiveRow.from_signal(SIGNAL, tracker.outcome, T + 400, price=2.31, signal_id=7,
                              breakeven_after_tp1=settings.ladder.breakeven_after_tp1)
    assert (row.hits, row.stop, row.entry, row.price) == (("tp1",), stop, 2.0, 2.31)
    assert stop_in_force(LEVELS, tracker.outcome.hits, settings.ladder.breakeven_after_tp1) == stop
    # a dip to 1% above the stop shown keeps the trade open; the next one down to it closes it there
    assert tracker.update(Candle(T + 300, 2.31, 2.31, stop * 1.01, 2.1, 1e3)).result == "open"
    done = tracker.update(Candle(T + 600, 2.1, 2.1, stop, stop, 1e3))
    assert (done.result, done.realized_r, done.last_price, done.closed_at) == (*exit, stop, T + 600)


def test_before_tp1_the_stop_is_the_sl_whatever_the_setting() -> None:
    assert stop_in_force(LEVELS, {}, True) == stop_in_force(LEVELS, {}, False) == 1.8
    assert stop_in_force(None, {"tp1": T}, True) is None
