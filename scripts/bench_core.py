"""Benchmark of the pure core: candle updates per second through market + all strategies, and memory.

Everything goes through :class:`dexscan.detector.Detector` — the path the live engine, the demo and the
backfill replay use: candle books, 1h/4H aggregation, ignition, confirmation, god candle, volume
surge, and for the bars that fire, the ATR ladder and scoring. One process, one core. Three runs:

* ``round_robin``: ``--tokens`` tokens (default 5,000) each get one completed 5m bar per round, in
  time order — how a scanner sees its universe. Each round's bars are made just before it is fed
  (untimed), as a poller would hand them over.
* ``per_token_replay``: a backfill-style replay, token after token, of the same number of bars.
* ``ticks``: live snapshots, round robin over all tokens, three per 5m bar.

Synthetic random walks with rare volume spikes and pumps (about 1 bar in 70 fires a signal, so the
ladder/scoring path is part of the figure). Memory per token comes from ``tracemalloc``: bytes
still allocated after bootstrapping every token's 1h/4H books and streaming enough 5m bars to fill its
rings (all bars are made inside the measured section; only the detector keeps them). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dexscan.config import load_settings
from dexscan.detector import Detector
from dexscan.domain import Candle, Timeframe
from dexscan.market import Tick

T0 = 1_750_000_000 - 1_750_000_000 % 14_400
M5 = Timeframe.M5


def walk(rng: random.Random, start: int, step: int, n: int) -> list[Candle]:
    """A random-walk bar series (history for the 1h/4H books)."""
    p = rng.uniform(1e-6, 10.0)
    out = []
    for i in range(n):
        c = p * (1.0 + rng.gauss(0.0, 0.03))
        out.append(Candle(start + i * step, p, max(p, c) * 1.01, min(p, c) * 0.99, c, rng.uniform(1e4, 1e5)))
        p = c
    return out


class Market:
    """Per-token random walks that hand out one 5m bar (or tick) per token per call."""

    def __init__(self, n: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.prices = [self.rng.uniform(1e-6, 10.0) for _ in range(n)]

    def bar(self, k: int, ts: int) -> Candle:
        rng = self.rng
        o = self.prices[k]
        c = o * (1.0 + rng.gauss(0.0, 0.01) + (0.04 if rng.random() < 0.005 else 0.0))
        h = max(o, c) * (1.0 + rng.random() * 0.004)
        lo = min(o, c) * (1.0 - rng.random() * 0.004)
        v = rng.uniform(500.0, 1500.0) * (8.0 if rng.random() < 0.01 else 1.0)
        self.prices[k] = c
        return Candle(ts, o, h, lo, c, v)

    def tick(self, k: int, ts: int) -> Tick:
        p = self.prices[k] * (1.0 + self.rng.gauss(0.0, 0.004))
        self.prices[k] = p
        return Tick(ts, p, volume_m5=self.rng.uniform(500, 1500), buys_m5=10, sells_m5=8, liquidity_usd=1e5)


def bootstrap(det: Detector, mints: list[str], seed: int) -> None:
    rng = random.Random(seed)
    for mint in mints:
        det.bootstrap(mint, Timeframe.H4, walk(rng, T0 - 80 * 14_400, 14_400, 80))
        det.bootstrap(mint, Timeframe.H1, walk(rng, T0 - 80 * 3600, 3600, 80))


def timed(fn: Callable[[], int]) -> tuple[int, float, float]:
    gc.disable()
    try:
        w, c = time.perf_counter(), time.process_time()
        n = fn()
        return n, time.perf_counter() - w, time.process_time() - c
    finally:
        gc.enable()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=5000)
    ap.add_argument("--warm-bars", type=int, default=60, help="5m bars per token before timing (fills the rings)")
    ap.add_argument("--bars", type=int, default=60, help="timed 5m bars per token")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    settings = load_settings(env={})
    mints = [f"mint{k:05d}" for k in range(args.tokens)]
    market = Market(args.tokens, args.seed)

    # -- memory, while warming up the round-robin detector ---------------------------------------
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    det = Detector(settings)
    bootstrap(det, mints, args.seed)
    for i in range(args.warm_bars):
        ts = T0 + i * 300
        for k, mint in enumerate(mints):
            det.on_bar(mint, M5, market.bar(k, ts))
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    bytes_per_token = (after - before) / args.tokens
    first = det.market(mints[0])
    assert first is not None
    rings = {"m5": len(first.m5), "h1": len(first.h1.bars), "h4": len(first.h4.bars)}

    # -- round robin over the universe -----------------------------------------------------------
    signals = 0
    wall = cpu = 0.0
    for i in range(args.warm_bars, args.warm_bars + args.bars):
        ts = T0 + i * 300
        row = [market.bar(k, ts) for k in range(args.tokens)]

        def feed(row: list[Candle] = row) -> int:
            return sum(len(det.on_bar(m, M5, c)) for m, c in zip(mints, row, strict=True))

        n, w, c = timed(feed)
        signals += n
        wall += w
        cpu += c
    rr_updates = args.tokens * args.bars

    # -- live ticks, round robin -------------------------------------------------------------------
    t_base = T0 + (args.warm_bars + args.bars) * 300
    tick_wall = tick_cpu = 0.0
    n_rounds = 3 * args.bars
    for j in range(n_rounds):
        ts = t_base + j * 100 + 1
        ticks = [market.tick(k, ts) for k in range(args.tokens)]

        def poll(ticks: list[Tick] = ticks) -> int:
            return sum(len(det.on_tick(m, tk)) for m, tk in zip(mints, ticks, strict=True))

        n, w, c = timed(poll)
        signals += n
        tick_wall += w
        tick_cpu += c
    tick_updates = args.tokens * n_rounds

    # -- backfill-style replay, token after token --------------------------------------------------
    per_token = args.warm_bars + args.bars
    replay_tokens = max(1, rr_updates // per_token)
    rmints = [f"replay{k:05d}" for k in range(replay_tokens)]
    rdet = Detector(settings)
    bootstrap(rdet, rmints, args.seed + 1)
    rmarket = Market(replay_tokens, args.seed + 1)
    replay_wall = replay_cpu = 0.0
    replay_signals = 0
    for k, mint in enumerate(rmints):
        events = [(M5, rmarket.bar(k, T0 + i * 300)) for i in range(per_token)]

        def replay(mint: str = mint, events: list[tuple[Timeframe, Candle]] = events) -> int:
            return len(rdet.replay(mint, events))

        n, w, c = timed(replay)
        replay_signals += n
        replay_wall += w
        replay_cpu += c
    replay_updates = replay_tokens * per_token

    print(json.dumps({
        "bench": "core",
        "tokens": args.tokens,
        "strategies": [s.name for s in det.strategies],
        "round_robin": {"updates": rr_updates, "per_s": round(rr_updates / wall), "per_cpu_s": round(rr_updates / cpu),
                        "signals": signals},
        "per_token_replay": {"updates": replay_updates, "per_s": round(replay_updates / replay_wall),
                             "per_cpu_s": round(replay_updates / replay_cpu), "signals": replay_signals},
        "ticks": {"updates": tick_updates, "per_s": round(tick_updates / tick_wall),
                  "per_cpu_s": round(tick_updates / tick_cpu)},
        "bytes_per_token": round(bytes_per_token),
        "ring_lengths": rings,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
