"""``dexscan doctor``: reports every source and RPC endpoint, exits 0, never a traceback."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from dexscan.clock import SimClock
from dexscan.config import Settings, load_settings
from dexscan.demo.market_sim import MarketSim, SimConfig
from dexscan.demo.servers.market import MarketFakes
from dexscan.demo_entry import DemoEntry
from dexscan.doctor import check_rpc, check_sources, run_checks, run_doctor

DEAD = "http://127.0.0.1:1"
REFUSED = "cannot connect to 127.0.0.1:1 (Connection refused)"


def dead_settings(env: dict[str, str] | None = None) -> Settings:
    return load_settings(env=env or {}).with_overrides({
        "sources.jupiter.base_url": DEAD,
        "sources.dexscreener.base_url": DEAD,
        "sources.geckoterminal.base_url": DEAD,
        "sources.birdeye.base_url": DEAD,
        "rpc.endpoints": [DEAD, "http://127.0.0.1:1/?api-key=secret-rpc-key"],
    })


async def test_everything_unreachable_is_reported_per_source(capsys: pytest.CaptureFixture[str]) -> None:
    settings = dead_settings({"DEXSCAN_BIRDEYE_API_KEY": "bird-secret"})
    code = await run_doctor(settings, argparse.Namespace(demo=False, timeout=2.0))
    assert code == 1
    out = capsys.readouterr().out
    assert "Traceback" not in out
    assert out.count(f"unreachable: {REFUSED}") == 6  # four sources and two RPC endpoints
    assert out.splitlines()[-1] == "0 of 6 checks ok: not every check passed (exit code 1)."
    assert "secret-rpc-key" not in out and "bird-secret" not in out
    assert "http://127.0.0.1:1/***" in out  # the keyed RPC URL is masked


async def test_results_are_structured() -> None:
    results = await run_checks(dead_settings(), 2.0)
    by_name = {r.name: r for r in results}
    assert list(by_name) == ["jupiter", "dexscreener", "geckoterminal", "birdeye", "rpc 1", "rpc 2"]
    for name in ("jupiter", "dexscreener", "geckoterminal", "rpc 1", "rpc 2"):
        assert (by_name[name].status, by_name[name].detail, by_name[name].latency_ms) == ("unreachable", REFUSED, None)
    assert by_name["birdeye"].status == "not configured"
    assert by_name["birdeye"].auth == "no key"
    assert by_name["jupiter"].auth == "keyless"
    assert by_name["jupiter"].budget == "29/30 per 60s"
    assert by_name["dexscreener"].budget == "pairs 299/300, profiles 60/60 per 60s"
    assert by_name["rpc 2"].target == "http://127.0.0.1:1/***"


async def test_disabled_sources_are_not_called() -> None:
    settings = dead_settings().with_overrides({"sources.geckoterminal.enabled": False,
                                                "sources.birdeye.enabled": False})
    results = {r.name: r for r in await run_checks(settings, 1.0, check_rpc_endpoints=False)}
    assert (results["geckoterminal"].status, results["geckoterminal"].detail) == (
        "disabled", "sources.geckoterminal.enabled = false")
    assert results["geckoterminal"].budget == "-"
    assert results["birdeye"].status == "disabled"


@pytest.fixture
async def rpc_stub() -> AsyncIterator[dict[str, Any]]:
    """A two-method JSON-RPC stub: ``state["health"]`` decides what getHealth answers."""
    state: dict[str, Any] = {"health": {"result": "ok"}, "url": ""}

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        if body["method"] == "getHealth":
            return web.json_response({"jsonrpc": "2.0", "id": body["id"], **state["health"]})
        return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": 341197247})

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield state
    finally:
        await runner.cleanup()


async def test_rpc_health_and_slot(rpc_stub: dict[str, Any]) -> None:
    settings = load_settings(env={})
    healthy = await check_rpc(rpc_stub["url"], 2.0, "rpc 1", settings)
    assert (healthy.status, healthy.detail, healthy.auth) == ("ok", "healthy, slot 341197247", "public")
    assert healthy.latency_ms is not None

    rpc_stub["health"] = {"error": {"code": -32005, "message": "Node is behind by 42 slots",
                                    "data": {"numSlotsBehind": 42}}}
    behind = await check_rpc(rpc_stub["url"], 2.0, "rpc 1", settings)
    assert (behind.status, behind.detail) == ("unhealthy", "Node is behind by 42 slots; slot 341197247")


async def test_demo_reports_every_source_ok(capsys: pytest.CaptureFixture[str]) -> None:
    code = await run_doctor(load_settings(env={}), argparse.Namespace(demo=True, timeout=5.0), demo=DemoEntry())
    assert code == 0
    out = capsys.readouterr().out
    for line in ("jupiter", "dexscreener", "geckoterminal", "birdeye", "rpc 1", "rpc 2"):
        row = next(r for r in out.splitlines() if r.startswith(f"│ {line} "))
        assert "│ ok: " in row, row
    assert "key accepted" in out
    assert out.splitlines()[-1] == "6 of 6 checks ok."
    assert "unreachable" not in out and "Traceback" not in out


async def test_a_rejected_birdeye_key_is_named() -> None:
    sim = MarketSim(SimConfig(seed=7, n_tokens=3))
    clock = SimClock(sim.live_start + 600)
    async with MarketFakes(sim, clock) as fakes:
        settings = load_settings(env={"DEXSCAN_BIRDEYE_API_KEY": "not-the-key"}).with_overrides(
            fakes.settings_overrides())
        results = {r.name: r for r in await check_sources(settings, 2.0, sim.tokens[0].mint, clock)}
    bird = results["birdeye"]
    assert (bird.status, bird.auth) == ("error", "key rejected")
    assert bird.detail == "HTTP 401: Unauthorized. Authentication required. (check the API key in the environment)"
    assert all(results[p].ok for p in ("jupiter", "dexscreener", "geckoterminal"))


async def test_rpc_trust_a_slot_inflating_endpoint_is_unhealthy_and_a_lone_one_is_not_cross_checked() -> None:
    from dexscan.demo.servers.fake_chain import FakeChain
    from dexscan.demo.servers.rpc import RpcFakeServer

    chain = FakeChain()
    off = {f"sources.{s}.enabled": False for s in ("jupiter", "dexscreener", "geckoterminal", "birdeye")}
    async with RpcFakeServer(chain, name="honest") as honest, RpcFakeServer(chain, name="liar") as liar:
        await liar.inject("slot_lead", 1_000_000)
        both = load_settings(env={}).with_overrides({**off, "rpc.endpoints": [honest.url, liar.url]})
        rows = {r.target: r for r in await run_checks(both, 5.0) if r.name.startswith("rpc")}
        assert (rows[honest.url].status, rows[honest.url].detail) == ("ok", f"healthy, slot {chain.slot}")
        assert (rows[liar.url].status, rows[liar.url].detail) == (
            "unhealthy", "slot 1000000 ahead of the other endpoints (more than rpc.max_slot_lead = 1000): faulty, "
            f"not used; healthy, slot {chain.slot + 1_000_000}")
        alone = load_settings(env={}).with_overrides({**off, "rpc.endpoints": [honest.url]})
        rows = {r.target: r for r in await run_checks(alone, 5.0) if r.name.startswith("rpc")}
        assert (rows[honest.url].status, rows[honest.url].detail) == (
            "ok", f"healthy, slot {chain.slot}; the only RPC endpoint: its answers are not cross-checked "
            "(configure a second, independent one)")
