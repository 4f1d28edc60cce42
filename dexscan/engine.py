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

Everything runs in one :class:`asyncio.TaskGroup`. The order inside the processing step is the
product's promise: a signal (and each change of its outcome) is written to the database, together
with its Telegram outbox rows, *before* anyone is shown or sent anything, and "already alerted" is
the store's natural key ``(mint, strategy, candle_ts)``: after a restart the detector may find the
same signal again, the store says it exists, and nothing is shown or sent twice. Live signals are
reloaded from the store at start and their ladders rebuilt from stored bars.

**One alert per move.** A signal whose token and 4H candle already have a signal of another
strategy fired within ``scan.move_window_s`` (default 15 min) of the move's first one joins that
move (:func:`move_members`, computed from the store, so a restart keeps moves whole): it is stored
and scored on its own as always, but its outbox row is a ``join`` carrying the whole move's card,
which the sender turns into an edit of the move's message rather than a second alert, and the
dashboard shows the move as one row listing every strategy. ``--json``/``/ws`` signal events carry
``move`` (the first signal's id, the strategies and signal ids so far) so a consumer can do the same.

Budgets: the scheduler (:mod:`dexscan.scheduler`) decides which mints go into each DexScreener
request; the HTTP layer's budgets decide when it may leave. History (GeckoTerminal's ~25 requests a
minute) is the scarce resource of a cold start: one request per token (1,000 5m bars ≈ 3.5 days,
enough for the 20-bar warm-up and 15+ 4H bars for the ATR), hot tokens first, and bars already in
the store are not fetched again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import math
import signal as os_signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from dexscan.clock import Clock, RealClock
from dexscan.config import Settings, mask_url
from dexscan.domain import Candle, Outcome, PairSnapshot, Signal, Timeframe, main_pool
from dexscan.errors import InputError, SourceError
from dexscan.scheduler import Heat, HistoryQueue, RefreshScheduler, classify_heat
from dexscan.strategies import Ignition

log = logging.getLogger(__name__)

M5 = int(Timeframe.M5)
#: 5m bars fetched when a token enters the universe: one GeckoTerminal page, ~3.5 days.
HISTORY_BARS = 1000
#: Concurrent DexScreener requests in flight (the budget, not this, bounds the rate).
REFRESH_WORKERS = 4
#: Rows kept for the dashboard's "new" and "closed" tables.
ROWS_KEPT = 64
DEMO_CLOCK_KEY = "demo.clock"
#: The interactive demo's default pace: simulated seconds per real second.
DEMO_SPEED = 60.0
#: Real seconds the dashboard and the Telegram sender get to finish after a stop before being cancelled.
STOP_GRACE_S = 2.0


# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """What ``dexscan scan`` was asked to do (the command line, validated).

    ``speed``: the demo's pace, simulated seconds per real second at most (``math.inf``: as fast as
    the work allows). ``duration``: stop after this many *real* seconds (the command line's
    ``--duration``). ``run_for``: stop after this many seconds of the scanner's clock (simulated
    seconds in the demo), which is what tests and benchmarks ask for: it does not depend on the
    machine.
    """

    demo: bool = False
    speed: float = DEMO_SPEED
    duration: float | None = None
    run_for: float | None = None
    once: bool = False
    json: bool = False
    serve: str | None = None
    tokens: tuple[str, ...] = ()
    db: str | None = None
    dashboard: bool = True
    quiet: bool = False  # nothing on stdout (benchmarks, in-process tests)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ScanOptions:
        speed = getattr(args, "speed", None)
        as_json = bool(getattr(args, "json", False))
        once = bool(getattr(args, "once", False))
        return cls(
            demo=bool(getattr(args, "demo", False)),
            speed=float(speed) if speed else DEMO_SPEED,
            duration=getattr(args, "duration", None),
            once=once,
            json=as_json,
            serve=getattr(args, "serve", None),
            tokens=tuple(getattr(args, "tokens", None) or ()),
            db=getattr(args, "db", None),
            dashboard=not as_json and not once and sys.stdout.isatty(),
        )

    @property
    def pace(self) -> float | None:
        """The :class:`~dexscan.vtime.VirtualTimeLoop` pace for the demo (``None``: unpaced)."""
        return None if math.isinf(self.speed) else self.speed


# ---------------------------------------------------------------------------------------------
# Output of signals as JSON lines (``--json``)
# ---------------------------------------------------------------------------------------------


class JsonLines:
    """Writes one JSON object per line to ``stream`` (stdout), flushed, for scripts and pipes."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, event: dict[str, Any]) -> None:
        self._stream.write(json.dumps(event, separators=(",", ":"), allow_nan=False) + "\n")
        self._stream.flush()


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
class LiveTrade:
    """One stored signal whose ladder is being followed until it closes."""

    signal_id: int
    signal: Signal
    tracker: Any  # dexscan.ladder.LadderTracker
    outcome: Outcome | None
    last_fed: int


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
    watch_rounds: int = 0  # on-demand rounds: only just-watched mints checked (coalesced /watch)


@dataclass(frozen=True, slots=True)
class Found:
    """A signal the detector just found, and when its evidence reached us."""

    signal: Signal
    event_ts: float  # clock time of the observation that fired it (snapshot time, or the 4H boundary)
    received: float | None = None  # perf_counter() when the snapshot's HTTP answer arrived


@dataclass(frozen=True, slots=True)
class StoredSignal:
    """A signal as it left the pipeline: persisted, with the latency it took to get there."""

    signal_id: int
    signal: Signal
    event_ts: float  # when the market event that fired it was observed (clock time)
    stored_at: float  # clock time right after the database commit
    received: float | None  # perf_counter() when the snapshot that fired it arrived (None: by time)
    committed: float  # perf_counter() right after the commit (wall-clock latency = committed - received)


