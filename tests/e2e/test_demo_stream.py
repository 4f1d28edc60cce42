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
from pathlib import Path
from typing import Any

import pytest

from dexscan.config import load_settings
from dexscan.demo.world import DemoWorld
from dexscan.engine import Engine
from dexscan.scan_command import ScanOptions, preload, scan

pytestmark = [pytest.mark.slow, pytest.mark.virtual_time]
RUN_S = 2400
#: The silence timeout of these runs. The realistic demo market has quiet stretches (20 tokens, some
#: minutes without a swap), and the feed cannot yet tell a quiet market from a silent provider (no
#: slot heartbeat), so the timeout must exceed the demo's natural gaps to test the fault alone.
SILENCE_S = 120.0


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
        settings = world.apply(load_settings()).with_overrides({"app.log_file": str(tmp_path / "scan.log"),
                                                                "stream.silence_timeout_s": SILENCE_S})
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
