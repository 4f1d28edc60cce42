"""Bars of a pool at any timeframe, closed or forming, aggregated from the tokens' minute paths."""

from __future__ import annotations

import numpy as np

from dexscan.demo.market_sim.model import CANDLE_S, SimPool, _CandleData
from dexscan.demo.market_sim.paths import PricePaths
from dexscan.domain import Candle, Timeframe


class BarQueries(PricePaths):
    """OHLCV bars of one pool (volume in USD, the pool's share of its token's)."""

    def _minutes(self, ti: int, m_lo: int, m_hi: int) -> tuple[np.ndarray, ...]:
        """Minute arrays (open, high, low, close, volume) for minute timestamps [m_lo, m_hi)."""
        c_lo = (m_lo - self.start_ts) // CANDLE_S
        c_hi = (m_hi - 1 - self.start_ts) // CANDLE_S
        parts = [self._candle(ti, c) for c in range(c_lo, c_hi + 1)]
        first = (m_lo - self.start_ts - c_lo * CANDLE_S) // 60
        n = (m_hi - m_lo) // 60
        cols = []
        for column in (_CandleData.opens, lambda d: d.high, lambda d: d.low, lambda d: d.close, lambda d: d.volume):
            arr = column(parts[0]) if len(parts) == 1 else np.concatenate([column(p) for p in parts])
            cols.append(arr[first:first + n])
        return tuple(cols)

    def bars(self, pool: str, tf: Timeframe, start: int, end: float, *, include_forming: bool = False,
             include_empty: bool = True) -> list[Candle]:
        """Bars of ``pool`` with ``start <= ts`` that closed by ``end``; ascending, volume in USD.

        ``include_forming`` adds the bar in progress at ``end`` (aggregated up to ``end``, the
        current minute pro rata). ``include_empty=False`` drops zero-volume intervals the way
        GeckoTerminal does by default.
        """
        p = self.pool(pool)
        if p.closes_at is not None:  # a bonding curve trades nothing after the migration
            end = min(end, p.closes_at)
        tfs = int(tf)
        first_bar = max(-(-start // tfs) * tfs, p.bars_from - p.bars_from % tfs)
        done_end = int(end) - int(end) % tfs
        out: list[Candle] = []
        m_lo, m_hi = max(first_bar, p.bars_from), done_end
        if m_hi > m_lo:
            out = self._aggregate(p, tfs, m_lo, m_hi, include_empty)
        if include_forming and done_end >= first_bar and done_end < end:
            forming = self._forming(p, tfs, done_end, end)
            if forming is not None and (include_empty or forming.volume > 0):
                out.append(forming)
        return out

    def _aggregate(self, p: SimPool, tfs: int, m_lo: int, m_hi: int, include_empty: bool) -> list[Candle]:
        o, h, lo, c, v = self._minutes(p.token_index, m_lo, m_hi)
        v = v * p.volume_share
        ts = m_lo + 60 * np.arange(len(o))
        bucket = ts - ts % tfs
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        ends = np.r_[starts[1:], len(o)]
        hh = np.maximum.reduceat(h, starts)
        ll = np.minimum.reduceat(lo, starts)
        vv = np.add.reduceat(v, starts)
        oo = o[starts]
        cc = c[ends - 1]
        bt = bucket[starts]
        keep = np.ones(len(starts), dtype=bool) if include_empty else vv > 0
        return [Candle(int(bt[i]), float(oo[i]), float(hh[i]), float(ll[i]), float(cc[i]), float(vv[i]))
                for i in np.flatnonzero(keep)]

    def _forming(self, p: SimPool, tfs: int, bar_ts: int, t: float) -> Candle | None:
        m_lo = max(bar_ts, p.bars_from)
        if t <= m_lo:
            return None
        whole_end = int(t) - int(t) % 60
        o = h = lo = c = v = None
        if whole_end > m_lo:
            oo, hh, ll, cc, vv = self._minutes(p.token_index, m_lo, whole_end)
            o, h, lo, c, v = float(oo[0]), float(hh.max()), float(ll.min()), float(cc[-1]), float(vv.sum())
        if t > whole_end:
            po, pc, pv = self._partial_minute(p.token_index, whole_end, t)
            o = po if o is None else o
            h = max(po, pc) if h is None else max(h, po, pc)
            lo = min(po, pc) if lo is None else min(lo, po, pc)
            c = pc
            v = pv if v is None else v + pv
        assert o is not None and h is not None and lo is not None and c is not None and v is not None
        return Candle(bar_ts, o, h, lo, c, v * p.volume_share)

    def _partial_minute(self, ti: int, minute_ts: int, t: float) -> tuple[float, float, float]:
        """(open, price at t, volume so far) of the minute starting at ``minute_ts``."""
        cidx = (minute_ts - self.start_ts) // CANDLE_S
        data = self._candle(ti, cidx)
        m = (minute_ts - self.start_ts - cidx * CANDLE_S) // 60
        f = (t - minute_ts) / 60
        o, cl = data.open_at(m), float(data.close[m])
        price = o if cl == o else o * (cl / o) ** f
        return o, price, float(data.volume[m]) * f