# ---------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------


class Engine:
    """The live pipeline. :func:`scan` builds it over the resources it opens (store connections,
    HTTP layer, RPC pool, universe, detector), then ``await engine.run(stop)`` or
    ``await engine.run_once()``; :meth:`status` may be read any time (dashboard, local API).
    """

    def __init__(
        self,
        settings: Settings,
        store: Any,
        clock: Clock,
        *,
        http: Any,
        clients: Any,
        universe: Any,
        detector: Any,
        rpc: Any = None,
        history_store: Any = None,
        mode: str = "live",
        json_out: JsonLines | None = None,
        service: Any = None,
        tokens: Sequence[str] = (),
        calibrator_label: str = "uncalibrated",
        feed: Any = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.history_store = history_store or store
        self.clock = clock
        self.http = http
        self.clients = clients
        self.universe = universe
        self.detector = detector
        self.rpc = rpc
        self.mode = mode
        self.json_out = json_out
        self.service = service
        self.watch = tuple(dict.fromkeys(tokens))
        self.calibrator_label = calibrator_label
        self.feed = feed  # dexscan.chain.feed.ChainFeed: the on-chain trade stream, or None (polling only)
        scan = settings.scan
        self.scheduler = RefreshScheduler(scan.hot_refresh_s, scan.cold_refresh_s,
                                          settings.sources.dexscreener.tokens_batch,
                                          streamed_s=settings.stream.stats_refresh_s)
        self.history = HistoryQueue()
        self.tokens: dict[str, TokenView] = {}
        self.live: dict[int, LiveTrade] = {}
        self.live_by_mint: dict[str, set[int]] = {}
        self.counters = EngineCounters()
        self.stored: deque[StoredSignal] = deque(maxlen=10_000)
        self._new_rows: deque[list[tuple[int, Signal]]] = deque(maxlen=ROWS_KEPT)  # moves, first signal first
        self._closed_rows: deque[tuple[int, Signal, Outcome]] = deque(maxlen=ROWS_KEPT)
        self._snapshots: asyncio.Queue[tuple[list[str], list[PairSnapshot], float]] = asyncio.Queue(
            scan.queue_size)
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(scan.queue_size)
        self._wake_refresh = asyncio.Event()
        self._wake_history = asyncio.Event()
        self._wake_watch = asyncio.Event()
        self._watch_requests: dict[str, None] = {}  # mints waiting for an on-demand round, in order
        self._universe_round = asyncio.Lock()  # discovery and on-demand rounds never interleave
        self._wake_outbox: Callable[[], None] | None = None
        self._write = asyncio.Lock()  # one connection: transactions of different tasks must not interleave
        self._outbox_backlog = 0
        self._gate_counts = (0, 0, 0)
        self._rejected: dict[str, Any] = {}
        self._pools_recorded: set[str] = set()  # main pools whose row (mint, pair age) is in the store
        self._pools_to_record: dict[str, PairSnapshot] = {}
        self._started_at: float | None = None
        self._last_h4_boundary: int | None = None
        self._universe_loaded = False
        tg = settings.telegram
        self.telegram_enabled = settings.secrets.telegram_token is not None and bool(tg.chat_ids)
        self.chat_ids: tuple[int, ...] = tuple(tg.chat_ids) if self.telegram_enabled else ()
        self._zone = settings.local_zone()

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, extra: Sequence[Callable[[], Awaitable[None]]] = ()) -> None:
        """Run every loop until ``stop`` is set; then cancel them all (SIGINT/SIGTERM set ``stop``)."""
        self._started_at = self.clock.now()
        await self.resume()
        async with asyncio.TaskGroup() as tg:
            core = [
                tg.create_task(self._guard("discovery", self._discovery_loop)),
                tg.create_task(self._guard("watch", self._watch_loop)),
                tg.create_task(self._guard("history", self._history_loop)),
                tg.create_task(self._guard("process", self._process_loop)),
                tg.create_task(self._guard("output", self._output_loop)),
                tg.create_task(self._guard("housekeeping", self._housekeeping_loop)),
                *(tg.create_task(self._guard(f"refresh-{i}", self._refresh_loop)) for i in range(REFRESH_WORKERS)),
            ]
            if self.feed is not None:
                core += [tg.create_task(self._guard("stream", self.feed.run)),
                         tg.create_task(self._guard("trades", self._trades_loop)),
                         tg.create_task(self._guard("stream-health", self._stream_health_loop)),
                         tg.create_task(self._guard("sol-usd", lambda: self.feed.sol_usd_loop(self.clients.jupiter)))]
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
        """Run one loop; a bug in it is logged and the loop restarted, never the scanner taken down."""
        while True:
            try:
                await loop()
                return
            except asyncio.CancelledError:
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
        await self._events.put({"type": "pool", "mint": mint, "symbol": view.symbol, "from": old, "to": pool,
                                "reason": why, "ts": self.now(), "live_signals": len(self.live_by_mint.get(mint, ()))})
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
            trade = LiveTrade(sid, sig, self._tracker(sig), outcome, sig.ts)
            self._add_trade(trade)
            self.track_token(sig.mint, symbol=sig.symbol, pool=sig.pool)
            if sig.pool:
                bars = await self.store.candles(sig.pool, Timeframe.M5, start=sig.ts - sig.ts % M5)
                self._feed_bars(trade, bars)
            trade.tracker.expire(self.now())
            await self._save_outcome(trade, force=True)
        if rows:
            log.info("engine: resumed %d live signal(s) from the store", len(self.live))

    def _tracker(self, sig: Signal) -> Any:
        from dexscan.ladder import LadderTracker

        assert sig.levels is not None
        return LadderTracker.from_settings(sig.levels, sig.ts, self.settings.ladder)

    def _add_trade(self, trade: LiveTrade) -> None:
        self.live[trade.signal_id] = trade
        self.live_by_mint.setdefault(trade.signal.mint, set()).add(trade.signal_id)

    def _drop_trade(self, trade: LiveTrade) -> None:
        self.live.pop(trade.signal_id, None)
        ids = self.live_by_mint.get(trade.signal.mint)
        if ids is not None:
            ids.discard(trade.signal_id)
            if not ids:
                del self.live_by_mint[trade.signal.mint]
                view = self.tokens.get(trade.signal.mint)
                if view is not None and not view.member:
                    self.untrack_token(trade.signal.mint)

    @staticmethod
    def _feed_bars(trade: LiveTrade, bars: Iterable[Candle]) -> None:
        for bar in bars:
            if trade.tracker.closed:
                return
            if bar.ts >= trade.last_fed:
                trade.tracker.update(bar)
                trade.last_fed = max(trade.last_fed, bar.ts + M5)

    @staticmethod
    def _feed_price(trade: LiveTrade, ts: int, price: float) -> None:
        if trade.tracker.closed or ts < trade.last_fed:
            return
        trade.tracker.update(Candle(ts, price, price, price, price, 0.0))
        trade.last_fed = ts

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
        self.detector.bootstrap(mint, Timeframe.M5, bars, symbol=view.symbol, pool=pool, as_of=self.now())
        view.history_done = True
        if bars:
            view.last_bar_stored = max(view.last_bar_stored, bars[-1].ts)
        async with self._write:
            for sid in list(self.live_by_mint.get(mint, ())):
                trade = self.live[sid]
                self._feed_bars(trade, bars)
                await self._save_outcome(trade)
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
            for sid in self.live_by_mint.get(mint, ()):
                trade = self.live[sid]
                self._feed_price(trade, tick.ts, tick.price)
                touched.append(trade)
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
            await self.apply_trades(self.feed.trades(await self.feed.next_events()))

    async def apply_trades(self, trades: Sequence[Any]) -> None:
        """On-chain trades (:class:`~dexscan.chain.trades.Trade`) → detector and ladders → store → fan-out."""
        received = time.perf_counter()
        found: list[Found] = []
        bars: list[tuple[str, list[Candle]]] = []
        touched: list[LiveTrade] = []
        judged: set[str] = set()
        for t in trades:
            view = self.tokens.get(t.mint)
            if view is None or view.pool != t.pool or not view.history_done:
                continue
            self.counters.trades += 1
            judged.add(t.mint)
            found.extend(Found(s, float(t.block_time), received) for s in self.detector.on_trade(
                t.mint, t.block_time, t.price_usd, t.volume_usd, t.side, t.signer))
            for sid in self.live_by_mint.get(t.mint, ()):
                trade = self.live[sid]
                self._feed_price(trade, t.block_time, t.price_usd)
                touched.append(trade)
        for mint in judged:
            view = self.tokens[mint]
            new = self._new_bars(view)
            if new and view.pool:
                bars.append((view.pool, new))
        if judged and self.settings.stream.tape_retention_s:
            async with self._write:  # the trade tape (store.trades), each trade once
                self.counters.tape_rows += await self.store.save_trades(
                    t for t in trades if t.mint in judged and self.tokens[t.mint].pool == t.pool)
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

        def last(mint: str) -> Any:
            market = self.detector.market(mint)
            if market is None:
                return None
            live = market.live
            if live is not None and live.ts + M5 <= edge:
                return live
            return market.last5

        return market_breadth(fresh_m5(last(v.mint), edge) for v in self.tokens.values() if v.member)

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
        for f in found:
            await self._save_signal(f)
        for trade in trades:
            await self._save_outcome(trade)

    async def _save_signal(self, found: Found) -> None:
        sig = found.signal
        move = move_members(await self.store.candle_signals(sig.mint, int(Timeframe.H4.floor(sig.candle_ts))), sig,
                            self.settings.scan.move_window_s)
        payload = ""
        if self.chat_ids:
            from dexscan.alerts.format import move_card

            members = [s for _, s in move] + [sig]
            payload = move_card(members, await self._card_extras(sig, members),
                                join_of=[i for i, _ in move]).to_payload()
        sid, created = await self.store.save_signal(sig, self.chat_ids, payload, now=self.now(),
                                                    kind="join" if move else "signal")
        if not created:
            self.counters.duplicates += 1
            return
        stored_at = self.clock.now()
        self.stored.append(StoredSignal(sid, sig, found.event_ts, stored_at, found.received, time.perf_counter()))
        self.counters.signals[sig.strategy] += 1
        if self.service is not None:
            self.service.observe_detection_latency(max(0.0, stored_at - found.event_ts))
        log.info("signal #%d %s %s %s at %.6g (%s)%s", sid, sig.strategy, sig.symbol or sig.mint, sig.layer,
                 sig.price, ", ".join(str(r) for r in sig.reasons),
                 f"; joins the move of signal #{move[0][0]}" if move else "")
        if sig.levels is not None:
            trade = LiveTrade(sid, sig, self._tracker(sig), Outcome("open", 0.0), sig.ts)
            self._add_trade(trade)
            if sig.mint in self.scheduler:
                self.scheduler.set_heat(sig.mint, Heat.LIVE)
        row = next((m for m in self._new_rows if move and m[0][0] == move[0][0]), None)
        if row is not None:
            row.append((sid, sig))
        else:
            row = [*move, (sid, sig)]
            self._new_rows.append(row)
        from dexscan.service import signal_event

        event = signal_event(sid, sig, None)
        event["move"] = {"id": row[0][0], "strategies": [s.strategy for _, s in row],
                         "signal_ids": [i for i, _ in row]}
        await self._events.put(event)
        if self._wake_outbox is not None and self.chat_ids:
            self._wake_outbox()

    async def _card_extras(self, sig: Signal, members: Sequence[Signal] = ()) -> Any:
        from dexscan.alerts.format import CardExtras

        view = self.tokens.get(sig.mint)
        pair = view.pair if view else None
        scorer = getattr(self.detector, "scorer", None)
        no_skill: dict[str, str] = {}
        records: dict[str, Any] = {}
        for s in members or (sig,):
            if scorer is None:
                break
            text = scorer.no_skill_text(s.strategy)
            if text is not None:
                no_skill[s.strategy] = text
            record = scorer.record(s.strategy)
            if record is not None:
                records[s.strategy] = record
        return CardExtras(
            name=view.name if view else "",
            volume_h24_usd=pair.volume.h24 if pair else None,
            pair_created_at=pair.pair_created_at if pair else None,
            gates=await self.store.latest_verdicts(sig.mint),
            local_zone=self._zone,
            market_cap_usd=_market_cap(pair),
            no_skill=no_skill,
            records=records,
        )

    async def _save_outcome(self, trade: LiveTrade, force: bool = False) -> None:
        """Store the trade's outcome when it moved (a level hit, closed), then show it."""
        out: Outcome = trade.tracker.outcome
        prev = trade.outcome
        material = prev is None or out.result != prev.result or dict(out.hits) != dict(prev.hits)
        if not material and not force:
            trade.outcome = out
            return
        payload = ""
        if out.closed and self.chat_ids:
            from dexscan.alerts.format import outcome_card

            payload = outcome_card(trade.signal, out, self._zone).to_payload()
        await self.store.save_outcome(trade.signal_id, out, self.now(), self.chat_ids if out.closed else (), payload)
        trade.outcome = out
        if material:
            from dexscan.service import outcome_event

            await self._events.put(outcome_event(trade.signal_id, trade.signal, out))
        if out.closed:
            self.counters.outcomes_closed += 1
            self._closed_rows.append((trade.signal_id, trade.signal, out))
            self._drop_trade(trade)
            if self._wake_outbox is not None and self.chat_ids:
                self._wake_outbox()

    async def _output_loop(self) -> None:
        while True:
            event = await self._events.get()
            self._emit(event)

    def _emit(self, event: dict[str, Any]) -> None:
        if self.json_out is not None:
            self.json_out.write(event)
        if self.service is not None:
            self.service.publish(event)

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
            for trade in list(self.live.values()):
                trade.tracker.expire(now)
                await self._save_outcome(trade)
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
        """One discovery and gating cycle; members enter the refresh schedule, leavers drop out.

        ``--tokens`` and the mints watched from Telegram (``/watch``, kept in the store) are checked
        in the same round as the feeds' candidates, so their pools are fetched in shared batches.
        """
        universe = self.universe
        async with self._universe_round:
            now = self.now()
            await self._load_universe(now)
            watch = list(self.watch)
            if universe.store is not None:
                watch += await universe.store.watched_mints()
            report = await universe.refresh(list(dict.fromkeys(watch)), now)
            self.counters.discovery_rounds += 1
            await self._apply_round(report)
        self._gate_counts = (report.passed, report.failed, report.unverified)

    async def _load_universe(self, now: int) -> None:
        if not self._universe_loaded:
            self._universe_loaded = True
            restored = await self.universe.load(now)
            if restored:
                log.info("universe: %d token(s) restored from the store", restored)

    async def _apply_round(self, report: Any) -> None:
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
        self._note_rejections(report.changes)
        if report.entered or report.left:
            log.info("universe: %d member(s); %d entered, %d left", report.members, len(report.entered),
                     len(report.left))

    #: How many of the latest gate rejections the status keeps (the dashboard's REJECTED view).
    REJECTED_KEPT = 50

    def _note_rejections(self, changes: Mapping[str, Any]) -> None:
        """Keep each token's latest rejection (newest last); a token admitted again drops out."""
        from dexscan.status import RejectedRow

        for mint, ch in changes.items():
            self._rejected.pop(mint, None)
            if ch.action in ("rejected", "removed"):
                self._rejected[mint] = RejectedRow(ch.at, mint, self.universe.symbol(mint), ch.reason,
                                                   left=ch.action == "removed")
        while len(self._rejected) > self.REJECTED_KEPT:
            self._rejected.pop(next(iter(self._rejected)))

    async def _discovery_loop(self) -> None:
        while True:
            try:
                await self.discover()
            except SourceError as exc:
                log.warning("discovery failed, retrying at the next cycle: %s", exc)
            await self._sleep(self.settings.universe.discovery_interval_s)

    def request_watch(self, mint: str) -> None:
        """Check ``mint`` (just watched from Telegram) in the next on-demand round.

        Requests are coalesced: the first of a quiet spell is checked at once, those arriving while
        a round runs or within ``universe.watch_round_interval_s`` after it wait for the next one,
        which checks them all together. An on-demand round checks only the watched mints (no feed
        is asked), so a flood of ``/watch`` cannot multiply discovery rounds.
        """
        self._watch_requests[mint] = None
        self._wake_watch.set()

    async def _watch_loop(self) -> None:
        while True:
            await self._wake_watch.wait()
            self._wake_watch.clear()
            mints, self._watch_requests = list(self._watch_requests), {}
            try:
                await self.watch_round(mints)
            except SourceError as exc:
                log.warning("watched mints not checked now (%d), they are at the next discovery round: %s",
                            len(mints), exc)
            await self.clock.sleep(self.settings.universe.watch_round_interval_s)

    async def watch_round(self, mints: Sequence[str]) -> None:
        """One on-demand round: check just ``mints`` (:meth:`~dexscan.universe.Universe.watch_now`)."""
        if not mints:
            return
        async with self._universe_round:
            await self._load_universe(self.now())
            self.counters.watch_rounds += 1
            report = await self.universe.watch_now(mints, self.now())
            await self._apply_round(report)

    # -- status ---------------------------------------------------------------------------------

    def summary(self) -> str:
        """One line on what the run did (printed after ``--once``)."""
        st = self.status()
        return (f"dexscan: {st.universe_size} token(s) in the universe (gates: {st.gates_passed} passed, "
                f"{st.gates_failed} failed, {st.gates_unverified} unverified), {self.counters.snapshots} "
                f"snapshot(s) judged, {sum(self.counters.signals.values())} new signal(s), "
                f"{len(self.live)} live, {self.counters.outcomes_closed} closed")

    def status(self) -> Any:
        """A :class:`~dexscan.status.ScannerStatus` snapshot for the dashboard and the service."""
        from dexscan.status import ClosedRow, LiveRow, ScannerStatus

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
        passed, failed, unverified = self._gate_counts
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
            closed_signals=[ClosedRow.from_outcome(s, o, sid) for sid, s, o in self._closed_rows],
            rejected=list(self._rejected.values()),
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


    def new_signal_rows(self, now: float) -> list[Any]:
        """The dashboard's new-signal rows: one per move, listing every strategy that fired on it."""
        from dexscan.status import SignalRow

        return [SignalRow.from_move(move, now, self._strategy_notes) for move in self._new_rows]

    def _strategy_notes(self, strategy: str) -> tuple[str, ...]:
        scorer = getattr(self.detector, "scorer", None)
        return () if scorer is None else tuple(scorer.strategy_notes(strategy))


