"""Benchmark of the pure core: candle updates per second through market + all strategies, and memory.

Feeds ``--tokens`` tokens (default 5,000) with synthetic random-walk 5m bars, round-robin in time
order, through :meth:`dexscan.detector.Detector.on_bar` (the same path the backfill replay and,
via ticks, the live engine use: market books, 1h/4H aggregation, ignition, confirmation, god candle,
volume surge; ladder and scoring run for the rare bars that fire). Also times live ticks through
:meth:`~dexscan.detector.Detector.on_tick`. One core, one process. Prints one JSON line.

Memory per token is measured with ``tracemalloc``: bytes still allocated after building the
detector, bootstrapping every token's 1h/4H books and streaming enough 5m bars to fill its rings
(the bars are made inside the measured section and only the detector keeps them), per token.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dexscan.config import load_settings
from dexscan.detector import Detector
from dexscan.domain import Candle, Timeframe
from dexscan.market import Tick

T0 = 1_750_000_000 - 1_750_000_000 % 14_400


def walk(rng: random.Random, start: int, step: int, n: int) -> list[Candle]:
    """A random-walk bar series (history for the 1h/4H books)."""
    p = rng.uniform(1e-6, 10.0)
    out = []
    for i in range(n):
        c = p * (1.0 + rng.gauss(0.0, 0.03))
        out.append(Candle(start + i * step, p, max(p, c) * 1.01, min(p, c) * 0.99, c, rng.uniform(1e4, 1e5)))
        p = c
    return out


def make_bars(n_tokens: int, n_bars: int, seed: int) -> list[list[Candle]]:
    """Per-bar-index lists of one bar per token (random walk with rare pumps and volume spikes)."""
    rng = random.Random(seed)
    prices = [rng.uniform(1e-6, 10.0) for _ in range(n_tokens)]
    rows: list[list[Candle]] = []
    for i in range(n_bars):
        ts = T0 + i * 300
        row = []
        for k in range(n_tokens):
            o = prices[k]
            c = o * (1.0 + rng.gauss(0.0, 0.01) + (0.04 if rng.random() < 0.005 else 0.0))
            h = max(o, c) * (1.0 + rng.random() * 0.004)
            lo = min(o, c) * (1.0 - rng.random() * 0.004)
            v = rng.uniform(500.0, 1500.0) * (8.0 if rng.random() < 0.01 else 1.0)
            row.append(Candle(ts, o, h, lo, c, v))
            prices[k] = c
        rows.append(row)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=5000)
    ap.add_argument("--warm-bars", type=int, default=60, help="bars per token before timing (fills the rings)")
    ap.add_argument("--bars", type=int, default=60, help="timed bars per token")
    ap.add_argument("--ticks", type=int, default=3, help="timed live ticks per token per 5m bar")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    settings = load_settings(env={})
    mints = [f"mint{k:05d}" for k in range(args.tokens)]
    timed = make_bars(args.tokens, args.bars, args.seed + 1)
    timed = [[Candle(c.ts + args.warm_bars * 300, c.open, c.high, c.low, c.close, c.volume) for c in row]
             for row in timed]

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    det = Detector(settings)
    rng = random.Random(args.seed)
    for mint in mints:
        det.bootstrap(mint, Timeframe.H4, walk(rng, T0 - 80 * 14_400, 14_400, 80))
        det.bootstrap(mint, Timeframe.H1, walk(rng, T0 - 80 * 3600, 3600, 80))
    for row in make_bars(args.tokens, args.warm_bars, args.seed):
        for mint, c in zip(mints, row, strict=True):
            det.on_bar(mint, Timeframe.M5, c)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    bytes_per_token = (after - before) / args.tokens
    held = det.market(mints[0])
    assert held is not None
    rings = {"m5": len(held.m5), "h1": len(held.h1.bars), "h4": len(held.h4.bars)}

    signals = 0
    gc.disable()
    start, cpu = time.perf_counter(), time.process_time()
    for row in timed:
        for mint, c in zip(mints, row, strict=True):
            signals += len(det.on_bar(mint, Timeframe.M5, c))
    bar_s, bar_cpu = time.perf_counter() - start, time.process_time() - cpu
    gc.enable()
    n_bar_updates = args.tokens * args.bars

    # live ticks: continue each token's walk, `ticks` polls per 5m bar
    rng = random.Random(args.seed + 2)
    t_base = T0 + (args.warm_bars + args.bars) * 300
    ticks: list[list[Tick]] = []
    last = {m: det.market(m).last5.close for m in mints}  # type: ignore[union-attr]
    for j in range(20 * args.ticks):
        ts = t_base + j * (300 // args.ticks) + 1
        row = []
        for m in mints:
            p = last[m] * (1.0 + rng.gauss(0.0, 0.004))
            last[m] = p
            row.append(Tick(ts, p, volume_m5=rng.uniform(500, 1500), buys_m5=10, sells_m5=8, liquidity_usd=1e5))
        ticks.append(row)
    gc.disable()
    start, cpu = time.perf_counter(), time.process_time()
    for row in ticks:
        for mint, tk in zip(mints, row, strict=True):
            signals += len(det.on_tick(mint, tk))
    tick_s, tick_cpu = time.perf_counter() - start, time.process_time() - cpu
    gc.enable()
    n_ticks = args.tokens * len(ticks)

    print(json.dumps({
        "bench": "core",
        "tokens": args.tokens,
        "strategies": [s.name for s in det.strategies],
        "bar_updates": n_bar_updates,
        "bar_updates_per_s": round(n_bar_updates / bar_s),
        "bar_updates_per_cpu_s": round(n_bar_updates / bar_cpu),
        "tick_updates": n_ticks,
        "tick_updates_per_s": round(n_ticks / tick_s),
        "tick_updates_per_cpu_s": round(n_ticks / tick_cpu),
        "signals": signals,
        "bytes_per_token": round(bytes_per_token),
        "ring_lengths": rings,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
