"""ATR ladder: Wilder ATR, levels to the cent, flags, and the outcome rules on a bar path (SPEC §6)."""

from __future__ import annotations

import pandas as pd
import pytest

from dexscan.config import LadderSettings, load_settings
from dexscan.domain import Candle, Levels
from dexscan.ladder import LadderTracker, ladder_atr, plan_levels, tp1_first, track_outcome, true_ranges, wilder_atr

H = 14_400
T = 1_750_003_200


@pytest.fixture(scope="module")
def ladder() -> LadderSettings:
    return load_settings(env={}).ladder


def series_4h() -> list[Candle]:
    """A fixed, irregular 4H series (30 candles)."""
    closes = [10.0, 10.4, 10.1, 10.9, 11.6, 11.2, 10.7, 10.95, 11.8, 12.6, 12.1, 12.9, 13.4, 12.2, 12.0,
              12.5, 13.9, 14.4, 13.1, 12.8, 13.3, 13.0, 13.7, 15.2, 14.6, 14.1, 14.9, 15.5, 15.0, 15.8]
    out = []
    prev = 9.8
    for i, c in enumerate(closes):
        hi = max(prev, c) + 0.1 * (1 + i % 3)
        lo = min(prev, c) - 0.07 * (1 + i % 4)
        out.append(Candle(T + i * H, prev, hi, lo, c, 1000.0 + i))
        prev = c
    return out


def atr_pandas(candles: list[Candle], period: int = 14) -> float:
    """Independent ATR: pandas TR, SMA seed over the first `period` TRs, then ewm(alpha=1/period)."""
    df = pd.DataFrame([{"h": c.high, "l": c.low, "c": c.close} for c in candles])
    prev = df["c"].shift(1)
    tr = pd.concat([df["h"] - df["l"], (df["h"] - prev).abs(), (df["l"] - prev).abs()], axis=1).max(axis=1)
    tr = tr.iloc[1:].reset_index(drop=True)
    seeded = tr.iloc[period - 1:].copy()
    seeded.iloc[0] = tr.iloc[:period].mean()
    return float(seeded.ewm(alpha=1 / period, adjust=False).mean().iloc[-1])


def flat_tr(n: int, tr: float, price: float = 10.0, step: int = H) -> list[Candle]:
    return [Candle(T + i * step, price, price + tr / 2, price - tr / 2, price, 1.0) for i in range(n)]


def levels(entry: float = 10.0, sl: float = 9.25, atr: float = 0.5) -> Levels:
    r = entry - sl
    return Levels(entry, sl, entry + 1.5 * r, entry + 3 * r, entry + 5 * r, atr, "4h", "atr")


def c(ts: int, low: float, high: float, close: float | None = None) -> Candle:
    close = (low + high) / 2 if close is None else close
    return Candle(ts, close, high, low, close, 1.0)


# -- ATR ------------------------------------------------------------------------------------------


def test_wilder_atr_equals_an_independent_pandas_computation() -> None:
    candles = series_4h()
    expected = atr_pandas(candles)
    assert wilder_atr(candles, 14) == pytest.approx(expected, rel=1e-12)
    assert wilder_atr(candles[:15], 14) == pytest.approx(sum(true_ranges(candles[:15])) / 14, rel=1e-12)
    assert wilder_atr(candles[:14], 14) is None


def test_levels_to_the_cent_in_atr_mode(ladder: LadderSettings) -> None:
    plan = plan_levels(10.0, flat_tr(20, 0.5), [], ladder)
    lv = plan.levels
    assert lv is not None
    assert (lv.atr, lv.sl, lv.tp1, lv.tp2, lv.tp3) == pytest.approx((0.5, 9.25, 11.125, 12.25, 13.75), abs=1e-9)
    assert lv.risk == pytest.approx(0.75)
    assert (lv.atr_source, lv.sl_mode, lv.flags) == ("4h", "atr", ())


