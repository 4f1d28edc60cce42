"""``dexscan check`` through the real command line (``dexscan.cli.main``)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from solders.keypair import Keypair

from dexscan.cli import main
from dexscan.demo.servers.fake_chain import FakeChain
from dexscan.demo.servers.rpc import RpcFakeServer
from dexscan.domain import GateStatus
from dexscan.store import Store


def demo_mint(label: str) -> str:
    return str(Keypair.from_seed(hashlib.sha256(f"dexscan-demo:{label}".encode()).digest()).pubkey())


MISSING = str(Keypair.from_seed(b"\x05" * 32).pubkey())


def test_invalid_address_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "So1111111111111111111111111111111111111111O"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("dexscan: error: invalid mint address: 'So1111111111111111111111111111111111111111O' "
                   "is not base58 (character 'O' is not base58)\n")
    assert main(["check", demo_mint("renounced"), "abc"]) == 2
    assert capsys.readouterr().err == (
        "dexscan: error: invalid mint address: 'abc' decodes to 3 bytes; a Solana address is 32 bytes\n")


def test_demo_prints_the_verdict_table(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "--demo", demo_mint("renounced"), demo_mint("mint-authority")])
    out = capsys.readouterr().out
    assert code == 1  # market gates cannot pass for these chain-only demo mints
    for text in (f"{demo_mint('renounced')}", "mint_authority", "freeze_authority", "token2022_extensions",
                 "mint authority renounced", "classic SPL token: no extensions", "top-10 holders 50.0%",
                 "mint authority is set", "chain: http://127.0.0.1:", "chain read in", "0 of 2 mints passed"):
        assert text in out, text


def test_demo_json_for_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "--demo", "--json", demo_mint("fee-500bps"), MISSING, demo_mint("permanent-delegate")])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    by_mint = {m["mint"]: {v["gate"]: (v["status"], v["reason"]) for v in m["verdicts"]} for m in report["mints"]}
    assert by_mint[demo_mint("fee-500bps")]["token2022_extensions"] == ("fail", "transfer fee 500 bps > 100 bps")
    assert by_mint[demo_mint("fee-500bps")]["mint_authority"] == ("pass", "mint authority renounced")
    assert by_mint[MISSING]["mint_authority"] == ("fail", "account does not exist on chain")
    assert by_mint[demo_mint("permanent-delegate")]["token2022_extensions"][0] == "fail"
    assert [m["admitted"] for m in report["mints"]] == [False, False, False]
    # mints (1 batch), largest accounts of the 2 existing mints, their token accounts, their pool owners
    assert report["rpc"][0]["served"] == 1 + 2 + 1 + 1
    assert report["demo_mints"]["renounced"] == demo_mint("renounced")
    facts = report["mints"][0]["facts"]
    assert (facts["owner_program"], facts["extensions"][0]["name"]) == ("spl-token-2022", "transferFeeConfig")


@pytest.fixture
def threaded_rpc() -> Iterator[tuple[RpcFakeServer, FakeChain]]:
    """The RPC fake on its own loop in a thread, so ``main`` (which runs asyncio itself) can reach it."""
    chain = FakeChain()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = RpcFakeServer(chain, name="threaded")
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield server, chain
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_check_with_settings_pointing_at_the_fake_stores_verdicts(
        threaded_rpc: tuple[RpcFakeServer, FakeChain], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server, chain = threaded_rpc
    mint = chain.create_mint(b"cli-mint", freeze_authority=True, holders=(700, 300))
    config = tmp_path / "my.toml"
    config.write_text(f'[rpc]\nendpoints = ["{server.url}"]\n\n[sources.dexscreener]\nenabled = false\n')
    db = tmp_path / "check.db"
    assert main(["--config", str(config), "check", "--db", str(db), mint]) == 1
    out = capsys.readouterr().out
    assert "freeze authority is set" in out and f"chain: {server.url}" in out
    assert "DexScreener disabled" in out
    assert ("(only RPC endpoint: its answer is not cross-checked; configure a second, independent endpoint)"
            in " ".join(out.split()))

    async def stored() -> tuple[dict[str, tuple[GateStatus, str]], list[str]]:
        store = await Store.open(db)
        try:
            latest = await store.latest_verdicts(mint)
            vouched = next(v.details["vouched_by"] for v in latest if v.gate == "mint_authority")
            return {v.gate: (v.status, v.reason) for v in latest}, vouched
        finally:
            await store.close()

    verdicts, vouched_by = asyncio.run(stored())
    assert vouched_by == [server.url]  # the verdict records that one endpoint alone vouched
    assert verdicts["freeze_authority"][0] is GateStatus.FAIL
    assert verdicts["mint_authority"] == (GateStatus.PASS, "mint authority renounced")
    assert verdicts["liquidity"][0] is GateStatus.UNVERIFIED
    assert server.stats.requests["getMultipleAccounts"] == 2  # the mint, then its holders' accounts


def test_demo_with_the_market_fakes_agrees_with_the_simulator(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("dexscan.demo.servers.market")
    from dexscan.demo.market_sim import MarketSim
    from dexscan.demo.world import demo_sim_config

    sim = MarketSim(demo_sim_config())  # the demo world every command uses
    assert main(["check", "--demo", "--json", *[t.mint for t in sim.tokens]]) == 1
    report = json.loads(capsys.readouterr().out)
    admitted = [m["mint"] for m in report["mints"] if m["admitted"]]
    by_mint = {m["mint"]: {v["gate"]: v["status"] for v in m["verdicts"]} for m in report["mints"]}
    for t in sim.tokens:
        chain = by_mint[t.mint]
        assert chain["mint_authority"] == ("fail" if t.mint_authority else "pass"), t.symbol
        assert chain["freeze_authority"] == ("fail" if t.freeze_authority else "pass"), t.symbol
        fee_too_high = t.transfer_fee_bps is not None and t.transfer_fee_bps > 100
        assert chain["token2022_extensions"] == ("fail" if fee_too_high else "pass"), t.symbol
        assert {chain[g] for g in ("liquidity", "volume_24h", "price_impact")} <= {"pass", "fail"}  # market read
    assert admitted and all(sim.token(m).safe for m in admitted)
    assert main(["check", "--demo", admitted[0]]) == 0
    assert "1 of 1 mint passed every gate." in capsys.readouterr().out


@pytest.fixture
def honest_and_liar() -> Iterator[tuple[RpcFakeServer, RpcFakeServer, FakeChain]]:
    """Two RPC fakes on one chain, on their own loop in a thread: an honest one, and a liar telling a
    slot 1,000,000 ahead and every mint renounced (issue 17 point 1)."""
    chain = FakeChain()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    honest, liar = RpcFakeServer(chain, name="honest"), RpcFakeServer(chain, name="liar")

    async def start() -> None:
        await honest.start()
        await liar.start()
        await liar.inject("slot_lead", 1_000_000)
        await liar.inject("lie_renounced")

    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield honest, liar, chain
    finally:
        for server in (honest, liar):
            asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_a_lying_endpoint_never_passes_the_mint_gate(
        honest_and_liar: tuple[RpcFakeServer, RpcFakeServer, FakeChain], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    honest, liar, chain = honest_and_liar
    mint = chain.create_mint(b"cli-live-authority", mint_authority=True, holders=(700, 300))
    config = tmp_path / "two.toml"
    config.write_text(f'[rpc]\nendpoints = ["{liar.url}", "{honest.url}"]\n\n[sources.dexscreener]\nenabled = false\n')
    assert main(["--config", str(config), "check", "--json", mint]) == 1
    report = json.loads(capsys.readouterr().out)
    verdicts = {v["gate"]: (v["status"], v["reason"]) for v in report["mints"][0]["verdicts"]}
    assert verdicts["mint_authority"] == (
        "unverified", f"chain read failed: no second RPC endpoint confirmed the answer of {honest.url} (no RPC "
        f"endpoint could serve getMultipleAccounts: {liar.url}: not used (slot 1000000 ahead of the others))")
    assert report["mints"][0]["admitted"] is False
    assert [(r["name"], r["healthy"], r["slot_lead"], r["served"]) for r in report["rpc"]] == [
        (liar.url, False, 1_000_000, 0), (honest.url, True, None, 1)]  # the mint; an unverified one's holders: not read
    assert liar.stats.requests["getMultipleAccounts"] == 0
    assert main(["--config", str(config), "check", mint]) == 1
    out = capsys.readouterr().out
    assert "mint authority renounced" not in out and "0 of 1 mint passed every gate." in out
    assert f"rpc {liar.url}: 0 served, 0 failed, breaker closed" in out
    assert "FAULTY: slot 1000000 ahead of the others, not used" in out
