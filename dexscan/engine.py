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

Everything runs in one :class:`asyncio.TaskGroup`. Each step stores before it shows
(:class:`~dexscan.pipeline_writer.PipelineWriter`): signals, outcomes and their Telegram outbox rows
go through the :class:`~dexscan.signal_ledger.SignalLedger` (persist first, one alert per move, live
ladders followed until they close), which then publishes typed domain events
(:mod:`dexscan.domain_events`) that the ``--json`` writer, ``/ws`` and the dashboard consume. Live
signals are reloaded from the store at start and their ladders rebuilt from stored bars.

Budgets: the scheduler (:mod:`dexscan.scheduler`) decides which mints go into each DexScreener
request; the HTTP layer's budgets decide when it may leave. History is the scarce resource of a
cold start (:mod:`dexscan.history_bootstrap`). The on-chain trade stream, when configured, prices
the tokens it covers (:mod:`dexscan.stream_intake`).
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

from dexscan.clock import Clock, sleep_or_wake
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
from dexscan.history_bootstrap import HistoryBootstrap
from dexscan.pipeline_writer import PipelineWriter
from dexscan.scheduler import Heat, RefreshScheduler, classify_heat
from dexscan.signal_ledger import Found, LiveTrade, SignalLedger
from dexscan.strategies import Ignition
from dexscan.stream_intake import StreamIntake
from dexscan.universe_rounds import UniverseRounds

if TYPE_CHECKING:
    from dexscan.status import ScannerStatus, SignalRow
    from dexscan.universe import RefreshReport

log = logging.getLogger(__name__)

M5 = int(Timeframe.M5)
#: Concurrent DexScreener requests in flight (the budget, not this, bounds the rate).
REFRESH_WORKERS = 4
#: Real seconds the dashboard and the Telegram sender get to finish after a stop before being cancelled.
STOP_GRACE_S = 2.0


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
        self.tokens: dict[str, TokenView] = {}
        self.counters = EngineCounters()
        self.rounds = UniverseRounds(universe, settings, clock, tokens, self.counters, self._apply_round)
        self._snapshots: asyncio.Queue[tuple[list[str], list[PairSnapshot], float]] = asyncio.Queue(
            scan.queue_size)
        self._events: asyncio.Queue[DomainEvent] = asyncio.Queue(scan.queue_size)
        self._wake_refresh = asyncio.Event()
        self._outbox_backlog = 0
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
        self.writer = PipelineWriter(store, clock, detector, self.ledger, self.counters)
        self.history = HistoryBootstrap(settings, store, self.history_store, clients, detector, feed, clock,
                                        self.tokens, self.counters, self.writer, self._reheat)
        self.stream = None if feed is None else StreamIntake(
            settings, store, detector, feed, rpc, clock, self.tokens, self.counters, self.writer,
            request_discovered=self.rounds.request_discovered, on_health_change=self._reheat_all)

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
                tg.create_task(self._guard("history", self.history.loop)),
                tg.create_task(self._guard("process", self._process_loop)),
                tg.create_task(self._guard("output", self._output_loop)),
                tg.create_task(self._guard("housekeeping", self._housekeeping_loop)),
                *(tg.create_task(self._guard(f"refresh-{i}", self._refresh_loop)) for i in range(REFRESH_WORKERS)),
            ]
            if self.stream is not None:
                core += [tg.create_task(self._guard(name, loop)) for name, loop in self.stream.loops(self.clients)]
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
            await self.history.step()
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

    def _reheat(self, mint: str) -> None:
        self.scheduler.set_heat(mint, self._heat(mint))

    def _reheat_all(self) -> None:
        """The stream went up or down: every token's polling cadence changes with it."""
        for mint in self.scheduler.mints():
            self._reheat(mint)
        self._wake_refresh.set()

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
        async with self.writer.lock:
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

    # -- live refresh ---------------------------------------------------------------------------

    async def _refresh_loop(self) -> None:
        while True:
            now = self.clock.now()
            batch = self.scheduler.next_batch(now)
            if not batch:
                due = self.scheduler.next_due_at()
                wait = self.settings.scan.hot_refresh_s if due is None else min(
                    max(due - now, 0.0), self.settings.scan.hot_refresh_s)
                await sleep_or_wake(self.clock, wait, self._wake_refresh)
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
            self.writer.record_pool(pair)
            tick = Tick.from_pair(pair)
            if tick is None:
                continue
            self.counters.snapshots += 1
            ctx = MarketContext(market_breadth=breadth, pool_agreement=pool_agreement(self._known_pools(mint, own)))
            found.extend(Found(s, float(tick.ts), received) for s in self.detector.on_tick(mint, tick, ctx))
            new = self.writer.new_bars(view)
            if new:
                bars.append((view.pool or pair.pair_address, new))
            touched.extend(self.ledger.feed_price(mint, tick.ts, tick.price))
        await self.writer.persist(found, bars, touched)
        for mint in batch:
            if mint in self.scheduler:
                self.scheduler.set_heat(mint, self._heat(mint))
        for change in await self.universe.observe(pairs, self.now()):
            log.info("universe: %s left (%s)", change.mint, change.reason)
            self.untrack_token(change.mint)

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

    def _breadth(self, at: int) -> float | None:
        """Share of the universe whose last 5m bar ended by ``at`` rose (:func:`dexscan.scoring.market_breadth`,
        the replay's definition too). A token's bar still forming from ticks counts once its 5 minutes
        are over (the detector completes it at the token's next tick; the replay has it by then)."""
        from dexscan.scoring import fresh_m5, market_breadth

        edge = at - at % M5
        markets = (self.detector.market(v.mint) for v in self.tokens.values() if v.member)
        return market_breadth(fresh_m5(m.last5_by(edge) if m is not None else None, edge) for m in markets)

    # -- persistence, then fan-out -----------------------------------------------------------------

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
            await sleep_or_wake(self.clock, min(self.settings.scan.hot_refresh_s, 15.0))
            await self.housekeeping()

    async def housekeeping(self) -> None:
        """Work that is due by time alone, not by new data."""
        now = self.now()
        async with self.writer.lock:
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
        await self.writer.persist(found, [], [])

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
            stream=self.stream.status_cell() if self.stream is not None else None,
            started_at=self._started_at,
            mode=self.mode,
        )

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
