"""Per-token candle books: UTC-aligned 5m, 1h and 4H bars, kept current from bars or live ticks.

Pure: no I/O, no clock. Every input carries its own timestamp, so the same sequence of inputs
always builds the same books, whether it comes from a live poller, the demo or a history replay.

**Inputs.** Two kinds of events reach a :class:`TokenMarket` (through :class:`dexscan.detector.Detector`):

* a *completed bar* (history bootstrap and replay), and
* a live :class:`Tick` ``(ts, price, volume_m5, buys/sells m5 & h1, liquidity)`` from a snapshot.

**The 5m book is the base.** 5m bars arrive completed (replay) or are built from ticks (live). Each
completed 5m bar is folded into the *forming* 1h and 4H windows; a window closes when the 5m stream
(or time, see :meth:`TokenMarket.advance_to`) reaches its end. Completed 1h/4H bars from a provider
("official" bars) are accepted too: they win over an aggregate of the same window, and they are the
only source when no 5m stream exists.

**Bars from ticks.** The price path comes from each poll: the first tick of a 5m bar opens it at the
previous bar's close (the providers' convention: a bar opens where the last one closed; 99.9% of
GeckoTerminal 5m bars do) or at the tick price when there is no previous bar; every tick moves
high/low/close. The bar's **volume** is DexScreener's rolling ``m5`` volume read *at the boundary*:
of the last reading inside the bar and the first reading after it, the one nearer to the bar's end
(its 5-minute window overlaps the bar by ``300 - |t - end|`` seconds, so nearer = more overlap);
a tie goes to the reading inside the bar. A bar in which no tick was seen is an empty bar.

**Gaps are real.** An interval without a bar is an empty bar: volume 0, O=H=L=C=previous close. A
gap longer than a book's capacity only materialises the bars the book can hold (the older ones
would fall out anyway; the 1h/4H aggregates fill their own flat windows).

**Unobserved is not empty.** Live, every universe token is polled several times per 5m bar, so a
run of ``UNOBSERVED_RUN`` (6, half an hour) or more bars without a single tick is an outage on our
side (source down, laptop asleep), not a market without trades. Those bars still hold the price flat, but they are no
evidence of zero volume: counting them would sink the 20-bar baselines and make ordinary volume look
like a surge once data is back. The token warms up again instead (visible as "warming up") and is
judged only once its windows hold observed bars. History (bootstrap, replay) keeps gaps as real.

**Bounded memory.** Each book is a ring (``deque(maxlen=...)``) sized by the detector to what the
strategies, ATR and features need; per-token state is a few hundred candles at most.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import mul, sub
from typing import TYPE_CHECKING, Any

from dexscan.domain import Candle, PairSnapshot, Timeframe

if TYPE_CHECKING:
    from dexscan.trade_bars import TradeBook

M1 = int(Timeframe.M1)
M5 = int(Timeframe.M5)
H1 = int(Timeframe.H1)
H4 = int(Timeframe.H4)
#: Consecutive live 5m bars without any tick that count as an outage rather than a quiet market
#: (30 minutes). Shorter runs stay zero-volume bars: up to 5 zeros in a 20-bar window inflate a
#: volume ratio by at most 20/15 = 1.33x, while a long outage would fake any surge.
UNOBSERVED_RUN = 6
#: Larger bar volumes (USD) are treated as corrupt input.
MAX_VOLUME = 1e15
#: Longest volume window :meth:`RollingVolume.std_floor` gives a bound for (see there).
STD_FLOOR_MAX_BARS = 32


@dataclass(frozen=True, slots=True)
class Tick:
    """One live observation of a token's main pool (a DexScreener snapshot, typically).

    ``volume_m5`` is the provider's *rolling* 5-minute USD volume at ``ts``; None when not reported
    (the tick then still moves the price, but cannot fire a volume condition).
    """

    ts: int
    price: float
    volume_m5: float | None = None
    buys_m5: int | None = None
    sells_m5: int | None = None
    buys_h1: int | None = None
    sells_h1: int | None = None
    liquidity_usd: float | None = None
    pair_created_at: int | None = None

    @classmethod
    def from_pair(cls, pair: PairSnapshot) -> Tick | None:
        """The tick a pair snapshot stands for; None when the snapshot has no USD price."""
        if pair.price_usd is None or not pair.price_usd > 0:
            return None
        return cls(
            ts=pair.observed_at,
            price=pair.price_usd,
            volume_m5=pair.volume.m5,
            buys_m5=pair.txns_m5.buys,
            sells_m5=pair.txns_m5.sells,
            buys_h1=pair.txns_h1.buys,
            sells_h1=pair.txns_h1.sells,
            liquidity_usd=pair.liquidity_usd,
            pair_created_at=pair.pair_created_at,
        )


@dataclass(frozen=True, slots=True)
class Closed:
    """A 1h/4H window that just closed: its bar, when it ended, and whether real data formed it."""

    tf: int
    candle: Candle
    end: int
    real: bool  # False for a window made only of empty (gap) bars


class OpenBar:
    """The price path of a bar still in progress (mutable, unlike :class:`Candle`): its start and OHLC."""

    __slots__ = ("close", "high", "low", "open", "ts")

    def __init__(self, ts: int, open_: float, high: float, low: float, close: float) -> None:
        self.ts = ts
        self.open = open_
        self.high = high
        self.low = low
        self.close = close


class FormingBar(OpenBar):
    """A window being aggregated from completed 5m bars.

    ``track`` and ``reached`` belong to the detector: its candle state for this window and whether
    the state's price target was reached (kept here, on an object every bar touches anyway, so the
    per-bar check reads nothing else).
    """

    __slots__ = ("reached", "real", "track", "volume")

    def __init__(self, ts: int, open_: float, high: float, low: float, close: float, volume: float,
                 real: bool) -> None:
        super().__init__(ts, open_, high, low, close)
        self.volume = volume
        self.real = real
        self.track: Any = None
        self.reached = False

    def to_candle(self) -> Candle:
        return Candle(self.ts, self.open, self.high, self.low, self.close, self.volume)


class LiveBar(OpenBar):
    """The 5m bar being built from ticks (with the last ``m5`` reading seen inside it) or from
    on-chain trades (with their exact volume)."""

    __slots__ = ("last_m5", "last_trade_ts", "last_ts", "traded", "trades")

    def __init__(self, ts: int, open_: float) -> None:
        super().__init__(ts, open_, open_, open_, open_)
        self.last_ts = ts
        self.last_m5: float | None = None
        self.traded = 0.0  # exact USD volume of the trades seen in the bar
        self.trades = 0
        self.last_trade_ts = ts

    def add_trade(self, ts: int, price: float, volume: float) -> None:
        """One on-chain trade: high/low always, the close only when it is not older than the last."""
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        if ts >= self.last_trade_ts:
            self.close = price
            self.last_trade_ts = ts
        self.traded += volume
        self.trades += 1

    def update(self, ts: int, price: float, volume_m5: float | None) -> None:
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        self.close = price
        if volume_m5 is not None:
            self.last_ts = ts
            self.last_m5 = volume_m5

    def finish(self, next_ts: int | None = None, next_m5: float | None = None) -> Candle:
        """The completed bar. ``next_*`` is the first reading after the bar's end, if there is one."""
        end = self.ts + M5
        volume = self.last_m5
        if (next_m5 is not None and next_ts is not None and next_ts - end < M5
                and (volume is None or next_ts - end < end - self.last_ts)):
            volume = next_m5
        if self.trades:  # exact; a bar half streamed, half polled (the stream fell over) keeps the larger
            volume = self.traded if volume is None else max(volume, self.traded)
        return Candle(self.ts, self.open, self.high, self.low, self.close, volume or 0.0)


