"""Fail-closed RPC trust (issue 17 point 1): a lying endpoint can make a token fail, never pass.

Every endpoint is a real :class:`RpcFakeServer` over HTTP sharing one LiteSVM chain; the liar is the
same fake with the ``slot_lead`` and ``lie_renounced`` faults (a slot 1,000,000 above the others, and
every mint served with both authorities cut to none).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from dexscan.chain.mint import MintInspector
from dexscan.chain.rpc import RpcPool
from dexscan.clock import SimClock
from dexscan.config import Settings, load_settings
from dexscan.demo.servers.fake_chain import FakeChain
from dexscan.demo.servers.rpc import RpcFakeServer
from dexscan.domain import GateStatus, MintFacts
from dexscan.gates import GateInput, evaluate_gates
from dexscan.plugins import build_gates
from dexscan.store import Store

# Virtual time: endpoint latencies are measured on the loop's clock, so load cannot reorder them.
pytestmark = pytest.mark.virtual_time

T0 = 1_760_000_000
LEAD = 1_000_000


@dataclass
class World:
    chain: FakeChain
    clock: SimClock
    honest: RpcFakeServer
    honest2: RpcFakeServer
    liar: RpcFakeServer
    live: list[str]  # six mints whose mint authority is set on chain

    def settings(self, *servers: RpcFakeServer) -> Settings:
        return load_settings(env={}).with_overrides({"rpc.endpoints": [s.url for s in servers]})

    def pool(self, *servers: RpcFakeServer) -> RpcPool:
        return RpcPool.from_settings(self.settings(*servers), self.clock)

    def inspector(self, pool: RpcPool, store: Store | None = None) -> MintInspector:
        return MintInspector(pool, self.settings(), self.clock, store, holder_concurrency=1)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    chain = FakeChain()
    live = [chain.create_mint(b"live-%d" % i, mint_authority=True, holders=(100,)) for i in range(6)]
    clock = SimClock(T0)
    servers = [RpcFakeServer(chain, name=n, clock=clock) for n in ("honest", "honest2", "liar")]
    for s in servers:
        await s.start()
    await servers[2].inject("slot_lead", LEAD)
    await servers[2].inject("lie_renounced")
    try:
        yield World(chain, clock, *servers, live)
    finally:
        for s in servers:
            await s.close()


def mint_gate(facts: MintFacts) -> tuple[GateStatus, str]:
    gate = next(g for g in build_gates(load_settings(env={}).gates) if g.name == "mint_authority")
    v = evaluate_gates([gate], GateInput(facts.mint, T0, (), facts))[0]
    return v.status, v.reason


def passed(facts: dict[str, MintFacts]) -> int:
    return sum(mint_gate(f)[0] is GateStatus.PASS for f in facts.values())


async def test_slot_inflating_endpoint_is_faulty_and_honest_ones_do_not_lag(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dexscan.chain.rpc")
    async with world.pool(world.liar, world.honest, world.honest2) as pool:
        liar, honest, _ = pool.names
        for _ in range(2):
            states = await pool.check_health()
            # before issue 17: the honest endpoints had lag 1,000,000, were unhealthy, and the liar served
            assert [(s.healthy, s.lag, s.slot_lead, s.faulty) for s in states] == [
                (False, None, LEAD, True), (True, 0, None, False), (True, 0, None, False)]
        assert dict(states[0].errors) == {"slot_lead": 2}
        leads = [r for r in caplog.records if "ahead of the other endpoints" in r.getMessage()]
        assert [(r.levelname, r.getMessage()) for r in leads] == [(
            "WARNING", f"rpc {liar} reports slot {world.chain.slot + LEAD}, {LEAD} slots ahead of the other "
            "endpoints (more than rpc.max_slot_lead = 1000): treated as faulty, not used until its slot is "
            "plausible")]  # logged once for two rounds
        facts = await world.inspector(pool).inspect(world.live, holders=False)
        assert {f.vouched_by for f in facts.values()} == {(honest, pool.names[2])}
        assert passed(facts) == 0
        assert world.liar.stats.requests["getMultipleAccounts"] == 0  # never chosen for a read
        await world.liar.recover("slot_lead")
        states = await pool.check_health()
        assert [(s.healthy, s.lag, s.slot_lead) for s in states] == [(True, 0, None)] * 3
        assert f"rpc {liar}: slot no longer ahead of the other endpoints; used again" in caplog.messages


async def test_a_plausible_lead_is_not_a_fault(world: World) -> None:
    await world.liar.recover()
    await world.liar.inject("slot_lead", 1000)  # rpc.max_slot_lead: still plausible, merely ahead
    async with world.pool(world.honest, world.liar) as pool:
        states = await pool.check_health()
        assert [(s.healthy, s.lag, s.slot_lead) for s in states] == [(False, 1000, None), (True, 0, None)]
        await world.liar.inject("slot_lead", 1001)
        states = await pool.check_health()
        assert [(s.healthy, s.lag, s.slot_lead) for s in states] == [(True, 0, None), (False, None, 1001)]


async def test_six_live_mint_authorities_through_a_lying_endpoint_admit_none(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    auth = str(world.chain.authority.pubkey())
    async with world.pool(world.liar) as alone:  # control: the liar's word alone admits all six
        facts = await world.inspector(alone).inspect(world.live, holders=False)
        assert passed(facts) == 6
        assert {f.vouched_by for f in facts.values()} == {(alone.names[0],)}
    async with world.pool(world.liar, world.honest) as pool:
        liar, honest = pool.names
        # before the first health check the liar, configured first, answers first: the honest one disagrees
        facts = await world.inspector(pool).inspect(world.live, holders=False)
        why = f"RPC endpoints disagree (mint authority: {liar} says none, {honest} says {auth})"
        assert {mint_gate(f) for f in facts.values()} == {(GateStatus.UNVERIFIED, f"chain read failed: {why}")}
        assert [dict(s.errors) for s in pool.state()] == [{"disagreement": 6}, {"disagreement": 6}]
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert warnings == [f"rpc {liar} and {honest} disagree on 6 mints ({world.live[0]}: mint authority: "
                            f"{liar} says none, {honest} says {auth}); they stay unverified until they agree"]
        # after it: the liar is faulty, so nothing confirms the honest answer either
        await pool.check_health()
        facts = await world.inspector(pool).inspect(world.live, holders=False)
        why = (f"no second RPC endpoint confirmed the answer of {honest} (no RPC endpoint could serve "
               f"getMultipleAccounts: {liar}: not used (slot {LEAD} ahead of the others))")
        assert {mint_gate(f) for f in facts.values()} == {(GateStatus.UNVERIFIED, f"chain read failed: {why}")}
    async with world.pool(world.honest, world.liar) as pool:  # the honest one first: the same refusal
        facts = await world.inspector(pool).inspect(world.live, holders=False)
        assert passed(facts) == 0 and all((f.read_error or "").startswith("RPC endpoints disagree")
                                          for f in facts.values())


async def test_a_lying_answer_is_not_cached_and_removing_the_liar_leaves_nothing_of_it(
        world: World, store: Store) -> None:
    await world.liar.recover("slot_lead")  # lie about authorities only: nothing looks wrong with its slot
    async with world.pool(world.liar, world.honest) as pool:
        facts = await world.inspector(pool, store).inspect(world.live, holders=False)
        assert passed(facts) == 0
    assert [await store.mint_facts(m) for m in world.live] == [None] * 6  # no lie stored, let alone as permanent
    # a database from a single-endpoint set-up where the liar was the only one: its word was cached forever
    async with world.pool(world.liar) as alone:
        await world.inspector(alone, store).inspect(world.live, holders=False)
        liar = alone.names[0]
    assert {(f.mint_authority, f.vouched_by) for f in [await store.mint_facts(m) for m in world.live]
            if f is not None} == {(None, (liar,))}
    world.clock.advance(30 * 86_400)
    # the liar joined by an honest endpoint: one voucher is not enough for two configured, so it is read again
    async with world.pool(world.honest, world.liar) as pool:
        facts = await world.inspector(pool, store).inspect(world.live, holders=False)
        assert passed(facts) == 0
    # the liar removed: its cached answers are not trusted; the honest endpoint is asked and says "set"
    before = world.honest.stats.requests["getMultipleAccounts"]
    async with world.pool(world.honest) as pool:
        facts = await world.inspector(pool, store).inspect(world.live, holders=False)
        honest = pool.names[0]
    assert world.honest.stats.requests["getMultipleAccounts"] == before + 1
    auth = str(world.chain.authority.pubkey())
    assert {mint_gate(f) for f in facts.values()} == {
        (GateStatus.FAIL, f"mint authority is set ({auth}): supply can be inflated")}
    assert {(f.mint_authority, f.vouched_by) for f in [await store.mint_facts(m) for m in world.live]
            if f is not None} == {(auth, (honest,))}


async def test_agreeing_endpoints_vouch_and_their_fact_stays_settled_while_both_are_configured(
        world: World, store: Store) -> None:
    safe = world.chain.create_mint(b"trust-safe", holders=(10,))
    async with world.pool(world.honest, world.honest2) as pool:
        f = (await world.inspector(pool, store).inspect([safe], holders=False))[safe]
        assert (f.mint_authority, f.vouched_by, mint_gate(f)[0]) == (None, tuple(pool.names), GateStatus.PASS)
    reads = (world.honest.stats.requests["getMultipleAccounts"], world.honest2.stats.requests["getMultipleAccounts"])
    assert reads == (1, 1)
    world.clock.advance(30 * 86_400)
    async with world.pool(world.honest2, world.honest) as pool:  # a restart, in another order: no read at all
        f = (await world.inspector(pool, store).inspect([safe], holders=False))[safe]
        assert f.checked_at == T0
    assert world.honest.stats.requests["getMultipleAccounts"] + world.honest2.stats.requests[
        "getMultipleAccounts"] == 2
    # one of the two vouchers replaced by another endpoint: read and confirmed again
    await world.liar.recover()
    async with world.pool(world.honest, world.liar) as pool:
        f = (await world.inspector(pool, store).inspect([safe], holders=False))[safe]
        assert (f.checked_at, f.vouched_by) == (T0 + 30 * 86_400, tuple(pool.names))
    assert world.liar.stats.requests["getMultipleAccounts"] == 1


async def rpc(url: str, method: str, params: list[object]) -> object:
    async with aiohttp.ClientSession() as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        async with http.post(url, json=body) as resp:
            answer = await resp.json()
            assert isinstance(answer, dict)
            return answer["result"]


async def test_the_fakes_lying_modes(world: World) -> None:
    mint = world.live[0]
    assert await rpc(world.liar.url, "getSlot", []) == world.chain.slot + LEAD
    assert await rpc(world.liar.url, "getHealth", []) == "ok"
    parsed = await rpc(world.liar.url, "getAccountInfo", [mint, {"encoding": "jsonParsed"}])
    honest = await rpc(world.honest.url, "getAccountInfo", [mint, {"encoding": "jsonParsed"}])
    assert isinstance(parsed, dict) and isinstance(honest, dict)
    assert parsed["context"]["slot"] == honest["context"]["slot"] + LEAD
    lie, truth = parsed["value"]["data"]["parsed"]["info"], honest["value"]["data"]["parsed"]["info"]
    assert (lie["mintAuthority"], lie["freezeAuthority"]) == (None, None)
    assert truth["mintAuthority"] == str(world.chain.authority.pubkey())
    assert {k: v for k, v in lie.items() if k not in ("mintAuthority", "freezeAuthority")} == {
        k: v for k, v in truth.items() if k not in ("mintAuthority", "freezeAuthority")}
    await world.liar.recover()
    assert await rpc(world.liar.url, "getAccountInfo", [mint, {"encoding": "jsonParsed"}]) == honest


async def test_agreed_facts_carry_the_older_slot(world: World) -> None:
    await world.liar.recover("lie_renounced")  # truthful accounts, inflated slot; no health check has run yet
    safe = world.chain.create_mint(b"trust-slot", holders=(10,))
    async with world.pool(world.liar, world.honest) as pool:
        f = (await world.inspector(pool).inspect([safe], holders=False))[safe]
        assert (f.vouched_by, f.endpoint, f.slot) == (tuple(pool.names), pool.names[0], world.chain.slot)
