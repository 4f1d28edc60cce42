"""The detector: one pipeline object that market, strategies, ladder and scoring run through.

The live engine, the demo and the backfill replay all drive a :class:`Detector`, so a backfill
result is a statement about the live scanner. Pure: no I/O, no clock — every event carries its time.

How to drive it
===============

History first, then events, per token (``mint``)::

    det = Detector(settings, calibrator)                  # calibrator: calibration.Calibrator | None
    det.bootstrap(mint, Timeframe.M5, bars_5m, symbol="WIF", pool=pool, as_of=now)
    det.bootstrap(mint, Timeframe.H1, bars_1h, as_of=now)  # any order; no signals from history
    det.bootstrap(mint, Timeframe.H4, bars_4h, as_of=now)
    signals = det.on_tick(mint, Tick.from_pair(snapshot), ctx)   # live: every poll
    signals = det.on_trade(mint, ts, price, volume, side, signer)  # live: every on-chain trade
    signals = det.on_bar(mint, Timeframe.M5, bar, ctx)           # replay: every completed bar
    signals = det.advance(mint, now)                             # time passed without data
    changes = det.drain_state_changes()                          # candle state transitions

* ``bootstrap`` takes *completed* bars only; pass ``as_of`` (the time the history was fetched) and
  bars still forming at that time are dropped (GeckoTerminal returns the current candle too).
* ``on_bar`` takes completed bars of 5m, 1h or 4h. Replay must feed them in the order
  :func:`dexscan.market.time_ordered` gives (by end time, shorter timeframe first). 5m bars drive
  everything (ignition, 5m strategies, the 1h/4H aggregates and the 4H close); 1h/4h bars keep the
  ATR books exact and are the only source when a token has no 5m bars. A bar at or before the
  token's last 5m bar is ignored, so replaying twice is harmless.
* ``on_tick`` takes live snapshots (:class:`dexscan.market.Tick`); a stale tick (older than the
  last one seen) is ignored. 5m bars are built from ticks as described in :mod:`dexscan.market`.
* ``advance(mint, ts)`` tells the detector time has reached ``ts`` with no data for the token: a
  due live 5m bar completes and windows that ended close (this is how a 4H close is confirmed on
  time when no tick arrives right after it). Calling it is optional; the next tick does the same.
* ``ctx`` (:class:`dexscan.scoring.MarketContext`) carries what the token's own bars cannot:
  market breadth, pool agreement, and (in replay) txns/liquidity/pair age. Optional.

What comes out
==============

Every call returns the :class:`~dexscan.domain.Signal` s the event caused, in the order found, with
``levels`` (:func:`dexscan.ladder.plan_levels`; None when there is not enough history, and then
``features["no_ladder"] = 1``) and ``confidence`` (:class:`dexscan.scoring.Scorer`) attached, and
``features`` = the scoring features plus the strategy's extras. Within one completed 5m bar the
order is: windows that closed in a gap before it, ignition (price observation at the bar's end:
price = close, volume = the bar's volume), 5m strategies, then the 1h/4H windows that close at its
end (confirmation). Feeding the same completed bars gives the same signals, bar by bar or in one
:meth:`Detector.replay`, live or in a backfill; a live run additionally judges ignition on every
tick inside a bar, which can only make it fire earlier.

The candle state machine
========================

Each (token, 4H candle) walks ``idle → ignited → confirmed | fizzled``, or ``idle → confirmed``
directly: a **missed** ignition (``CandleState.missed``; the confirmation signal then carries
``features["missed_ignition"] = 1``). ``reached_at`` is the first observation at which the price
(a tick, or a bar's high at the bar's end) reached ``open * (1 + confirmation.rise_pct/100)``;
``lead_time_s = reached_at - ignited_at`` — negative when the price got there before the ignition
fired. Transitions to ignited, confirmed and fizzled are queued for :meth:`drain_state_changes`
(candles that closed idle are not: they are the vast majority and carry no information).

``warming_up(mint)`` is the number of completed 5m bars still missing before ignition can be
judged (``strategies.ignition.sma_bars``, 20): 0 = ready. Memory per token is bounded: rings of
``m5_capacity`` 5m bars (50 with the default strategies), 24 1h bars and 42 4H bars, plus one
:class:`~dexscan.ladder.WilderAtr` per 1h/4H book: the ladder's ATR is carried over the token's whole
history in O(1) state (never re-seeded on the ring), and the ATR percentile's "own history" is the
last 42 ATR values (7 days of 4H bars).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from dexscan.calibration import Calibrator
from dexscan.config import Settings
from dexscan.domain import Candle, Signal, Timeframe
from dexscan.errors import InputError
from dexscan.ladder import AtrReading, WilderAtr, atr_reading, plan_levels
from dexscan.market import (
    H1,
    H4,
    M5,
    MAX_VOLUME,
    Closed,
    FormingBar,
    LiveBar,
    Tick,
    TokenMarket,
)
from dexscan.plugins import build_strategies
from dexscan.scoring import RSI_PERIOD, VOLUME_Z_BARS, MarketContext, Scorer, compute_features
from dexscan.strategies import Confirmation, Ignition
from dexscan.strategies.base import GATE_SLACK, REL_TOL, Detection, Strategy
from dexscan.trade_bars import TradeBook

CandleStateName = Literal["idle", "ignited", "confirmed", "fizzled"]

H1_CAPACITY = 24
H4_CAPACITY = 42
_INF = float("inf")
_TIMEFRAMES = {M5: Timeframe.M5, H1: Timeframe.H1, H4: Timeframe.H4}
_TF_M5 = Timeframe.M5  # enum attribute access costs ~50 ns; this is read on every bar


@dataclass(frozen=True, slots=True)
class CandleState:
    """Where one (token, 4H candle) stands in the ignition/confirmation state machine."""

    mint: str
    candle_ts: int
    open: float
    state: CandleStateName
    closed: bool = False
    ignited_at: int | None = None
    ignition_price: float | None = None
    confirmed_at: int | None = None
    reached_at: int | None = None
    close: float | None = None

    @property
    def missed(self) -> bool:
        """Confirmed without an ignition first (counted against recall)."""
        return self.state == "confirmed" and self.ignited_at is None

    @property
    def lead_time_s(self) -> int | None:
        if self.ignited_at is None or self.reached_at is None:
            return None
        return self.reached_at - self.ignited_at


class _Track:
    """The candle state of one (token, 4H candle) as the detector follows it: ``now`` (replaced at
    every transition, so a state handed out never changes) and the price the +10% watch compares with."""

    __slots__ = ("now", "target")

    def __init__(self, mint: str, candle_ts: int, open_: float, factor: float) -> None:
        self.now = CandleState(mint, candle_ts, open_, "idle")
        t = open_ * factor
        self.target = t - REL_TOL * abs(t)


def _volume_gate(m: TokenMarket, i: int, n: int, k: float, sigmas: float, v: float) -> bool:
    """Whether ``v`` passes a volume gate (slack applied) on the token's ``i``-th window (``n`` bars)."""
    window = m.windows[i]
    mean = window.total / n
    return v >= k * mean and (not sigmas or v >= k * mean + sigmas * window.std_floor())


