"""The four clients over real HTTP against the loopback market fakes (``dexscan.demo.servers.market``).

Client and fakes share one clock: a ``SimClock`` (or its ``QuietSimClock`` variant for
bursts), so budgets, Retry-After waits and breaker cool-downs are exact and cost no real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from solders.pubkey import Pubkey

from dexscan.clock import SimClock
from dexscan.config import Settings, load_settings
from dexscan.demo.market_sim import MarketSim, SimConfig
from dexscan.demo.servers.market import MarketFakes
from dexscan.domain import MAIN_QUOTES, Timeframe
from dexscan.errors import BadPayload, RateLimited, SourceUnavailable
from dexscan.sources import Clients, HttpLayer, build_clients, main_pool
from dexscan.sources.birdeye import BIRDEYE
from dexscan.sources.dexscreener import DEXSCREENER
from dexscan.sources.geckoterminal import GECKOTERMINAL
from dexscan.sources.http import CircuitOpen, HttpStatusError
from dexscan.sources.jupiter import JUPITER
from tests.integration.test_http_layer import QuietSimClock

#: Valid-looking base58 addresses no simulated token has.
UNKNOWN = [str(Pubkey(bytes([0xD5, i]) + bytes(30))) for i in range(20)]
TOKENS_V1 = "/tokens/v1/{chain}/{addresses}"


@pytest.fixture(scope="module")
def sim() -> MarketSim:
    return MarketSim(SimConfig(seed=7, n_tokens=40))


@dataclass
class Env:
    sim: MarketSim
    clock: SimClock
    fakes: MarketFakes
    http: HttpLayer
    clients: Clients
    settings: Settings

    @property
    def now(self) -> int:
        return int(self.clock.now())

    def listed(self) -> list[str]:
        return [t.mint for t in self.sim.tokens if self.sim.listed(t.mint, self.now)]


@contextlib.asynccontextmanager
async def market(sim: MarketSim, overrides: dict[str, object] | None = None, *, clock: SimClock | None = None,
                 birdeye_key: str | None = "demo-birdeye-key",
                 limits: dict[str, tuple[int, float]] | None = None) -> AsyncIterator[Env]:
    clock = clock or SimClock(sim.live_start + 1830)
    async with MarketFakes(sim, clock, limits=limits) as fakes:
        env = {"DEXSCAN_BIRDEYE_API_KEY": birdeye_key} if birdeye_key else {}
        settings = load_settings(env=env).with_overrides({
            **fakes.settings_overrides(),
            "http.retries": 2, "http.breaker_failures": 3, "http.breaker_cooldown_s": 30.0,
            "http.timeout_s": 2.0, **(overrides or {}),
        })
        async with HttpLayer(settings, clock) as http:
            if isinstance(clock, QuietSimClock):
                clock.in_flight = lambda: sum(http.stats()[p].requests - fakes.stats(p).requests
                                              for p in (JUPITER, DEXSCREENER, GECKOTERMINAL, BIRDEYE))
            yield Env(sim, clock, fakes, http, build_clients(settings, http), settings)


@pytest.fixture
async def env(sim: MarketSim) -> AsyncIterator[Env]:
    async with market(sim) as e:
        yield e


# ---------------------------------------------------------------------------------------------
# Batching: exactly the documented number of calls
# ---------------------------------------------------------------------------------------------


async def test_31_mints_take_exactly_two_dexscreener_calls(env: Env) -> None:
    mints = env.listed()[:31]
    assert len(mints) == 31
    pairs = await env.clients.dexscreener.pairs_for_tokens(mints)
    st = env.fakes.stats(DEXSCREENER)
    assert (st.requests, st.by_route) == (2, {TOKENS_V1: 2})
    wanted = set(mints)
    # /tokens/v1 answers one pair per token, DexScreener's pick (external-apis.md §3.2)
    expected = {pick.address for m in mints if (pick := env.fakes.ds_pick(m, env.now)) is not None}
    assert {p.pair_address for p in pairs} == expected
    assert len(pairs) == len(expected)  # no duplicates across batches
    assert all(p.base_mint in wanted and p.observed_at == env.now for p in pairs)
    sample = env.sim.tokens[0].main_pool
    got = next(p for p in pairs if p.pair_address == sample.address)
    assert got.pair_created_at == sample.created_at
    assert got.quote_mint == sample.quote_mint


async def test_51_ids_take_exactly_two_price_calls(env: Env) -> None:
    ids = env.listed()[:40] + UNKNOWN[:11]
    assert len(ids) == 51
    prices = await env.clients.jupiter.prices(ids)
    st = env.fakes.stats(JUPITER)
    assert (st.requests, st.by_route) == (2, {"/price/v3": 2})
    assert set(prices) == set(env.listed()[:40])  # unknown mints are absent, never zero
    assert all(q.usd_price > 0 for q in prices.values())
    first = env.sim.tokens[0].mint
    info = env.sim.token_info(first, env.now)
    assert info is not None
    assert prices[first].usd_price == pytest.approx(info.usd_price)


async def test_duplicate_mints_are_sent_once(env: Env) -> None:
    mints = env.listed()[:5]
    tokens = await env.clients.jupiter.search(mints * 3)
    assert sorted(t.mint for t in tokens) == sorted(mints)
    assert env.fakes.stats(JUPITER).requests == 1


async def test_jupiter_search_batches_of_100(sim: MarketSim) -> None:
    async with market(sim, {"sources.jupiter.search_batch": 15}) as e:
        mints = e.listed()[:31]
        tokens = await e.clients.jupiter.search(mints)
        assert e.fakes.stats(JUPITER).by_route == {"/tokens/v2/search": 3}
        assert [t.mint for t in tokens] == mints
        young = [t for t in tokens if e.sim.token(t.mint).young or e.now - e.sim.token(t.mint).listed_at < 2 * 86_400]
        assert all(t.audit is None for t in young)  # new tokens come without the optional blocks


# ---------------------------------------------------------------------------------------------
# Rate limits and faults
# ---------------------------------------------------------------------------------------------


async def test_429_with_retry_after_2_is_waited_out_then_served(env: Env) -> None:
    t0 = env.clock.now()
    env.fakes.faults.inject(JUPITER, "429", count=1, retry_after=2)
    prices = await env.clients.jupiter.prices(env.listed()[:3])
    assert len(prices) == 3
    st = env.fakes.stats(JUPITER)
    assert [r.status for r in st.log] == [429, 200]
    assert [r.t - t0 for r in st.log] == [0.0, 2.0]
    assert env.clock.now() - t0 == 2.0
    mine = env.http.stats()[JUPITER]
    assert (mine.requests, mine.ok, mine.rate_limited, mine.retries) == (2, 1, 1, 1)


async def test_500_burst_trips_the_breaker_then_it_closes(env: Env) -> None:
    pool = env.sim.tokens[0].main_pool.address
    env.fakes.faults.inject(GECKOTERMINAL, "500", count=3)
    with pytest.raises(SourceUnavailable) as first:
        await env.clients.geckoterminal.ohlcv(pool, Timeframe.H1, limit=5)
    assert str(first.value) == "geckoterminal /networks/solana/pools/{pool}/ohlcv/{timeframe}: HTTP 500"
    assert env.http.stats()[GECKOTERMINAL].breaker == "open"

    with pytest.raises(CircuitOpen):
        await env.clients.geckoterminal.ohlcv(pool, Timeframe.H1, limit=5)
    assert env.fakes.stats(GECKOTERMINAL).requests == 3  # an open breaker sends nothing

    env.clock.advance(30.0)
    candles = await env.clients.geckoterminal.ohlcv(pool, Timeframe.H1, limit=5)
    assert len(candles) == 5
    st = env.http.stats()[GECKOTERMINAL]
    assert (st.breaker, st.breaker_opened, dict(st.errors)) == ("closed", 1, {"http_5xx": 3, "circuit_open": 1})
    assert [r.status for r in env.fakes.stats(GECKOTERMINAL).log] == [500, 500, 500, 200]


async def test_one_malformed_pair_is_skipped_and_counted_by_field(env: Env) -> None:
    mints = env.listed()[:10]
    clean = await env.clients.dexscreener.pairs_for_tokens(mints)
    env.fakes.faults.inject(DEXSCREENER, "malformed_record")
    dirty = await env.clients.dexscreener.pairs_for_tokens(mints)
    assert env.fakes.faults.pending(DEXSCREENER) == []
    assert len(dirty) == len(clean) - 1
    assert {p.pair_address for p in dirty} < {p.pair_address for p in clean}
    assert dict(env.http.stats()[DEXSCREENER].bad_records) == {"chainId": 1}  # its first broken field


async def test_one_malformed_price_entry_is_skipped(env: Env) -> None:
    ids = env.listed()[:9]
    env.fakes.faults.inject(JUPITER, "malformed_record")
    prices = await env.clients.jupiter.prices(ids)
    assert len(prices) == 8
    assert dict(env.http.stats()[JUPITER].bad_records) == {"usdPrice": 1}


async def test_one_malformed_ohlcv_row_is_skipped(env: Env) -> None:
    pool = env.sim.tokens[2].main_pool.address
    env.fakes.faults.inject(GECKOTERMINAL, "malformed_record")
    candles = await env.clients.geckoterminal.ohlcv(pool, Timeframe.M5, limit=20)
    assert len(candles) == 19
    assert dict(env.http.stats()[GECKOTERMINAL].bad_records) == {"ohlcv_list.ts": 1}


@pytest.mark.parametrize(("kind", "problem"), [("html", "not JSON: JSONDecodeError (starts with '<!DOCTYPE html>"),
                                               ("truncated", "not JSON: JSONDecodeError (starts with '[{")])
async def test_html_page_and_truncated_json_are_bad_payloads(env: Env, kind: str, problem: str) -> None:
    env.fakes.faults.inject(DEXSCREENER, kind)
    with pytest.raises(BadPayload) as info:
        await env.clients.dexscreener.token_pairs(env.listed()[0])
    assert (info.value.provider, info.value.endpoint, info.value.field) == (
        "dexscreener", "/token-pairs/v1/solana/{mint}", "<body>")
    assert info.value.problem.startswith(problem)
    assert env.fakes.stats(DEXSCREENER).requests == 1  # not retried


async def test_reset_connections_are_retried(env: Env) -> None:
    # aiohttp's own silent resend of a GET on a dropped connection is switched off: each reset is
    # one attempt of ours, budgeted and counted, and the retry is served.
    env.fakes.faults.inject(JUPITER, "reset", count=2)
    assert len(await env.clients.jupiter.recent()) == len(env.sim.recent(env.now))
    st = env.http.stats()[JUPITER]
    assert (st.requests, st.ok, st.retries, dict(st.errors)) == (3, 1, 2, {"connection": 2})
    assert [r.status for r in env.fakes.stats(JUPITER).log] == [0, 0, 200]


async def test_stall_beyond_the_timeout_is_source_unavailable(sim: MarketSim) -> None:
    async with market(sim, {"http.timeout_s": 0.2, "http.retries": 0}) as e:
        e.fakes.faults.inject(JUPITER, "stall", count=1, seconds=1.0)
        with pytest.raises(SourceUnavailable) as info:
            await e.clients.jupiter.recent()
        assert str(info.value) == "jupiter /tokens/v2/recent: timed out after 0.2s"


async def test_an_outage_is_source_unavailable(env: Env) -> None:
    env.fakes.faults.inject(GECKOTERMINAL, "down", seconds=600)
    with pytest.raises(SourceUnavailable) as info:
        await env.clients.geckoterminal.token_pools(env.listed()[0])
    assert "connection failed" in str(info.value)
    assert env.http.stats()[GECKOTERMINAL].requests == 3


# ---------------------------------------------------------------------------------------------
# Budget proof: a burst never meets a 429
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "limit"), [(JUPITER, 30), (DEXSCREENER, 60)])
async def test_200_requests_at_once_meet_zero_429s(sim: MarketSim, provider: str, limit: int) -> None:
    clock = QuietSimClock(sim.live_start + 1830)
    t0 = clock.now()
    # The budget paces the burst on the simulated clock; the per-request timeout is real seconds, so
    # it is set far above what 200 loopback answers take on a loaded machine (this is no timeout test).
    async with market(sim, {"http.timeout_s": 60.0}, clock=clock) as e:
        mint = e.listed()[0]
        calls = ([e.clients.jupiter.prices([mint]) for _ in range(200)] if provider == JUPITER
                 else [e.clients.dexscreener.latest_profiles() for _ in range(200)])
        results = await asyncio.gather(*calls)
        fake, mine = e.fakes.stats(provider), e.http.stats()[provider]
    assert len(results) == 200 and all(results)
    assert (fake.requests, fake.rate_limited, mine.rate_limited, mine.retries) == (200, 0, 0, 0)
    assert set(fake.by_status) == {200}
    # Paced by the documented limit: full windows of `limit`, 60 s + the 0.6 s margin apart.
    windows = math.ceil(200 / limit)
    assert max(r.t for r in fake.log) - t0 == pytest.approx((windows - 1) * 60.6)
    times = sorted(r.t for r in fake.log)
    assert max(sum(1 for u in times if t <= u < t + 60.0) for t in times) == limit


async def test_the_fake_does_enforce_the_limit_without_our_budget(sim: MarketSim) -> None:
    """Control for the budget proof: the same burst with the budget lifted meets 170 429s."""
    clock = QuietSimClock(sim.live_start + 1830)
    async with market(sim, {"sources.jupiter.requests_per_minute": 1000, "http.retries": 0}, clock=clock) as e:
        mint = e.listed()[0]
        results = await asyncio.gather(*(e.clients.jupiter.prices([mint]) for _ in range(200)),
                                       return_exceptions=True)
        assert sum(isinstance(r, RateLimited) for r in results) == 170
        assert e.fakes.stats(JUPITER).rate_limited == 170


# ---------------------------------------------------------------------------------------------
# Parsing what the fakes serve
# ---------------------------------------------------------------------------------------------


async def test_dexscreener_endpoints(env: Env) -> None:
    tok = env.sim.tokens[0]
    pairs = await env.clients.dexscreener.token_pairs(tok.mint)
    assert {p.pair_address for p in pairs} == {p.address for p in env.sim.pools_with(tok.mint)
                                               if env.sim.pool_open(p.address, env.now)}
    chosen = main_pool(pairs, tok.mint)
    assert chosen is not None and chosen.base_mint == tok.mint and chosen.quote_mint in MAIN_QUOTES
    assert chosen.liquidity_usd == max(p.liquidity_usd or 0 for p in pairs
                                       if p.base_mint == tok.mint and p.quote_mint in MAIN_QUOTES)
    by_address = await env.clients.dexscreener.pairs([p.pair_address for p in pairs] + UNKNOWN[:2])
    assert sorted(p.pair_address for p in by_address) == sorted(p.pair_address for p in pairs)
    assert await env.clients.dexscreener.pairs(UNKNOWN[:1]) == []  # `pairs: null` is an empty answer
    found = await env.clients.dexscreener.search(tok.symbol)
    assert tok.mint in {p.base_mint for p in found}
    profiles = await env.clients.dexscreener.latest_profiles()
    assert [d.mint for d in profiles] == env.sim.profiles(env.now)
    assert {d.source for d in profiles} == {"dexscreener:profiles"}
    boosts = await env.clients.dexscreener.top_boosts()
    assert [d.mint for d in boosts] == list(dict.fromkeys(b.mint for b in env.sim.boosts(env.now, top=True)))
    assert env.fakes.stats(DEXSCREENER).by_bucket == {"pairs": 4, "profiles": 2}


async def test_jupiter_discovery_endpoints(env: Env) -> None:
    top = await env.clients.jupiter.top("toptrending", "1h", limit=10)
    assert [t.mint for t in top] == env.sim.discovery("toptrending", "1h", env.now, 10)
    recent = await env.clients.jupiter.recent()
    assert [t.mint for t in recent] == env.sim.recent(env.now)
    verified = await env.clients.jupiter.tag("verified")
    assert all(t.is_verified for t in verified)
    text = await env.clients.jupiter.search_text(env.sim.tokens[0].symbol)
    assert env.sim.tokens[0].mint in {t.mint for t in text}


async def test_geckoterminal_range_pages_backward(sim: MarketSim) -> None:
    async with market(sim, {"sources.geckoterminal.ohlcv_page_limit": 100}) as e:
        pool = e.sim.tokens[1].main_pool.address
        end = Timeframe.M5.floor(e.now)
        start = end - 86_400
        candles = await e.clients.geckoterminal.ohlcv_range(pool, Timeframe.M5, start, end)
        assert e.fakes.stats(GECKOTERMINAL).requests == 3
        expected = e.sim.bars(pool, Timeframe.M5, start, end, include_empty=True)
        assert len(candles) == 288 == len(expected)
        assert [c.ts for c in candles] == [b.ts for b in expected]
        assert [(c.open, c.high, c.low, c.close) for c in candles] == [(b.open, b.high, b.low, b.close)
                                                                        for b in expected]
        assert [c.volume for c in candles] == pytest.approx([b.volume for b in expected], abs=1e-6)


async def test_geckoterminal_token_pools(env: Env) -> None:
    tok = env.sim.tokens[0]
    pools = await env.clients.geckoterminal.token_pools(tok.mint)
    assert {p.address for p in pools} == {p.address for p in env.sim.pools_with(tok.mint)
                                          if env.sim.pool_open(p.address, env.now)}
    main = next(p for p in pools if p.address == tok.main_pool.address)
    assert (main.base_mint, main.quote_mint, main.created_at) == (tok.mint, tok.main_pool.quote_mint,
                                                                  tok.main_pool.created_at)
    with pytest.raises(HttpStatusError) as info:
        await env.clients.geckoterminal.token_pools(UNKNOWN[0])
    assert info.value.status == 404


# ---------------------------------------------------------------------------------------------
# Birdeye: only with a key
# ---------------------------------------------------------------------------------------------


async def test_birdeye_is_not_constructed_without_a_key(sim: MarketSim) -> None:
    async with market(sim, birdeye_key=None) as e:
        assert e.clients.birdeye is None


async def test_birdeye_with_the_fakes_key(env: Env) -> None:
    assert env.clients.birdeye is not None
    tok = env.sim.tokens[0]
    overview = await env.clients.birdeye.token_overview(tok.mint)
    info = env.sim.token_info(tok.mint, env.now)
    assert info is not None
    assert (overview.mint, overview.symbol, overview.decimals) == (tok.mint, tok.symbol, tok.decimals)
    assert overview.usd_price == pytest.approx(info.usd_price)
    security = await env.clients.birdeye.token_security(tok.mint)
    assert security.top10_holder_pct == pytest.approx(tok.top_holders_pct)  # 0-100, Birdeye sent 0-1
    assert security.is_token_2022 == tok.token2022


async def test_birdeye_overview_of_an_unknown_token_is_a_counted_bad_payload(env: Env) -> None:
    assert env.clients.birdeye is not None
    with pytest.raises(BadPayload) as info:
        await env.clients.birdeye.token_overview(UNKNOWN[0])
    assert str(info.value) == "birdeye /defi/token_overview: bad payload at address: missing"
    assert dict(env.http.stats()[BIRDEYE].bad_records) == {"address": 1}


async def test_birdeye_v1_and_v3_casing(sim: MarketSim) -> None:
    async with market(sim) as e:
        assert e.clients.birdeye is not None
        tok = e.sim.tokens[3]
        end = Timeframe.H1.floor(e.now)
        start = end - 48 * 3600
        v3 = await e.clients.birdeye.ohlcv(tok.mint, Timeframe.H1, start, end, version=3)
        v1 = await e.clients.birdeye.ohlcv(tok.mint, Timeframe.H1, start, end, version=1)
        assert e.fakes.stats(BIRDEYE).by_route == {"/defi/v3/ohlcv": 1, "/defi/ohlcv": 1}
        assert e.fakes.stats(BIRDEYE).rate_limited == 0  # the 1 request/s budget spaced the two calls
        assert len(v1) == 48  # v1 pads empty intervals
        assert {c.ts for c in v3} <= {c.ts for c in v1}
        v1_by_ts = {c.ts: c for c in v1}
        for c in v3:
            twin = v1_by_ts[c.ts]
            assert (twin.open, twin.high, twin.low, twin.close) == (c.open, c.high, c.low, c.close)
            assert twin.volume == pytest.approx(c.volume, rel=1e-6)  # v1: token amount x close


async def test_birdeye_with_a_wrong_key_is_rejected(sim: MarketSim) -> None:
    async with market(sim, birdeye_key="wrong-key") as e:
        assert e.clients.birdeye is not None
        with pytest.raises(HttpStatusError) as info:
            await e.clients.birdeye.token_overview(e.sim.tokens[0].mint)
        assert info.value.status == 401
        assert "wrong-key" not in str(info.value)
