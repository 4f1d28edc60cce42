"""``dexscan backfill``: local files, and the real GeckoTerminal client against the loopback fake."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from dexscan.backfill import derive_timeframes, missing_ranges, read_ohlcv_file, run_backfill, split_range
from dexscan.config import load_settings
from dexscan.domain import Candle, Timeframe
from dexscan.errors import InputError
from dexscan.store import Store

T0 = 1_754_870_400  # 2025-08-11 00:00 UTC
H1, H4 = 3600, 4 * 3600


def _args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"days": None, "tokens": None, "from_files": None, "source": None, "demo": False,
                               "db": None}
    base.update(kw)
    return argparse.Namespace(**base)


def test_missing_ranges_and_pages() -> None:
    assert missing_ranges([], 0, 100) == [(0, 100)]
    assert missing_ranges([(0, 30), (30, 50), (70, 80)], 0, 100) == [(50, 70), (80, 100)]
    assert missing_ranges([(-10, 200)], 0, 100) == []
    assert missing_ranges([(10, 20)], 0, 100) == [(0, 10), (20, 100)]
    assert split_range(0, 2500 * 300, Timeframe.M5, 1000) == [
        (1500 * 300, 2500 * 300), (500 * 300, 1500 * 300), (0, 500 * 300)]


def _write(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


def test_hourly_csv_fills_gaps_and_derives_utc_aligned_4h(tmp_path: Path) -> None:
    # 02:00 .. 10:00 with 05:00 missing (no trades): the 04-08 window is complete after gap filling.
    rows = ["datetime,symbol,open,high,low,close,volume"]
    for h, (o, hi, lo, c) in {2: (1, 1.1, 0.9, 1.05), 3: (1.05, 1.2, 1.0, 1.1), 4: (1.1, 1.3, 1.1, 1.25),
                              6: (1.25, 1.4, 1.2, 1.3), 7: (1.3, 1.35, 1.0, 1.2), 8: (1.2, 1.2, 1.1, 1.15),
                              9: (1.15, 1.2, 1.1, 1.2), 10: (1.2, 1.3, 1.2, 1.3)}.items():
        rows.append(f"2025-08-11 {h:02d}:00:00,WIF,{o},{hi},{lo},{c},{100 * h}")
    path = _write(tmp_path / "POOLwif.csv", "\n".join(rows))
    [series] = read_ohlcv_file(path)
    assert (series.pool, series.symbol, series.tf) == ("POOLwif", "WIF", Timeframe.H1)
    assert len(series.candles) == 9
    assert series.candles[3] == Candle(T0 + 5 * H1, 1.25, 1.25, 1.25, 1.25, 0.0)

    derived = derive_timeframes([series])
    assert derived[Timeframe.H4] == [Candle(T0 + H4, 1.1, 1.4, 1.0, 1.2, 400 + 0 + 600 + 700)]
    assert Timeframe.M5 not in derived


@pytest.mark.parametrize(("text", "message"), [
    ("timestamp,open,high,low,close\n1754870400,1,1,1,1",
     "bad.csv: missing column(s): volume; found: timestamp, open, high, low, close"),
    ("timestamp,open,high,low,close,volume\n1754870400,1,1,1,1,5\n1754874000,1,1,1,abc,5",
     "bad.csv: row 2 (line 3): column 'close': 'abc' is not a positive number"),
    ("timestamp,open,high,low,close,volume\n1754870400,1,1,1,1,5\n1754874000,1,0.5,1,1,5",
     "bad.csv: row 2 (line 3): column 'high/low': high 0.5 / low 1 do not bracket open 1 and close 1"),
    ("timestamp,open,high,low,close,volume\n1754870400,1,1,1,1,5\n1754872200,1,1,1,1,5",
     "bad.csv: row 2 (line 3): column 'timestamp': bars are 1800s apart, not a known timeframe "
     "(1m, 5m, 15m, 1h, 4h, 12h, 1d)"),
    ("timestamp,open,high,low,close,volume\n1754870400000,1,1,1,1,5\n1754870400000,1,1,1,1,5",
     "bad.csv: row 2 (line 3): column 'timestamp': duplicate bar at 1754870400 for pool bad"),
    ("datetime,open,high,low,close,volume\n2025-08-11 00:00,1,1,1,1,5\nyesterday,1,1,1,1,5",
     "bad.csv: row 2 (line 3): column 'datetime': 'yesterday' is not a date-time (e.g. 2025-08-11 04:00:00, "
     "read as UTC)"),
    ("timestamp,open,high,low,close,volume\n1754870460,1,1,1,1,5\n1754874060,1,1,1,1,5",
     "bad.csv: row 1 (line 2): column 'timestamp': 1754870460 is not on a UTC 1h boundary"),
])
def test_bad_files_fail_with_one_line_naming_file_row_and_column(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError) as exc:
        read_ohlcv_file(_write(tmp_path / "bad.csv", text))
    assert str(exc.value) == message


async def test_from_files_skips_a_bad_file_and_imports_the_rest(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    rows = "\n".join(f"{T0 + i * H1},1,1.1,0.9,1.0,{i}" for i in range(8))
    _write(files / "good.csv", "timestamp,open,high,low,close,volume\n" + rows)
    _write(files / "broken.csv", "timestamp,open\n1,2")
    db = tmp_path / "x.db"
    code = await run_backfill(load_settings(), _args(from_files=str(files), db=str(db)))
    assert code == 1
    store = await Store.open(db)
    try:
        assert await store.candle_count("good", Timeframe.H1) == 8
        assert await store.candles("good", Timeframe.H4) == [Candle(T0, 1, 1.1, 0.9, 1.0, 6.0),
                                                            Candle(T0 + H4, 1, 1.1, 0.9, 1.0, 22.0)]
        assert await store.coverage("good", Timeframe.H4) == [(T0, T0 + 2 * H4)]
        assert await store.pools_of("good") != []
    finally:
        await store.close()
    (files / "good.csv").unlink()
    with pytest.raises(InputError) as exc:
        await run_backfill(load_settings(), _args(from_files=str(files), db=str(db)))
    assert str(exc.value) == (f"--from-files {files}: no file could be imported; first problem: broken.csv: "
                              "missing column(s): high, low, close, volume; found: timestamp, open")
