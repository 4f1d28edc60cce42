"""The simulated market: determinism, exact aggregation, real gaps, and exact planted ground truth."""

from __future__ import annotations

import hashlib
import math
from collections import Counter

import numpy as np
import pytest
from solders.keypair import Keypair

from dexscan.demo.market_sim import CANDLE_S, MarketSim, PlantedEvent, SimConfig, SimToken
from dexscan.domain import MAIN_QUOTES, SOL_MINT, USDC_MINT, Candle, Timeframe


@pytest.fixture(scope="module")
def sim() -> MarketSim:
    return MarketSim(SimConfig())


def _arrays(bars: list[Candle]) -> dict[str, np.ndarray]:
    return {
        "ts": np.array([b.ts for b in bars], dtype=np.int64),
        "open": np.array([b.open for b in bars]),
        "high": np.array([b.high for b in bars]),
        "low": np.array([b.low for b in bars]),
        "close": np.array([b.close for b in bars]),
        "volume": np.array([b.volume for b in bars]),
    }


# ---------------------------------------------------------------------------------------------
# Tokens and pools
# ---------------------------------------------------------------------------------------------


def test_default_universe_composition(sim: MarketSim) -> None:
    kinds = Counter(t.kind for t in sim.tokens)
    assert kinds == {"pump": 6, "fizzle": 3, "rug": 2, "thin": 3, "normal": 6}
    unsafe = [t for t in sim.tokens if not t.safe]
    assert len(unsafe) == 4
    assert {(t.mint_authority, t.freeze_authority, t.transfer_fee_bps) for t in unsafe} >= {
        (True, False, None), (False, True, None), (False, False, 500)}
    assert all(t.token2022 == (t.transfer_fee_bps == 500) for t in sim.tokens)
    # every unsafe variety sits on a pump token: a scanner ignoring the safety gates would alert
    assert {(t.mint_authority, t.freeze_authority, t.token2022) for t in unsafe if t.kind == "pump"} == {
        (True, False, False), (False, True, False), (False, False, True)}
    assert sum(t.young for t in sim.tokens) == 2
    assert {t.thin_reason for t in sim.tokens if t.kind == "thin"} == {"liquidity", "volume", "both"}
    assert any("<" in t.name and "&" in t.name for t in sim.tokens)
    assert len({t.symbol for t in sim.tokens}) == 20


def test_mints_derive_from_the_documented_seed(sim: MarketSim) -> None:
    for i, tok in enumerate(sim.tokens):
        seed = hashlib.sha256(f"dexscan-sim:7:{i}".encode()).digest()
        assert tok.mint_seed == seed
        assert tok.mint == str(Keypair.from_seed(seed).pubkey())
        assert sim.token(tok.mint) is tok


def test_pools_main_first_and_quote_pools(sim: MarketSim) -> None:
    mints = {t.mint for t in sim.tokens}
    quoted_in_token = 0
    for tok in sim.tokens:
        assert 1 <= len(tok.pools) <= 3
        main = tok.pools[0]
        assert main.is_main and main.quote_mint in (SOL_MINT, USDC_MINT)
        assert main.liquidity_usd == max(p.liquidity_usd for p in tok.pools)
        assert math.isclose(sum(p.volume_share for p in tok.pools), 1.0)
        assert {p.dex_id for p in tok.pools} <= {"raydium", "pumpswap", "meteora", "orca"}
        for p in tok.pools:
            assert sim.pool(p.address) is p and p.base_mint == tok.mint
            assert p.bars_from % CANDLE_S == 0 and p.bars_from >= tok.listed_at
            if p.quote_mint in mints:
                quoted_in_token += 1
                assert p in sim.pools_with(p.quote_mint)
                assert p.quote_mint not in MAIN_QUOTES
    assert quoted_in_token == 3
    assert len({p.address for t in sim.tokens for p in t.pools}) == sum(len(t.pools) for t in sim.tokens)


def test_tiny_prices_exist(sim: MarketSim) -> None:
    assert min(t.initial_price for t in sim.tokens) < 1e-5


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="4H boundary"):
        SimConfig(start_ts=1_767_254_400 + 60)
    with pytest.raises(ValueError, match="sum to at most 1"):
        SimConfig(pump_share=0.6, fizzle_share=0.5)


