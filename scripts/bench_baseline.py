#!/usr/bin/env python3
"""Benchmark: the detector against a naive pandas scanner, on the same bars in the same run.

The baseline is how older scanners judged a token: on every new 5m bar, rebuild a DataFrame of the
token's recent bars, recompute the rolling 20-bar volume SMA and the 4H aggregate with pandas, and
evaluate the rules of SPEC §5 on the last row:

* **ignition**: ``close >= open_4h * 1.02`` and ``volume > 3 * SMA20(previous 20 bars)``, once per
  token per 4H candle, only with 20 previous bars;
* **confirmation**: at the 4H close, ``(close - open) / open >= 0.10``.

Both scanners get the same bars (``--tokens`` synthetic tokens, round robin, one 5m bar per token per
round, a few planted pumps per 4H candle), interleaved round by round so machine load hits both
alike. The detector runs twice: with the default configuration (all four strategies, the ATR ladder
and scoring for every signal: more work than the baseline does) and with the two same rules only.
Each must produce exactly the baseline's ignitions and confirmations (token, candle, time) — the
script fails otherwise. Thresholds compare with the same 1e-9 relative tolerance on both sides
(:func:`dexscan.strategies.base.meets`/``exceeds``). Prints one JSON line with the three rates and
the speed ratios.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dexscan.config import Settings, load_settings
from dexscan.detector import Detector
from dexscan.domain import Candle, Timeframe
from dexscan.plugins import build_strategies
from dexscan.strategies import Confirmation, Ignition, exceeds, meets

M5 = 300
H4 = 14_400
T0 = 1_750_000_000 - 1_750_000_000 % H4
COLUMNS = ["ts", "open", "high", "low", "close", "volume"]
#: Bars the baseline keeps per token: a whole 4H candle (48) plus the SMA's 20, with room to spare.
KEEP = 100

Event = tuple[str, str, int, int]  # (layer, mint, candle_ts, ts)


class PandasScanner:
    """The naive scanner: every update rebuilds the token's DataFrame and recomputes everything."""

    def __init__(self, settings: Settings) -> None:
        ign = settings.strategies.params_for(Ignition.Params)
        self.sma_bars = ign.sma_bars
        self.rise = 1.0 + ign.rise_pct / 100.0
        self.volume_mult = ign.volume_mult
        self.confirm = 1.0 + settings.strategies.params_for(Confirmation.Params).rise_pct / 100.0
        self.bars: dict[str, deque[tuple[int, float, float, float, float, float]]] = {}
        self.fired: dict[str, int] = {}

    def on_bar(self, mint: str, c: Candle) -> list[Event]:
        bars = self.bars.setdefault(mint, deque(maxlen=KEEP))
        bars.append((c.ts, c.open, c.high, c.low, c.close, c.volume))
        df = pd.DataFrame(list(bars), columns=COLUMNS)
        df["sma"] = df["volume"].shift(1).rolling(self.sma_bars).mean()
        df["w4"] = df["ts"] - df["ts"] % H4
        candles = df.groupby("w4").agg(open=("open", "first"), high=("high", "max"), low=("low", "min"),
                                       close=("close", "last"), volume=("volume", "sum"))
        last = df.iloc[-1]
        w4 = int(last["w4"])
        open4 = float(candles["open"].iloc[-1])  # groups are sorted: the last one is the forming candle
        out: list[Event] = []
        sma = float(last["sma"])
        end = c.ts + M5
        if (not pd.isna(sma) and self.fired.get(mint) != w4
                and meets(float(last["close"]), open4 * self.rise)
                and exceeds(float(last["volume"]), self.volume_mult * sma)):
            self.fired[mint] = w4
            out.append(("ignition", mint, w4, end))
        if end % H4 == 0 and meets(float(candles["close"].iloc[-1]), open4 * self.confirm):
            out.append(("confirmation", mint, w4, end))
        return out