class RollingVolume:
    """The volumes of the last ``n`` completed 5m bars and their running sum.

    The sum is updated in O(1) per bar (add the new bar, subtract the one leaving; no window is
    re-read in the hot path), and kept honest: it is recomputed from the window whenever the bar
    leaving holds more than half of it (the subtraction would cancel digits) and every ``n`` pushes
    (so rounding never accumulates). Its relative error therefore stays below ~1e-14, five orders
    of magnitude inside the 1e-9 tolerance every threshold is compared with
    (:func:`dexscan.strategies.base.meets`): runs whose windows hold the same bars decide the same,
    whatever history came before. :meth:`pstdev` is a two-pass computation over the window (a pure
    function of it), used only by the rare bars that pass the cheap checks first.

    The window is a ring of raw doubles (``array('d')``), not a deque of float objects: with
    thousands of tokens polled in turn, each token's window is cold in the CPU cache when its next
    bar arrives, and 20 contiguous doubles are three cache lines where 20 separate float objects
    are twenty. Sums always run oldest to newest, as over the deque this replaced, so every figure
    is bit-for-bit what it was.
    """

    __slots__ = ("count", "head", "n", "ring", "since_resum", "sq", "total")

    def __init__(self, n: int) -> None:
        self.n = n
        self.ring = array("d", bytes(8 * n))
        self.head = 0  # where the oldest value sits once the window is full
        self.count = 0
        self.total = 0.0
        self.sq = 0.0  # running sum of squares, for std_floor only
        self.since_resum = 0

    @property
    def values(self) -> list[float]:
        """The window, oldest first."""
        ring = self.ring
        if self.count < self.n:
            return ring[:self.count].tolist()
        h = self.head
        return (ring[h:] + ring[:h]).tolist()

    def push(self, volume: float) -> None:
        ring = self.ring
        k = self.count
        if k < self.n:
            ring[k] = volume
            self.count = k + 1
            window = ring[:k + 1]
            self.total = sum(window)
            self.sq = sum(map(mul, window, window))
            return
        h = self.head
        old = ring[h]
        ring[h] = volume
        h += 1
        self.head = 0 if h == k else h
        self.since_resum += 1
        old_sq = old * old
        if old > 0.5 * self.total or self.since_resum >= k:
            window = ring[h:] + ring[:h] if h < k else ring
            self.total = sum(window)
            self.sq = sum(map(mul, window, window))
            self.since_resum = 0
        else:
            self.total += volume - old
            if old_sq > 0.5 * self.sq:
                self.sq = sum(map(mul, ring, ring))
            else:
                self.sq += volume * volume - old_sq

    def std_floor(self) -> float:
        """A lower bound of :meth:`pstdev` from the running sums, without a pass over the window.

        ``sum(v²)/n - mean²`` suffers cancellation, so it only serves as a bound, with a margin of
        1e-3 x ``sum(v²)/n``: the running sums' relative error is below 1e-5 however the volumes
        move (each step loses at most half of a sum, or the sum is recomputed; at most ``n`` steps
        between recomputations; hence the bound is only given for windows of at most
        ``STD_FLOOR_MAX_BARS`` bars), and ``mean² <= sum(v²)/n``, so the margin covers every rounding
        by two orders of magnitude. 0.0 (no information) while the window is not full.
        """
        n = self.n
        if self.count < n or n > STD_FLOOR_MAX_BARS:
            return 0.0
        mean = self.total / n
        q = self.sq / n
        var = q - mean * mean - 1e-3 * q
        return math.sqrt(var) * (1.0 - 1e-9) if var > 0.0 else 0.0

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def pstdev(self) -> float:
        """Population standard deviation of the window (two-pass, so no cancellation)."""
        k = self.count
        if k == 0:
            return 0.0
        ring = self.ring
        if k < self.n:
            values = ring[:k]
        else:
            h = self.head
            values = ring[h:] + ring[:h] if h else ring
        mean = sum(values) / k
        deviations = list(map(sub, values, repeat(mean, k)))
        return math.sqrt(sum(map(mul, deviations, deviations)) / k)


