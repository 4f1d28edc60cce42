"""The demo's migrating token (issue 12, point 2), through the whole scanner on virtual time.

The simulator starts one young token on a pump.fun bonding curve (DexScreener: ``dexId`` ``pumpfun``,
``liquidity: null``), migrates it to its PumpSwap main pool one 4H candle into the live period and
plants a pump in the candle after. The scanner must keep it out while it is on the curve, with a reason
that says so, look at it every round, take it in on its new pool, fetch that pool's history, and
signal the pump: an ignition and a confirmation on the PumpSwap pool.

The scanner starts three discovery rounds before the migration (enough to see it looked at the token
every round while on the curve) and stops as soon as the pump's confirmation is stored.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from dexscan.config import load_settings
from dexscan.demo.world import DemoWorld
from dexscan.engine import Engine
from dexscan.scan_command import ScanOptions, preload, scan
from tests.support.scan_stop import StopWhen

LEAD_S = 600
H4 = 14_400
ROUND_S = 600  # scan.discovery_interval_s: the token is looked at once a round
ROUNDS_ON_CURVE = 3  # discovery rounds the scanner sees before the migration

pytestmark = [pytest.mark.slow, pytest.mark.virtual_time]


async def test_the_migrating_token_is_tracked_across_its_migration_and_its_pump_signalled(tmp_path: Path) -> None:
    results: dict[str, Any] = {}

    async def inspect(engine: Engine) -> None:
        mint = results["mint"]
        results["signals"] = [s for _, s, _ in await engine.store.signals() if s.mint == mint]
        results["verdicts"] = [(int(r[0]), str(r[1]), str(r[2])) for r in await engine.store.db.execute_fetchall(
            "SELECT checked_at, status, reason FROM gate_verdicts WHERE mint = ? AND gate = 'liquidity' "
            "ORDER BY checked_at", (mint,))]
        view = engine.tokens.get(mint)
        results["view"] = None if view is None else (view.pool, view.member, view.history_done)

    async with DemoWorld(seed=7, n_tokens=20, rpc_endpoints=2) as world:
        assert world.clock is not None
        sim = world.sim
        tok = next(t for t in sim.tokens if t.curve is not None)
        assert tok.curve is not None and tok.migrated_at is not None and tok.safe
        results["mint"] = tok.mint
        pump = next(e for e in sim.planted_events(sim.live_start, sim.live_end) if e.mint == tok.mint)
        assert (pump.kind, pump.pool, pump.eligible) == ("pump", tok.main_pool.address, True)
        assert pump.candle_ts == tok.migrated_at + H4
        # Three rounds on the curve, not the whole 4H of the live period before the migration: each
        # round repeats the same verdict, and the new pool's history is fetched when it is picked.
        start = tok.migrated_at - ROUNDS_ON_CURVE * ROUND_S
        assert start >= sim.live_start - LEAD_S
        world.clock.advance(start - world.clock.now())
        end = pump.candle_ts + H4 + 1800  # the pump's 4H candle has closed: its confirmation is out

        def confirmed(engine: Engine) -> bool:
            return any((s.signal.mint, s.signal.strategy, s.signal.candle_ts) == (tok.mint, "confirmation",
                                                                                   pump.candle_ts)
                       for s in engine.stored)

        stop_when = StopWhen(confirmed, every_s=60.0)
        opts = ScanOptions(demo=True, run_for=end - start, dashboard=False, quiet=True)
        preload(opts, telegram=False)
        log_file = tmp_path / "scan.log"
        settings = world.apply(load_settings()).with_overrides({
            "scan.hot_refresh_s": 60.0, "scan.cold_refresh_s": 120.0, "app.log_file": str(log_file)})
        assert settings.universe.discovery_interval_s == ROUND_S
        assert await scan(settings, opts, world.clock, tmp_path / "migration.db", mode="demo", ready=stop_when,
                          stopped=inspect, stop=stop_when.stop) == 0
        assert stop_when.stopped_at is not None and stop_when.stopped_at < end  # stopped on the confirmation

    curve_reason = "on the pump.fun bonding curve, no pool liquidity yet"
    before = [(t, st, why) for t, st, why in results["verdicts"] if t < tok.migrated_at]
    after = [(t, st, why) for t, st, why in results["verdicts"] if t >= tok.migrated_at]
    assert len(before) >= ROUNDS_ON_CURVE and all((st, why) == ("fail", curve_reason) for _, st, why in before)
    gaps = [b[0] - a[0] for a, b in pairwise(before)]
    assert max(gaps) <= ROUND_S  # looked at every discovery round while on the curve
    assert after and after[0][1] == "pass" and after[0][0] - tok.migrated_at <= ROUND_S
    assert results["view"] == (tok.main_pool.address, True, True)  # in the universe, on its new pool
    by_strategy = {(s.strategy, s.candle_ts): s for s in results["signals"]}
    ignition = by_strategy[("ignition", pump.candle_ts)]
    confirmation = by_strategy[("confirmation", pump.candle_ts)]
    assert ignition.pool == confirmation.pool == tok.main_pool.address
    assert pump.ignite_ts - 300 <= ignition.ts < confirmation.ts  # within the planted ignition bar (it is forming)
    assert not [s for s in results["signals"] if s.candle_ts < tok.migrated_at]  # nothing while on the curve
    log = log_file.read_text()
    assert f"main pool moved from {tok.curve.address} to {tok.main_pool.address}" in log


async def test_a_member_follows_its_main_pool_when_a_deeper_one_appears(tmp_path: Path) -> None:
    """Re-picked at the discovery round: a member's books move to its new main pool (history fetched),
    it stays a member, and while DexScreener's pick is the other pool the pinned one is polled by address."""
    from dexscan.domain import MAIN_QUOTES, Timeframe

    seen: dict[str, Any] = {}
    async with DemoWorld(seed=7, n_tokens=20, rpc_endpoints=1) as world:
        assert world.clock is not None and world.market is not None
        fakes, sim = world.market, world.sim
        tok = next(t for t in sim.tokens if t.safe and t.kind in ("normal", "fizzle") and not t.young
                   and t.curve is None and len(t.pools) >= 2 and t.pools[1].quote_mint in MAIN_QUOTES)
        main, other = tok.pools[0], tok.pools[1]
        start = sim.live_start - LEAD_S
        world.clock.advance(start - world.clock.now())
        switch_after = 900.0  # after the first discovery round and the history of the universe

        async def deeper_pool_appears() -> None:
            import asyncio

            await asyncio.sleep(switch_after)
            now = world.clock.now()
            boosted: dict[str, int] = {}
            records = [r for p in (main, other) if (r := fakes._ds_pair(p, now, boosted)) is not None]
            records[1]["liquidity"]["usd"] = records[0]["liquidity"]["usd"] * 2  # now the deepest
            fakes.fixture_pairs[tok.mint] = records

        def ready(engine: Engine) -> None:
            import asyncio

            seen["task"] = asyncio.get_running_loop().create_task(deeper_pool_appears())

        async def inspect(engine: Engine) -> None:
            view = engine.tokens[tok.mint]
            seen["view"] = (view.pool, view.member, view.history_done)
            seen["moves"] = engine.counters.pool_moves
            seen["bars"] = len(await engine.store.candles(other.address, Timeframe.M5, start - 86_400,
                                                            int(world.clock.now())))

        opts = ScanOptions(demo=True, run_for=switch_after + 900, dashboard=False, quiet=True)
        preload(opts, telegram=False)
        log_file = tmp_path / "scan.log"
        settings = world.apply(load_settings()).with_overrides({
            "scan.hot_refresh_s": 60.0, "scan.cold_refresh_s": 120.0, "app.log_file": str(log_file)})
        assert await scan(settings, opts, world.clock, tmp_path / "move.db", mode="demo", ready=ready,
                          stopped=inspect) == 0
        by_address = fakes.stats("dexscreener").by_route.get("/latest/dex/pairs/{chain}/{pairs}", 0)
    assert seen["view"] == (other.address, True, True)
    assert seen["moves"] == 1 and seen["bars"] > 0  # the new pool's history is in the store
    assert by_address >= 1  # the pinned pool polled by address while DexScreener picked the other one
    log = log_file.read_text()
    assert f"main pool moved from {main.address} to {other.address}" in log
