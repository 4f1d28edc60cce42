"""Benchmark: detection latency of the live scanner, measured on the demo world.

Latency of a signal = wall time from the DexScreener fake *serving* the snapshot that satisfied the
rule (the handler's answer for the request whose mints include the token) to the signal being
committed to the database — the engine's whole path: HTTP answer and parsing, queue, detector
(market, strategies, ladder, scoring), alert card and the SQLite transaction. Signals fired by time
alone (a 4H close no snapshot announced, found by the engine's boundary sweep) have no serving
snapshot and are counted apart.

The real scanner (``dexscan.scan_command.scan``) runs in-process against ``DemoWorld`` — the same world as
``dexscan scan --demo`` (60 tokens, five planted events per live 4H candle) — on the demo's
virtual-time loop paced at ``--speed`` simulated seconds per real second at most, for ``--seconds``
real seconds. Also reported: real seconds from the
engine's start to its first stored signal. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dexscan import vtime
from dexscan.config import load_settings
from dexscan.demo.servers.market import MarketFakes
from dexscan.demo.world import DemoWorld, demo_sim_config
from dexscan.engine import Engine
from dexscan.scan_command import ScanOptions, preload, scan

#: (perf_counter when the fake answered, mints in the request), for every /tokens/v1 request.
SERVED: list[tuple[float, frozenset[str]]] = []


def _record_serving() -> None:
    original = MarketFakes._ds_tokens_v1

    def served(self: MarketFakes, request: Any, now: float) -> Any:
        answer = original(self, request, now)
        SERVED.append((time.perf_counter(), frozenset(self._ds_addresses(request.match_info["addresses"]))))
        return answer

    MarketFakes._ds_tokens_v1 = served  # type: ignore[method-assign]


def percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def serving_time(mint: str, received: float) -> float | None:
    """When the fake served the latest request for ``mint`` answered before ``received``."""
    best = None
    for t, mints in SERVED:
        if t <= received and mint in mints and (best is None or t > best):
            best = t
    return best


async def run(speed: float, seconds: float) -> dict[str, Any]:
    _record_serving()
    opts = ScanOptions(demo=True, speed=speed, duration=seconds, dashboard=False, quiet=True)
    preload(opts, telegram=False)
    engines: list[Engine] = []
    started: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with DemoWorld(sim_config=demo_sim_config()) as world:
            assert world.clock is not None
            settings = world.apply(load_settings()).with_overrides({"app.log_file": str(Path(tmp) / "bench.log")})

            def ready(engine: Engine) -> None:
                engines.append(engine)
                started.append(time.perf_counter())

            await scan(settings, opts, world.clock, Path(tmp) / "bench.db", mode="demo", ready=ready)
    engine = engines[0]
    latencies: list[float] = []
    engine_only: list[float] = []
    by_time = 0
    for s in engine.stored:
        if s.received is None:
            by_time += 1
            continue
        served = serving_time(s.signal.mint, s.received)
        if served is None:
            continue
        latencies.append((s.committed - served) * 1000)
        engine_only.append((s.committed - s.received) * 1000)
    first = min((s.committed for s in engine.stored), default=None)
    return {
        "bench": "detection_latency",
        "speed": speed,
        "real_seconds": seconds,
        "signals": len(engine.stored),
        "measured": len(latencies),
        "fired_by_time": by_time,
        "latency_ms_p50": percentile(latencies, 0.50),
        "latency_ms_p99": percentile(latencies, 0.99),
        "latency_ms_max": max(latencies, default=None),
        "engine_ms_p50": percentile(engine_only, 0.50),
        "engine_ms_p99": percentile(engine_only, 0.99),
        "first_signal_after_s": None if first is None else round(first - started[0], 2),
        "snapshot_requests": len(SERVED),
        "machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}, "
                   f"{os.cpu_count()} CPUs",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second (demo default 60)")
    p.add_argument("--seconds", type=float, default=120.0, help="real seconds to run")
    args = p.parse_args()
    result = vtime.run(run(args.speed, args.seconds), speed=args.speed)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    main()
