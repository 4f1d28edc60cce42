#!/usr/bin/env python3
"""Benchmark: provider requests per token refresh, measured on the demo world. Prints one JSON line.

The real scanner (:func:`dexscan.scan_command.scan`: discovery and gates, history bootstrap, scheduler-driven
live refresh, detector, store) runs in-process against :class:`~dexscan.demo.world.DemoWorld` — the
loopback fakes of Jupiter, DexScreener, GeckoTerminal, Birdeye and the Solana RPC, which enforce the
documented rate limits themselves — with ``--tokens`` simulated tokens all watched (``--tokens`` of
``dexscan scan``), on the demo's virtual-time loop (as fast as the work allows), for ``--sim-seconds``.

A *token refresh* is one token's live snapshot brought up to date: every mint of every answered
``/tokens/v1`` batch the scheduler hands out (counted at :meth:`RefreshScheduler.complete`). For
each provider the fakes count every request they received (including 429s, of which there must be
none); ``per_token_refresh`` = requests / token refreshes. DexScreener carries the refresh itself
(ideal: 1/30, one request per 30-address batch); GeckoTerminal's share is the one-off history
bootstrap of each token, spread over the run; the RPC's is the one-off on-chain safety check.
``steady`` repeats the ratios over the last ``--steady-fraction`` of the run, when most start-up
work is done. Also reported: the refresh intervals the scheduler achieved.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dexscan import vtime
from dexscan.config import load_settings
from dexscan.demo.servers.market import PROVIDERS
from dexscan.demo.world import DemoWorld
from dexscan.engine import Engine
from dexscan.scan_command import ScanOptions, preload, scan


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 5) if b else None


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


async def run(tokens: int, sim_s: float, seed: int, steady_fraction: float) -> dict[str, Any]:
    refreshes: list[tuple[float, int]] = []  # (clock time, tokens refreshed) per answered batch
    inspected: dict[str, Any] = {}

    def ready(engine: Engine) -> None:
        complete = engine.scheduler.complete

        def counted(mints: Iterable[str], now: float) -> None:
            batch = list(mints)
            refreshes.append((now, len(batch)))
            complete(batch, now)

        engine.scheduler.complete = counted  # type: ignore[method-assign]

    async def stopped(engine: Engine) -> None:
        inspected["scheduler"] = engine.scheduler.stats(engine.clock.now())
        inspected["history_done"] = sum(1 for v in engine.tokens.values() if v.history_done)
        inspected["history_fetches"] = engine.counters.history_fetches
        inspected["snapshots"] = engine.counters.snapshots
        inspected["signals"] = sum(engine.counters.signals.values())

    preload(ScanOptions(dashboard=False, quiet=True), telegram=False)
    wall0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        async with DemoWorld(seed=seed, n_tokens=tokens, rpc_endpoints=3) as world:
            assert world.clock is not None and world.market is not None
            settings = world.apply(load_settings()).with_overrides({"app.log_file": str(Path(tmp) / "scan.log")})
            mints = tuple(t.mint for t in world.sim.tokens)
            opts = ScanOptions(demo=True, run_for=sim_s, dashboard=False, quiet=True,
                               tokens=mints)
            started = world.clock.now()
            await scan(settings, opts, world.clock, Path(tmp) / "requests.db", mode="demo", ready=ready,
                       stopped=stopped)
            ended = world.clock.now()
            logs = {p: world.market.stats(p) for p in PROVIDERS}
            rpc_total = sum(s.stats.total for s in world.rpc)
            rpc_http = sum(s.stats.http_requests for s in world.rpc)
            rpc_limited = sum(s.stats.rate_limited for s in world.rpc)
            rpc_methods: dict[str, int] = {}
            for s in world.rpc:
                for method, n in s.stats.requests.items():
                    rpc_methods[method] = rpc_methods.get(method, 0) + n
    wall = time.perf_counter() - wall0

    steady_from = ended - steady_fraction * (ended - started)
    total_refreshes = sum(n for _, n in refreshes)
    steady_refreshes = sum(n for t, n in refreshes if t >= steady_from)
    providers: dict[str, Any] = {}
    for p, st in logs.items():
        steady = sum(1 for r in st.log if r.t >= steady_from)
        providers[p] = {
            "requests": st.requests,
            "per_token_refresh": _ratio(st.requests, total_refreshes),
            "steady_per_token_refresh": _ratio(steady, steady_refreshes),
            "rate_limited": st.rate_limited,
            "by_route": dict(sorted(st.by_route.items())),
        }
    providers["solana_rpc"] = {
        "requests": rpc_http,
        "calls": rpc_total,
        "per_token_refresh": _ratio(rpc_http, total_refreshes),
        "rate_limited": rpc_limited,
        "by_method": dict(sorted(rpc_methods.items())),
    }
    sched = inspected["scheduler"]
    return {
        "bench": "requests",
        "tokens": tokens,
        "sim_seconds": round(ended - started, 1),
        "wall_s": round(wall, 1),
        "token_refreshes": total_refreshes,
        "refresh_batches": len(refreshes),
        "tokens_per_batch": round(total_refreshes / len(refreshes), 2) if refreshes else None,
        "steady": {"from_sim_s": round(steady_from - started, 1), "token_refreshes": steady_refreshes},
        "providers": providers,
        "history": {"bootstrapped": inspected["history_done"], "fetches": inspected["history_fetches"]},
        "snapshots_judged": inspected["snapshots"],
        "signals": inspected["signals"],
        "scheduled_tokens": {"hot": sched.hot, "cold": sched.cold},
        "refresh_interval_s": {
            "hot_p50": _round(sched.hot_intervals.p50), "cold_p50": _round(sched.cold_intervals.p50),
            "cold_p95": _round(sched.cold_intervals.p95),
        },
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=1000)
    p.add_argument("--sim-seconds", type=float, default=900.0, help="simulated seconds to run the scanner")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--steady-fraction", type=float, default=1 / 3,
                   help="share of the run (at its end) the steady-state ratios cover")
    a = p.parse_args()
    result = vtime.run(run(a.tokens, a.sim_seconds, a.seed, a.steady_fraction))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
