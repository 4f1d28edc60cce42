"""What the running scanner reports about itself: one immutable snapshot, read by every viewer.

The engine builds a fresh :class:`ScannerStatus` whenever someone asks (the dashboard a few times a
second, ``/healthz`` and ``/metrics`` at each request) from its live counters. Viewers never reach
into the engine: they read this snapshot, so the dashboard can be snapshot-tested from hand-built
data and the service can be tested without a running scanner.

Row types carry *values*, not formatted strings, so the dashboard decides how a number looks (and
colours it) and ``/metrics`` or ``--json`` can reuse the same rows. Build them with the ``from_*``
helpers from the domain objects; the engine then never re-implements R or duration arithmetic.

All times are UTC epoch seconds; ``now`` is a float because it comes from a :class:`~dexscan.clock.Clock`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from dexscan import ladder
from dexscan.alerts.format import reason_text
from dexscan.domain import Confidence, Layer, Levels, Outcome, OutcomeResult, Signal

if TYPE_CHECKING:
    from dexscan.sources.http import ProviderStats

SourceState = Literal["ok", "degraded", "down", "circuit open"]
#: States in which a source is serving no data at all (``/healthz`` is 503 when every source is here).
SOURCE_DOWN_STATES: frozenset[str] = frozenset({"down", "circuit open"})

#: Level names an :class:`~dexscan.domain.Outcome` records in ``hits`` that count as targets.
TARGET_LEVELS: tuple[str, ...] = ("tp1", "tp2", "tp3")


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """One named request budget of a provider: ``used`` of ``limit`` requests in ``window_s``."""

    name: str
    used: int
    limit: int
    window_s: float


def shown_budget(budgets: Sequence[BudgetUse]) -> BudgetUse | None:
    """The budget a one-cell view shows for a provider with several (DexScreener: 300/min for
    pairs, 60/min for profiles): always the scarcest one (fewest requests per second, then name),
    so the cell does not flip between buckets as their use changes."""
    return min(budgets, key=lambda b: (b.limit / b.window_s if b.window_s else math.inf, b.name), default=None)


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """Health and spend of one market-data provider (jupiter, dexscreener, geckoterminal, birdeye).

    ``requests``, ``rate_limited`` (HTTP 429 answers) and ``errors`` count since the process
    started; ``budget_used`` of ``budget_limit`` requests are spent in the current sliding window of
    ``budget_window_s`` seconds (for a provider with several budgets, the scarcest one: build it
    with :meth:`from_budgets`). ``latency_ms`` is a recent typical latency, None before the first call.
    """

    name: str
    healthy: bool
    state: SourceState
    latency_ms: float | None
    requests: int
    rate_limited: int
    errors: int
    budget_used: int
    budget_limit: int
    budget_window_s: float | None = None
    budgets: tuple[BudgetUse, ...] = ()

    @classmethod
    def from_budgets(
        cls, name: str, state: SourceState, latency_ms: float | None, requests: int, rate_limited: int, errors: int,
        budgets: Sequence[BudgetUse],
    ) -> SourceStatus:
        """A source whose ``budget_*`` fields are its :func:`shown_budget` (stable), with every
        budget kept in ``budgets`` for views that show them all."""
        shown = shown_budget(budgets)
        return cls(
            name=name, healthy=state == "ok", state=state, latency_ms=latency_ms, requests=requests,
            rate_limited=rate_limited, errors=errors, budget_used=shown.used if shown else 0,
            budget_limit=shown.limit if shown else 0, budget_window_s=shown.window_s if shown else None,
            budgets=tuple(budgets),
        )


@dataclass(frozen=True, slots=True)
class RpcEndpointStatus:
    """One Solana RPC endpoint of the failover pool. ``name`` is already masked (no keys)."""

    name: str
    healthy: bool
    breaker: str  # "closed" | "open" | "half-open"
    latency_ms: float | None
    slot_lag: int | None
    requests: int
    failures: int


@dataclass(frozen=True, slots=True)
class _SignalFacts:
    """What every row copies from its signal: when, which token, which strategy, the entry (the
    ladder's when there is a ladder, else the price at the signal) and the confidence."""

    ts: int
    mint: str
    symbol: str
    strategy: str
    layer: Layer
    entry: float
    confidence: Confidence | None


def _signal_fields(signal: Signal) -> dict[str, Any]:
    lv = signal.levels
    return {"ts": signal.ts, "mint": signal.mint, "symbol": signal.symbol, "strategy": signal.strategy,
            "layer": signal.layer, "entry": lv.entry if lv else signal.price, "confidence": signal.confidence}


@dataclass(frozen=True, slots=True)
class SignalRow(_SignalFacts):
    """A new signal as the "new signals" table shows it.

    ``entry`` is the ladder's entry when there is a ladder, else the price at the signal; the
    level fields are None when no ladder could be built (too little history, SPEC §6).
    """

    rise_pct: float | None
    volume_ratio: float | None
    sl: float | None
    tp1: float | None
    tp2: float | None
    tp3: float | None
    liquidity_usd: float | None
    reasons: tuple[str, ...]
    age_s: float
    signal_id: int | None = None
    #: every strategy of the move this row stands for (first one first; one alert, one row)
    strategies: tuple[str, ...] = ()
    signal_ids: tuple[int, ...] = ()
    #: what the scanner knows of those strategies' worth: "TP1 first 23% historically, no edge
    #: measured" (never a percentage without measured skill), "negative record: −0.96R mean over 53 signals"
    notes: tuple[str, ...] = ()

    @property
    def negative_record(self) -> bool:
        return any("negative record" in n for n in self.notes)

    @classmethod
    def from_move(cls, move: Sequence[tuple[int, Signal]], now: float,
                  notes: Callable[[str], Sequence[str]] | None = None) -> SignalRow:
        """One row for a move (see :func:`dexscan.signal_ledger.move_members`): the first signal's numbers,
        every strategy's name and reasons (tagged with the strategy when there are several), and
        ``notes(strategy)`` for each (tagged likewise)."""
        sid, lead = move[0]
        row = cls.from_signal(lead, now, sid)
        several = len(move) > 1
        tag = (lambda s: f"{s}: ") if several else (lambda s: "")
        reasons = tuple(f"{tag(s.strategy)}{reason_text(r)}" for _, s in move for r in s.reasons)
        shown: list[str] = []
        for _, s in move:
            for n in notes(s.strategy) if notes is not None else ():
                shown.append(f"{tag(s.strategy)}{n}")
        return replace(row, strategies=tuple(s.strategy for _, s in move), signal_ids=tuple(i for i, _ in move),
                       reasons=reasons, notes=tuple(shown))

    @classmethod
    def from_signal(cls, signal: Signal, now: float, signal_id: int | None = None) -> SignalRow:
        lv = signal.levels
        return cls(
            **_signal_fields(signal),
            rise_pct=signal.rise_pct,
            volume_ratio=signal.volume_ratio,
            sl=lv.sl if lv else None,
            tp1=lv.tp1 if lv else None,
            tp2=lv.tp2 if lv else None,
            tp3=lv.tp3 if lv else None,
            liquidity_usd=signal.liquidity_usd,
            reasons=tuple(reason_text(r) for r in signal.reasons),
            age_s=max(0.0, now - signal.ts),
            signal_id=signal_id,
        )


def r_multiple(signal: Signal, price: float | None) -> float | None:
    """(price − entry) / risk, the trade's result in R at ``price``; None without a usable ladder."""
    lv = signal.levels
    if lv is None or price is None or lv.risk <= 0:
        return None
    return (price - lv.entry) / lv.risk


def stop_in_force(levels: Levels | None, hits: Sequence[str] | Mapping[str, int],
                  breakeven_after_tp1: bool = True) -> float | None:
    """The stop that applies now, given the level names hit so far (an outcome's ``hits``):
    :func:`dexscan.ladder.stop_in_force`, the rule the tracker exits by. None without a ladder."""
    if levels is None:
        return None
    return ladder.stop_in_force(levels, "tp1" in hits, breakeven_after_tp1)


def open_r(signal: Signal, outcome: Outcome | None, price: float | None = None) -> float | None:
    """An open trade's result in R now: at ``price`` (the latest market price) or, without one,
    at the outcome's ``last_price``. What the dashboard's "R now", ``/signals`` and ``/live`` show."""
    return r_multiple(signal, price if price is not None else (outcome.last_price if outcome else None))


def _hits_in_order(outcome: Outcome | None) -> tuple[str, ...]:
    if outcome is None:
        return ()
    return tuple(sorted(outcome.hits, key=lambda name: (outcome.hits[name], name)))


@dataclass(frozen=True, slots=True)
class LiveRow(_SignalFacts):
    """A tracked (open) signal: where it stands now.

    ``stop`` is the stop in force (:func:`stop_in_force`): the ladder's SL, or the entry once TP1
    was hit (breakeven, SPEC §6, when ``breakeven_after_tp1``). ``hits`` lists the level names
    touched so far, in the order they were touched.
    """

    stop: float | None
    tp1: float | None
    tp2: float | None
    tp3: float | None
    price: float | None
    r_now: float | None
    max_r: float
    hits: tuple[str, ...]
    age_s: float
    signal_id: int | None = None
    reasons: tuple[str, ...] = ()

    @classmethod
    def from_signal(
        cls, signal: Signal, outcome: Outcome | None, now: float, price: float | None = None,
        signal_id: int | None = None, breakeven_after_tp1: bool = True,
    ) -> LiveRow:
        """``price`` is the latest market price; without one, the outcome's ``last_price`` is used.
        ``breakeven_after_tp1`` is ``ladder.breakeven_after_tp1`` of the settings."""
        lv = signal.levels
        current = price if price is not None else (outcome.last_price if outcome else None)
        hits = _hits_in_order(outcome)
        return cls(
            **_signal_fields(signal),
            stop=stop_in_force(lv, hits, breakeven_after_tp1),
            tp1=lv.tp1 if lv else None,
            tp2=lv.tp2 if lv else None,
            tp3=lv.tp3 if lv else None,
            price=current,
            r_now=open_r(signal, outcome, price),
            max_r=outcome.max_r if outcome else 0.0,
            hits=hits,
            age_s=max(0.0, now - signal.ts),
            signal_id=signal_id,
            reasons=tuple(reason_text(r) for r in signal.reasons),
        )


@dataclass(frozen=True, slots=True)
class ClosedRow(_SignalFacts):
    """A signal whose ladder has finished: outcome, realized R and how long it took.

    ``path`` is every level touched, in order, with the seconds after the signal it happened.
    """

    closed_at: int
    result: OutcomeResult
    realized_r: float
    max_r: float
    duration_s: int
    exit_price: float | None
    signal_id: int | None = None
    path: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_outcome(cls, signal: Signal, outcome: Outcome, signal_id: int | None = None) -> ClosedRow:
        """Raises ValueError for an open outcome: only closed trades belong in this table."""
        if not outcome.closed:
            raise ValueError(f"signal {signal.key} is still open; use LiveRow.from_signal for it")
        closed_at = outcome.closed_at
        if closed_at is None:
            closed_at = max(outcome.hits.values(), default=signal.ts)
        return cls(
            **_signal_fields(signal),
            closed_at=closed_at,
            result=outcome.result,
            realized_r=outcome.realized_r,
            max_r=outcome.max_r,
            duration_s=max(0, closed_at - signal.ts),
            exit_price=outcome.last_price,
            signal_id=signal_id,
            path=tuple((name, max(0, outcome.hits[name] - signal.ts)) for name in _hits_in_order(outcome)),
        )


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A token the gates kept out of the universe at its latest check (``left``: it was a member and
    was removed): "why isn't X in my universe"."""

    at: int
    mint: str
    symbol: str
    reason: str  # the universe book's reason, e.g. "mint_authority fail: mint authority is set (...)"
    left: bool = False


@dataclass(frozen=True, slots=True)
class ScannerStatus:
    """Everything the dashboard, ``/healthz`` and ``/metrics`` show, at one instant ``now``.

    ``local_zone`` is an IANA zone name (``app.timezone``). Gate counts are over the tokens checked
    in the current discovery cycle; ``warming_up`` counts universe tokens with fewer than 20
    completed 5m bars (SPEC §5). ``calibrator_label`` is "uncalibrated" or e.g.
    "v3 · n=812 · ECE 0.031". Signal lists may be in any order and any length: the dashboard sorts
    them newest first and shows as many as fit. ``signals_by_strategy`` counts signals emitted since
    start; ``counters`` holds any further monotonic counts worth exporting (e.g. ``bad_payloads``),
    exported as ``dexscan_<name>_total``.
    """

    now: float
    local_zone: str = "Asia/Kolkata"
    universe_size: int = 0
    gates_passed: int = 0
    gates_failed: int = 0
    gates_unverified: int = 0
    warming_up: int = 0
    calibrator_label: str = "uncalibrated"
    sources: Sequence[SourceStatus] = ()
    rpc: Sequence[RpcEndpointStatus] = ()
    active_rpc: str | None = None
    queue_depths: Mapping[str, int] = field(default_factory=dict)
    outbox_backlog: int = 0
    new_signals: Sequence[SignalRow] = ()
    live_signals: Sequence[LiveRow] = ()
    closed_signals: Sequence[ClosedRow] = ()
    rejected: Sequence[RejectedRow] = ()  # the latest gate rejections, one per token, any order
    signals_by_strategy: Mapping[str, int] = field(default_factory=dict)
    counters: Mapping[str, int] = field(default_factory=dict)
    started_at: float | None = None
    mode: str = "live"  # "live" | "demo" | "replay"
    stream: str | None = None  # the on-chain stream's one-cell summary (None: not configured)

    @property
    def all_sources_down(self) -> bool:
        """True when there are sources and none of them serves data (no data, no scanning)."""
        return bool(self.sources) and all(s.state in SOURCE_DOWN_STATES for s in self.sources)

    def source(self, name: str) -> SourceStatus | None:
        return next((s for s in self.sources if s.name == name), None)


def source_status(st: ProviderStats, now: float) -> SourceStatus:
    """One provider's :class:`SourceStatus` from the HTTP layer's counters; its one budget cell is
    the provider's scarcest budget, chosen stably (:func:`shown_budget`)."""
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


def status_text(st: ScannerStatus) -> str:
    """A status as a few plain lines (Telegram ``/status``)."""
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
