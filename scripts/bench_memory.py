#!/usr/bin/env python3
"""Benchmark: resident memory (RSS) of the detector for 1,000 and 5,000 tokens. Prints one JSON line.

Each size runs in a fresh subprocess (``--child N``), so one size's freed memory cannot hide in the
next one's figure. The child imports everything and loads the settings, reads its RSS (the
*baseline*), then brings ``N`` tokens to the state a long-running scanner holds them in:

* 80 4H and 80 1h history bars each (bootstrap; the books keep their rings: 42 and 24 bars),
* ``--warm-bars`` completed 5m bars round robin over all tokens (fills the 5m ring, the volume
  windows and the forming 1h/4H windows; every strategy is armed),
* one live tick per token (a 5m bar being built from snapshots, the last tick kept),
* a :class:`~dexscan.scheduler.RefreshScheduler` entry per token, as the engine keeps one.

Then ``gc.collect()`` and the RSS again (``VmRSS`` from ``/proc/self/status``; ``ru_maxrss`` where
``/proc`` does not exist), and the peak (``VmHWM``). ``per_token_kb`` = (RSS - baseline) / N: what each
watched token costs, including the allocator's slack. The bars are synthetic random walks
(``scripts/bench_core.py``'s generator), made one round at a time so the input never piles up.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import T0, Market, bootstrap

from dexscan.config import load_settings
from dexscan.detector import Detector
from dexscan.domain import Timeframe
from dexscan.market import Tick
from dexscan.scheduler import RefreshScheduler

SIZES = (1000, 5000)


def memory_kb() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process in KiB."""
    status = Path("/proc/self/status")
    if status.exists():
        fields = {}
        for line in status.read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
        return fields["VmRSS"], fields["VmHWM"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_kb = peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux
    return peak_kb, peak_kb


def child(tokens: int, warm_bars: int, seed: int) -> dict[str, Any]:
    settings = load_settings(env={})
    mints = [f"mint{k:05d}" for k in range(tokens)]
    gc.collect()
    base_rss, _ = memory_kb()

    det = Detector(settings)
    scheduler = RefreshScheduler(settings.scan.hot_refresh_s, settings.scan.cold_refresh_s,
                                 settings.sources.dexscreener.tokens_batch)
    market = Market(tokens, seed)
    bootstrap(det, mints, seed)
    for i in range(warm_bars):
        ts = T0 + i * 300
        for k, mint in enumerate(mints):
            det.on_bar(mint, Timeframe.M5, market.bar(k, ts))
    tick_ts = T0 + warm_bars * 300 + 17
    for k, mint in enumerate(mints):
        tick: Tick = market.tick(k, tick_ts)
        det.on_tick(mint, tick)
        scheduler.add(mint, float(tick_ts))
    del market
    gc.collect()
    rss, peak = memory_kb()
    first = det.market(mints[0])
    assert first is not None and first.live is not None and det.warming_up(mints[0]) == 0
    return {
        "tokens": tokens,
        "baseline_mb": round(base_rss / 1024, 1),
        "rss_mb": round(rss / 1024, 1),
        "peak_rss_mb": round(peak / 1024, 1),
        "tokens_mb": round((rss - base_rss) / 1024, 1),
        "per_token_kb": round((rss - base_rss) / tokens, 1),
        "rings": {"m5": len(first.m5), "h1": len(first.h1.bars), "h4": len(first.h4.bars)},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--warm-bars", type=int, default=60, help="5m bars per token (fills the 50-bar ring)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.warm_bars, args.seed)))
        return 0
    results = []
    for n in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--warm-bars", str(args.warm_bars),
                              "--seed", str(args.seed)], check=True, capture_output=True, text=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(json.dumps({
        "bench": "memory",
        "sizes": results,
        "warm_bars": args.warm_bars,
        "strategies": list(load_settings(env={}).strategies.enabled),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