# ---------------------------------------------------------------------------------------------
# Determinism and random access
# ---------------------------------------------------------------------------------------------


def test_same_seed_same_bars_whatever_the_access_order() -> None:
    cfg = SimConfig(seed=11, n_tokens=6, candle_cache=16)
    a, b = MarketSim(cfg), MarketSim(cfg)
    pool = a.tokens[2].main_pool.address
    day = 86_400
    late = (a.start_ts + 20 * day, a.start_ts + 21 * day)
    early = (a.start_ts + 2 * day, a.start_ts + 3 * day)
    a_early = a.bars(pool, Timeframe.M1, *early)
    a_late = a.bars(pool, Timeframe.M1, *late)
    b_late = b.bars(pool, Timeframe.M1, *late)  # the other order, with a tiny cache forcing regeneration
    for tok in b.tokens:
        b.bars(tok.main_pool.address, Timeframe.M5, b.start_ts, b.start_ts + 5 * day)
    b_early = b.bars(pool, Timeframe.M1, *early)
    assert a_early == b_early and a_late == b_late
    assert len(a_early) == 1440
    assert [t.mint for t in a.tokens] == [t.mint for t in b.tokens]
    assert a.planted_events(a.start_ts, a.live_end) == b.planted_events(b.start_ts, b.live_end)


def test_other_seed_other_market() -> None:
    a, b = MarketSim(SimConfig(seed=1, n_tokens=3)), MarketSim(SimConfig(seed=2, n_tokens=3))
    assert a.tokens[0].mint != b.tokens[0].mint


def test_large_universe_is_lazy() -> None:
    big = MarketSim(SimConfig(n_tokens=2000))
    assert len(big.tokens) == 2000 and len({t.mint for t in big.tokens}) == 2000
    assert not big._paths and not big._cache  # nothing generated until asked
    t = big.live_start + 600
    stats = [big.pair_stats(tok.main_pool.address, t) for tok in big.tokens[:50]]
    assert all(s is not None and s.volume.h24 is not None and s.volume.h24 > 0 for s in stats)
    assert len(big._cache) <= big.config.candle_cache


# ---------------------------------------------------------------------------------------------
# Aggregation, gaps, forming bars
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tf", [Timeframe.M5, Timeframe.M15, Timeframe.H1, Timeframe.H4, Timeframe.H12,
                                Timeframe.D1])
def test_bars_are_exact_aggregates_of_1m(sim: MarketSim, tf: Timeframe) -> None:
    tok = next(t for t in sim.tokens if t.kind == "pump" and not t.young)
    pool = tok.pools[-1]  # a secondary pool when there is one: volume scaled by its share
    start, end = sim.start_ts + 4 * 86_400 + 16 * 3600, sim.start_ts + 7 * 86_400 + 16 * 3600
    first = start - start % int(tf) + (int(tf) if start % int(tf) else 0)
    one = _arrays(sim.bars(pool.address, Timeframe.M1, first, end))
    agg = _arrays(sim.bars(pool.address, tf, start, end))
    per = int(tf) // 60
    n = len(agg["ts"])
    assert n == (end - end % int(tf) - first) // int(tf)
    assert np.array_equal(agg["ts"], one["ts"][::per][:n])
    shaped = {k: v[: n * per].reshape(n, per) for k, v in one.items()}
    assert np.array_equal(agg["open"], shaped["open"][:, 0])
    assert np.array_equal(agg["close"], shaped["close"][:, -1])
    assert np.array_equal(agg["high"], shaped["high"].max(axis=1))
    assert np.array_equal(agg["low"], shaped["low"].min(axis=1))
    assert np.allclose(agg["volume"], shaped["volume"].sum(axis=1), rtol=1e-12, atol=0)


def test_bars_are_valid_and_continuous(sim: MarketSim) -> None:
    for tok in sim.tokens:
        b = _arrays(sim.bars(tok.main_pool.address, Timeframe.M1, sim.start_ts, sim.live_end))
        assert np.all(b["high"] >= np.maximum(b["open"], b["close"]))
        assert np.all(b["low"] <= np.minimum(b["open"], b["close"]))
        assert np.all(b["low"] > 0) and np.all(b["volume"] >= 0)
        assert np.array_equal(b["open"][1:], b["close"][:-1])  # no jumps between minutes
        assert np.array_equal(np.diff(b["ts"]), np.full(len(b["ts"]) - 1, 60))


