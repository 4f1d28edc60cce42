"""The ATR ladder: stop and targets for a signal, and how they played out (SPEC §6). Pure.

**ATR.** 14-period ATR with Wilder smoothing over *completed* 4H candles: true range
``TR_i = max(H_i - L_i, |H_i - C_{i-1}|, |L_i - C_{i-1}|)`` for every candle after the first; the
first ATR is the plain mean of the first 14 TRs (so 15 candles are needed), then
``ATR_i = (ATR_{i-1} * 13 + TR_i) / 14``. With fewer than 15 completed 4H candles the ATR is the
same computation on completed 1H candles times 2 (``atr_source="1h*2"``, flag ``atr_from_1h``);
with fewer than 15 of those there is no ladder (flag ``insufficient_history``).

**Over the whole history, carried.** The ATR a signal uses is seeded on the token's *first* 15
candles and smoothed over every candle since, not re-seeded on the last few candles a ring holds
(re-seeding made the ATR depend on the ring size). :class:`WilderAtr` carries it bar by bar with
O(1) state (the previous close, the seed sum, the current ATR, the state before the last bar so an
official bar can replace an aggregate of the same window, and a bounded tail of recent ATR values
for the ATR percentile feature). Each 4H and 1H book of :class:`dexscan.market.TokenMarket` has one
(``BarBook.atr``, attached by the detector), fed by every completed bar the book stores — history
bootstrap, replay and live alike — so a live ladder and the same signal in a backfill get the same
ATR. A gap of ``k`` empty bars (O=H=L=C=previous close, TR 0) is applied in closed form,
``ATR * (13/14)^k``, however long the gap. A provider bar that corrects an *older* stored bar
(not the latest one) is not re-applied: the ATR cannot be rewound in O(1); replay and live only
replace the latest bar. :func:`wilder_atr_series` / :func:`ladder_atr` compute the same numbers
from a complete candle list (tests, reports).

**Levels.** ``SL = entry - 1.5 ATR`` (mode ``atr``) or ``SL = signal_candle_low - 0.5 ATR`` (mode
``structural``; without a known low it falls back to mode ``atr``, flag ``structural_without_low``).
A stop below ``entry * 0.5`` is clamped there (flag ``sl_clamped``). ``R = entry - SL`` and
``TP_k = entry + tp_r[k] * R`` with ``tp_r = (1.5, 3, 5)``. A ladder that would not satisfy
``SL < entry < TP1 < TP2 < TP3`` (zero ATR, a structural low above the entry, an R lost in float
rounding) is not produced (flag ``degenerate_ladder``): a signal without levels beats wrong levels.

**Outcome on the bar path** (:class:`LadderTracker`, one incremental tracker; :func:`track_outcome`
labels history with the same code):

* Only bars with ``opened_at <= ts < opened_at + time_stop`` count.
* Within a bar the stop is checked first: a bar that touches both the stop and a target is a
  stop. The stop in force for a bar is the one at the bar's start (SL, or the entry once TP1 was
  reached in an *earlier* bar); targets reached in a bar move the stop from the next bar on.
* Touches are inclusive (``low <= stop``, ``high >= target``, with the 1e-9 relative float
  tolerance of :func:`dexscan.strategies.base.meets`). Exits fill at the level price (no
  slippage model), so a stop is exactly -1R.
* **Results and realized R** — the result is the highest target reached, unless the trade ended at
  a stop:

  ============  ===============================================================  ==============
  result        when                                                             realized R
  ============  ===============================================================  ==============
  ``sl``        the original stop was touched before TP1                         -1
  ``breakeven`` TP1 (or TP2) was reached, then price came back to the entry      0
  ``tp3``       TP3 was reached (the trade is done)                              tp_r[2] (5)
  ``tp2``       TP2 reached, neither TP3 nor the entry stop before the time stop R at last close
  ``tp1``       TP1 reached, neither TP2 nor the entry stop before the time stop R at last close
  ``expired``   no target and no stop within the time stop                       R at last close
  ``open``      still running (mark-to-market R at the last close so far)        R at last close
  ============  ===============================================================  ==============

  ``max_r`` is the best R the price reached while the trade was open (a bar that stopped the trade
  does not count, since the stop came first; capped at TP3). ``hits`` maps each level touched
  (``tp1``, ``tp2``, ``tp3``, ``sl``, ``breakeven``) to the ``ts`` of the first bar that touched it.
* The time stop closes the trade when a bar at or after ``opened_at + time_stop`` arrives, when
  :meth:`LadderTracker.expire` is called with such a time, or — when the tracker knows its bar
  length ``bar_s`` — right after the last bar that ends by then. ``closed_at`` is then the
  expiry time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dexscan.config import LadderSettings
from dexscan.domain import Candle, Levels, Outcome
from dexscan.strategies.base import REL_TOL

TP_NAMES = ("tp1", "tp2", "tp3")


def true_ranges(candles: Sequence[Candle]) -> list[float]:
    """True range of every candle after the first (each needs the previous close)."""
    out: list[float] = []
    it = iter(candles)
    prev = next(it, None)
    if prev is None:
        return out
    pc = prev.close
    for c in it:
        out.append(true_range(c, pc))
        pc = c.close
    return out


def true_range(c: Candle, prev_close: float) -> float:
    """The largest of the candle's range and its high's and low's distances from ``prev_close``."""
    h, lo = c.high, c.low
    tr = h - lo
    if h - prev_close > tr:
        tr = h - prev_close
    if prev_close - lo > tr:
        tr = prev_close - lo
    return tr


