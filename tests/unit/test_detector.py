"""The Detector pipeline: one object for live, demo and replay; same bars, same signals."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from dexscan.calibration import Sample, fit_calibrator
from dexscan.config import Settings, load_settings
from dexscan.detector import CandleState, Detector
from dexscan.domain import Candle, Signal, Timeframe
from dexscan.errors import InputError
from dexscan.market import Tick, time_ordered
from dexscan.plugins import build_strategies
from dexscan.strategies.base import Strategy

M5, H1, H4 = Timeframe.M5, Timeframe.H1, Timeframe.H4
T = 1_750_003_200


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(env={})


def history_4h(n: int = 20, price: float = 1.0) -> list[Candle]:
    return [Candle(T - (n - i) * 14_400, price, price * 1.06, price * 0.95, price, 5e4) for i in range(n)]


def stream(n: int, seed: int, start: int = T, price: float = 1.0) -> list[Candle]:
    """A random 5m stream with volume spikes and a few strong up-moves."""
    rng = random.Random(seed)
    out = []
    burst = 0
    for i in range(n):
        o = price
        if burst == 0 and rng.random() < 0.01:
            burst = 4  # a pump: four strong bars on heavy volume
        drift = 0.04 if burst else (0.035 if rng.random() < 0.04 else 0.0)
        price = max(1e-9, o * (1 + rng.gauss(drift, 0.008)))
        vol = rng.uniform(50, 150) * (30 if burst else rng.choice([1, 1, 1, 1, 1, 1, 8, 40]))
        burst = max(0, burst - 1)
        hi = max(o, price) * (1 + rng.random() * 0.004)
        lo = min(o, price) * (1 - rng.random() * 0.004)
        out.append(Candle(start + i * 300, o, hi, lo, price, vol))
    return out


def fresh(settings: Settings) -> Detector:
    det = Detector(settings)
    det.bootstrap("A", H4, history_4h(), symbol="AAA", pool="POOL")
    return det


def test_replay_equals_bar_by_bar_and_is_deterministic(settings: Settings) -> None:
    bars = stream(600, seed=1)
    one = fresh(settings)
    by_bar = [s for c in bars for s in one.on_bar("A", M5, c)]
    batch = fresh(settings).replay("A", [(M5, c) for c in bars])
    assert by_bar == batch
    assert {s.strategy for s in by_bar} == {"ignition", "confirmation", "volume_surge", "god_candle"}
    again = fresh(settings)
    assert [s for c in bars for s in again.on_bar("A", M5, c)] == by_bar
    assert all(s.symbol == "AAA" and s.pool == "POOL" for s in by_bar)
    assert all(s.levels is not None and s.confidence is not None for s in by_bar)


def test_replaying_the_same_bars_again_adds_nothing(settings: Settings) -> None:
    det = fresh(settings)
    bars = stream(200, seed=2)
    det.replay("A", [(M5, c) for c in bars])
    assert det.replay("A", [(M5, c) for c in bars]) == []


def test_bootstrap_then_stream_equals_streaming_from_the_start(settings: Settings) -> None:
    bars = stream(700, seed=3)
    cut = 333
    full = fresh(settings)
    emitted = [[*full.on_bar("A", M5, c)] for c in bars]
    boot = fresh(settings)
    boot.bootstrap("A", M5, bars[:cut])
    later = [s for c in bars[cut:] for s in boot.on_bar("A", M5, c)]
    next_window = bars[cut].ts - bars[cut].ts % 14_400 + 14_400

    def after(signals: list[Signal]) -> list[Signal]:
        return [s for s in signals if s.candle_ts - s.candle_ts % 14_400 >= next_window]

    expected = after([s for out in emitted[cut:] for s in out])
    assert expected and after(later) == expected


def test_live_ticks_give_the_bar_signals_a_replay_of_their_bars_gives(settings: Settings) -> None:
    rng = random.Random(4)
    live = fresh(settings)
    built: list[Candle] = []
    live_signals: list[Signal] = []
    price = 1.0
    t = T
    for _ in range(2500):
        t += rng.choice([40, 60, 90, 120])
        price *= 1 + rng.gauss(0.0015 if rng.random() < 0.05 else 0.0, 0.006)
        m5 = rng.uniform(50, 150) * rng.choice([1, 1, 1, 1, 6, 30])
        m = live.market("A")
        before = 0 if m is None else m.count5
        live_signals += live.on_tick("A", Tick(t, price, volume_m5=m5))
        m = live.market("A")
        assert m is not None
        built += list(m.m5)[len(m.m5) - (m.count5 - before):] if m.count5 > before else []
    live_signals += live.advance("A", t + 300)
    m = live.market("A")
    assert m is not None
    built += [m.m5[-1]]

    replay = fresh(settings)
    replayed = [s for c in built for s in replay.on_bar("A", M5, c)]

    def bar_signals(signals: list[Signal]) -> list[Signal]:
        """Everything but ignition (and the lead time, which depends on when ignition fired)."""
        return [dataclasses.replace(s, features={k: v for k, v in s.features.items() if k != "lead_time_s"})
                for s in signals if s.strategy != "ignition"]

    assert bar_signals(replayed) and bar_signals(live_signals) == bar_signals(replayed)
    live_ign = {s.candle_ts: s.ts for s in live_signals if s.strategy == "ignition"}
    replay_ign = {s.candle_ts: s.ts for s in replayed if s.strategy == "ignition"}
    assert replay_ign and set(replay_ign) <= set(live_ign)
    assert all(live_ign[k] <= ts for k, ts in replay_ign.items())


def test_official_4h_bars_in_time_order_do_not_change_the_signals(settings: Settings) -> None:
    bars = stream(480, seed=5)
    only5 = fresh(settings).replay("A", [(M5, c) for c in bars])
    m = Detector(settings)
    m.bootstrap("A", M5, bars)
    official = list(m.market("A").h4.bars)  # type: ignore[union-attr]
    mixed = fresh(settings).replay("A", time_ordered({M5: bars, H4: official}))
    assert [(s.strategy, s.candle_ts, s.ts, s.price) for s in mixed] == [
        (s.strategy, s.candle_ts, s.ts, s.price) for s in only5]


def test_drop_forgets_the_token_and_its_once_per_candle_memory(settings: Settings) -> None:
    det = fresh(settings)
    det.bootstrap("A", M5, [Candle(T - (24 - i) * 300, 1.0, 1.0, 1.0, 1.0, 100.0) for i in range(24)])
    first = det.on_bar("A", M5, Candle(T, 1.0, 1.03, 1.0, 1.03, 1000.0))[0]
    assert first.strategy == "ignition"
    assert det.candle_state("A") is not None
    det.drop("A")
    assert "A" not in det and det.candle_state("A") is None and det.warming_up("A") == 20
    assert all(s._fired == {} for s in det.strategies)
    assert det.tokens() == []


def test_a_calibrator_turns_features_into_probabilities_only_where_it_has_skill(settings: Settings) -> None:
    rng = random.Random(6)
    data = [Sample({"rise_vs_open": (r := rng.uniform(0, 20))}, "ignition", rng.random() < 0.1 + 0.04 * r, T + i)
            for i in range(600)]
    skill = {"all": {"n": 600, "brier_skill": 0.1, "has_skill": True},
             "ignition": {"n": 600, "brier_skill": 0.1, "has_skill": True},
             "god_candle": {"n": 600, "brier_skill": -0.01, "has_skill": False}}
    cal = fit_calibrator(data, [min(1.0, 0.05 * s.features["rise_vs_open"]) for s in data], [s.label for s in data],
                         skill=skill, version="cal-1", created_at=T)
    det = Detector(settings, calibrator=cal)
    det.bootstrap("A", H4, history_4h())
    det.bootstrap("A", M5, [Candle(T - (24 - i) * 300, 1.0, 1.0, 1.0, 1.0, 100.0) for i in range(24)])
    [sig, *_] = det.on_bar("A", M5, Candle(T, 1.0, 1.03, 1.0, 1.03, 1000.0))
    assert sig.strategy == "ignition"
    assert sig.confidence is not None and sig.confidence.calibrator_version == "cal-1"
    assert sig.confidence.probability == cal.probability(sig.features, "ignition")
    assert det.scorer.confidence(sig.features, "god_candle").probability is None
    det.set_calibrator(None)
    assert det.scorer.calibrator is None


def test_unsupported_timeframes_are_rejected_with_a_clear_error(settings: Settings) -> None:
    det = Detector(settings)
    with pytest.raises(InputError, match="timeframe 1m is not one of 5m, 1h, 4h"):
        det.on_bar("A", Timeframe.M1, Candle(T, 1, 1, 1, 1, 1))
    with pytest.raises(InputError, match="timeframe 1d"):
        det.bootstrap("A", Timeframe.D1, [])
    assert det.on_bar("A", H1, Candle(T, 1, 1, 1, 1, 1)) == []


def test_a_restart_keeps_the_ignition_it_stored_for_the_forming_candle(settings: Settings) -> None:
    """A scanner restarted mid-candle is told of its stored ignition, so the close is not a 'missed' one."""
    warm = [Candle(T - (21 - i) * 300, 1.0, 1.0, 1.0, 1.0, 100.0) for i in range(21)]
    pump = [Candle(T + i * 300, 1.0 + 0.01 * i, 1.0 + 0.01 * i, 1.0 + 0.01 * i, 1.0 + 0.01 * i,
                   1000.0 if i == 3 else 100.0) for i in range(48)]

    def run(restore: bool) -> tuple[Signal, Signal]:
        first = fresh(settings)
        first.bootstrap("A", M5, warm)
        [ignition] = [s for c in pump[:6] for s in first.on_bar("A", M5, c) if s.strategy == "ignition"]
        # the process dies here; a new detector is built from the stored bars
        second = fresh(settings)
        second.bootstrap("A", M5, warm + pump[:6])
        if restore:
            second.restore_ignition("A", ignition.candle_ts, ignition.ts, ignition.price)
        out = [s for c in pump[6:] for s in second.on_bar("A", M5, c)]
        [confirmation] = [s for s in out if s.strategy == "confirmation"]
        assert not [s for s in out if s.strategy == "ignition" and s.candle_ts == T]
        return ignition, confirmation

    ignition, confirmation = run(restore=True)
    assert (ignition.candle_ts, ignition.ts) == (T, T + 4 * 300)
    assert confirmation.candle_ts == T and confirmation.features["missed_ignition"] == 0.0
    _, unrestored = run(restore=False)
    assert unrestored.features["missed_ignition"] == 1.0


# -- gates (Strategy.price_gate / volume_gate) change speed, never results -----------------------

SETTINGS = load_settings(env={})
GATED_HOOKS = {("ignition", "on_price"), ("god_candle", "on_bar"), ("volume_surge", "on_bar")}
MANY = examples(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def counting(hook: Callable[..., Any], key: tuple[str, str], calls: Counter[tuple[str, str]]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        calls[key] += 1
        return hook(*args)
    return call


def watched(calls: Counter[tuple[str, str]], gated: bool) -> Detector:
    """A detector whose strategies count their hook calls; ``gated=False``: every gate removed, so
    the detector calls every hook on every observation."""
    strategies: list[Strategy] = build_strategies(SETTINGS)
    for s in strategies:
        if not gated:
            s.price_gate = lambda: None  # type: ignore[method-assign]
            s.volume_gate = lambda: None  # type: ignore[method-assign]
        for hook in ("on_price", "on_bar"):
            setattr(s, hook, counting(getattr(s, hook), (s.name, hook), calls))
    det = Detector(SETTINGS, strategies=strategies)
    det.bootstrap("A", H4, history_4h(), symbol="AAA", pool="POOL")
    det.bootstrap("A", M5, [Candle(T - (30 - i) * 300, 1.0, 1.01, 0.99, 1.0, 100.0) for i in range(30)], as_of=T)
    return det


Event = tuple[Any, ...]


Observed = tuple[list[Signal], list[CandleState], CandleState | None]


def feed(det: Detector, events: list[Event]) -> list[Observed]:
    """Per event: its signals, the candle state transitions it caused and the forming candle's state."""
    out: list[Observed] = []
    for kind, *args in events:
        if kind == "bar":
            signals = det.on_bar("A", M5, *args)
        elif kind == "tick":
            signals = det.on_tick("A", *args)
        elif kind == "trade":
            signals = det.on_trade("A", *args)
        else:
            signals = det.advance("A", *args)
        out.append((signals, det.drain_state_changes(), det.candle_state("A")))
    return out


