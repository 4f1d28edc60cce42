"""Hostile answers against the loopback market fakes: oversized bodies and gzip bombs are refused at
the cap (typed, named, counted as ``too_large``), and the next answer is served as usual.

Peak memory is measured by ``scripts/bench_hostile.py``, not asserted here.
"""

from __future__ import annotations

import gzip
import json

import pytest

from dexscan.chain.rpc import RpcPool
from dexscan.clock import SimClock
from dexscan.config import load_settings
from dexscan.demo.market_sim import MarketSim, SimConfig
from dexscan.demo.servers.fake_chain import FakeChain
from dexscan.demo.servers.rpc import RpcFakeServer
from dexscan.domain import SOL_MINT
from dexscan.errors import BadPayload
from dexscan.sources.bounded import BadEncoding, BodyLimitExceeded, BodyReader, UnsupportedEncoding
from dexscan.sources.http import ResponseTooLarge
from dexscan.sources.jupiter import JUPITER
from tests.integration.test_clients import market

# Virtual time: building a 200 MB gzip bomb or streaming 64 MiB costs real CPU, and on a loaded
# machine that must not run into the clients' timeouts; the loop's clock stands still meanwhile.
pytestmark = pytest.mark.virtual_time

CAPS = {"http.max_compressed_bytes": 1 << 20, "http.max_body_bytes": 2 << 20}


@pytest.fixture(scope="module")
def sim() -> MarketSim:
    return MarketSim(SimConfig(seed=7, n_tokens=40))


async def test_oversized_body_is_refused_at_the_compressed_cap(sim: MarketSim) -> None:
    async with market(sim, CAPS) as env:
        env.fakes.oversized_bytes = 64 << 20
        env.fakes.faults.inject(JUPITER, "oversized")
        with pytest.raises(ResponseTooLarge) as info:
            await env.clients.jupiter.prices([SOL_MINT])
        err = info.value
        assert (err.provider, err.endpoint, err.which, err.limit) == (JUPITER, "/price/v3", "compressed", 1 << 20)
        assert "larger than 1 MiB" in str(err) and "http.max_compressed_bytes" in str(err)
        stats = env.http.stats()[JUPITER]
        assert stats.errors == {"too_large": 1}
        assert stats.requests == 1 and stats.retries == 0  # not retried: it would be as big again
        assert env.fakes.faults.pending(JUPITER) == []
        quotes = await env.clients.jupiter.prices([SOL_MINT])  # the next answer is served as usual
        assert SOL_MINT in quotes
        assert env.http.stats()[JUPITER].errors == {"too_large": 1}


async def test_gzip_bomb_is_not_inflated_past_the_cap(sim: MarketSim) -> None:
    async with market(sim, CAPS) as env:
        env.fakes.gzip_bomb_bytes = 200 * 1000 * 1000  # ~200 KB on the wire: under the compressed cap
        env.fakes.faults.inject(JUPITER, "gzip_bomb", count=1)
        with pytest.raises(ResponseTooLarge) as info:
            await env.clients.jupiter.prices([SOL_MINT])
        err = info.value
        assert (err.which, err.limit) == ("decompressed", 2 << 20)
        assert "http.max_body_bytes" in str(err) and "/price/v3" in str(err)
        assert env.http.stats()[JUPITER].errors == {"too_large": 1}
        assert SOL_MINT in await env.clients.jupiter.prices([SOL_MINT])


async def test_gzip_answer_under_the_caps_is_decoded(sim: MarketSim) -> None:
    async with market(sim, CAPS) as env:
        env.fakes.gzip_bomb_bytes = 100_000  # 100 KB of zero bytes: decoded fine, then not JSON
        env.fakes.faults.inject(JUPITER, "gzip_bomb")
        with pytest.raises(BadPayload, match="not JSON"):
            await env.clients.jupiter.prices([SOL_MINT])
        assert env.http.stats()[JUPITER].errors == {"not_json": 1}


@pytest.mark.parametrize(("fault", "size", "which"), [("oversized", 64 << 20, "compressed"),
                                                      ("gzip_bomb", 200 * 1000 * 1000, "decompressed")])
async def test_rpc_answer_over_the_cap_fails_over_to_the_next_endpoint(fault: str, size: int, which: str) -> None:
    chain = FakeChain()
    clock = SimClock(1_760_000_000)
    hostile = RpcFakeServer(chain, name="hostile", clock=clock)
    honest = RpcFakeServer(chain, name="honest", clock=clock)
    async with hostile, honest:
        await hostile.inject(fault, size)
        settings = load_settings(env={}).with_overrides({
            "rpc.endpoints": [hostile.url, honest.url], "rpc.timeout_s": 5.0,
            "rpc.max_compressed_bytes": 1 << 20, "rpc.max_body_bytes": 2 << 20})
        async with RpcPool.from_settings(settings, clock) as pool:
            served = await pool.get_slot()
            assert served.value == chain.slot
            bad, good = pool.state()
            assert served.endpoint == good.name
            assert bad.errors == (("too_large", 1),) and bad.failures == 1 and good.errors == ()
            limit = "1 MiB" if which == "compressed" else "2 MiB"
            assert bad.last_error is not None and f"{which} body larger than {limit}" in bad.last_error
            assert hostile.stats.http_requests == 1


def test_body_reader_counts_both_caps_and_decodes() -> None:
    payload = json.dumps({"a": list(range(1000))}).encode()
    reader = BodyReader("gzip", 10_000, 10_000)
    packed = gzip.compress(payload)
    for i in range(0, len(packed), 7):
        reader.feed(packed[i:i + 7])
    assert reader.finish() == payload and reader.wire_bytes == len(packed)

    reader = BodyReader(None, 100, 1000)
    reader.feed(b"x" * 100)
    with pytest.raises(BodyLimitExceeded) as info:
        reader.feed(b"x")
    assert (info.value.which, info.value.limit) == ("compressed", 100)

    bomb = gzip.compress(bytes(10_000_000))
    reader = BodyReader("gzip", 1 << 20, 4096)
    with pytest.raises(BodyLimitExceeded) as info:
        reader.feed(bomb)
    assert info.value.which == "decompressed" and reader.decoded_bytes <= 4097

    with pytest.raises(UnsupportedEncoding):
        BodyReader("br", 100, 100)
    with pytest.raises(BadEncoding):
        BodyReader("gzip", 100, 100).feed(b"not gzip at all")
