"""Bars: the stored candles of each pool and timeframe, and which spans of history were fetched."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dexscan.domain import Candle, Timeframe
from dexscan.store.connection import Database, where


class Bars(Database):
    """Rows of ``candles`` (natural key ``(pool, timeframe, ts)``) and ``history_coverage``."""

    async def upsert_candles(self, pool: str, tf: Timeframe, candles: Iterable[Candle]) -> int:
        """Insert or replace bars (a forming bar is rewritten as it grows). Returns rows written."""
        rows = [(pool, int(tf), c.ts, c.open, c.high, c.low, c.close, c.volume) for c in candles]
        if not rows:
            return 0
        await self._write_many(
            """INSERT INTO candles(pool, timeframe, ts, open, high, low, close, volume)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(pool, timeframe, ts) DO UPDATE SET open = excluded.open,
                 high = excluded.high, low = excluded.low, close = excluded.close,
                 volume = excluded.volume""",
            rows,
        )
        return len(rows)

    async def candles(
        self, pool: str, tf: Timeframe, start: int | None = None, end: int | None = None
    ) -> list[Candle]:
        """Bars with ``start <= ts < end``, oldest first."""
        rows = await self._all(
            """SELECT ts, open, high, low, close, volume FROM candles
               WHERE pool = ? AND timeframe = ? AND ts >= ? AND ts < ? ORDER BY ts""",
            (pool, int(tf), start if start is not None else -(2**62), end if end is not None else 2**62),
        )
        return [Candle(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    async def candle_count(self, pool: str | None = None, tf: Timeframe | None = None) -> int:
        filters, params = where(("pool = ?", pool), ("timeframe = ?", None if tf is None else int(tf)))
        row = await self._one("SELECT COUNT(*) FROM candles WHERE 1=1" + filters, params)
        return int(row[0]) if row else 0

    async def candle_spans(self) -> list[dict[str, Any]]:
        """Per stored (pool, timeframe): ``n`` bars, ``first``/``last`` ts and the pool's ``mint``
        (None when the pool is unknown), for evaluation to find what history exists."""
        return [dict(r) for r in await self._all(
            """SELECT c.pool AS pool, c.timeframe AS timeframe, COUNT(*) AS n, MIN(c.ts) AS first,
                      MAX(c.ts) AS last, p.mint AS mint
               FROM candles c LEFT JOIN pools p ON p.address = c.pool
               GROUP BY c.pool, c.timeframe ORDER BY c.pool, c.timeframe"""
        )]

    async def add_coverage(self, pool: str, tf: Timeframe, start_ts: int, end_ts: int) -> None:
        await self._write(
            """INSERT INTO history_coverage(pool, timeframe, start_ts, end_ts) VALUES (?, ?, ?, ?)
               ON CONFLICT(pool, timeframe, start_ts) DO UPDATE SET end_ts = MAX(end_ts, excluded.end_ts)""",
            (pool, int(tf), start_ts, end_ts),
        )

    async def coverage(self, pool: str, tf: Timeframe) -> list[tuple[int, int]]:
        rows = await self._all(
            "SELECT start_ts, end_ts FROM history_coverage WHERE pool = ? AND timeframe = ? ORDER BY start_ts",
            (pool, int(tf)),
        )
        return [(int(r[0]), int(r[1])) for r in rows]
