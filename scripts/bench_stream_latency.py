"""Benchmark: signal latency on the chain stream vs on polling, on the demo world.

The real scanner (``dexscan.scan_command.scan``) runs twice on the same demo world and clock start: once
priced by the chain stream (the WebSocket fake publishing the simulator's swaps, the default), once
with the stream off (every price from DexScreener polls, as before issue 13). For each run:

* ``vs_planted_s``: simulated seconds from the planted ignition (``PlantedEvent.ignite_ts``: the close
  of the first 5m bar at whose close the rule holds) to the stored ignition signal, over the planted
  pumps and fizzles both runs signalled. Negative: the signal came inside that bar, before its close.
* stream run only: ``block_to_commit_ms``: wall milliseconds from the trade batch leaving the
  stream's queue to the signal's database commit (decoding, detector, ladder, scoring, SQLite; no
  network), and ``block_time_to_commit_s``: simulated seconds from the trade's block time to the
  commit (the demo publishes every 2 simulated seconds, a node every slot).

``--hours`` simulated hours from the demo's start, run on virtual time as fast as the machine goes.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dexscan import vtime
from dexscan.config import load_settings
from dexscan.demo.world import DemoWorld, demo_sim_config
from dexscan.engine import Engine
from dexscan.scan_command import ScanOptions, preload, scan


def percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


async def one_run(stream: bool, hours: float) -> dict[str, Any]:
    opts = ScanOptions(demo=True, run_for=hours * 3600, dashboard=False, quiet=True)
    preload(opts, telegram=False)
    engines: list[Engine] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with DemoWorld(sim_config=demo_sim_config(), stream=stream) as world:
            assert world.clock is not None
            start = world.clock.now()
            settings = world.apply(load_settings()).with_overrides({"app.log_file": str(Path(tmp) / "bench.log")})
            await scan(settings, opts, world.clock, Path(tmp) / "bench.db", mode="demo", ready=engines.append)
            planted = world.planted_events(start, world.clock.now())
    engine = engines[0]
    ignite = {(e.mint, e.candle_ts): e.ignite_ts for e in planted if e.kind in ("pump", "fizzle")}
    out: dict[str, Any] = {"ignitions": {}, "wall_ms": [], "block_s": [], "trades": engine.counters.trades,
                           "signals": len(engine.stored)}
    for s in engine.stored:
        if s.signal.strategy != "ignition":
            continue
        key = (s.signal.mint, s.signal.candle_ts)
        if key in ignite:
            out["ignitions"][key] = s.stored_at - ignite[key]
        if stream and s.received is not None:
            out["wall_ms"].append((s.committed - s.received) * 1000)
            out["block_s"].append(s.stored_at - s.event_ts)
    return out


async def run(hours: float) -> dict[str, Any]:
    streamed = await one_run(True, hours)
    polled = await one_run(False, hours)
    both = sorted(set(streamed["ignitions"]) & set(polled["ignitions"]))
    s_lat = [streamed["ignitions"][k] for k in both]
    p_lat = [polled["ignitions"][k] for k in both]
    return {
        "bench": "stream_latency",
        "simulated_hours": hours,
        "planted_ignitions_signalled": {"stream": len(streamed["ignitions"]), "poll": len(polled["ignitions"]),
                                        "both": len(both)},
        "signals": {"stream": streamed["signals"], "poll": polled["signals"]},
        "trades_judged": streamed["trades"],
        "stream_vs_planted_s_p50": percentile(s_lat, 0.5),
        "stream_vs_planted_s_p99": percentile(s_lat, 0.99),
        "poll_vs_planted_s_p50": percentile(p_lat, 0.5),
        "poll_vs_planted_s_p99": percentile(p_lat, 0.99),
        "stream_earlier_s_p50": percentile([p - s for s, p in zip(s_lat, p_lat, strict=True)], 0.5),
        "block_to_commit_ms_p50": percentile(streamed["wall_ms"], 0.5),
        "block_to_commit_ms_p99": percentile(streamed["wall_ms"], 0.99),
        "block_time_to_commit_s_p50": percentile(streamed["block_s"], 0.5),
        "block_time_to_commit_s_p99": percentile(streamed["block_s"], 0.99),
        "machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}, "
                   f"{os.cpu_count()} CPUs",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hours", type=float, default=4.0, help="simulated hours per run")
    args = p.parse_args()
    result = vtime.run(run(args.hours))
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    main()