def test_empty_intervals_are_flat_at_previous_close(sim: MarketSim) -> None:
    tok = next(t for t in sim.tokens if t.kind == "thin")
    pool = tok.main_pool.address
    start, end = sim.start_ts + 86_400, sim.start_ts + 4 * 86_400
    b = _arrays(sim.bars(pool, Timeframe.M5, start, end))
    empty = np.flatnonzero(b["volume"] == 0)
    assert len(empty) >= 10
    for i in empty:
        assert b["open"][i] == b["high"][i] == b["low"][i] == b["close"][i] == b["close"][i - 1]
    skipped = _arrays(sim.bars(pool, Timeframe.M5, start, end, include_empty=False))
    assert np.array_equal(skipped["ts"], np.delete(b["ts"], empty))
    one = _arrays(sim.bars(pool, Timeframe.M1, start, end))
    assert (one["volume"] == 0).sum() > 5 * len(empty)  # quiet single minutes too


def test_at_most_three_empty_5m_bars_in_any_20(sim: MarketSim) -> None:
    for tok in sim.tokens:
        v = _arrays(sim.bars(tok.main_pool.address, Timeframe.M5, sim.start_ts, sim.live_end))["volume"]
        empty = np.r_[0, np.cumsum(v == 0)]
        assert (empty[20:] - empty[:-20]).max() <= 3


def test_forming_bar(sim: MarketSim) -> None:
    pool = sim.tokens[3].main_pool.address
    bar = sim.start_ts + 10 * 86_400 + 1200
    full = sim.bars(pool, Timeframe.M5, bar, bar + 300)
    assert len(full) == 1
    assert sim.bars(pool, Timeframe.M5, bar, bar + 299) == []
    mid = sim.bars(pool, Timeframe.M5, bar, bar + 150, include_forming=True)
    ones = sim.bars(pool, Timeframe.M1, bar, bar + 180)
    assert len(mid) == 1 and mid[0].ts == bar and mid[0].open == full[0].open
    expected = ones[0].volume + ones[1].volume + ones[2].volume / 2
    assert math.isclose(mid[0].volume, expected, rel_tol=1e-12)
    assert mid[0].high <= full[0].high and mid[0].low >= full[0].low


def test_no_bars_before_history_or_listing(sim: MarketSim) -> None:
    young = next(t for t in sim.tokens if t.young)
    pool = young.main_pool.address
    assert sim.bars(pool, Timeframe.H1, sim.start_ts - 86_400, young.listed_at) == []
    bars = sim.bars(pool, Timeframe.H1, sim.start_ts, young.listed_at + 7200)
    assert [b.ts for b in bars] == [young.listed_at, young.listed_at + 3600]
    assert sim.pair_stats(pool, young.listed_at - 1) is None
    assert sim.token_info(young.mint, young.listed_at - 1) is None
    day = sim.bars(sim.tokens[0].main_pool.address, Timeframe.D1, sim.start_ts - 86_400, sim.start_ts + 86_400)
    assert [b.ts for b in day] == [sim.start_ts - sim.start_ts % 86_400]  # the first day starts at 08:00


# ---------------------------------------------------------------------------------------------
# Ground truth over 20 tokens x 30 days (+ the live period)
# ---------------------------------------------------------------------------------------------


def _ignition_table(sim: MarketSim, tok: SimToken) -> dict[str, np.ndarray]:
    """Every 5m bar of the main pool with its 4H open and the ignition rule's two inputs."""
    b = _arrays(sim.bars(tok.main_pool.address, Timeframe.M5, sim.start_ts, sim.live_end))
    candle = b["ts"] - b["ts"] % CANDLE_S
    first = np.r_[True, candle[1:] != candle[:-1]]
    open4 = b["open"][np.maximum.accumulate(np.where(first, np.arange(len(candle)), 0))]
    csum = np.r_[0.0, np.cumsum(b["volume"])]
    sma = np.full(len(candle), np.nan)
    sma[20:] = (csum[20:-1] - csum[:-21]) / 20
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = b["volume"] / sma
    return {**b, "candle": candle, "open4": open4, "ratio": ratio}


