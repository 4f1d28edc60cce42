#!/usr/bin/env python3
"""Benchmark the history pipeline; prints one JSON line.

1. **Backfill**: ``--tokens`` simulated tokens x ``--days`` days through the real GeckoTerminal
   client against the loopback fake, on a ``SimClock`` shared by both, with the documented
   budget (``sources.geckoterminal.requests_per_minute``, 25/min). Reports requests, wall time and
   *simulated* time, i.e. how long the same backfill takes against the real GeckoTerminal.
2. **Replay**: the stored history through the live detector (``run_replay``): bars/s.
3. **Evaluate**: load + replay + metrics + report with charts, wall time.

    .venv/bin/python scripts/bench_replay.py [--tokens 20] [--days 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from dexscan.backfill import backfill
from dexscan.clock import SimClock
from dexscan.config import load_settings
from dexscan.demo.market_sim import MarketSim, SimConfig
from dexscan.demo.servers.market import MarketFakes
from dexscan.metrics import build_metrics
from dexscan.replay import load_histories, run_replay
from dexscan.report import write_report
from dexscan.store import Store


async def bench(tokens: int, days: float, seed: int) -> dict[str, object]:
    sim = MarketSim(SimConfig(seed=seed, n_tokens=tokens, history_days=days))
    clock = SimClock(sim.live_start)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        async with MarketFakes(sim, clock) as fakes:
            settings = load_settings().with_overrides(fakes.settings_overrides())
            store = await Store.open(db)
            try:
                summary = await backfill(settings, store, clock, [t.mint for t in sim.tokens], days,
                                         "geckoterminal")
                clock.advance(60)
                again = await backfill(settings, store, clock, [t.mint for t in sim.tokens], days,
                                       "geckoterminal")
            finally:
                await store.close()

        settings = load_settings()
        t0 = time.perf_counter()
        store = await Store.open(db)
        try:
            histories, _ = await load_histories(store)
        finally:
            await store.close()
        t_load = time.perf_counter() - t0
        t1 = time.perf_counter()
        replay = run_replay(settings, histories)
        t_replay = time.perf_counter() - t1
        t2 = time.perf_counter()
        metrics, charts = build_metrics(settings, replay)
        write_report(Path(tmp) / "report", metrics, charts)
        t_report = time.perf_counter() - t2

    ign = metrics["overall"]["candles"]["ignition"]
    return {
        "bench": "replay",
        "machine": {"python": platform.python_version(), "platform": platform.platform(terse=True),
                    "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "tokens": tokens,
        "days": days,
        "backfill": {
            "requests": summary.requests,
            "bars_written": summary.bars_written,
            "wall_s": round(summary.wall_s, 3),
            "simulated_s": round(summary.clock_s, 1),
            "budget_per_min": settings.sources.geckoterminal.requests_per_minute,
            "second_run_requests": again.requests,
        },
        "replay": {
            "bars": replay.events,
            "signals": len(replay.records),
            "seconds": round(t_replay, 3),
            "bars_per_s": round(replay.events / t_replay),
        },
        "evaluate": {"load_s": round(t_load, 3), "metrics_and_report_s": round(t_report, 3),
                     "total_s": round(t_load + t_replay + t_report, 3)},
        "ground_truth": {"recall": ign.get("recall"), "ignitions": ign.get("ignitions"),
                         "pumps": metrics["overall"]["candles"]["pumps"]},
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=20)
    p.add_argument("--days", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    print(json.dumps(asyncio.run(bench(a.tokens, a.days, a.seed)), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
