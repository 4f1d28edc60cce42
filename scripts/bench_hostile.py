#!/usr/bin/env python3
"""Benchmark: peak RSS while hostile peers answer with oversized bodies and gzip bombs. One JSON line.

Each case runs in a fresh subprocess (``--child CASE``): it starts the loopback fake (market fakes
or an RPC fake), builds the hostile body up front, reads its RSS (the *baseline*), then makes one
request through dexscan's own client (the HTTP layer or the RPC pool) with the default caps
(16 MiB on the wire, 16 MiB decompressed) and reports the error kind it got and the peak RSS
(``VmHWM`` from ``/proc/self/status``; ``ru_maxrss`` where there is no ``/proc``) minus the baseline.
Before the caps (issue 17), a 500 MB body took RSS from 74 MB to 1.6 GB and a 2 MB gzip body
inflating to 2 GB to 4.2 GB. The fake runs in the same process, so its own buffers count too.

    .venv/bin/python scripts/bench_hostile.py [--bomb-mb 200] [--oversized-mb 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dexscan.chain.rpc import RpcPool
from dexscan.clock import SimClock
from dexscan.config import load_settings
from dexscan.demo.market_sim import MarketSim, SimConfig
from dexscan.demo.servers.fake_chain import FakeChain
from dexscan.demo.servers.market import MarketFakes, gzip_bomb
from dexscan.demo.servers.rpc import RpcFakeServer
from dexscan.domain import SOL_MINT
from dexscan.errors import RpcUnavailable, SourceUnavailable
from dexscan.sources import build_clients
from dexscan.sources.http import HttpLayer
from dexscan.sources.jupiter import JUPITER

CASES = ("http_oversized", "http_gzip_bomb", "rpc_oversized", "rpc_gzip_bomb")


def _rss_kb(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def _http_case(kind: str, size: int) -> dict[str, Any]:
    sim = MarketSim(SimConfig(seed=7, n_tokens=10))
    clock = SimClock(sim.live_start + 1830)
    if kind == "gzip_bomb":
        gzip_bomb(size)
    async with MarketFakes(sim, clock) as fakes:
        fakes.oversized_bytes = fakes.gzip_bomb_bytes = size
        settings = load_settings(env={}).with_overrides({**fakes.settings_overrides(), "http.timeout_s": 60.0})
        async with HttpLayer(settings, clock) as http:
            clients = build_clients(settings, http)
            base = _rss_kb("VmRSS")
            fakes.faults.inject(JUPITER, kind)
            started = time.perf_counter()
            try:
                await clients.jupiter.prices([SOL_MINT])
                outcome = "accepted"
            except SourceUnavailable as exc:
                outcome = str(exc)
            elapsed = time.perf_counter() - started
            errors = dict(http.stats()[JUPITER].errors)
    return {"baseline_rss_mb": base / 1024, "errors": errors, "outcome": outcome, "elapsed_s": elapsed}


async def _rpc_case(kind: str, size: int) -> dict[str, Any]:
    chain = FakeChain()
    clock = SimClock(1_760_000_000)
    if kind == "gzip_bomb":
        gzip_bomb(size)
    async with RpcFakeServer(chain, name="hostile", clock=clock) as srv:
        await srv.inject(kind, size)
        settings = load_settings(env={}).with_overrides({"rpc.endpoints": [srv.url], "rpc.timeout_s": 60.0})
        async with RpcPool.from_settings(settings, clock) as pool:
            base = _rss_kb("VmRSS")
            started = time.perf_counter()
            try:
                await pool.get_slot()
                outcome = "accepted"
            except RpcUnavailable as exc:
                outcome = str(exc)
            elapsed = time.perf_counter() - started
            errors = dict(pool.state()[0].errors)
    return {"baseline_rss_mb": base / 1024, "errors": errors, "outcome": outcome, "elapsed_s": elapsed}


def _child(case: str, size: int) -> None:
    where, kind = case.split("_", 1)
    run = _http_case if where == "http" else _rpc_case
    out = asyncio.run(run(kind, size))
    out["peak_rss_mb"] = _rss_kb("VmHWM") / 1024
    out["rise_mb"] = round(out["peak_rss_mb"] - out["baseline_rss_mb"], 1)
    out["case"], out["body_bytes"] = case, size
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bomb-mb", type=int, default=200, help="inflated size of the gzip bombs (MB)")
    ap.add_argument("--oversized-mb", type=int, default=500, help="size of the oversized bodies (MB)")
    ap.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.size)
        return
    results = []
    for case in CASES:
        size = (args.bomb_mb if case.endswith("bomb") else args.oversized_mb) * 1000 * 1000
        proc = subprocess.run([sys.executable, __file__, "--child", case, "--size", str(size)],
                              capture_output=True, text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(json.dumps({"bench": "hostile_bodies", "cases": results}))


if __name__ == "__main__":
    main()