def wilder_atr_series(candles: Sequence[Candle], period: int = 14) -> list[float]:
    """ATR after candle ``period``, ``period + 1``, ... (empty with fewer than ``period + 1`` candles)."""
    trs = true_ranges(candles)
    if len(trs) < period:
        return []
    atr = sum(trs[:period]) / period
    out = [atr]
    for tr in trs[period:]:
        atr = (atr * (period - 1) + tr) / period
        out.append(atr)
    return out


def wilder_atr(candles: Sequence[Candle], period: int = 14) -> float | None:
    series = wilder_atr_series(candles, period)
    return series[-1] if series else None


@dataclass(frozen=True, slots=True)
class LadderPlan:
    """The levels of a signal, or None with the flags saying why not."""

    levels: Levels | None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AtrReading:
    """The ATR a ladder uses: value, source (``4h`` or ``1h*2``), flags, and its history series."""

    value: float | None
    source: str | None
    flags: tuple[str, ...]
    series: tuple[float, ...] = ()  # Wilder ATR after each candle of the source (x2 for 1h*2)


def ladder_atr(h4: Sequence[Candle], h1: Sequence[Candle], period: int = 14) -> AtrReading:
    """4H ATR when 15 completed 4H candles exist, else 1H ATR x 2 (flagged), else none (flagged)."""
    if len(h4) >= period + 1:
        series = wilder_atr_series(h4, period)
        return AtrReading(series[-1], "4h", (), tuple(series))
    if len(h1) >= period + 1:
        series = [a * 2.0 for a in wilder_atr_series(h1, period)]
        return AtrReading(series[-1], "1h*2", ("atr_from_1h",), tuple(series))
    return AtrReading(None, None, ("insufficient_history",))


class WilderAtr:
    """Wilder ATR of one book's completed bars, carried over the whole history in O(1) state.

    Feed it every completed bar in time order (:meth:`push`), empty gap bars with :meth:`flat`, a
    replacement of the latest bar with :meth:`replace_last`; :meth:`reset` when the book is rebuilt
    from history. ``mult`` scales what it reports (2 for the 1H fallback). ``keep`` bounds the tail
    of recent ATR values kept for the ATR percentile feature.
    """

    __slots__ = ("_atr", "_count", "_prev_close", "_seed", "_undo", "keep", "mult", "period", "recent")

    def __init__(self, period: int = 14, keep: int = 42, mult: float = 1.0) -> None:
        if period < 1:
            raise ValueError(f"ATR period must be >= 1, got {period}")
        self.period = period
        self.keep = max(1, keep)
        self.mult = mult
        self.recent: deque[float] = deque(maxlen=self.keep)
        self._count = 0  # bars seen
        self._prev_close: float | None = None
        self._seed = 0.0  # sum of the first `period` TRs
        self._atr: float | None = None
        self._undo: tuple[int, float | None, float, float | None] | None = None

    def reset(self) -> None:
        self.recent.clear()
        self._count = 0
        self._prev_close = None
        self._seed = 0.0
        self._atr = None
        self._undo = None

    @property
    def bars(self) -> int:
        """Completed bars seen (15 are needed for a 14-period ATR)."""
        return self._count

    @property
    def value(self) -> float | None:
        """The current ATR (times ``mult``), None before ``period + 1`` bars."""
        return None if self._atr is None else self._atr * self.mult

    def _tr(self, tr: float) -> None:
        """One true range into the seed or the smoothing (the bar is already counted)."""
        p = self.period
        n_tr = self._count - 1  # TRs including this one
        if n_tr <= p:
            self._seed += tr
            if n_tr == p:
                self._atr = self._seed / p
        else:
            assert self._atr is not None
            self._atr = (self._atr * (p - 1) + tr) / p
        if self._atr is not None:
            self.recent.append(self._atr * self.mult)

    def push(self, candle: Candle) -> None:
        """The next completed bar."""
        pc = self._prev_close
        undo = (self._count, pc, self._seed, self._atr)
        self._count += 1
        self._prev_close = candle.close
        if pc is not None:
            self._tr(true_range(candle, pc))
        self._undo = undo

    def replace_last(self, candle: Candle) -> None:
        """The latest bar was replaced (an official bar over an aggregate of the same window)."""
        undo = self._undo
        if undo is None:
            return
        count, pc, seed, atr = undo
        if self._atr is not None and self.recent:
            self.recent.pop()  # the value the replaced bar appended (the tail it pushed out stays out)
        self._count, self._prev_close, self._seed, self._atr = count, pc, seed, atr
        self.push(candle)

    def flat(self, k: int) -> None:
        """``k`` empty bars at the previous close (a gap): TR 0 each, in closed form."""
        if k <= 0 or self._prev_close is None:
            return
        self._undo = None
        p = self.period
        while k > 0 and self._atr is None:  # still seeding: at most `period` steps
            self._count += 1
            self._tr(0.0)
            k -= 1
        if k <= 0:
            return
        assert self._atr is not None
        f = (p - 1) / p
        shown = min(k, self.keep)
        self._atr *= f ** (k - shown)
        self._count += k - shown
        for _ in range(shown):
            self._count += 1
            self._atr *= f
            self.recent.append(self._atr * self.mult)


