"""A streamed live session, replayed from its trade tape by ``dexscan evaluate``, gives the same signals.

The demo scanner runs a few simulated hours on the chain stream (virtual time, as ``--speed max``),
judging every swap of its universe pools and keeping them on the tape with its bootstrap notes.
``dexscan evaluate`` on that database feeds the tape to a fresh detector in the order the live one
judged it (:func:`dexscan.tape.replay_tape`): every live signal of a streamed token comes out again,
equal field by field (time, price, ladder, features, confidence), and no other.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from dexscan.config import load_settings
from dexscan.demo.world import DemoWorld
from dexscan.evaluate import TAPE_SIGNALS_FILE, evaluate, replay_session
from dexscan.scan_command import ScanOptions, preload, scan
from dexscan.store import Store
from dexscan.tape import whole_tape

pytestmark = [pytest.mark.slow, pytest.mark.virtual_time]

RUN_S = 5 * 3600
LEAD_S = 600
#: Longer than the demo market's quiet stretches, so the stream stays up and polls stay stats-only.
SILENCE_S = 120.0


async def test_the_trade_tape_replays_a_streamed_session_signal_for_signal(tmp_path: Path) -> None:
    counters: dict[str, Any] = {}

    async def collect(engine: Any) -> None:
        counters["trades"] = engine.counters.trades
        assert engine.feed is not None
        counters["fallbacks"] = engine.feed.counts["fallbacks"]  # the stream never went down

    opts = ScanOptions(demo=True, run_for=RUN_S, dashboard=False, quiet=True)
    preload(opts, telegram=False)
    db = tmp_path / "live.db"
    async with DemoWorld(seed=7, n_tokens=30, rpc_endpoints=1, telegram=False) as world:
        assert world.clock is not None
        world.clock.advance(world.sim.live_start - LEAD_S - world.clock.now())
        settings = world.apply(load_settings()).with_overrides({
            "app.log_file": str(tmp_path / "scan.log"), "stream.silence_timeout_s": SILENCE_S})
        assert await scan(settings, opts, world.clock, db, mode="demo", stopped=collect) == 0

    store = await Store.open(db)
    try:
        live = [sig for _, sig, _ in await store.signals()]
        tape = await whole_tape(store)
        session = await replay_session(settings, store)
        out_dir, metrics = await evaluate(settings, store, None, tmp_path / "report")
    finally:
        await store.close()

    assert counters["fallbacks"] == 0 and counters["trades"] == len(tape) > 1000
    assert session is not None and session.trades == len(tape) and session.skipped == {}
    streamed = {t.mint for t in tape}
    assert len(streamed) >= 5
    live_streamed = {s.key: s for s in live if s.mint in streamed}
    replayed = {s.key: s for s in session.signals}
    assert len(live_streamed) >= 5
    assert {s.layer for s in live_streamed.values()} >= {"ignition"}
    assert set(replayed) == set(live_streamed)
    for key, a in live_streamed.items():
        b = replayed[key]
        assert dataclasses.asdict(b) == dataclasses.asdict(a), key
    section = metrics["tape"]
    assert section["same_as_live"] == len(live_streamed) and section["different"] == []
    assert section["only_replayed"] == [] and section["trades"] == len(tape)
    assert (out_dir / TAPE_SIGNALS_FILE).read_text().count("\n") == len(live_streamed) + 1
    assert json.loads((out_dir / "metrics.json").read_text())["tape"]["same_as_live"] == len(live_streamed)
