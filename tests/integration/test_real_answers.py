"""Real answers the fakes give that an idealised API would not (issue 12, point 6).

Cloudflare block pages (HTTP 403 "Error 1020 Access denied", HTML) as a fault mode; the client must
name Cloudflare in a :class:`~dexscan.errors.SourceUnavailable`, not crash parsing HTML.
(Pools listed in another base/quote order: ``test_geckoterminal_token.py``; pairs without
``pairCreatedAt`` and USD1-quoted pools: ``test_dexscreener_pools.py``.)
"""

from __future__ import annotations

import pytest

from dexscan.demo.market_sim import MarketSim, SimConfig
from dexscan.domain import Timeframe
from dexscan.errors import SourceUnavailable
from dexscan.sources.http import CloudflareBlocked
from tests.integration.test_clients import market


@pytest.fixture(scope="module")
def sim() -> MarketSim:
    return MarketSim(SimConfig(seed=7, n_tokens=12))


async def test_a_cloudflare_block_page_is_named_not_parsed(sim: MarketSim) -> None:
    tok = sim.tokens[0]
    async with market(sim) as env:
        env.fakes.faults.inject("dexscreener", "cloudflare")
        with pytest.raises(CloudflareBlocked) as info:
            await env.clients.dexscreener.pairs_for_tokens([tok.mint])
        assert isinstance(info.value, SourceUnavailable) and info.value.status == 403
        assert str(info.value) == (
            "dexscreener /tokens/v1/solana/{mints}: HTTP 403: blocked by Cloudflare (error 1020: Access denied); "
            "the provider's firewall refuses this IP or client: wait, or use another network or proxy")
        stats = env.http.stats()["dexscreener"]
        assert (stats.requests, dict(stats.errors), stats.retries) == (1, {"blocked": 1}, 0)  # no retry
        assert env.fakes.stats("dexscreener").by_status == {403: 1}
        pairs = await env.clients.dexscreener.pairs_for_tokens([tok.mint])  # the block was one answer
        assert [p.base_mint for p in pairs] == [tok.mint]  # one picked pair per token


async def test_cloudflare_in_front_of_geckoterminal(sim: MarketSim) -> None:
    tok = sim.tokens[0]
    async with market(sim) as env:
        env.fakes.faults.inject("geckoterminal", "cloudflare", count=2)
        for _ in range(2):
            with pytest.raises(CloudflareBlocked, match="blocked by Cloudflare"):
                await env.clients.geckoterminal.ohlcv(tok.main_pool.address, Timeframe.M5, token=tok.mint)
        assert env.http.stats()["geckoterminal"].errors == {"blocked": 2}
