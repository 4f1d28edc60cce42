"""The live scanner: one asyncio pipeline from discovery to alerts (``dexscan scan``).

Shape (DESIGN §1)::

    discovery + gates (universe) ──► scheduler ──► DexScreener snapshots ─┐
                 │                        ▲                               ▼ bounded queue
                 └──► history queue ──► GeckoTerminal OHLCV ──► detector (market, strategies,
                                          (bootstrap)            ladder levels, confidence)
                                                                          │ signals, bars, outcomes
                                                        store (persist first) ──► bounded queue
                                                                          ▼
                                               --json lines · dashboard · /ws · Telegram outbox

Everything runs in one :class:`asyncio.TaskGroup`. The processing step stores before it shows:
signals, outcomes and their Telegram outbox rows go through the :class:`~dexscan.signal_ledger.SignalLedger`
(persist first, one alert per move, live ladders followed until they close), which then publishes
typed domain events (:mod:`dexscan.domain_events`) that the ``--json`` writer, ``/ws`` and the
dashboard consume. Live signals are reloaded from the store at start and their ladders rebuilt
from stored bars.

Budgets: the scheduler (:mod:`dexscan.scheduler`) decides which mints go into each DexScreener
request; the HTTP layer's budgets decide when it may leave. History (GeckoTerminal's ~25 requests a
minute) is the scarce resource of a cold start: one request per token (1,000 5m bars ≈ 3.5 days,
enough for the 20-bar warm-up and 15+ 4H bars for the ATR), hot tokens first, and bars already in
the store are not fetched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dexscan.clock import Clock
from dexscan.config import Settings
from dexscan.demo_mode import DEMO_CLOCK_KEY
from dexscan.domain import Candle, PairSnapshot, Timeframe, main_pool
from dexscan.domain_events import DomainEvent, PoolMoved
from dexscan.engine_ports import (
    CandleStore,
    EventService,
    EventSink,
    HttpStats,
    MarketClients,
    RpcEndpoints,
    ScannedUniverse,
    SignalDetector,
    SignalStore,
    TradeFeed,
)
from dexscan.errors import SourceError, StoreError
from dexscan.scheduler import Heat, HistoryQueue, RefreshScheduler, classify_heat
from dexscan.signal_ledger import Found, LiveTrade, SignalLedger
from dexscan.strategies import Ignition
from dexscan.universe_rounds import UniverseRounds

if TYPE_CHECKING:
    from dexscan.chain.trades import Trade
    from dexscan.status import ScannerStatus, SignalRow
    from dexscan.universe import RefreshReport

log = logging.getLogger(__name__)

M5 = int(Timeframe.M5)
#: 5m bars fetched when a token enters the universe: one GeckoTerminal page, ~3.5 days.
HISTORY_BARS = 1000
#: Concurrent DexScreener requests in flight (the budget, not this, bounds the rate).
REFRESH_WORKERS = 4
#: Real seconds the dashboard and the Telegram sender get to finish after a stop before being cancelled.
STOP_GRACE_S = 2.0


# ---------------------------------------------------------------------------------------------
# What the engine knows about each token it refreshes
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class TokenView:
    """A token the engine polls: universe member, watched mint, or the token of a live signal."""

    mint: str
    symbol: str = ""
    name: str = ""
    pool: str | None = None  # the main pool: its snapshots drive the detector, its bars are stored
    member: bool = False  # in the gated universe (not only tracked for a live signal)
    history_done: bool = False
    last_bar_stored: int = -1
    pair: PairSnapshot | None = None  # the latest snapshot of the main pool


@dataclass(slots=True)
class EngineCounters:
    signals: Counter[str] = field(default_factory=Counter)  # stored (new) signals by strategy
    duplicates: int = 0  # signals the store already had (restart/replay): not shown again
    outcomes_closed: int = 0
    snapshots: int = 0
    missing_pairs: int = 0
    pool_moves: int = 0  # tokens whose books moved to another main pool (a migration, a deeper pool)
    refresh_errors: int = 0
    stats_only_snapshots: int = 0  # snapshots of streamed tokens (liquidity and stats, not prices)
    trades: int = 0  # on-chain trades judged
    tape_rows: int = 0  # of them, added to the trade tape
    history_fetches: int = 0
    history_errors: int = 0
    bars_stored: int = 0
    discovery_rounds: int = 0  # periodic rounds: feeds asked, every due token checked
    stream_discovery_rounds: int = 0  # on-demand rounds for new pools and graduations of the chain stream
    watch_rounds: int = 0  # on-demand rounds: only just-watched mints checked (coalesced /watch)


# ---------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------


class Engine:
    """The live pipeline. :func:`dexscan.scan_command.scan` builds it over the resources it opens
    (store connections, HTTP layer, RPC pool, universe, detector), then ``await engine.run(stop)`` or
    ``await engine.run_once()``; :meth:`status` may be read any time (dashboard, local API).
    """

    def __init__(
        self,
        settings: Settings,
        store: SignalStore,
        clock: Clock,
        *,
        http: HttpStats,
        clients: MarketClients,
        universe: ScannedUniverse,
        detector: SignalDetector,
        rpc: RpcEndpoints | None = None,
        history_store: CandleStore | None = None,
        mode: str = "live",
        json_out: EventSink | None = None,
        service: EventService | None = None,
        tokens: Sequence[str] = (),
        calibrator_label: str = "uncalibrated",
        feed: TradeFeed | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.history_store: CandleStore = history_store or store
        self.clock = clock
        self.http = http
        self.clients = clients
        self.universe = universe
        self.detector = detector
        self.rpc = rpc
        self.mode = mode
        self.json_out = json_out
        self.service: EventService | None = service
        self.calibrator_label = calibrator_label
        self.feed = feed  # dexscan.chain.feed.ChainFeed: the on-chain trade stream, or None (polling only)
        scan = settings.scan
        self.scheduler = RefreshScheduler(scan.hot_refresh_s, scan.cold_refresh_s,
                                          settings.sources.dexscreener.tokens_batch,
                                          streamed_s=settings.stream.stats_refresh_s)
        self.history = HistoryQueue()
        self.tokens: dict[str, TokenView] = {}
        self.counters = EngineCounters()
        self.rounds = UniverseRounds(universe, settings, clock, tokens, self.counters, self._apply_round)
        self._snapshots: asyncio.Queue[tuple[list[str], list[PairSnapshot], float]] = asyncio.Queue(
            scan.queue_size)
        self._events: asyncio.Queue[DomainEvent] = asyncio.Queue(scan.queue_size)
        self._wake_refresh = asyncio.Event()
        self._wake_history = asyncio.Event()
        self._write = asyncio.Lock()  # one connection: transactions of different tasks must not interleave
        self._outbox_backlog = 0
        self._pools_recorded: set[str] = set()  # main pools whose row (mint, pair age) is in the store
        self._pools_to_record: dict[str, PairSnapshot] = {}
        self._started_at: float | None = None
        self._last_h4_boundary: int | None = None
        tg = settings.telegram
        self.telegram_enabled = settings.secrets.telegram_token is not None and bool(tg.chat_ids)
        self.chat_ids: tuple[int, ...] = tuple(tg.chat_ids) if self.telegram_enabled else ()
        self.ledger = SignalLedger(settings, store, clock, detector, self.chat_ids, self._events, self.counters,
                                   token_card=self._token_card, on_live=self._on_live,
                                   on_last_closed=self._on_last_closed, observe_latency=self._observe_latency)
        self.live = self.ledger.live  # signal id -> its followed ladder (the ledger's)
        self.live_by_mint = self.ledger.live_by_mint
        self.stored = self.ledger.stored  # the signals stored in this run, with their latencies

    def wake_outbox_with(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (the Telegram sender's) whenever new alerts are queued in the outbox, so they
        are sent at once rather than at the sender's next idle tick."""
        self.ledger.wake_outbox_with(wake)

    def _token_card(self, mint: str) -> tuple[str, PairSnapshot | None]:
        view = self.tokens.get(mint)
        return (view.name, view.pair) if view else ("", None)

    def _on_live(self, mint: str) -> None:
        if mint in self.scheduler:
            self.scheduler.set_heat(mint, Heat.LIVE)

    def _on_last_closed(self, mint: str) -> None:
        view = self.tokens.get(mint)
        if view is not None and not view.member:
            self.untrack_token(mint)

    def _observe_latency(self, seconds: float) -> None:
        if self.service is not None:
            self.service.observe_detection_latency(seconds)

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, extra: Sequence[Callable[[], Awaitable[None]]] = ()) -> None:
        """Run every loop until ``stop`` is set; then cancel them all (SIGINT/SIGTERM set ``stop``)."""
        self._started_at = self.clock.now()
        await self.resume()
        async with _first_store_error(), asyncio.TaskGroup() as tg:
            core = [
                tg.create_task(self._guard("discovery", self.rounds.discovery_loop)),
                tg.create_task(self._guard("watch", self.rounds.watch_loop)),
                tg.create_task(self._guard("history", self._history_loop)),
                tg.create_task(self._guard("process", self._process_loop)),
                tg.create_task(self._guard("output", self._output_loop)),
                tg.create_task(self._guard("housekeeping", self._housekeeping_loop)),
                *(tg.create_task(self._guard(f"refresh-{i}", self._refresh_loop)) for i in range(REFRESH_WORKERS)),
            ]
            if (feed := self.feed) is not None:
                core += [tg.create_task(self._guard("stream", feed.run)),
                         tg.create_task(self._guard("trades", self._trades_loop)),
                         tg.create_task(self._guard("stream-health", self._stream_health_loop)),
                         tg.create_task(self._guard("sol-usd", lambda: feed.sol_usd_loop(self.clients.jupiter)))]
                if (rpc := self.rpc) is not None:  # Meteora DLMM swaps: one getTransaction each
                    core.append(tg.create_task(self._guard("stream-fetch", lambda: feed.fetch_loop(rpc))))
            others = [tg.create_task(self._guard(getattr(fn, "__name__", "extra"), fn)) for fn in extra]
            await stop.wait()
            log.info("engine: stopping")
            for t in core:
                t.cancel()
            if others:  # the dashboard and the Telegram sender watch `stop` and finish their own way
                _, late = await asyncio.wait(others, timeout=STOP_GRACE_S)
                for t in late:
                    t.cancel()
        await self._drain_events()

    async def run_once(self) -> None:
        """One full cycle: discovery and gates, history for every token, one refresh of every token."""
        self._started_at = self.clock.now()
        await self.resume()
        await self.discover()
        while len(self.history):
            await self._history_step()
        mints = self.scheduler.mints()
        size = self.scheduler.batch_size
        for i in range(0, len(mints), size):
            batch = mints[i:i + size]
            pairs = await self._fetch(batch)
            if pairs is not None:
                await self.process(batch, pairs)
        await self.housekeeping()
        await self._drain_events()

    async def _guard(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run one loop; a bug in it is logged and the loop restarted, never the scanner taken down. A
        StoreError (the database held locked past the writers' wait) stops the scanner, saying so."""
        while True:
            try:
                await loop()
                return
            except (asyncio.CancelledError, StoreError):
                raise
            except Exception:
                log.exception("engine: %s loop failed; restarting it in 1 s", name)
                await asyncio.sleep(1.0)

    async def _sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        """Sleep ``seconds`` of clock time, or until ``wake`` is set (then clear it)."""
        if wake is None:
            await self.clock.sleep(seconds)
            return
        if wake.is_set():
            wake.clear()
            return
        sleeper = asyncio.ensure_future(self.clock.sleep(max(seconds, 0.0)))
        waiter = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waiter.cancel()
        wake.clear()

    def now(self) -> int:
        return int(self.clock.now())

    # -- tokens ---------------------------------------------------------------------------------

    def track_token(self, mint: str, *, symbol: str = "", name: str = "", pool: str | None = None,
                    member: bool = False) -> TokenView:
        """Start polling ``mint`` (idempotent); its history is queued the first time."""
        view = self.tokens.get(mint)
        if view is None:
            view = self.tokens[mint] = TokenView(mint)
        if symbol:
            view.symbol = symbol
        if name:
            view.name = name
        if pool and pool != view.pool:
            if view.pool is not None:  # another pool's bars: start the token's books afresh
                self.detector.drop(mint)
                view.history_done = False
                view.last_bar_stored = -1
            view.pool = pool
        view.member = view.member or member
        self.detector.register(mint, view.symbol, view.pool)
        heat = self._heat(mint)
        if mint not in self.scheduler:
            self.scheduler.add(mint, self.clock.now(), heat)
            self._wake_refresh.set()
        if not view.history_done and view.pool:
            self.history.push(mint, heat)
            self._wake_history.set()
        return view

    async def repin(self, mint: str, pool: str, why: str) -> bool:
        """Move a tracked token's books to ``pool`` (its new main pool); False when nothing changes.

        The token keeps its identity, its live signals and their ladders; its detector books start
        afresh on the new pool, whose history is fetched (``reference/external-apis.md`` §3.2: pools
        change, e.g. a pump.fun token migrating from its bonding curve to PumpSwap). The move is logged
        and published as a ``pool`` event (``--json``, ``/ws``).
        """
        view = self.tokens.get(mint)
        if view is None or not pool or pool == view.pool:
            return False
        old = view.pool
        self.track_token(mint, pool=pool)
        self.counters.pool_moves += 1
        log.info("engine: %s main pool moved from %s to %s (%s); books follow the new pool, its history is fetched",
                 view.symbol or mint, old or "none", pool, why)
        await self._events.put(PoolMoved(mint, view.symbol, old, pool, why, self.now(),
                                         len(self.live_by_mint.get(mint, ()))))
        return True

    def untrack_token(self, mint: str) -> None:
        """The token left the universe: stop polling it unless a live signal still needs it."""
        view = self.tokens.get(mint)
        if view is None:
            return
        view.member = False
        if self.live_by_mint.get(mint):
            return
        self.tokens.pop(mint, None)
        self.scheduler.remove(mint)
        self.history.discard(mint)
        self.detector.drop(mint)

    def _heat(self, mint: str) -> Heat:
        live = bool(self.live_by_mint.get(mint))
        state = self.detector.candle_state(mint)
        ignited = state is not None and state.state == "ignited" and not state.closed
        rise: float | None = None
        market = self.detector.market(mint)
        view = self.tokens.get(mint)
        if market is not None and view is not None and view.pair is not None and view.pair.price_usd:
            forming = market.forming4h()
            if forming is not None and forming.open > 0:
                rise = (view.pair.price_usd / forming.open - 1.0) * 100.0
        if self.feed is not None and self.feed.streaming(mint):
            return Heat.STREAMED  # prices arrive on chain; polled for liquidity and stats only
        return classify_heat(live=live, ignited=ignited, rise_pct=rise,
                             ignition_rise_pct=self.settings.strategies.params_for(Ignition.Params).rise_pct,
                             near_threshold_pct=self.settings.scan.near_threshold_pct)

    # -- restart --------------------------------------------------------------------------------

    async def resume(self) -> None:
        """Reload live signals from the store and rebuild their ladders from stored bars."""
        async with self._write:
            await self._resume()

    async def _resume(self) -> None:
        candle = int(Timeframe.H4.floor(self.now()))
        for _, sig, _ in await self.store.signals(since=candle, strategy="ignition"):
            if sig.candle_ts == candle:
                self.detector.restore_ignition(sig.mint, sig.candle_ts, sig.ts, sig.price)
        rows = await self.store.signals(status="live")
        for sid, sig, outcome in rows:
            if sig.levels is None:
                continue
            trade = self.ledger.open_trade(sid, sig, outcome)
            self.track_token(sig.mint, symbol=sig.symbol, pool=sig.pool)
            if sig.pool:
                bars = await self.store.candles(sig.pool, Timeframe.M5, start=sig.ts - sig.ts % M5)
                self.ledger.feed_bars(trade, bars)
            trade.tracker.expire(self.now())
            await self.ledger.save_outcome(trade, force=True)
        if rows:
            log.info("engine: resumed %d live signal(s) from the store", len(self.live))

    # -- history --------------------------------------------------------------------------------

    async def _history_loop(self) -> None:
        while True:
            if not await self._history_step():
                await self._sleep(self.settings.scan.hot_refresh_s, self._wake_history)

    async def _history_step(self) -> bool:
        """Bootstrap one token's detector from stored and fetched 5m bars; False when none waits."""
        mint = self.history.pop()
        if mint is None:
            return False
        view = self.tokens.get(mint)
        if view is None or view.pool is None or view.history_done:
            return True
        pool = view.pool
        now = self.now()
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

            async with self._write:
                signals, resumed = await resume(self.store, self.detector, mint, pool, bars, start, end, self.now(),
                                                 view.symbol)
            self.feed.remember(t.key for t in resumed)  # the stream sending one again is a duplicate
            if signals:  # what the run that judged these trades first stored stays as it is
                since = min(s.candle_ts for s in signals)
                stored = {s.key for _, s, _ in await self.store.signals(since=since, mint=mint)}
                found = [Found(s, float(s.ts)) for s in signals if s.key not in stored]
        else:
            self.detector.bootstrap(mint, Timeframe.M5, bars, symbol=view.symbol, pool=pool, as_of=self.now())
        view.history_done = True
        if bars:
            view.last_bar_stored = max(view.last_bar_stored, bars[-1].ts)
        new = self._new_bars(view)
        await self._persist(found, [(pool, new)] if new else [], [])
        async with self._write:
            await self.ledger.feed_history(mint, [*bars, *new])
        self.scheduler.set_heat(mint, self._heat(mint))
        return True

    # -- live refresh ---------------------------------------------------------------------------

    async def _refresh_loop(self) -> None:
        while True:
            now = self.clock.now()
            batch = self.scheduler.next_batch(now)
            if not batch:
                due = self.scheduler.next_due_at()
                wait = self.settings.scan.hot_refresh_s if due is None else min(
                    max(due - now, 0.0), self.settings.scan.hot_refresh_s)
                await self._sleep(wait, self._wake_refresh)
                continue
            pairs = await self._fetch(batch)
            if pairs is not None:
                await self._snapshots.put((batch, pairs, time.perf_counter()))

    async def _fetch(self, batch: list[str]) -> list[PairSnapshot] | None:
        """Snapshots of the batch's pinned pools: DexScreener's pick per token (``/tokens/v1``), plus
        ``/latest/dex/pairs`` for the tokens whose pick is another of their pools (the pick may be
        quoted in anything; ``reference/external-apis.md`` §3.2)."""
        try:
            pairs: list[PairSnapshot] = await self.clients.dexscreener.pairs_for_tokens(batch)
            picked = {p.base_mint: p.pair_address for p in pairs}
            off_pick = [view.pool for m in batch if (view := self.tokens.get(m)) is not None and view.pool
                        and m in picked and picked[m] != view.pool]
            if off_pick:
                pairs = [*pairs, *await self.clients.dexscreener.pairs(off_pick)]
        except SourceError as exc:
            self.scheduler.failed(batch, self.clock.now())
            self.counters.refresh_errors += 1
            log.warning("live refresh of %d tokens failed: %s", len(batch), exc)
            return None
        self.scheduler.complete(batch, self.clock.now())
        return pairs

    async def _process_loop(self) -> None:
        while True:
            batch, pairs, received = await self._snapshots.get()
            await self.process(batch, pairs, received)

    async def process(self, batch: Sequence[str], pairs: Sequence[PairSnapshot], received: float | None = None
                      ) -> None:
        """Snapshots of one request → detector and ladders → store → fan-out (in that order)."""
        from dexscan.market import Tick
        from dexscan.scoring import MarketContext, pool_agreement

        by_mint: dict[str, list[PairSnapshot]] = {}
        for p in pairs:
            by_mint.setdefault(p.base_mint, []).append(p)
        found: list[Found] = []
        bars: list[tuple[str, list[Candle]]] = []
        touched: list[LiveTrade] = []
        breadth = self._breadth(self.now())
        for mint in batch:
            view = self.tokens.get(mint)
            if view is None:
                continue
            own = by_mint.get(mint, [])
            if view.pool is None:
                pair = main_pool(own, mint)
            else:  # always the same pool: another pool's m5 volume would fake a surge or a lull
                pair = next((p for p in own if p.pair_address == view.pool), None)
            if pair is None:
                self.counters.missing_pairs += 1
                if own:  # DexScreener answered for the token, not for its pool: re-pick from its pools
                    await self._repick(mint, own)
                continue
            view.pair = pair
            if view.pool is None:
                self.track_token(mint, symbol=pair.base_symbol, pool=pair.pair_address)
            if self.feed is not None and view.pool == pair.pair_address and await self.feed.watch(mint, pair) \
                    and self.feed.streaming(mint):
                self.counters.stats_only_snapshots += 1  # the stream prices it; this poll is for stats
                continue
            if not view.history_done:
                continue
            if pair.pair_address not in self._pools_recorded:
                self._pools_to_record[pair.pair_address] = pair
            tick = Tick.from_pair(pair)
            if tick is None:
                continue
            self.counters.snapshots += 1
            ctx = MarketContext(market_breadth=breadth, pool_agreement=pool_agreement(self._known_pools(mint, own)))
            found.extend(Found(s, float(tick.ts), received) for s in self.detector.on_tick(mint, tick, ctx))
            new = self._new_bars(view)
            if new:
                bars.append((view.pool or pair.pair_address, new))
            touched.extend(self.ledger.feed_price(mint, tick.ts, tick.price))
        await self._persist(found, bars, touched)
        for mint in batch:
            if mint in self.scheduler:
                self.scheduler.set_heat(mint, self._heat(mint))
        for change in await self.universe.observe(pairs, self.now()):
            log.info("universe: %s left (%s)", change.mint, change.reason)
            self.untrack_token(change.mint)

    # -- the on-chain trade stream (dexscan.chain.feed) ------------------------------------------

    async def _trades_loop(self) -> None:
        assert self.feed is not None
        while True:
            events = await self.feed.next_events()
            for token in self.feed.discoveries(events):  # new pools, graduations: gated at once
                self.rounds.request_discovered(token)
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
            touched.extend(self.ledger.feed_price(t.mint, t.block_time, price))
        for mint in judged:
            view = self.tokens[mint]
            new = self._new_bars(view)
            if new and view.pool:
                bars.append((view.pool, new))
        if taped and self.settings.stream.tape_retention_s:
            async with self._write:  # the trade tape (store.trades), each trade once
                self.counters.tape_rows += await self.store.save_trades(taped)
        await self._persist(found, bars, touched)

    async def _stream_health_loop(self) -> None:
        """Every few seconds: after a reconnect, fill the gap it left (:meth:`ChainFeed.fill_gaps`);
        follow the stream's health (a token's heat, hence its polling cadence, changes with it); drop
        subscriptions of pools no longer tracked."""
        assert self.feed is not None
        was = False
        while True:
            if self.feed.reconnected() and self.rpc is not None and self.settings.stream.gap_fill_max_transactions:
                await self.apply_trades(await self.feed.fill_gaps(self.rpc,
                                                                  self.settings.stream.gap_fill_max_transactions))
            up = self.feed.up()
            if up != was:
                was = up
                for mint in self.scheduler.mints():
                    self.scheduler.set_heat(mint, self._heat(mint))
                self._wake_refresh.set()
            for mint, pool in list(self.feed.pool_of.items()):
                view = self.tokens.get(mint)
                if view is None or view.pool != pool:
                    await self.feed.unwatch(mint)
            await self._sleep(min(5.0, self.settings.stream.silence_timeout_s / 2))

    def _known_pools(self, mint: str, fresh: Sequence[PairSnapshot]) -> list[PairSnapshot]:
        """The token's own pools (it is the base) as the universe last listed them, ``fresh`` snapshots first."""
        merged = {p.pair_address: p for p in fresh}
        for p in self.universe.pairs(mint):
            if p.base_mint == mint and p.pair_address not in merged:
                merged[p.pair_address] = p
        return list(merged.values())

    async def _repick(self, mint: str, fresh: Sequence[PairSnapshot]) -> None:
        """The pinned pair went missing: pin the main pool of what is known now, else look again soon."""
        view = self.tokens.get(mint)
        mp = main_pool(self._known_pools(mint, fresh), mint)
        if view is not None and mp is not None and mp.pair_address != view.pool and any(
                p.pair_address == mp.pair_address for p in fresh):
            await self.repin(mint, mp.pair_address, f"pinned pair {view.pool} went missing")
            return
        self.universe.recheck(mint, self.now())  # its pools are fetched again in the next discovery round

    def _new_bars(self, view: TokenView) -> list[Candle]:
        market = self.detector.market(view.mint)
        if market is None:
            return []
        new = [c for c in market.recent5(8) if c.ts > view.last_bar_stored]
        if new:
            view.last_bar_stored = new[-1].ts
        return new

    def _breadth(self, at: int) -> float | None:
        """Share of the universe whose last 5m bar ended by ``at`` rose (:func:`dexscan.scoring.market_breadth`,
        the replay's definition too). A token's bar still forming from ticks counts once its 5 minutes
        are over (the detector completes it at the token's next tick; the replay has it by then)."""
        from dexscan.scoring import fresh_m5, market_breadth

        edge = at - at % M5
        markets = (self.detector.market(v.mint) for v in self.tokens.values() if v.member)
        return market_breadth(fresh_m5(m.last5_by(edge) if m is not None else None, edge) for m in markets)

    # -- persistence, then fan-out -----------------------------------------------------------------

    async def _persist(self, found: Sequence[Found], bars: Sequence[tuple[str, list[Candle]]],
                       trades: Sequence[LiveTrade]) -> None:
        async with self._write:
            await self._persist_locked(found, bars, trades)

    async def _persist_locked(self, found: Sequence[Found],
                              bars: Sequence[tuple[str, list[Candle]]], trades: Sequence[LiveTrade]) -> None:
        for address, pair in list(self._pools_to_record.items()):
            # the pool's row (its mint and creation time) beside its bars, so that `evaluate` on this
            # database replays the same token with the same pair age the live scanner scored
            await self.store.upsert_pool(address, pair.base_mint, self.now(), dex_id=pair.dex_id,
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

    async def _output_loop(self) -> None:
        while True:
            event = await self._events.get()
            self._emit(event)

    def _emit(self, event: DomainEvent) -> None:
        if self.json_out is not None:
            self.json_out.write(event)
        if self.service is not None:
            self.service.publish_event(event)

    async def _drain_events(self) -> None:
        while not self._events.empty():
            self._emit(self._events.get_nowait())

    # -- housekeeping: time stops, 4H closes, backlog ----------------------------------------------

    async def _housekeeping_loop(self) -> None:
        while True:
            await self._sleep(min(self.settings.scan.hot_refresh_s, 15.0))
            await self.housekeeping()

    async def housekeeping(self) -> None:
        """Work that is due by time alone, not by new data."""
        now = self.now()
        async with self._write:
            await self.ledger.expire(now)
            if self.mode == "demo":
                await self.store.kv_set(DEMO_CLOCK_KEY, str(now))
            if self.feed is not None and self.settings.stream.tape_retention_s:
                await self.store.prune_trades(now - int(self.settings.stream.tape_retention_s))
        await self._close_4h(now)
        if self.chat_ids:
            self._outbox_backlog = len(await self.store.outbox_rows(state="pending"))

    async def _close_4h(self, now: int) -> None:
        """A grace period after each 4H boundary, close the candle of every token no tick closed.

        Hot tokens are refreshed within ``hot_refresh_s`` of the boundary and close their candle
        with real data; the rest are told the time, so a confirmation never waits for a cold poll.
        """
        boundary = int(Timeframe.H4.floor(now))
        if self._last_h4_boundary is None:
            self._last_h4_boundary = boundary
            return
        if boundary <= self._last_h4_boundary or now < boundary + self.settings.scan.hot_refresh_s:
            return
        self._last_h4_boundary = boundary
        from dexscan.scoring import MarketContext

        found: list[Found] = []
        ctx = MarketContext(market_breadth=self._breadth(boundary))
        for mint, view in self.tokens.items():
            if view.history_done:
                found.extend(Found(s, float(boundary)) for s in self.detector.advance(mint, boundary, ctx))
        await self._persist(found, [], [])

    # -- universe -------------------------------------------------------------------------------

    async def discover(self) -> None:
        """One discovery and gating round (:class:`~dexscan.universe_rounds.UniverseRounds`); members
        enter the refresh schedule, leavers drop out."""
        await self.rounds.discover()

    async def _apply_round(self, report: RefreshReport) -> None:
        """Follow a universe round (:class:`~dexscan.universe.RefreshReport`): pins, entries, leavers."""
        universe = self.universe
        for mint, (old, new) in report.moved.items():
            if new is not None and mint in self.tokens:
                await self.repin(mint, new, f"main pool moved from {old} (e.g. a migration)")
        for e in report.entered:
            self.track_token(e.mint, symbol=e.symbol, name=e.name, pool=e.pool, member=True)
        for mint in report.left:
            self.untrack_token(mint)
        for mint in universe.book.members():  # restored from the store: kept, never "entered" here
            view = self.tokens.get(mint)
            if view is None or not view.member:
                pool = main_pool(universe.pairs(mint), mint)
                address = view.pool if view is not None and view.pool else (pool.pair_address if pool else None)
                self.track_token(mint, symbol=universe.symbol(mint) or (pool.base_symbol if pool else ""),
                                 name=pool.base_name if pool else "", pool=address, member=True)
        for mint, view in list(self.tokens.items()):  # re-picked every round: members follow the main pool
            mp = universe.main_pool(mint) if view.member else None
            if mp is not None and mp.pair_address != view.pool:
                await self.repin(mint, mp.pair_address, "re-picked at the discovery round")
        if report.entered or report.left:
            log.info("universe: %d member(s); %d entered, %d left", report.members, len(report.entered),
                     len(report.left))

    def request_watch(self, mint: str) -> None:
        """Check ``mint`` (just watched from Telegram) in the next on-demand round
        (:meth:`~dexscan.universe_rounds.UniverseRounds.request_watch`)."""
        self.rounds.request_watch(mint)

    # -- status ---------------------------------------------------------------------------------

    def summary(self) -> str:
        """One line on what the run did (printed after ``--once``)."""
        st = self.status()
        return (f"dexscan: {st.universe_size} token(s) in the universe (gates: {st.gates_passed} passed, "
                f"{st.gates_failed} failed, {st.gates_unverified} unverified), {self.counters.snapshots} "
                f"snapshot(s) judged, {sum(self.counters.signals.values())} new signal(s), "
                f"{len(self.live)} live, {self.counters.outcomes_closed} closed")

    def status(self) -> ScannerStatus:
        """A :class:`~dexscan.status.ScannerStatus` snapshot for the dashboard and the service."""
        from dexscan.status import ClosedRow, LiveRow, ScannerStatus, source_status

        now = self.clock.now()
        sources = [source_status(st, now) for name, st in self.http.stats().items()
                   if name != "birdeye" or getattr(self.clients, "birdeye", None) is not None]
        rpc_states = self.rpc.state() if self.rpc is not None else []
        live_rows = []
        for trade in self.live.values():
            view = self.tokens.get(trade.signal.mint)
            price = view.pair.price_usd if view is not None and view.pair is not None else None
            live_rows.append(LiveRow.from_signal(trade.signal, trade.outcome, now, price, trade.signal_id,
                                                 breakeven_after_tp1=self.settings.ladder.breakeven_after_tp1))
        passed, failed, unverified = self.rounds.gate_counts
        http_bad = sum(sum(st.bad_records.values()) for st in self.http.stats().values())
        return ScannerStatus(
            now=now,
            local_zone=self.settings.app.timezone,
            universe_size=sum(1 for v in self.tokens.values() if v.member),
            gates_passed=passed,
            gates_failed=failed,
            gates_unverified=unverified,
            warming_up=sum(1 for v in self.tokens.values() if v.member and self.detector.warming_up(v.mint) > 0),
            calibrator_label=self.calibrator_label,
            sources=sources,
            rpc=[s.as_status() for s in rpc_states],
            active_rpc=getattr(self.rpc, "last_endpoint", None),
            queue_depths={
                "snapshots": self._snapshots.qsize(),
                "events": self._events.qsize(),
                "history": len(self.history),
                "refresh_in_flight": self.scheduler.stats(now).in_flight,
            },
            outbox_backlog=self._outbox_backlog,
            new_signals=self.new_signal_rows(now),
            live_signals=live_rows,
            closed_signals=[ClosedRow.from_outcome(s, o, sid) for sid, s, o in self.ledger.closed_rows],
            rejected=list(self.rounds.rejected.values()),
            signals_by_strategy=dict(self.counters.signals),
            counters={
                "bad_payloads": http_bad,
                "duplicate_signals": self.counters.duplicates,
                "outcomes_closed": self.counters.outcomes_closed,
                "snapshots": self.counters.snapshots,
                "pool_moves": self.counters.pool_moves,
                "refresh_errors": self.counters.refresh_errors,
                "history_fetches": self.counters.history_fetches,
                "history_errors": self.counters.history_errors,
                "bars_stored": self.counters.bars_stored,
                "discovery_rounds": self.counters.discovery_rounds,
                "watch_rounds": self.counters.watch_rounds,
                "trades": self.counters.trades,
                "tape_rows": self.counters.tape_rows,
                "stats_only_snapshots": self.counters.stats_only_snapshots,
                **({"stream_fallbacks": self.feed.counts["fallbacks"]} if self.feed is not None else {}),
            },
            stream=self._stream_cell(),
            started_at=self._started_at,
            mode=self.mode,
        )

    def _stream_cell(self) -> str | None:
        """Prices by source, in one cell: stream state, tokens streamed / polled, trades/s, lag, reconnects, drops."""
        if self.feed is None:
            return None
        st = self.feed.status()
        polled = len(self.tokens) - st.streamed
        lag = "" if st.lag_s is None else f" · lag {st.lag_s:.0f}s"
        return (f"{st.state} · {st.streamed} streamed / {polled} polled · {st.trades_per_s:.1f} tr/s{lag} · "
                f"rc {st.reconnects} · drop {st.dropped}")


    def new_signal_rows(self, now: float) -> list[SignalRow]:
        """The dashboard's new-signal rows: one per move, listing every strategy that fired on it."""
        from dexscan.status import SignalRow

        return [SignalRow.from_move(move, now, self._strategy_notes) for move in self.ledger.new_rows]

    def _strategy_notes(self, strategy: str) -> tuple[str, ...]:
        scorer = getattr(self.detector, "scorer", None)
        return () if scorer is None else tuple(scorer.strategy_notes(strategy))



@contextlib.asynccontextmanager
async def _first_store_error() -> AsyncIterator[None]:
    """Around a task group: when its tasks failed with StoreError only (a database held locked past
    the writers' wait), raise the first one itself, which the command line prints as one line."""
    try:
        yield
    except BaseExceptionGroup as group:
        matched, rest = group.split(StoreError)
        if matched is None or rest is not None:
            raise
        first: BaseException = matched
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