def test_levels_in_structural_mode(ladder: LadderSettings) -> None:
    structural = ladder.model_copy(update={"sl_mode": "structural"})
    lv = plan_levels(10.0, flat_tr(20, 0.5), [], structural, signal_low=9.6).levels
    assert lv is not None
    assert (lv.sl, lv.tp1, lv.tp2, lv.tp3) == pytest.approx((9.35, 10.975, 11.95, 13.25), abs=1e-9)
    assert lv.sl_mode == "structural"
    no_low = plan_levels(10.0, flat_tr(20, 0.5), [], structural, signal_low=None)
    assert no_low.levels is not None and no_low.levels.sl == pytest.approx(9.25)
    assert "structural_without_low" in no_low.flags


def test_a_stop_below_half_the_entry_is_clamped_and_flagged(ladder: LadderSettings) -> None:
    lv = plan_levels(10.0, flat_tr(20, 8.0), [], ladder).levels
    assert lv is not None
    assert (lv.sl, lv.tp1, lv.tp2, lv.tp3) == (5.0, 17.5, 25.0, 35.0)
    assert lv.flags == ("sl_clamped",)


def test_fewer_than_15_4h_candles_fall_back_to_1h_atr_times_2_flagged(ladder: LadderSettings) -> None:
    plan = plan_levels(10.0, flat_tr(14, 0.5), flat_tr(20, 0.25, step=3600), ladder)
    lv = plan.levels
    assert lv is not None
    assert (lv.atr, lv.atr_source, lv.flags) == (0.5, "1h*2", ("atr_from_1h",))
    assert lv.sl == pytest.approx(9.25, abs=1e-9)


def test_without_enough_history_there_is_no_ladder_and_it_is_flagged(ladder: LadderSettings) -> None:
    plan = plan_levels(10.0, flat_tr(14, 0.5), flat_tr(14, 0.25, step=3600), ladder)
    assert plan.levels is None and plan.flags == ("insufficient_history",)
    reading = ladder_atr(flat_tr(3, 1.0), [], 14)
    assert (reading.value, reading.source) == (None, None)


def test_zero_atr_gives_no_ladder_rather_than_wrong_levels(ladder: LadderSettings) -> None:
    plan = plan_levels(10.0, flat_tr(20, 0.0), [], ladder)
    assert plan.levels is None and plan.flags == ("degenerate_ladder",)


# -- outcomes -------------------------------------------------------------------------------------


def test_a_bar_touching_sl_and_tp1_counts_as_sl() -> None:
    tr = LadderTracker(levels(), T)
    out = tr.update(c(T, 9.2, 11.2))
    assert (out.result, out.realized_r, dict(out.hits), out.closed_at) == ("sl", -1.0, {"sl": T}, T)
    assert out.last_price == 9.25 and out.max_r == 0.0


def test_tp1_then_a_return_to_entry_is_breakeven_with_r_0() -> None:
    tr = LadderTracker(levels(), T)
    assert tr.update(c(T, 9.8, 10.3)).result == "open"
    mid = tr.update(c(T + 300, 10.2, 11.2, 11.0))
    assert (mid.result, dict(mid.hits)) == ("open", {"tp1": T + 300})
    assert mid.realized_r == pytest.approx(4 / 3)  # mark-to-market at the close 11.0
    out = tr.update(c(T + 600, 9.99, 10.6))
    assert (out.result, out.realized_r, out.closed_at) == ("breakeven", 0.0, T + 600)
    assert dict(out.hits) == {"tp1": T + 300, "breakeven": T + 600}
    assert out.max_r == pytest.approx(1.6)


def test_no_hit_within_24h_is_expired_with_r_at_the_last_close() -> None:
    tr = LadderTracker(levels(), T)
    for k in range(288):
        tr.update(c(T + k * 300, 9.9, 10.5, 10.3))
    assert tr.outcome.result == "open"
    out = tr.update(c(T + 86_400, 1.0, 100.0))  # after the time stop: not part of the trade
    assert (out.result, out.closed_at, out.last_price) == ("expired", T + 86_400, 10.3)
    assert out.realized_r == pytest.approx(0.4)