def move_members(candle: Sequence[tuple[int, Signal]], sig: Signal, window_s: float) -> list[tuple[int, Signal]]:
    """The earlier signals of ``sig``'s move, first one first (empty: ``sig`` starts a move).

    ``candle``: the signals stored for ``sig``'s token and 4H candle, in firing order (a 5m
    strategy's ``candle_ts`` is its 5m bar: it belongs to the 4H candle holding that bar). Moves are
    cut in that order: a signal joins the current move when it fired within ``window_s`` of the
    move's first signal, else it starts the next one. ``sig`` itself (same strategy and candle: the
    same natural key), other 4H candles and signals that fired after it are left out. ``window_s``
    0: no moves.
    """
    if window_s <= 0:
        return []
    h4 = Timeframe.H4.floor(sig.candle_ts)
    move: list[tuple[int, Signal]] = []
    for sid, s in candle:
        if s.key == sig.key or s.ts > sig.ts or Timeframe.H4.floor(s.candle_ts) != h4:
            continue
        if not move or s.ts - move[0][1].ts > window_s:
            move = [(sid, s)]
        else:
            move.append((sid, s))
    return move if move and sig.ts - move[0][1].ts <= window_s else []


def _market_cap(pair: PairSnapshot | None) -> float | None:
    """DexScreener's market cap, else its FDV (what the pair data carries; None when neither)."""
    if pair is None:
        return None
    return pair.market_cap if pair.market_cap is not None else pair.fdv