def _events(sim: MarketSim, tok: SimToken) -> list[PlantedEvent]:
    return [e for e in sim.planted_events(sim.start_ts, sim.live_end) if e.mint == tok.mint]


def test_ground_truth_counts(sim: MarketSim) -> None:
    events = sim.planted_events(sim.start_ts, sim.live_end)
    hist = sim.planted_events(sim.start_ts, sim.live_start)
    assert Counter(e.kind for e in hist) == {"pump": 129, "fizzle": 173, "rug": 1}
    # 151 planted pumps before the migrating token (SimConfig.migration) got its own after migrating
    assert Counter(e.kind for e in events) == {"pump": 152, "fizzle": 187, "rug": 2}
    assert all(e.live == (e.candle_ts >= sim.live_start) for e in events)
    ten_pct = 0
    for tok in sim.tokens:
        h4 = _arrays(sim.bars(tok.main_pool.address, Timeframe.H4, sim.start_ts, sim.live_start))
        ten_pct += int(np.sum(h4["close"] >= h4["open"] * 1.10))
    assert ten_pct == 129


def test_four_hour_closes_match_planted_events_exactly(sim: MarketSim) -> None:
    for tok in sim.tokens:
        events = {e.candle_ts: e for e in _events(sim, tok)}
        for pool in tok.pools:
            h4 = _arrays(sim.bars(pool.address, Timeframe.H4, sim.start_ts, sim.live_end))
            change = h4["close"] / h4["open"] - 1
            pumps = {int(ts) for ts in h4["ts"][change >= 0.10]}
            assert pumps == {ts for ts, e in events.items() if e.kind == "pump" and ts >= pool.bars_from}
        h4 = _arrays(sim.bars(tok.main_pool.address, Timeframe.H4, sim.start_ts, sim.live_end))
        by_ts = dict(zip(h4["ts"].tolist(), range(len(h4["ts"])), strict=True))
        for ts, e in events.items():
            i = by_ts[ts]
            close_pct = (h4["close"][i] / h4["open"][i] - 1) * 100
            assert math.isclose(close_pct, e.close_pct, rel_tol=1e-9, abs_tol=1e-9)
            if e.kind == "pump":
                assert close_pct >= 10.5
                assert math.isclose((h4["high"][i] / h4["open"][i] - 1) * 100, e.peak_pct, rel_tol=1e-9)
            elif e.kind == "fizzle":
                assert close_pct <= 6.0
                assert math.isclose((h4["high"][i] / h4["open"][i] - 1) * 100, e.peak_pct, rel_tol=1e-9)


def test_ignition_rule_holds_exactly_at_planted_ignitions(sim: MarketSim) -> None:
    checked = spikes = 0
    for tok in sim.tokens:
        tab = _ignition_table(sim, tok)
        events = _events(sim, tok)
        ign_candles = {e.candle_ts: e for e in events if e.kind != "rug"}
        event_candles = {e.candle_ts for e in events}
        strong = tab["ratio"] > 3
        at_close = strong & (tab["close"] >= tab["open4"] * 1.02)
        intrabar = strong & (tab["high"] >= tab["open4"] * 1.02)
        for e in ign_candles.values():
            in_candle = tab["candle"] == e.candle_ts
            hits = np.flatnonzero(in_candle & at_close)
            assert len(hits) > 0, (tok.symbol, e)
            bar = hits[0]
            assert tab["ts"][bar] + 300 == e.ignite_ts
            assert tab["ratio"][bar] > 3.5 and tab["close"][bar] >= tab["open4"][bar] * 1.025
            # nothing earlier in the candle comes close, even intrabar
            assert np.flatnonzero(in_candle & intrabar)[0] == bar
            assert tab["high"][in_candle & (tab["ts"] < tab["ts"][bar])].max() < tab["open4"][bar] * 1.011
            # warm-up: 20 completed 5m bars before the ignition bar, in the same UTC day
            bar_ts = int(tab["ts"][bar])
            assert bar_ts - max(bar_ts - bar_ts % 86_400, tok.main_pool.bars_from) >= 20 * 300
            checked += 1
        # no ignition anywhere else, at a close or intrabar
        outside = ~np.isin(tab["candle"], list(ign_candles))
        assert not np.any(intrabar & outside)
        # outside events, volume spikes happen (sell-offs) but never with the price up: the bar and the
        # next one (which a rolling 5-minute window still overlaps) stay below +1.5% over the 4H open
        quiet = ~np.isin(tab["candle"], list(event_candles))
        spiking = np.flatnonzero(quiet & (tab["ratio"] > 3))
        assert np.all(tab["high"][spiking] < tab["open4"][spiking] * 1.015)
        assert np.all(tab["high"][spiking + 1] < tab["open4"][spiking] * 1.015)
        assert np.all(tab["candle"][spiking + 1] == tab["candle"][spiking])
        assert np.all(tab["close"][spiking] < tab["open"][spiking])  # sellers: a close in the lower half
        assert np.all(tab["close"][spiking] - tab["low"][spiking] < 0.5 * (tab["high"][spiking] - tab["low"][spiking]))
        spikes += len(spiking)
    assert checked == 152 + 187
    assert spikes == 6421


