"""Replay: stored history (bars, or the trade tape) through the live detector; labelled records.

The replay pushes stored history through the live :class:`~dexscan.detector.Detector` in time
order (a bar becomes visible only when it closes), so a number in the report is a statement about
the scanner itself. Outcomes come from the same ladder code that tracks live signals.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from dexscan import ladder
from dexscan.backfill import fill_gaps, resample
from dexscan.config import Settings
from dexscan.detector import CandleState, Detector
from dexscan.domain import MAIN_QUOTES, Candle, Outcome, Signal, Timeframe
from dexscan.ladder import track_outcome
from dexscan.market import time_ordered
from dexscan.plugins import build_strategies
from dexscan.scoring import (
    MarketContext,
    fresh_m5,
    market_breadth,
)
from dexscan.store import Store
from dexscan.strategies import Confirmation, Ignition, meets

# ---------------------------------------------------------------------------------------------
# Labelled records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CandleLabel:
    """One 4H candle of a token's main pool, labelled, with what the detector did in it."""

    mint: str
    symbol: str
    pool: str
    candle_ts: int
    open: float
    close: float
    rise_pct: float  # (close - open) / open, in percent
    pump: bool  # rise_pct >= the confirmation threshold
    has_5m: bool  # the candle's 5m bars were available to the replay
    ignited_at: int | None = None  # when the ignition signal fired in this candle
    reached_at: int | None = None  # first moment the price reached open * (1 + threshold)
    warming_up: bool = False  # fewer than the SMA's 20 completed 5m bars before the candle opened
    synthetic: bool = False  # an empty gap candle (no trades: volume 0, O=H=L=C), not a market observation
    partial_start: bool = False  # the pool's first candle, which the pool started inside

    @property
    def judged(self) -> bool:
        """The ignition layer could judge this candle: its 5m bars, after a full warm-up."""
        return self.has_5m and not self.warming_up

    @property
    def start(self) -> int:
        return self.candle_ts

    @property
    def end(self) -> int:
        return self.candle_ts + int(Timeframe.H4)

    @property
    def ignited(self) -> bool:
        return self.ignited_at is not None

    @property
    def lead_s(self) -> int | None:
        """Ignition → +threshold reached; negative when the price got there before the ignition."""
        if self.ignited_at is None or self.reached_at is None:
            return None
        return self.reached_at - self.ignited_at


@dataclass(frozen=True, slots=True)
class SignalRecord:
    """A historical signal with its ladder outcome and the window that outcome depended on."""

    signal: Signal
    outcome: Outcome | None
    horizon_s: int  # the ladder's time stop

    @property
    def start(self) -> int:
        return self.signal.ts

    @property
    def end(self) -> int:
        return self.signal.ts + self.horizon_s

    @property
    def labelled(self) -> bool:
        """Has a decided outcome (a signal whose window runs past the data is not a sample)."""
        return self.outcome is not None and self.outcome.closed

    @property
    def tp1_first(self) -> bool:
        return self.outcome is not None and ladder.tp1_first(self.outcome) is True

    @property
    def raw_score(self) -> float | None:
        conf = self.signal.confidence
        return None if conf is None else conf.raw_score


class Windowed(Protocol):
    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


# ---------------------------------------------------------------------------------------------
# History and replay
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenHistory:
    """The stored bars of one token's main pool (the pool its 4H candles are labelled on)."""

    mint: str
    symbol: str
    pool: str
    bars: Mapping[Timeframe, Sequence[Candle]]
    pair_created_at: int | None = None

    def label_bars(self) -> list[Candle]:
        """4H bars to label: stored ones, else built from 1h (or 5m) bars, UTC-aligned — plus the
        pool's first, partial 4H candle when the pool started inside it.

        A 4H window the finer bars only partly cover is normally not a candle (its open or close was
        not seen); the *first* window is the exception when the pool was created inside it (its
        ``pair_created_at`` is in the window, or unknown and the data starts there): its open is the
        pool's first trade, its close was seen, and GeckoTerminal reports it as a 4H candle too.
        Leaving it out dropped a real candle — often a launch pump — from every denominator.
        """
        stored = list(self.bars.get(Timeframe.H4) or ())
        tf = next((t for t in (Timeframe.H1, Timeframe.M5) if self.bars.get(t)), None)
        if tf is None:
            return stored
        finer = fill_gaps(self.bars[tf], tf)
        built = stored or resample(finer, tf, Timeframe.H4)
        w = self.partial_start()
        if w is not None and (not built or built[0].ts > w):
            group = [c for c in finer if c.ts < w + int(Timeframe.H4)]
            built = [Candle(w, group[0].open, max(c.high for c in group), min(c.low for c in group), group[-1].close,
                            float(sum(c.volume for c in group))), *built]
        return built

    def partial_start(self) -> int | None:
        """The 4H window the pool started inside (see :meth:`label_bars`), or None."""
        tf = next((t for t in (Timeframe.H1, Timeframe.M5) if self.bars.get(t)), None)
        if tf is None:
            return None
        bars = self.bars[tf]
        first, last = bars[0], bars[-1]
        w = Timeframe.H4.floor(first.ts)
        if first.ts == w or last.ts + int(tf) < w + int(Timeframe.H4):
            return None  # a whole window, or its close was never seen
        created = self.pair_created_at
        if created is not None and created < w:
            return None  # the pool existed before: the data merely starts late
        return w


