"""The simulator's changing pools (issue 12): USD1-quoted pools and the token that migrates from a
pump.fun bonding curve to PumpSwap, with its planted truth still exact."""

from __future__ import annotations

import pytest

from dexscan.demo.market_sim import BONDING_CURVE_DEX, CANDLE_S, MarketSim, SimConfig
from dexscan.domain import SOL_MINT, USD1_MINT, Timeframe


@pytest.fixture(scope="module")
def sim() -> MarketSim:
    return MarketSim(SimConfig())


def test_one_young_safe_token_starts_on_a_bonding_curve(sim: MarketSim) -> None:
    movers = [t for t in sim.tokens if t.curve is not None]
    assert len(movers) == 1
    tok = movers[0]
    curve = tok.curve
    assert curve is not None and tok.young and tok.safe and tok.kind == "normal"
    assert (curve.dex_id, curve.quote_mint, curve.created_at, curve.bars_from) == (
        BONDING_CURVE_DEX, SOL_MINT, tok.listed_at, tok.listed_at)
    assert tok.migrated_at == curve.closes_at == sim.live_start + CANDLE_S
    assert tok.main_pool.dex_id == "pumpswap" and tok.main_pool.bars_from == tok.migrated_at
    assert all(p.bars_from >= tok.migrated_at for p in tok.pools)
    assert tok.first_pool is curve and curve in sim.pools_with(tok.mint) and curve not in tok.pools
    assert sim.recent(sim.live_start)[0] in {t.mint for t in sim.tokens if t.young}


def test_the_curve_trades_everything_until_the_migration_and_nothing_after(sim: MarketSim) -> None:
    tok = next(t for t in sim.tokens if t.curve is not None)
    assert tok.curve is not None and tok.migrated_at is not None
    t = tok.migrated_at - 600
    on_curve = sim.pair_stats(tok.curve.address, t)
    whole = sim.token_window(tok.mint, t, 86_400)
    assert on_curve is not None and whole is not None
    assert on_curve.volume.h24 == pytest.approx(whole.volume, rel=1e-12)
    assert sim.pair_stats(tok.main_pool.address, t) is None  # no pool yet
    later = tok.migrated_at + 3600
    after = sim.pair_stats(tok.curve.address, later)
    assert after is not None and after.volume.h1 == 0.0 and after.volume.m5 == 0.0
    assert (after.volume.h24 or 0) > 0  # its last day of trading still counts in the 24h window
    assert sim.bars(tok.curve.address, Timeframe.M5, tok.migrated_at, later) == []
    main = sim.bars(tok.main_pool.address, Timeframe.M5, tok.migrated_at, later)
    assert [b.ts for b in main][:1] == [tok.migrated_at] and len(main) == 12


def test_the_migrating_token_pumps_after_migrating(sim: MarketSim) -> None:
    tok = next(t for t in sim.tokens if t.curve is not None)
    assert tok.migrated_at is not None
    (event,) = [e for e in sim.planted_events(sim.start_ts, sim.live_end) if e.mint == tok.mint]
    assert (event.kind, event.pool, event.candle_ts, event.eligible, event.live) == (
        "pump", tok.main_pool.address, tok.migrated_at + CANDLE_S, True, True)
    h4 = sim.bars(tok.main_pool.address, Timeframe.H4, event.candle_ts, event.candle_ts + CANDLE_S)
    assert len(h4) == 1 and h4[0].close / h4[0].open - 1 == pytest.approx(event.close_pct / 100, rel=1e-9)


def test_some_secondary_pools_are_quoted_in_usd1(sim: MarketSim) -> None:
    usd1 = [p for t in sim.tokens for p in t.pools if p.quote_mint == USD1_MINT]
    assert usd1 and all(not p.is_main for p in usd1)
    stats = sim.pair_stats(usd1[0].address, sim.live_start)
    assert stats is not None and stats.price_native == pytest.approx(stats.price_usd, rel=1e-12)  # USD1 = $1


def test_without_migration_no_token_has_a_curve() -> None:
    assert all(t.curve is None for t in MarketSim(SimConfig(migration=False)).tokens)
