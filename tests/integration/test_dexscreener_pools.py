"""Pools per token, the main-pool rule and one gate input for the scanner and ``dexscan check``
(issue 12, point 1), against the DexScreener fake that behaves like the real API:
``/tokens/v1`` answers one picked pair per token, ``/token-pairs/v1`` all of a token's pools
(``reference/external-apis.md`` §3.2)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from dexscan.chain.mint import MintInspector
from dexscan.chain.rpc import RpcPool
from dexscan.check import as_json, check_mints
from dexscan.clock import SimClock
from dexscan.config import Settings, load_settings
from dexscan.demo.market_sim import MarketSim, SimConfig
from dexscan.demo.servers.fake_chain import FakeChain
from dexscan.demo.servers.market import MarketFakes
from dexscan.demo.servers.rpc import RpcFakeServer
from dexscan.domain import SOL_MINT, USD1_MINT, main_pool
from dexscan.sources import HttpLayer, build_clients
from dexscan.universe import Universe

#: Made-up pool addresses (base58) of the recorded pairs below.
SOL_POOL = "SoLPooLAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
USD1_POOL = "USD1PooLBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
QUOTE_SIDE_POOL = "QuotePooLCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"
CURVE = "CurvePumpfunDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD"
OTHER = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"


def record(address: str, base: str, quote: str, quote_symbol: str, volume_h24: float,
           liquidity_usd: float | None, dex: str = "raydium", created: bool = True) -> dict[str, Any]:
    """A DexScreener ``Pair`` as the real API writes it (prices as strings, times in ms)."""
    pair: dict[str, Any] = {
        "chainId": "solana", "dexId": dex, "url": f"https://dexscreener.com/solana/{address.lower()}",
        "pairAddress": address,
        "baseToken": {"address": base, "name": "Sixty", "symbol": "SIXTY"},
        "quoteToken": {"address": quote, "name": quote_symbol, "symbol": quote_symbol},
        "priceNative": "0.00001", "priceUsd": "0.0015",
        "txns": {"m5": {"buys": 3, "sells": 2}, "h1": {"buys": 30, "sells": 20}, "h24": {"buys": 700, "sells": 500}},
        "volume": {"h24": volume_h24, "h6": volume_h24 / 4, "h1": volume_h24 / 24, "m5": volume_h24 / 288},
        "priceChange": {"m5": 0.1, "h1": 1.0, "h6": 2.0, "h24": 3.0},
        "liquidity": None if liquidity_usd is None else {"usd": liquidity_usd, "base": 1_000_000, "quote": 100},
        "fdv": 1_500_000,
    }
    if created:
        pair["pairCreatedAt"] = 1_765_000_000_000
    return pair


@dataclass
class World:
    sim: MarketSim
    clock: SimClock
    fakes: MarketFakes
    chain: FakeChain
    settings: Settings


@pytest.fixture(scope="module")
def small_sim() -> MarketSim:
    return MarketSim(SimConfig(seed=7, n_tokens=20))


@contextlib.asynccontextmanager
async def world(sim: MarketSim, at: float) -> AsyncIterator[World]:
    clock = SimClock(at)
    chain = FakeChain()
    async with MarketFakes(sim, clock) as fakes, RpcFakeServer(chain, name="full", clock=clock) as rpc:
        settings = load_settings(env={}).with_overrides({**fakes.settings_overrides(), "rpc.endpoints": [rpc.url]})
        yield World(sim, clock, fakes, chain, settings)


async def test_check_sums_volume_over_the_three_pools_not_the_picked_pair(small_sim: MarketSim) -> None:
    async with world(small_sim, small_sim.live_start + 1830) as w:
        mint = w.chain.create_mint(b"sixty-k", holders=(700, 300))
        w.fakes.fixture_pairs[mint] = [
            record(SOL_POOL, mint, SOL_MINT, "SOL", 60_000.0, 80_000.0),  # DexScreener's pick (deepest)
            record(USD1_POOL, mint, USD1_MINT, "USD1", 50_000.0, 30_000.0, dex="meteora", created=False),
            record(QUOTE_SIDE_POOL, OTHER, mint, "SIXTY", 40_000.0, 20_000.0, dex="orca"),  # the token is the quote
        ]
        async with HttpLayer(w.settings, w.clock) as http:
            picked = await build_clients(w.settings, http).dexscreener.pairs_for_tokens([mint])
        assert [(p.pair_address, p.volume.h24) for p in picked] == [(SOL_POOL, 60_000.0)]  # one pair per token
        report = as_json(await check_mints(w.settings, [mint], w.clock))
    (entry,) = report["mints"]
    verdicts = {v["gate"]: (v["status"], v["reason"]) for v in entry["verdicts"]}
    assert verdicts["volume_24h"] == ("pass", "24h volume $150,000 >= $100,000 over 3 pools")
    assert verdicts["liquidity"] == ("pass", "liquidity $80,000 >= $50,000")
    details = {v["gate"]: v["details"] for v in entry["verdicts"]}
    assert details["liquidity"]["pair"] == SOL_POOL and details["volume_24h"]["volume_24h_usd"] == 150_000.0
    assert verdicts["price_impact"] == ("pass", "price impact of a $500 buy 1.23% < 2.00%")
    assert entry["admitted"] is True and entry["pools"] == 3
    assert report["market"] == "DexScreener: 3 pools"


async def test_the_scanner_and_check_judge_one_gate_input(small_sim: MarketSim) -> None:
    async with world(small_sim, small_sim.live_start + 1830) as w:
        mint = w.chain.create_mint(b"one-path", holders=(700, 300))
        w.fakes.fixture_pairs[mint] = [
            record(SOL_POOL, mint, SOL_MINT, "SOL", 60_000.0, 80_000.0),
            record(QUOTE_SIDE_POOL, OTHER, mint, "SIXTY", 30_000.0, 20_000.0, dex="orca"),
        ]
        checked = {v["gate"]: (v["status"], v["reason"]) for v in
                   as_json(await check_mints(w.settings, [mint], w.clock))["mints"][0]["verdicts"]}
        async with HttpLayer(w.settings, w.clock) as http, RpcPool.from_settings(w.settings, w.clock) as rpc:
            uni = Universe(w.settings, None, build_clients(w.settings, http), MintInspector(rpc, w.settings, w.clock),
                           w.clock)
            scanned = {v.gate: (v.status.value, v.reason) for v in (await uni.check([mint]))[mint]}
            assert [p.pair_address for p in uni.pairs(mint)] == [SOL_POOL, QUOTE_SIDE_POOL]
            assert uni.main_pool(mint) is not None and uni.main_pool(mint).pair_address == SOL_POOL  # type: ignore[union-attr]
    mine = {g: checked[g] for g in ("liquidity", "volume_24h", "price_impact", "mint_authority", "freeze_authority")}
    assert {g: scanned[g] for g in mine} == mine
    assert checked["volume_24h"] == ("fail", "24h volume $90,000 < $100,000 over 2 pools")  # the quote side counts


async def test_a_bonding_curve_token_is_out_with_a_reason_that_says_so(small_sim: MarketSim) -> None:
    async with world(small_sim, small_sim.live_start + 1830) as w:
        mint = w.chain.create_mint(b"on-the-curve", holders=(700, 300))
        w.fakes.fixture_pairs[mint] = [record(CURVE, mint, SOL_MINT, "SOL", 240_000.0, None, dex="pumpfun")]
        report = as_json(await check_mints(w.settings, [mint], w.clock))
    verdicts = {v["gate"]: (v["status"], v["reason"]) for v in report["mints"][0]["verdicts"]}
    assert verdicts["liquidity"] == ("fail", "on the pump.fun bonding curve, no pool liquidity yet")
    assert verdicts["price_impact"] == ("fail", "on the pump.fun bonding curve, no pool liquidity yet")
    assert verdicts["volume_24h"] == ("pass", "24h volume $240,000 >= $100,000 over 1 pool")


async def test_the_fake_picks_one_pair_and_lists_every_pool(small_sim: MarketSim) -> None:
    sim = small_sim
    quoted = next(p for t in sim.tokens for p in t.pools if sim.has_token(p.quote_mint) and not t.young)
    tok, quote_tok = sim.token(quoted.base_mint), sim.token(quoted.quote_mint)
    usd1 = next(p for t in sim.tokens for p in t.pools if p.quote_mint == USD1_MINT and not t.young)
    async with world(sim, sim.live_start + 1830) as w, HttpLayer(w.settings, w.clock) as http:
        ds = build_clients(w.settings, http).dexscreener
        picked = await ds.pairs_for_tokens([tok.mint, quote_tok.mint])
        pools = await ds.pools_for_tokens([quote_tok.mint, usd1.base_mint])
    assert [p.pair_address for p in picked] == [tok.main_pool.address, quote_tok.main_pool.address]
    assert quoted.address in {p.pair_address for p in pools[quote_tok.mint]}  # listed where it is the quote
    assert [p.pair_address for p in pools[quote_tok.mint]] == [p.address for p in sim.pools_with(quote_tok.mint)
                                                               if sim.pool_open(p.address, w.clock.now())]
    got = next(p for p in pools[usd1.base_mint] if p.pair_address == usd1.address)
    assert (got.quote_symbol, got.pair_created_at) == ("USD1", None)  # USD1 pairs come without pairCreatedAt
    stats = sim.pair_stats(usd1.address, w.clock.now())
    assert stats is not None and got.liquidity_usd == round(stats.liquidity_usd, 2)
    assert main_pool(pools[usd1.base_mint], usd1.base_mint) is not None


async def test_the_migrating_token_is_out_on_its_curve_then_in_on_pumpswap(small_sim: MarketSim) -> None:
    sim = small_sim
    tok = next(t for t in sim.tokens if t.curve is not None)
    assert tok.curve is not None and tok.migrated_at is not None
    before, after = tok.migrated_at - 1200, tok.migrated_at + 600
    async with world(sim, before) as w:
        chain = await _sim_chain(sim)
        async with RpcFakeServer(chain, name="sim", clock=w.clock) as rpc:
            settings = w.settings.with_overrides({"rpc.endpoints": [rpc.url]})
            async with HttpLayer(settings, w.clock) as http, RpcPool.from_settings(settings, w.clock) as pool:
                clients = build_clients(settings, http)
                assert [(p.pair_address, p.dex_id, p.liquidity_usd) for p in
                        await clients.dexscreener.pairs_for_tokens([tok.mint])] == [
                    (tok.curve.address, "pumpfun", None)]  # DexScreener's pick before the migration
                uni = Universe(settings, None, clients, MintInspector(pool, settings, w.clock), w.clock)
                first = await uni.refresh(watch=[tok.mint], discover=False, now=int(before))
                change = first.changes[tok.mint]
                assert (change.action, change.reason) == (
                    "rejected", "liquidity fail: on the pump.fun bonding curve, no pool liquidity yet")
                assert change.next_check_at == int(before) + 600  # looked at again every round
                w.clock.advance(after - before)
                second = await uni.refresh(discover=False, now=int(after))
                assert second.entered and second.entered[0].pool == tok.main_pool.address
                assert second.moved == {tok.mint: (tok.curve.address, tok.main_pool.address)}
                assert [p.pair_address for p in await clients.dexscreener.pairs_for_tokens([tok.mint])] == [
                    tok.main_pool.address]  # the pick moved with it
                vol = next(v for v in second.verdicts[tok.mint] if v.gate == "volume_24h")
                curve_h24 = sim.pair_stats(tok.curve.address, after)
                main_h24 = sim.pair_stats(tok.main_pool.address, after)
                assert curve_h24 is not None and main_h24 is not None
                assert vol.details["volume_24h_usd"] == pytest.approx(
                    round(curve_h24.volume.h24 or 0, 2) + round(main_h24.volume.h24 or 0, 2), abs=0.01)


async def _sim_chain(sim: MarketSim) -> FakeChain:
    import asyncio

    return await asyncio.to_thread(FakeChain.from_sim, sim)
