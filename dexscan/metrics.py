"""Metrics of a replay: purged walk-forward folds, metric math, held-out skill, audit, baselines.

Validation is walk-forward over contiguous time blocks: a sample (a 4H candle, or a signal with
its outcome window ``ts → ts + time stop``) belongs to a block only if its whole window lies
inside it; samples that straddle a boundary are purged, and samples that start within the
embargo after a block are dropped, so neighbouring blocks never share information through
overlapping outcomes. Calibration is fitted on earlier blocks and judged on the next one.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dexscan.backfill import fill_gaps, resample
from dexscan.calibration import NO_SKILL, Sample, fit_blocked_isotonic, fit_linear
from dexscan.config import Settings
from dexscan.domain import Layer, Signal, Timeframe
from dexscan.ladder import WilderAtr, atr_reading, plan_levels, track_outcome
from dexscan.plugins import STRATEGIES, build_gates
from dexscan.replay import CandleLabel, Replay, SignalRecord, Windowed
from dexscan.report import ChartData, PumpExample
from dexscan.skill import auc, brier_score, skill_scores
from dexscan.strategies import Confirmation, Ignition, meets

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


NO_5M_DATA = "no 5m data"


def candle_metrics(labels: Sequence[CandleLabel], missed_limit: int | None = None) -> dict[str, Any]:
    """Pump base rate and the ignition layer's recall / precision / F1 / lead time on 4H candles.

    Ignition metrics only count candles the ignition layer could judge (5m bars seen, warm-up
    done before the candle opened: the first candle of a token's data is "warming up", visibly,
    not a miss); without any 5m bars they say ``"no 5m data"`` instead of pretending to be zero.
    Synthetic empty candles (a gap without trades) are no market observation: they are left out of
    every denominator and counted on their own (``synthetic_empty_candles``). A pool's first,
    partial candle (the pool started inside it) is a real candle and counts (``partial_start_candles``).
    """
    synthetic = sum(1 for c in labels if c.synthetic)
    labels = [c for c in labels if not c.synthetic]
    pumps = [c for c in labels if c.pump]
    out: dict[str, Any] = {
        "candles": len(labels),
        "pumps": len(pumps),
        "pump_rate": ratio(len(pumps), len(labels)),
        "synthetic_empty_candles": synthetic,
        "partial_start_candles": sum(1 for c in labels if c.partial_start),
        "partial_start_pumps": sum(1 for c in labels if c.partial_start and c.pump),
    }
    if not any(c.has_5m for c in labels):
        out["ignition"] = {"status": NO_5M_DATA}
        return out
    seen = [c for c in labels if c.judged]
    warming = [c for c in labels if c.has_5m and c.warming_up]
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
        "candles_warming_up": len(warming),
        "pumps_warming_up": sum(1 for c in warming if c.pump),
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


def threshold_curve(scored: Sequence[tuple[float, bool]], positives: int, label: str, score: str,
                    steps: int = 20) -> dict[str, Any]:
    """Precision and recall of "score >= t" for t on a 0..1 grid.

    ``scored`` = (score, became a positive) per candidate; ``positives`` = all positives, caught
    or not, so recall counts what a threshold would have cost in missed pumps.
    """
    points = []
    for k in range(steps + 1):
        t = k / steps
        kept = [pos for s, pos in scored if s >= t]
        hits = sum(kept)
        points.append({"threshold": t, "kept": len(kept), "precision": ratio(hits, len(kept)),
                       "recall": ratio(hits, positives)})
    return {"label": label, "score": score, "positives": positives, "points": points}


# ---------------------------------------------------------------------------------------------
# Deterministic JSON
# ---------------------------------------------------------------------------------------------


#: Decimal places every float of ``metrics.json`` is rounded to.
FLOAT_DIGITS = 6


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


# ---------------------------------------------------------------------------------------------
# Metrics of a replay
# ---------------------------------------------------------------------------------------------

#: A fold's calibrator is fitted only on at least this many earlier labelled signals.
MIN_FOLD_TRAIN = 30


def _samples(records: Sequence[SignalRecord], idx: Iterable[int]) -> list[SignalRecord]:
    return [records[i] for i in idx if records[i].labelled and records[i].raw_score is not None]


def as_sample(record: SignalRecord) -> Sample:
    sig = record.signal
    return Sample(features=sig.features, strategy=sig.strategy, label=record.tp1_first, ts=sig.ts,
                  raw_score=record.raw_score,
                  realized_r=record.outcome.realized_r if record.outcome is not None else None)


@dataclass
class SkillRun:
    """Held-out skill of the fitted confidence model over the walk-forward folds.

    Fold ``f`` is predicted by a logistic regression fitted on folds ``< f`` and an isotonic map
    (at least ``min_block`` samples per block) fitted on the *out-of-fold* outputs of those folds
    (each fold ``j < f`` scored by the model of folds ``< j``); the reference forecast is the
    TP1-first base rate of folds ``< f`` for the signal's strategy. ``oof_scores``/``oof_labels`` are
    the out-of-fold model outputs the final artifact's isotonic map is fitted on.
    """

    metrics: dict[str, Any]
    per_fold: list[dict[str, Any]]
    oof_scores: list[float]
    oof_labels: list[bool]
    held: list[SignalRecord]


def _prior_rate(train: Sequence[Sample], strategy: str) -> float:
    own = [s for s in train if s.strategy == strategy]
    group = own or list(train)
    return sum(1 for s in group if s.label) / len(group)


def skill_validation(settings: Settings, replay: Replay) -> SkillRun:
    """Fit on earlier folds, judge on the next one; pooled held-out skill per strategy (see :class:`SkillRun`)."""
    sc = settings.scoring
    min_block = sc.min_block_samples
    embargo_s = round(settings.evaluate.embargo_days * 86_400)
    folds = make_folds(replay.span[0], replay.span[1], settings.evaluate.folds, embargo_s)
    sa = assign(replay.records, folds)
    tests = [_samples(replay.records, sa.tests[f.index]) for f in folds]
    held = [r for t in tests for r in t]
    oof: list[list[float]] = [[] for _ in folds]  # model output on fold j from the model of folds < j
    pred: list[float] = []
    prior: list[float] = []  # the hand-weighted raw score, isotonic-mapped on the earlier folds
    base: list[float] = []
    raw: list[float] = []
    lr_out: list[float] = []  # the regression's own output (before the isotonic map), for its ranking
    ys: list[bool] = []
    strat: list[str] = []
    per_fold: list[dict[str, Any]] = []
    for f in folds:
        test = [as_sample(r) for r in tests[f.index]]
        train = [as_sample(r) for j in range(f.index) for r in tests[j]]
        entry: dict[str, Any] = {"train": len(train), "test": len(test)}
        if len(train) < MIN_FOLD_TRAIN or not test:
            entry["model"] = f"not fitted (needs {MIN_FOLD_TRAIN} earlier labelled signals)"
            per_fold.append(entry)
            continue
        model = fit_linear(train, sc.regularization_c)
        out_scores = [model.prob(s.features, s.strategy, s.raw_score) for s in test]
        oof[f.index] = out_scores
        pool_s = [x for j in range(f.index) for x in oof[j]]
        pool_y = [r.tp1_first for j in range(f.index) if oof[j] for r in tests[j]]
        if len(pool_s) >= 2 * min_block:
            blocks = fit_blocked_isotonic(pool_s, pool_y, min_block)
            entry["model"] = (f"fitted; isotonic map of {len(blocks.values)} block(s) on {len(pool_s)} "
                              "out-of-fold outputs")
            probs = [blocks.predict(x) for x in out_scores]
        else:
            entry["model"] = (f"fitted; {len(pool_s)} out-of-fold outputs < {2 * min_block}: one block "
                              "(the earlier folds' base rate)")
            rate = sum(1 for s in train if s.label) / len(train)
            probs = [rate for _ in test]
        train_raw = [s.raw_score or 0.0 for s in train]
        prior_map = fit_blocked_isotonic(train_raw, [s.label for s in train], min_block)
        prior += [prior_map.predict(s.raw_score or 0.0) for s in test]
        fold_base = [_prior_rate(train, s.strategy) for s in test]
        fold_y = [s.label for s in test]
        entry.update(brier=brier_score(probs, [float(y) for y in fold_y]),
                     brier_base_rate=brier_score(fold_base, [float(y) for y in fold_y]))
        per_fold.append(entry)
        pred += probs
        base += fold_base
        raw += [r.raw_score or 0.0 for r in tests[f.index]]
        lr_out += out_scores
        ys += fold_y
        strat += [s.strategy for s in test]
    metrics: dict[str, Any] = {"min_block": min_block, "regularization_c": sc.regularization_c,
                               "model": "L2 logistic regression on the point-in-time features + strategy, "
                                        "blocked isotonic map on out-of-fold outputs",
                               "reference": "TP1-first base rate of the earlier folds, per strategy"}
    if not ys:
        metrics.update(status="no held-out predictions", n=0,
                       note="No fold had enough earlier labelled signals to fit a model on "
                            f"(needs {MIN_FOLD_TRAIN}); held-out skill cannot be judged, so no percentage is shown.")
    else:
        groups = {"all": list(range(len(ys)))}
        for i, s in enumerate(strat):
            groups.setdefault(s, []).append(i)
        by: dict[str, Any] = {}
        for name, idx in sorted(groups.items()):
            scores = skill_scores([pred[i] for i in idx], [base[i] for i in idx], [ys[i] for i in idx],
                                  ranking=[raw[i] for i in idx])
            prior_scores = skill_scores([prior[i] for i in idx], [base[i] for i in idx], [ys[i] for i in idx])
            scores["prior_brier_skill"] = prior_scores.get("brier_skill")
            scores["auc_model_output"] = auc([lr_out[i] for i in idx], [ys[i] for i in idx])
            bss = scores.get("brier_skill")
            has = bss is not None and bss > 0 and len(idx) >= min_block
            scores["has_skill"] = has
            scores["verdict"] = ("skill" if has else NO_SKILL if len(idx) >= min_block
                                 else f"{NO_SKILL} (fewer than {min_block} held-out signals)")
            by[name] = scores
        metrics.update(status="ok", n=len(ys), by_strategy=by)
    oof_scores = [x for j in range(len(folds)) for x in oof[j]]
    oof_labels = [r.tp1_first for j in range(len(folds)) if oof[j] for r in tests[j]]
    return SkillRun(metrics, per_fold, oof_scores, oof_labels, held)


def validation_metrics(settings: Settings, replay: Replay, skill: SkillRun | None = None) -> dict[str, Any]:
    """Per-fold and pooled metrics over purged walk-forward folds (see the module docstring)."""
    embargo_s = round(settings.evaluate.embargo_days * 86_400)
    folds = make_folds(replay.span[0], replay.span[1], settings.evaluate.folds, embargo_s)
    la = assign(replay.labels, folds)
    sa = assign(replay.records, folds)
    run = skill if skill is not None else skill_validation(settings, replay)
    out_folds = []
    for f in folds:
        out_folds.append({
            "index": f.index, "start": f.start, "end": f.end, "embargo_until": f.embargo_until,
            "candles": candle_metrics([replay.labels[i] for i in la.tests[f.index]], missed_limit=0),
            "signals": _short_table(replay.records[i] for i in sa.tests[f.index]),
            "skill": run.per_fold[f.index] if f.index < len(run.per_fold) else {},
        })
    all_labels = [replay.labels[i] for t in la.tests for i in t]
    all_records = [replay.records[i] for t in sa.tests for i in t]
    return {
        "scheme": "walk-forward blocks; models fitted on earlier blocks only",
        "folds": out_folds,
        "embargo_days": settings.evaluate.embargo_days,
        "horizon_h": settings.ladder.time_stop_h,
        "candles_embargoed": la.embargoed,
        "signals_purged": sa.purged,
        "signals_embargoed": sa.embargoed,
        "pooled": {
            "candles": candle_metrics(all_labels, missed_limit=0),
            "signals": _short_table(all_records),
            "skill": run.metrics,
        },
    }


def _short_table(records: Iterable[SignalRecord]) -> dict[str, Any]:
    t = outcome_table(records)
    t.pop("r_distribution")
    return t


# ---------------------------------------------------------------------------------------------
# Audit and baselines
# ---------------------------------------------------------------------------------------------


def ladder_audit(replay: Replay) -> dict[str, Any]:
    """What the outcome tables rest on: clamped stops, 1H-fallback ladders, signals without a ladder,
    and strategies that could not run (and why)."""
    by: dict[str, dict[str, int]] = {}
    for r in replay.records:
        sig = r.signal
        row = by.setdefault(sig.strategy, {"signals": 0, "without_ladder": 0, "sl_clamped": 0, "atr_from_1h": 0})
        row["signals"] += 1
        lv = sig.levels
        if lv is None:
            row["without_ladder"] += 1
            continue
        row["sl_clamped"] += "sl_clamped" in lv.flags
        row["atr_from_1h"] += "atr_from_1h" in lv.flags
    total = {k: sum(v[k] for v in by.values()) for k in ("signals", "without_ladder", "sl_clamped", "atr_from_1h")}
    with_5m = sum(1 for h in replay.histories if h.bars.get(Timeframe.M5))
    n = len(replay.histories)
    not_run: list[dict[str, str]] = [
        {"strategy": name, "why": "not point-in-time safe: a bar replay cannot reproduce what it sees live"}
        for name in replay.excluded_strategies]
    needs_5m = {name for name, cls in STRATEGIES.items()
                if Timeframe.M5 in cls.bar_timeframes or cls.observes_price}
    for name in replay.strategies:
        if name in needs_5m and with_5m < n:
            why = ("needs 5m bars; no token's stored history has any" if with_5m == 0
                   else f"needs 5m bars: ran on the {with_5m} of {n} tokens whose history has them")
            not_run.append({"strategy": name, "why": why})
    return {**total, "by_strategy": dict(sorted(by.items())), "strategies_not_run": not_run,
            "tokens_with_5m": with_5m, "tokens": n}


BASELINE_EVERY_CLOSE = "baseline: every 4H close"
BASELINE_RISE = "baseline: +{pct:g}% on the forming 4H, no volume rule"


def baseline_records(settings: Settings, replay: Replay) -> dict[str, list[SignalRecord]]:
    """Signals of two naive rules on the same data, the same ladder and the same outcome code:

    * entering at every 4H close (synthetic empty candles have no trade to enter on), and
    * entering the first time a bar inside the forming 4H candle closes at least
      ``strategies.ignition.rise_pct`` (+2%) above the candle's open — ignition without its volume rule
      (on the finest stored bars; the 4H close itself when only 4H bars exist).

    The ATR is the same full-history Wilder ATR (4H, else 1H x 2) as of the signal time.
    """
    ls = settings.ladder
    period = ls.atr_period
    horizon = round(ls.time_stop_h * 3600)
    rise_pct = settings.strategies.params_for(Ignition.Params).rise_pct
    factor = 1.0 + rise_pct / 100.0
    rise_name = BASELINE_RISE.format(pct=rise_pct)
    out: dict[str, list[SignalRecord]] = {BASELINE_EVERY_CLOSE: [], rise_name: []}
    h4s = int(Timeframe.H4)
    for h in replay.histories:
        h4 = h.label_bars()
        if h.bars.get(Timeframe.H1):
            h1 = fill_gaps(h.bars[Timeframe.H1], Timeframe.H1)
        elif h.bars.get(Timeframe.M5):
            h1 = resample(fill_gaps(h.bars[Timeframe.M5], Timeframe.M5), Timeframe.M5, Timeframe.H1)
        else:
            h1 = []
        path_tf = next((t for t in (Timeframe.M5, Timeframe.H1, Timeframe.H4) if h.bars.get(t)), None)
        if path_tf is None:
            continue
        path = list(h.bars[path_tf])
        times = [c.ts for c in path]
        candidates: list[tuple[int, str, float, int, float]] = []  # ts, rule, entry, candle_ts, low so far
        for c in h4:
            if c.volume == 0 and c.open == c.high == c.low == c.close:
                continue
            candidates.append((c.ts + h4s, BASELINE_EVERY_CLOSE, c.close, c.ts, c.low))
            inside = path[bisect_left(times, c.ts):bisect_left(times, c.ts + h4s)] if path_tf != Timeframe.H4 else [c]
            low = math.inf
            for b in inside:
                low = min(low, b.low)
                if meets(b.close, c.open * factor):
                    candidates.append((b.ts + int(path_tf), rise_name, b.close, c.ts, low))
                    break
        candidates.sort(key=lambda x: (x[0], x[1]))
        events = sorted([(c.ts + h4s, 1, c) for c in h4] + [(c.ts + 3600, 0, c) for c in h1],
                        key=lambda e: (e[0], e[1]))
        atr4, atr1 = WilderAtr(period), WilderAtr(period, mult=2.0)
        k = 0
        for ts, rule, entry, candle_ts, low in candidates:
            while k < len(events) and events[k][0] <= ts:
                (atr4 if events[k][1] else atr1).push(events[k][2])
                k += 1
            plan = plan_levels(entry, (), (), ls, low, atr_reading(atr4, atr1))
            layer: Layer = "confirmation" if rule == BASELINE_EVERY_CLOSE else "ignition"
            sig = Signal(mint=h.mint, strategy=rule, layer=layer, candle_ts=candle_ts, ts=ts, price=entry,
                         reasons=(), symbol=h.symbol, pool=h.pool, levels=plan.levels)
            outcome = None
            if plan.levels is not None:
                first = bisect_left(times, ts)
                outcome = track_outcome(plan.levels, ts, path[first:], ls, bar_s=int(path_tf))
            out[rule].append(SignalRecord(sig, outcome, horizon))
    return out


def strategy_worth(records: Sequence[SignalRecord], baselines: Mapping[str, Sequence[SignalRecord]]
                   ) -> dict[str, Any]:
    """Each strategy's TP1-first rate and mean R next to the baselines', and the lift over each."""
    tables = {name: _short_table(recs) for name, recs in baselines.items()}
    out: dict[str, Any] = {"baselines": tables, "strategies": {}}
    for name, t in per_strategy(records).items():
        t = {k: v for k, v in t.items() if k != "r_distribution"}
        lift = {}
        for b, bt in tables.items():
            lift[b] = {
                "tp1_first_rate": None if t["tp1_first_rate"] is None or bt["tp1_first_rate"] is None
                else t["tp1_first_rate"] - bt["tp1_first_rate"],
                "mean_r": None if t["mean_r"] is None or bt["mean_r"] is None else t["mean_r"] - bt["mean_r"],
            }
        t["lift"] = lift
        t["expectancy"] = ("negative" if t["mean_r"] is not None and t["mean_r"] < 0
                           else "positive" if t["mean_r"] is not None else "unknown")
        out["strategies"][name] = t
    return out


def settings_hash(settings: Settings, mints: Sequence[str]) -> str:
    """Hash of what decides the replay's numbers: strategies (with every parameter), ladder, scoring, folds, tokens."""
    data = settings.model_dump(mode="json", include={"strategies", "ladder", "scoring", "evaluate"})
    data["scoring"].pop("calibrator_path", None)
    data["scoring"].pop("min_calibration_samples", None)
    data["tokens"] = sorted(mints)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]


