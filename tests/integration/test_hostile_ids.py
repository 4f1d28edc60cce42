"""Ids that are not Solana addresses (a 100 KB Jupiter id, a 5,036-character pairAddress) are dropped
at the parsing edge and counted by field; they never reach a URL or a batch, and never cost the good
records of the same answer or batch anything. Against the loopback market fakes (``bad_ids`` fault).
"""

from __future__ import annotations

import pytest

from dexscan.demo.market_sim import MarketSim, SimConfig
from dexscan.demo.servers.market import HUGE_ID, LONG_PAIR_ADDRESS
from dexscan.sources.dexscreener import DEXSCREENER
from dexscan.sources.geckoterminal import GECKOTERMINAL
from dexscan.sources.jupiter import JUPITER
from tests.integration.test_clients import market


@pytest.fixture(scope="module")
def sim() -> MarketSim:
    return MarketSim(SimConfig(seed=7, n_tokens=40))


async def test_a_huge_jupiter_id_is_dropped_and_never_reaches_dexscreener(sim: MarketSim) -> None:
    async with market(sim) as env:
        clean = await env.clients.jupiter.recent()
        env.fakes.faults.inject(JUPITER, "bad_ids")
        found = await env.clients.jupiter.recent()
        assert env.fakes.faults.pending(JUPITER) == []  # the fault was served
        assert [t.mint for t in found] == [t.mint for t in clean]  # the good records, all of them, in order
        assert HUGE_ID not in {t.mint for t in found}
        assert env.http.stats()[JUPITER].bad_records == {"id": 1}

        # Had it leaked into a batch anyway, the batch of good mints still goes out, once, without it.
        good = env.listed()[:10]
        expected = await env.clients.dexscreener.pairs_for_tokens(good)
        before = env.fakes.stats(DEXSCREENER).requests
        got = await env.clients.dexscreener.pairs_for_tokens([*good[:5], HUGE_ID, *good[5:]])
        assert env.fakes.stats(DEXSCREENER).requests == before + 1
        assert [(p.pair_address, p.base_mint) for p in got] == [(p.pair_address, p.base_mint) for p in expected]
        assert env.http.stats()[DEXSCREENER].bad_records == {"mints": 1}
        assert env.http.stats()[DEXSCREENER].errors == {}  # no HTTP 400 "more than 8190 bytes"


async def test_a_huge_price_key_is_dropped(sim: MarketSim) -> None:
    async with market(sim) as env:
        ids = env.listed()[:5]
        clean = await env.clients.jupiter.prices(ids)
        env.fakes.faults.inject(JUPITER, "bad_ids")
        got = await env.clients.jupiter.prices(ids)
        assert got == clean and env.fakes.faults.pending(JUPITER) == []
        assert env.http.stats()[JUPITER].bad_records == {"<id>": 1}
        got = await env.clients.jupiter.prices([HUGE_ID, ids[0]])
        assert list(got) == [ids[0]]
        assert env.http.stats()[JUPITER].bad_records == {"<id>": 1, "ids": 1}


async def test_a_long_pair_address_is_dropped_from_pairs_and_pools(sim: MarketSim) -> None:
    async with market(sim) as env:
        tok = next(t for t in sim.tokens if sim.listed(t.mint, env.now) and len(sim.pools_with(t.mint)) > 1)
        clean = await env.clients.dexscreener.token_pairs(tok.mint)
        env.fakes.faults.inject(DEXSCREENER, "bad_ids")
        got = await env.clients.dexscreener.token_pairs(tok.mint)
        assert env.fakes.faults.pending(DEXSCREENER) == []
        assert got == clean and LONG_PAIR_ADDRESS not in {p.pair_address for p in got}
        assert env.http.stats()[DEXSCREENER].bad_records == {"pairAddress": 1}
        assert await env.clients.dexscreener.pairs([LONG_PAIR_ADDRESS]) == []
        assert env.http.stats()[DEXSCREENER].bad_records == {"pairAddress": 1, "pairs": 1}

        clean_pools = await env.clients.geckoterminal.token_pools(tok.mint)
        env.fakes.faults.inject(GECKOTERMINAL, "bad_ids")
        pools = await env.clients.geckoterminal.token_pools(tok.mint)
        assert env.fakes.faults.pending(GECKOTERMINAL) == []
        assert pools == clean_pools
        assert env.http.stats()[GECKOTERMINAL].bad_records == {"attributes.address": 1}