def source_status(st: Any, now: float) -> Any:
    """One provider's :class:`~dexscan.status.SourceStatus` from the HTTP layer's counters; its one
    budget cell is the provider's scarcest budget, chosen stably (:func:`dexscan.status.shown_budget`)."""
    from dexscan.status import BudgetUse, SourceState, SourceStatus

    state: SourceState
    if st.breaker == "open":
        state = "circuit open"
    elif st.requests and st.last_ok_at is None:
        state = "down"
    elif st.breaker == "half-open" or (st.last_ok_at is not None and st.error_total and now - st.last_ok_at > 600):
        state = "degraded"
    else:
        state = "ok"
    budgets = [BudgetUse(b.name, b.used, b.limit, b.window_s) for b in st.budgets]
    return SourceStatus.from_budgets(st.provider, state, st.latency_ewma_ms, st.requests, st.rate_limited,
                                     st.error_total, budgets)


# ---------------------------------------------------------------------------------------------
# `dexscan scan`
# ---------------------------------------------------------------------------------------------


class TextLines:
    """One readable line per signal and closed outcome, when stdout is neither a dashboard nor JSON."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, event: dict[str, Any]) -> None:
        if event.get("type") == "signal":
            s = event["signal"]
            lv = s.get("levels") or {}
            levels = (f" entry {lv['entry']:.6g} SL {lv['sl']:.6g} TP1 {lv['tp1']:.6g} TP2 {lv['tp2']:.6g} "
                      f"TP3 {lv['tp3']:.6g}") if lv else " (no ladder)"
            conf = (s.get("confidence") or {}).get("label", "not scored")
            who = s["symbol"] or s["mint"]
            line = f"#{s['id']} {s['layer']}/{s['strategy']} {who} at {s['price']:.6g}{levels} · {conf}"
        elif event.get("type") == "outcome" and (event.get("outcome") or {}).get("result") != "open":
            o = event["outcome"]
            line = f"#{event['signal_id']} closed: {o['result']} {o['realized_r']:+.2f}R"
        else:
            return
        self._stream.write(line + "\n")
        self._stream.flush()


def _host_port(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


async def unreachable_sources(settings: Settings, timeout_s: float = 4.0) -> dict[str, str]:
    """Each enabled market-data source whose host does not accept a TCP connection, with why.

    A connection costs no request budget, so this check can run before every start.
    """
    src = settings.sources
    targets = {name: cfg.base_url for name, cfg in
               (("jupiter", src.jupiter), ("dexscreener", src.dexscreener), ("geckoterminal", src.geckoterminal))
               if cfg.enabled}

    async def probe(url: str) -> str | None:
        hp = _host_port(url)
        if hp is None:
            return "not a URL"
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(*hp), timeout_s)
        except TimeoutError:
            return f"no answer within {timeout_s:g}s"
        except OSError as exc:
            return exc.strerror or type(exc).__name__
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return None

    results = await asyncio.gather(*(probe(u) for u in targets.values()))
    return {name: f"{urlsplit(targets[name]).hostname or mask_url(targets[name])}: {why}"
            for name, why in zip(targets, results, strict=True) if why}


def unreachable_message(problems: dict[str, str]) -> str:
    listed = "; ".join(problems.values())
    return (
        f"dexscan: no market-data source is reachable ({listed}). The scanner needs at least one of "
        "Jupiter, DexScreener or GeckoTerminal: check this machine's internet connection, proxy and "
        "firewall, or the base URLs in your config (`dexscan config show`); `dexscan doctor` tests each "
        "source in detail. To watch the scanner work without internet, run `dexscan scan --demo`: the "
        "same scanner on a simulated market served on this machine."
    )


def demo_db_path(settings: Settings) -> Path:
    return settings.data_dir() / "demo" / "dexscan-demo.db"


def _db_path(opts: ScanOptions, settings: Settings) -> Path:
    """``--db``, else the demo's own file (started afresh each run) or the configured database."""
    if opts.db:
        return Path(opts.db).expanduser()
    if opts.demo:
        db = demo_db_path(settings)
        _remove_db(db)
        return db
    return settings.db_file()


