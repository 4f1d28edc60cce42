"""The market-data fakes over real HTTP: contracts, paging, rate limits and every fault switch."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from solders.pubkey import Pubkey

from dexscan.clock import SimClock
from dexscan.config import load_settings
from dexscan.demo.market_sim import MarketSim, SimConfig, SimToken
from dexscan.demo.servers.market import MarketFakes
from dexscan.domain import SOL_MINT, USDC_MINT, Timeframe

UNKNOWN_MINT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"


@pytest.fixture(scope="module")
def sim() -> MarketSim:
    return MarketSim(SimConfig())


@pytest.fixture
def clock(sim: MarketSim) -> SimClock:
    return SimClock(sim.live_start + 1830)


@pytest.fixture
async def fakes(sim: MarketSim, clock: SimClock) -> AsyncIterator[MarketFakes]:
    async with MarketFakes(sim, clock) as f:
        yield f


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _get(http: aiohttp.ClientSession, url: str, **params: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with http.get(url, params=params or None) as resp:
        text = await resp.text()
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        return resp.status, body, resp


def _tok(sim: MarketSim, pred: Any) -> SimToken:
    return next(t for t in sim.tokens if pred(t))


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


# ---------------------------------------------------------------------------------------------
# Wiring
# ---------------------------------------------------------------------------------------------


async def test_urls_and_settings_overrides(fakes: MarketFakes) -> None:
    assert set(fakes.urls) == {"jupiter", "dexscreener", "geckoterminal", "birdeye"}
    assert fakes.urls["geckoterminal"].endswith("/api/v2")
    assert len({u.split("/")[2] for u in fakes.urls.values()}) == 4  # one port each, all on 127.0.0.1
    assert all(u.startswith("http://127.0.0.1:") for u in fakes.urls.values())
    settings = load_settings(env={}).with_overrides(fakes.settings_overrides())
    assert settings.sources.jupiter.base_url == fakes.urls["jupiter"]
    assert settings.sources.geckoterminal.base_url == fakes.urls["geckoterminal"]
    assert settings.sources.dexscreener.base_url == fakes.urls["dexscreener"]
    assert settings.sources.birdeye.base_url == fakes.urls["birdeye"]


# ---------------------------------------------------------------------------------------------
# Jupiter
# ---------------------------------------------------------------------------------------------


async def test_jupiter_search_batch(fakes: MarketFakes, sim: MarketSim, clock: SimClock,
                                    http: aiohttp.ClientSession) -> None:
    normal = _tok(sim, lambda t: t.safe and not t.young and t.kind == "pump")
    young = _tok(sim, lambda t: t.young)
    mint_auth = _tok(sim, lambda t: t.mint_authority)
    fee = _tok(sim, lambda t: t.token2022)
    query = ",".join([normal.mint, UNKNOWN_MINT, young.mint, mint_auth.mint, fee.mint, SOL_MINT])
    status, body, resp = await _get(http, fakes.urls["jupiter"] + "/tokens/v2/search", query=query)
    assert status == 200 and isinstance(body, list)
    assert [r["id"] for r in body] == [normal.mint, young.mint, mint_auth.mint, fee.mint, SOL_MINT]
    assert int(resp.headers["x-ratelimit-remaining"]) == 29 and resp.headers["x-ratelimit-current"] == "1"
    assert int(resp.headers["x-ratelimit-reset"]) == math.ceil(clock.now() + 60)
    assert resp.headers["x-api-gateway-request-id"]
    rec = body[0]
    info = sim.token_info(normal.mint, clock.now())
    assert info is not None
    assert rec["name"] == normal.name and rec["symbol"] == normal.symbol and rec["decimals"] == normal.decimals
    assert rec["usdPrice"] == info.usd_price and rec["tokenProgram"] == "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
    assert rec["organicScoreLabel"] in ("high", "medium", "low") and _is_num(rec["organicScore"])
    assert rec["firstPool"] == {"id": normal.main_pool.address, "createdAt": rec["firstPool"]["createdAt"]}
    assert rec["firstPool"]["createdAt"].endswith("Z") and rec["createdAt"].endswith("Z")
    assert rec["audit"]["mintAuthorityDisabled"] is True and rec["audit"]["freezeAuthorityDisabled"] is True
    assert "isSus" not in rec["audit"] and "mintAuthority" not in rec
    assert 0 <= rec["audit"]["topHoldersPercentage"] <= 100
    assert set(rec) >= {"stats5m", "stats1h", "stats6h", "stats24h", "holderCount", "liquidity", "fdv", "mcap"}
    stats = rec["stats1h"]
    assert set(stats) == {"priceChange", "holderChange", "liquidityChange", "volumeChange", "buyVolume",
                          "sellVolume", "buyOrganicVolume", "sellOrganicVolume", "numBuys", "numSells",
                          "numTraders", "numOrganicBuyers", "numNetBuyers"}
    assert "volume" not in stats and isinstance(stats["numBuys"], int)
    # young tokens omit the optional blocks
    assert not {"audit", "stats6h", "stats24h", "isVerified", "tags", "icon", "twitter"} & set(body[1])
    assert body[2]["mintAuthority"] == mint_auth.dev and body[2]["audit"]["mintAuthorityDisabled"] is False
    assert body[2]["audit"]["isSus"] is True
    assert body[3]["tokenProgram"] == "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"


async def test_jupiter_search_text_tag_top_recent(fakes: MarketFakes, sim: MarketSim, clock: SimClock,
                                                  http: aiohttp.ClientSession) -> None:
    base = fakes.urls["jupiter"]
    status, body, _ = await _get(http, base + "/tokens/v2/search", query=sim.tokens[4].symbol.lower())
    assert status == 200 and sim.tokens[4].mint in [r["id"] for r in body]
    status, body, _ = await _get(http, base + "/tokens/v2/toptrending/1h", limit=5)
    assert status == 200 and len(body) == 5
    assert [r["id"] for r in body] == sim.discovery("toptrending", "1h", clock.now(), 5)
    status, body, _ = await _get(http, base + "/tokens/v2/recent")
    assert status == 200 and [r["id"] for r in body] == sim.recent(clock.now())
    status, body, _ = await _get(http, base + "/tokens/v2/tag", query="verified")
    verified = {t.mint for t in sim.tokens if sim.is_verified(t.mint, clock.now())}
    assert status == 200 and {r["id"] for r in body} == verified | {SOL_MINT, USDC_MINT}
    assert all(r["isVerified"] is True for r in body)
    for path, params in (("/tokens/v2/topgainers/1h", {}), ("/tokens/v2/toptraded/2h", {}),
                         ("/tokens/v2/toptraded/1h", {"limit": 101}), ("/tokens/v2/search", {}),
                         ("/tokens/v2/tag", {"query": "memes"})):
        status, body, _ = await _get(http, base + path, **params)
        assert status == 400 and isinstance(body["error"], str), path


def _addresses(n: int) -> list[str]:
    return [str(Pubkey.from_bytes(hashlib.sha256(f"unknown-{i}".encode()).digest())) for i in range(n)]


async def test_jupiter_batch_limits(fakes: MarketFakes, sim: MarketSim, http: aiohttp.ClientSession) -> None:
    search = fakes.urls["jupiter"] + "/tokens/v2/search"
    status, body, _ = await _get(http, search, query=",".join([*_addresses(99), sim.tokens[0].mint]))
    assert status == 200 and [r["id"] for r in body] == [sim.tokens[0].mint]
    status, body, _ = await _get(http, search, query=",".join(_addresses(101)))
    assert status == 400 and "at most 100" in body["error"]
    status, body, _ = await _get(http, fakes.urls["jupiter"] + "/price/v3", ids=",".join(_addresses(50)))
    assert (status, body) == (200, {})
    status, body, _ = await _get(http, fakes.urls["jupiter"] + "/price/v3", ids=",".join(_addresses(51)))
    assert status == 400 and "at most 50" in body["error"]


async def test_price_v3_omits_unknown_and_unlisted(fakes: MarketFakes, sim: MarketSim, clock: SimClock,
                                                   http: aiohttp.ClientSession) -> None:
    tok = sim.tokens[2]
    young = _tok(sim, lambda t: t.young)
    clock.advance(young.listed_at - 60 - clock.now())  # just before the young token's first pool
    status, body, _ = await _get(http, fakes.urls["jupiter"] + "/price/v3",
                                 ids=f"{tok.mint},{UNKNOWN_MINT},{young.mint},{USDC_MINT}")
    assert status == 200 and set(body) == {tok.mint, USDC_MINT}
    entry = body[tok.mint]
    assert set(entry) == {"usdPrice", "decimals", "blockId", "priceChange24h", "createdAt", "liquidity"}
    assert entry["usdPrice"] == sim.token_price(tok.mint, clock.now())
    assert isinstance(entry["blockId"], int) and entry["decimals"] == tok.decimals
    assert body[USDC_MINT]["usdPrice"] == 1.0


# ---------------------------------------------------------------------------------------------
# DexScreener
# ---------------------------------------------------------------------------------------------


def _check_pair(pair: dict[str, Any]) -> None:
    assert pair["chainId"] == "solana" and pair["dexId"] in ("raydium", "pumpswap", "meteora", "orca")
    assert pair["url"] == f"https://dexscreener.com/solana/{pair['pairAddress'].lower()}"
    assert set(pair["baseToken"]) == {"address", "name", "symbol"} == set(pair["quoteToken"])
    assert isinstance(pair["priceNative"], str) and isinstance(pair["priceUsd"], str)
    assert "e" not in pair["priceUsd"].lower() and float(pair["priceUsd"]) > 0
    assert set(pair["txns"]) == {"m5", "h1", "h6", "h24"}
    assert all(set(v) == {"buys", "sells"} and isinstance(v["buys"], int) for v in pair["txns"].values())
    assert set(pair["volume"]) == {"m5", "h1", "h6", "h24"} and all(_is_num(v) for v in pair["volume"].values())
    assert all(_is_num(v) for v in pair["priceChange"].values())
    assert _is_num(pair["liquidity"]["base"]) and _is_num(pair["liquidity"]["quote"])
    assert isinstance(pair["pairCreatedAt"], int) and pair["pairCreatedAt"] > 10**12  # milliseconds


async def test_dexscreener_pairs_routes(fakes: MarketFakes, sim: MarketSim, clock: SimClock,
                                        http: aiohttp.ClientSession) -> None:
    base = fakes.urls["dexscreener"]
    quoted = next(p for t in sim.tokens for p in t.pools if sim.has_token(p.quote_mint))
    quote_tok = sim.token(quoted.quote_mint)
    tok = sim.token(quoted.base_mint)
    status, body, _ = await _get(http, f"{base}/latest/dex/tokens/{tok.mint},{UNKNOWN_MINT}")
    assert status == 200 and body["schemaVersion"] == "1.0.0"
    assert [p["pairAddress"] for p in body["pairs"]] == [
        p.address for p in sim.pools_with(tok.mint) if sim.pool_open(p.address, clock.now())]
    for pair in body["pairs"]:
        _check_pair(pair)
    main = body["pairs"][0]
    stats = sim.pair_stats(tok.main_pool.address, clock.now())
    assert stats is not None
    assert math.isclose(float(main["priceUsd"]), stats.price_usd, rel_tol=1e-7)
    assert main["liquidity"]["usd"] == round(stats.liquidity_usd, 2) and main["volume"]["h24"] == round(
        stats.volume.h24 or 0, 2)
    assert main["pairCreatedAt"] == tok.main_pool.created_at * 1000
    assert main["marketCap"] == round(stats.market_cap) and main["fdv"] == round(stats.fdv)
    exotic = next(p for p in body["pairs"] if p["pairAddress"] == quoted.address)
    assert exotic["quoteToken"]["address"] == quote_tok.mint
    assert "usd" not in exotic["liquidity"] and "marketCap" not in exotic
    # the quote token lists the pool too (DexScreener includes pools where a token is the quote)
    status, body, _ = await _get(http, f"{base}/token-pairs/v1/solana/{quote_tok.mint}")
    assert status == 200 and quoted.address in [p["pairAddress"] for p in body]
    status, body, _ = await _get(http, f"{base}/tokens/v1/solana/{tok.mint}")
    assert status == 200 and isinstance(body, list) and body[0]["baseToken"]["address"] == tok.mint
    status, body, _ = await _get(http, f"{base}/latest/dex/pairs/solana/{tok.main_pool.address}")
    assert status == 200 and body["pair"]["pairAddress"] == tok.main_pool.address and len(body["pairs"]) == 1
    status, body, _ = await _get(http, f"{base}/latest/dex/search", q=tok.symbol)
    assert status == 200 and tok.main_pool.address in [p["pairAddress"] for p in body["pairs"]]


async def test_dexscreener_unknown_and_limits(fakes: MarketFakes, sim: MarketSim, http: aiohttp.ClientSession) -> None:
    base = fakes.urls["dexscreener"]
    status, body, _ = await _get(http, f"{base}/latest/dex/tokens/{UNKNOWN_MINT}")
    assert (status, body) == (200, {"schemaVersion": "1.0.0", "pairs": None})
    status, body, _ = await _get(http, f"{base}/tokens/v1/solana/{UNKNOWN_MINT}")
    assert (status, body) == (200, [])
    status, body, _ = await _get(http, f"{base}/latest/dex/pairs/solana/{UNKNOWN_MINT}")
    assert (status, body) == (200, {"schemaVersion": "1.0.0", "pairs": None, "pair": None})
    many = ",".join(t.mint for t in sim.tokens) + "," + ",".join(f"{UNKNOWN_MINT[:-2]}{a}{b}"
                                                                   for a in "AB" for b in "CDEFGH")
    status, body, _ = await _get(http, f"{base}/tokens/v1/solana/{many}")
    assert status == 400 and "at most 30" in body["error"]


async def test_dexscreener_profiles_and_boosts(fakes: MarketFakes, sim: MarketSim, clock: SimClock,
                                               http: aiohttp.ClientSession) -> None:
    base = fakes.urls["dexscreener"]
    status, body, _ = await _get(http, f"{base}/token-profiles/latest/v1")
    assert status == 200 and [p["tokenAddress"] for p in body] == sim.profiles(clock.now())
    assert set(body[0]) == {"url", "chainId", "tokenAddress", "icon", "header", "description", "links"}
    status, body, _ = await _get(http, f"{base}/token-boosts/top/v1")
    assert status == 200 and [b["totalAmount"] for b in body] == sorted((b["totalAmount"] for b in body),
                                                                         reverse=True)
    assert all(_is_num(b["amount"]) and b["chainId"] == "solana" for b in body)
    status, body, _ = await _get(http, f"{base}/token-boosts/latest/v1")
    assert status == 200 and {b["tokenAddress"] for b in body} == {b.mint for b in sim.boosts(clock.now())}
    stats = fakes.stats("dexscreener")
    assert stats.by_bucket == {"profiles": 3} and stats.by_route["/token-boosts/top/v1"] == 1


# ---------------------------------------------------------------------------------------------
# GeckoTerminal
# ---------------------------------------------------------------------------------------------


async def test_geckoterminal_ohlcv_newest_first_and_paging(fakes: MarketFakes, sim: MarketSim, clock: SimClock,
                                                           http: aiohttp.ClientSession) -> None:
    tok = _tok(sim, lambda t: t.kind == "thin")
    pool = tok.main_pool.address
    url = f"{fakes.urls['geckoterminal']}/networks/solana/pools/{pool}/ohlcv/minute"
    now = clock.now()
    status, body, _ = await _get(http, url, aggregate=5, limit=50)
    assert status == 200 and body["data"]["type"] == "ohlcv_request_response"
    rows = body["data"]["attributes"]["ohlcv_list"]
    assert len(rows) == 50
    assert all(isinstance(r[0], int) and all(_is_num(x) for x in r[1:]) and len(r) == 6 for r in rows)
    ts = [r[0] for r in rows]
    assert ts == sorted(ts, reverse=True) and all(t % 300 == 0 for t in ts)
    assert ts[0] == now - now % 300  # the forming bar comes first
    expected = sim.bars(pool, Timeframe.M5, 0, now, include_forming=True, include_empty=False)[-50:]
    assert [r[0] for r in reversed(rows)] == [b.ts for b in expected]
    assert [r[4] for r in reversed(rows)] == [b.close for b in expected]
    assert body["meta"]["base"]["address"] == tok.mint and body["meta"]["quote"]["symbol"] in ("SOL", "USDC")
    # page backwards: everything strictly before the oldest row, no overlap, no gap
    status, page2, _ = await _get(http, url, aggregate=5, limit=50, before_timestamp=ts[-1])
    rows2 = page2["data"]["attributes"]["ohlcv_list"]
    assert rows2[0][0] < ts[-1] and len(rows2) == 50
    older = sim.bars(pool, Timeframe.M5, 0, ts[-1], include_empty=False)[-50:]
    assert [r[0] for r in reversed(rows2)] == [b.ts for b in older]
    # empty intervals are skipped unless asked for
    status, padded, _ = await _get(http, url, aggregate=5, limit=50, include_empty_intervals="true")
    prow = padded["data"]["attributes"]["ohlcv_list"]
    assert [r[0] for r in prow] == list(range(ts[0], ts[0] - 50 * 300, -300))
    empties = [r for r in prow if r[5] == 0]
    assert empties and all(r[1] == r[2] == r[3] == r[4] for r in empties)
    assert {r[0] for r in prow} - {r[0] for r in empties} <= set(ts)


async def test_geckoterminal_hour_day_and_errors(fakes: MarketFakes, sim: MarketSim, clock: SimClock,
                                                 http: aiohttp.ClientSession) -> None:
    pool = sim.tokens[2].main_pool.address
    base = f"{fakes.urls['geckoterminal']}/networks/solana/pools/{pool}/ohlcv"
    status, body, _ = await _get(http, base + "/hour", aggregate=4, limit=1000, include_empty_intervals="true")
    rows = body["data"]["attributes"]["ohlcv_list"]
    history = sim.bars(pool, Timeframe.H4, 0, clock.now(), include_forming=True)
    assert status == 200 and len(rows) == len(history) == 6 * 30 + 1
    assert rows[-1][0] == sim.start_ts
    status, body, _ = await _get(http, base + "/day", limit=3000, before_timestamp=sim.start_ts + 5 * 86_400)
    assert status == 200 and [r[0] for r in body["data"]["attributes"]["ohlcv_list"]] == [
        sim.start_ts - sim.start_ts % 86_400 + d * 86_400 for d in range(5, -1, -1)]
    status, body, _ = await _get(http, base + "/hour", aggregate=5)
    assert status == 400 and body["errors"][0]["status"] == "400"
    status, body, _ = await _get(http, f"{fakes.urls['geckoterminal']}/networks/solana/pools/{UNKNOWN_MINT}"
                                 "/ohlcv/day")
    assert (status, body) == (404, {"errors": [{"status": "404", "title": "Not Found"}]})


async def test_geckoterminal_token_pools(fakes: MarketFakes, sim: MarketSim, http: aiohttp.ClientSession) -> None:
    tok = _tok(sim, lambda t: len(t.pools) == 3 and not t.young)
    url = f"{fakes.urls['geckoterminal']}/networks/solana/tokens/{tok.mint}/pools"
    status, body, _ = await _get(http, url, page=1, include="base_token,quote_token,dex")
    assert status == 200 and [r["id"] for r in body["data"]] == [f"solana_{p.address}" for p in sorted(
        sim.pools_with(tok.mint), key=lambda p: -p.liquidity_usd)]
    res = body["data"][0]
    assert res["type"] == "pool"
    attrs = res["attributes"]
    for key in ("base_token_price_usd", "base_token_price_native_currency", "quote_token_price_usd",
                "base_token_price_quote_token", "reserve_in_usd", "fdv_usd"):
        assert isinstance(attrs[key], str) and float(attrs[key]) > 0, key
    assert attrs["pool_created_at"].endswith("Z")
    assert set(attrs["volume_usd"]) == {"m5", "h1", "h6", "h24"}
    assert all(isinstance(v, str) for v in attrs["volume_usd"].values())
    assert set(attrs["price_change_percentage"]) == {"m5", "m15", "m30", "h1", "h6", "h24"}
    assert set(attrs["transactions"]["h1"]) == {"buys", "sells", "buyers", "sellers"}
    assert res["relationships"]["base_token"]["data"] == {"id": f"solana_{tok.mint}", "type": "token"}
    assert res["relationships"]["dex"]["data"]["type"] == "dex"
    kinds = {(i["type"], i["id"]) for i in body["included"]}
    assert ("token", f"solana_{tok.mint}") in kinds and any(k == "dex" for k, _ in kinds)
    status, body, _ = await _get(http, url)
    assert status == 200 and "included" not in body
    status, body, _ = await _get(http, f"{fakes.urls['geckoterminal']}/networks/solana/tokens/{UNKNOWN_MINT}/pools")
    assert status == 404 and body["errors"][0]["title"] == "Not Found"


# ---------------------------------------------------------------------------------------------
# Birdeye
# ---------------------------------------------------------------------------------------------


async def test_birdeye_key_and_shapes(fakes: MarketFakes, sim: MarketSim, clock: SimClock,
                                      http: aiohttp.ClientSession) -> None:
    base = fakes.urls["birdeye"]
    tok = sim.tokens[12]
    now = int(clock.now())
    params = {"address": tok.mint, "type": "5m", "time_from": str(now - 3600), "time_to": str(now)}
    async with http.get(base + "/defi/ohlcv", params=params) as resp:
        assert resp.status == 401 and await resp.json() == {
            "success": False, "message": "Unauthorized. Authentication required."}
    key = {"X-API-KEY": fakes.birdeye_api_key, "x-chain": "solana"}
    async with http.get(base + "/defi/ohlcv", params=params, headers=key) as resp:
        v1 = await resp.json()
    assert v1["success"] is True and v1["data"]["isScaledUiToken"] is False
    items = v1["data"]["items"]
    expected = sim.bars(tok.main_pool.address, Timeframe.M5, now - 3600, now, include_forming=True)
    assert [i["unixTime"] for i in items] == [b.ts for b in expected]
    assert set(items[0]) == {"o", "h", "l", "c", "v", "unixTime", "address", "type", "currency"}
    assert items[0]["c"] == expected[0].close and items[0]["type"] == "5m"
    clock.advance(1)
    async with http.get(base + "/defi/v3/ohlcv", params=params, headers=key) as resp:
        v3 = await resp.json()
    assert v3["success"] is True and "is_scaled_ui_token" in v3["data"]
    assert set(v3["data"]["items"][0]) == {"o", "h", "l", "c", "v", "v_usd", "unix_time", "address", "type",
                                           "currency"}
    assert all(i["v_usd"] > 0 for i in v3["data"]["items"])  # no padding by default
    clock.advance(1)
    async with http.get(base + "/defi/token_overview", params={"address": tok.mint}, headers=key) as resp:
        overview = (await resp.json())["data"]
    assert overview["price"] == sim.token_price(tok.mint, clock.now()) and _is_num(overview["v24hUSD"])
    assert {"priceChange1hPercent", "trade5m", "buy5m", "sell5m", "vBuy5mUSD", "holder"} <= set(overview)
    clock.advance(1)
    unsafe = _tok(sim, lambda t: t.freeze_authority)
    async with http.get(base + "/defi/token_security", params={"address": unsafe.mint}, headers=key) as resp:
        security = (await resp.json())["data"]
    assert 0 < security["top10HolderPercent"] < 1 and security["freezeAuthority"] == unsafe.dev
    assert security["isToken2022"] is False
    clock.advance(1)
    async with http.get(base + "/defi/ohlcv", params={**params, "address": "not-base58!"}, headers=key) as resp:
        assert resp.status == 400 and (await resp.json())["success"] is False


# ---------------------------------------------------------------------------------------------
# Rate limits
# ---------------------------------------------------------------------------------------------


async def test_rate_limits_per_provider(sim: MarketSim, clock: SimClock, http: aiohttp.ClientSession) -> None:
    limits = {"jupiter": (3, 60.0), "dexscreener.pairs": (2, 60.0), "dexscreener.profiles": (1, 60.0),
              "geckoterminal": (2, 60.0)}
    async with MarketFakes(sim, clock, limits=limits) as fakes:
        jup = fakes.urls["jupiter"] + "/price/v3"
        t0 = clock.now()
        seen = []
        for _ in range(3):
            status, _, resp = await _get(http, jup, ids=SOL_MINT)
            seen.append((status, resp.headers["x-ratelimit-remaining"]))
            clock.advance(5)
        assert seen == [(200, "2"), (200, "1"), (200, "0")]
        status, body, resp = await _get(http, jup, ids=SOL_MINT)
        assert (status, body) == (429, {"code": 429, "message": "[API Gateway] Too many requests"})
        assert resp.headers["x-ratelimit-reset"] == str(math.ceil(t0 + 60))
        assert resp.headers["x-ratelimit-current"] == "3" and resp.headers["x-ratelimit-remaining"] == "0"
        clock.advance(t0 + 60 - clock.now())  # the oldest request leaves the window
        status, _, _ = await _get(http, jup, ids=SOL_MINT)
        assert status == 200
        stats = fakes.stats("jupiter")
        assert (stats.requests, stats.rate_limited) == (5, 1)
        assert [r.status for r in stats.log] == [200, 200, 200, 429, 200]
        assert [r.t - t0 for r in stats.log] == [0, 5, 10, 15, 60]

        ds = fakes.urls["dexscreener"]
        statuses = [(await _get(http, f"{ds}/tokens/v1/solana/{SOL_MINT}"))[0] for _ in range(3)]
        status, body, resp = await _get(http, f"{ds}/token-profiles/latest/v1")
        assert statuses == [200, 200, 429] and status == 200  # the profiles bucket is separate
        status, body, resp = await _get(http, f"{ds}/token-boosts/latest/v1")
        assert status == 429 and resp.content_type == "text/html" and "rate limited" in body
        assert fakes.stats("dexscreener").by_bucket == {"pairs": 3, "profiles": 2}

        gt = f"{fakes.urls['geckoterminal']}/networks/solana/tokens/{sim.tokens[0].mint}/pools"
        statuses = [(await _get(http, gt))[0] for _ in range(2)]
        status, body, _ = await _get(http, gt)
        assert statuses == [200, 200] and status == 429
        assert body == {"errors": [{"status": "429", "title": "Too Many Requests"}], "limit": 2}

        be = fakes.urls["birdeye"] + "/defi/token_security"
        key = {"X-API-KEY": fakes.birdeye_api_key}
        async with http.get(be, params={"address": sim.tokens[0].mint}, headers=key) as r1:
            first = r1.status
        async with http.get(be, params={"address": sim.tokens[0].mint}, headers=key) as r2:
            assert (first, r2.status) == (200, 429)
            assert await r2.json() == {"success": False, "message": "Too many requests"}
        clock.advance(1)
        async with http.get(be, params={"address": sim.tokens[0].mint}, headers=key) as r3:
            assert r3.status == 200


def test_unknown_limit_key_is_rejected(sim: MarketSim, clock: SimClock) -> None:
    with pytest.raises(ValueError, match="unknown rate-limit keys"):
        MarketFakes(sim, clock, limits={"dexscreener": (1, 1.0)})


# ---------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------


async def test_fault_500_and_429_bursts(fakes: MarketFakes, http: aiohttp.ClientSession) -> None:
    url = fakes.urls["jupiter"] + "/price/v3"
    fakes.faults.inject("jupiter", "500", count=2)
    fakes.faults.inject("jupiter", "429", retry_after=7)
    got = []
    for _ in range(4):
        status, body, resp = await _get(http, url, ids=SOL_MINT)
        got.append((status, resp.headers.get("Retry-After")))
    assert got == [(500, None), (500, None), (429, "7"), (200, None)]
    assert fakes.stats("jupiter").rate_limited == 1 and fakes.faults.pending("jupiter") == []
    fakes.faults.inject("geckoterminal", "500")
    status, body, _ = await _get(http, f"{fakes.urls['geckoterminal']}/networks/solana/tokens/{SOL_MINT}/pools")
    assert status == 500 and body["errors"][0]["status"] == "500"
    fakes.faults.inject("dexscreener", "429")
    status, body, resp = await _get(http, f"{fakes.urls['dexscreener']}/tokens/v1/solana/{SOL_MINT}")
    assert status == 429 and resp.content_type == "text/html" and "Retry-After" not in resp.headers


async def test_fault_stall_reset_down(fakes: MarketFakes, clock: SimClock, http: aiohttp.ClientSession) -> None:
    url = fakes.urls["jupiter"] + "/price/v3"
    fakes.faults.inject("jupiter", "stall", seconds=0.3)
    with pytest.raises(TimeoutError):
        async with http.get(url, params={"ids": SOL_MINT}, timeout=aiohttp.ClientTimeout(total=0.1)) as resp:
            await resp.read()
    # aiohttp's client retries a GET once after a dropped connection: two resets fail one call
    fakes.faults.inject("jupiter", "reset", count=2)
    with pytest.raises(aiohttp.ClientConnectionError):
        await _get(http, url, ids=SOL_MINT)
    assert fakes.stats("jupiter").by_status == {0: 2}
    assert (await _get(http, url, ids=SOL_MINT))[0] == 200
    fakes.faults.inject("birdeye", "down", seconds=30)
    for _ in range(2):
        with pytest.raises(aiohttp.ClientConnectionError):
            await _get(http, fakes.urls["birdeye"] + "/defi/token_security", address=SOL_MINT)
    clock.advance(30)
    async with http.get(fakes.urls["birdeye"] + "/defi/token_security", params={"address": SOL_MINT},
                        headers={"X-API-KEY": fakes.birdeye_api_key}) as resp:
        assert resp.status == 200
    statuses = [r.status for r in fakes.stats("birdeye").log]
    assert statuses[-1] == 200 and set(statuses[:-1]) == {0} and len(statuses) >= 3


async def test_fault_html_and_truncated(fakes: MarketFakes, sim: MarketSim, http: aiohttp.ClientSession) -> None:
    url = f"{fakes.urls['dexscreener']}/tokens/v1/solana/{SOL_MINT}"
    fakes.faults.inject("dexscreener", "html")
    fakes.faults.inject("dexscreener", "truncated")
    async with http.get(url) as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        assert (await resp.text()).startswith("<!DOCTYPE html>")
    gt = f"{fakes.urls['geckoterminal']}/networks/solana/tokens/{sim.tokens[0].mint}/pools"
    fakes.faults.inject("geckoterminal", "truncated")
    async with http.get(url) as resp, http.get(gt) as gresp:
        for r in (resp, gresp):
            assert r.status == 200 and r.content_type == "application/json"
            with pytest.raises(json.JSONDecodeError):
                json.loads(await r.text())


def _all_fields_bad(bad: Any, good: Any) -> bool:
    if isinstance(good, dict) and isinstance(bad, dict):
        return set(bad) == set(good) and all(_all_fields_bad(bad[k], good[k]) for k in good)
    return type(bad) is not type(good) or bad is None or bad in ("NaN", "null")


async def test_fault_malformed_record(fakes: MarketFakes, sim: MarketSim, clock: SimClock,
                                      http: aiohttp.ClientSession) -> None:
    mints = ",".join(t.mint for t in sim.tokens[:3])
    url = fakes.urls["jupiter"] + "/tokens/v2/search"
    _, good, _ = await _get(http, url, query=mints)
    price = fakes.urls["jupiter"] + "/price/v3"
    ids = f"{sim.tokens[0].mint},{sim.tokens[1].mint}"
    _, good_prices, _ = await _get(http, price, ids=ids)
    fakes.faults.inject("jupiter", "malformed_record")
    fakes.faults.inject("jupiter", "malformed_record")
    _, bad_prices, _ = await _get(http, price, ids=ids)  # Price v3: a mapping of records
    assert bad_prices[sim.tokens[0].mint] == good_prices[sim.tokens[0].mint]
    assert _all_fields_bad(bad_prices[sim.tokens[1].mint], good_prices[sim.tokens[1].mint])
    assert fakes.faults.pending("jupiter") == [("malformed_record", 1)]
    status, bad, _ = await _get(http, url, query=mints)
    assert status == 200 and len(bad) == 3
    assert bad[0] == good[0] and bad[2] == good[2]
    assert _all_fields_bad(bad[1], good[1])
    assert any(v == "NaN" for v in bad[1].values()) and any(v is None for v in bad[1].values())

    gt = f"{fakes.urls['geckoterminal']}/networks/solana/pools/{sim.tokens[2].main_pool.address}/ohlcv/hour"
    _, good, _ = await _get(http, gt, limit=5)
    fakes.faults.inject("geckoterminal", "malformed_record")
    _, bad, _ = await _get(http, gt, limit=5)
    rows_good, rows_bad = good["data"]["attributes"]["ohlcv_list"], bad["data"]["attributes"]["ohlcv_list"]
    assert rows_bad[:2] == rows_good[:2] and rows_bad[3:] == rows_good[3:]
    assert all(not _is_num(x) or x is None for x in rows_bad[2]) and "NaN" in rows_bad[2]

    ds = f"{fakes.urls['dexscreener']}/latest/dex/tokens/{sim.tokens[7].mint}"
    _, good, _ = await _get(http, ds)
    fakes.faults.inject("dexscreener", "malformed_record")
    _, bad, _ = await _get(http, ds)
    k = len(good["pairs"]) // 2
    assert _all_fields_bad(bad["pairs"][k], good["pairs"][k])
    assert [p for i, p in enumerate(bad["pairs"]) if i != k] == [p for i, p in enumerate(good["pairs"]) if i != k]


async def test_fault_switch_validation_and_clear(fakes: MarketFakes, http: aiohttp.ClientSession) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        fakes.faults.inject("jupiter", "teapot")
    with pytest.raises(ValueError, match="unknown provider"):
        fakes.faults.inject("coingecko", "500")
    with pytest.raises(ValueError, match="needs seconds"):
        fakes.faults.inject("jupiter", "stall")
    fakes.faults.inject("jupiter", "500", count=5)
    fakes.faults.inject("birdeye", "down", seconds=60)
    fakes.faults.clear()
    assert (await _get(http, fakes.urls["jupiter"] + "/price/v3", ids=SOL_MINT))[0] == 200
    assert (await _get(http, fakes.urls["birdeye"] + "/defi/token_security", address=SOL_MINT))[0] == 401