@dataclass
class Replay:
    """Everything one replay produced: labelled candles and signals with their outcomes."""

    histories: list[TokenHistory]
    labels: list[CandleLabel]
    records: list[SignalRecord]
    span: tuple[int, int]
    events: int  # bars fed to the detector
    rejected_bars: int
    strategies: list[str]
    excluded_strategies: list[str]


def _span(histories: Sequence[TokenHistory]) -> tuple[int, int]:
    starts = [bars[0].ts for h in histories for bars in h.bars.values() if bars]
    ends = [bars[-1].ts + int(tf) for h in histories for tf, bars in h.bars.items() if bars]
    return (min(starts), max(ends)) if starts else (0, 0)


def run_replay(settings: Settings, histories: Sequence[TokenHistory]) -> Replay:
    """Feed every stored bar through one :class:`Detector` in time order; label candles and signals.

    All tokens share one time line (a bar is fed when it closes; at one end time 5m bars come before
    1h and 4h bars), so the market breadth in a signal's context is the share of tokens whose last
    completed 5m bar closed above its open, counting only bars that had closed by then: no future
    bar is visible at any step (:func:`dexscan.scoring.market_breadth`, the live scanner's definition).
    Strategies that are not point-in-time safe are left out (and listed in the report).
    """
    strategies = build_strategies(settings)
    safe = [s for s in strategies if s.point_in_time_safe]
    detector = Detector(settings, strategies=safe)
    streams: list[list[tuple[int, int, Timeframe, Candle]]] = []
    for i, h in enumerate(histories):
        detector.register(h.mint, h.symbol, h.pool)
        bars = dict(h.bars)
        first = _partial_candle(h)
        if first is not None:  # live, the detector sees the pool's first candle form: so does the replay
            bars[Timeframe.H4] = [first, *(bars.get(Timeframe.H4) or ())]
        streams.append([(c.ts + int(tf), i, tf, c) for tf, c in time_ordered(bars)])
    # each token's bars in the detector's order (market.time_ordered), the tokens on one time line
    events = list(heapq.merge(*streams, key=lambda e: e[0]))

    last5: dict[int, Candle] = {}
    signals: list[Signal] = []
    states: dict[tuple[str, int], CandleState] = {}
    k = 0
    while k < len(events):
        end = events[k][0]
        j = k
        while j < len(events) and events[j][0] == end:
            _, i, tf, c = events[j]
            if tf == Timeframe.M5:
                last5[i] = c
            j += 1
        breadth = market_breadth(fresh_m5(b, end - end % 300) for b in last5.values())
        for _, i, tf, c in events[k:j]:
            h = histories[i]
            ctx = MarketContext(market_breadth=breadth, pair_created_at=h.pair_created_at)
            signals.extend(detector.on_bar(h.mint, tf, c, ctx))
        for st in detector.drain_state_changes():
            states[(st.mint, st.candle_ts)] = st
        k = j

    return Replay(
        histories=list(histories),
        labels=_label_candles(settings, histories, states),
        records=_outcomes(settings, histories, signals),
        span=_span(histories),
        events=len(events),
        rejected_bars=detector.rejected_bars,
        strategies=[s.name for s in safe],
        excluded_strategies=[s.name for s in strategies if not s.point_in_time_safe],
    )


def _partial_candle(h: TokenHistory) -> Candle | None:
    """The pool's first, partial 4H candle when the stored 4H bars lack it (see :meth:`TokenHistory.label_bars`)."""
    w = h.partial_start()
    stored = h.bars.get(Timeframe.H4) or ()
    if w is None or any(c.ts == w for c in stored[:1]):
        return None
    bars = h.label_bars()
    return bars[0] if bars and bars[0].ts == w else None


