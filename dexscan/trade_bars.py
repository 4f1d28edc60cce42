"""A streamed token's trade-level books (:attr:`dexscan.market.TokenMarket.trades`): 1m bars, the
trade flow (count, buy/sell split, distinct signers) of each 1m and 5m bar, and the exact rolling
5-minute volume that ignition compares with its 5m SMA.

Pure, like :mod:`dexscan.market`: every trade carries its own timestamp (its block time).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from dexscan.market import M1, M5, BarBook, FormingBar

#: Seconds of the rolling on-chain volume ignition compares with its 5m SMA (the m5 of a poll).
ROLLING_S = 300


@dataclass(frozen=True, slots=True)
class FlowBar:
    """Trade-level facts of one completed 1m or 5m bar of a streamed pool (volumes in USD)."""

    ts: int
    tf: int
    trades: int
    buys: int
    sells: int
    buy_volume: float
    sell_volume: float
    signers: int  # distinct signers


class TradeFlow:
    """The running tally of one forming bar (mutable; :meth:`bar` freezes it)."""

    __slots__ = ("buy_volume", "buys", "sell_volume", "sells", "signers", "ts")

    def __init__(self, ts: int) -> None:
        self.ts = ts
        self.buys = 0
        self.sells = 0
        self.buy_volume = 0.0
        self.sell_volume = 0.0
        self.signers: set[str] = set()

    def add(self, side: str, volume: float, signer: str | None) -> None:
        if side == "buy":
            self.buys += 1
            self.buy_volume += volume
        else:
            self.sells += 1
            self.sell_volume += volume
        if signer:
            self.signers.add(signer)

    def bar(self, tf: int) -> FlowBar:
        return FlowBar(self.ts, tf, self.buys + self.sells, self.buys, self.sells, self.buy_volume,
                       self.sell_volume, len(self.signers))


class TradeBook:
    """A streamed token's trade-level books: 1m bars (a :class:`BarBook`: gaps become empty bars), the
    trade flow of the forming and completed 1m and 5m bars, and the exact rolling 5-minute volume.

    A trade older than the forming bar of a timeframe is not counted in that timeframe (it is
    late: that bar is complete); :attr:`late` counts those.
    """

    __slots__ = ("flow1", "flow5", "late", "m1", "minute", "minute_flow", "total", "window", "window5")

    def __init__(self, m1_capacity: int = 60, flow_capacity: int = 60) -> None:
        self.m1 = BarBook(M1, m1_capacity)
        self.minute: FormingBar | None = None
        self.minute_flow: TradeFlow | None = None
        self.window5: TradeFlow | None = None
        self.flow1: deque[FlowBar] = deque(maxlen=flow_capacity)
        self.flow5: deque[FlowBar] = deque(maxlen=flow_capacity)
        self.window: deque[list[float]] = deque()  # [second, USD volume] for the last ROLLING_S seconds
        self.total = 0.0
        self.late = 0

    def add(self, ts: int, price: float, volume: float, side: str, signer: str | None) -> None:
        self.close_until(ts)
        mts = ts - ts % M1
        f = self.minute
        if f is None:
            last = self.m1.last
            open_ = last.close if last is not None else price  # minutes between are flat at that close
            f = self.minute = FormingBar(mts, open_, max(open_, price), min(open_, price), price, 0.0, True)
            self.minute_flow = TradeFlow(mts)
        if f.ts == mts:
            if price > f.high:
                f.high = price
            if price < f.low:
                f.low = price
            f.close = price
            f.volume += volume
            assert self.minute_flow is not None
            self.minute_flow.add(side, volume, signer)
        else:
            self.late += 1
        bts = ts - ts % M5
        if self.window5 is None:
            self.window5 = TradeFlow(bts)
        if self.window5.ts == bts:
            self.window5.add(side, volume, signer)
        self._roll(ts, volume)

    def close_until(self, t: int) -> None:
        """Complete the 1m and 5m tallies whose bars ended by ``t``."""
        f = self.minute
        if f is not None and f.ts + M1 <= t:
            self.m1.push(f.to_candle())
            assert self.minute_flow is not None
            self.flow1.append(self.minute_flow.bar(M1))
            self.minute = self.minute_flow = None
        w = self.window5
        if w is not None and w.ts + M5 <= t:
            self.flow5.append(w.bar(M5))
            self.window5 = None

    def _roll(self, ts: int, volume: float) -> None:
        window = self.window
        if not window or window[-1][0] < ts:
            window.append([ts, volume])
        else:  # out of order by a few seconds (another slot's trade): its own second's cell
            i = len(window) - 1
            while i >= 0 and window[i][0] > ts:
                i -= 1
            if i >= 0 and window[i][0] == ts:
                window[i][1] += volume
            elif ts > window[-1][0] - ROLLING_S:
                window.insert(i + 1, [ts, volume])
            else:
                return
        self.total += volume
        horizon = window[-1][0] - ROLLING_S
        if window[0][0] <= horizon:
            while window[0][0] <= horizon:
                window.popleft()
            self.total = sum(cell[1] for cell in window)  # re-summed: no drift from subtractions

    def rolling_volume(self) -> float:
        """USD volume of the trades of the last ``ROLLING_S`` seconds up to the newest trade."""
        return self.total
