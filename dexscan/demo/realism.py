"""How much the simulated market looks like the real one: the statistics both are measured by.

Pure functions over bars (no I/O): the 5m volume ratio and z-score the detectors read, 4H changes
and highs, and, for the simulator, what each planted event looked like at its ignition bar and how
it unfolded afterwards, measured on the bars (not read back from the simulator's internals).
``scripts/bench_demo_realism.py`` prints them for the simulator next to the real pools in
``data/``; ``tests/unit/test_market_sim_realism.py`` pins the simulator's figures.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dexscan.demo.market_sim import CANDLE_S, MarketSim, PlantedEvent, SimToken
from dexscan.domain import Candle, Timeframe

#: Bars in the volume baseline (SPEC §5: the mean of the previous 20 completed 5m bars).
BASELINE_BARS = 20
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


def volume_ratio_and_z(volumes: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each bar's volume over the mean of the 20 bars before it, and its z-score against them.

    NaN where there are fewer than 20 bars before, or the baseline is zero (ratio) or flat (z).
    """
    v = np.asarray(volumes, dtype=float)
    n = len(v)
    ratio = np.full(n, np.nan)
    z = np.full(n, np.nan)
    if n <= BASELINE_BARS:
        return ratio, z
    s1 = np.r_[0.0, np.cumsum(v)]
    s2 = np.r_[0.0, np.cumsum(v * v)]
    k = BASELINE_BARS
    mean = (s1[k:-1] - s1[:-k - 1]) / k
    var = np.maximum((s2[k:-1] - s2[:-k - 1]) / k - mean * mean, 0.0)
    std = np.sqrt(var)
    cur = v[k:]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio[k:] = np.where(mean > 0, cur / mean, np.nan)
        z[k:] = np.where(std > 1e-12 * np.maximum(mean, 1e-300), (cur - mean) / std, np.nan)
    return ratio, z


def four_hour_moves(bars: Sequence[Candle]) -> tuple[np.ndarray, np.ndarray]:
    """(close/open - 1, high/open - 1) of each 4H bar."""
    o = np.array([b.open for b in bars])
    return np.array([b.close for b in bars]) / o - 1, np.array([b.high for b in bars]) / o - 1


def quantiles(values: np.ndarray | Sequence[float], digits: int = 3) -> dict[str, float | None]:
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if not len(x):
        return {f"q{round(q * 100):02d}": None for q in QUANTILES}
    return {f"q{round(q * 100):02d}": round(float(v), digits) for q, v in zip(QUANTILES, np.quantile(x, QUANTILES),
                                                                               strict=True)}


@dataclass(frozen=True, slots=True)
class EventProfile:
    """One planted pump or fizzle as the bars show it."""

    event: PlantedEvent
    rise_pct: float  # the ignition bar's close over the 4H open
    volume_ratio: float  # the ignition bar's volume over the mean of the 20 bars before it
    volume_z: float  # ... and its z-score against them
    peak_after_min: int  # minutes from the ignition bar's close to the candle's highest high
    shape: str  # pump: spike_and_hold | steps | grind; fizzle: fade | pop_and_reverse | dump


