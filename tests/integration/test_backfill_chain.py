"""``dexscan backfill --source chain`` (issue 13 point 6): a demo pool's 1m/5m bars from its transactions.

The demo world's RPC fake serves the simulated swaps of its pools' history as real-format
``getSignaturesForAddress`` pages and ``getTransaction`` answers (with a failed attempt before every
7th swap); the expected bars are computed here straight from the simulator's swaps.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from solders.pubkey import Pubkey

from dexscan.backfill import BackfillSummary, backfill_from_chain, history_range
from dexscan.chain.answers import SignatureRow
from dexscan.chain.history import chain_backfill
from dexscan.chain.rpc import RpcPool
from dexscan.clock import SimClock
from dexscan.config import load_settings
from dexscan.demo.chain_swaps import raw_amounts, swap_program
from dexscan.demo.market_sim import SOL_USD, SimConfig
from dexscan.demo.world import FAILED_EVERY, DemoWorld
from dexscan.domain import SOL_MINT, Candle, Timeframe
from dexscan.errors import InputError
from dexscan.store import Store

DAYS = 0.1  # the last 4H window of the history (history_range rounds to 4H boundaries)


def _expected_m5(world: DemoWorld, pool: str, start: int, end: int) -> list[Candle]:
    """5m bars from the simulated swaps: each trade priced as the chain states it (raw amounts, SOL
    at Jupiter's SOL/USD), 1m bars opening at the previous close (gaps flat), 5m windows from the
    first fully seen one."""
    sim = world.sim
    p = sim.pool(pool)
    tok = sim.token(p.base_mint)
    minutes: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for swap in sim.swaps(pool, start, end):
        base_raw, quote_raw = raw_amounts(swap, tok.decimals, SOL_USD, 9)
        base = base_raw / 10 ** tok.decimals
        price = (quote_raw / 10 ** 9) / base * SOL_USD
        minutes[int(swap.ts) - int(swap.ts) % 60].append((price, base * price))
    m1: list[Candle] = []
    for m in range(min(minutes), end, 60):
        trades = minutes.get(m, [])
        prev = m1[-1].close if m1 else trades[0][0]
        prices = [prev] + [t[0] for t in trades]
        vol = 0.0
        for t in trades:
            vol += t[1]
        m1.append(Candle(m, prev, max(prices), min(prices), prices[-1], vol))
    out: list[Candle] = []
    for w in range(start, end, 300):
        group = [c for c in m1 if w <= c.ts < w + 300]
        if len(group) == 5:
            out.append(Candle(w, group[0].open, max(c.high for c in group), min(c.low for c in group),
                              group[-1].close, float(sum(c.volume for c in group))))
    return out


@pytest.mark.virtual_time
async def test_chain_backfill_builds_the_simulated_5m_bars_skips_failed_and_reruns_idempotently(
        tmp_path: Path) -> None:
    config = SimConfig(seed=7, n_tokens=12, history_days=3.0, live_days=0.5)
    world = DemoWorld(sim_config=config, stream=False)
    world.start_at = float(world.sim.live_start)
    async with world:
        assert world.clock is not None
        world.serve_chain_history(config.start_ts, world.clock.now())
        start, end = history_range(world.clock.now(), DAYS)
        # the SOL-quoted, streamable main pool with the fewest swaps in the span (a short test)
        candidates = [(len(world.sim.swaps(t.main_pool.address, start, end)), t.mint, t.main_pool.address)
                      for t in world.sim.tokens
                      if t.main_pool.quote_mint == SOL_MINT and swap_program(t.main_pool.dex_id, t.main_pool.labels)
                      and world.sim.pool_open(t.main_pool.address, start)]
        n_swaps, mint, pool = min(c for c in candidates if c[0] > 0)
        settings = world.apply(load_settings())
        store = await Store.open(tmp_path / "chain.db")
        try:
            summary, runner = await chain_backfill(settings, store, world.clock, [mint], start, end, None,
                                                   BackfillSummary("chain", start, end))
            report = summary.tokens[0]
            assert (report.skipped, report.pool, report.pieces_done) == (None, pool, 1)
            assert (summary.start, summary.end) == (start, end)
            m5 = await store.candles(pool, Timeframe.M5, start, end)
            expected = _expected_m5(world, pool, start, end)
            assert len(expected) >= 40
            assert m5 == expected  # exact open/high/low/close/volume: failed attempts counted nothing
            m1 = await store.candles(pool, Timeframe.M1, start, end)
            assert sum(c.volume for c in m1) == pytest.approx(sum(c.volume for c in m5) + sum(
                c.volume for c in m1 if c.ts < m5[0].ts), rel=1e-12)
            archive = world.chain.archive if world.chain is not None else None
            assert archive is not None
            failed = [sig for sig in archive.by_address[pool] if archive.by_signature[sig]["meta"]["err"] is not None
                      and start <= archive.by_signature[sig]["blockTime"] < end]
            assert len(failed) >= n_swaps // FAILED_EVERY > 0  # failed attempts, their events in their logs
            counts = runner.counts[mint]  # every failed one listed and skipped; each swap fetched and counted once
            assert (counts.signatures, counts.failed, counts.transactions, counts.trades, counts.not_found) == (
                n_swaps + len(failed), len(failed), n_swaps, n_swaps, 0)
            # one signatures page (n_swaps + failed < 1000), then one getTransaction per successful swap
            assert summary.requests >= 1 + n_swaps

            # paging: six pages of 50 chained with ``before`` are the first 300 rows, newest first
            async with RpcPool.from_settings(settings, world.clock) as rpc:
                address = Pubkey.from_string(pool)
                full = (await rpc.get_signatures_for_address(address, limit=1000)).value
                paged: list[SignatureRow] = []
                for _ in range(6):
                    paged += (await rpc.get_signatures_for_address(
                        address, limit=50, before=paged[-1].signature if paged else None)).value
                assert len(full) == 1000 and paged == full[:300]
                assert [r.block_time for r in full] == sorted((r.block_time for r in full), reverse=True)
                assert any(r.failed for r in full)

            again = await backfill_from_chain(settings, store, world.clock, [mint], DAYS)
            assert again.requests == 0 and again.bars_written == 0  # covered: nothing fetched
            await store.db.execute("DELETE FROM history_coverage")
            await store.db.commit()
            third = await backfill_from_chain(settings, store, world.clock, [mint], DAYS)
            assert third.tokens[0].skipped is None and third.requests >= 1 + n_swaps
            assert await store.candles(pool, Timeframe.M5, start, end) == expected
            assert await store.candles(pool, Timeframe.M1, start, end) == m1
        finally:
            await store.close()


async def test_chain_backfill_without_an_rpc_endpoint_says_what_to_set(tmp_path: Path) -> None:
    settings = load_settings().with_overrides({"rpc.endpoints": []})
    settings = settings.model_copy(update={"secrets": settings.secrets.model_copy(update={"rpc_urls": []})})
    store = await Store.open(tmp_path / "x.db")
    try:
        with pytest.raises(InputError, match="needs a Solana RPC endpoint: set DEXSCAN_RPC_URLS"):
            await backfill_from_chain(settings, store, SimClock(1_700_000_000.0), [SOL_MINT], 1)
    finally:
        await store.close()

