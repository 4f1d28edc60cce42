"""Local OHLCV files (CSV, Parquet) for ``dexscan backfill --from-files``: read, check, derive timeframes.

A file names no mint: its ``pool`` column (or aliases) names the pool, ``symbol`` the token when
present; times are epoch seconds or milliseconds or ISO datetimes; each pool's series is gap-filled
and the coarser timeframes are resampled from the finest one that divides them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dexscan.backfill import HISTORY_TIMEFRAMES, fill_gaps, resample
from dexscan.domain import Candle, Timeframe
from dexscan.errors import InputError

_FILE_SUFFIXES = (".csv", ".parquet", ".pq")
_COLUMN_ALIASES = {
    "open_price": "open",
    "high_price": "high",
    "low_price": "low",
    "close_price": "close",
    "volume_usd": "volume",
    "pool_id": "pool",
    "pool_address": "pool",
    "time": "timestamp",
    "unix_time": "timestamp",
    "date": "datetime",
}
_PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
_MS_THRESHOLD = 100_000_000_000  # epoch values above this are milliseconds (year 5138 in seconds)
_TF_ALIASES = {"minute": "1m", "hour": "1h", "day": "1d", "1H": "1h", "4H": "4h", "1D": "1d"}


@dataclass(frozen=True, slots=True)
class ImportedSeries:
    """One pool's bars of one timeframe read from a file (gap-filled, oldest first)."""

    path: Path
    pool: str
    symbol: str
    tf: Timeframe
    candles: tuple[Candle, ...]


def _bad(path: Path, row: int | None, column: str | None, problem: str, csv: bool) -> InputError:
    where = [path.name]
    if row is not None:
        where.append(f"row {row}" + (f" (line {row + 1})" if csv else ""))
    if column is not None:
        where.append(f"column {column!r}")
    return InputError(f"{': '.join(where)}: {problem}")


