"""A live demo session, replayed through ``evaluate``'s path from its own database, scores the same.

The scanner runs on the demo world (virtual time), storing its signals with their raw scores and
every 5m bar it built, until it has stored signals of the kinds the comparison needs (at least
:data:`ENOUGH_SIGNALS`, among them an ignition, a volume surge and a confirmation: about 4 simulated
hours; at most 8). :func:`dexscan.replay.load_histories` and
:func:`dexscan.replay.run_replay` then replay those bars, as ``dexscan evaluate`` does. Every live
signal is found again (same mint, strategy and candle); a signal the replay observes at the same
moment (a completed 5m bar, a 4H close) has the same raw score to the last bit, because both sides
compute the same features: breadth by one rule, pair age from the stored pool row, and no weight on
what only live snapshots carry. An ignition the live run judged on a tick inside a bar fired
earlier, at another price, than the replay can (at the bar's end): that one is a different
observation, and only that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dexscan.config import load_settings
from dexscan.demo.world import DemoWorld
from dexscan.replay import load_histories, run_replay
from dexscan.scan_command import ScanOptions, preload, scan
from dexscan.scoring import FEATURES, NOT_IN_HISTORY
from tests.support.scan_stop import StopWhen

pytestmark = [pytest.mark.slow, pytest.mark.virtual_time]

LEAD_S = 600
ENOUGH_SIGNALS = 5
NEEDED_STRATEGIES = {"ignition", "volume_surge", "confirmation"}  # judged on a tick, on a 5m bar, on a 4H close


async def test_a_replayed_live_session_gives_the_same_raw_scores(tmp_path: Path) -> None:
    results: dict[str, Any] = {}

    async def collect(engine: Any) -> None:
        results["live"] = await engine.store.signals()
        results["histories"], results["notes"] = await load_histories(engine.store)

    def enough(engine: Any) -> bool:
        return (len(engine.stored) >= ENOUGH_SIGNALS
                and {s.signal.strategy for s in engine.stored} >= NEEDED_STRATEGIES)

    # Checked every 10 simulated minutes; the stop may fall at any moment, as run_for's did.
    stop_when = StopWhen(enough, every_s=600.0)
    opts = ScanOptions(demo=True, run_for=8 * 3600 + LEAD_S, dashboard=False, quiet=True)
    preload(opts, telegram=False)
    async with DemoWorld(seed=7, n_tokens=40, rpc_endpoints=1, telegram=False) as world:
        assert world.clock is not None
        world.clock.advance(world.sim.live_start - LEAD_S - world.clock.now())
        settings = world.apply(load_settings()).with_overrides({
            "scan.hot_refresh_s": 60.0, "scan.cold_refresh_s": 120.0, "app.log_file": str(tmp_path / "scan.log"),
            # the polled live path: its 5m bars are what the database keeps and the replay reads; a
            # streamed session judges every trade and needs the trade tape's replay (issue 13 point 6)
            "stream.enabled": False})
        assert await scan(settings, opts, world.clock, tmp_path / "live.db", mode="demo", ready=stop_when,
                          stopped=collect, stop=stop_when.stop) == 0
    assert stop_when.stopped_at is not None  # it stopped on what it waited for, not on run_for

    live = {sig.key: sig for _, sig, _ in results["live"]}
    replayed = {r.signal.key: r.signal for r in run_replay(settings, results["histories"]).records}
    assert len(live) >= ENOUGH_SIGNALS and set(live) <= set(replayed)  # every live signal, found again by the replay

    same_moment = [(a, replayed[k]) for k, a in live.items() if replayed[k].ts == a.ts]
    assert len(same_moment) >= 3
    assert {a.strategy for a, _ in same_moment} >= {"volume_surge", "confirmation"}
    weighted = [f for f in FEATURES if f not in NOT_IN_HISTORY]
    for a, b in same_moment:
        assert a.confidence is not None and b.confidence is not None
        assert {f: b.features.get(f) for f in weighted} == {f: a.features.get(f) for f in weighted}
        assert b.confidence.raw_score == a.confidence.raw_score, (a.key, a.features, b.features)
        assert "market_breadth" in a.features and "pair_age" in a.features
    for k, a in live.items():  # the rest: ignitions judged live on a tick inside the bar, before its end
        if replayed[k].ts != a.ts:
            assert a.strategy == "ignition" and a.ts < replayed[k].ts