def event_profile(sim: MarketSim, event: PlantedEvent) -> EventProfile:
    """Measure a planted pump or fizzle on its main pool's 5m and 1m bars."""
    if event.kind == "rug":
        raise ValueError("a rug has no ignition bar")
    bar_ts = event.ignite_ts - 300
    m5 = sim.bars(event.pool, Timeframe.M5, bar_ts - BASELINE_BARS * 300, bar_ts + 300)
    ratio, z = volume_ratio_and_z([b.volume for b in m5])
    open4 = sim.bars(event.pool, Timeframe.H4, event.candle_ts, event.candle_ts + CANDLE_S)[0].open
    minutes = sim.bars(event.pool, Timeframe.M1, event.candle_ts, event.candle_ts + CANDLE_S)
    highs = np.array([b.high for b in minutes])
    peak_ts = minutes[int(np.argmax(highs))].ts
    peak_after = max(0, (peak_ts + 60 - event.ignite_ts) // 60)
    rise = (m5[-1].close / open4 - 1) * 100
    if event.kind == "pump":
        shape = "spike_and_hold" if peak_after <= 30 else ("steps" if peak_after <= 110 else "grind")
    elif event.peak_pct >= 9.0:
        shape = "pop_and_reverse"
    elif event.close_pct <= -4.0 and event.peak_pct - rise < 1.5:
        shape = "dump"
    else:
        shape = "fade"
    return EventProfile(event, rise, float(ratio[-1]), float(z[-1]), int(peak_after), shape)


def sim_statistics(sim: MarketSim, start: int, end: int) -> dict[str, object]:
    """The simulator's figures over ``[start, end)``: the measures the real pools get in
    ``scripts/bench_demo_realism.py``, on the main pools of the tokens that pass the liquidity and
    volume gates, plus what its planted events looked like and which tokens the gates reject."""
    ratios: list[np.ndarray] = []
    zs: list[np.ndarray] = []
    changes: list[np.ndarray] = []
    highs: list[np.ndarray] = []
    for tok in sim.tokens:
        if tok.kind == "thin":
            continue
        pool = tok.main_pool.address
        r, z = volume_ratio_and_z([b.volume for b in sim.bars(pool, Timeframe.M5, start, end)])
        ratios.append(r)
        zs.append(z)
        ch, hi = four_hour_moves(sim.bars(pool, Timeframe.H4, start, end))
        changes.append(ch)
        highs.append(hi)
    ratio, zz, change, high = (np.concatenate(x) for x in (ratios, zs, changes, highs))
    events = [e for e in sim.planted_events(start, end) if e.kind != "rug"]
    profiles = [event_profile(sim, e) for e in events]
    liquid = [t for t in sim.tokens if t.kind != "thin"]
    return {
        "volume_ratio_5m": {**quantiles(ratio, 2), "share_above_3": _share(ratio > 3, ratio),
                            "share_above_10": _share(ratio > 10, ratio)},
        "volume_z_5m": quantiles(zz, 2),
        "change_4h": {**quantiles(change), "share_ge_10pct": _share(change >= 0.10, change),
                      "share_le_minus_10pct": _share(change <= -0.10, change)},
        "high_4h": {**quantiles(high), "share_ge_10pct": _share(high >= 0.10, high)},
        "main_pool_liquidity_usd": quantiles([t.main_pool.liquidity_usd for t in liquid], 0),
        "daily_volume_usd": quantiles([t.daily_volume_usd for t in liquid], 0),
        "ignitions": {
            "count": len(profiles),
            "rise_pct": quantiles([p.rise_pct for p in profiles], 2),
            "volume_ratio": quantiles([p.volume_ratio for p in profiles], 2),
            "volume_z": quantiles([p.volume_z for p in profiles], 1),
            "peak_after_min": quantiles([p.peak_after_min for p in profiles], 0),
            "shapes": dict(sorted(Counter(f"{p.event.kind}:{p.shape}" for p in profiles).items())),
        },
        "rejected_tokens": dict(sorted(Counter(rejection(t) for t in sim.tokens if rejection(t)).items())),
    }


def rejection(tok: SimToken) -> str:
    """Why the gates keep a simulated token out ('' when they let it in); a rug token fails the
    liquidity gate once its liquidity is pulled."""
    if tok.mint_authority:
        return "mint_authority"
    if tok.freeze_authority:
        return "freeze_authority"
    if tok.transfer_fee_bps is not None and tok.transfer_fee_bps > 100:
        return "transfer_fee"
    if tok.kind == "thin":
        return {"liquidity": "low_liquidity", "volume": "low_volume"}.get(tok.thin_reason or "",
                                                                            "low_liquidity_and_volume")
    if tok.kind == "rug":
        return "rug"
    return ""


def _share(mask: np.ndarray, values: np.ndarray) -> float:
    n = int(np.isfinite(values).sum())
    return round(float(mask.sum()) / n, 4) if n else math.nan
