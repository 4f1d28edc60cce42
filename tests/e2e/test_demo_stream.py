"""The demo scanner on the chain stream, and on polling when the stream is refused or silent.

The whole engine runs 40 simulated minutes on the demo world (virtual time). With the WebSocket
fake serving, universe tokens are priced by their pools' on-chain swaps (trades judged, their
DexScreener polls kept for stats only); refused from the start, or silent after a while, the same
run falls back to polling every token for prices, and the dashboard's prices cell and the counters
say so.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dexscan.config import load_settings
from dexscan.demo.world import DemoWorld
from dexscan.engine import Engine
from dexscan.scan_command import ScanOptions, preload, scan

pytestmark = [pytest.mark.slow, pytest.mark.virtual_time]
RUN_S = 2400


async def run(tmp_path: Path, fault: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    engines: list[Engine] = []

    async def sample() -> None:
        """What the running scanner shows 30 simulated seconds before the end (not after its stop)."""
        assert world.clock is not None
        await world.clock.sleep(RUN_S - 30)
        engine = engines[0]
        assert engine.feed is not None
        out["status"] = engine.status()
        out["counters"] = copy.copy(engine.counters)
        out["feed"] = dict(engine.feed.counts)
        out["members"] = sum(1 for v in engine.tokens.values() if v.member)

    opts = ScanOptions(demo=True, run_for=RUN_S, dashboard=False, quiet=True)
    preload(opts, telegram=False)
    async with DemoWorld(seed=7, n_tokens=20, rpc_endpoints=1) as world:
        assert world.clock is not None and world.chain_ws is not None
        if fault == "refuse":
            world.chain_ws.refuse = True
        if fault == "silent":  # streams for the first 20 simulated minutes, then only acknowledges
            loop_clock = world.clock

            async def go_silent() -> None:
                await loop_clock.sleep(RUN_S / 2)
                assert world.chain_ws is not None
                world.chain_ws.silent = True

            silencer = asyncio.create_task(go_silent())
        settings = world.apply(load_settings()).with_overrides({"app.log_file": str(tmp_path / "scan.log")})
        sampler = asyncio.create_task(sample())
        assert await scan(settings, opts, world.clock, tmp_path / f"{fault}.db", mode="demo",
                          ready=engines.append) == 0
        await sampler
        out["published"] = world.swaps_published
        if fault == "silent":
            silencer.cancel()
    return out


async def test_the_demo_prices_universe_tokens_from_the_chain_stream(tmp_path: Path) -> None:
    r = await run(tmp_path, None)
    c = r["counters"]
    assert r["members"] >= 5 and r["published"] > 0
    assert c.trades > 0 and c.stats_only_snapshots > 0
    assert c.tape_rows == c.trades  # every judged trade is on the tape, once
    assert r["feed"].get("fallbacks", 0) == 0 and r["feed"]["resumed"] == 1
    cell = r["status"].stream
    assert cell.startswith("stream · ") and " streamed / " in cell
    assert r["status"].counters["trades"] == c.trades


@pytest.mark.parametrize("fault", ["refuse", "silent"])
async def test_polling_takes_over_when_the_stream_is_refused_or_silent(tmp_path: Path, fault: str) -> None:
    r = await run(tmp_path, fault)
    c = r["counters"]
    assert r["status"].stream.startswith("polling · 0 streamed / ")
    assert c.snapshots > 0  # prices judged from polls again
    if fault == "refuse":
        assert (c.trades, r["feed"].get("fallbacks", 0), r["feed"].get("resumed", 0)) == (0, 0, 0)
    else:
        assert c.trades > 0 and (r["feed"]["resumed"], r["feed"]["fallbacks"]) == (1, 1)
        assert r["status"].counters["stream_fallbacks"] == 1


async def test_a_graduation_and_a_new_pool_are_gated_from_the_stream_within_seconds(tmp_path: Path) -> None:
    """Discovery in real time: the demo's migrating token leaves its bonding curve for its PumpSwap pool;
    pump.fun's migrate transaction (CompletePumpAmmMigrationEvent + PumpSwap CreatePoolEvent) reaches the
    scanner's pump.fun subscription and the token is gated (mint read through the RPC fake) and admitted on
    its new pool seconds later, long before the next periodic discovery round. A PumpSwap pool created
    for an unsafe token (mint authority kept), published the same way, is gated and rejected for it."""
    from dexscan.chain.events import PROGRAM_IDS

    out: dict[str, Any] = {}
    async with DemoWorld(seed=7, n_tokens=20, rpc_endpoints=1) as world:
        assert world.clock is not None and world.chain_ws is not None
        sim = world.sim
        tok = next(t for t in sim.tokens if t.curve is not None)
        assert tok.migrated_at is not None and tok.safe and tok.main_pool.dex_id == "pumpswap"
        migrated_at = tok.migrated_at
        unsafe = next(t for t in sim.tokens if t.mint_authority and not t.young)
        start = tok.migrated_at - 900
        world.clock.advance(start - world.clock.now())
        clock = world.clock
        engines: list[Engine] = []

        async def watch() -> None:
            await clock.sleep(tok.migrated_at - clock.now() - 1)
            engine = engines[0]
            out["before"] = (engine.tokens[tok.mint].member if tok.mint in engine.tokens else False,
                             engine.counters.discovery_rounds)
            while "admitted_at" not in out:
                view = engine.tokens.get(tok.mint)
                if view is not None and view.member and view.pool == tok.main_pool.address:
                    out["admitted_at"] = clock.now()
                    out["rounds_then"] = engine.counters.discovery_rounds
                    break
                await clock.sleep(0.5)
            # a new PumpSwap pool of a token that kept its mint authority
            out["unsafe_published"] = await world.publish_launch(world.launch(unsafe.main_pool.address,
                                                                              clock.now()))
            out["unsafe_at"] = clock.now()

        watcher = asyncio.create_task(watch())
        out.update(await _discovery_scan(world, tmp_path, ["pumpfun", "pumpswap"], 1200, engines.append,
                                         tok.mint, lambda: migrated_at))
        await watcher

    assert {PROGRAM_IDS["pumpfun"], PROGRAM_IDS["pumpswap"]} <= set(out["subscribed"])  # discovery subscriptions
    assert out["before"][0] is False  # on its bonding curve it was kept out
    assert tok.migrated_at <= out["admitted_at"] <= tok.migrated_at + 15  # seconds, not a discovery round
    assert out["rounds_then"] == out["before"][1]  # no periodic round ran in between: the stream did it
    assert out["feed"]["graduations"] == 1 and out["feed"]["pools_created"] == 2  # the migration's own, the unsafe
    assert out["stream_rounds"] >= 2
    assert ("mint_authority", "pass") in out["verdicts"] and ("liquidity", "pass") in out["verdicts"]
    at, reason = out["rejected"][unsafe.mint]
    assert out["unsafe_published"] == 1 and out["unsafe_at"] <= at <= out["unsafe_at"] + 15
    assert reason.startswith("mint_authority fail")


async def test_a_raydium_v4_init_is_fetched_and_its_token_gated_within_seconds(tmp_path: Path) -> None:
    """A Raydium AMM v4 pool created for a token that kept its mint authority: its ray_log Init (no
    pool, no mint) reaches the scanner's Raydium v4 subscription, the transaction is fetched from the
    RPC fake (getTransaction), its initialize2 names the token, and the gates reject it for its mint
    authority seconds later, with the fetch counted once."""
    from dexscan.chain.events import PROGRAM_IDS

    out: dict[str, Any] = {}
    async with DemoWorld(seed=7, n_tokens=20, rpc_endpoints=1) as world:
        assert world.clock is not None and world.chain_ws is not None
        clock = world.clock
        unsafe = next(t for t in world.sim.tokens if t.mint_authority and not t.young
                      and t.main_pool.quote_mint == "So11111111111111111111111111111111111111112")
        engines: list[Engine] = []

        async def publish() -> None:
            await clock.sleep(600.0)
            out["published"] = await world.publish_raydium_init(world.launch(unsafe.main_pool.address, clock.now()))
            out["at"] = clock.now()

        publisher = asyncio.create_task(publish())
        out.update(await _discovery_scan(world, tmp_path, ["pumpfun", "raydium_amm_v4"], 900, engines.append,
                                         unsafe.mint, lambda: float(out["at"])))
        await publisher

    assert PROGRAM_IDS["raydium_amm_v4"] in out["subscribed"]
    assert out["published"] == 1
    at, reason = out["rejected"][unsafe.mint]
    assert out["at"] <= at <= out["at"] + 15  # seconds, not a discovery round
    assert reason.startswith("mint_authority fail")
    assert ("mint_authority", "fail") in out["verdicts"]
    feed = out["feed"]
    assert (feed["raydium_init_transactions"], feed.get("raydium_init_skipped_budget", 0),
            feed.get("raydium_init_no_initialize2", 0), feed.get("raydium_init_failed_tx", 0),
            feed.get("pool_events_without_mint", 0)) == (1, 0, 0, 0, 0)


async def _discovery_scan(world: DemoWorld, tmp_path: Path, programs: list[str], run_for: float,
                          ready: Callable[[Engine], None], mint: str, since: Callable[[], float]) -> dict[str, Any]:
    """``dexscan scan --demo`` for ``run_for`` simulated seconds subscribed to the discovery
    ``programs``; returns what the engine saw when it stopped: the feed's counts, the stream's
    discovery rounds, the rejections, ``mint``'s gate verdicts from ``since()`` on, the subscriptions."""
    out: dict[str, Any] = {}

    async def stopped(engine: Engine) -> None:
        out["feed"] = dict(engine.feed.counts) if engine.feed is not None else {}
        out["stream_rounds"] = engine.counters.stream_discovery_rounds
        out["rejected"] = {row.mint: (row.at, row.reason) for row in engine.status().rejected}
        out["verdicts"] = [(str(r[0]), str(r[1])) for r in await engine.store.db.execute_fetchall(
            "SELECT gate, status FROM gate_verdicts WHERE mint = ? AND checked_at >= ?", (mint, since()))]
        out["subscribed"] = list(world.chain_ws.subscribed) if world.chain_ws is not None else []

    opts = ScanOptions(demo=True, run_for=run_for, dashboard=False, quiet=True)
    preload(opts, telegram=False)
    settings = world.apply(load_settings()).with_overrides({
        "app.log_file": str(tmp_path / "scan.log"), "stream.discovery_programs": programs})
    assert world.clock is not None
    assert await scan(settings, opts, world.clock, tmp_path / "discovery.db", mode="demo", ready=ready,
                      stopped=stopped) == 0
    return out