def _valid(c: Candle, tf: int) -> bool:
    return (c.ts % tf == 0 and 0 < c.low <= c.high < _INF and 0 < c.open < _INF and 0 < c.close < _INF
            and 0 <= c.volume <= MAX_VOLUME)


class Detector:
    """Market books + strategies + ladder + scoring for every token, driven by timed events."""

    def __init__(self, settings: Settings, calibrator: Calibrator | None = None,
                 strategies: Sequence[Strategy] | None = None) -> None:
        self.settings = settings
        self.strategies: list[Strategy] = build_strategies(settings) if strategies is None else list(strategies)
        self._price = tuple(s for s in self.strategies if s.observes_price)
        self._m5_strategies = tuple(s for s in self.strategies if Timeframe.M5 in s.bar_timeframes)
        self._h1_strategies = tuple(s for s in self.strategies if Timeframe.H1 in s.bar_timeframes)
        self._h4_strategies = tuple(s for s in self.strategies if Timeframe.H4 in s.bar_timeframes)
        ign = settings.strategies.params_for(Ignition.Params)
        self.warmup_bars = ign.sma_bars
        self._sma_bars = ign.sma_bars
        self._pump_factor = 1.0 + settings.strategies.params_for(Confirmation.Params).rise_pct / 100.0
        period = settings.ladder.atr_period
        windows = {ign.sma_bars}
        gates = {id(s): s.volume_gate() for s in self.strategies}
        for s in self.strategies:
            windows.update(s.volume_windows())
            gate = gates[id(s)]
            if gate is not None:
                windows.add(gate.bars)
        order = sorted(windows)  # TokenMarket.windows holds the windows in this order
        slack = 1.0 - GATE_SLACK

        def volume_plan(s: Strategy) -> tuple[int, int, float, float]:
            gate = gates[id(s)]
            if gate is None:
                return 0, 0, 0.0, 0.0
            return order.index(gate.bars), gate.bars, gate.mult * slack, gate.sigmas * slack

        # Strategies with their gates (Strategy.price_gate/volume_gate), slack applied: a bar or a
        # price below a gate cannot fire that strategy, so the detector does not call it.
        # (index of the gate's window in TokenMarket.windows, its bars (0: no volume gate), mult, sigmas)
        self._price_plan = tuple(
            (s, 0.0 if (factor := s.price_gate()) is None else factor * slack, *volume_plan(s)) for s in self._price)
        self._m5_plan = tuple((s, *volume_plan(s)) for s in self._m5_strategies)
        self.m5_capacity = max([ign.sma_bars, 3 * RSI_PERIOD + 1] + [s.bars_needed() for s in self.strategies])
        self._market_args = {
            "m5_capacity": self.m5_capacity,
            "h1_capacity": max(period + 1, H1_CAPACITY),
            "h4_capacity": max(period + 1, VOLUME_Z_BARS + 1, H4_CAPACITY),
            "volume_windows": tuple(sorted(windows)),
        }
        self.scorer = Scorer(settings.scoring, calibrator)
        self._tokens: dict[str, TokenMarket] = {}
        self._changes: list[CandleState] = []
        self._restored: dict[str, tuple[int, int, float]] = {}
        self.rejected_bars = 0
        self.rejected_ticks = 0
        self.rejected_trades = 0
        self.late_trades = 0

    def _track(self, m: TokenMarket, f: FormingBar) -> _Track:
        """The candle state of the forming 4H window ``f`` (new at the window's first observation)."""
        tr: _Track | None = m.track
        if tr is None or tr.now.candle_ts != f.ts:
            tr = m.track = self._new_track(m.mint, f.ts, f.open)
        f.track = tr
        f.reached = tr.now.reached_at is not None
        return tr

    def _new_track(self, mint: str, candle_ts: int, open_: float) -> _Track:
        tr = _Track(mint, candle_ts, open_, self._pump_factor)
        restored = self._restored.pop(mint, None)
        if restored is not None and restored[0] == candle_ts:
            tr.now = replace(tr.now, state="ignited", ignited_at=restored[1], ignition_price=restored[2])
        return tr

    def restore_ignition(self, mint: str, candle_ts: int, ignited_at: int, price: float) -> None:
        """After a restart: ``mint`` already ignited in the 4H candle ``candle_ts`` (a stored signal).

        The candle's state is rebuilt as ``ignited`` when the detector first sees that candle again,
        so its confirmation is not reported as a missed ignition and the lead time stays measured.
        """
        self._restored[mint] = (candle_ts, ignited_at, price)

    # -- tokens --------------------------------------------------------------------------------

    def _token(self, mint: str) -> TokenMarket:
        m = self._tokens.get(mint)
        if m is None:
            m = TokenMarket(mint, **self._market_args)  # type: ignore[arg-type]
            period = self.settings.ladder.atr_period
            m.h4.atr = WilderAtr(period, keep=H4_CAPACITY)  # carried over the whole history (ladder.py)
            m.h1.atr = WilderAtr(period, keep=H1_CAPACITY, mult=2.0)
            self._tokens[mint] = m
        return m

    def register(self, mint: str, symbol: str = "", pool: str | None = None) -> None:
        """Set the symbol and pool every signal of ``mint`` carries."""
        m = self._token(mint)
        if symbol:
            m.symbol = symbol
        if pool is not None:
            m.pool = pool

    def tokens(self) -> list[str]:
        return list(self._tokens)

    def __contains__(self, mint: object) -> bool:
        return mint in self._tokens

    def market(self, mint: str) -> TokenMarket | None:
        """The token's candle books (read-only use: dashboards, charts)."""
        return self._tokens.get(mint)

    def drop(self, mint: str) -> None:
        """Forget a token entirely (it left the universe)."""
        self._tokens.pop(mint, None)
        for s in self.strategies:
            s.forget(mint)

    def set_calibrator(self, calibrator: Calibrator | None) -> None:
        self.scorer.calibrator = calibrator

    # -- state ---------------------------------------------------------------------------------

    def warming_up(self, mint: str) -> int:
        """Completed 5m bars still missing before ignition can be judged (0 = ready)."""
        m = self._tokens.get(mint)
        return self.warmup_bars if m is None else m.warming_up(self.warmup_bars)

    def candle_state(self, mint: str) -> CandleState | None:
        """The state of the token's forming 4H candle (None before any observation in it)."""
        m = self._tokens.get(mint)
        if m is None or m.track is None:
            return None
        track: _Track = m.track
        return track.now

    def drain_state_changes(self) -> list[CandleState]:
        """Candle state transitions since the last call (ignited, confirmed, fizzled), in order."""
        out, self._changes = self._changes, []
        return out

    # -- history -------------------------------------------------------------------------------

    def bootstrap(self, mint: str, tf: Timeframe, candles: Iterable[Candle], symbol: str = "",
                  pool: str | None = None, as_of: int | None = None) -> None:
        """Load completed history bars (no signals). Bars still forming at ``as_of`` are dropped.

        5m bars go through the same book updates as :meth:`on_bar` (gap filling, 1h/4H
        aggregation) minus the strategies; bars at or before the token's last 5m bar are skipped.
        1h/4h bars are merged into their books (a provider's bar wins over an aggregate).
        """
        tfs = int(tf)
        if tfs not in _TIMEFRAMES:
            raise InputError(f"bootstrap {mint}: timeframe {Timeframe(tf).label} is not one of 5m, 1h, 4h")
        self.register(mint, symbol, pool)
        m = self._tokens[mint]
        good: list[Candle] = []
        for c in candles:
            if not _valid(c, tfs):
                self.rejected_bars += 1
            elif as_of is None or c.ts + tfs <= as_of:
                good.append(c)
        good.sort(key=lambda c: c.ts)
        if tfs != M5:
            m.merge_history(tfs, good)
            return
        for c in good:
            last = m.last5
            if (last is not None and c.ts <= last.ts) or (m.live is not None and c.ts >= m.live.ts):
                continue
            closed: list[Closed] = []
            m.open_bar(c, closed)
            m.close_bar(c, closed)
            m.settle(closed)

    # -- events --------------------------------------------------------------------------------

    def on_bar(self, mint: str, tf: Timeframe, candle: Candle, ctx: MarketContext | None = None) -> list[Signal]:
        """A completed bar (replay). Returns the signals it caused."""
        m = self._tokens.get(mint)
        if m is None:
            m = self._token(mint)
        c = candle
        found: list[Detection] = []
        if tf == M5:
            if not _valid(c, M5):
                self.rejected_bars += 1
                return []
            m5 = m.m5
            if m5 and c.ts <= m5[-1].ts:
                return []
            live = m.live
            if live is not None:
                if c.ts < live.ts:
                    return []
                m.live = None
                if c.ts > live.ts:
                    self._complete(m, live.finish(), found)
            self._complete(m, c, found)
        else:
            tfs = int(tf)
            if tfs not in _TIMEFRAMES:
                raise InputError(f"on_bar {mint}: timeframe {Timeframe(tf).label} is not one of 5m, 1h, 4h")
            if not _valid(c, tfs):
                self.rejected_bars += 1
                return []
            closed: list[Closed] = []
            m.book(tfs).official(c, closed)
            if closed:
                self._closed(m, closed, found)
        return self._signals(m, found, ctx) if found else []

    def replay(self, mint: str, events: Iterable[tuple[Timeframe, Candle]], ctx: MarketContext | None = None
               ) -> list[Signal]:
        """:meth:`on_bar` for each ``(timeframe, bar)`` in order (see :func:`~dexscan.market.time_ordered`)."""
        out: list[Signal] = []
        for tf, c in events:
            out.extend(self.on_bar(mint, tf, c, ctx))
        return out

    def on_tick(self, mint: str, tick: Tick, ctx: MarketContext | None = None) -> list[Signal]:
        """A live snapshot. Returns the signals it caused (including bars and windows it completed)."""
        m = self._tokens.get(mint)
        if m is None:
            m = self._token(mint)
        t = tick.ts
        price = tick.price
        if not 0 < price < _INF:
            self.rejected_ticks += 1
            return []
        volume = tick.volume_m5
        if volume is not None and not 0 <= volume <= MAX_VOLUME:
            volume = None
        if m.last_tick is not None and t < m.last_tick.ts:
            return []
        found: list[Detection] = []
        live = self._live_bar_at(m, t, price, volume, found)
        if live is None:
            return []
        live.update(t, price, volume)
        m.last_tick = tick
        self._observe(m, t, price, price, volume, found)
        return self._signals(m, found, ctx) if found else []

    def on_trade(self, mint: str, ts: int, price: float, volume: float, side: str, signer: str | None = None,
                 ctx: MarketContext | None = None) -> list[Signal]:
        """One on-chain trade of the token's streamed pool (USD price and volume, block time ``ts``).

        The 5m bar is built as from ticks, but its volume is the exact sum of its trades; the 1m
        bars and the trade flow (count, buy/sell split, distinct signers) go to the token's
        :class:`~dexscan.trade_bars.TradeBook`; ignition is judged at every trade with the exact
        volume of the last five minutes of trades (a poll's rolling ``m5``, measured). A trade
        older than the bar being built is late: counted, not judged.
        """
        m = self._tokens.get(mint)
        if m is None:
            m = self._token(mint)
        if not (0 < price < _INF and 0 <= volume <= MAX_VOLUME):
            self.rejected_trades += 1
            return []
        found: list[Detection] = []
        live = self._live_bar_at(m, ts, price, None, found)
        if live is None:
            self.late_trades += 1
            return []
        live.add_trade(ts, price, volume)
        book = m.trades
        if book is None:
            book = m.trades = TradeBook(flow_capacity=self.m5_capacity)
        book.add(ts, price, volume, side, signer)
        self._observe(m, ts, price, price, book.rolling_volume(), found)
        return self._signals(m, found, ctx) if found else []

    def _live_bar_at(self, m: TokenMarket, t: int, price: float, next_m5: float | None,
                     found: list[Detection]) -> LiveBar | None:
        """The 5m bar being built that ``t`` falls in (ticks and trades alike): the one in progress,
        or a new one after completing it (with ``next_m5``, a poll's rolling volume, when it has
        one) and closing what is due; None when ``t`` is before the bar in progress (late)."""
        live = m.live
        if live is not None and t < live.ts + M5:
            return None if t < live.ts else live
        if live is None:
            last = m.last5
            if last is not None and t < last.ts + M5:
                return None
        else:
            m.live = None
            self._complete(m, live.finish(t, next_m5), found)
        closed: list[Closed] = []
        m.advance_to(t - t % M5, closed, live=True)
        if closed:
            self._closed(m, closed, found)
        return m.begin_live(t, price)

    def advance(self, mint: str, ts: int, ctx: MarketContext | None = None) -> list[Signal]:
        """Time reached ``ts`` without data for ``mint``: complete what is due."""
        m = self._tokens.get(mint)
        if m is None:
            return []
        found: list[Detection] = []
        live = m.live
        if live is not None and ts >= live.ts + M5:
            m.live = None
            self._complete(m, live.finish(), found)
        if m.trades is not None:
            m.trades.close_until(ts)
        closed: list[Closed] = []
        m.advance_to(ts, closed, live=True)
        if closed:
            self._closed(m, closed, found)
        return self._signals(m, found, ctx) if found else []

    # -- the pipeline --------------------------------------------------------------------------

    def _complete(self, m: TokenMarket, c: Candle, found: list[Detection]) -> None:
        """One completed 5m bar through the market and every strategy (see the module docstring).

        :meth:`TokenMarket.open_bar`, the price observation at the bar's end (:meth:`_observe`), the
        5m strategies behind their gates, :meth:`TokenMarket.close_bar`; :meth:`bootstrap` runs the
        same two market steps without the judging in between.
        """
        closed: list[Closed] = []
        m.open_bar(c, closed)
        if closed:
            self._closed(m, closed, found)
            closed = []
        end = c.ts + M5
        v = c.volume
        self._observe(m, end, c.close, c.high, v, found)
        for s, i, n, k, sigmas in self._m5_plan:
            if n and not _volume_gate(m, i, n, k, sigmas, v):
                continue
            d = s.on_bar(m, _TF_M5, c, end)
            if d is not None:
                found.append(d)
        m.close_bar(c, closed)
        if closed:
            self._closed(m, closed, found)

    def _observe(self, m: TokenMarket, ts: int, price: float, high: float, volume: float | None,
                 found: list[Detection]) -> None:
        """A price observation: the candle state's +10% watch, then every price strategy."""
        f = m.h4.forming
        if f is None:
            return
        tr = f.track
        if tr is None:
            tr = self._track(m, f)
        if not f.reached and high >= tr.target:
            tr.now = replace(tr.now, reached_at=ts)
            f.reached = True
        for s, factor, i, n, k, sigmas in self._price_plan:
            if price < f.open * factor or (n and volume is not None and not _volume_gate(m, i, n, k, sigmas, volume)):
                continue
            d = s.on_price(m, ts, price, volume)
            if d is not None:
                self._found_on_price(m, tr, d, found)

    def _found_on_price(self, m: TokenMarket, tr: _Track, d: Detection, found: list[Detection]) -> None:
        found.append(d)
        now = tr.now
        if d.layer == "ignition" and now.ignited_at is None and d.candle_ts == now.candle_ts:
            tr.now = replace(now, state="ignited", ignited_at=d.ts, ignition_price=d.price)
            self._changes.append(tr.now)

    def _closed(self, m: TokenMarket, closed: list[Closed], found: list[Detection]) -> None:
        """Windows that closed: their strategies (book without the bar), the candle state, then store."""
        for ev in closed:
            if ev.real:
                strategies = self._h4_strategies if ev.tf == H4 else self._h1_strategies
                n0 = len(found)
                tf = _TIMEFRAMES[ev.tf]
                for s in strategies:
                    d = s.on_bar(m, tf, ev.candle, ev.end)
                    if d is not None:
                        found.append(d)
                if ev.tf == H4:
                    self._close_track(m, ev, found, n0)
            m.book(ev.tf).push(ev.candle)

    def _close_track(self, m: TokenMarket, ev: Closed, found: list[Detection], n0: int) -> None:
        c = ev.candle
        tr: _Track | None = m.track
        if tr is None or tr.now.candle_ts != c.ts:
            tr = self._new_track(m.mint, c.ts, c.open)
            if c.high >= tr.target:
                tr.now = replace(tr.now, reached_at=ev.end)
        m.track = None
        forming = m.h4.forming
        if forming is not None:  # the state is gone: the forming window (if any) must not keep it
            forming.track = None
        now = replace(tr.now, closed=True, close=c.close)
        for i in range(n0, len(found)):
            d = found[i]
            if d.layer == "confirmation" and d.candle_ts == c.ts:
                now = replace(now, state="confirmed", confirmed_at=d.ts)
                extras = dict(d.extras)
                extras["missed_ignition"] = 1.0 if now.missed else 0.0
                if now.lead_time_s is not None:
                    extras["lead_time_s"] = float(now.lead_time_s)
                found[i] = replace(d, extras=extras)
                break
        else:
            if now.state == "ignited":
                now = replace(now, state="fizzled")
        if now.state != "idle":
            self._changes.append(now)

    def _signals(self, m: TokenMarket, found: list[Detection], ctx: MarketContext | None) -> list[Signal]:
        """Detections -> signals with levels and confidence (the rare, slower part)."""
        h4 = list(m.h4.bars)
        h1 = list(m.h1.bars)
        tick = m.last_tick
        liquidity = ctx.liquidity_usd if ctx is not None and ctx.liquidity_usd is not None else (
            tick.liquidity_usd if tick is not None else None)
        key = (m.h4.version, m.h1.version)
        cached = m.atr_cache
        if cached is not None and cached[0] == key:
            atr: AtrReading = cached[1]
        else:
            atr = atr_reading(m.h4.atr, m.h1.atr)
            m.atr_cache = (key, atr)
        out: list[Signal] = []
        for d in found:
            plan = plan_levels(d.price, h4, h1, self.settings.ladder, d.signal_low, atr)
            feats = compute_features(m, d, ctx, atr, self._sma_bars)
            confidence = self.scorer.confidence(feats, d.strategy)
            features = {**feats, **d.extras}
            if plan.levels is None:
                features["no_ladder"] = 1.0
            out.append(Signal(
                mint=m.mint, strategy=d.strategy, layer=d.layer, candle_ts=d.candle_ts, ts=d.ts, price=d.price,
                reasons=d.reasons, symbol=m.symbol, pool=m.pool, rise_pct=d.rise_pct,
                volume_ratio=d.volume_ratio, levels=plan.levels, confidence=confidence, features=features,
                liquidity_usd=liquidity,
            ))
        return out
