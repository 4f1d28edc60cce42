"""Ignition, confirmation, god candle and volume surge at their exact boundaries (SPEC §5)."""

from __future__ import annotations

import pytest

from dexscan.config import Settings, load_settings
from dexscan.detector import Detector
from dexscan.domain import Candle, Signal, Timeframe
from dexscan.errors import ConfigError
from dexscan.market import Tick
from dexscan.params import PluginParams
from dexscan.plugins import STRATEGIES, build_strategies
from dexscan.strategies import GodCandle, Ignition, Strategy, meets

M5 = Timeframe.M5
H4 = Timeframe.H4
T = 1_750_003_200  # 2025-06-15 16:00:00 UTC, a 4H boundary
assert T % 14_400 == 0


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(env={})


def flat(start: int, n: int, price: float = 1.0, volume: float = 100.0) -> list[Candle]:
    return [Candle(start + i * 300, price, price, price, price, volume) for i in range(n)]


def primed(settings: Settings, base: float = 1.0, n: int = 24, volume: float = 100.0) -> Detector:
    """A detector whose token has ``n`` flat completed 5m bars ending at the 4H boundary T."""
    det = Detector(settings)
    det.bootstrap("MINT", M5, flat(T - n * 300, n, base, volume), symbol="TOK", pool="POOL")
    return det


def bar(ts: int, open_: float, close: float, volume: float, high: float | None = None,
        low: float | None = None) -> Candle:
    high = max(open_, close) if high is None else high
    low = min(open_, close) if low is None else low
    return Candle(ts, open_, high, low, close, volume)


def by(signals: list[Signal], strategy: str) -> list[Signal]:
    return [s for s in signals if s.strategy == strategy]


# -- ignition --------------------------------------------------------------------------------------


def test_ignition_at_plus_1_99_pct_with_10x_volume_does_not_fire(settings: Settings) -> None:
    det = primed(settings, base=0.1)
    out = det.on_bar("MINT", M5, bar(T, 0.1, 0.10199, 1000.0))
    assert by(out, "ignition") == []


def test_ignition_at_plus_2_00_pct_with_3_01x_volume_fires(settings: Settings) -> None:
    det = primed(settings, base=0.1)
    out = det.on_bar("MINT", M5, bar(T, 0.1, 0.102, 301.0))
    [sig] = by(out, "ignition")
    assert sig.layer == "ignition"
    assert sig.candle_ts == T
    assert sig.ts == T + 300
    assert sig.price == 0.102
    assert sig.rise_pct == pytest.approx(2.0, abs=1e-9)
    assert sig.volume_ratio == pytest.approx(3.01, abs=1e-12)
    assert sig.symbol == "TOK" and sig.pool == "POOL"
    assert [r.name for r in sig.reasons] == ["rise_vs_4h_open", "volume_5m_vs_sma20"]
    assert (sig.reasons[0].op, sig.reasons[0].threshold) == (">=", 2.0)
    assert (sig.reasons[1].op, sig.reasons[1].threshold) == (">", 3.0)


def test_ignition_volume_of_exactly_3x_does_not_fire(settings: Settings) -> None:
    det = primed(settings, base=0.1)
    assert by(det.on_bar("MINT", M5, bar(T, 0.1, 0.103, 300.0)), "ignition") == []


def test_ignition_float_boundary_for_awkward_decimals(settings: Settings) -> None:
    """0.1 * 1.02 is 0.10200000000000001 in binary; a price of 0.102 is exactly +2% and fires."""
    assert 0.1 * 1.02 > 0.102
    det = primed(settings, base=0.1, volume=0.1)
    [sig] = by(det.on_bar("MINT", M5, bar(T, 0.1, 0.102, 0.301)), "ignition")
    assert sig.volume_ratio == pytest.approx(3.01)
    det = primed(settings, base=0.1, volume=0.1)
    assert by(det.on_bar("MINT", M5, bar(T, 0.1, 0.102, 0.3)), "ignition") == []