def _label_candles(settings: Settings, histories: Sequence[TokenHistory],
                   states: Mapping[tuple[str, int], CandleState]) -> list[CandleLabel]:
    factor = 1.0 + settings.strategies.params_for(Confirmation.Params).rise_pct / 100.0
    warmup = settings.strategies.params_for(Ignition.Params).sma_bars
    out: list[CandleLabel] = []
    for h in histories:
        m5 = h.bars.get(Timeframe.M5) or ()
        m5_candles = {Timeframe.H4.floor(c.ts) for c in m5}
        m5_ends = [c.ts + int(Timeframe.M5) for c in m5]
        partial = h.partial_start()
        for c in h.label_bars():
            st = states.get((h.mint, c.ts))
            out.append(CandleLabel(
                mint=h.mint, symbol=h.symbol, pool=h.pool, candle_ts=c.ts, open=c.open, close=c.close,
                rise_pct=(c.close / c.open - 1.0) * 100.0, pump=meets(c.close, c.open * factor),
                has_5m=c.ts in m5_candles,
                ignited_at=None if st is None else st.ignited_at,
                reached_at=None if st is None else st.reached_at,
                warming_up=bisect_right(m5_ends, c.ts) < warmup,
                synthetic=c.volume == 0 and c.open == c.high == c.low == c.close,
                partial_start=c.ts == partial,
            ))
    out.sort(key=lambda lab: (lab.candle_ts, lab.mint))
    return out


def _outcomes(settings: Settings, histories: Sequence[TokenHistory], signals: Sequence[Signal]) -> list[SignalRecord]:
    """Each signal's ladder outcome on the finest bars of its pool after it fired (same ladder code)."""
    horizon = round(settings.ladder.time_stop_h * 3600)
    paths: dict[str, tuple[list[Candle], list[int], int]] = {}
    for h in histories:
        for tf in (Timeframe.M5, Timeframe.H1, Timeframe.H4):
            bars = list(h.bars.get(tf) or ())
            if bars:
                paths[h.mint] = (bars, [c.ts for c in bars], int(tf))
                break
    out: list[SignalRecord] = []
    for sig in signals:
        outcome = None
        path = paths.get(sig.mint)
        if sig.levels is not None and path is not None:
            bars, times, bar_s = path
            first = bisect_left(times, sig.ts)
            outcome = track_outcome(sig.levels, sig.ts, bars[first:], settings.ladder, bar_s=bar_s)
        out.append(SignalRecord(sig, outcome, horizon))
    out.sort(key=lambda r: (r.signal.ts, r.signal.mint, r.signal.strategy, r.signal.candle_ts))
    return out


async def load_histories(store: Store, mints: Sequence[str] | None = None) -> tuple[list[TokenHistory], list[str]]:
    """The main pool's bars of each token with stored history (or of ``mints``); plus notes on
    tokens left out."""
    spans = await store.candle_spans()
    by_mint: dict[str, dict[str, int]] = {}
    for row in spans:
        if row["timeframe"] not in (int(Timeframe.M5), int(Timeframe.H1), int(Timeframe.H4)):
            continue
        mint = row["mint"] or row["pool"]
        by_mint.setdefault(mint, {})
        by_mint[mint][row["pool"]] = by_mint[mint].get(row["pool"], 0) + int(row["n"])
    wanted = sorted(by_mint) if mints is None else list(dict.fromkeys(mints))
    notes: list[str] = []
    out: list[TokenHistory] = []
    for mint in wanted:
        pools = by_mint.get(mint)
        if not pools:
            notes.append(f"{mint}: no stored history (run `dexscan backfill --tokens {mint}`)")
            continue
        token = await store.token_row(mint)
        meta = {p["address"]: p for p in await store.pools_of(mint)}
        main = token["main_pool"] if token and token.get("main_pool") in pools else None
        if main is None:
            main = min(pools, key=lambda p: (
                (meta.get(p) or {}).get("quote_mint") not in MAIN_QUOTES,
                -((meta.get(p) or {}).get("liquidity_usd") or 0.0), -pools[p], p))
        bars = {tf: await store.candles(main, tf) for tf in (Timeframe.M5, Timeframe.H1, Timeframe.H4)}
        out.append(TokenHistory(
            mint=mint, symbol=str(token["symbol"]) if token else "", pool=main,
            bars={tf: b for tf, b in bars.items() if b},
            pair_created_at=(meta.get(main) or {}).get("pair_created_at"),
        ))
    return out, notes

