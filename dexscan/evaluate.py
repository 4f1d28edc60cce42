"""``dexscan evaluate`` and ``dexscan calibrate``: labels, replay, purged folds, metrics.

The replay pushes stored history through the live :class:`~dexscan.detector.Detector` in time
order (a bar becomes visible only when it closes), so a number in the report is a statement about
the scanner itself. Outcomes come from the same ladder code that tracks live signals.

Validation is walk-forward over contiguous time blocks: a sample (a 4H candle, or a signal with
its outcome window ``ts → ts + time stop``) belongs to a block only if its whole window lies
inside it; samples that straddle a boundary are purged, and samples that start within the
embargo after a block are dropped, so neighbouring blocks never share information through
overlapping outcomes. Calibration is fitted on earlier blocks and judged on the next one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dexscan.domain import Outcome, Signal, Timeframe

NO_5M_DATA = "no 5m data"
#: Outcomes that mean TP1 was reached before the stop (breakeven = TP1 first, then back to entry).
TP1_FIRST_RESULTS = frozenset({"tp1", "tp2", "tp3", "breakeven"})
FLOAT_DIGITS = 6

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
        """Ignition → +threshold reached; None when either is unknown (never negative)."""
        if self.ignited_at is None or self.reached_at is None:
            return None
        return max(0, self.reached_at - self.ignited_at)


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
        return self.outcome is not None and self.outcome.result in TP1_FIRST_RESULTS

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
# Purged walk-forward folds
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fold:
    """A contiguous time block ``[start, end)``; ``embargo_until`` = start of its usable part."""

    index: int
    start: int
    end: int
    embargo_until: int

    def holds(self, item: Windowed) -> bool:
        return self.embargo_until <= item.start and item.end <= self.end


def make_folds(start: int, end: int, n_folds: int, embargo_s: int, align: Timeframe = Timeframe.H4) -> list[Fold]:
    """``n_folds`` equal blocks of ``[start, end)`` on ``align`` boundaries; every block after the
    first starts with an embargo of ``embargo_s`` (the embargo after the previous test block)."""
    if end <= start:
        return []
    n = max(1, n_folds)
    edges = [start] + [align.floor(start + (end - start) * i // n) for i in range(1, n)] + [end]
    folds: list[Fold] = []
    for i in range(n):
        lo, hi = edges[i], edges[i + 1]
        if hi <= lo:
            continue
        folds.append(Fold(len(folds), lo, hi, min(hi, lo + embargo_s) if i > 0 else lo))
    return folds


@dataclass(frozen=True, slots=True)
class FoldAssignment:
    """Which samples each fold tests, and how many were purged (straddling) or embargoed."""

    tests: tuple[tuple[int, ...], ...]  # per fold: indices of the samples it holds
    purged: int
    embargoed: int

    def train_before(self, fold: int) -> list[int]:
        """Walk-forward training set of ``fold``: every sample held by an earlier fold."""
        return sorted(i for f in range(fold) for i in self.tests[f])


def assign(items: Sequence[Windowed], folds: Sequence[Fold]) -> FoldAssignment:
    tests: list[list[int]] = [[] for _ in folds]
    purged = embargoed = 0
    for i, it in enumerate(items):
        home = next((f for f in folds if f.start <= it.start < f.end), None)
        if home is None:
            purged += 1
        elif home.holds(it):
            tests[home.index].append(i)
        elif it.start < home.embargo_until and it.end <= home.end:
            embargoed += 1
        else:
            purged += 1
    return FoldAssignment(tuple(tuple(t) for t in tests), purged, embargoed)


# ---------------------------------------------------------------------------------------------
# Metric math (pure, over labelled records)
# ---------------------------------------------------------------------------------------------


def ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


def f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def quantiles(values: Sequence[float], qs: Sequence[float]) -> list[float | None]:
    """Linear-interpolation quantiles (numpy's default), computed without numpy for exactness."""
    if not values:
        return [None for _ in qs]
    v = sorted(values)
    out: list[float | None] = []
    for q in qs:
        pos = (len(v) - 1) * q
        lo = math.floor(pos)
        hi = min(lo + 1, len(v) - 1)
        out.append(v[lo] + (v[hi] - v[lo]) * (pos - lo))
    return out


def distribution(values: Sequence[float]) -> dict[str, Any]:
    p25, med, p75 = quantiles(values, (0.25, 0.5, 0.75))
    return {
        "n": len(values),
        "p25": p25,
        "median": med,
        "p75": p75,
        "min": min(values) if values else None,
        "max": max(values) if values else None,
        "mean": sum(values) / len(values) if values else None,
    }


def candle_metrics(labels: Sequence[CandleLabel], missed_limit: int | None = None) -> dict[str, Any]:
    """Pump base rate and the ignition layer's recall / precision / F1 / lead time on 4H candles.

    Ignition metrics only count candles whose 5m bars the replay saw; without any, they say
    ``"no 5m data"`` instead of pretending to be zero.
    """
    pumps = [c for c in labels if c.pump]
    out: dict[str, Any] = {
        "candles": len(labels),
        "pumps": len(pumps),
        "pump_rate": ratio(len(pumps), len(labels)),
    }
    seen = [c for c in labels if c.has_5m]
    if not seen:
        out["ignition"] = {"status": NO_5M_DATA}
        return out
    ignited = [c for c in seen if c.ignited]
    seen_pumps = [c for c in seen if c.pump]
    caught = [c for c in seen_pumps if c.ignited]
    missed = sorted((c for c in seen_pumps if not c.ignited), key=lambda c: (c.candle_ts, c.mint))
    recall = ratio(len(caught), len(seen_pumps))
    precision = ratio(len(caught), len(ignited))
    leads = [float(c.lead_s) for c in caught if c.lead_s is not None]
    shown = missed if missed_limit is None else missed[:missed_limit]
    out["ignition"] = {
        "status": "ok",
        "candles_with_5m": len(seen),
        "pumps_with_5m": len(seen_pumps),
        "ignitions": len(ignited),
        "ignited_pumps": len(caught),
        "fizzled": len(ignited) - len(caught),
        "missed": len(missed),
        "recall": recall,
        "precision": precision,
        "f1": f1(precision, recall),
        "lead_time_s": distribution(leads),
        "missed_pumps": [
            {"mint": c.mint, "symbol": c.symbol, "pool": c.pool, "candle_ts": c.candle_ts,
             "rise_pct": c.rise_pct}
            for c in shown
        ],
    }
    return out


def outcome_table(records: Iterable[SignalRecord]) -> dict[str, Any]:
    """Counts of each outcome, TP1-first share and realized R of a group of signals."""
    recs = list(records)
    closed = [r for r in recs if r.labelled]
    results = Counter(r.outcome.result for r in recs if r.outcome is not None)
    rs = [r.outcome.realized_r for r in closed if r.outcome is not None]
    wins = sum(1 for r in closed if r.tp1_first)
    return {
        "signals": len(recs),
        "with_levels": sum(1 for r in recs if r.signal.levels is not None),
        "closed": len(closed),
        "outcomes": dict(sorted(results.items())),
        "tp1_first": wins,
        "tp1_first_rate": ratio(wins, len(closed)),
        "total_r": sum(rs) if rs else 0.0,
        "mean_r": sum(rs) / len(rs) if rs else None,
        "r_distribution": distribution(rs),
    }


def per_strategy(records: Sequence[SignalRecord]) -> dict[str, Any]:
    groups: dict[str, list[SignalRecord]] = {}
    for r in records:
        groups.setdefault(r.signal.strategy, []).append(r)
    return {name: outcome_table(group) for name, group in sorted(groups.items())}


def score_of(record: SignalRecord, prob: Mapping[int, float] | None = None, index: int | None = None) -> float | None:
    if prob is not None and index is not None and index in prob:
        return prob[index]
    return record.raw_score


def per_decile(records: Sequence[SignalRecord], score: Callable[[SignalRecord], float | None],
               n_bins: int = 10) -> list[dict[str, Any]]:
    """Outcomes by confidence decile (equal-count bins by rank, lowest scores first)."""
    scored = sorted(
        ((s, r) for r in records if r.labelled and (s := score(r)) is not None),
        key=lambda p: (p[0], p[1].signal.ts, p[1].signal.mint, p[1].signal.strategy),
    )
    if not scored:
        return []
    out = []
    n = len(scored)
    for d in range(n_bins):
        chunk = scored[d * n // n_bins:(d + 1) * n // n_bins]
        if not chunk:
            continue
        table = outcome_table(r for _, r in chunk)
        table.pop("r_distribution")
        out.append({
            "decile": d + 1,
            "score_min": chunk[0][0],
            "score_max": chunk[-1][0],
            "score_mean": sum(s for s, _ in chunk) / len(chunk),
            **table,
        })
    return out


# ---------------------------------------------------------------------------------------------
# Deterministic JSON
# ---------------------------------------------------------------------------------------------


def rounded(obj: Any, digits: int = FLOAT_DIGITS) -> Any:
    """A copy with every float rounded (and NaN/inf as None), so ``metrics.json`` is byte-stable."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, int | str):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None
        r = round(obj, digits)
        return 0.0 if r == 0 else r
    if isinstance(obj, Mapping):
        return {str(k): rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [rounded(v, digits) for v in obj]
    if hasattr(obj, "item"):  # numpy scalars
        return rounded(obj.item(), digits)
    raise TypeError(f"metrics: cannot serialise {type(obj).__name__}")