def test_ignition_fires_once_per_candle_though_the_condition_holds_for_an_hour(settings: Settings) -> None:
    det = primed(settings)
    fired: list[Signal] = []
    for k in range(12):
        volume = 100.0 * 10 ** (k + 1)  # every bar is far above 3x its SMA
        m = det.market("MINT")
        assert m is not None
        sma = m.volume_window(20).total / 20
        assert volume > 3 * sma
        fired += by(det.on_bar("MINT", M5, bar(T + k * 300, 1.03 if k else 1.0, 1.03, volume)), "ignition")
    assert [(s.candle_ts, s.ts) for s in fired] == [(T, T + 300)]
    state = det.candle_state("MINT")
    assert state is not None and state.state == "ignited" and state.ignited_at == T + 300


def test_a_new_4h_candle_re_arms_ignition(settings: Settings) -> None:
    det = primed(settings)
    first = by(det.on_bar("MINT", M5, bar(T, 1.0, 1.03, 1000.0)), "ignition")
    for k in range(1, 48):
        det.on_bar("MINT", M5, bar(T + k * 300, 1.03, 1.03, 100.0))
    second = by(det.on_bar("MINT", M5, bar(T + 14_400, 1.03, 1.06, 1000.0)), "ignition")
    assert [s.candle_ts for s in first] == [T]
    assert [s.candle_ts for s in second] == [T + 14_400]
    assert second[0].rise_pct == pytest.approx((1.06 / 1.03 - 1) * 100)


def test_fewer_than_20_completed_5m_bars_is_warming_up_and_never_ignites(settings: Settings) -> None:
    det = Detector(settings)
    assert det.warming_up("UNSEEN") == 20
    det.bootstrap("MINT", M5, flat(T - 19 * 300, 19))
    assert det.warming_up("MINT") == 1
    out = det.on_bar("MINT", M5, bar(T, 1.0, 1.5, 1e6))
    assert by(out, "ignition") == []
    assert det.warming_up("MINT") == 0
    out = det.on_bar("MINT", M5, bar(T + 300, 1.5, 1.6, 1e8))
    assert [s.candle_ts for s in by(out, "ignition")] == [T]


def test_ignition_on_live_ticks_uses_the_rolling_m5_volume(settings: Settings) -> None:
    det = primed(settings)
    assert det.on_tick("MINT", Tick(T + 30, 1.019, volume_m5=5000.0)) == []
    assert det.on_tick("MINT", Tick(T + 60, 1.021, volume_m5=300.0)) == []
    [sig] = det.on_tick("MINT", Tick(T + 90, 1.021, volume_m5=300.5, buys_m5=30, sells_m5=10,
                                     liquidity_usd=250_000.0))
    assert (sig.strategy, sig.ts, sig.candle_ts, sig.price) == ("ignition", T + 90, T, 1.021)
    assert sig.volume_ratio == pytest.approx(3.005)
    assert sig.liquidity_usd == 250_000.0
    assert sig.features["buy_sell_ratio_m5"] == 0.75
    assert det.on_tick("MINT", Tick(T + 120, 1.05, volume_m5=9000.0)) == []


def test_ignition_after_empty_bars_reports_the_volume_itself(settings: Settings) -> None:
    det = primed(settings, volume=0.0)
    [sig] = by(det.on_bar("MINT", M5, bar(T, 1.0, 1.02, 5.0)), "ignition")
    assert sig.volume_ratio is None
    reason = sig.reasons[1]
    assert (reason.name, reason.value, reason.threshold) == ("volume_5m_after_empty_bars", 5.0, 0.0)


# -- confirmation --------------------------------------------------------------------------------


def test_confirmation_at_plus_9_99_pct_is_not_confirmed_and_at_plus_10_00_pct_is(settings: Settings) -> None:
    det = Detector(settings)
    assert det.on_bar("A", H4, Candle(T, 0.1, 0.12, 0.095, 0.10999, 5e4)) == []
    [sig] = det.on_bar("A", H4, Candle(T + 14_400, 0.1, 0.12, 0.095, 0.11, 5e4))
    assert (sig.strategy, sig.layer, sig.candle_ts, sig.ts, sig.price) == (
        "confirmation", "confirmation", T + 14_400, T + 28_800, 0.11)
    assert sig.rise_pct == pytest.approx(10.0)
    assert sig.reasons[0].op == ">=" and sig.reasons[0].threshold == 10.0
    assert sig.features["missed_ignition"] == 1.0


