"""Refresh scheduling: which tokens to poll next, so provider budgets go where pumps happen.

A provider budget (DexScreener: 300 pair requests a minute, 30 tokens each) is a design input,
not an error path (SPEC §2). The engine asks this module *which* mints to put in the next
request; the HTTP layer's :class:`~dexscan.budget.Budget` decides *when* it may be sent. Hot
tokens (a live trade being tracked, an ignited 4H candle, a forming candle close to the ignition
threshold) are due every ``hot_s``; the rest of the universe every ``cold_s``. Due tokens are served
hottest first, then most overdue first; a request that has room left is topped up with the tokens
that will be due soonest, because the extra freshness costs nothing.

When the universe is larger than the budget can cover at those intervals, cold tokens simply wait
longer (the achieved intervals are measured and reported), hot ones never starve.

Everything here is pure: time is passed in, nothing sleeps or does I/O.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum


class Heat(IntEnum):
    """Why a token is refreshed as often as it is; lower values are served first."""

    LIVE = 0  # a stored signal's ladder is being tracked
    IGNITED = 1  # the forming 4H candle ignited and may confirm
    NEAR = 2  # the forming 4H candle is within `near_threshold_pct` of the ignition rise
    COLD = 3
    STREAMED = 4  # its pool's trades arrive on chain: polled only for liquidity and stats

    @property
    def hot(self) -> bool:
        return self < Heat.COLD


def classify_heat(
    *, live: bool, ignited: bool, rise_pct: float | None, ignition_rise_pct: float, near_threshold_pct: float
) -> Heat:
    """The heat of a token from what the detector and the ladder trackers know about it.

    ``rise_pct`` is the forming 4H candle's rise over its open in percent (None while unknown).
    A token is *near* when it is at least ``ignition_rise_pct - near_threshold_pct`` up.
    """
    if live:
        return Heat.LIVE
    if ignited:
        return Heat.IGNITED
    if rise_pct is not None and rise_pct >= ignition_rise_pct - near_threshold_pct:
        return Heat.NEAR
    return Heat.COLD


@dataclass(slots=True)
class _Entry:
    mint: str
    heat: Heat
    added_at: float
    last_at: float | None = None
    in_flight: bool = False
    retry_at: float | None = None


@dataclass(frozen=True, slots=True)
class IntervalStats:
    """Achieved refresh intervals (seconds) over the most recent refreshes of one class."""

    samples: int
    mean: float | None
    p50: float | None
    p95: float | None
    max: float | None


@dataclass(frozen=True, slots=True)
class SchedulerStats:
    tokens: int
    hot: int
    cold: int
    in_flight: int
    overdue: int  # due for longer than one interval of its class
    hot_intervals: IntervalStats
    cold_intervals: IntervalStats
    planned_requests_per_min: float  # what the targets would cost at full batches


def _interval_stats(values: Iterable[float]) -> IntervalStats:
    xs = sorted(values)
    if not xs:
        return IntervalStats(0, None, None, None, None)

    def pct(q: float) -> float:
        return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]

    return IntervalStats(len(xs), sum(xs) / len(xs), pct(0.5), pct(0.95), xs[-1])


class RefreshScheduler:
    """Chooses the mints of each live-stats request.

    Protocol: :meth:`add`/:meth:`remove` follow universe membership; :meth:`set_heat` follows the
    detector and ladder; :meth:`next_batch` hands out a batch and marks it in flight;
    :meth:`complete` (or :meth:`failed`) returns it.
    """

    def __init__(
        self, hot_s: float, cold_s: float, batch_size: int = 30, retry_s: float = 5.0, window: int = 4096,
        streamed_s: float | None = None,
    ) -> None:
        if hot_s <= 0 or cold_s <= 0 or batch_size < 1 or (streamed_s is not None and streamed_s <= 0):
            raise ValueError("hot_s, cold_s and streamed_s must be > 0 and batch_size >= 1")
        self.hot_s = float(hot_s)
        self.cold_s = float(cold_s)
        self.streamed_s = float(streamed_s) if streamed_s is not None else self.cold_s
        self.batch_size = int(batch_size)
        self.retry_s = float(retry_s)
        self._entries: dict[str, _Entry] = {}
        self._hot_intervals: deque[float] = deque(maxlen=window)
        self._cold_intervals: deque[float] = deque(maxlen=window)

    # -- membership and heat -------------------------------------------------------------------

    def __contains__(self, mint: object) -> bool:
        return mint in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def mints(self) -> list[str]:
        return list(self._entries)

    def add(self, mint: str, now: float, heat: Heat = Heat.COLD) -> None:
        """Start refreshing ``mint``; a new token is due at once (it has no live data yet)."""
        if mint not in self._entries:
            self._entries[mint] = _Entry(mint, heat, now)
        else:
            self._entries[mint].heat = heat

    def remove(self, mint: str) -> None:
        self._entries.pop(mint, None)

    def set_heat(self, mint: str, heat: Heat) -> None:
        entry = self._entries.get(mint)
        if entry is not None:
            entry.heat = heat

    def heat(self, mint: str) -> Heat | None:
        entry = self._entries.get(mint)
        return None if entry is None else entry.heat

    def last_refreshed(self, mint: str) -> float | None:
        entry = self._entries.get(mint)
        return None if entry is None else entry.last_at

    # -- timing --------------------------------------------------------------------------------

    def interval(self, heat: Heat) -> float:
        if heat is Heat.STREAMED:
            return self.streamed_s
        return self.hot_s if heat.hot else self.cold_s

    def due_at(self, mint: str) -> float:
        return self._due(self._entries[mint])

    def _due(self, e: _Entry) -> float:
        base = e.added_at if e.last_at is None else e.last_at + self.interval(e.heat)
        return base if e.retry_at is None else max(base, e.retry_at)

    def next_due_at(self) -> float | None:
        """When the earliest token not in flight becomes due (None if there is none)."""
        dues = [self._due(e) for e in self._entries.values() if not e.in_flight]
        return min(dues) if dues else None

    # -- batches -------------------------------------------------------------------------------

    def next_batch(self, now: float, fill: bool = True) -> list[str]:
        """Up to ``batch_size`` mints to refresh now, hottest and most overdue first.

        Empty when nothing is due. With ``fill``, a batch that has room is topped up with the
        tokens due soonest. The returned mints are in flight until :meth:`complete`/:meth:`failed`.
        """
        idle = [e for e in self._entries.values() if not e.in_flight]
        due = [e for e in idle if self._due(e) <= now]
        if not due:
            return []
        chosen = heapq.nsmallest(self.batch_size, due, key=lambda e: (int(e.heat), self._due(e), e.mint))
        if fill and len(chosen) < self.batch_size:
            taken = {e.mint for e in chosen}
            rest = [e for e in idle if e.mint not in taken and not self._retrying(e, now)]
            chosen += heapq.nsmallest(self.batch_size - len(chosen), rest, key=lambda e: (self._due(e), e.mint))
        for e in chosen:
            e.in_flight = True
        return [e.mint for e in chosen]

    @staticmethod
    def _retrying(e: _Entry, now: float) -> bool:
        return e.retry_at is not None and e.retry_at > now

    def complete(self, mints: Iterable[str], now: float) -> None:
        """The batch was answered: record when each token was refreshed and the interval achieved."""
        for mint in mints:
            e = self._entries.get(mint)
            if e is None:
                continue
            if e.last_at is not None:
                (self._hot_intervals if e.heat.hot else self._cold_intervals).append(now - e.last_at)
            e.last_at = now
            e.in_flight = False
            e.retry_at = None

    def failed(self, mints: Iterable[str], now: float) -> None:
        """The request failed: the tokens become due again after ``retry_s``."""
        for mint in mints:
            e = self._entries.get(mint)
            if e is not None:
                e.in_flight = False
                e.retry_at = now + self.retry_s

    # -- reporting -----------------------------------------------------------------------------

    def planned_requests_per_min(self) -> float:
        """Requests a minute the target intervals cost with full batches (compare with the budget)."""
        hot = sum(1 for e in self._entries.values() if e.heat.hot)
        streamed = sum(1 for e in self._entries.values() if e.heat is Heat.STREAMED)
        cold = len(self._entries) - hot - streamed
        return 60.0 * (math.ceil(hot / self.batch_size) / self.hot_s + math.ceil(cold / self.batch_size) / self.cold_s
                       + math.ceil(streamed / self.batch_size) / self.streamed_s)

    def stats(self, now: float) -> SchedulerStats:
        hot = sum(1 for e in self._entries.values() if e.heat.hot)
        overdue = sum(
            1 for e in self._entries.values()
            if not e.in_flight and e.last_at is not None and now - self._due(e) > self.interval(e.heat)
        )
        return SchedulerStats(
            tokens=len(self._entries),
            hot=hot,
            cold=len(self._entries) - hot,
            in_flight=sum(1 for e in self._entries.values() if e.in_flight),
            overdue=overdue,
            hot_intervals=_interval_stats(self._hot_intervals),
            cold_intervals=_interval_stats(self._cold_intervals),
            planned_requests_per_min=self.planned_requests_per_min(),
        )


@dataclass(order=True, slots=True)
class _HistoryItem:
    rank: int
    seq: int
    mint: str = field(compare=False)


class HistoryQueue:
    """Tokens waiting for their OHLCV history (GeckoTerminal's small budget), hot tokens first.

    A token that enters the universe needs history before the detector can judge it (20 completed
    5m bars, 15 4H bars for the ATR). With ~25 requests a minute this queue is the bottleneck of a
    cold start, so a token that turns hot jumps ahead of the ones still waiting.
    """

    def __init__(self) -> None:
        self._heap: list[_HistoryItem] = []
        self._rank: dict[str, int] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._rank)

    def __contains__(self, mint: object) -> bool:
        return mint in self._rank

    def push(self, mint: str, heat: Heat = Heat.COLD) -> None:
        """Queue ``mint`` (or move it ahead if it is already queued with a colder heat)."""
        rank = int(heat)
        if self._rank.get(mint, 1 << 30) <= rank:
            return
        self._rank[mint] = rank
        self._seq += 1
        heapq.heappush(self._heap, _HistoryItem(rank, self._seq, mint))

    def discard(self, mint: str) -> None:
        self._rank.pop(mint, None)

    def pop(self) -> str | None:
        """The next token to fetch history for, or None when the queue is empty."""
        while self._heap:
            item = heapq.heappop(self._heap)
            if self._rank.get(item.mint) == item.rank:
                del self._rank[item.mint]
                return item.mint
        return None
