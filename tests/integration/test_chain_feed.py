"""The on-chain trade feed (dexscan.chain.feed) on the demo world: the simulator's swaps, encoded
with the real layouts and published by the WebSocket fake, arrive as the trades the simulator made;
when the stream is refused or goes silent the feed says so (polling takes over) and counts it; after
a reconnect the gap is filled from the RPC fake (getSignaturesForAddress + getTransaction), each
missed swap exactly once.
Virtual time: timeouts and the demo's publication slices are simulated seconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from dexscan.chain.feed import ChainFeed, program_of
from dexscan.chain.mint import MintInspector
from dexscan.chain.rpc import RpcPool
from dexscan.config import Settings, load_settings
from dexscan.demo.world import DemoWorld
from dexscan.domain import PairSnapshot
from dexscan.sources import HttpLayer, build_clients

pytestmark = pytest.mark.virtual_time


async def until(pred: Callable[[], bool], seconds: float = 300.0) -> None:
    async with asyncio.timeout(seconds):
        while not pred():  # noqa: ASYNC110 - state across client and fake, no event to await
            await asyncio.sleep(0.05)


@asynccontextmanager
async def watching(world: DemoWorld, settings: Settings, mint: str, pool: str,
                   fetch: bool = False) -> AsyncIterator[tuple[ChainFeed, RpcPool, PairSnapshot]]:
    """A feed running on the demo world and streaming ``pool`` (its pair as DexScreener lists it),
    SOL priced by Jupiter, and with ``fetch`` its getTransaction loop; stopped and closed after."""
    assert world.clock is not None and world.chain_ws is not None
    clock, ws = world.clock, world.chain_ws
    http = HttpLayer(settings, clock)
    await http.__aenter__()
    rpc = RpcPool.from_settings(settings, clock)
    try:
        clients = build_clients(settings, http)
        (pair,) = await clients.dexscreener.pairs([pool])
        feed = ChainFeed.from_settings(settings, clock, MintInspector(rpc, settings, clock))
        assert feed is not None
        runner = asyncio.create_task(feed.run())
        helpers = [asyncio.create_task(feed.sol_usd_loop(clients.jupiter))]
        if fetch:
            helpers.append(asyncio.create_task(feed.fetch_loop(rpc)))
        await until(lambda: feed.sol.source == "jupiter")
        assert await feed.watch(mint, pair)
        await until(lambda: ws.active_subscriptions == 1)
        yield feed, rpc, pair
        for task in helpers:
            task.cancel()
        await feed.stream.stop()
        await runner
    finally:
        await rpc.close()
        await http.__aexit__(None, None, None)


def drain(feed: ChainFeed) -> list[Any]:
    """The events the feed has queued so far."""
    events = []
    while not feed.queue.empty():
        events.append(feed.queue.get_nowait())
    return events


async def test_demo_swaps_arrive_as_trades_and_a_dead_stream_is_seen() -> None:
    async with DemoWorld(seed=7, n_tokens=12, rpc_endpoints=1) as world:
        assert world.clock is not None and world.chain_ws is not None
        clock = world.clock
        settings = world.apply(load_settings(env={})).with_overrides({"stream.silence_timeout_s": 20.0,
                                                                       "stream.reconnect_max_s": 4.0})
        sim = world.sim
        now = clock.now()
        tok = next(t for t in sim.tokens if t.listed_at < now - 3600 and t.main_pool.dex_id in ("raydium", "orca",
                                                                                                "pumpswap")
                   and sim.pool_open(t.main_pool.address, now))
        pool = tok.main_pool.address
        async with watching(world, settings, tok.mint, pool) as (feed, rpc, pair):
            assert program_of(pair) is not None
            assert feed.pools[pool].base_decimals == tok.decimals
            start = clock.now() + 2.0
            start -= start % 2.0  # the first publication slice wholly after the subscription
            await clock.sleep(start + 180.0 - clock.now())
            events = drain(feed)
            trades = [t for t in feed.trades(events) if t.block_time >= start]
            want = [s for s in sim.swaps(pool, start, start + 178.0)]
            assert len(want) >= 3
            got = {t.signature: t for t in trades}
            assert [s.signature for s in want] == [s for s in got if s in {w.signature for w in want}]
            for s in want:
                t = got[s.signature]
                assert (t.side, t.pool, t.mint) == (s.side, pool, tok.mint)
                assert t.price_usd == pytest.approx(s.price_usd, rel=1e-6)
                assert t.volume_usd == pytest.approx(s.volume_usd, rel=1e-6)
            assert feed.up() and feed.streaming(tok.mint) and feed.counts["resumed"] == 1
            assert feed.status().state == "stream"

            assert not feed.reconnected()  # the first connection is not a reconnect
            last_seen = trades[-1].signature
            world.chain_ws.refuse = True  # the provider drops us and will not take us back for a while
            await world.chain_ws.disconnect_all()
            await clock.sleep(180.0)  # the heartbeat tells "up" at once after: a gap long enough to hold swaps
            assert not feed.streaming(tok.mint) and feed.counts["fallbacks"] == 1
            assert feed.status().cell().startswith("polling")
            world.chain_ws.refuse = False
            await until(lambda: feed.up())
            assert feed.counts["resumed"] == 2 and feed.stream.stats.counts["resubscribes"] >= 1
            assert feed.reconnected() and not feed.reconnected()

            # the gap: every swap after the last one delivered, from getSignaturesForAddress + getTransaction
            await clock.sleep(0.5)
            end = clock.now() - clock.now() % 2.0
            gap = await feed.fill_gaps(rpc, 500)
            events = drain(feed)
            after = feed.trades(events)
            swaps = sim.swaps(pool, start, end)
            missed = swaps[[s.signature for s in swaps].index(last_seen) + 1:]
            assert len(gap) >= 3 and feed.counts["gap_transactions"] >= len(gap)
            assert sorted(t.signature for t in gap + after) == sorted(s.signature for s in missed)
            by_sig = {s.signature: s for s in missed}
            for t in gap:  # a transaction states its block time: the swap's own second
                s = by_sig[t.signature]
                assert (t.block_time, t.side) == (int(s.ts), s.side)
                assert t.price_usd == pytest.approx(s.price_usd, rel=1e-6)
            assert feed.counts["duplicate_trades"] == len(events) - len(after)
            assert await feed.fill_gaps(rpc, 0) == []  # nothing new since; a zero budget fetches nothing

            world.chain_ws.silent = True  # connected, acknowledged, never a notification
            await clock.sleep(25.0)
            assert not feed.up() and feed.counts["fallbacks"] == 2
            assert feed.sol.value(clock.now()) == 150.0
            assert feed.counts["trades"] == len(trades) + len(gap) + len(after)


@pytest.mark.parametrize("per_minute", [600, 2])
async def test_dlmm_swaps_are_fetched_with_get_transaction_within_the_budget(per_minute: int) -> None:
    """A Meteora DLMM pool's notifications carry no event (its Swap is a self-CPI): each is fetched with
    getTransaction from the RPC fake (inner instructions, base58, as mainnet answers) and decoded into the
    trade the simulator made, block time included. Over the per-minute budget the rest are skipped, counted."""
    async with DemoWorld(seed=7, n_tokens=12, rpc_endpoints=1) as world:
        assert world.clock is not None and world.chain_ws is not None
        clock = world.clock
        settings = world.apply(load_settings(env={})).with_overrides(
            {"stream.dlmm_transactions_per_minute": per_minute})
        sim = world.sim
        now = clock.now()
        tok, p = next((t, p) for t in sim.tokens for p in t.pools
                      if p.dex_id == "meteora" and t.listed_at < now - 3600 and sim.pool_open(p.address, now)
                      and p.quote_mint in ("So11111111111111111111111111111111111111112",
                                           "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")
                      and len(sim.swaps(p.address, now, now + 600)) >= 6)
        pool = p.address
        async with watching(world, settings, tok.mint, pool, fetch=True) as (feed, _, pair):
            assert program_of(pair) == "meteora_dlmm"
            start = clock.now() + 2.0
            start -= start % 2.0
            await clock.sleep(start + 600.0 - clock.now())
            events = drain(feed)
            trades = [t for t in feed.trades(events) if t.block_time >= start]
            want = sim.swaps(pool, start, start + 598.0)
            c = feed.counts
            assert feed.stream.stats.counts["fetch_requests"] >= len(want) >= 6
            if per_minute == 600:  # every swap fetched and decoded exactly
                got = {t.signature: t for t in trades}
                assert [s.signature for s in want] == [s for s in got if s in {w.signature for w in want}]
                for s in want:
                    t = got[s.signature]
                    assert (t.side, t.pool, t.mint, t.program, t.block_time) == (s.side, pool, tok.mint,
                                                                                 "meteora_dlmm", int(s.ts))
                    assert t.price_usd == pytest.approx(s.price_usd, rel=1e-6)
                    assert t.volume_usd == pytest.approx(s.volume_usd, rel=1e-6)
                assert c["dlmm_skipped_budget"] == 0
            else:  # two a minute: the rest counted, nothing invented
                fetched, requested = c["dlmm_transactions"], feed.stream.stats.counts["fetch_requests"]
                assert fetched <= 2 * 11 and fetched + c["dlmm_skipped_budget"] == requested
                assert c["dlmm_skipped_budget"] > 0
                sigs = {s.signature for s in sim.swaps(pool, start - 60, start + 600)}
                assert all(t.signature in sigs for t in trades)
            assert feed.streaming(tok.mint)


async def test_a_raydium_v4_init_is_fetched_and_its_token_discovered_within_the_budget() -> None:
    """A Raydium AMM v4 pool's creation reaches the feed's program subscription as a ray_log Init that
    names neither pool nor mint; its transaction is fetched from the RPC fake (getTransaction, its
    initialize2 at the top level) and the Init, now naming pool and token, comes back as a discovery.
    With one fetch a minute a second Init at once is skipped and counted; later, a transaction the
    node does not serve and one without initialize2 are counted too, each outcome exactly once."""
    from dataclasses import replace

    from dexscan.chain.events import PROGRAM_IDS
    from dexscan.demo.chain_swaps import raydium_init_transaction
    from dexscan.domain import DiscoveredToken

    async with DemoWorld(seed=7, n_tokens=12, rpc_endpoints=1) as world:
        assert world.clock is not None and world.chain_ws is not None and world.chain is not None
        clock = world.clock
        settings = world.apply(load_settings(env={})).with_overrides(
            {"stream.discovery_programs": ["raydium_amm_v4"], "stream.raydium_init_transactions_per_minute": 1})
        sol = "So11111111111111111111111111111111111111112"
        first, second, third, fourth = [t for t in world.sim.tokens if t.main_pool.quote_mint == sol][:4]
        rpc = RpcPool.from_settings(settings, clock)
        try:
            feed = ChainFeed.from_settings(settings, clock)
            assert feed is not None
            runner = asyncio.create_task(feed.run())
            fetcher = asyncio.create_task(feed.fetch_loop(rpc))
            await until(lambda: world.chain_ws is not None and world.chain_ws.active_subscriptions == 1)
            assert PROGRAM_IDS["raydium_amm_v4"] in world.chain_ws.subscribed

            async def discovered(n_events: int) -> list[DiscoveredToken]:
                out: list[DiscoveredToken] = []
                for _ in range(n_events):
                    out += feed.discoveries(await asyncio.wait_for(feed.next_events(), 30.0))
                return out

            launch = world.launch(first.main_pool.address, clock.now())
            assert await world.publish_raydium_init(launch) == 1
            assert await world.publish_raydium_init(world.launch(second.main_pool.address, clock.now())) == 1
            at = clock.now()
            # the two log Inits (one batch or two), then the fetched one with its mint
            got: list[DiscoveredToken] = []
            while not got:
                got = await discovered(1)
            assert got == [DiscoveredToken(first.mint, "chain:raydium_amm_v4")]
            assert clock.now() - at < 5.0
            c = feed.counts
            assert (c["raydium_init_transactions"], c["raydium_init_skipped_budget"], c["pools_created"]) == (1, 1, 1)

            await clock.sleep(61.0)  # a new minute's fetch each
            unserved = world.launch(third.main_pool.address, clock.now())
            logs, keys, _ = raydium_init_transaction(unserved)
            await world.chain_ws.publish(unserved.signature, unserved.slot, logs, keys)  # not in the archive
            assert await discovered(1) == []
            await until(lambda: feed.counts["raydium_init_not_found"] == 1)
            await clock.sleep(61.0)
            bare = replace(world.launch(fourth.main_pool.address, clock.now()), ts=int(clock.now()) + 1)
            logs, keys, _ = raydium_init_transaction(bare)
            world.chain.archive.record(bare.signature, bare.slot, bare.ts, logs, keys)  # no instructions
            await world.chain_ws.publish(bare.signature, bare.slot, logs, keys)
            assert await discovered(1) == []
            await until(lambda: feed.counts["raydium_init_no_initialize2"] == 1)
            assert {k: v for k, v in feed.counts.items() if k.startswith("raydium_init_")} == {
                "raydium_init_transactions": 2, "raydium_init_skipped_budget": 1, "raydium_init_not_found": 1,
                "raydium_init_no_initialize2": 1}
            assert feed.counts["pools_created"] == 1 and feed.counts.get("pool_events_without_mint", 0) == 0
            fetcher.cancel()
            await feed.stream.stop()
            await runner
        finally:
            await rpc.close()