def _load_frame(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        return pd.read_parquet(path)
    except (OSError, ValueError, pd.errors.ParserError, ImportError) as exc:
        raise InputError(f"{path.name}: cannot read as {suffix[1:]}: {str(exc).splitlines()[0]}") from None


def read_ohlcv_file(path: Path) -> list[ImportedSeries]:
    """Parse one OHLCV file into series, one per (pool, timeframe).

    Columns (case-insensitive): ``timestamp`` (epoch s or ms) or ``datetime`` (UTC; an explicit
    offset is converted), ``open, high, low, close, volume``, optional ``symbol`` and ``pool``
    (without it the file stem is the pool id) and optional ``timeframe`` (else detected from the
    spacing of the timestamps). Any bad value raises :class:`InputError` naming file, row, column.
    """
    csv = path.suffix.lower() == ".csv"
    df = _load_frame(path)
    df.columns = [_COLUMN_ALIASES.get(str(c).strip().lower(), str(c).strip().lower()) for c in df.columns]
    if df.columns.duplicated().any():
        dup = sorted({c for c in df.columns[df.columns.duplicated()]})
        raise _bad(path, None, dup[0], "appears twice (after reading aliases such as open_price = open)", csv)
    missing = [c for c in _PRICE_COLUMNS if c not in df.columns]
    if "timestamp" not in df.columns and "datetime" not in df.columns:
        missing.insert(0, "timestamp or datetime")
    if missing:
        raise _bad(path, None, None, f"missing column(s): {', '.join(missing)}; found: {', '.join(df.columns)}",
                   csv)
    if df.empty:
        raise _bad(path, None, None, "has no data rows", csv)

    rows = np.arange(1, len(df) + 1)
    ts = _parse_times(path, df, rows, csv)
    values = {}
    for col in _PRICE_COLUMNS:
        num = pd.to_numeric(df[col], errors="coerce").astype(float).to_numpy()
        bad = ~np.isfinite(num) | (num < 0) if col == "volume" else ~np.isfinite(num) | (num <= 0)
        if bad.any():
            i = int(np.argmax(bad))
            kind = "a non-negative number" if col == "volume" else "a positive number"
            raise _bad(path, int(rows[i]), col, f"{df[col].iloc[i]!r} is not {kind}", csv)
        values[col] = num
    o, h, lo, c = values["open"], values["high"], values["low"], values["close"]
    inconsistent = (h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (lo > h)
    if inconsistent.any():
        i = int(np.argmax(inconsistent))
        raise _bad(path, int(rows[i]), "high/low",
                   f"high {h[i]:g} / low {lo[i]:g} do not bracket open {o[i]:g} and close {c[i]:g}", csv)

    pools = (df["pool"].astype(str).str.strip().str.removeprefix("solana_").to_numpy()
             if "pool" in df.columns else np.full(len(df), path.stem, dtype=object))
    symbols = df["symbol"].astype(str).str.strip().to_numpy() if "symbol" in df.columns else None
    tfs = df["timeframe"].astype(str).str.strip().to_numpy() if "timeframe" in df.columns else None
    if (pools == "").any():
        raise _bad(path, int(rows[int(np.argmax(pools == ""))]), "pool", "is empty", csv)

    groups: dict[tuple[str, str], list[int]] = {}
    for i in range(len(df)):
        groups.setdefault((str(pools[i]), "" if tfs is None else str(tfs[i])), []).append(i)

    out: list[ImportedSeries] = []
    for (pool, tf_label), idx in sorted(groups.items()):
        order = sorted(idx, key=lambda i: (ts[i], i))
        for a, b in itertools.pairwise(order):
            if ts[a] == ts[b]:
                raise _bad(path, int(rows[b]), "timestamp", f"duplicate bar at {ts[b]} for pool {pool}", csv)
        tf = _series_timeframe(path, [ts[i] for i in order], [int(rows[i]) for i in order], tf_label, csv)
        candles = [Candle(int(ts[i]), float(o[i]), float(h[i]), float(lo[i]), float(c[i]),
                          float(values["volume"][i])) for i in order]
        symbol = ""
        if symbols is not None:
            symbol = next((str(symbols[i]) for i in order if str(symbols[i])), "")
        out.append(ImportedSeries(path, pool, symbol, tf, tuple(fill_gaps(candles, tf))))
    return out


def _parse_times(path: Path, df: pd.DataFrame, rows: np.ndarray, csv: bool) -> list[int]:
    if "timestamp" in df.columns:
        raw = pd.to_numeric(df["timestamp"], errors="coerce").astype(float).to_numpy()
        bad = ~np.isfinite(raw) | (raw < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise _bad(path, int(rows[i]), "timestamp", f"{df['timestamp'].iloc[i]!r} is not epoch seconds or "
                       "milliseconds", csv)
        secs = np.where(raw >= _MS_THRESHOLD, raw / 1000.0, raw)
        frac = secs != np.floor(secs)
        if frac.any():
            i = int(np.argmax(frac))
            raise _bad(path, int(rows[i]), "timestamp", f"{df['timestamp'].iloc[i]!r} is not a whole second", csv)
        return [int(s) for s in secs]
    text = df["datetime"]
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
    if parsed.isna().any():
        i = int(np.argmax(parsed.isna().to_numpy()))
        raise _bad(path, int(rows[i]), "datetime", f"{text.iloc[i]!r} is not a date-time (e.g. 2025-08-11 04:00:00, "
                   "read as UTC)", csv)
    secs = parsed.astype("int64").to_numpy() // _ns_per_unit(parsed)
    return [int(s) for s in secs]


def _ns_per_unit(series: pd.Series) -> int:
    unit = str(getattr(series.dt, "unit", "ns"))
    return {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]


def _series_timeframe(path: Path, ts: list[int], rows: list[int], label: str, csv: bool) -> Timeframe:
    if label:
        try:
            tf = Timeframe.from_label(_TF_ALIASES.get(label, label))
        except ValueError as exc:
            raise _bad(path, rows[0], "timeframe", str(exc), csv) from None
    else:
        if len(ts) < 2:
            raise _bad(path, rows[0], "timestamp", "a single bar: cannot tell the timeframe from one timestamp", csv)
        step = min(b - a for a, b in itertools.pairwise(ts))
        try:
            tf = Timeframe(step)
        except ValueError:
            known = ", ".join(t.label for t in Timeframe)
            raise _bad(path, rows[1], "timestamp", f"bars are {step}s apart, not a known timeframe ({known})",
                       csv) from None
    for t, r in zip(ts, rows, strict=True):
        if t % int(tf):
            raise _bad(path, r, "timestamp", f"{t} is not on a UTC {tf.label} boundary", csv)
    return tf


def derive_timeframes(series: Sequence[ImportedSeries]) -> dict[Timeframe, list[Candle]]:
    """The bars to store for one pool: each of 5m/1h/4h from the file, else built from a finer one.

    Only hourly bars in a file (the common export) still give 4H bars, UTC-aligned.
    """
    have: dict[Timeframe, list[Candle]] = {s.tf: list(s.candles) for s in series}
    out: dict[Timeframe, list[Candle]] = {}
    for tf in sorted(have):
        out[tf] = have[tf]
    for dst in HISTORY_TIMEFRAMES:
        if dst in out:
            continue
        sources = [src for src in sorted(out, reverse=True) if src < dst and int(dst) % int(src) == 0]
        if sources:
            bars = resample(out[sources[0]], sources[0], dst)
            if bars:
                out[dst] = bars
    return out


def find_ohlcv_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise InputError(f"--from-files {directory}: not a directory")
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in _FILE_SUFFIXES)
    if not files:
        raise InputError(f"--from-files {directory}: no .csv or .parquet files in it")
    return files
