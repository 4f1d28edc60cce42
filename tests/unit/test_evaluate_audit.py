"""Honest denominators, per-signal audit rows and baselines in ``evaluate`` (issue 14)."""

from __future__ import annotations

import pytest

from dexscan.config import load_settings
from dexscan.domain import Candle, Confidence, Levels, Outcome, Reason, Signal, Timeframe
from dexscan.evaluate import signal_rows
from dexscan.metrics import BASELINE_EVERY_CLOSE, baseline_records, candle_metrics, ladder_audit, strategy_worth
from dexscan.replay import CandleLabel, Replay, SignalRecord, TokenHistory

H1, H4 = 3600, 4 * 3600
T0 = 1_754_870_400  # 2025-08-11 00:00 UTC, a 4H boundary


def hourly(start: int, closes: list[float], volume: float = 100.0) -> list[Candle]:
    out, prev = [], closes[0]
    for i, c in enumerate(closes):
        out.append(Candle(start + i * H1, prev, max(prev, c), min(prev, c), c, volume))
        prev = c
    return out


def test_a_pool_that_starts_mid_candle_counts_that_candle() -> None:
    # The pool's first trade is at 02:00: the 00:00 4H window holds only 02:00 and 03:00 bars.
    bars = hourly(T0 + 2 * H1, [1.0, 1.2, 1.2, 1.25, 1.3, 1.3, 1.35, 1.3, 1.3, 1.3])
    h = TokenHistory("M", "M", "P", {Timeframe.H1: bars})
    labels = h.label_bars()
    assert [c.ts - T0 for c in labels] == [0, H4, 2 * H4]
    first = labels[0]
    assert (first.open, first.high, first.low, first.close, first.volume) == (1.0, 1.2, 1.0, 1.2, 200.0)
    assert h.partial_start() == T0
    # the pool existed before 00:00 (the data merely starts late): its open was not seen
    late = TokenHistory("M", "M", "P", {Timeframe.H1: bars}, pair_created_at=T0 - 3600)
    assert [c.ts - T0 for c in late.label_bars()] == [H4, 2 * H4] and late.partial_start() is None
    # stored 4H bars (without the partial one) get it in front too
    stored = TokenHistory("M", "M", "P", {Timeframe.H1: bars, Timeframe.H4: labels[1:]})
    assert stored.label_bars() == labels
    # a trailing partial window (its close not seen) is never a candle
    assert TokenHistory("M", "M", "P", {Timeframe.H1: bars[:1]}).label_bars() == []


def lab(ts: int, pump: bool, synthetic: bool = False, partial: bool = False) -> CandleLabel:
    return CandleLabel("M", "M", "P", ts, 1.0, 1.2 if pump else 1.0, 20.0 if pump else 0.0, pump, False,
                       synthetic=synthetic, partial_start=partial)


def test_synthetic_gap_candles_are_left_out_of_the_base_rate_and_counted_apart() -> None:
    labels = [lab(T0, True, partial=True), lab(T0 + H4, False), lab(T0 + 2 * H4, False, synthetic=True),
              lab(T0 + 3 * H4, False, synthetic=True), lab(T0 + 4 * H4, True)]
    m = candle_metrics(labels)
    assert (m["candles"], m["pumps"], m["pump_rate"]) == (3, 2, 2 / 3)
    assert (m["synthetic_empty_candles"], m["partial_start_candles"], m["partial_start_pumps"]) == (2, 1, 1)


def record(strategy: str, ts: int, levels: Levels | None, result: str | None, r: float = 0.0,
           raw: float = 0.5) -> SignalRecord:
    sig = Signal("MINT", strategy, "ignition", T0, ts, 10.0, (Reason("rise", 2.0, ">=", 2.0),), symbol="SYM",
                 pool="POOL", levels=levels, confidence=Confidence(raw),
                 features={"no_ladder": 1.0} if levels is None else {})
    out = None if result is None else Outcome(result, r, closed_at=ts + 100)  # type: ignore[arg-type]
    return SignalRecord(sig, out, 86_400)