def test_confirmation_from_the_5m_stream_fires_when_the_last_bar_of_the_window_completes(settings: Settings) -> None:
    det = primed(settings, base=1.0)
    out: list[Signal] = []
    for k in range(48):
        close = 1.0 + 0.1 * (k + 1) / 48  # ends at exactly +10%
        out += det.on_bar("MINT", M5, bar(T + k * 300, 1.0 + 0.1 * k / 48, close, 100.0))
        if k < 47:
            assert by(out, "confirmation") == []
    [sig] = by(out, "confirmation")
    assert (sig.candle_ts, sig.ts) == (T, T + 14_400)
    m = det.market("MINT")
    assert m is not None and m.h4.last == Candle(T, 1.0, 1.1, 1.0, 1.1, 4800.0)


def test_state_machine_ignited_then_confirmed_with_lead_time(settings: Settings) -> None:
    det = primed(settings)
    det.on_bar("MINT", M5, bar(T, 1.0, 1.03, 1000.0))  # ignition at T+300
    for k in range(1, 48):
        price = 1.03 if k < 24 else 1.12
        det.on_bar("MINT", M5, bar(T + k * 300, price, price, 100.0))
    changes = det.drain_state_changes()
    assert [(c.state, c.closed) for c in changes] == [("ignited", False), ("confirmed", True)]
    final = changes[-1]
    assert final.ignited_at == T + 300
    assert final.reached_at == T + 24 * 300 + 300  # the first bar at >= +10% ends then
    assert final.lead_time_s == 24 * 300
    assert final.missed is False
    assert final.confirmed_at == T + 14_400
    assert det.drain_state_changes() == []


def test_state_machine_ignited_then_fizzled(settings: Settings) -> None:
    det = primed(settings)
    det.on_bar("MINT", M5, bar(T, 1.0, 1.03, 1000.0))
    for k in range(1, 48):
        det.on_bar("MINT", M5, bar(T + k * 300, 1.03, 1.03, 100.0))
    changes = det.drain_state_changes()
    assert [c.state for c in changes] == ["ignited", "fizzled"]
    assert changes[-1].close == 1.03 and changes[-1].reached_at is None and changes[-1].lead_time_s is None


def test_state_machine_confirmed_without_ignition_is_a_missed_ignition(settings: Settings) -> None:
    det = primed(settings)
    out: list[Signal] = []
    for k in range(48):
        p0, p1 = 1.0 + 0.12 * k / 48, 1.0 + 0.12 * (k + 1) / 48  # steady climb, volume never spikes
        out += det.on_bar("MINT", M5, bar(T + k * 300, p0, p1, 100.0))
    assert by(out, "ignition") == []
    [conf] = by(out, "confirmation")
    assert conf.features["missed_ignition"] == 1.0
    [state] = det.drain_state_changes()
    assert (state.state, state.missed, state.ignited_at) == ("confirmed", True, None)
    assert state.reached_at == T + 40 * 300  # bar k=39 closes at 1 + 0.12*40/48 = 1.10 and ends then


# -- god candle and volume surge ---------------------------------------------------------------------


def test_god_candle_fires_on_a_heavy_breakout_and_rejects_a_long_upper_wick(settings: Settings) -> None:
    det = primed(settings, n=60)
    out = det.on_bar("MINT", M5, bar(T, 1.0, 1.13, 600.0, high=1.14, low=1.0))
    [sig] = by(out, "god_candle")
    assert (sig.layer, sig.candle_ts, sig.ts, sig.price) == ("strategy", T, T + 300, 1.13)
    assert sig.volume_ratio == pytest.approx(6.0)
    assert sig.features["window_rise_pct"] == pytest.approx(13.0)
    assert sig.levels is None or sig.levels.sl < sig.price

    det = primed(settings, n=60)  # same rise, but the bar closed 61% of its range below its high
    wick = det.on_bar("MINT", M5, bar(T, 1.0, 1.13, 600.0, high=1.13 + 0.61 / 0.39 * 0.13, low=1.0))
    assert by(wick, "god_candle") == []

    det = primed(settings, n=60)  # +11.9%: not a god candle
    assert by(det.on_bar("MINT", M5, bar(T, 1.0, 1.119, 600.0)), "god_candle") == []

    det = primed(settings, n=60)  # 4.99x volume: not a god candle
    assert by(det.on_bar("MINT", M5, bar(T, 1.0, 1.13, 499.0)), "god_candle") == []


