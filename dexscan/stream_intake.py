"""The engine's side of the on-chain trade stream (:class:`~dexscan.chain.feed.ChainFeed`): each
batch of decoded events becomes discoveries (gated at once) and trades (judged by the detector,
followed by the live ladders, kept on the trade tape), and the stream's health is followed.

A streamed token is priced by its trades; DexScreener still polls it for liquidity and stats
(:attr:`~dexscan.scheduler.Heat.STREAMED`). When the stream goes down or comes back, every token's
heat (hence its polling cadence) changes with it; after a reconnect the gap it left is filled from
the RPC (:meth:`~dexscan.chain.feed.ChainFeed.fill_gaps`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from dexscan.clock import sleep_or_wake
from dexscan.domain import Candle
from dexscan.signal_ledger import Found, LiveTrade

if TYPE_CHECKING:
    from dexscan.chain.trades import Trade
    from dexscan.clock import Clock
    from dexscan.config import Settings
    from dexscan.domain import DiscoveredToken
    from dexscan.engine_ports import MarketClients, RpcEndpoints, SignalDetector, SignalStore, TrackedToken, TradeFeed
    from dexscan.pipeline_writer import PipelineWriter


class StreamCounters(Protocol):
    """The counters the intake keeps (the engine's :class:`~dexscan.engine.EngineCounters`)."""

    trades: int  # on-chain trades judged
    tape_rows: int  # of them, added to the trade tape


class StreamIntake:
    """Runs the stream's loops for the engine (:meth:`loops`) and judges its trades (:meth:`apply_trades`).

    ``tokens`` is the engine's view of the tracked tokens (a trade counts only for a token's main
    pool, once its history is bootstrapped); ``request_discovered(token)`` asks for an on-demand
    gating round; ``on_health_change()`` is called when the stream goes up or down.
    """

    def __init__(self, settings: Settings, store: SignalStore, detector: SignalDetector, feed: TradeFeed,
                 rpc: RpcEndpoints | None, clock: Clock, tokens: Mapping[str, TrackedToken], counters: StreamCounters,
                 writer: PipelineWriter, *, request_discovered: Callable[[DiscoveredToken], None],
                 on_health_change: Callable[[], None]) -> None:
        self.settings = settings
        self.store = store
        self.detector = detector
        self.feed = feed
        self.rpc = rpc
        self.clock = clock
        self.tokens = tokens
        self.counters = counters
        self.writer = writer
        self._request_discovered = request_discovered
        self._on_health_change = on_health_change

    def loops(self, clients: MarketClients) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """The stream's tasks, by name: the subscription, the trades, its health, SOL/USD, and the
        Meteora DLMM swap fetches (one getTransaction each) when an RPC pool is configured."""
        feed = self.feed
        loops: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("stream", feed.run), ("trades", self.trades_loop), ("stream-health", self.health_loop),
            ("sol-usd", lambda: feed.sol_usd_loop(clients.jupiter))]
        if (rpc := self.rpc) is not None:
            loops.append(("stream-fetch", lambda: feed.fetch_loop(rpc)))
        return loops

    async def trades_loop(self) -> None:
        while True:
            events = await self.feed.next_events()
            for token in self.feed.discoveries(events):  # new pools, graduations: gated at once
                self._request_discovered(token)
            await self.apply_trades(self.feed.trades(events))

    async def apply_trades(self, trades: Sequence[Trade]) -> None:
        """On-chain trades (:class:`~dexscan.chain.trades.Trade`) → detector and ladders → store → fan-out."""
        received = time.perf_counter()
        found: list[Found] = []
        bars: list[tuple[str, list[Candle]]] = []
        touched: list[LiveTrade] = []
        judged: set[str] = set()
        taped: list[Trade] = []  # the trades a bar took (not late, not refused): the tape's rows
        for t in trades:
            view = self.tokens.get(t.mint)
            price, volume = t.price_usd, t.volume_usd
            if view is None or view.pool != t.pool or not view.history_done or price is None or volume is None:
                continue  # (the feed hands over USD-priced trades only)
            self.counters.trades += 1
            judged.add(t.mint)
            refused = self.detector.late_trades + self.detector.rejected_trades
            found.extend(Found(s, float(t.block_time), received) for s in self.detector.on_trade(
                t.mint, t.block_time, price, volume, t.side, t.signer))
            if self.detector.late_trades + self.detector.rejected_trades == refused:
                taped.append(t)
            touched.extend(self.writer.ledger.feed_price(t.mint, t.block_time, price))
        for mint in judged:
            view = self.tokens[mint]
            new = self.writer.new_bars(view)
            if new and view.pool:
                bars.append((view.pool, new))
        if taped and self.settings.stream.tape_retention_s:
            async with self.writer.lock:  # the trade tape (store.trades), each trade once
                self.counters.tape_rows += await self.store.save_trades(taped)
        await self.writer.persist(found, bars, touched)

    async def health_loop(self) -> None:
        """Every few seconds: after a reconnect, fill the gap it left (:meth:`ChainFeed.fill_gaps`);
        follow the stream's health (a token's heat, hence its polling cadence, changes with it); drop
        subscriptions of pools no longer tracked."""
        was = False
        while True:
            if self.feed.reconnected() and self.rpc is not None and self.settings.stream.gap_fill_max_transactions:
                await self.apply_trades(await self.feed.fill_gaps(self.rpc,
                                                                  self.settings.stream.gap_fill_max_transactions))
            up = self.feed.up()
            if up != was:
                was = up
                self._on_health_change()
            for mint, pool in list(self.feed.pool_of.items()):
                view = self.tokens.get(mint)
                if view is None or view.pool != pool:
                    await self.feed.unwatch(mint)
            await sleep_or_wake(self.clock, min(5.0, self.settings.stream.silence_timeout_s / 2))

    def status_cell(self) -> str:
        """Prices by source, in one cell: stream state, tokens streamed / polled, trades/s, lag, reconnects, drops."""
        st = self.feed.status()
        polled = len(self.tokens) - st.streamed
        lag = "" if st.lag_s is None else f" · lag {st.lag_s:.0f}s"
        return (f"{st.state} · {st.streamed} streamed / {polled} polled · {st.trades_per_s:.1f} tr/s{lag} · "
                f"rc {st.reconnects} · drop {st.dropped}")
