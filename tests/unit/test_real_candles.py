"""On real GeckoTerminal candles (``../shared/data``, when present; skipped otherwise): the carried
ATR equals a full-history Wilder ATR, and pools that start inside a 4H candle count it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dexscan.config import load_settings
from dexscan.detector import Detector
from dexscan.domain import Candle, Timeframe
from dexscan.ladder import wilder_atr_series
from dexscan.replay import TokenHistory

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "gt_ohlcv_52pools_lowprecision.csv"


@pytest.fixture(scope="module")
def hourly() -> dict[str, list[Candle]]:
    if not DATA.is_file():
        pytest.skip(f"{DATA} not present")
    out: dict[str, dict[int, Candle]] = {}
    with DATA.open(newline="") as fh:
        for r in csv.DictReader(fh):
            if r["timeframe"] != "1h":
                continue
            ts = int(r["timestamp"])
            out.setdefault(r["pool_id"].removeprefix("solana_"), {})[ts] = Candle(
                ts, float(r["open_price"]), float(r["high_price"]), float(r["low_price"]), float(r["close_price"]),
                float(r["volume_usd"]))
    return {p: [bars[t] for t in sorted(bars)] for p, bars in out.items()}


def test_carried_atr_equals_full_history_wilder_on_real_hourly_pools(hourly: dict[str, list[Candle]]) -> None:
    settings = load_settings(env={})
    det = Detector(settings)
    longest = max(hourly, key=lambda p: len(hourly[p]))
    bars = hourly[longest]
    assert len(bars) > 400
    filled = []
    for c in bars:  # the reference sees every gap hour as the flat bar the book fills in
        while filled and filled[-1].ts + 3600 < c.ts:
            p = filled[-1].close
            filled.append(Candle(filled[-1].ts + 3600, p, p, p, p, 0.0))
        filled.append(c)
    det.bootstrap(longest, Timeframe.H1, bars)
    m = det.market(longest)
    assert m is not None
    want = wilder_atr_series(filled, 14)[-1] * 2.0
    assert m.h1.atr.value == pytest.approx(want, rel=1e-9)


def test_real_pools_that_start_mid_candle_count_their_first_candle(hourly: dict[str, list[Candle]]) -> None:
    started_inside = [p for p, bars in hourly.items() if bars[0].ts % 14_400 and len(bars) > 8]
    assert started_inside
    for pool in started_inside:
        h = TokenHistory(pool, "", pool, {Timeframe.H1: hourly[pool]})
        first = h.label_bars()[0]
        assert first.ts == Timeframe.H4.floor(hourly[pool][0].ts) and first.open == hourly[pool][0].open