def _exists(path: Path) -> bool:
    return path.exists()


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    bot_api_journal(path).unlink(missing_ok=True)


def bot_api_journal(db: Path) -> Path:
    """Where the demo's Bot API fake keeps the chat's state next to a demo database, so a demo
    restarted on the same database talks to the same "Telegram" (message ids, delivered alerts)."""
    return db.with_name(db.name + ".botapi.jsonl")


async def load_calibrator(settings: Settings, store: Any) -> Any:
    """The confidence calibrator: the artifact file, else the newest one in the store, else None.

    Demo and live never share artifacts: a demo database (under the demo's own folder) reads the
    demo's ``calibrator.json`` there, and an artifact is refused when its ``world`` (what it was
    fitted on) is not the one being scanned — the live scanner never loads a demo calibrator.
    """
    from dexscan.calibration import Calibrator
    from dexscan.errors import ConfigError

    def world_and_path() -> tuple[str, Path]:
        demo_dir = demo_db_path(settings).parent.resolve()
        db = getattr(store, "path", None)
        db_path = Path(db).expanduser().resolve() if db else None
        legacy_demo = (settings.data_dir() / "demo.db").expanduser().resolve()
        demo = db_path is not None and (db_path == legacy_demo or demo_dir in db_path.parents)
        return ("demo", demo_dir / "calibrator.json") if demo else ("live", settings.calibrator_file())

    world, path = world_and_path()
    text: str | None = None
    if path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        text = await store.latest_calibrator()
    if not text:
        return None
    try:
        cal = Calibrator.from_json(text)
    except ConfigError as exc:
        log.warning("calibrator %s ignored (confidence stays uncalibrated): %s", path, exc)
        return None
    if cal.world != world:
        log.warning("calibrator %s ignored: it was fitted on %s data and this is a %s run "
                    "(demo and live never share artifacts)", cal.version, cal.world, world)
        return None
    return cal