def test_every_signal_gets_an_audit_row_and_the_audit_counts_flags() -> None:
    clamped = Levels(10.0, 5.0, 17.5, 25.0, 35.0, 4.0, "1h*2", "atr", ("atr_from_1h", "sl_clamped"))
    plain = Levels(10.0, 9.25, 11.125, 12.25, 13.75, 0.5, "4h", "atr", ())
    recs = [record("ignition", T0 + 60, clamped, "sl", -1.0), record("ignition", T0 + 120, plain, "tp1", 1.5),
            record("confirmation", T0 + H4, None, None)]
    rows = signal_rows(recs)
    assert rows[0] == {
        "mint": "MINT", "symbol": "SYM", "pool": "POOL", "strategy": "ignition", "layer": "ignition",
        "candle_ts": T0, "candle_utc": "2025-08-11T00:00:00Z", "ts": T0 + 60, "time_utc": "2025-08-11T00:01:00Z",
        "entry": 10.0, "sl": 5.0, "tp1": 17.5, "tp2": 25.0, "tp3": 35.0, "atr": 4.0, "atr_source": "1h*2",
        "flags": "atr_from_1h;sl_clamped", "raw_score": 0.5, "confidence": None, "result": "sl", "realized_r": -1.0,
        "closed_at": T0 + 160, "tp1_first": 0}
    assert (rows[1]["result"], rows[1]["tp1_first"], rows[1]["flags"]) == ("tp1", 1, "")
    assert (rows[2]["result"], rows[2]["sl"], rows[2]["flags"], rows[2]["tp1_first"]) == (
        "no_ladder", None, "no_ladder", None)
    hist = [TokenHistory("MINT", "SYM", "POOL", {Timeframe.H1: hourly(T0, [1.0] * 8)}),
            TokenHistory("B", "B", "PB", {Timeframe.M5: [Candle(T0, 1, 1, 1, 1, 1)]})]
    replay = Replay(hist, [], recs, (T0, T0 + 2 * H4), 0, 0, ["ignition", "confirmation"], ["spy"])
    a = ladder_audit(replay)
    assert (a["signals"], a["without_ladder"], a["sl_clamped"], a["atr_from_1h"]) == (3, 1, 1, 1)
    assert a["by_strategy"]["ignition"] == {"signals": 2, "without_ladder": 0, "sl_clamped": 1, "atr_from_1h": 1}
    assert a["strategies_not_run"] == [
        {"strategy": "spy", "why": "not point-in-time safe: a bar replay cannot reproduce what it sees live"},
        {"strategy": "ignition", "why": "needs 5m bars: ran on the 1 of 2 tokens whose history has them"}]


def test_baselines_use_the_same_data_and_ladder_and_the_lift_is_the_difference() -> None:
    settings = load_settings(env={})
    # 20 flat-ish 4H candles (hourly bars with a 2% range), then a 4H candle that rises 3% in its
    # second hour and goes on to +12%.
    bars = [Candle(T0 + i * H1, 1.0, 1.01, 0.99, 1.0, 100.0) for i in range(80)]
    t = T0 + 80 * H1
    bars += [Candle(t, 1.0, 1.01, 0.995, 1.005, 100.0), Candle(t + H1, 1.005, 1.035, 1.0, 1.03, 500.0),
             Candle(t + 2 * H1, 1.03, 1.08, 1.02, 1.08, 500.0), Candle(t + 3 * H1, 1.08, 1.13, 1.07, 1.12, 500.0)]
    bars += [Candle(t + (4 + i) * H1, 1.12, 1.2, 1.1, 1.15, 100.0) for i in range(30)]
    h = TokenHistory("M", "M", "P", {Timeframe.H1: bars})
    replay = Replay([h], [], [], (T0, t + 34 * H1), 0, 0, [], [])
    out = baseline_records(settings, replay)
    every = out[BASELINE_EVERY_CLOSE]
    rise = out["baseline: +2% on the forming 4H, no volume rule"]
    assert len(every) == len(h.label_bars()) == 28
    assert [r.signal.ts - T0 for r in every[:3]] == [H4, 2 * H4, 3 * H4]
    # the +2% rule fires at the end of the bar that first closes >= open * 1.02 (the 1.03 close)
    fired = [r for r in rise if r.signal.candle_ts == t]
    assert len(fired) == 1 and fired[0].signal.ts == t + 2 * H1 and fired[0].signal.price == 1.03
    lv = fired[0].signal.levels
    assert lv is not None and lv.atr_source == "4h"
    # ATR over the 20 previous 4H candles: every TR is 0.02 -> ATR 0.02, SL = 1.03 - 1.5 * 0.02
    assert lv.atr == pytest.approx(0.02) and lv.sl == pytest.approx(1.0)
    assert fired[0].outcome is not None and fired[0].outcome.result == "tp3"  # 1.03 + 5 * 0.03 = 1.18 reached
    w = strategy_worth([record("ignition", t + 2 * H1, lv, "tp3", 5.0)], out)
    ign = w["strategies"]["ignition"]
    base = w["baselines"][BASELINE_EVERY_CLOSE]
    assert ign["lift"][BASELINE_EVERY_CLOSE]["mean_r"] == pytest.approx(5.0 - base["mean_r"])
    assert ign["lift"][BASELINE_EVERY_CLOSE]["tp1_first_rate"] == pytest.approx(1.0 - base["tp1_first_rate"])
    assert ign["expectancy"] == "positive"


def test_the_replay_confirms_a_launch_pump_in_the_pools_first_partial_candle() -> None:
    from dexscan.backfill import resample
    from dexscan.replay import run_replay

    bars = hourly(T0 + 2 * H1, [1.0, 1.3, 1.3, 1.3, 1.31, 1.3, 1.3, 1.3, 1.3, 1.3])
    h = TokenHistory("M", "M", "P", {Timeframe.H1: bars, Timeframe.H4: resample(bars, Timeframe.H1, Timeframe.H4)})
    assert [c.ts - T0 for c in h.bars[Timeframe.H4]] == [H4, 2 * H4]  # the stored 4H bars lack it
    replay = run_replay(load_settings(env={}), [h])
    confirmed = [r.signal for r in replay.records if r.signal.strategy == "confirmation"]
    assert [(s.candle_ts - T0, s.ts - T0, s.price) for s in confirmed] == [(0, H4, 1.3)]
    assert [(lab.candle_ts - T0, lab.pump, lab.partial_start) for lab in replay.labels] == [
        (0, True, True), (H4, False, False), (2 * H4, False, False)]