def test_rugs_drop_price_and_liquidity_within_minutes(sim: MarketSim) -> None:
    rugs = [e for e in sim.planted_events(sim.start_ts, sim.live_end) if e.kind == "rug"]
    assert len(rugs) == 2 and sum(e.live for e in rugs) == 1
    for e in rugs:
        tok = sim.token(e.mint)
        assert sim.rug_time(e.mint) == e.ignite_ts
        before = sim.pair_stats(e.pool, e.ignite_ts - 60)
        after = sim.pair_stats(e.pool, e.ignite_ts + 180)
        assert before is not None and after is not None
        assert after.price_usd <= 0.2 * before.price_usd
        assert after.liquidity_usd <= 0.1 * before.liquidity_usd
        assert e.peak_pct <= -80
        later = sim.pair_stats(e.pool, e.ignite_ts + 3 * 86_400 if not e.live else e.ignite_ts + 86_400)
        assert later is not None and later.liquidity_usd < 50_000
        assert tok.kind == "rug"


def test_live_period_has_early_and_steady_ignitions(sim: MarketSim) -> None:
    live = [e for e in sim.planted_events(sim.live_start, sim.live_end) if e.kind != "rug"]
    first = min(e.ignite_ts for e in live)
    assert first - sim.live_start == 15 * 60
    candles = Counter(e.candle_ts for e in live)
    assert set(candles) == set(range(sim.live_start, sim.live_end, CANDLE_S))
    assert min(candles.values()) == 3
    first_per_candle = [min((e for e in live if e.candle_ts == c), key=lambda e: e.ignite_ts) for c in candles]
    assert all(e.kind == "pump" and e.eligible for e in first_per_candle)  # the demo opens with alerts


def test_thin_and_unsafe_tokens(sim: MarketSim) -> None:
    events = sim.planted_events(sim.start_ts, sim.live_end)
    unsafe_pumps = {e.mint for e in events if e.kind == "pump" and not sim.token(e.mint).safe}
    assert len(unsafe_pumps) == 3
    assert all(not e.eligible for e in events if e.mint in unsafe_pumps)
    thin_events = [e for e in events if e.token_kind == "thin"]
    assert thin_events and not any(e.eligible for e in thin_events)
    for hour in range(0, 30 * 24, 29):
        t = sim.start_ts + hour * 3600 + 1234
        for tok in sim.tokens:
            if not sim.listed(tok.mint, t) or (sim.rug_time(tok.mint) or math.inf) <= t:
                continue
            if t < tok.main_pool.bars_from:  # still on its bonding curve: no pool yet (SimConfig.migration)
                continue
            stats = [sim.pair_stats(p.address, t) for p in tok.pools]
            main = stats[0]
            assert main is not None
            h24 = sum(s.volume.h24 or 0.0 for s in stats if s is not None)
            liquid = main.liquidity_usd >= 50_000 and h24 >= 100_000
            if t - tok.listed_at >= 86_400:
                assert liquid == (tok.kind != "thin"), (tok.symbol, t, main.liquidity_usd, h24)