def calibrator_label(calibrator: Any, settings: Settings) -> str:
    """The status line's calibrator: uncalibrated, no skill (with the measured base rate), or the
    calibrated artifact — each with the data span it was fitted on."""
    if calibrator is None or calibrator.n < settings.scoring.min_calibration_samples:
        return "uncalibrated"
    fmt = "%Y-%m-%d"
    span = (f"data {time.strftime(fmt, time.gmtime(calibrator.data_start))}→"
            f"{time.strftime(fmt, time.gmtime(calibrator.data_end))}")
    world = " (demo)" if calibrator.world == "demo" else ""
    if calibrator.status == "no skill":
        return f"no skill · {calibrator.no_skill_text(None)} · {span}{world}"
    skilled = ", ".join(sorted(k for k, v in calibrator.skill.items() if k != "all" and v.get("has_skill")))
    return (f"{calibrator.version} · n={calibrator.n} · ECE {calibrator.ece:.3f} · skill: {skilled or 'all'} · "
            f"{span}{world}")


def preload(opts: ScanOptions, telegram: bool) -> None:
    """Import every module the run will need now, before a simulated clock starts ticking.

    Some imports take seconds (aiogram ~2 s, matplotlib); done lazily inside the running loop they
    would freeze it, and a demo clock at 60x would skip minutes of market while it waits.
    """
    modules = ["dexscan.detector", "dexscan.chain.rpc", "dexscan.chain.mint", "dexscan.sources", "dexscan.universe",
               "dexscan.store", "dexscan.ladder", "dexscan.market", "dexscan.scoring", "dexscan.alerts.format",
               "dexscan.service", "dexscan.status", "dexscan.logs", "dexscan.chain.feed", "websockets.asyncio.client"]
    if opts.dashboard:
        modules.append("dexscan.ui.dashboard")
    if telegram:
        modules.append("dexscan.alerts.telegram")
    for name in modules:
        importlib.import_module(name)


