"""Benchmark of the on-chain event decoders: decoded logsNotification messages per second, one core.

    python scripts/bench_decode.py [--n 50000] [--data ../shared/data/onchain]

The notifications are the WebSocket's own text (``logsNotification`` JSON): the logs of the real
mainnet transactions in ``../shared/data/onchain`` when that folder exists (pump.fun, PumpSwap,
Raydium v4/CPMM/CLMM, Orca; 20-100 log lines each), plus hand-built ones, cycled to ``--n``.
Three runs, same input, same process:

* ``full``: ``json.loads`` + :func:`decode_notification` (what the stream client does per message);
* ``decode_only``: the decoder on already-parsed messages;
* ``cold``: every notification names pubkeys never seen before (a fresh pump.fun mint, whose bonding
  curve is derived, or a fresh CPMM pool): the worst case for the decoders' address caches;
* ``naive``: a decoder without the invoke stack that base64-decodes the text after every
  ``Program data:`` / ``Program log:`` line and looks the first 8 bytes up in every program's table
  (slower, and wrong: it credits Jupiter's SwapEvent to Raydium).

Prints one JSON line (rates, machine, Python). Goal: >= 20,000 notifications/s on one core.
"""

from __future__ import annotations

import argparse
import binascii
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dexscan.chain.events import PROGRAMS, TxContext, decode_notification  # noqa: E402
from dexscan.chain.events.fuzz import seed_corpus  # noqa: E402


def _naive(msg: dict[str, Any]) -> int:
    """Every log line's tail base64-decoded and tried against every program's discriminators."""
    value = msg["params"]["result"]["value"]
    if value.get("err") is not None:
        return 0
    ctx = TxContext(value["signature"], msg["params"]["result"]["context"]["slot"])
    found = 0
    for line in value["logs"]:
        if not (line.startswith("Program data: ") or line.startswith("Program log: ")):
            continue
        try:
            raw = binascii.a2b_base64(line.rsplit(" ", 1)[-1], strict_mode=True)
        except (binascii.Error, ValueError):
            continue
        for spec in PROGRAMS.values():
            entry = spec.events.get(raw[:8])
            if entry is not None:
                got = entry[1](raw, ctx, found)
                found += not hasattr(got, "reason")
                break
    return found


def _cold_notifications(n: int, seed: int = 1) -> list[str]:
    """Notifications whose every pubkey is new: pump.fun trades (2025-08 layout) and CPMM swaps."""
    import base64
    import random
    import struct

    from dexscan.chain.events import PROGRAM_IDS, pumpfun, raydium_cpmm

    rng = random.Random(seed)
    out = []
    for i in range(n):
        k1, k2 = rng.randbytes(32), rng.randbytes(32)
        if i % 2:
            pid = PROGRAM_IDS["pumpfun"]
            raw = pumpfun.TRADE + k1 + struct.pack("<QQ?", 10**6, 10**9, True) + k2 + bytes(8 * 5)
            raw += bytes(96 + 33 + 32)
        else:
            pid = PROGRAM_IDS["raydium_cpmm"]
            raw = raydium_cpmm.SWAP + k1 + struct.pack("<6Q?", 1, 2, 3, 4, 0, 0, True) + k2 + rng.randbytes(32)
            raw += bytes(17)
        logs = [f"Program {pid} invoke [1]", "Program log: Instruction: Buy",
                "Program data: " + base64.b64encode(raw).decode(), f"Program {pid} consumed 1 of 2 compute units",
                f"Program {pid} success"]
        out.append(json.dumps({"jsonrpc": "2.0", "method": "logsNotification", "params": {
            "result": {"context": {"slot": i}, "value": {"signature": f"cold{i}", "err": None, "logs": logs}},
            "subscription": 1}}))
    return out


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=50_000, help="notifications per run (default 50000)")
    p.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data" / "onchain")
    args = p.parse_args()
    seeds = [s for s in seed_corpus(args.data if args.data.is_dir() else None) if "params" in s]
    texts = [json.dumps(seeds[i % len(seeds)]) for i in range(args.n)]
    parsed = [json.loads(t) for t in texts]
    lines = sum(len(m["params"]["result"]["value"]["logs"]) for m in parsed) / len(parsed)

    def timed(fn: Any, items: list[Any]) -> tuple[float, int]:
        best, events = float("inf"), 0
        for _ in range(3):
            t0 = time.perf_counter()
            events = sum(fn(x) for x in items)
            best = min(best, time.perf_counter() - t0)
        return len(items) / best, events

    full, ev_full = timed(lambda t: len(decode_notification(json.loads(t)).events), texts)
    only, ev_only = timed(lambda m: len(decode_notification(m).events), parsed)
    naive, ev_naive = timed(_naive, parsed)
    cold_texts = _cold_notifications(max(1, args.n // 5))
    t0 = time.perf_counter()
    ev_cold = sum(len(decode_notification(json.loads(t)).events) for t in cold_texts)  # once: caches stay cold
    cold = len(cold_texts) / (time.perf_counter() - t0)
    print(json.dumps({
        "bench": "decode", "notifications": args.n, "distinct_seeds": len(seeds),
        "real_data": args.data.is_dir(), "mean_log_lines": round(lines, 1),
        "full_per_s": round(full), "decode_only_per_s": round(only), "naive_per_s": round(naive),
        "cold_full_per_s": round(cold), "cold_notifications": len(cold_texts),
        "events_full": ev_full, "events_decode_only": ev_only, "events_naive": ev_naive, "events_cold": ev_cold,
        "goal_per_s": 20_000, "goal_met": full >= 20_000,
        "machine": {"cpu": _cpu(), "python": platform.python_version(), "system": platform.system()},
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