class Stream:
    """Per-token random walks with planted pumps: one to six bars of +3-4% each on 5x volume, starting
    an hour into some 4H candles (the long ones confirm, the short ones fizzle)."""

    def __init__(self, tokens: int, seed: int, pumps_per_candle: float) -> None:
        self.rng = random.Random(seed)
        self.prices = [self.rng.uniform(1e-4, 10.0) for _ in range(tokens)]
        self.pump_p = pumps_per_candle / tokens
        self.pumping: dict[int, int] = {}  # token -> bars of pump left

    def bar(self, k: int, ts: int) -> Candle:
        rng = self.rng
        if ts % H4 == 12 * M5 and rng.random() < self.pump_p:
            self.pumping[k] = rng.randint(1, 6)
        o = self.prices[k]
        left = self.pumping.get(k, 0)
        if left:
            self.pumping[k] = left - 1
            c = o * (1.03 + rng.random() * 0.01)
            v = rng.uniform(5000.0, 8000.0)
        else:
            c = o * (1.0 + rng.gauss(0.0, 0.006))
            v = rng.uniform(500.0, 1500.0) * (6.0 if rng.random() < 0.01 else 1.0)
        h = max(o, c) * (1.0 + rng.random() * 0.003)
        lo = min(o, c) * (1.0 - rng.random() * 0.003)
        self.prices[k] = c
        return Candle(ts, o, h, lo, c, v)


def run(tokens: int, rounds: int, seed: int, pumps_per_candle: float) -> dict[str, Any]:
    settings = load_settings(env={})
    mints = [f"mint{k:05d}" for k in range(tokens)]
    full = Detector(settings)
    same = Detector(settings, strategies=build_strategies(settings, ["ignition", "confirmation"]))
    naive = PandasScanner(settings)
    stream = Stream(tokens, seed, pumps_per_candle)
    events: dict[str, set[Event]] = {"full": set(), "same": set(), "pandas": set()}
    seconds = {"full": 0.0, "same": 0.0, "pandas": 0.0}
    signals_full = 0

    def feed_detector(det: Detector, row: list[Candle], key: str) -> int:
        n = 0
        for mint, c in zip(mints, row, strict=True):
            for s in det.on_bar(mint, Timeframe.M5, c):
                n += 1
                if s.layer in ("ignition", "confirmation"):
                    events[key].add((s.layer, s.mint, s.candle_ts, s.ts))
        return n

    def feed_pandas(row: list[Candle]) -> int:
        n = 0
        for mint, c in zip(mints, row, strict=True):
            found = naive.on_bar(mint, c)
            n += len(found)
            events["pandas"].update(found)
        return n

    for i in range(rounds):
        ts = T0 + i * M5
        row = [stream.bar(k, ts) for k in range(tokens)]
        order = ("pandas", "full", "same") if i % 2 else ("same", "full", "pandas")
        for key in order:
            gc.disable()
            t = time.perf_counter()
            if key == "pandas":
                feed_pandas(row)
            else:
                n = feed_detector(full if key == "full" else same, row, key)
                if key == "full":
                    signals_full += n
            seconds[key] += time.perf_counter() - t
            gc.enable()

    expected = events["pandas"]
    for key in ("full", "same"):
        if events[key] != expected:
            missing = sorted(expected - events[key])[:5]
            extra = sorted(events[key] - expected)[:5]
            raise SystemExit(f"bench_baseline: detector ({key}) disagrees with the pandas baseline: "
                             f"missing {missing}, extra {extra}")
    updates = tokens * rounds
    rate = {k: updates / s for k, s in seconds.items()}
    return {
        "bench": "baseline",
        "tokens": tokens,
        "updates": updates,
        "ignitions": sum(1 for e in expected if e[0] == "ignition"),
        "confirmations": sum(1 for e in expected if e[0] == "confirmation"),
        "identical_signals": True,
        "pandas_updates_per_s": round(rate["pandas"]),
        "detector_updates_per_s": round(rate["full"]),
        "detector_same_rules_updates_per_s": round(rate["same"]),
        "speedup": round(rate["full"] / rate["pandas"], 1),
        "speedup_same_rules": round(rate["same"] / rate["pandas"], 1),
        "detector_signals_all_strategies": signals_full,
        "pandas": pd.__version__,
        "python": platform.python_version(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=150, help="5m bars per token (48 make one 4H candle)")
    ap.add_argument("--pumps-per-candle", type=float, default=10.0, help="planted pumps per 4H candle, all tokens")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    print(json.dumps(run(a.tokens, a.rounds, a.seed, a.pumps_per_candle)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