def gated_and_ungated(events: list[Event]) -> tuple[list[Observed], Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """``events`` fed to a gated and an ungated detector: what comes out must be the same, event by event."""
    gated_calls: Counter[tuple[str, str]] = Counter()
    ungated_calls: Counter[tuple[str, str]] = Counter()
    gated = feed(watched(gated_calls, gated=True), events)
    assert feed(watched(ungated_calls, gated=False), events) == gated
    return gated, gated_calls, ungated_calls


# one 5m bar: (gap in bars, return, volume regime, upper wick, lower wick)
bar_step = st.tuples(st.sampled_from([1, 1, 1, 1, 1, 1, 2, 3, 8]),
                     st.one_of(st.floats(-0.03, 0.03), st.floats(0.02, 0.12)),
                     st.sampled_from([0.0, 0.5, 1.0, 1.0, 1.0, 1.05, 2.9, 3.0, 8.0, 40.0]),
                     st.floats(0.0, 0.03), st.floats(0.0, 0.03))
# one live event: (kind, seconds since the last, return, volume regime: None = no m5 reading)
live_step = st.tuples(st.sampled_from(["tick", "tick", "trade", "trade", "advance"]),
                      st.sampled_from([1, 20, 45, 60, 90, 150, 299, 300, 301, 900, 2400]),
                      st.one_of(st.floats(-0.03, 0.03), st.floats(0.01, 0.12)),
                      st.sampled_from([None, 0.0, 1.0, 1.0, 1.0, 2.9, 3.0, 3.1, 8.0, 40.0]))


@MANY
@given(st.lists(bar_step, min_size=20, max_size=250))
def test_gates_never_change_the_signals_of_a_bar_replay(steps: list[tuple[int, float, float, float, float]]) -> None:
    events: list[Event] = []
    ts, price = T, 1.0
    for gap, ret, regime, up, down in steps:
        o, price = price, price * (1 + ret)
        events.append(("bar", Candle(ts, o, max(o, price) * (1 + up), min(o, price) * (1 - down), price,
                                     100.0 * regime)))
        ts += gap * 300
    gated_and_ungated(events)


@MANY
@given(st.lists(live_step, min_size=20, max_size=400))
def test_gates_never_change_the_signals_of_live_ticks_and_trades(steps: list[tuple[str, int, float, float | None]]
                                                                  ) -> None:
    events: list[Event] = []
    t, price = T, 1.0
    for k, (kind, dt, ret, regime) in enumerate(steps):
        t += dt
        price *= 1 + ret
        volume = None if regime is None else 100.0 * regime
        if kind == "tick":
            events.append(("tick", Tick(t, price, volume_m5=volume)))
        elif kind == "trade":
            events.append(("trade", t, price, (volume or 0.0) / 4, "buy" if k % 3 else "sell", f"signer{k % 5}"))
        else:
            events.append(("advance", t))
    gated_and_ungated(events)


def test_the_gates_skip_hook_calls_and_the_signals_stay_the_same() -> None:
    """The properties above test something: on a stream where every strategy fires, the gates skip
    most calls of the gated hooks, and the signals are those of the ungated detector."""
    out, gated, ungated = gated_and_ungated([("bar", c) for c in stream(600, seed=1)])
    fired = [s for signals, _, _ in out for s in signals]
    assert {s.strategy for s in fired} == {"ignition", "confirmation", "volume_surge", "god_candle"}
    for hook in GATED_HOOKS:
        assert gated[hook] < ungated[hook] / 2, hook
    assert gated[("confirmation", "on_bar")] == ungated[("confirmation", "on_bar")] > 0
