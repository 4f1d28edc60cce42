"""The RPC failover pool against three real local endpoints sharing one LiteSVM chain.

solana-py 0.41 talks through httpx2, which ``httpx`` mocks cannot see, so every test here goes over
HTTP to :class:`RpcFakeServer`. Time for breakers and budgets is a :class:`SimClock` shared with the
servers' own rate windows, so cool-downs and 10-second windows pass instantly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from solders.pubkey import Pubkey

from dexscan.chain.mint import MintInspector
from dexscan.chain.rpc import RpcPool
from dexscan.clock import SimClock
from dexscan.config import Settings, load_settings
from dexscan.demo.servers.fake_chain import FakeChain
from dexscan.demo.servers.rpc import RpcFakeServer
from dexscan.domain import GateStatus
from dexscan.errors import RpcUnavailable
from dexscan.gates import GateInput, evaluate_gates
from dexscan.plugins import build_gates

# Virtual time: latencies are measured on the loop's clock, so an injected 150 ms delay is exact
# and a loaded machine cannot make one fast loopback endpoint rank behind another.
pytestmark = pytest.mark.virtual_time

T0 = 1_760_000_000


@dataclass
class World:
    chain: FakeChain
    clock: SimClock
    servers: list[RpcFakeServer]
    mints: list[str]

    def settings(self, **overrides: Any) -> Settings:
        base = {"rpc.endpoints": [s.url for s in self.servers], "rpc.timeout_s": 2.0}
        return load_settings(env={}).with_overrides({**base, **{f"rpc.{k}": v for k, v in overrides.items()}})

    def pool(self, **overrides: Any) -> RpcPool:
        return RpcPool.from_settings(self.settings(**overrides), self.clock)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    chain = FakeChain()
    mints = [chain.create_mint(b"pool-%d" % i, holders=(1_000, 600, 300), pool_vault_holder=0) for i in range(3)]
    clock = SimClock(T0)
    servers = [RpcFakeServer(chain, name=f"rpc{i}", clock=clock) for i in range(3)]
    for s in servers:
        await s.start()
    try:
        yield World(chain, clock, servers, mints)
    finally:
        for s in servers:
            await s.close()


async def read(pool: RpcPool, mint: str) -> tuple[str, int]:
    served = await pool.get_multiple_accounts([Pubkey.from_string(mint)])
    assert served.value[1][0] is not None
    return served.endpoint, served.attempts


async def test_primary_killed_mid_run_next_call_served_by_another(world: World) -> None:
    async with world.pool(breaker_failures=1) as pool:
        names = pool.names
        assert await read(pool, world.mints[0]) == (names[0], 1)
        await world.servers[0].inject("down")
        inspector = MintInspector(pool, world.settings(), world.clock)
        facts = await inspector.inspect(world.mints, holders=False)
        assert {f.read_error for f in facts.values()} == {None}  # no failed check
        assert {f.endpoint for f in facts.values()} == {names[1]}
        assert all(f.is_mint and f.mint_authority is None for f in facts.values())
        st = pool.state()
        assert (st[0].failures, st[0].breaker, st[1].served) == (1, "open", 1)
        assert "transport error" in (st[0].last_error or "")
        assert await read(pool, world.mints[1]) == (names[1], 1)  # open breaker: not even tried


async def test_node_behind_is_skipped_then_rejoins_after_health_check(world: World) -> None:
    async with world.pool() as pool:
        names = pool.names
        await world.servers[0].inject("lagging", 80)
        assert await read(pool, world.mints[0]) == (names[1], 2)  # -32005 moved the call on
        st = pool.state()[0]
        assert (st.healthy, st.lag, st.last_error) == (False, 80, "-32005 Node is behind by 80 slots")
        assert await read(pool, world.mints[0]) == (names[1], 1)  # unhealthy: ranked last
        states = await pool.check_health()
        assert [(s.healthy, s.lag) for s in states] == [(False, 80), (True, 0), (True, 0)]
        await world.servers[0].recover()
        states = await pool.check_health()
        assert [(s.healthy, s.lag) for s in states] == [(True, 0), (True, 0), (True, 0)]
        assert await read(pool, world.mints[0]) == (names[0], 1)


async def test_stale_slot_beyond_max_lag_is_unhealthy(world: World) -> None:
    async with world.pool(max_slot_lag=50) as pool:
        await world.servers[2].inject("stale", 30)
        states = await pool.check_health()
        assert [(s.healthy, s.lag) for s in states] == [(True, 0), (True, 0), (True, 30)]
        await world.servers[2].inject("stale", 51)
        states = await pool.check_health()
        assert [(s.healthy, s.lag, s.slot) for s in states][2] == (False, 51, world.chain.slot - 51)


async def test_rate_limited_primary_is_skipped_and_penalised(world: World) -> None:
    async with world.pool(breaker_failures=5) as pool:
        names = pool.names
        await world.servers[0].inject("rate_limited")
        assert await read(pool, world.mints[0]) == (names[1], 2)
        st = pool.state()[0]
        assert (st.rate_limited, st.breaker, st.budget_used, st.last_error) == (1, "closed", 100, "HTTP 429")
        assert world.servers[0].stats.rate_limited == 1
        assert await read(pool, world.mints[0]) == (names[1], 1)  # no budget room left on the primary
        world.clock.advance(10.1)
        await world.servers[0].recover()
        assert await read(pool, world.mints[0]) == (names[0], 1)


async def test_all_down_every_token_unverified_nothing_crashes(world: World) -> None:
    async with world.pool(breaker_failures=1) as pool:
        names = pool.names
        for s in world.servers:
            await s.inject("down")
        facts = await MintInspector(pool, world.settings(), world.clock).inspect(world.mints, holders=True)
        for mint, f in facts.items():
            assert (f.read_error or "").startswith("no RPC endpoint could serve getMultipleAccounts")
            assert all(n in (f.read_error or "") for n in names)
            verdicts = evaluate_gates(build_gates(world.settings().gates), GateInput(mint, T0, (), f))
            assert [v.status for v in verdicts] == [GateStatus.UNVERIFIED] * 6
        with pytest.raises(RpcUnavailable, match="every endpoint's circuit breaker is open"):
            await pool.get_slot()
        assert [s.breaker for s in pool.state()] == ["open"] * 3


async def test_recovered_primary_rejoins_after_the_cool_down(world: World) -> None:
    async with world.pool(breaker_failures=1, breaker_cooldown_s=30.0) as pool:
        names = pool.names
        await world.servers[0].inject("down")
        assert await read(pool, world.mints[0]) == (names[1], 2)
        await world.servers[0].recover()
        assert await read(pool, world.mints[0]) == (names[1], 1)  # still cooling down
        world.clock.advance(29.0)
        assert await read(pool, world.mints[0]) == (names[1], 1)
        world.clock.advance(1.0)
        assert await read(pool, world.mints[0]) == (names[0], 1)  # half-open trial succeeded
        assert pool.state()[0].breaker == "closed"
        assert pool.last_endpoint == names[0]


async def test_timeout_moves_the_call_on(world: World) -> None:
    async with world.pool(timeout_s=0.2) as pool:
        await world.servers[0].inject("slow", 2.0)
        assert await read(pool, world.mints[0]) == (pool.names[1], 2)
        assert (pool.state()[0].last_error or "").startswith("timed out")


async def test_hedged_reads_keep_the_first_answer(world: World) -> None:
    async with world.pool(hedged_reads=True) as pool:
        await world.servers[0].inject("slow", 0.3)
        assert await read(pool, world.mints[0]) == (pool.names[1], 2)
        assert world.servers[0].stats.requests["getMultipleAccounts"] == 1  # sent to both
        assert world.servers[1].stats.requests["getMultipleAccounts"] == 1
        assert [s.failures for s in pool.state()] == [0, 0, 0]  # the loser was cancelled, not failed


async def test_budgets_keep_dexscan_below_the_public_limits(world: World) -> None:
    srv = world.servers[0]
    async with RpcPool([srv.url], world.settings().rpc, world.clock) as pool:
        for _ in range(120):
            served = await pool.get_token_largest_accounts(Pubkey.from_string(world.mints[0]))
            assert [a for _, a in served.value] == [1_000, 600, 300]
    assert srv.stats.requests["getTokenLargestAccounts"] == 120
    assert srv.stats.rate_limited == 0
    assert world.clock.now() - T0 >= 20.0  # 40 per method per 10 s: two full windows waited out
    # the same burst sent without budgets is refused by the server at the 41st request
    fresh = RpcFakeServer(world.chain, clock=world.clock)
    async with fresh, aiohttp.ClientSession() as http:
        statuses = []
        for i in range(41):
            body = {"jsonrpc": "2.0", "id": i, "method": "getTokenLargestAccounts", "params": [world.mints[0]]}
            async with http.post(fresh.url, json=body) as resp:
                statuses.append(resp.status)
        assert statuses == [200] * 40 + [429]


async def test_endpoint_names_are_masked(world: World) -> None:
    keyed = f"{world.servers[0].url}/v2/secret-key-123"
    settings = load_settings(env={"DEXSCAN_RPC_URLS": keyed}).with_overrides(
        {"rpc.endpoints": [f"{world.servers[1].url}/?api-key=other-secret", world.servers[2].url]})
    async with RpcPool.from_settings(settings, world.clock) as pool:
        port0, port1 = world.servers[0].url.rsplit(":", 1)[1], world.servers[1].url.rsplit(":", 1)[1]
        assert pool.names == [f"http://127.0.0.1:{port0}/***", f"http://127.0.0.1:{port1}/***",
                              world.servers[2].url]
        assert (await read(pool, world.mints[0]))[0] == f"http://127.0.0.1:{port0}/***"
        for s in world.servers:
            await s.inject("down")
        with pytest.raises(RpcUnavailable) as err:
            await pool.get_slot()
        assert "secret" not in str(err.value) and "secret" not in repr(pool.state())
    same_host = RpcPool([f"{world.servers[0].url}/k1", f"{world.servers[0].url}/k2"], settings.rpc, world.clock)
    assert same_host.names == [f"http://127.0.0.1:{port0}/***", f"http://127.0.0.1:{port0}/*** #2"]
    await same_host.close()


async def test_endpoints_are_ranked_by_measured_latency(world: World) -> None:
    async with world.pool() as pool:
        await world.servers[0].inject("slow", 0.15)
        states = await pool.check_health()
        assert states[0].latency_ms is not None and states[0].latency_ms >= 150
        assert await read(pool, world.mints[0]) == (pool.names[1], 1)  # the configured first is slow
        await world.servers[0].recover()


async def test_background_health_checks_run_until_close(world: World) -> None:
    settings = world.settings(health_interval_s=0.01)
    pool = RpcPool.from_settings(settings)  # real clock: the loop sleeps between rounds
    await world.servers[1].inject("lagging", 77)
    pool.start()
    for _ in range(500):
        if all(s.requests >= 4 for s in pool.state()):
            break
        await asyncio.sleep(0.01)
    states = pool.state()
    assert [(s.healthy, s.lag) for s in states] == [(True, 0), (False, 77), (True, 0)]
    assert all(s.requests >= 4 for s in states)  # at least two rounds of getHealth + getSlot
    await pool.close()
    after = world.servers[0].stats.requests["getHealth"]
    await asyncio.sleep(0.05)
    assert world.servers[0].stats.requests["getHealth"] == after  # the loop stopped with the pool
