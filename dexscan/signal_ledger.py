"""The scanner's signals from the moment they are found: stored first, then shown, then followed.

The order is the product's promise (DESIGN §1): a signal, and each change of its outcome, is written
to the database together with its Telegram outbox rows *before* anyone is shown or sent anything
(the ``--json`` lines, ``/ws``, the dashboard, Telegram), and "already alerted" is the store's natural
key ``(mint, strategy, candle_ts)``: a signal found again after a restart is recognised there and
nothing is shown or sent twice.

**One alert per move.** A signal whose token and 4H candle already have a signal of another
strategy fired within ``scan.move_window_s`` of the move's first one joins that move
(:func:`move_members`, computed from the store, so a restart keeps moves whole): it is stored and
scored on its own as always, but its outbox row is a ``join`` carrying the whole move's card, which
the sender turns into an edit of the move's message rather than a second alert.

The :class:`SignalLedger` also follows the ladder of every live signal (prices, bars, the time
stop) until it closes; the :class:`~dexscan.engine.Engine` calls it under its write lock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from dexscan.config import Settings
from dexscan.domain import Candle, Outcome, PairSnapshot, Signal, Timeframe
from dexscan.domain_events import DomainEvent, OutcomeChanged, SignalStored
from dexscan.engine_ports import SignalDetector, SignalStore

if TYPE_CHECKING:
    from dexscan.alerts.format import CardExtras
    from dexscan.calibration import StrategyRecord
    from dexscan.clock import Clock
    from dexscan.ladder import LadderTracker

log = logging.getLogger(__name__)

M5 = int(Timeframe.M5)
#: Rows kept for the dashboard's "new" and "closed" tables.
ROWS_KEPT = 64


@dataclass(slots=True)
class LiveTrade:
    """One stored signal whose ladder is being followed until it closes."""

    signal_id: int
    signal: Signal
    tracker: LadderTracker
    outcome: Outcome | None
    last_fed: int


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


class LedgerCounters(Protocol):
    """The counters the ledger keeps (the engine's :class:`~dexscan.engine.EngineCounters`)."""

    signals: Counter[str]  # stored (new) signals by strategy
    duplicates: int  # signals the store already had (restart/replay): not shown again
    outcomes_closed: int


class SignalLedger:
    """Stores new signals and moving outcomes (with their outbox rows), then publishes them as
    domain events on ``events``; follows the ladders of the live signals.

    The engine tells it about its tokens through three callables: ``token_card(mint)`` (the token's
    name and latest pool snapshot, for an alert card), ``on_live(mint)`` (a signal with a ladder
    went live on it) and ``on_last_closed(mint)`` (its last live signal closed); and
    ``observe_latency(seconds)`` sees each new signal's detection latency.
    """

    def __init__(self, settings: Settings, store: SignalStore, clock: Clock, detector: SignalDetector,
                 chat_ids: tuple[int, ...], events: asyncio.Queue[DomainEvent], counters: LedgerCounters, *,
                 token_card: Callable[[str], tuple[str, PairSnapshot | None]],
                 on_live: Callable[[str], None], on_last_closed: Callable[[str], None],
                 observe_latency: Callable[[float], None]) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.detector = detector
        self.chat_ids = chat_ids
        self.events = events
        self.counters = counters
        self._token_card = token_card
        self._on_live = on_live
        self._on_last_closed = on_last_closed
        self._observe_latency = observe_latency
        self.live: dict[int, LiveTrade] = {}
        self.live_by_mint: dict[str, set[int]] = {}
        self.stored: deque[StoredSignal] = deque(maxlen=10_000)
        self.new_rows: deque[list[tuple[int, Signal]]] = deque(maxlen=ROWS_KEPT)  # moves, first signal first
        self.closed_rows: deque[tuple[int, Signal, Outcome]] = deque(maxlen=ROWS_KEPT)
        self._wake_outbox: Callable[[], None] | None = None
        self._zone = settings.local_zone()

    def wake_outbox_with(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (the Telegram sender's) whenever new alerts are queued in the outbox, so they
        are sent at once rather than at the sender's next idle tick."""
        self._wake_outbox = wake

    def now(self) -> int:
        return int(self.clock.now())

    # -- live trades ----------------------------------------------------------------------------

    def open_trade(self, signal_id: int, sig: Signal, outcome: Outcome | None) -> LiveTrade:
        """Follow the ladder of a stored signal (it has levels) from its firing time."""
        trade = LiveTrade(signal_id, sig, self._tracker(sig), outcome, sig.ts)
        self.live[trade.signal_id] = trade
        self.live_by_mint.setdefault(trade.signal.mint, set()).add(trade.signal_id)
        return trade

    def _tracker(self, sig: Signal) -> LadderTracker:
        from dexscan.ladder import LadderTracker

        assert sig.levels is not None
        return LadderTracker.from_settings(sig.levels, sig.ts, self.settings.ladder)

    def _drop_trade(self, trade: LiveTrade) -> None:
        self.live.pop(trade.signal_id, None)
        ids = self.live_by_mint.get(trade.signal.mint)
        if ids is not None:
            ids.discard(trade.signal_id)
            if not ids:
                del self.live_by_mint[trade.signal.mint]
                self._on_last_closed(trade.signal.mint)

    @staticmethod
    def feed_bars(trade: LiveTrade, bars: Iterable[Candle]) -> None:
        for bar in bars:
            if trade.tracker.closed:
                return
            if bar.ts >= trade.last_fed:
                trade.tracker.update(bar)
                trade.last_fed = max(trade.last_fed, bar.ts + M5)

    def feed_price(self, mint: str, ts: int, price: float) -> list[LiveTrade]:
        """A price of ``mint`` at ``ts`` for each of its live ladders; the trades it reached."""
        touched = []
        for sid in self.live_by_mint.get(mint, ()):
            trade = self.live[sid]
            if not trade.tracker.closed and ts >= trade.last_fed:
                trade.tracker.update(Candle(ts, price, price, price, price, 0.0))
                trade.last_fed = ts
            touched.append(trade)
        return touched

    async def feed_history(self, mint: str, bars: Sequence[Candle]) -> None:
        """The token's history arrived: its live ladders catch up on it; outcomes that moved are stored."""
        for sid in list(self.live_by_mint.get(mint, ())):
            trade = self.live[sid]
            self.feed_bars(trade, bars)
            await self.save_outcome(trade)

    async def expire(self, now: int) -> None:
        """Time stops: every live ladder is told the time; outcomes that moved are stored."""
        for trade in list(self.live.values()):
            trade.tracker.expire(now)
            await self.save_outcome(trade)

    # -- persistence, then fan-out ----------------------------------------------------------------

    async def record(self, found: Sequence[Found], trades: Sequence[LiveTrade]) -> None:
        for f in found:
            await self.save_signal(f)
        for trade in trades:
            await self.save_outcome(trade)

    async def save_signal(self, found: Found) -> None:
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
        self._observe_latency(max(0.0, stored_at - found.event_ts))
        log.info("signal #%d %s %s %s at %.6g (%s)%s", sid, sig.strategy, sig.symbol or sig.mint, sig.layer,
                 sig.price, ", ".join(str(r) for r in sig.reasons),
                 f"; joins the move of signal #{move[0][0]}" if move else "")
        if sig.levels is not None:
            self.open_trade(sid, sig, Outcome("open", 0.0))
            self._on_live(sig.mint)
        row = next((m for m in self.new_rows if move and m[0][0] == move[0][0]), None)
        if row is not None:
            row.append((sid, sig))
        else:
            row = [*move, (sid, sig)]
            self.new_rows.append(row)
        await self.events.put(SignalStored(sid, sig, tuple(i for i, _ in row), tuple(s.strategy for _, s in row)))
        if self._wake_outbox is not None and self.chat_ids:
            self._wake_outbox()

    async def _card_extras(self, sig: Signal, members: Sequence[Signal] = ()) -> CardExtras:
        from dexscan.alerts.format import CardExtras

        name, pair = self._token_card(sig.mint)
        scorer = getattr(self.detector, "scorer", None)
        no_skill: dict[str, str] = {}
        records: dict[str, StrategyRecord] = {}
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
            name=name,
            volume_h24_usd=pair.volume.h24 if pair else None,
            pair_created_at=pair.pair_created_at if pair else None,
            gates=await self.store.latest_verdicts(sig.mint),
            local_zone=self._zone,
            market_cap_usd=_market_cap(pair),
            no_skill=no_skill,
            records=records,
        )

    async def save_outcome(self, trade: LiveTrade, force: bool = False) -> None:
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
            await self.events.put(OutcomeChanged(trade.signal_id, trade.signal, out))
        if out.closed:
            self.counters.outcomes_closed += 1
            self.closed_rows.append((trade.signal_id, trade.signal, out))
            self._drop_trade(trade)
            if self._wake_outbox is not None and self.chat_ids:
                self._wake_outbox()


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