# ---------------------------------------------------------------------------------------------
# Point-in-time views
# ---------------------------------------------------------------------------------------------


def test_pair_stats_m5_at_a_boundary_is_the_bar_volume(sim: MarketSim) -> None:
    tok = sim.tokens[12]
    pool = tok.pools[0]
    t = sim.start_ts + 9 * 86_400 + 7 * 300
    bar = sim.bars(pool.address, Timeframe.M5, t - 300, t)[0]
    stats = sim.pair_stats(pool.address, t)
    assert stats is not None
    assert math.isclose(stats.volume.m5 or 0.0, bar.volume, rel_tol=1e-12)
    hour = sum(b.volume for b in sim.bars(pool.address, Timeframe.M5, t - 3600, t))
    assert math.isclose(stats.volume.h1 or 0.0, hour, rel_tol=1e-9)
    assert stats.price_usd == bar.close
    assert math.isclose(stats.fdv, bar.close * tok.total_supply)
    quote = SOL_MINT if pool.quote_mint == SOL_MINT else USDC_MINT
    assert math.isclose(stats.price_native * (150.0 if quote == SOL_MINT else 1.0), stats.price_usd)
    assert stats.pair_created_at == pool.created_at


def test_txns_follow_price_direction(sim: MarketSim) -> None:
    pump = next(e for e in sim.planted_events(sim.start_ts, sim.live_start) if e.kind == "pump")
    stats = sim.pair_stats(pump.pool, pump.ignite_ts)
    assert stats is not None and (stats.price_change.m5 or 0) > 0
    assert stats.txns["m5"].buys > stats.txns["m5"].sells
    crash = next(e for e in sim.planted_events(sim.start_ts, sim.live_end) if e.kind == "rug")
    after = sim.pair_stats(crash.pool, crash.ignite_ts + 240)
    assert after is not None and after.txns["m5"].sells > after.txns["m5"].buys


def test_token_info_matches_safety_flags(sim: MarketSim) -> None:
    t = sim.live_start
    for tok in sim.tokens:
        info = sim.token_info(tok.mint, t)
        assert info is not None
        assert info.mint_authority_disabled == (not tok.mint_authority)
        assert info.freeze_authority_disabled == (not tok.freeze_authority)
        assert info.young == (t - tok.listed_at < 2 * 86_400)
        assert info.usd_price == sim.token_price(tok.mint, t)
        assert 0 <= info.top_holders_pct <= 100
        assert set(info.stats) == {"5m", "1h", "6h", "24h"}
        if not tok.safe:
            assert info.organic_score < 30 and not info.is_verified


def test_discovery_feeds_are_deterministic_subsets(sim: MarketSim) -> None:
    t = sim.live_start + 1800
    other = MarketSim(SimConfig())
    mints = {tok.mint for tok in sim.tokens}
    for category in ("toptrending", "toporganicscore", "toptraded"):
        found = sim.discovery(category, "1h", t)  # type: ignore[arg-type]
        assert found == other.discovery(category, "1h", t)  # type: ignore[arg-type]
        assert 0 < len(found) < 20 and set(found) <= mints and len(set(found)) == len(found)
    trending = sim.discovery("toptrending", "1h", t)
    igniting = {e.mint for e in sim.planted_events(sim.live_start, sim.live_start + CANDLE_S)}
    assert set(trending[: len(igniting)]) == igniting
    recent = sim.recent(t)
    young = sorted((tok for tok in sim.tokens if tok.young), key=lambda tok: -tok.listed_at)
    assert recent[:2] == [tok.mint for tok in young]
    assert len(recent) == 20
    assert sim.recent(young[0].listed_at - 1)[0] != young[0].mint
    profiles, boosts = sim.profiles(t), sim.boosts(t)
    assert 0 < len(profiles) < 20 and 0 < len(boosts) < 20
    top = sim.boosts(t, top=True)
    assert [b.total_amount for b in top] == sorted((b.total_amount for b in top), reverse=True)


def test_find(sim: MarketSim) -> None:
    tok = sim.tokens[5]
    assert sim.find(tok.mint) == [tok]
    assert sim.find(tok.pools[0].address) == [tok]
    assert tok in sim.find(tok.symbol.lower())
    assert sim.find("   ") == []