def test_knowing_the_bar_length_expires_on_the_last_bar_and_expire_works_without_bars(ladder: LadderSettings) -> None:
    bars = [c(T + k * 300, 9.9, 10.5, 10.15) for k in range(288)]
    out = track_outcome(levels(), T, bars, ladder, bar_s=300)
    assert (out.result, out.closed_at) == ("expired", T + 86_400)
    assert out.realized_r == pytest.approx(0.2)
    assert track_outcome(levels(), T, bars[:100], ladder).result == "open"
    tr = LadderTracker(levels(), T)
    tr.update(c(T, 9.9, 10.2, 10.0))
    assert tr.expire(T + 86_399).result == "open"
    assert tr.expire(T + 86_400).result == "expired"


def test_tp2_then_time_stop_is_tp2_and_tp3_closes_at_5r() -> None:
    tr = LadderTracker(levels(), T)
    tr.update(c(T, 10.0, 12.3, 12.0))  # TP1 and TP2 in one bar
    out = tr.expire(T + 86_400)
    assert (out.result, sorted(out.hits)) == ("tp2", ["tp1", "tp2"])
    assert out.realized_r == pytest.approx(8 / 3)
    tr = LadderTracker(levels(), T)
    tr.update(c(T, 10.0, 11.2))
    out = tr.update(c(T + 300, 10.5, 14.0))
    assert (out.result, out.realized_r, out.max_r, out.closed_at, out.last_price) == ("tp3", 5.0, 5.0, T + 300, 13.75)
    assert dict(out.hits) == {"tp1": T, "tp2": T + 300, "tp3": T + 300}


def test_tp1_and_entry_in_the_same_bar_moves_the_stop_only_from_the_next_bar() -> None:
    tr = LadderTracker(levels(), T)
    out = tr.update(c(T, 9.9, 11.2, 10.0))
    assert (out.result, dict(out.hits)) == ("open", {"tp1": T})
    assert tr.update(c(T + 300, 10.0, 10.1)).result == "breakeven"


def test_bars_before_the_signal_are_ignored_and_labels_follow_the_result() -> None:
    tr = LadderTracker(levels(), T)
    assert tr.update(c(T - 300, 1.0, 100.0)).result == "open"
    assert tr.outcome.hits == {}
    assert tp1_first(tr.outcome) is None
    assert tp1_first(tr.update(c(T, 9.0, 9.5))) is False
    be = LadderTracker(levels(), T)
    be.update(c(T, 10.0, 11.5))
    assert tp1_first(be.update(c(T + 300, 9.0, 10.0))) is True


def test_settings_drive_the_tracker(ladder: LadderSettings) -> None:
    short = ladder.model_copy(update={"time_stop_h": 1.0, "breakeven_after_tp1": False})
    tr = LadderTracker.from_settings(levels(), T, short)
    assert tr.expires_at == T + 3600
    tr.update(c(T, 10.0, 11.2))
    out = tr.update(c(T + 300, 9.5, 10.5))
    assert out.result == "open"  # the stop stayed at SL: no breakeven move


# -- ATR carried over the whole history (issue 14) ----------------------------------------------


def series_500() -> list[Candle]:
    """500 irregular 4H candles (deterministic, no randomness)."""
    out = []
    prev = 10.0
    for i in range(500):
        close = prev * (1.0 + 0.03 * ((i * 7919) % 13 - 6) / 6.0)
        hi = max(prev, close) * (1.0 + 0.004 * (1 + i % 5))
        lo = min(prev, close) * (1.0 - 0.003 * (1 + i % 7))
        out.append(Candle(T + i * H, prev, hi, lo, close, 1000.0 + i))
        prev = close
    return out


