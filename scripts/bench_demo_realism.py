"""Benchmark: how much the demo's simulated market looks like the real one, and what the demo costs.

Real side: the GeckoTerminal candles and pool snapshots in the shared ``data/`` folder (never copied
into the project; ``--data``, default ``../shared/data`` next to the checkout). Simulated side: the
demo's market (``dexscan.demo.world.demo_sim_config``: seed 7, 60 tokens) over its 30 history days
and 2 live days, measured by the same functions (``dexscan.demo.realism``):

* ``volume_ratio_5m`` / ``volume_z_5m``: each 5m bar's volume over, and its z-score against, the
  previous 20 bars (real: every 5m bar of the pools with 5m data, gaps filled with empty bars as
  SPEC §4 says; sim: main pools of the tokens passing the liquidity/volume gates);
* ``z_of_spikes``: the z-score of the bars above 3x their baseline (how extreme a "surge" looks);
* ``change_4h`` / ``high_4h``: UTC 4H close and high over the open (real: built from 1h bars, 4H
  windows with >= 3 of them, pools with a median day of >= $100k volume; sim: as above);
* ``ignitions``: 5m bars where SPEC §5's rule holds at the close (first per 4H candle), their rise
  and volume ratio, and the share whose 4H candle closes >= +10%;
* sizes: main-pool liquidity and 24h volume (real: latest snapshot of each pool passing the gates).

``--cpu-seconds`` (> 0) also runs the real demo scanner in-process (virtual-time loop paced at
speed 60, as ``dexscan scan --demo``) for that many real seconds at each ``--cpu-tokens`` universe
size and reports the process CPU seconds per real second. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dexscan.demo.market_sim import MarketSim  # noqa: E402
from dexscan.demo.realism import quantiles, sim_statistics, volume_ratio_and_z  # noqa: E402
from dexscan.demo.world import DEMO_TOKENS, demo_sim_config  # noqa: E402
from dexscan.domain import Timeframe  # noqa: E402

H4 = 14_400


def _ignitions(ts: np.ndarray, opens: np.ndarray, closes: np.ndarray, ratio: np.ndarray,
               confirmed: dict[int, bool]) -> tuple[list[float], list[float], list[bool]]:
    """First bar per 4H candle with close >= open4 * 1.02 and volume > 3x baseline."""
    rises: list[float] = []
    ratios: list[float] = []
    outcome: list[bool] = []
    open4: dict[int, float] = {}
    seen: set[int] = set()
    for i in range(len(ts)):
        c = int(ts[i]) - int(ts[i]) % H4
        open4.setdefault(c, float(opens[i]))
        if c in seen or not ratio[i] > 3 or closes[i] < open4[c] * 1.02:
            continue
        seen.add(c)
        rises.append((closes[i] / open4[c] - 1) * 100)
        ratios.append(float(ratio[i]))
        outcome.append(confirmed.get(c, False))
    return rises, ratios, outcome


def real_statistics(data: Path) -> dict[str, Any]:
    rows: dict[tuple[str, str], dict[int, tuple[float, float, float, float, float]]] = defaultdict(dict)
    with (data / "gt_ohlcv_52pools_lowprecision.csv").open() as f:
        for r in csv.DictReader(f):
            rows[(r["pool_id"], r["timeframe"])][int(r["timestamp"])] = (
                float(r["open_price"]), float(r["high_price"]), float(r["low_price"]), float(r["close_price"]),
                float(r["volume_usd"]))
    # 4H from 1h, per pool
    changes: list[float] = []
    highs: list[float] = []
    liquid_changes: list[float] = []
    confirmed: dict[str, dict[int, bool]] = {}
    for (pool, tf), bars in rows.items():
        if tf != "1h":
            continue
        days: dict[int, float] = defaultdict(float)
        by_candle: dict[int, list[tuple[int, tuple[float, float, float, float, float]]]] = defaultdict(list)
        for ts, bar in sorted(bars.items()):
            days[ts // 86_400] += bar[4]
            by_candle[ts - ts % H4].append((ts, bar))
        liquid = float(np.median(list(days.values()))) >= 100_000
        confirmed[pool] = {}
        for c, hours in by_candle.items():
            if len(hours) < 3:
                continue
            o, cl, hi = hours[0][1][0], hours[-1][1][3], max(h[1][1] for h in hours)
            changes.append(cl / o - 1)
            highs.append(hi / o - 1)
            confirmed[pool][c] = cl >= o * 1.10
            if liquid:
                liquid_changes.append(cl / o - 1)
    ch = np.array(changes)
    lch = np.array(liquid_changes)
    # 5m volume ratio with gaps as empty bars
    all_ratio: list[np.ndarray] = []
    all_z: list[np.ndarray] = []
    rises: list[float] = []
    ign_ratios: list[float] = []
    outcomes: list[bool] = []
    for (pool, tf), bars in rows.items():
        if tf != "5m":
            continue
        first, last = min(bars), max(bars)
        ts5 = np.arange(first, last + 300, 300)
        o5 = np.empty(len(ts5))
        c5 = np.empty(len(ts5))
        v5 = np.zeros(len(ts5))
        prev = bars[first][0]
        for i, t in enumerate(ts5.tolist()):
            b5 = bars.get(t)
            if b5 is None:
                o5[i] = c5[i] = prev
            else:
                o5[i], c5[i], v5[i] = b5[0], b5[3], b5[4]
                prev = b5[3]
        r5, z5 = volume_ratio_and_z(v5)
        all_ratio.append(r5)
        all_z.append(z5)
        found = _ignitions(ts5, o5, c5, r5, confirmed.get(pool, {}))
        rises += found[0]
        ign_ratios += found[1]
        outcomes += found[2]
    ratio, zz = np.concatenate(all_ratio), np.concatenate(all_z)
    # pool sizes: the latest snapshot of every pool passing the liquidity and volume gates
    latest: dict[str, tuple[str, float, float]] = {}
    with (data / "gt_new_pools_snapshots.csv").open() as f:
        for snap in csv.DictReader(f):
            try:
                liq, vol = float(snap["reserve_in_usd"]), float(snap["volume_usd_h24"])
            except ValueError:
                continue
            if snap["pool_id"] not in latest or snap["collected_at"] >= latest[snap["pool_id"]][0]:
                latest[snap["pool_id"]] = (snap["collected_at"], liq, vol)
    gated = [(liq, vol) for _, liq, vol in latest.values() if liq >= 50_000 and vol >= 100_000]
    spikes = ratio > 3
    return {
        "pools_1h": len(confirmed),
        "pools_5m": len(all_ratio),
        "volume_ratio_5m": {**quantiles(ratio, 2), "share_above_3": _share(spikes, ratio),
                            "share_above_10": _share(ratio > 10, ratio)},
        "volume_z_5m": quantiles(zz, 2),
        "z_of_spikes": quantiles(zz[spikes & np.isfinite(zz)], 1),
        "change_4h": {**quantiles(ch), "share_ge_10pct": _share(ch >= 0.10, ch),
                      "share_le_minus_10pct": _share(ch <= -0.10, ch)},
        "change_4h_liquid_pools": {**quantiles(lch), "share_ge_10pct": _share(lch >= 0.10, lch)},
        "high_4h": {**quantiles(np.array(highs)), "share_ge_10pct": _share(np.array(highs) >= 0.10, np.array(highs))},
        "main_pool_liquidity_usd": quantiles([g[0] for g in gated], 0),
        "daily_volume_usd": quantiles([g[1] for g in gated], 0),
        "gate_passing_pools": len(gated),
        "ignitions": {"count": len(rises), "rise_pct": quantiles(rises, 2), "volume_ratio": quantiles(ign_ratios, 2),
                      "share_confirmed": round(sum(outcomes) / len(outcomes), 3) if outcomes else None},
    }


def _share(mask: np.ndarray, values: np.ndarray) -> float | None:
    n = int(np.isfinite(values).sum())
    return round(float(mask.sum()) / n, 4) if n else None


def simulated(n_tokens: int) -> dict[str, Any]:
    sim = MarketSim(demo_sim_config(n_tokens=n_tokens))
    stats = sim_statistics(sim, sim.start_ts, sim.live_end)
    ign = stats["ignitions"]
    assert isinstance(ign, dict)
    events = [e for e in sim.planted_events(sim.start_ts, sim.live_end) if e.kind != "rug"]
    ign["share_confirmed"] = round(sum(e.kind == "pump" for e in events) / len(events), 3) if events else None
    # the z-score of the 5m bars above 3x their baseline, as for the real pools
    zs: list[np.ndarray] = []

    for tok in sim.tokens:
        if tok.kind == "thin":
            continue
        r, z = volume_ratio_and_z([b.volume for b in sim.bars(tok.main_pool.address, Timeframe.M5, sim.start_ts,
                                                                sim.live_end)])
        zs.append(z[(r > 3) & np.isfinite(z)])
    stats["z_of_spikes"] = quantiles(np.concatenate(zs), 1)
    stats["tokens"] = n_tokens
    return stats


def demo_cpu(n_tokens: int, seconds: float) -> dict[str, Any]:
    """Process CPU seconds per real second of the demo scanner at ``n_tokens``."""
    from dexscan import vtime
    from dexscan.config import load_settings
    from dexscan.demo.world import DemoWorld
    from dexscan.engine import Engine
    from dexscan.scan_command import ScanOptions, preload, scan

    opts = ScanOptions(demo=True, speed=60.0, duration=seconds, dashboard=False, quiet=True)
    preload(opts, telegram=False)
    engines: list[Engine] = []
    simulated: list[float] = []

    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            async with DemoWorld(sim_config=demo_sim_config(n_tokens=n_tokens)) as world:
                assert world.clock is not None
                t0 = world.clock.now()
                settings = world.apply(load_settings()).with_overrides({"app.log_file": str(Path(tmp) / "b.log")})
                await scan(settings, opts, world.clock, Path(tmp) / "b.db", mode="demo", ready=engines.append)
                simulated.append(world.clock.now() - t0)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    vtime.run(run(), speed=60.0)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    engine = engines[0]
    return {"tokens": n_tokens, "real_s": round(wall, 1), "simulated_s": round(simulated[0]), "cpu_s": round(cpu, 1),
            "cpu_per_real_s": round(cpu / wall, 3), "cpu_ms_per_simulated_s": round(1000 * cpu / simulated[0], 1),
            "universe": engine.status().universe_size,
            "signals": len(engine.stored)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("DEXSCAN_REAL_DATA", ROOT.parent / "shared" / "data"))
    p.add_argument("--data", type=Path, default=default_data,
                   help="folder holding the real GeckoTerminal CSVs (default ../shared/data)")
    p.add_argument("--tokens", type=int, default=DEMO_TOKENS, help="simulated universe size (default: the demo's)")
    p.add_argument("--cpu-seconds", type=float, default=0.0, help="also run the demo this many real seconds per size")
    p.add_argument("--cpu-tokens", default=f"{DEMO_TOKENS}", help="comma-separated universe sizes for --cpu-seconds")
    args = p.parse_args()
    out: dict[str, Any] = {"bench": "demo_realism"}
    if (args.data / "gt_ohlcv_52pools_lowprecision.csv").is_file():
        out["real"] = real_statistics(args.data)
    else:
        out["real"] = None
        out["real_missing"] = f"no real data in {args.data} (pass --data)"
    out["sim"] = simulated(args.tokens)
    if args.cpu_seconds > 0:
        out["demo_cpu"] = [demo_cpu(int(n), args.cpu_seconds) for n in args.cpu_tokens.split(",")]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
