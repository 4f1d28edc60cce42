"""The history bootstrap of a cold start: each token entering the scan gets its detector warmed up
from stored and fetched 5m bars before its live snapshots are judged.

History (GeckoTerminal's ~25 requests a minute) is the scarce resource of a cold start: one request
per token (1,000 5m bars ≈ 3.5 days, enough for the 20-bar warm-up and 15+ 4H bars for the ATR),
hot tokens first (:class:`~dexscan.scheduler.HistoryQueue`), and bars already in the store are not
fetched again. With the on-chain stream's trade tape kept, the 5m bar forming when a previous run
stopped is rebuilt from the trades it had judged (:mod:`dexscan.tape`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from dexscan.clock import sleep_or_wake
from dexscan.domain import Timeframe
from dexscan.errors import SourceError
from dexscan.scheduler import Heat, HistoryQueue
from dexscan.signal_ledger import Found

if TYPE_CHECKING:
    from dexscan.clock import Clock
    from dexscan.config import Settings
    from dexscan.engine_ports import CandleStore, MarketClients, SignalDetector, SignalStore, TrackedToken, TradeFeed
    from dexscan.pipeline_writer import PipelineWriter

log = logging.getLogger(__name__)

M5 = int(Timeframe.M5)
#: 5m bars fetched when a token enters the universe: one GeckoTerminal page, ~3.5 days.
HISTORY_BARS = 1000


class HistoryCounters(Protocol):
    """The counters the bootstrap keeps (the engine's :class:`~dexscan.engine.EngineCounters`)."""

    history_fetches: int
    history_errors: int


class HistoryBootstrap:
    """Warms up the detector of each queued token (:meth:`push`), one token per :meth:`step`.

    ``tokens`` is the engine's view of the tokens it tracks (a token untracked or moved to another
    pool meanwhile is skipped); ``reheat(mint)`` tells the engine a token's books are ready.
    """

    def __init__(self, settings: Settings, store: SignalStore, history_store: CandleStore, clients: MarketClients,
                 detector: SignalDetector, feed: TradeFeed | None, clock: Clock, tokens: Mapping[str, TrackedToken],
                 counters: HistoryCounters, writer: PipelineWriter, reheat: Callable[[str], None]) -> None:
        self.settings = settings
        self.store = store
        self.history_store = history_store
        self.clients = clients
        self.detector = detector
        self.feed = feed
        self.clock = clock
        self.tokens = tokens
        self.counters = counters
        self.writer = writer
        self._reheat = reheat
        self.queue = HistoryQueue()
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self.queue)

    def push(self, mint: str, heat: Heat) -> None:
        """Queue ``mint``'s bootstrap (hotter tokens first) and wake the loop."""
        self.queue.push(mint, heat)
        self._wake.set()

    def discard(self, mint: str) -> None:
        self.queue.discard(mint)

    async def loop(self) -> None:
        while True:
            if not await self.step():
                await sleep_or_wake(self.clock, self.settings.scan.hot_refresh_s, self._wake)

    def _now(self) -> int:
        return int(self.clock.now())

    async def step(self) -> bool:
        """Bootstrap one token's detector from stored and fetched 5m bars; False when none waits."""
        mint = self.queue.pop()
        if mint is None:
            return False
        view = self.tokens.get(mint)
        if view is None or view.pool is None or view.history_done:
            return True
        pool = view.pool
        now = self._now()
        end = now - now % M5
        start = end - HISTORY_BARS * M5
        bars = await self.history_store.candles(pool, Timeframe.M5, start, end)
        fetch_from = bars[-1].ts + M5 if bars else start
        if fetch_from < end:
            self.counters.history_fetches += 1
            try:
                fresh = await self.clients.geckoterminal.ohlcv_range(pool, Timeframe.M5, fetch_from, end, token=mint)
            except SourceError as exc:
                self.counters.history_errors += 1
                log.warning("history for %s (%s) unavailable, warming up from live data instead: %s",
                            view.symbol or mint, pool, exc)
                fresh = []
            if fresh:
                await self.history_store.upsert_candles(pool, Timeframe.M5, fresh)
                last = bars[-1].ts if bars else None
                bars += [c for c in fresh if last is None or c.ts > last]
        if view.pool != pool or self.tokens.get(mint) is not view:
            return True
        self.detector.register(mint, view.symbol, pool)
        found: list[Found] = []
        if self.feed is not None and self.settings.stream.tape_retention_s:
            # the stored bars, then the tape's trades after them: the 5m bar forming when a previous
            # run stopped (or died) is rebuilt from the trades it had judged (dexscan.tape)
            from dexscan.tape import resume

            async with self.writer.lock:
                signals, resumed = await resume(self.store, self.detector, mint, pool, bars, start, end, self._now(),
                                                 view.symbol)
            self.feed.remember(t.key for t in resumed)  # the stream sending one again is a duplicate
            if signals:  # what the run that judged these trades first stored stays as it is
                since = min(s.candle_ts for s in signals)
                stored = {s.key for _, s, _ in await self.store.signals(since=since, mint=mint)}
                found = [Found(s, float(s.ts)) for s in signals if s.key not in stored]
        else:
            self.detector.bootstrap(mint, Timeframe.M5, bars, symbol=view.symbol, pool=pool, as_of=self._now())
        view.history_done = True
        if bars:
            view.last_bar_stored = max(view.last_bar_stored, bars[-1].ts)
        new = self.writer.new_bars(view)
        await self.writer.persist(found, [(pool, new)] if new else [], [])
        async with self.writer.lock:
            await self.writer.ledger.feed_history(mint, [*bars, *new])
        self._reheat(mint)
        return True
