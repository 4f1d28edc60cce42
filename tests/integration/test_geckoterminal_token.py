"""GeckoTerminal OHLCV asked with ``token=<mint>`` (issue 12, point 5).

GeckoTerminal's ``token=base`` is *its* base, and providers disagree on the base/quote order of a
pool of two tokens (``reference/external-apis.md`` §4.2, §7). The fake lists a pool quoted in another
simulated token the other way round from DexScreener, like the real services can; these tests show
that ``token=base`` then charts the other token and ``token=<mint>`` the one we track.
"""

from __future__ import annotations

import pytest

from dexscan.demo.market_sim import MarketSim, SimConfig, SimPool
from dexscan.domain import Timeframe
from dexscan.sources.http import HttpStatusError
from tests.integration.test_clients import market


@pytest.fixture(scope="module")
def sim() -> MarketSim:
    return MarketSim(SimConfig(seed=7, n_tokens=40))


def token_quoted_pool(sim: MarketSim) -> SimPool:
    """A pool whose quote is another simulated token (DexScreener: base T, quote Q; GeckoTerminal: Q / T)."""
    return next(p for t in sim.tokens for p in t.pools if sim.has_token(p.quote_mint) and not t.young)


async def test_token_mint_charts_the_tracked_token_where_base_would_not(sim: MarketSim) -> None:
    pool = token_quoted_pool(sim)
    quote = sim.token(pool.quote_mint)
    async with market(sim) as env:
        now = env.now
        end = now - now % 300
        mine = await env.clients.geckoterminal.ohlcv(pool.address, Timeframe.M5, before=end, limit=12,
                                                     token=pool.base_mint)
        theirs = await env.clients.geckoterminal.ohlcv(pool.address, Timeframe.M5, before=end, limit=12)
        refs = await env.clients.geckoterminal.token_pools(pool.base_mint)
    truth = sim.bars(pool.address, Timeframe.M5, end - 12 * 300, end)
    assert [(c.ts, c.open, c.high, c.low, c.close) for c in mine] == [
        (b.ts, b.open, b.high, b.low, b.close) for b in truth]
    assert [c.volume for c in mine] == [round(b.volume, 6) for b in truth]
    quote_truth = {b.ts: b for b in sim.bars(quote.main_pool.address, Timeframe.M5, end - 12 * 300, end)}
    assert [(c.ts, c.close) for c in theirs] == [(b.ts, quote_truth[b.ts].close) for b in truth]
    assert [c.volume for c in theirs] == [c.volume for c in mine]  # the same pool's trades
    listed = next(r for r in refs if r.address == pool.address)
    assert (listed.base_mint, listed.quote_mint) == (quote.mint, pool.base_mint)  # GeckoTerminal's order


async def test_main_pool_history_is_the_same_either_way(sim: MarketSim) -> None:
    tok = next(t for t in sim.tokens if not t.young)
    async with market(sim) as env:
        end = env.now - env.now % 300
        by_mint = await env.clients.geckoterminal.ohlcv_range(tok.main_pool.address, Timeframe.M5, end - 3600, end,
                                                              token=tok.mint)
        by_base = await env.clients.geckoterminal.ohlcv_range(tok.main_pool.address, Timeframe.M5, end - 3600, end)
    assert by_mint == by_base and len(by_mint) == 12


async def test_a_token_not_in_the_pool_is_refused(sim: MarketSim) -> None:
    tok, other = sim.tokens[0], sim.tokens[1]
    async with market(sim) as env:
        with pytest.raises(HttpStatusError) as info:
            await env.clients.geckoterminal.ohlcv(tok.main_pool.address, Timeframe.M5, token=other.mint)
    assert info.value.status == 400
