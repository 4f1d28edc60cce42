"""The engine's store-before-show step: new 5m bars, pool rows, candle states, then the signals and
outcomes through the :class:`~dexscan.signal_ledger.SignalLedger`, all under one write lock.

The engine's tasks share one database connection, so their transactions must not interleave:
every write of the pipeline (the refresh, the history bootstrap, the trade stream, housekeeping)
goes through :attr:`PipelineWriter.lock`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from dexscan.domain import Candle, PairSnapshot, Timeframe

if TYPE_CHECKING:
    from dexscan.clock import Clock
    from dexscan.engine_ports import SignalDetector, SignalStore, TrackedToken
    from dexscan.signal_ledger import Found, LiveTrade, SignalLedger


class WriterCounters(Protocol):
    """The counter the writer keeps (the engine's :class:`~dexscan.engine.EngineCounters`)."""

    bars_stored: int


class PipelineWriter:
    """Persists what one step of the pipeline produced, in order: pool rows, bars, candle states,
    then signals and outcomes (which the ledger then publishes)."""

    def __init__(self, store: SignalStore, clock: Clock, detector: SignalDetector, ledger: SignalLedger,
                 counters: WriterCounters) -> None:
        self.store = store
        self.clock = clock
        self.detector = detector
        self.ledger = ledger
        self.counters = counters
        self.lock = asyncio.Lock()  # one connection: transactions of different tasks must not interleave
        self._pools_recorded: set[str] = set()  # main pools whose row (mint, pair age) is in the store
        self._pools_to_record: dict[str, PairSnapshot] = {}

    def record_pool(self, pair: PairSnapshot) -> None:
        """Store ``pair``'s row (its mint and creation time) with the next write, once per run."""
        if pair.pair_address not in self._pools_recorded:
            self._pools_to_record[pair.pair_address] = pair

    def new_bars(self, view: TrackedToken) -> list[Candle]:
        """The token's completed 5m bars not stored yet (and marks them stored)."""
        market = self.detector.market(view.mint)
        if market is None:
            return []
        new = [c for c in market.recent5(8) if c.ts > view.last_bar_stored]
        if new:
            view.last_bar_stored = new[-1].ts
        return new

    async def persist(self, found: Sequence[Found], bars: Sequence[tuple[str, list[Candle]]],
                      trades: Sequence[LiveTrade]) -> None:
        async with self.lock:
            await self._persist_locked(found, bars, trades)

    async def _persist_locked(self, found: Sequence[Found], bars: Sequence[tuple[str, list[Candle]]],
                              trades: Sequence[LiveTrade]) -> None:
        now = int(self.clock.now())
        for address, pair in list(self._pools_to_record.items()):
            # the pool's row (its mint and creation time) beside its bars, so that `evaluate` on this
            # database replays the same token with the same pair age the live scanner scored
            await self.store.upsert_pool(address, pair.base_mint, now, dex_id=pair.dex_id,
                                         quote_mint=pair.quote_mint, quote_symbol=pair.quote_symbol,
                                         liquidity_usd=pair.liquidity_usd, volume_h24_usd=pair.volume.h24,
                                         pair_created_at=pair.pair_created_at)
            self._pools_recorded.add(address)
            del self._pools_to_record[address]
        for pool, candles in bars:
            self.counters.bars_stored += await self.store.upsert_candles(pool, Timeframe.M5, candles)
        for st in self.detector.drain_state_changes():
            await self.store.save_candle_state(st.mint, st.candle_ts, st.state, st.ignited_at, st.confirmed_at)
        await self.ledger.record(found, trades)