def wilder_reference(candles: list[Candle], period: int = 14) -> list[float]:
    """Independent full-history Wilder ATR (numpy, TR from shifted closes), one value per candle from
    the 15th on."""
    import numpy as np

    h = np.array([c.high for c in candles])
    lo = np.array([c.low for c in candles])
    cl = np.array([c.close for c in candles])
    tr = np.maximum.reduce([h[1:] - lo[1:], np.abs(h[1:] - cl[:-1]), np.abs(lo[1:] - cl[:-1])])
    atr = [float(tr[:period].mean())]
    for x in tr[period:]:
        atr.append((atr[-1] * (period - 1) + float(x)) / period)
    return atr


def test_carried_atr_equals_a_full_history_wilder_atr_on_500_candles() -> None:
    from dexscan.ladder import WilderAtr

    candles = series_500()
    expected = wilder_reference(candles)
    state = WilderAtr(14, keep=42)
    seen = []
    for i, c in enumerate(candles):
        state.push(c)
        if i >= 14:
            seen.append(state.value)
        else:
            assert state.value is None
    assert len(seen) == len(expected) == 486
    for got, want in zip(seen, expected, strict=True):
        assert got == pytest.approx(want, rel=1e-9)
    assert state.value == pytest.approx(atr_pandas(candles), rel=1e-9)
    assert list(state.recent) == pytest.approx(expected[-42:], rel=1e-9)
    # the old ring computation (re-seeded on the last 42 candles) is a different number
    assert abs(wilder_atr(candles[-42:], 14) / expected[-1] - 1) > 1e-6  # type: ignore[operator]


def test_the_detector_ladder_uses_the_full_history_atr_in_bootstrap_and_in_replay() -> None:
    from dexscan.detector import Detector
    from dexscan.domain import Timeframe

    candles = series_500()
    want = wilder_reference(candles)[-1]
    settings = load_settings(env={})
    boot = Detector(settings)
    boot.bootstrap("MINT", Timeframe.H4, candles)
    replay = Detector(settings)
    for c in candles:
        replay.on_bar("MINT", Timeframe.H4, c)
    for det in (boot, replay):
        m = det.market("MINT")
        assert m is not None and len(m.h4.bars) == 42  # the ring stays small ...
        assert m.h4.atr.value == pytest.approx(want, rel=1e-9)  # ... the ATR covers all 500 candles


def test_gaps_replacements_and_the_1h_fallback_of_the_carried_atr() -> None:
    from dexscan.ladder import WilderAtr, atr_reading

    candles = series_500()[:40]
    last = candles[-1]
    p = last.close
    gap = [Candle(last.ts + (k + 1) * H, p, p, p, p, 0.0) for k in range(100)]
    after = Candle(last.ts + 101 * H, p, p * 1.05, p * 0.97, p * 1.02, 5.0)
    full = WilderAtr(14, keep=42)
    for c in [*candles, *gap, after]:
        full.push(c)
    carried = WilderAtr(14, keep=42)
    for c in candles:
        carried.push(c)
    carried.flat(100)
    carried.push(Candle(after.ts, p, p, p, p, 0.0))  # an aggregate first ...
    carried.replace_last(after)  # ... then the provider's bar of the same window wins
    assert carried.value == pytest.approx(full.value, rel=1e-9)
    assert carried.bars == full.bars == 141
    assert list(carried.recent) == pytest.approx(list(full.recent), rel=1e-9)
    # a gap while still seeding counts its zero TRs into the seed
    seed = WilderAtr(14)
    seed.push(candles[0])
    seed.flat(20)
    assert seed.value == 0.0 and seed.bars == 21
    # 4H first, else 1H x 2 (flagged), else none
    h1 = WilderAtr(14, keep=24, mult=2.0)
    for c in flat_tr(15, 0.25, step=3600):
        h1.push(c)
    assert atr_reading(WilderAtr(14), h1) == atr_reading(None, h1)
    reading = atr_reading(WilderAtr(14), h1)
    assert (reading.value, reading.source, reading.flags) == (0.5, "1h*2", ("atr_from_1h",))
    assert atr_reading(WilderAtr(14), WilderAtr(14, mult=2.0)).flags == ("insufficient_history",)
