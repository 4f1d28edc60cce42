"""Invariants of the core over random inputs (hypothesis): no look-ahead, determinism, sane ladders."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dexscan.config import load_settings
from dexscan.detector import Detector
from dexscan.domain import Candle, Signal, Timeframe
from dexscan.ladder import LadderTracker, plan_levels

M5, H4 = Timeframe.M5, Timeframe.H4
T = 1_750_003_200
SETTINGS = load_settings(env={})
STRUCTURAL = SETTINGS.with_overrides({"ladder.sl_mode": "structural"})
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# one 5m step: (gap in bars, return, volume regime, upper-wick share, lower-wick share)
step = st.tuples(
    st.sampled_from([1, 1, 1, 1, 1, 1, 1, 2, 3, 7]),
    st.one_of(st.floats(-0.03, 0.03), st.floats(0.02, 0.09)),
    st.sampled_from([1.0, 1.0, 1.0, 1.0, 0.0, 3.5, 8.0, 60.0]),
    st.floats(0.0, 0.02),
    st.floats(0.0, 0.02),
)
streams = st.tuples(st.sampled_from([1e-7, 0.013, 1.0, 420.0]), st.lists(step, min_size=30, max_size=260))


def build(start_price: float, steps: list[tuple[int, float, float, float, float]]) -> list[Candle]:
    out: list[Candle] = []
    ts, price = T, start_price
    for gap, ret, regime, up, down in steps:
        o = price
        price = max(o * (1 + ret), 1e-12)
        hi, lo = max(o, price) * (1 + up), min(o, price) * (1 - down)
        out.append(Candle(ts, o, hi, lo, price, 100.0 * regime))
        ts += gap * 300
    return out


def history(price: float) -> list[Candle]:
    return [Candle(T - (18 - i) * 14_400, price, price * 1.05, price * 0.96, price * (1 + 0.01 * (i % 3)), 1e4)
            for i in range(18)]


def run(bars: list[Candle], price: float, cfg: object = SETTINGS) -> tuple[list[list[Signal]], Detector]:
    det = Detector(cfg)  # type: ignore[arg-type]
    det.bootstrap("X", H4, history(price))
    return [det.on_bar("X", M5, c) for c in bars], det


@FAST
@given(streams)
def test_bar_by_bar_equals_batch_and_identical_input_gives_identical_output(data: tuple) -> None:
    price, steps = data
    bars = build(price, steps)
    per_bar, det = run(bars, price)
    batch = Detector(SETTINGS)
    batch.bootstrap("X", H4, history(price))
    assert batch.replay("X", [(M5, c) for c in bars]) == [s for out in per_bar for s in out]
    again, det2 = run(bars, price)
    assert again == per_bar
    assert det.drain_state_changes() == det2.drain_state_changes()


@FAST
@given(streams, st.data())
def test_no_look_ahead_what_came_out_never_depends_on_later_bars(data: tuple, draw: st.DataObject) -> None:
    price, steps = data
    bars = build(price, steps)
    cut = draw.draw(st.integers(1, len(bars)))
    other = build(bars[cut - 1].close, draw.draw(st.lists(step, min_size=1, max_size=40)))
    shift = bars[cut - 1].ts + 300 - other[0].ts
    future = [dataclasses.replace(c, ts=c.ts + shift) for c in other]
    a, _ = run(bars, price)
    b, _ = run(bars[:cut] + future, price)
    assert a[:cut] == b[:cut]


@FAST
@given(streams, st.data())
def test_bootstrapping_a_prefix_then_streaming_matches_streaming_it_all(data: tuple, draw: st.DataObject) -> None:
    price, steps = data
    bars = build(price, steps)
    cut = draw.draw(st.integers(1, len(bars) - 1))
    full, _ = run(bars, price)
    det = Detector(SETTINGS)
    det.bootstrap("X", H4, history(price))
    det.bootstrap("X", M5, bars[:cut])
    later = [s for c in bars[cut:] for s in det.on_bar("X", M5, c)]
    boundary = bars[cut].ts - bars[cut].ts % 14_400 + 14_400  # once-per-candle memory ends with the window

    def after(signals: list[Signal]) -> list[Signal]:
        return [s for s in signals if s.candle_ts >= boundary]

    assert after(later) == after([s for out in full[cut:] for s in out])


@FAST
@given(streams)
def test_every_ladder_is_ordered_sl_entry_tp1_tp2_tp3(data: tuple) -> None:
    price, steps = data
    bars = build(price, steps)
    for cfg in (SETTINGS, STRUCTURAL):
        per_bar, _ = run(bars, price, cfg)
        for s in (s for out in per_bar for s in out):
            lv = s.levels
            if lv is None:
                assert s.features["no_ladder"] == 1.0
                continue
            assert lv.sl < lv.entry < lv.tp1 < lv.tp2 < lv.tp3
            assert lv.sl >= lv.entry * 0.5 * (1 - 1e-12)
            assert lv.entry == s.price


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-9, 1e6), st.floats(1e-4, 3.0), st.floats(0.0, 1.2), st.integers(14, 30),
       st.sampled_from(["atr", "structural"]))
def test_plan_levels_is_ordered_or_absent(entry: float, rel_atr: float, low_frac: float, n: int, mode: str) -> None:
    tr = entry * rel_atr
    candles = [Candle(T + i * 14_400, entry, entry + tr / 2, max(entry - tr / 2, entry * 1e-6), entry, 1.0)
               for i in range(n)]
    cfg = SETTINGS.ladder.model_copy(update={"sl_mode": mode})
    plan = plan_levels(entry, candles, [], cfg, signal_low=entry * low_frac)
    if n < 15:
        assert plan.levels is None and plan.flags == ("insufficient_history",)
    elif plan.levels is not None:
        lv = plan.levels
        assert lv.sl < lv.entry < lv.tp1 < lv.tp2 < lv.tp3
        if "sl_clamped" in lv.flags:
            assert lv.sl == entry * 0.5
        else:
            assert lv.sl >= entry * 0.5
    else:
        assert "degenerate_ladder" in plan.flags


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-0.3, 0.3), st.floats(0.0, 0.3)), min_size=1, max_size=400))
def test_outcomes_follow_their_rules_on_any_path(path: list[tuple[float, float]]) -> None:
    entry, sl = 10.0, 9.0
    lv = dataclasses.replace(plan_levels(10.0, [Candle(T + i * 14_400, 10, 10.5, 9.5, 10, 1) for i in range(15)], [],
                                         SETTINGS.ladder).levels, sl=sl, tp1=11.5, tp2=13.0, tp3=15.0)  # type: ignore[arg-type]
    tracker = LadderTracker(lv, T, bar_s=300)
    for k, (move, width) in enumerate(path):
        mid = entry * (1 + move)
        tracker.update(Candle(T + k * 300, mid, mid * (1 + width / 4), mid * (1 - width / 4), mid, 1.0))
    out = tracker.outcome
    expected_r = {"sl": -1.0, "breakeven": 0.0, "tp3": 5.0}
    if out.result in expected_r:
        assert out.realized_r == expected_r[out.result]
    hits = out.hits
    if "tp2" in hits:
        assert hits["tp1"] <= hits["tp2"]
    if "tp3" in hits:
        assert hits["tp2"] <= hits["tp3"]
    assert ("breakeven" in hits) == (out.result == "breakeven")
    assert ("sl" in hits) == (out.result == "sl")
    assert not ("sl" in hits and "tp1" in hits)
    assert out.max_r >= 0.0
    if out.closed:
        assert out.closed_at is not None and T <= out.closed_at <= T + 86_400
    if out.result in ("tp1", "tp2", "expired"):
        assert out.closed_at == T + 86_400