def atr_reading(h4: WilderAtr | None, h1: WilderAtr | None) -> AtrReading:
    """The ladder's ATR from carried states: 4H once it has a value, else 1H x 2 (flagged), else none.

    The same choice as :func:`ladder_atr`; ``h1`` must have been built with ``mult=2``.
    """
    if h4 is not None and h4.value is not None:
        return AtrReading(h4.value, "4h", (), tuple(h4.recent))
    if h1 is not None and h1.value is not None:
        return AtrReading(h1.value, "1h*2", ("atr_from_1h",), tuple(h1.recent))
    return AtrReading(None, None, ("insufficient_history",))


def plan_levels(entry: float, h4: Sequence[Candle], h1: Sequence[Candle], settings: LadderSettings,
                signal_low: float | None = None, atr: AtrReading | None = None) -> LadderPlan:
    """The ATR ladder for an entry, from completed 4H (or 1H) candles known at signal time.

    ``atr`` may be passed when the caller already computed :func:`ladder_atr` on the same books.
    """
    reading = ladder_atr(h4, h1, settings.atr_period) if atr is None else atr
    flags = reading.flags
    if reading.value is None or reading.source is None:
        return LadderPlan(None, flags)
    atr_value, source = reading.value, reading.source
    if not entry > 0 or not atr_value > 0:
        return LadderPlan(None, (*flags, "degenerate_ladder"))
    mode = settings.sl_mode
    if mode == "structural" and signal_low is not None:
        sl = signal_low - settings.structural_atr_mult * atr_value
    else:
        if mode == "structural":
            flags = (*flags, "structural_without_low")
        sl = entry - settings.sl_atr_mult * atr_value
    floor = entry * settings.sl_floor_frac
    if sl < floor:
        sl = floor
        flags = (*flags, "sl_clamped")
    r = entry - sl
    tp1, tp2, tp3 = (entry + k * r for k in settings.tp_r)
    if not (sl < entry < tp1 < tp2 < tp3):
        return LadderPlan(None, (*flags, "degenerate_ladder"))
    return LadderPlan(Levels(entry, sl, tp1, tp2, tp3, atr_value, source, mode, flags), flags)


def stop_in_force(levels: Levels, tp1_hit: bool, breakeven_after_tp1: bool) -> float:
    """The stop that applies: the ladder's SL, or the entry once TP1 was hit when
    ``ladder.breakeven_after_tp1`` is on (SPEC §6). The one rule :class:`LadderTracker` exits by and
    the dashboard, ``/live`` and the bot show."""
    return levels.entry if breakeven_after_tp1 and tp1_hit else levels.sl


