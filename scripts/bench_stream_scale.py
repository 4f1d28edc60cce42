#!/usr/bin/env python3
"""Benchmark: the on-chain stream path at scale: RSS with 20,000 streamed pools, and decode rate.

    python scripts/bench_stream_scale.py [--sizes 2000 20000] [--minutes 30] [--trades-per-minute 3]

**RSS** (issue 13 acceptance). Each size runs in a fresh subprocess (``--child N``; a size's freed
memory cannot hide in the next one's figure). The child imports everything, loads the default
settings and reads its RSS (``baseline``), then:

1. ``watch``: :meth:`ChainFeed.watch <dexscan.chain.feed.ChainFeed.watch>` ``N`` pools (a mix of the
   pools the demo streams: Raydium CPMM, Raydium CLMM, Orca Whirlpool, PumpSwap; SOL-quoted), their
   ``logsSubscribe`` requests answered through :meth:`LogStream.handle` as a node answers them (the
   socket is an in-process sink: nothing is sent anywhere; the token decimals come from a stand-in of
   the mint reader, 6 for every token); the detector registers each token with its pool;
2. ``flow``: ``--minutes`` simulated minutes of trades: each pool's one-minute bar (a random walk) split
   into ``--trades-per-minute`` swaps by the demo's :func:`~dexscan.demo.chain_swaps.minute_swaps`,
   encoded with the real event layouts by :func:`~dexscan.demo.chain_swaps.swap_logs`, wrapped in the
   ``logsNotification`` text the WebSocket fake sends, in block-time order through
   :meth:`LogStream.handle` (JSON, decoders, dedupe) -> the feed's queue -> :meth:`ChainFeed.trades`
   (in batches of :data:`~dexscan.chain.feed.BATCH`, as the engine takes them) -> ``Detector.on_trade``
   for each trade, as ``StreamIntake.apply_trades`` calls it. SOL/USD is observed once a simulated minute.
   The input is made one minute at a time, so it never piles up.

After each stage ``gc.collect()`` and ``VmRSS`` (``/proc/self/status``; ``ru_maxrss`` elsewhere, via
``bench_memory.memory_kb``). ``per_pool_bytes`` = (RSS after the flow - baseline) / N, including the
fixed costs (bounded dedupe windows: the stream's 20,000 signatures, the feed's 50,000 trade keys) and
the allocator's slack; ``growth_per_pool_bytes`` = the difference between the largest and the smallest
size over the difference in pools: what one more streamed pool costs once the fixed costs are paid.
The tokens have no 1h/4H history here (``scripts/bench_memory.py`` measures warmed candle books), and
after 30 minutes the 1m bar ring (60) and the 1m flow ring (50) are about half full, the 5m ones (50)
5 bars deep: a scanner streaming for hours holds more.

**Decode rate**: ``scripts/bench_decode.py`` run as is (``--decode-n`` notifications, one core),
its JSON line embedded under ``decode``.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_decode import _cpu  # noqa: E402
from bench_memory import memory_kb  # noqa: E402

from dexscan.chain.events.codec import b58encode  # noqa: E402
from dexscan.chain.feed import BATCH, ChainFeed  # noqa: E402
from dexscan.clock import SimClock  # noqa: E402
from dexscan.config import load_settings  # noqa: E402
from dexscan.demo.chain_swaps import SimSwap, minute_swaps, swap_logs  # noqa: E402
from dexscan.detector import Detector  # noqa: E402
from dexscan.domain import SOL_MINT, Candle, MintFacts, PairSnapshot, TxnCounts, Window4  # noqa: E402

SIZES = (2_000, 20_000)
T0 = 1_764_000_000  # a minute boundary; the flow starts here
SOL_USD = 150.0
TRADE_SIZE_USD = 250.0
TOKEN_DECIMALS = 6
#: The pool kinds the demo streams (``swap_logs`` encodes them): DexScreener dexId and labels.
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("raydium", ("CPMM",)), ("raydium", ("CLMM",)), ("orca", ()), ("pumpswap", ()))


class _DecimalsReader:
    """Stands in for :class:`dexscan.chain.mint.MintInspector` (which reads mint accounts over RPC):
    every token has :data:`TOKEN_DECIMALS` decimals."""

    def __init__(self, now: int) -> None:
        self.now = now

    async def inspect(self, mints: list[str], holders: bool = True) -> dict[str, MintFacts]:
        return {m: MintFacts(m, self.now, exists=True, is_mint=True, decimals=TOKEN_DECIMALS) for m in mints}


class _SocketSink:
    """The open socket of a connection: the subscribe requests are recorded by the connection itself
    (``pending``) before they are sent; the bench answers them through ``LogStream.handle``."""

    async def send(self, text: str) -> None:
        return None


def _pair(pool: str, mint: str, kind: tuple[str, tuple[str, ...]], now: int) -> PairSnapshot:
    return PairSnapshot(
        pair_address=pool, dex_id=kind[0], base_mint=mint, base_symbol="TKN", base_name="Token", quote_mint=SOL_MINT,
        quote_symbol="SOL", price_usd=None, price_native=None, volume=Window4(), price_change=Window4(),
        txns_m5=TxnCounts(), txns_h1=TxnCounts(), txns_h24=TxnCounts(), liquidity_usd=None, fdv=None,
        market_cap=None, pair_created_at=None, observed_at=now, labels=kind[1])


async def _child(pools: int, minutes: int, per_minute: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    settings = load_settings(env={})
    clock = SimClock(T0)
    gc.collect()
    base_rss, _ = memory_kb()

    feed = ChainFeed.from_settings(settings, clock, inspector=_DecimalsReader(T0))
    assert feed is not None, "the default settings name no WebSocket endpoint"
    det = Detector(settings)
    universe = []  # (pool, mint, kind index)
    for k in range(pools):
        pool, mint = b58encode(rng.randbytes(32)), b58encode(rng.randbytes(32))
        kind = k % len(KINDS)
        universe.append((pool, mint, kind))
        ok = await feed.watch(mint, _pair(pool, mint, KINDS[kind], T0))
        assert ok, f"pool {pool} ({KINDS[kind]}) not streamable"
        det.register(mint, "TKN", pool)
    sub = 0
    for conn in feed.stream.connections:  # each connection's connect step: subscribe every pool, then
        conn.ws = _SocketSink()           # the node's answers to those requests
        for pk in list(conn.mentions):
            await conn.subscribe(pk, resubscribe=not feed.stream.fresh(pk))
        for rid in list(conn.pending):
            sub += 1
            feed.stream.handle(json.dumps({"jsonrpc": "2.0", "result": sub, "id": rid}), conn)
    subscribed = sum(len(c.sub_to_mention) for c in feed.stream.connections)
    gc.collect()
    watch_rss, _ = memory_kb()

    price = [rng.uniform(1e-5, 1e-2) for _ in range(pools)]
    sub_of = {pool: conn.mention_to_sub[pool] for conn in feed.stream.connections for pool in conn.mention_to_sub}
    conn_of = {pool: conn for conn in feed.stream.connections for pool in conn.mentions}
    notifications = trades = signals = 0
    t_flow = time.perf_counter()
    for minute in range(minutes):
        ts = T0 + 60 * minute
        feed.sol.observe(ts, SOL_USD, "jupiter")
        swaps: list[tuple[SimSwap, int]] = []
        for k, (pool, _mint, _kind) in enumerate(universe):
            o = price[k]
            c = o * rng.lognormvariate(0, 0.02)
            bar = Candle(ts, o, max(o, c) * 1.01, min(o, c) * 0.99, c, per_minute * TRADE_SIZE_USD)
            price[k] = c
            swaps.extend((s, k) for s in minute_swaps(pool, bar, TRADE_SIZE_USD))
        swaps.sort(key=lambda x: x[0].ts)
        pending = 0
        for s, k in swaps:
            pool, mint, kind = universe[k]
            dex, labels = KINDS[kind]
            logs = swap_logs(dex, labels, s, mint, SOL_MINT, TOKEN_DECIMALS, SOL_USD, 9)
            assert logs is not None
            text = json.dumps({"jsonrpc": "2.0", "method": "logsNotification", "params": {
                "result": {"context": {"slot": s.slot}, "value": {"signature": s.signature, "err": None, "logs": logs}},
                "subscription": sub_of[pool]}})
            clock.advance(s.ts - clock.now())  # the arrival time stands for the block time of events without their own
            feed.stream.handle(text, conn_of[pool])
            notifications += 1
            pending += 1
            if pending >= BATCH:
                trades, signals = _drain(feed, det, trades, signals)
                pending = 0
        trades, signals = _drain(feed, det, trades, signals)
        del swaps
    flow_s = time.perf_counter() - t_flow
    gc.collect()
    rss, peak = memory_kb()
    first = det.market(universe[0][1])
    assert first is not None and first.trades is not None
    return {
        "pools": pools,
        "connections": len(feed.stream.connections),
        "subscriptions": subscribed,
        "notifications": notifications,
        "trades": trades,
        "trades_rejected": dict(feed.rejected),
        "stream_dropped": feed.stream.stats.counts["dropped"],
        "signals": signals,
        "flow_wall_s": round(flow_s, 1),
        "baseline_mb": round(base_rss / 1024, 1),
        "after_watch_mb": round(watch_rss / 1024, 1),
        "after_flow_mb": round(rss / 1024, 1),
        "peak_mb": round(peak / 1024, 1),
        "watch_per_pool_bytes": round((watch_rss - base_rss) * 1024 / pools),
        "per_pool_bytes": round((rss - base_rss) * 1024 / pools),
        "first_pool": {"m1_bars": len(first.trades.m1.bars), "flow1": len(first.trades.flow1),
                       "flow5": len(first.trades.flow5), "m5_bars": len(first.m5)},
    }


def _drain(feed: ChainFeed, det: Detector, trades: int, signals: int) -> tuple[int, int]:
    """The engine's step: the queued events -> trades -> the detector."""
    events = []
    while not feed.queue.empty():
        events.append(feed.queue.get_nowait())
    for t in feed.trades(events):
        assert t.price_usd is not None and t.volume_usd is not None
        signals += len(det.on_trade(t.mint, t.block_time, t.price_usd, t.volume_usd, t.side, t.signer))
        trades += 1
    return trades, signals


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="streamed pools per run")
    ap.add_argument("--minutes", type=int, default=30, help="simulated minutes of trades (default 30)")
    ap.add_argument("--trades-per-minute", type=int, default=3, help="swaps per pool per minute (1-6, default 3)")
    ap.add_argument("--decode-n", type=int, default=20_000, help="notifications for bench_decode.py (0: skip)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not 1 <= args.trades_per_minute <= 6:
        ap.error("--trades-per-minute must be 1-6 (minute_swaps splits a bar into at most 6 swaps)")
    if args.child is not None:
        print(json.dumps(asyncio.run(_child(args.child, args.minutes, args.trades_per_minute, args.seed))))
        return 0
    runs = []
    for n in sorted(args.sizes):
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--minutes", str(args.minutes),
                              "--trades-per-minute", str(args.trades_per_minute), "--seed", str(args.seed)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"the {n}-pool run failed:\n{out.stderr}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    result: dict[str, Any] = {"bench": "stream_scale", "minutes": args.minutes,
                              "trades_per_pool_per_minute": args.trades_per_minute, "rss": runs}
    if len(runs) > 1:
        lo, hi = runs[0], runs[-1]
        result["growth_per_pool_bytes"] = round(
            (hi["after_flow_mb"] - lo["after_flow_mb"]) * 1024 * 1024 / (hi["pools"] - lo["pools"]))
    if args.decode_n:
        out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_decode.py"), "--n", str(args.decode_n)],
                             check=True, capture_output=True, text=True)
        result["decode"] = json.loads(out.stdout.strip().splitlines()[-1])
    result["machine"] = {"cpu": _cpu(), "python": platform.python_version(), "system": platform.system()}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