class BarBook:
    """Completed bars of one timeframe (a ring), plus the window being aggregated from 5m bars.

    ``done_ts`` is the start of the latest window known to be complete (closed aggregate or
    official bar); a window at or before it never forms again. ``version`` changes whenever the
    completed bars change, so values derived from them (the ATR) can be cached. ``atr`` (set by the
    detector: a :class:`dexscan.ladder.WilderAtr`, or None) is fed every bar the book stores, gap
    bars included, so the ATR covers the whole history, not just the ring.
    """

    __slots__ = ("atr", "bars", "done_ts", "forming", "tf", "version")

    def __init__(self, tf: int, capacity: int) -> None:
        self.tf = tf
        self.bars: deque[Candle] = deque(maxlen=capacity)
        self.forming: FormingBar | None = None
        self.done_ts = -1
        self.version = 0
        self.atr: Any = None

    @property
    def last(self) -> Candle | None:
        return self.bars[-1] if self.bars else None

    def push(self, candle: Candle) -> None:
        """Append a completed bar after the last one, filling the gap between with empty bars.

        A bar at the last bar's time replaces it (an official bar wins over an aggregate); an
        older bar is ignored.
        """
        bars = self.bars
        self.version += 1
        if bars:
            last = bars[-1]
            if candle.ts <= last.ts:
                if candle.ts == last.ts:
                    bars[-1] = candle
                    if self.atr is not None:
                        self.atr.replace_last(candle)
                return
            tf = self.tf
            start = last.ts + tf
            if start < candle.ts:
                if self.atr is not None:
                    self.atr.flat((candle.ts - start) // tf)
                start = max(start, candle.ts - tf * (bars.maxlen or 1))
                p = last.close
                for ts in range(start, candle.ts, tf):
                    bars.append(Candle(ts, p, p, p, p, 0.0))
        bars.append(candle)
        if self.atr is not None:
            self.atr.push(candle)

    def absorb(self, bar: Candle, real: bool, closed: list[Closed]) -> None:
        """Fold a completed 5m bar into the forming window, closing the previous window first."""
        tf = self.tf
        w = bar.ts - bar.ts % tf
        f = self.forming
        if f is not None:
            if w == f.ts:
                if bar.high > f.high:
                    f.high = bar.high
                if bar.low < f.low:
                    f.low = bar.low
                f.close = bar.close
                f.volume += bar.volume
                if real:
                    f.real = True
                return
            if w < f.ts:
                return
            self.forming = None
            self.done_ts = f.ts
            closed.append(Closed(tf, f.to_candle(), f.ts + tf, f.real))
        if w <= self.done_ts:
            return
        self.forming = FormingBar(w, bar.open, bar.high, bar.low, bar.close, bar.volume, real)

    def open_window(self, ts: int, price: float) -> None:
        """Make sure a window containing ``ts`` is forming (a live bar just started in it)."""
        w = ts - ts % self.tf
        if self.forming is None and w > self.done_ts:
            self.forming = FormingBar(w, price, price, price, price, 0.0, False)

    def close_until(self, t: int, closed: list[Closed]) -> None:
        f = self.forming
        if f is not None and f.ts + self.tf <= t:
            self.forming = None
            self.done_ts = f.ts
            closed.append(Closed(self.tf, f.to_candle(), f.ts + self.tf, f.real))

    def official(self, candle: Candle, closed: list[Closed]) -> None:
        """A completed bar from a provider. It closes its window (or replaces the stored bar)."""
        tf = self.tf
        f = self.forming
        if f is not None and f.ts < candle.ts:
            self.close_until(candle.ts, closed)
            f = None
        if candle.ts > self.done_ts:
            if f is not None and f.ts == candle.ts:
                self.forming = None
            self.done_ts = candle.ts
            closed.append(Closed(tf, candle, candle.ts + tf, True))
            return
        for i in range(len(self.bars) - 1, -1, -1):
            old = self.bars[i]
            if old.ts == candle.ts:
                self.bars[i] = candle
                self.version += 1
                if self.atr is not None and i == len(self.bars) - 1:
                    self.atr.replace_last(candle)
                return
            if old.ts < candle.ts:
                return

    def merge_history(self, candles: Iterable[Candle]) -> None:
        """Merge provider history into the book (official bars win on the same window)."""
        by_ts = {b.ts: b for b in self.bars}
        for c in candles:
            by_ts[c.ts] = c
        self.bars.clear()
        self.version += 1
        if self.atr is not None:
            self.atr.reset()
        for ts in sorted(by_ts):
            self.push(by_ts[ts])
        if self.bars:
            last_ts = self.bars[-1].ts
            self.done_ts = max(self.done_ts, last_ts)
            if self.forming is not None and self.forming.ts <= last_ts:
                self.forming = None


class TokenMarket:
    """All candle books of one token. Driven by :class:`dexscan.detector.Detector`.

    The detector runs these steps, in this order, for every completed 5m bar ``c`` (history and
    live alike): :meth:`open_bar` (:meth:`advance_to` ``(c.ts)``: empty bars for a gap, windows that
    ended before ``c``; :meth:`absorb` ``(c)``), strategies (which see the 5m book *without* ``c``:
    "the previous N bars" is the book's last N), then :meth:`close_bar` (:meth:`commit` ``(c)``,
    windows that end at ``c.ts + 300``).
    Windows returned as :class:`Closed` are judged by strategies first and stored after with
    :meth:`settle`, so 1h/4H strategies likewise see their book without the bar they judge.
    """

    __slots__ = ("atr_cache", "count5", "h1", "h4", "last_tick", "live", "m5", "mint", "pool", "symbol", "track",
                 "trades", "volumes", "windows")

    def __init__(self, mint: str, *, m5_capacity: int, h1_capacity: int, h4_capacity: int,
                 volume_windows: Sequence[int]) -> None:
        self.mint = mint
        self.m5: deque[Candle] = deque(maxlen=m5_capacity)
        self.count5 = 0  # completed 5m bars ever held (real and empty), for the warm-up count
        self.volumes = {n: RollingVolume(n) for n in sorted(set(volume_windows))}
        self.windows = tuple(self.volumes.values())  # the same windows, by increasing length
        self.h1 = BarBook(H1, h1_capacity)
        self.h4 = BarBook(H4, h4_capacity)
        self.live: LiveBar | None = None
        self.last_tick: Tick | None = None
        self.symbol = ""
        self.pool: str | None = None
        self.track: Any = None  # the detector's candle state for the forming 4H window
        self.atr_cache: Any = None  # the detector's ATR reading, keyed by the 1h/4H book versions
        self.trades: TradeBook | None = None  # on-chain trade books, once the token's pool streams

    # -- reading -----------------------------------------------------------------------------

    @property
    def last5(self) -> Candle | None:
        return self.m5[-1] if self.m5 else None

    def book(self, tf: int) -> BarBook:
        return self.h4 if tf == H4 else self.h1

    def volume_window(self, n: int) -> RollingVolume:
        return self.volumes[n]

    def warming_up(self, needed: int) -> int:
        """Completed 5m bars still missing before a rule needing ``needed`` of them can be judged."""
        return needed - self.count5 if self.count5 < needed else 0

    def recent5(self, n: int) -> list[Candle]:
        """The last ``n`` completed 5m bars, oldest first (fewer if the book holds fewer)."""
        m5 = self.m5
        if n >= len(m5):
            return list(m5)
        return [m5[i] for i in range(len(m5) - n, len(m5))]

    def last5_by(self, edge: int) -> Candle | LiveBar | None:
        """The last 5m bar that ended by ``edge`` as market breadth reads it: the bar still being
        built once its 5 minutes are over (the next trade or tick completes it), else the last
        completed one."""
        live = self.live
        if live is not None and live.ts + M5 <= edge:
            return live
        return self.last5

    def forming4h(self) -> FormingBar | None:
        """The 4H window being formed (its ``open`` is what ignition's rise is measured from)."""
        return self.h4.forming

    # -- the steps of one completed 5m bar ----------------------------------------------------

    def advance_to(self, t: int, closed: list[Closed], live: bool = False) -> None:
        """Time reached ``t``: empty 5m bars for intervals that ended by then, windows closed.

        Only intervals after the last completed 5m bar are filled, and only when there is one
        (before a token's first bar nothing is known, so nothing is invented). ``live``: the gap is
        time the live feed should have covered (a tick or the live clock found it), so a long one
        is an outage even before the token's first tick (history loaded, then the source went down).
        """
        m5 = self.m5
        if m5:
            last = m5[-1]
            start = last.ts + M5
            stop = t - t % M5
            if start < stop:
                n = (stop - start) // M5
                cap = m5.maxlen or n
                if n > cap:
                    start = stop - cap * M5
                p = last.close
                for ts in range(start, stop, M5):
                    self.commit(Candle(ts, p, p, p, p, 0.0), closed, real=False)
                self.count5 += n - (stop - start) // M5
                if (live or self.last_tick is not None) and n >= UNOBSERVED_RUN:
                    self.count5 = 0  # an outage, not a quiet market: judge again only on observed bars
        self.h1.close_until(t, closed)
        self.h4.close_until(t, closed)

    def absorb(self, bar: Candle, closed: list[Closed], real: bool = True) -> None:
        self.h1.absorb(bar, real, closed)
        self.h4.absorb(bar, real, closed)

    def open_bar(self, bar: Candle, closed: list[Closed]) -> None:
        """A completed 5m bar's first steps: :meth:`advance_to` its start when there is a gap before it
        (without one, the windows that ended there closed with the previous bar, and before a token's
        first bar :meth:`absorb` closes them), then :meth:`absorb`."""
        m5 = self.m5
        if m5 and m5[-1].ts + M5 < bar.ts:
            self.advance_to(bar.ts, closed)
        self.absorb(bar, closed)

    def close_bar(self, bar: Candle, closed: list[Closed]) -> None:
        """A completed 5m bar's last steps, after the strategies: :meth:`commit`, then the 1h/4H
        windows that end with it closed (:meth:`advance_to` its end, which has no gap to fill)."""
        self.commit(bar)
        end = bar.ts + M5
        self.h1.close_until(end, closed)
        self.h4.close_until(end, closed)

    def commit(self, bar: Candle, closed: list[Closed] | None = None, real: bool = True) -> None:
        """Store a completed 5m bar (``closed`` given: also fold it into the 1h/4H windows)."""
        if closed is not None:
            self.absorb(bar, closed, real)
        self.m5.append(bar)
        self.count5 += 1
        v = bar.volume
        for w in self.windows:
            w.push(v)

    def settle(self, closed: Sequence[Closed]) -> None:
        """Store closed windows in their books, in order (after strategies have judged them)."""
        for c in closed:
            (self.h4 if c.tf == H4 else self.h1).push(c.candle)

    # -- live ---------------------------------------------------------------------------------

    def begin_live(self, ts: int, price: float) -> LiveBar:
        """Start the 5m bar containing ``ts`` from a tick; open at the previous close if known."""
        start = ts - ts % M5
        last = self.m5[-1] if self.m5 else None
        open_ = last.close if last is not None and last.ts + M5 == start else price
        live = LiveBar(start, open_)
        self.live = live
        self.h1.open_window(start, open_)
        self.h4.open_window(start, open_)
        return live

    # -- history -------------------------------------------------------------------------------

    def merge_history(self, tf: int, candles: Sequence[Candle]) -> None:
        self.book(tf).merge_history(candles)


def time_ordered(streams: Mapping[Timeframe, Sequence[Candle]]) -> list[tuple[Timeframe, Candle]]:
    """Merge per-timeframe bar streams into the order a replay must feed them.

    A bar becomes visible when it closes, so the key is its end time; at the same end time the
    shorter timeframe goes first (the 5m bar that ends at 04:00 closes the aggregate 4H window
    before the provider's 4H bar for it arrives and merely replaces the stored bar).
    """
    events = [(tf, c) for tf, bars in streams.items() for c in bars]
    events.sort(key=lambda e: (e[1].ts + int(e[0]), int(e[0])))
    return events