async def run_scan(settings: Settings, args: argparse.Namespace) -> int:
    """``dexscan scan`` (and ``dexscan`` with no arguments)."""
    opts = ScanOptions.from_args(args)
    preload(opts, telegram=opts.demo or (settings.secrets.telegram_token is not None
                                         and bool(settings.telegram.chat_ids)))
    if opts.serve:
        from dexscan.service import parse_listen

        parse_listen(opts.serve)
    if opts.tokens:
        from dexscan.chain.mint import address_problem

        for mint in opts.tokens:
            problem = address_problem(mint)
            if problem is not None:
                raise InputError(f"--tokens {mint!r}: not a Solana address ({problem})")
    if opts.demo:
        return await _run_demo(settings, opts)
    db = _db_path(opts, settings)
    problems = await unreachable_sources(settings)
    enabled = sum(1 for s in (settings.sources.jupiter, settings.sources.dexscreener,
                              settings.sources.geckoterminal) if s.enabled)
    if len(problems) >= enabled:
        print(unreachable_message(problems), file=sys.stderr)
        return 1
    return await scan(settings, opts, RealClock(), db, mode="live")


async def demo_resume_at(db: Path) -> float | None:
    """Where a demo on ``db`` resumes its simulated clock: where the last run on it stopped (None:
    a new database, the world's own start)."""
    from dexscan.store import Store

    if not _exists(db):
        return None
    store = await Store.open(db)
    try:
        stored = await store.kv_get(DEMO_CLOCK_KEY)
    finally:
        await store.close()
    return float(stored) if stored else None


async def _run_demo(settings: Settings, opts: ScanOptions) -> int:
    from dexscan.demo.world import DemoWorld, demo_sim_config

    db = _db_path(opts, settings)
    async with DemoWorld(start_at=await demo_resume_at(db), telegram=True, sim_config=demo_sim_config(),
                         telegram_journal=bot_api_journal(db)) as world:
        assert world.clock is not None
        demo = world.apply(settings)
        if not opts.db and not settings.app.log_file:
            demo = demo.with_overrides({"app.log_file": str(db.with_suffix(".log"))})
        return await scan(demo, opts, world.clock, db, mode="demo")


async def scan(settings: Settings, opts: ScanOptions, clock: Clock, db: Path, mode: str = "live",
               ready: Callable[[Engine], None] | None = None,
               stopped: Callable[[Engine], Awaitable[None]] | None = None,
               stop: asyncio.Event | None = None) -> int:
    """Open everything the engine needs, run it until stopped (or one cycle), close everything.

    ``ready`` sees the engine before it starts; ``stopped`` runs after it stopped while the store,
    the clients and the local API are still open (tests and benchmarks inspect the run there).
    ``stop``, when given, stops the run too (``dexscan bot --demo`` sets it when its chat ends).
    """
    from dexscan.chain.mint import MintInspector
    from dexscan.chain.rpc import RpcPool
    from dexscan.detector import Detector
    from dexscan.logs import setup_logging
    from dexscan.sources import HttpLayer, build_clients
    from dexscan.store import Store

    # The database first: one it cannot write (a full disk) is a one-line StoreError (exit 2) before
    # the log file is made, and a failed open leaves no thread behind (issue 17 point 8).
    await (await Store.open(db)).close()
    log_file = settings.log_path() if settings.app.log_file else db.with_suffix(".log")
    setup_logging(settings.app.log_level, settings.app.log_format, file=log_file, secrets=settings.secret_values())
    log.info("dexscan scan (%s) starting; database %s", mode, db)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = _install_stop_signals(loop, stop)
    timer = loop.call_later(opts.run_for, stop.set) if opts.run_for else None
    wall_timer = _stop_after_real_seconds(loop, stop, opts.duration) if opts.duration else None
    try:
        async with AsyncExitStack() as stack:
            stores = []
            for _ in range(4):
                s = await Store.open(db)
                stack.push_async_callback(s.close)
                stores.append(s)
            store, history_store, universe_store, side_store = stores
            http = await stack.enter_async_context(HttpLayer(settings, clock))
            clients = build_clients(settings, http)
            rpc = RpcPool.from_settings(settings, clock)
            stack.push_async_callback(rpc.close)
            rpc.start()
            inspector = MintInspector(rpc, settings, clock, universe_store)
            calibrator = await load_calibrator(settings, store)
            detector = Detector(settings, calibrator)
            universe = build_universe(settings, universe_store, clients, inspector, clock)
            json_out: Any = None
            if opts.json:
                json_out = JsonLines(sys.stdout)
            elif not opts.dashboard and not opts.quiet:
                json_out = TextLines(sys.stdout)
            from dexscan.chain.feed import ChainFeed

            engine = Engine(settings, store, clock, http=http, clients=clients, universe=universe,
                            detector=detector, rpc=rpc, history_store=history_store, mode=mode,
                            json_out=json_out, tokens=opts.tokens,
                            calibrator_label=calibrator_label(calibrator, settings),
                            feed=None if opts.once else ChainFeed.from_settings(settings, clock, inspector))
            if opts.serve:
                from dexscan.service import Service, parse_listen

                host, port = parse_listen(opts.serve)
                engine.service = await stack.enter_async_context(
                    Service(side_store, engine.status, host, port, max_ws_clients=settings.service.max_ws_clients))
            extra: list[Callable[[], Awaitable[None]]] = []
            if engine.telegram_enabled and not opts.once:
                extra.append(_telegram_task(engine, db, clock, stop, stack))
            if opts.dashboard:
                from dexscan.ui.dashboard import Dashboard

                dashboard = Dashboard.from_settings(settings, engine.status)
                extra.append(lambda: dashboard.run(stop))
            if ready is not None:
                ready(engine)
            if opts.once:
                await engine.run_once()
                print(engine.summary(), file=sys.stderr)
            else:
                await engine.run(stop, extra)
            log.info("dexscan scan stopped: %d new signal(s), %d outcome(s) closed",
                     sum(engine.counters.signals.values()), engine.counters.outcomes_closed)
            if opts.dashboard:  # the dashboard is gone: what the run did, and where to look
                print(f"{engine.summary()}\ndatabase {db} · log {log_file}", flush=True)
            if stopped is not None:
                await stopped(engine)
    finally:
        if timer is not None:
            timer.cancel()
        if wall_timer is not None:
            wall_timer.cancel()
        for sig in installed:
            loop.remove_signal_handler(sig)
    return 0