def test_god_candle_needs_a_break_of_the_prior_50_bar_high(settings: Settings) -> None:
    det = Detector(settings)
    history = flat(T - 60 * 300, 60)
    history[20] = Candle(history[20].ts, 1.0, 1.2, 1.0, 1.0, 100.0)  # an old spike 40 bars back
    det.bootstrap("MINT", M5, history)
    assert by(det.on_bar("MINT", M5, bar(T, 1.0, 1.15, 600.0)), "god_candle") == []


def test_volume_surge_needs_4_sigma_and_a_close_in_the_upper_third(settings: Settings) -> None:
    volumes = [100.0, 200.0] * 12  # mean 150, population std 50 over any 20 of them
    history = [Candle(T - (24 - i) * 300, 1.0, 1.0, 1.0, 1.0, v) for i, v in enumerate(volumes)]

    def run(volume: float, close: float) -> list[Signal]:
        det = Detector(settings)
        det.bootstrap("MINT", M5, history)
        return by(det.on_bar("MINT", M5, bar(T, 1.0, close, volume, high=1.01, low=0.99)), "volume_surge")

    [sig] = run(350.0, 1.004)  # exactly mean + 4 std; close at 70% of the range
    assert sig.features["volume_z"] == pytest.approx(4.0)
    assert sig.features["close_position"] == pytest.approx(0.7)
    assert run(349.9, 1.004) == []
    assert run(400.0, 1.003) == []  # close at 65%: below the upper third


# -- the plugin interface -------------------------------------------------------------------------


def test_registry_and_build_follow_the_enabled_list(settings: Settings) -> None:
    assert set(STRATEGIES) >= {"ignition", "confirmation", "god_candle", "volume_surge"}
    built = build_strategies(settings.with_overrides({"strategies.enabled": ["volume_surge", "ignition"]}))
    assert [s.name for s in built] == ["volume_surge", "ignition"]
    with pytest.raises(ConfigError, match="unknown strategy 'nope'"):
        build_strategies(settings.with_overrides({"strategies.enabled": ["nope"]}))


def test_parameters_come_from_settings_and_are_validated(settings: Settings) -> None:
    tuned = settings.with_overrides({"strategies.ignition.rise_pct": 5.0, "strategies.god_candle.window_bars": 6})
    ign = Ignition.from_settings(tuned)
    assert (ign.params.rise_pct, ign.params.volume_mult, ign.params.sma_bars) == (5.0, 3.0, 20)
    assert GodCandle.from_settings(tuned).params.window_bars == 6
    with pytest.raises(ConfigError, match="strategy ignition: parameter sma_bars: expected a whole number"):
        Ignition.configured(sma_bars=2.5)
    with pytest.raises(ConfigError, match="unknown parameter"):
        Ignition.configured(rise=1)
    desc = Ignition.describe()
    assert desc["name"] == "ignition" and desc["point_in_time_safe"] is True
    assert [p["name"] for p in desc["params"]] == ["rise_pct", "volume_mult", "sma_bars"]


def test_a_new_strategy_is_one_class_and_runs_beside_the_others(settings: Settings) -> None:
    class EveryBar(Strategy):
        name = "every_bar_test"
        description = "fires on every 5m bar (test only)"

        class Params(PluginParams):
            unused: float = 1.0
        bar_timeframes = frozenset({Timeframe.M5})

        def on_bar(self, tm, tf, bar, at):  # type: ignore[no-untyped-def]
            from dexscan.strategies.base import Detection
            return Detection(self.name, self.layer, bar.ts, at, bar.close, (), bar.low)

    det = Detector(settings, strategies=[*build_strategies(settings), EveryBar()])
    det.bootstrap("MINT", M5, flat(T - 24 * 300, 24))
    out = det.on_bar("MINT", M5, bar(T, 1.0, 1.03, 1000.0))
    assert sorted(s.strategy for s in out) == ["every_bar_test", "ignition", "volume_surge"]


def test_meets_and_exceeds_tolerance_is_relative_1e9() -> None:
    assert meets(1.0 - 5e-10, 1.0) and not meets(1.0 - 2e-9, 1.0)
    from dexscan.strategies import exceeds
    assert not exceeds(1.0 + 5e-10, 1.0) and exceeds(1.0 + 2e-9, 1.0)
