"""An RPC endpoint that refuses a method is not a failing endpoint (issue 12, point 3).

The public mainnet endpoint answers ``getTokenLargestAccounts`` of SPL Token mints with ``-32010``
("… excluded from account secondary indexes; this RPC method unavailable for key") and providers that
disable a method answer ``-32601`` (``reference/external-apis.md`` §5.1). The RPC fake reproduces both
(``public_like``, ``disabled_methods``); these tests hold the pool, the inspector, the gates,
``dexscan check`` and ``dexscan doctor`` to: the breaker stays closed, the other gates are untouched,
the holder share is "unavailable from <endpoint>".
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from solders.pubkey import Pubkey

from dexscan.chain.mint import MintInspector
from dexscan.chain.rpc import RpcMethodRefused, RpcPool
from dexscan.check import as_json, check_mints
from dexscan.clock import SimClock
from dexscan.config import Settings, load_settings
from dexscan.demo.servers.fake_chain import FakeChain
from dexscan.demo.servers.rpc import RpcFakeServer
from dexscan.doctor import check_rpc
from dexscan.domain import GateStatus
from dexscan.gates import GateInput, evaluate_gates
from dexscan.plugins import build_gates

T0 = 1_760_000_000
REFUSAL = ("-32010 TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA excluded from account secondary indexes; "
           "this RPC method unavailable for key")
#: Budgets well above what the tests send, so no test waits for a 10 s window to pass.
ROOMY = {"rpc.requests_per_10s": 10_000, "rpc.method_requests_per_10s": 10_000}


def settings_for(*urls: str, **extra: object) -> Settings:
    return load_settings(env={}).with_overrides({"rpc.endpoints": list(urls), **ROOMY, **extra})


@pytest.fixture
def chain() -> FakeChain:
    return FakeChain()


@pytest.fixture
async def public(chain: FakeChain) -> AsyncIterator[RpcFakeServer]:
    async with RpcFakeServer(chain, name="public", clock=SimClock(T0), limits=(10_000, 10_000),
                             public_like=True) as server:
        yield server


async def test_a_hundred_refused_holder_reads_leave_the_breaker_closed(
        chain: FakeChain, public: RpcFakeServer) -> None:
    mint = chain.create_mint(b"refused-0", holders=(700, 300))
    async with RpcPool.from_settings(settings_for(public.url), SimClock(T0)) as pool:
        for _ in range(100):
            with pytest.raises(RpcMethodRefused) as info:
                await pool.get_token_largest_accounts(Pubkey.from_string(mint))
        assert str(info.value) == f"getTokenLargestAccounts unavailable from {public.url} ({REFUSAL})"
        assert info.value.endpoints == [public.url]
        (state,) = pool.state()
        assert (state.breaker, state.failures, state.healthy, state.last_error) == ("closed", 0, True, None)
        assert state.refused == ("getTokenLargestAccounts",)
        assert pool.refusals() == {public.url: {"getTokenLargestAccounts": REFUSAL}}
        served = await pool.get_multiple_accounts([Pubkey.from_string(mint)])  # the endpoint still serves
        assert served.endpoint == public.url and served.value[1][0] is not None
    assert public.stats.requests["getTokenLargestAccounts"] == 100


async def test_twelve_refused_mints_keep_their_mint_and_freeze_verdicts(
        chain: FakeChain, public: RpcFakeServer) -> None:
    mints = [chain.create_mint(b"refused-%d" % i, holders=(700, 300)) for i in range(12)]
    settings = settings_for(public.url)
    clock = SimClock(T0)
    async with RpcPool.from_settings(settings, clock) as pool:
        facts = await MintInspector(pool, settings, clock).inspect(mints, holders=True)
        assert [s.breaker for s in pool.state()] == ["closed"]
    why = f"getTokenLargestAccounts unavailable from {public.url} ({REFUSAL})"
    for m in mints:
        f = facts[m]
        assert (f.is_mint, f.read_error, f.top10_share_pct, f.holders_unavailable) == (True, None, None, why)
    gated = build_gates(settings.with_overrides({"gates.max_top10_pct": 30.0}).gates)
    verdicts = {v.gate: v for v in evaluate_gates(gated, GateInput(mints[0], T0, (), facts[mints[0]]))}
    assert (verdicts["mint_authority"].status, verdicts["mint_authority"].reason) == (
        GateStatus.PASS, "mint authority renounced")
    assert (verdicts["freeze_authority"].status, verdicts["freeze_authority"].reason) == (
        GateStatus.PASS, "freeze authority renounced")
    assert verdicts["token2022_extensions"].status is GateStatus.PASS
    assert verdicts["token2022_extensions"].details["holders_unavailable"] == why
    assert (verdicts["top10_holders"].status, verdicts["top10_holders"].reason) == (
        GateStatus.UNVERIFIED, f"top-10 holder share unknown: {why}")
    off = {v.gate: v.status for v in evaluate_gates(build_gates(settings.gates),
                                                     GateInput(mints[0], T0, (), facts[mints[0]]))}
    assert "top10_holders" not in off  # the gate is off by default: nothing becomes unverified
    assert {off[g] for g in ("mint_authority", "freeze_authority", "token2022_extensions")} == {GateStatus.PASS}


async def test_the_next_endpoint_serves_what_the_first_refuses(chain: FakeChain, public: RpcFakeServer) -> None:
    mint = chain.create_mint(b"refused-failover", holders=(700, 300))
    async with RpcFakeServer(chain, name="full", clock=SimClock(T0), limits=(10_000, 10_000)) as full:
        pool = RpcPool.from_settings(settings_for(public.url, full.url), SimClock(T0))
        async with pool:
            first = await pool.get_token_largest_accounts(Pubkey.from_string(mint))
            assert (first.endpoint, first.attempts, [a for _, a in first.value]) == (full.url, 2, [700, 300])
            second = await pool.get_token_largest_accounts(Pubkey.from_string(mint))
            assert (second.endpoint, second.attempts) == (full.url, 1)  # the refusing endpoint is ranked last
            assert [(s.breaker, s.failures, s.refused) for s in pool.state()] == [
                ("closed", 0, ("getTokenLargestAccounts",)), ("closed", 0, ())]
    assert public.stats.requests["getTokenLargestAccounts"] == 1


async def test_a_token_2022_mint_is_served_by_the_public_like_endpoint(
        chain: FakeChain, public: RpcFakeServer) -> None:
    mint = chain.create_mint(b"t22-served", token2022=True, holders=(900, 100))
    async with RpcPool.from_settings(settings_for(public.url), SimClock(T0)) as pool:
        served = await pool.get_token_largest_accounts(Pubkey.from_string(mint))
    assert [a for _, a in served.value] == [900, 100]


async def test_a_disabled_method_is_a_refusal_too(chain: FakeChain) -> None:
    mint = chain.create_mint(b"disabled", holders=(10,))
    server = RpcFakeServer(chain, name="nolargest", clock=SimClock(T0), limits=(10_000, 10_000),
                           disabled_methods=("getTokenLargestAccounts",))
    async with server, RpcPool.from_settings(settings_for(server.url), SimClock(T0)) as pool:
        with pytest.raises(RpcMethodRefused) as info:
            await pool.get_token_largest_accounts(Pubkey.from_string(mint))
        assert info.value.refused == {server.url: "-32601 Method not found"}
        assert pool.state()[0].breaker == "closed"


async def test_check_json_with_a_refusing_endpoint(chain: FakeChain, public: RpcFakeServer) -> None:
    """``dexscan check --json`` (its report builder): twelve refused holder reads, authorities still pass."""
    mints = [chain.create_mint(b"check-refused-%d" % i, holders=(700, 300)) for i in range(12)]
    settings = settings_for(public.url, **{"sources.dexscreener.enabled": False})
    report = as_json(await check_mints(settings, mints, SimClock(T0)))
    for entry in report["mints"]:
        verdicts = {v["gate"]: (v["status"], v["reason"]) for v in entry["verdicts"]}
        assert verdicts["mint_authority"] == ("pass", "mint authority renounced")
        assert verdicts["freeze_authority"] == ("pass", "freeze authority renounced")
        assert verdicts["token2022_extensions"] == ("pass", "classic SPL token: no extensions")
        assert entry["facts"]["holders_unavailable"] == (
            f"getTokenLargestAccounts unavailable from {public.url} ({REFUSAL})")
    (rpc,) = report["rpc"]
    assert (rpc["breaker"], rpc["failures"], rpc["refused"]) == ("closed", 0, ["getTokenLargestAccounts"])
    assert public.stats.requests["getTokenLargestAccounts"] == 12


async def test_doctor_names_the_endpoint_that_refuses(chain: FakeChain, public: RpcFakeServer) -> None:
    mint = chain.create_mint(b"doctor-probe", holders=(5,))
    settings = load_settings(env={})
    row = await check_rpc(public.url, 5.0, "rpc 1", settings, probe_mint=mint)
    assert (row.status, row.refused) == ("ok", ("getTokenLargestAccounts",))
    assert row.detail == (f"healthy, slot {chain.slot}; refuses getTokenLargestAccounts ({REFUSAL}): "
                          "holder shares unavailable from it")
    async with RpcFakeServer(chain, name="full", clock=SimClock(T0)) as full:
        row = await check_rpc(full.url, 5.0, "rpc 2", settings, probe_mint=mint)
    assert (row.status, row.detail, row.refused) == ("ok", f"healthy, slot {chain.slot}", ())


def test_the_demo_s_first_endpoint_plays_the_public_one(chain: FakeChain) -> None:
    assert RpcFakeServer(chain, name="rpc-1").public_like
    assert not RpcFakeServer(chain, name="rpc-2").public_like
    assert not RpcFakeServer(chain).public_like