class LadderTracker:
    """Follows one signal's ladder bar by bar (live) — and, through :func:`track_outcome`, history.

    ``bar_s`` is the length of the bars fed (300 for 5m history); 0 (the default) for price
    points such as live ticks fed as one-point candles, where the time stop is decided by the first
    point at or after expiry or by :meth:`expire`.
    """

    __slots__ = (
        "_closed_at",
        "_exit_price",
        "_hits",
        "_last_close",
        "_max_r",
        "_next_tp",
        "_realized",
        "_result",
        "_risk",
        "_targets",
        "bar_s",
        "breakeven_after_tp1",
        "expires_at",
        "levels",
        "opened_at",
        "tp_r",
    )

    def __init__(self, levels: Levels, opened_at: int, *, time_stop_s: float = 86_400.0,
                 tp_r: Sequence[float] = (1.5, 3.0, 5.0), breakeven_after_tp1: bool = True,
                 bar_s: int = 0) -> None:
        if not levels.sl < levels.entry:
            raise ValueError(f"ladder stop {levels.sl} is not below the entry {levels.entry}")
        self.levels = levels
        self.opened_at = opened_at
        self.expires_at = opened_at + round(time_stop_s)
        self.tp_r = tuple(float(x) for x in tp_r)
        self.breakeven_after_tp1 = breakeven_after_tp1
        self.bar_s = bar_s
        self._risk = levels.entry - levels.sl
        self._targets = (levels.tp1, levels.tp2, levels.tp3)
        self._hits: dict[str, int] = {}
        self._next_tp = 0
        self._result = "open"
        self._realized = 0.0
        self._max_r = 0.0
        self._last_close: float | None = None
        self._closed_at: int | None = None
        self._exit_price: float | None = None

    @classmethod
    def from_settings(cls, levels: Levels, opened_at: int, settings: LadderSettings, bar_s: int = 0
                      ) -> LadderTracker:
        return cls(levels, opened_at, time_stop_s=settings.time_stop_h * 3600.0, tp_r=settings.tp_r,
                   breakeven_after_tp1=settings.breakeven_after_tp1, bar_s=bar_s)

    @property
    def closed(self) -> bool:
        return self._result != "open"

    @property
    def outcome(self) -> Outcome:
        if self._result == "open":
            realized = 0.0 if self._last_close is None else (self._last_close - self.levels.entry) / self._risk
            last = self._last_close
        else:
            realized = self._realized
            last = self._exit_price
        return Outcome(result=self._result, realized_r=realized, hits=dict(self._hits),  # type: ignore[arg-type]
                       closed_at=self._closed_at, last_price=last, max_r=self._max_r)

    def update(self, candle: Candle) -> Outcome:
        """Feed the next bar (or price point) of the path; returns the outcome so far."""
        if self._result != "open" or candle.ts < self.opened_at:
            return self.outcome
        if candle.ts >= self.expires_at:
            self._expire()
            return self.outcome
        lv = self.levels
        ts = candle.ts
        stop = stop_in_force(lv, self._next_tp > 0, self.breakeven_after_tp1)
        if candle.low <= stop + REL_TOL * abs(stop):
            moved = stop == lv.entry  # the SL is below the entry (checked when the tracker was made)
            name = "breakeven" if moved else "sl"
            self._hits[name] = ts
            self._close(name, 0.0 if moved else -1.0, ts, stop)
            return self.outcome
        targets = self._targets
        while self._next_tp < 3:
            target = targets[self._next_tp]
            if candle.high >= target - REL_TOL * target:
                self._hits[TP_NAMES[self._next_tp]] = ts
                self._next_tp += 1
            else:
                break
        best = (min(candle.high, lv.tp3) - lv.entry) / self._risk
        if best > self._max_r:
            self._max_r = best
        self._last_close = candle.close
        if self._next_tp == 3:
            self._max_r = max(self._max_r, self.tp_r[2])
            self._close("tp3", self.tp_r[2], ts, lv.tp3)
        elif self.bar_s and ts + self.bar_s >= self.expires_at:
            self._expire()
        return self.outcome

    def expire(self, now: int) -> Outcome:
        """Time reached ``now`` without more bars: apply the time stop if it is due."""
        if self._result == "open" and now >= self.expires_at:
            self._expire()
        return self.outcome

    def _expire(self) -> None:
        last = self.levels.entry if self._last_close is None else self._last_close
        result = "expired" if self._next_tp == 0 else TP_NAMES[self._next_tp - 1]
        self._close(result, (last - self.levels.entry) / self._risk, self.expires_at, last)

    def _close(self, result: str, realized: float, at: int, price: float) -> None:
        self._result = result
        self._realized = realized
        self._closed_at = at
        self._exit_price = price


def track_outcome(levels: Levels, opened_at: int, candles: Iterable[Candle], settings: LadderSettings,
                  bar_s: int = 300) -> Outcome:
    """Label a signal on a stored bar path (backfill): :class:`LadderTracker` run to the end.

    The result stays ``open`` when the bars end before the trade was decided (not a sample yet).
    """
    tracker = LadderTracker.from_settings(levels, opened_at, settings, bar_s=bar_s)
    for c in candles:
        tracker.update(c)
        if tracker.closed:
            break
    return tracker.outcome


def tp1_first(outcome: Outcome) -> bool | None:
    """The calibration label: TP1 reached before the stop within the time stop (None = open)."""
    if outcome.result == "open":
        return None
    return outcome.result in ("tp1", "tp2", "tp3", "breakeven")
