"""Absurd finite numbers and pairs of no known chain are refused at the parsing edge and counted by
field (issue 17 point 4): a price of 1e300 (duplicate JSON keys, the last one winning) never becomes a
snapshot, so nothing downstream can store, print or alert on it."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from solders.pubkey import Pubkey

from dexscan.demo.market_sim import MarketSim, SimConfig
from dexscan.sources.dexscreener import DEXSCREENER
from dexscan.sources.geckoterminal import GECKOTERMINAL, parse_ohlcv_row
from dexscan.sources.jupiter import JUPITER, parse_price
from dexscan.sources.parse import ParseContext, parse_entries, parse_records
from tests.integration.test_clients import market

#: A mint and a pair the simulated market does not have: only the fixture pairs below are served for it.
MINT = str(Pubkey(bytes([0xA7]) * 32))
PAIR = str(Pubkey(bytes([0xA8]) * 32))


def _pair(i: int) -> str:
    return str(Pubkey(bytes([0xA9, i]) * 16))


@pytest.fixture(scope="module")
def sim() -> MarketSim:
    return MarketSim(SimConfig(seed=7, n_tokens=40))


async def _raw_pairs(url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(url) as resp:
        data = await resp.json()
    assert isinstance(data, list) and data
    return data


async def test_a_price_of_1e300_and_a_pair_without_chain_id_are_refused_and_counted(sim: MarketSim) -> None:
    async with market(sim) as env:
        tok = next(t for t in sim.tokens if sim.listed(t.mint, env.now))
        raw = await _raw_pairs(f"{env.fakes.urls[DEXSCREENER]}/token-pairs/v1/solana/{tok.mint}")
        good = {**raw[0], "pairAddress": PAIR, "baseToken": {**raw[0]["baseToken"], "address": MINT}}
        # Duplicate keys, the last one winning, as a hostile peer sends them: the parser sees 1e300.
        price_1e300 = {**good, **json.loads('{"priceUsd": "1", "priceUsd": 1e300}'), "pairAddress": _pair(1)}
        liquidity_1e300 = {**good, "liquidity": {"usd": 1e300, "base": 1, "quote": 1}, "pairAddress": _pair(2)}
        volume_1e300 = {**good, "volume": {"m5": 1e300}, "pairAddress": _pair(3)}
        no_chain = {k: v for k, v in good.items() if k != "chainId"} | {"pairAddress": _pair(4)}
        env.fakes.fixture_pairs[MINT] = [price_1e300, liquidity_1e300, good, volume_1e300, no_chain]

        pairs = await env.clients.dexscreener.token_pairs(MINT)
        assert [p.pair_address for p in pairs] == [PAIR]
        assert pairs[0].price_usd == float(good["priceUsd"])
        assert dict(env.http.stats()[DEXSCREENER].bad_records) == {
            "priceUsd": 1, "liquidity.usd": 1, "volume.m5": 1, "chainId": 1}


def test_implausible_jupiter_and_ohlcv_values_are_refused(sim: MarketSim) -> None:
    ids = [t.mint for t in sim.tokens[:3]]
    counted: list[str] = []
    ctx = ParseContext(JUPITER, "/price/v3", lambda _p, _e, field: counted.append(field))
    entries = {ids[0]: {"usdPrice": 1.5}, ids[1]: {"usdPrice": 1e300}, ids[2]: {"usdPrice": 2, "liquidity": 1e14}}
    quotes = parse_entries(entries, lambda m, r: parse_price(m, r, ctx), ctx)
    assert list(quotes) == [ids[0]] and counted == ["usdPrice", "liquidity"]

    gctx = ParseContext(GECKOTERMINAL, "/ohlcv", lambda _p, _e, field: counted.append(field))
    rows = [[1_700_000_000, 1, 2, 0.5, 1.5, 10], [1_700_000_300, 1, 1e300, 0.5, 1.5, 10],
            [1_700_000_600, 1, 2, 0.5, 1.5, 1e14]]
    candles = parse_records(rows, lambda r: parse_ohlcv_row(r, gctx), gctx)
    assert [c.ts for c in candles] == [1_700_000_000]
    assert counted[2:] == ["ohlcv_list.high", "ohlcv_list.volume"]
