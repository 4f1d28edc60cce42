"""The simulated market looks like a market, not a script (issue 16): exact figures of seed 7.

Ignitions spread in rise, volume and timing; pumps and fizzles unfold in several shapes; ordinary
candles grind and bleed; tokens come in many sizes with made-up names; and the gates have a token
to reject for every reason. Each figure is measured on the bars (``dexscan.demo.realism``), not read
back from the simulator's parameters. ``scripts/bench_demo_realism.py`` prints the same measures
next to the real pools in ``data/``.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from dexscan.demo.market_sim import MarketSim, SimConfig
from dexscan.demo.market_sim.universe import _REAL_TICKERS
from dexscan.demo.realism import EventProfile, event_profile, four_hour_moves, rejection
from dexscan.demo.world import demo_sim_config
from dexscan.domain import Timeframe


@pytest.fixture(scope="module")
def sim() -> MarketSim:
    return MarketSim(SimConfig())


@pytest.fixture(scope="module")
def demo() -> MarketSim:
    return MarketSim(demo_sim_config())


def _profiles(sim: MarketSim, start: int) -> list[EventProfile]:
    return [event_profile(sim, e) for e in sim.planted_events(start, sim.live_end) if e.kind != "rug"]


@pytest.fixture(scope="module")
def history(sim: MarketSim) -> list[EventProfile]:
    return _profiles(sim, sim.start_ts)


@pytest.fixture(scope="module")
def live(demo: MarketSim) -> list[EventProfile]:
    return _profiles(demo, demo.live_start)


def _spread(values: list[float], digits: int) -> tuple[float, float, float]:
    return round(min(values), digits), round(float(np.median(values)), digits), round(max(values), digits)


def test_ignitions_spread_in_rise_volume_and_time(history: list[EventProfile]) -> None:
    assert len(history) == 339
    # rise of the ignition bar's close over the 4H open, in %: not one +2.1% after another
    assert _spread([p.rise_pct for p in history], 2) == (2.6, 4.79, 14.48)
    assert sum(p.rise_pct >= 8 for p in history) == 101
    # volume over the 20-bar mean, and its z-score: from just over the bar to a crowd
    assert _spread([p.volume_ratio for p in history], 2) == (3.7, 6.77, 80.0)
    assert _spread([p.volume_z for p in history], 1) == (1.1, 10.8, 440.7)
    assert sum(p.volume_z < 4 for p in history) == 66  # a warm-up with a spike in it: a modest z
    minutes = [(p.event.ignite_ts - p.event.candle_ts) // 60 for p in history]
    assert (min(minutes), max(minutes), len(set(minutes))) == (15, 185, 35)


def test_pumps_and_fizzles_unfold_in_several_shapes(history: list[EventProfile]) -> None:
    shapes = Counter(f"{p.event.kind}:{p.shape}" for p in history)
    assert shapes == {"pump:spike_and_hold": 67, "pump:steps": 67, "pump:grind": 18,
                      "fizzle:fade": 54, "fizzle:pop_and_reverse": 103, "fizzle:dump": 30}
    # minutes from the ignition to the candle's high, by half hour: early spikes and late peaks
    peaks = Counter(p.peak_after_min // 30 * 30 for p in history)
    assert sorted(peaks.items()) == [(0, 226), (30, 43), (60, 35), (90, 19), (120, 11), (150, 3), (180, 2)]
    # a fizzle that popped past +9% and closed lower: a first target reached, then the reversal
    pops = [p for p in history if p.shape == "pop_and_reverse"]
    assert all(p.event.peak_pct >= 9 and p.event.close_pct <= 6 for p in pops)
    assert min(p.event.close_pct for p in pops) < -10


def test_the_live_demo_is_not_a_script(live: list[EventProfile]) -> None:
    """What ``dexscan scan --demo`` shows over its two live days."""
    assert len(live) == 61
    assert Counter(f"{p.event.kind}:{p.shape}" for p in live) == {
        "pump:spike_and_hold": 14, "pump:steps": 11, "pump:grind": 4,
        "fizzle:fade": 9, "fizzle:pop_and_reverse": 17, "fizzle:dump": 6}
    assert _spread([p.rise_pct for p in live], 2) == (2.61, 5.43, 14.05)
    assert _spread([p.volume_ratio for p in live], 2) == (3.76, 7.28, 73.88)
    minutes = {(p.event.ignite_ts - p.event.candle_ts) // 60 for p in live}
    assert (min(minutes), max(minutes), len(minutes)) == (15, 180, 23)


def _ordinary_moves(sim: MarketSim) -> tuple[int, int, int]:
    """Ordinary 4H candles closing +5% or more, -10% or less, and 3-candle rising runs of +15%."""
    planted = {(e.mint, e.candle_ts) for e in sim.planted_events(sim.start_ts, sim.live_end)}
    grinds = bleeds = runs = 0
    for tok in sim.tokens:
        h4 = sim.bars(tok.main_pool.address, Timeframe.H4, sim.start_ts, sim.live_end)
        change, _ = four_hour_moves(h4)
        ordinary = np.array([(tok.mint, b.ts) not in planted for b in h4])
        grinds += int(np.sum(ordinary & (change >= 0.05)))
        bleeds += int(np.sum(ordinary & (change <= -0.10)))
        runs += sum(1 for i in range(len(h4) - 2) if ordinary[i:i + 3].all() and bool((change[i:i + 3] > 0).all())
                    and h4[i + 2].close >= h4[i].open * 1.15)
    return grinds, bleeds, runs


def test_ordinary_candles_grind_and_bleed_without_igniting(sim: MarketSim) -> None:
    # slow grinds: a day's +15% in three ordinary candles, none of them +10% (no signal is owed)
    assert _ordinary_moves(sim) == (300, 157, 40)


def test_the_gates_have_a_token_to_reject_for_every_reason(sim: MarketSim, demo: MarketSim) -> None:
    assert Counter(rejection(t) for t in sim.tokens if rejection(t)) == {
        "mint_authority": 2, "freeze_authority": 1, "transfer_fee": 1, "low_liquidity": 1, "low_volume": 1,
        "low_liquidity_and_volume": 1, "rug": 2}
    assert Counter(rejection(t) for t in demo.tokens if rejection(t)) == {
        "mint_authority": 4, "freeze_authority": 4, "transfer_fee": 4, "low_liquidity": 3, "low_volume": 3,
        "low_liquidity_and_volume": 3, "rug": 6}
    assert sum(not rejection(t) for t in demo.tokens) == 33


def test_sizes_spread_and_names_are_made_up(sim: MarketSim, demo: MarketSim) -> None:
    liquid = [t for t in sim.tokens if t.kind != "thin"]
    liq = [t.main_pool.liquidity_usd for t in liquid]
    assert (round(min(liq)), round(max(liq))) == (108_152, 1_117_659)
    assert (round(min(t.daily_volume_usd for t in liquid)), round(max(t.daily_volume_usd for t in liquid))) == (
        162_836, 1_884_136)
    for market in (sim, demo):
        symbols = [t.symbol for t in market.tokens]
        assert len({s.upper() for s in symbols}) == len(symbols)
        assert not any(re.search(r"\d", s) or s.upper() in _REAL_TICKERS for s in symbols)
        assert all(3 <= len(s) <= 12 for s in symbols)
    assert len({len(t.symbol) for t in demo.tokens}) >= 5
