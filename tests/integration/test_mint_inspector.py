"""Mint inspection and the safety gates end to end: LiteSVM chain -> RPC fake over HTTP -> RpcPool ->
MintInspector -> gates; plus the fake's own contract (error shapes, jsonParsed)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from dexscan.chain.mint import MintInspector
from dexscan.chain.rpc import RpcPool
from dexscan.clock import SimClock
from dexscan.config import Settings, load_settings
from dexscan.demo.servers.fake_chain import FakeChain
from dexscan.demo.servers.rpc import RpcFakeServer
from dexscan.domain import GateStatus, GateVerdict, MintFacts
from dexscan.gates import GateInput, evaluate_gates
from dexscan.plugins import build_gates
from dexscan.store import Store

# Virtual time: endpoint latencies are measured on the loop's clock, so load cannot reorder them.
pytestmark = pytest.mark.virtual_time

T0 = 1_760_000_000
MISSING = str(Keypair.from_seed(b"\x07" * 32).pubkey())


@dataclass
class Env:
    chain: FakeChain
    server: RpcFakeServer
    clock: SimClock
    settings: Settings
    pool: RpcPool

    def inspector(self, store: Store | None = None) -> MintInspector:
        # One holder read at a time: with a SimClock at speed 0, a task waiting for budget moves
        # time on by whole seconds while another task's request is still in flight, which no real
        # network does; sequential reads keep the server's clock and the budgets' clock in step.
        return MintInspector(self.pool, self.settings, self.clock, store, holder_concurrency=1)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    chain = FakeChain()
    clock = SimClock(T0)
    async with RpcFakeServer(chain, clock=clock) as server:
        settings = load_settings(env={}).with_overrides({"rpc.endpoints": [server.url]})
        async with RpcPool.from_settings(settings, clock) as pool:
            yield Env(chain, server, clock, settings, pool)


def verdicts(env: Env, facts: MintFacts) -> dict[str, GateVerdict]:
    gates = [g for g in build_gates(env.settings.gates) if g.name in
             ("mint_authority", "freeze_authority", "token2022_extensions")]
    return {v.gate: v for v in evaluate_gates(gates, GateInput(facts.mint, T0, (), facts))}


async def test_mint_authority_fails_until_a_real_set_authority_renounces_it(env: Env) -> None:
    mint = env.chain.create_mint(b"acc-mint", mint_authority=True, holders=(100,))
    inspector = env.inspector()
    v = verdicts(env, (await inspector.inspect([mint]))[mint])
    auth = str(env.chain.authority.pubkey())
    assert (v["mint_authority"].status, v["mint_authority"].reason) == (
        GateStatus.FAIL, f"mint authority is set ({auth}): supply can be inflated")
    assert v["freeze_authority"].status is GateStatus.PASS
    env.chain.renounce(mint, "mint")
    env.clock.advance(env.settings.universe.recheck_failed_after_s)  # a failing mint is re-checked later
    v = verdicts(env, (await inspector.inspect([mint]))[mint])
    assert (v["mint_authority"].status, v["mint_authority"].reason) == (GateStatus.PASS, "mint authority renounced")


async def test_freeze_authority_fails_until_renounced(env: Env) -> None:
    mint = env.chain.create_mint(b"acc-freeze", freeze_authority=True)
    inspector = env.inspector()
    v = verdicts(env, (await inspector.inspect([mint]))[mint])
    auth = str(env.chain.authority.pubkey())
    assert (v["freeze_authority"].status, v["freeze_authority"].reason) == (
        GateStatus.FAIL, f"freeze authority is set ({auth}): holders can be frozen")
    env.chain.renounce(mint, "freeze")
    env.clock.advance(1)
    assert (await inspector.inspect([mint]))[mint].freeze_authority == auth  # cached until the re-check
    env.clock.advance(env.settings.universe.recheck_failed_after_s)
    v = verdicts(env, (await inspector.inspect([mint]))[mint])
    assert (v["freeze_authority"].status, v["freeze_authority"].reason) == (
        GateStatus.PASS, "freeze authority renounced")


async def test_token2022_transfer_fee_above_limit_fails_with_the_fee(env: Env) -> None:
    high = env.chain.create_mint(b"acc-fee-high", token2022=True, transfer_fee_bps=500)
    low = env.chain.create_mint(b"acc-fee-low", token2022=True, transfer_fee_bps=100)
    facts = await env.inspector().inspect([high, low])
    v = verdicts(env, facts[high])["token2022_extensions"]
    assert (v.status, v.reason) == (GateStatus.FAIL, "transfer fee 500 bps > 100 bps")
    assert (v.details["transfer_fee_bps"], v.details["extensions"]) == (500, ["transferFeeConfig"])
    v = verdicts(env, facts[low])["token2022_extensions"]
    assert (v.status, v.reason) == (GateStatus.PASS, "no risky extensions; transfer fee 100 bps <= 100 bps")


async def test_risky_extensions_from_the_real_program_fail(env: Env) -> None:
    cases = {
        "permanentDelegate": (True, f"permanent delegate {env.chain.authority.pubkey()} can move or burn"),
        "nonTransferable": (True, "token is non-transferable"),
        "defaultAccountState": ("frozen", "new token accounts start frozen"),
        "pausableConfig": (True, "token is pausable"),
        "transferHook": (True, "transfer hook program "),
    }
    mints = {name: env.chain.create_mint(f"acc-ext-{name}".encode(), extensions={name: value}, holders=(5,))
             for name, (value, _) in cases.items()}
    facts = await env.inspector().inspect(list(mints.values()))
    for name, mint in mints.items():
        v = verdicts(env, facts[mint])["token2022_extensions"]
        assert v.status is GateStatus.FAIL and v.reason.startswith(cases[name][1]), (name, v.reason)


async def test_non_mint_and_missing_accounts_are_rejected_with_clear_reasons(env: Env) -> None:
    wallet = env.chain.create_wallet(b"acc-wallet")
    mint = env.chain.create_mint(b"acc-holder", holders=(7,))
    token_account = env.chain.token_accounts(mint)[0]
    facts = await env.inspector().inspect([wallet, MISSING, token_account])
    for gate in ("mint_authority", "freeze_authority", "token2022_extensions"):
        assert (verdicts(env, facts[wallet])[gate].status, verdicts(env, facts[wallet])[gate].reason) == (
            GateStatus.FAIL, "account is not a token mint: owned by 11111111111111111111111111111111, "
                             "not the SPL Token or Token-2022 program")
        assert (verdicts(env, facts[MISSING])[gate].status, verdicts(env, facts[MISSING])[gate].reason) == (
            GateStatus.FAIL, "account does not exist on chain")
        assert verdicts(env, facts[token_account])[gate].reason == (
            "account is owned by spl-token but is not an initialized mint (a token account or multisig)")
    assert (facts[MISSING].exists, facts[MISSING].read_error) == (False, None)


async def test_250_mints_take_exactly_3_get_multiple_accounts_calls(env: Env) -> None:
    started = time.perf_counter()
    mints = [env.chain.create_mint(b"bulk-%d" % i, mint_authority=i % 5 == 0) for i in range(250)]
    created_s = time.perf_counter() - started
    assert created_s >= 0  # measured for the report; creation is ~1 ms per mint on LiteSVM
    facts = await env.inspector().inspect(mints, holders=False)
    assert env.server.stats.requests["getMultipleAccounts"] == 3
    assert env.server.stats.total == 3
    assert len(facts) == 250 and all(f.is_mint and f.read_error is None for f in facts.values())
    assert sum(f.mint_authority is not None for f in facts.values()) == 50


async def test_holders_of_250_mints_stay_within_budget(env: Env) -> None:
    mints = [env.chain.create_mint(b"hold-%d" % i, holders=(1_000, 600, 300), pool_vault_holder=0)
             for i in range(250)]
    facts = await env.inspector().inspect(mints, holders=True)
    req = env.server.stats.requests
    # 3 mint reads + 8 for 750 token accounts + 3 for the 250 off-curve (pool) owners
    assert (req["getMultipleAccounts"], req["getTokenLargestAccounts"]) == (3 + 8 + 3, 250)
    assert env.server.stats.rate_limited == 0
    assert {f.top10_share_pct for f in facts.values()} == {900 / 1_900 * 100}


async def test_top10_share_excludes_pool_vaults(env: Env) -> None:
    holders = (5_000, *[400 - 10 * i for i in range(12)])
    mint = env.chain.create_mint(b"acc-top10", holders=holders, pool_vault_holder=0)
    f = (await env.inspector().inspect([mint]))[mint]
    supply = sum(holders)
    assert f.supply == supply
    assert f.top10_share_pct == sum(400 - 10 * i for i in range(10)) / supply * 100
    no_vault = env.chain.create_mint(b"acc-top10-b", holders=holders)
    g = (await env.inspector().inspect([no_vault]))[no_vault]
    assert g.top10_share_pct == (5_000 + sum(400 - 10 * i for i in range(9))) / supply * 100


async def test_renounced_mints_are_cached_forever_and_persisted(env: Env, store: Store) -> None:
    safe = env.chain.create_mint(b"acc-safe", holders=(10, 5))
    risky = env.chain.create_mint(b"acc-risky", mint_authority=True)
    inspector = env.inspector(store)
    await inspector.inspect([safe, risky], holders=False)
    assert env.server.stats.requests["getMultipleAccounts"] == 1
    env.clock.advance(10 * 86_400)
    await inspector.inspect([safe], holders=False)
    assert env.server.stats.requests["getMultipleAccounts"] == 1  # renounced is forever: no read
    await inspector.inspect([risky], holders=False)
    assert env.server.stats.requests["getMultipleAccounts"] == 2  # failing: re-read after the interval
    fresh = env.inspector(store)  # a restart: facts come back from the store
    f = (await fresh.inspect([safe], holders=False))[safe]
    assert (f.is_mint, f.mint_authority, f.checked_at) == (True, None, T0)
    assert env.server.stats.requests["getMultipleAccounts"] == 2
    assert (await store.mint_facts(risky)).mint_authority == str(env.chain.authority.pubkey())  # type: ignore[union-attr]


async def test_invalid_address_is_unverified_not_sent(env: Env) -> None:
    facts = await env.inspector().inspect(["not-base58-0OIl"])
    assert facts["not-base58-0OIl"].read_error == (
        "invalid address: 'not-base58-0OIl' is not base58 (character '-' is not base58)")
    assert env.server.stats.total == 0


# -- the fake's contract ------------------------------------------------------------------------------


async def rpc(url: str, method: str, params: list[object] | None = None) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
        async with http.post(url, json=body) as resp:
            return resp.status, await resp.json()


async def test_fake_error_shapes(env: Env) -> None:
    url = env.server.url
    keys = [MISSING] * 101
    assert await rpc(url, "getMultipleAccounts", [keys]) == (200, {
        "jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "Too many inputs provided; max 100"}})
    assert (await rpc(url, "getAccountInfo", ["abc"]))[1]["error"] == {
        "code": -32602, "message": "Invalid param: WrongSize"}
    assert (await rpc(url, "getAccountInfo", ["0OIl"]))[1]["error"] == {
        "code": -32602, "message": "Invalid param: Invalid"}
    assert (await rpc(url, "getAccountInfo", [MISSING, {"encoding": "base64"}]))[1]["result"] == {
        "context": {"slot": env.chain.slot, "apiVersion": "2.2.14"}, "value": None}
    await env.server.inject("lagging", 42)
    assert await rpc(url, "getHealth") == (200, {"jsonrpc": "2.0", "id": 1, "error": {
        "code": -32005, "message": "Node is behind by 42 slots", "data": {"numSlotsBehind": 42}}})
    assert (await rpc(url, "getSlot"))[1]["result"] == env.chain.slot - 42
    await env.server.recover()
    await env.server.inject("rate_limited")
    assert await rpc(url, "getSlot") == (429, {"jsonrpc": "2.0", "id": 1, "error": {
        "code": 429, "message": "Too many requests for a specific RPC call, contact your app developer or "
                                "support@rpcpool.com."}})
    await env.server.inject("down")
    with pytest.raises(aiohttp.ClientConnectorError):
        await rpc(url, "getSlot")
    await env.server.recover()
    assert await rpc(url, "getHealth") == (200, {"jsonrpc": "2.0", "result": "ok", "id": 1})


async def test_fake_json_parsed_matches_the_documented_shape(env: Env) -> None:
    mint = env.chain.create_mint(b"acc-json", token2022=True, transfer_fee_bps=250, holders=(1_500_000,))
    auth = str(env.chain.authority.pubkey())
    _, body = await rpc(env.server.url, "getAccountInfo", [mint, {"encoding": "jsonParsed"}])
    value = body["result"]["value"]  # type: ignore[index]
    assert value["owner"] == "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
    assert value["rentEpoch"] == 2**64 - 1
    data = value["data"]
    assert (data["program"], data["parsed"]["type"], data["space"]) == ("spl-token-2022", "mint", 278)
    info = data["parsed"]["info"]
    assert (info["mintAuthority"], info["freezeAuthority"], info["supply"], info["decimals"]) == (
        None, None, "1500000", 6)
    fee = info["extensions"][0]
    assert fee["extension"] == "transferFeeConfig"
    assert fee["state"]["newerTransferFee"]["transferFeeBasisPoints"] == 250
    assert fee["state"]["transferFeeConfigAuthority"] == auth
    holder = env.chain.token_accounts(mint)[0]
    _, body = await rpc(env.server.url, "getMultipleAccounts", [[holder], {"encoding": "jsonParsed"}])
    info = body["result"]["value"][0]["data"]["parsed"]["info"]  # type: ignore[index]
    assert info["tokenAmount"] == {"amount": "1500000", "decimals": 6, "uiAmount": 1.5, "uiAmountString": "1.5"}
    assert (info["mint"], info["state"]) == (mint, "initialized")
    # solana-py parses the fake's jsonParsed and largest-accounts answers into its typed responses
    async with AsyncClient(env.server.url) as client:
        parsed: Any = (await client.get_account_info_json_parsed(Pubkey.from_string(mint))).value
        assert parsed.data.parsed["info"]["extensions"][0]["extension"] == "transferFeeConfig"
        largest = (await client.get_token_largest_accounts(Pubkey.from_string(mint))).value
        assert [(str(r.address), r.amount.amount) for r in largest] == [(holder, "1500000")]