def run_name(span: tuple[int, int], digest: str) -> str:
    fmt = "%Y%m%dT%H%M"
    return f"{time.strftime(fmt, time.gmtime(span[0]))}-{time.strftime(fmt, time.gmtime(span[1]))}-{digest}"


def build_metrics(settings: Settings, replay: Replay, notes: Sequence[str] = (), skill: SkillRun | None = None
                  ) -> tuple[dict[str, Any], ChartData]:
    """The whole ``metrics.json`` (rounded, deterministic) and the series the charts draw."""
    mints = [h.mint for h in replay.histories]
    digest = settings_hash(settings, mints)
    records = replay.records
    candles = candle_metrics(replay.labels)
    ignitions = [r for r in records if r.signal.layer == "ignition"]
    ign_table = outcome_table(ignitions)
    pumps = {(lab.mint, lab.candle_ts) for lab in replay.labels if lab.pump and lab.judged}
    if candles["ignition"]["status"] == "ok":
        curve = threshold_curve(
            [(r.raw_score, (r.signal.mint, r.signal.candle_ts) in pumps) for r in ignitions if r.raw_score is not None],
            len(pumps), "ignition signals → pump candles", "raw score")
    else:
        labelled = [r for r in records if r.labelled and r.raw_score is not None]
        curve = threshold_curve([(r.raw_score or 0.0, r.tp1_first) for r in labelled],
                                sum(1 for r in labelled if r.tp1_first), "all signals → TP1 first", "raw score")
    bars = {tf.label: sum(len(h.bars.get(tf) or ()) for h in replay.histories)
            for tf in (Timeframe.M5, Timeframe.H1, Timeframe.H4)}
    per_token = []
    for h in replay.histories:
        labs = [lab for lab in replay.labels if lab.mint == h.mint]
        per_token.append({"mint": h.mint, "symbol": h.symbol, "pool": h.pool, "candles": len(labs),
                          "pumps": sum(1 for lab in labs if lab.pump),
                          "ignitions": sum(1 for lab in labs if lab.ignited),
                          "has_5m": bool(h.bars.get(Timeframe.M5))})
    metrics = {
        "run": run_name(replay.span, digest),
        "settings_hash": digest,
        "span": {"start": replay.span[0], "end": replay.span[1]},
        "tokens": len(replay.histories),
        "bars": bars,
        "bars_fed": replay.events,
        "bars_rejected": replay.rejected_bars,
        "pump_threshold_pct": settings.strategies.params_for(Confirmation.Params).rise_pct,
        "strategies": replay.strategies,
        "strategies_excluded": replay.excluded_strategies,
        "gates_as_of_now": [g.name for g in build_gates(settings.gates) if not g.point_in_time_safe],
        "decile_score": "raw score (calibration is monotone, so deciles of the calibrated probability match)",
        "notes": list(notes),
        "per_token": per_token,
        "overall": {
            "candles": candles,
            "pump_threshold_pct": settings.strategies.params_for(Confirmation.Params).rise_pct,
            "ignition_signals": _short_table(ignitions),
            "ignition_tp1_first_rate": ign_table["tp1_first_rate"],
            "strategies": per_strategy(records),
            "deciles": per_decile(records, lambda r: r.raw_score),
            "threshold_curve": curve,
        },
        "validation": validation_metrics(settings, replay, skill),
        "audit": ladder_audit(replay),
        "worth": strategy_worth(records, baseline_records(settings, replay)),
    }
    leads = [float(lab.lead_s) for lab in replay.labels if lab.pump and lab.ignited and lab.lead_s is not None]
    r_by: dict[str, list[float]] = {}
    for r in records:
        if r.labelled and r.outcome is not None:
            r_by.setdefault(r.signal.strategy, []).append(r.outcome.realized_r)
    return rounded(metrics), ChartData(lead_times_s=leads, r_by_strategy=r_by, example=pump_example(replay))


def pump_example(replay: Replay, context_bars: int = 12) -> PumpExample | None:
    """The first caught pump whose ignition signal has levels, preferring one with ``context_bars``
    4H candles of history before it, with its 4H context and its 5m bars."""
    by_mint = {h.mint: h for h in replay.histories}
    ignition = {(r.signal.mint, r.signal.candle_ts): r.signal for r in replay.records
                if r.signal.layer == "ignition" and r.signal.levels is not None}
    h4s = int(Timeframe.H4)
    found: list[PumpExample] = []
    for lab in replay.labels:
        sig = ignition.get((lab.mint, lab.candle_ts))
        if not (lab.pump and sig is not None):
            continue
        h = by_mint[lab.mint]
        h4 = [c for c in h.label_bars() if lab.candle_ts - context_bars * h4s <= c.ts <= lab.candle_ts + 3 * h4s]
        m5 = [c for c in h.bars.get(Timeframe.M5) or () if lab.candle_ts <= c.ts < lab.candle_ts + h4s]
        example = PumpExample(lab.mint, lab.symbol, lab.candle_ts, h4, m5, sig)
        if sum(1 for c in h4 if c.ts < lab.candle_ts) >= context_bars:
            return example
        found.append(example)
    return found[0] if found else None