def _telegram_task(engine: Engine, db: Path, clock: Clock, stop: asyncio.Event,
                   stack: AsyncExitStack) -> Callable[[], Awaitable[None]]:
    """Outbox delivery and bot commands, on their own connection to the same database file."""

    async def telegram() -> None:
        from dexscan.alerts.telegram import OutboxSender, run_telegram
        from dexscan.store import Store

        sender_store = await Store.open(db)
        stack.push_async_callback(sender_store.close)

        def keep(sender: OutboxSender) -> None:
            engine._wake_outbox = sender.wake

        # A rejected token pauses Telegram with one error line; the scanner keeps running.
        await run_telegram(engine.settings, sender_store, engine_bot_backend(engine, sender_store, clock), stop,
                           clock, on_sender=keep, exit_on_rejected_token=False)

    telegram.__name__ = "telegram"
    return telegram


def engine_bot_backend(engine: Engine, store: Any, clock: Clock) -> Any:
    """The bot's commands answered by the running scanner: ``/status`` from its live status,
    ``/check`` by running the gates when the stored verdicts are stale, ``/watch`` checked at once in
    a discovery round."""
    from dexscan.alerts.telegram import StoreBackend

    class EngineBackend(StoreBackend):
        async def status_text(self) -> str:
            return status_text(engine.status())

        async def watch(self, mint: str) -> str:
            await super().watch(mint)
            engine.request_watch(mint)
            return "Added to the watch list and being checked now; it is scanned if it passes every gate."

    async def check(mint: str) -> Sequence[Any]:
        verdicts: dict[str, Sequence[Any]] = await engine.universe.check([mint])
        return verdicts.get(mint, ())

    return EngineBackend(store, checker=check, clock=clock,
                         stale_after_s=engine.settings.universe.discovery_interval_s,
                         scorer=getattr(engine.detector, "scorer", None))


def status_text(st: Any) -> str:
    """A :class:`~dexscan.status.ScannerStatus` as a few plain lines (Telegram ``/status``)."""
    up = "" if st.started_at is None else f", up {int(st.now - st.started_at) // 60} min"
    sources = " · ".join(f"{s.name} {s.state}" + (f" {s.latency_ms:.0f} ms" if s.latency_ms is not None else "")
                         for s in st.sources) or "none"
    healthy = sum(1 for r in st.rpc if r.healthy)
    by_strategy = ", ".join(f"{k} {v}" for k, v in sorted(st.signals_by_strategy.items())) or "none yet"
    return "\n".join([
        f"Scanner: {st.mode} mode{up}",
        f"Universe: {st.universe_size} tokens (last gate round: {st.gates_passed} passed, {st.gates_failed} failed, "
        f"{st.gates_unverified} unverified); {st.warming_up} warming up",
        f"Sources: {sources}",
        f"RPC: {st.active_rpc or 'not used yet'} ({healthy}/{len(st.rpc)} endpoints up)",
        f"Signals since start: {sum(st.signals_by_strategy.values())} ({by_strategy}); "
        f"live {len(st.live_signals)}; closed {st.counters.get('outcomes_closed', 0)}",
        f"Alerts waiting: {st.outbox_backlog}",
    ])


def _stop_after_real_seconds(loop: asyncio.AbstractEventLoop, stop: asyncio.Event, seconds: float) -> threading.Timer:
    """``--duration``: real seconds, whatever the loop's clock is (the demo's runs on virtual time)."""
    timer = threading.Timer(seconds, loop.call_soon_threadsafe, (stop.set,))
    timer.daemon = True
    timer.start()
    return timer


def _install_stop_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> list[int]:
    """SIGINT/SIGTERM set ``stop`` once; a second signal gets the default (immediate) behaviour."""
    installed: list[int] = []

    def handler(signum: int) -> None:
        log.info("signal %d received: stopping", signum)
        stop.set()
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(signum)

    for signum in (os_signal.SIGINT, os_signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, handler, signum)
        except (NotImplementedError, RuntimeError):
            continue
        installed.append(signum)
    return installed


def build_universe(settings: Settings, store: Any, clients: Any, inspector: Any, clock: Clock) -> Any:
    from dexscan.universe import Universe

    return Universe(settings, store, clients, inspector, clock)
