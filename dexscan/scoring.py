"""Confidence: features known at signal time, a raw score, and an honest calibrator (SPEC §7). Pure.

**Features** (raw values in ``Signal.features``; a feature that cannot be known is *absent*, never
guessed, and contributes 0 to the score). Each is normalised to roughly [-1, 1] before weighting:

=====================  ==========================================================  =================================
feature                raw value                                                   normalised
=====================  ==========================================================  =================================
``rise_vs_open``       signal price vs the 4H candle's open, %                      ``clip(x / 10, -1, 2)``
``volume_ratio``       5m volume / SMA of the previous 20 completed 5m volumes       ``clip(log10(x), -1, 2)``
                       (an empty SMA with volume counts as 100x)
``volume_z_4h``        z-score of the 4H volume vs the previous 20 completed 4H      ``clip(z / 3, -2, 2)``
                       bars (a forming candle's volume so far is projected to 4 h:
                       ``v * 14400 / max(elapsed, 3600)``)
``rsi14_5m``           Wilder RSI(14) of completed 5m closes (+ the tick price when   ``(x - 50) / 50``
                       the signal came from a tick inside a forming bar)
``atr_percentile``     rank of the current ATR among the token's own ATR history     ``2x - 1``
                       (share of values <= it; 4H, or 1H x 2 as the ladder uses)
``buy_sell_ratio_m5``  buys / (buys + sells) over 5 min (a share, so bounded)         ``2x - 1``
``buy_sell_ratio_h1``  the same over 1 h                                             ``2x - 1``
``liquidity``          USD liquidity of the main pool                                ``clip(log10(x) - 5, -1, 2)``
``pair_age``           hours since the pool was created                              ``clip(log10(1 + h) / 3, 0, 1)``
``pool_agreement``     share of the token's pools whose m5 price change is > 0       ``2x - 1``
``market_breadth``     share of the universe whose last completed 5m bar closed       ``2x - 1``
                       above its open (input; :func:`market_breadth`, live and replay)
=====================  ==========================================================  =================================

**Raw score** = ``logistic(bias + sum(weight_f * normalised_f))``, weights and bias from
``[scoring]``. A raw score orders signals; it is not a probability. **Same features live and in
replay**: a feature the replay cannot compute point-in-time (:data:`NOT_IN_HISTORY`: txns,
liquidity and pool agreement come only from live snapshots) carries no weight in the raw score,
whatever ``[scoring.weights]`` says, until history carries it (the on-chain stream's trade tape
will); it is still recorded in ``Signal.features``. So live and replayed raw scores rest on the same
features: a replayed live session gives the same raw scores (tests/e2e/test_live_replay_scores.py).

**Skill before percentages.** The raw score orders signals; a percentage is shown only where it
was earned out of sample. ``dexscan calibrate`` (:mod:`dexscan.evaluate`) fits, on the labelled
signals of purged walk-forward folds:

* a :class:`LinearModel` — an L2-regularised logistic regression (scikit-learn, ``C =
  scoring.regularization_c``) on the logit of the raw score (the hand weights are only the prior),
  the normalised features and one indicator per strategy; a feature that no replayed signal carries
  (txns, liquidity, pool agreement: not point-in-time in history) gets no weight;
* an :class:`IsotonicBlocks` map of the model's output to P(TP1 before SL), fitted on *out-of-fold*
  outputs (fold ``j`` scored by the model of folds ``< j``) with at least
  ``scoring.min_block_samples`` (50) signals in every block (:func:`fit_blocked_isotonic`), so no
  step rests on a handful of signals; applying it returns one block's rate, no interpolation;
* the held-out skill per strategy (:func:`skill_scores`): Brier skill score against the earlier
  folds' base rate, AUC, log loss, ECE and a reliability table with counts and 95% intervals.

The :class:`Calibrator` artifact (JSON, format 2) keeps all of it with its data span and ``world``
(live or demo). A strategy without positive held-out Brier skill (or with fewer than
``min_block_samples`` held-out signals) has **no skill**: :meth:`Scorer.confidence` gives no
probability for it and :meth:`Scorer.no_skill_text` says "TP1 first 23% historically, no edge
measured". With fewer than ``min_calibration_samples`` (500) labelled signals, or no artifact, the
confidence is "uncalibrated". **ECE** uses 10 equal-width bins on [0, 1] (bin ``i`` holds ``i/10 <=
p < (i+1)/10``, the last bin includes 1): ``sum(n_b / N * |mean(y_b) - mean(p_b)|)``.
"""

from __future__ import annotations

import itertools
import json
import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from dexscan.config import ScoringSettings
from dexscan.domain import Confidence, PairSnapshot
from dexscan.errors import ConfigError, InputError
from dexscan.ladder import AtrReading, ladder_atr

if TYPE_CHECKING:
    from dexscan.market import TokenMarket
    from dexscan.strategies.base import Detection

FEATURES = (
    "rise_vs_open",
    "volume_ratio",
    "volume_z_4h",
    "rsi14_5m",
    "atr_percentile",
    "buy_sell_ratio_m5",
    "buy_sell_ratio_h1",
    "liquidity",
    "pair_age",
    "pool_agreement",
    "market_breadth",
)

#: Features only live snapshots carry: no weight in the raw score (module docstring).
NOT_IN_HISTORY = ("buy_sell_ratio_m5", "buy_sell_ratio_h1", "liquidity", "pool_agreement")

ARTIFACT_KIND = "dexscan.calibrator.isotonic"
ARTIFACT_FORMAT = 2
ECE_BINS = 10
RSI_PERIOD = 14
VOLUME_Z_BARS = 20
_EMPTY_SMA_RATIO = 100.0


@dataclass(frozen=True, slots=True)
class MarketContext:
    """What the caller knows about the market at an event, beyond the token's own bars.

    Every field is optional; a live :class:`~dexscan.market.Tick` already carries the token's
    txns and liquidity, and the detector uses the latest tick's when the context leaves them out.
    """

    market_breadth: float | None = None  # share of the universe rising now, 0-1
    pool_agreement: float | None = None  # share of the token's pools rising now, 0-1
    liquidity_usd: float | None = None
    pair_created_at: int | None = None
    buys_m5: int | None = None
    sells_m5: int | None = None
    buys_h1: int | None = None
    sells_h1: int | None = None


def _clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def _share(a: int | None, b: int | None) -> float | None:
    if a is None or b is None or a < 0 or b < 0 or a + b == 0:
        return None
    return a / (a + b)


def rising_share(changes: Iterable[float | None]) -> float | None:
    """Share of known price changes that are > 0 (None when none is known)."""
    known = [c for c in changes if c is not None and math.isfinite(c)]
    if not known:
        return None
    return sum(1 for c in known if c > 0) / len(known)


def pool_agreement(pairs: Sequence[PairSnapshot]) -> float | None:
    """Share of a token's pools whose m5 price change is positive (for :class:`MarketContext`)."""
    return rising_share(p.price_change.m5 for p in pairs)


class OpenClose(Protocol):
    """A bar as breadth reads it: a completed :class:`~dexscan.domain.Candle` or a live bar that is due."""

    @property
    def open(self) -> float: ...

    @property
    def close(self) -> float: ...


def market_breadth(last_bars: Iterable[OpenClose | None]) -> float | None:
    """Share of the universe whose last completed 5m bar closed above its open (one bar per token,
    None for a token without one). One definition, computed point-in-time in both places: live from
    the detector's books (the bars built from the snapshots), in replay from the stored bars that
    had closed by then (:func:`dexscan.replay.run_replay`). Both pass only the bars that ended at
    the current 5m boundary (:func:`fresh_m5`): a token without one (it left the universe, its
    source is out) is not counted, so a token's old bar never speaks for the market of now."""
    return rising_share(None if b is None else b.close - b.open for b in last_bars)


def fresh_m5(bar: Any, edge: int) -> Any:
    """``bar`` if it is the 5m bar that ended at ``edge`` (a 5m boundary), else None."""
    return bar if bar is not None and bar.ts + 300 == edge else None


def wilder_rsi(closes: Sequence[float], period: int = RSI_PERIOD) -> float | None:
    """Wilder RSI of the last value: mean gain/loss of the first ``period`` changes, then smoothed."""
    if len(closes) < period + 1:
        return None
    gains = losses = 0.0
    for i in range(1, period + 1):
        d = closes[i] - closes[i - 1]
        if d > 0:
            gains += d
        else:
            losses -= d
    avg_gain, avg_loss = gains / period, losses / period
    for i in range(period + 1, len(closes)):
        d = closes[i] - closes[i - 1]
        avg_gain = (avg_gain * (period - 1) + (d if d > 0 else 0.0)) / period
        avg_loss = (avg_loss * (period - 1) + (-d if d < 0 else 0.0)) / period
    if avg_loss == 0:
        return 50.0 if avg_gain == 0 else 100.0
    return 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)


def _zscore(value: float, window: Sequence[float]) -> float | None:
    n = len(window)
    if n < 2:
        return None
    mean = sum(window) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in window) / n)
    if std == 0:
        return None if value == mean else math.copysign(6.0, value - mean)
    return (value - mean) / std


def compute_features(tm: TokenMarket, det: Detection, ctx: MarketContext | None, atr: AtrReading | None = None,
                     sma_bars: int = 20, atr_period: int = 14) -> dict[str, float]:
    """Raw feature values of a detection, from what the token's books held at signal time.

    ``atr`` is the ladder's :func:`~dexscan.ladder.ladder_atr` reading on the same books (computed
    here when not given).
    """
    out: dict[str, float] = {}
    at = det.ts
    h4 = tm.h4
    # rise vs the 4H open
    if det.rise_pct is not None:
        out["rise_vs_open"] = det.rise_pct
    else:
        f = h4.forming
        if f is not None and f.open > 0:
            out["rise_vs_open"] = (det.price / f.open - 1.0) * 100.0
    # 5m volume ratio
    if det.volume_ratio is not None:
        out["volume_ratio"] = det.volume_ratio
    elif (det.layer != "confirmation" and sma_bars in tm.volumes and tm.count5 >= sma_bars
          and tm.volumes[sma_bars].total == 0):
        out["volume_ratio"] = _EMPTY_SMA_RATIO  # volume after an empty SMA window: as strong as it gets
    # 4H volume z-score
    bars4 = list(h4.bars)
    last4 = bars4[-1] if bars4 else None
    if last4 is not None and last4.ts == det.candle_ts:
        z = _zscore(last4.volume, [b.volume for b in bars4[-VOLUME_Z_BARS - 1:-1]])
    elif h4.forming is not None:
        f = h4.forming
        elapsed = max(at - f.ts, 3600)
        so_far = f.volume
        z = _zscore(so_far * 14400.0 / elapsed, [b.volume for b in bars4[-VOLUME_Z_BARS:]])
    else:
        z = None
    if z is not None and len(bars4) >= VOLUME_Z_BARS:
        out["volume_z_4h"] = z
    # RSI on 5m closes
    closes = [c.close for c in tm.recent5(3 * RSI_PERIOD)]
    live = tm.live
    if live is not None and at > live.ts:
        closes.append(det.price)
    rsi = wilder_rsi(closes)
    if rsi is not None:
        out["rsi14_5m"] = rsi
    # ATR percentile within the token's own history
    reading = atr if atr is not None else ladder_atr(bars4, list(tm.h1.bars), atr_period)
    series = reading.series
    if len(series) >= 2:
        current = series[-1]
        out["atr_percentile"] = sum(1 for a in series if a <= current) / len(series)
    # txns, liquidity, age: the context first, else the latest tick
    tick = tm.last_tick
    c = ctx or MarketContext()
    buys_m5 = c.buys_m5 if c.buys_m5 is not None else (tick.buys_m5 if tick else None)
    sells_m5 = c.sells_m5 if c.sells_m5 is not None else (tick.sells_m5 if tick else None)
    buys_h1 = c.buys_h1 if c.buys_h1 is not None else (tick.buys_h1 if tick else None)
    sells_h1 = c.sells_h1 if c.sells_h1 is not None else (tick.sells_h1 if tick else None)
    s = _share(buys_m5, sells_m5)
    if s is not None:
        out["buy_sell_ratio_m5"] = s
    s = _share(buys_h1, sells_h1)
    if s is not None:
        out["buy_sell_ratio_h1"] = s
    liq = c.liquidity_usd if c.liquidity_usd is not None else (tick.liquidity_usd if tick else None)
    if liq is not None and liq > 0:
        out["liquidity"] = liq
    created = c.pair_created_at if c.pair_created_at is not None else (tick.pair_created_at if tick else None)
    if created is not None and at >= created:
        out["pair_age"] = (at - created) / 3600.0
    if c.pool_agreement is not None:
        out["pool_agreement"] = c.pool_agreement
    if c.market_breadth is not None:
        out["market_breadth"] = c.market_breadth
    return out


def normalise(features: Mapping[str, float]) -> dict[str, float]:
    """Each known feature mapped to its normalised scale (see the module docstring)."""
    out: dict[str, float] = {}
    for name, x in features.items():
        if name not in _NORMALISERS or not math.isfinite(x):
            continue
        out[name] = _NORMALISERS[name](x)
    return out


def _log10_clip(x: float, shift: float, lo: float, hi: float) -> float:
    return lo if x <= 0 else _clip(math.log10(x) - shift, lo, hi)


_NORMALISERS = {
    "rise_vs_open": lambda x: _clip(x / 10.0, -1.0, 2.0),
    "volume_ratio": lambda x: _log10_clip(x, 0.0, -1.0, 2.0),
    "volume_z_4h": lambda x: _clip(x / 3.0, -2.0, 2.0),
    "rsi14_5m": lambda x: _clip((x - 50.0) / 50.0, -1.0, 1.0),
    "atr_percentile": lambda x: _clip(2.0 * x - 1.0, -1.0, 1.0),
    "buy_sell_ratio_m5": lambda x: _clip(2.0 * x - 1.0, -1.0, 1.0),
    "buy_sell_ratio_h1": lambda x: _clip(2.0 * x - 1.0, -1.0, 1.0),
    "liquidity": lambda x: _log10_clip(x, 5.0, -1.0, 2.0),
    "pair_age": lambda x: _clip(math.log10(1.0 + max(x, 0.0)) / 3.0, 0.0, 1.0),
    "pool_agreement": lambda x: _clip(2.0 * x - 1.0, -1.0, 1.0),
    "market_breadth": lambda x: _clip(2.0 * x - 1.0, -1.0, 1.0),
}


def logistic(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def brier_score(probs: Sequence[float], labels: Sequence[float]) -> float:
    if not probs:
        raise InputError("brier score of no samples")
    return sum((p - float(y)) ** 2 for p, y in zip(probs, labels, strict=True)) / len(probs)


def expected_calibration_error(probs: Sequence[float], labels: Sequence[float], bins: int = ECE_BINS) -> float:
    """ECE with ``bins`` equal-width bins on [0, 1] (the last bin includes 1.0)."""
    if not probs:
        raise InputError("ECE of no samples")
    count = [0] * bins
    p_sum = [0.0] * bins
    y_sum = [0.0] * bins
    for p, y in zip(probs, labels, strict=True):
        b = _bin(p, bins)
        count[b] += 1
        p_sum[b] += p
        y_sum[b] += float(y)
    n = len(probs)
    return sum(abs(y_sum[b] - p_sum[b]) / n for b in range(bins) if count[b])


def _bin(p: float, bins: int) -> int:
    return min(int(p * bins), bins - 1) if p > 0 else 0


def log_loss(probs: Sequence[float], labels: Sequence[float], eps: float = 1e-6) -> float:
    """Mean negative log-likelihood, probabilities clipped to [eps, 1 - eps]."""
    if not probs:
        raise InputError("log loss of no samples")
    total = 0.0
    for p, y in zip(probs, labels, strict=True):
        q = min(max(p, eps), 1.0 - eps)
        total -= math.log(q) if y else math.log(1.0 - q)
    return total / len(probs)


def auc(scores: Sequence[float], labels: Sequence[float]) -> float | None:
    """Area under the ROC curve (ties count half); None when only one class is present."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    ranked = sorted((s, i) for i, s in enumerate([*pos, *neg]))
    ranks = [0.0] * len(ranked)
    i = 0
    while i < len(ranked):  # average ranks over ties
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[ranked[k][1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    r_pos = sum(ranks[: len(pos)])
    return (r_pos - len(pos) * (len(pos) + 1) / 2.0) / (len(pos) * len(neg))


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion ``k / n`` (None for n = 0)."""
    if n == 0:
        return None
    p = k / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def reliability_table(probs: Sequence[float], labels: Sequence[bool], bins: int = ECE_BINS) -> list[dict[str, Any]]:
    """Equal-width bins of the predicted probability: count, mean prediction, observed rate and its
    95% Wilson interval (what a reliability diagram draws)."""
    out = []
    for b in range(bins):
        idx = [i for i, p in enumerate(probs) if _bin(p, bins) == b]
        k = sum(1 for i in idx if labels[i])
        ci = wilson_interval(k, len(idx))
        out.append({
            "bin": [b / bins, (b + 1) / bins],
            "n": len(idx),
            "mean_predicted": sum(probs[i] for i in idx) / len(idx) if idx else None,
            "observed": k / len(idx) if idx else None,
            "observed_ci95": None if ci is None else list(ci),
        })
    return out


def skill_scores(probs: Sequence[float], base: Sequence[float], labels: Sequence[bool],
                 ranking: Sequence[float] | None = None) -> dict[str, Any]:
    """Held-out skill of predictions ``probs`` against a reference forecast ``base`` (the base rate
    of the earlier folds): Brier skill score ``1 - Brier(probs) / Brier(base)``, AUC (of ``ranking``
    when given, else of ``probs``), log loss of both, ECE and the reliability table."""
    y = [1.0 if v else 0.0 for v in labels]
    n = len(y)
    if n == 0:
        return {"n": 0, "status": "no held-out predictions"}
    b_model = brier_score(probs, y)
    b_base = brier_score(base, y)
    bss = None if b_base == 0 else 1.0 - b_model / b_base
    return {
        "status": "ok",
        "n": n,
        "positives": int(sum(y)),
        "base_rate_prior_folds": sum(base) / n,
        "observed_rate": sum(y) / n,
        "brier": b_model,
        "brier_base_rate": b_base,
        "brier_skill": bss,
        "auc": auc(list(probs), y),
        "auc_ranking": None if ranking is None else auc(list(ranking), y),
        "log_loss": log_loss(probs, y),
        "log_loss_base_rate": log_loss(base, y),
        "ece": expected_calibration_error(probs, y),
        "reliability": reliability_table(probs, labels),
    }


# ---------------------------------------------------------------------------------------------
# The fitted model: regularised logistic regression + blocked isotonic map
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """One labelled signal as the calibration sees it: its point-in-time features, strategy, label, time."""

    features: Mapping[str, float]
    strategy: str
    label: bool
    ts: int
    raw_score: float | None = None  # the hand-weighted prior score of the signal
    realized_r: float | None = None  # the ladder's realized R (for the strategy's measured expectancy)


@dataclass(frozen=True, slots=True)
class LinearModel:
    """``logistic(intercept + w_prior * logit(raw) + sum(w_f * normalised_f) + w_strategy)``.

    ``raw`` is the hand-weighted score of ``[scoring]`` (the prior): the fitted model may keep it,
    scale it, or correct it with the features it learns weights for. :func:`fit_linear` fits it as a
    regularised logistic regression on labelled history.
    """

    intercept: float
    weights: Mapping[str, float]
    strategy_weights: Mapping[str, float] = field(default_factory=dict)
    prior_weight: float = 0.0

    def logit(self, features: Mapping[str, float], strategy: str | None = None, raw: float | None = None) -> float:
        z = self.intercept
        for name, x in normalise(features).items():
            z += self.weights.get(name, 0.0) * x
        if strategy is not None:
            z += self.strategy_weights.get(strategy, 0.0)
        if raw is not None and self.prior_weight:
            z += self.prior_weight * _logit(raw)
        return z

    def prob(self, features: Mapping[str, float], strategy: str | None = None, raw: float | None = None) -> float:
        return logistic(self.logit(features, strategy, raw))

    def to_dict(self) -> dict[str, Any]:
        return {"intercept": self.intercept, "weights": dict(sorted(self.weights.items())),
                "strategy_weights": dict(sorted(self.strategy_weights.items())), "prior_weight": self.prior_weight}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LinearModel:
        return cls(float(d["intercept"]), {str(k): float(v) for k, v in d["weights"].items()},
                   {str(k): float(v) for k, v in (d.get("strategy_weights") or {}).items()},
                   float(d.get("prior_weight") or 0.0))


def _logit(p: float) -> float:
    q = min(max(p, 1e-6), 1.0 - 1e-6)
    return math.log(q / (1.0 - q))


def fit_linear(samples: Sequence[Sample], c: float = 1.0) -> LinearModel:
    """L2-regularised logistic regression (scikit-learn, ``C = c``) on the logit of the hand-weighted
    raw score (the prior), the normalised features and one indicator per strategy. A feature no
    training sample carries (one the replay cannot compute point-in-time) gets weight 0: it carries
    no weight until history carries it."""
    from sklearn.linear_model import LogisticRegression  # heavy import, only when fitting

    ys = [1 if s.label else 0 for s in samples]
    if not samples or len(set(ys)) < 2:
        rate = sum(ys) / len(ys) if ys else 0.5
        rate = min(max(rate, 1e-6), 1 - 1e-6)
        return LinearModel(math.log(rate / (1 - rate)), {})
    normed = [normalise(s.features) for s in samples]
    feats = [f for f in FEATURES if any(f in x for x in normed)]
    strategies = sorted({s.strategy for s in samples})
    prior = all(s.raw_score is not None for s in samples)
    rows = [([_logit(s.raw_score or 0.5)] if prior else []) + [x.get(f, 0.0) for f in feats]
            + [1.0 if s.strategy == k else 0.0 for k in strategies] for x, s in zip(normed, samples, strict=True)]
    lr = LogisticRegression(C=c, max_iter=1000)
    lr.fit(rows, ys)
    coef = [float(v) for v in lr.coef_[0]]
    w_prior = coef.pop(0) if prior else 0.0
    return LinearModel(float(lr.intercept_[0]), dict(zip(feats, coef[: len(feats)], strict=True)),
                       dict(zip(strategies, coef[len(feats):], strict=True)), w_prior)


@dataclass(frozen=True, slots=True)
class IsotonicBlocks:
    """A monotone step map score -> probability in which every step holds at least ``min_block`` samples.

    ``edges[i]`` is the upper bound of block ``i`` (a score ``s`` falls in the first block with
    ``s <= edges[i]``; the last block is unbounded); ``values[i]`` its observed TP1-first rate and
    ``counts[i]`` how many fitted samples it rests on.
    """

    edges: tuple[float, ...]
    values: tuple[float, ...]
    counts: tuple[int, ...]

    def block(self, score: float) -> int:
        return bisect_left(self.edges, score)

    def predict(self, score: float) -> float:
        return self.values[self.block(score)]

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "values": list(self.values), "counts": list(self.counts)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IsotonicBlocks:
        return cls(tuple(float(x) for x in d["edges"]), tuple(float(x) for x in d["values"]),
                   tuple(int(x) for x in d["counts"]))


def fit_blocked_isotonic(scores: Sequence[float], labels: Sequence[bool], min_block: int) -> IsotonicBlocks:
    """Isotonic regression (scikit-learn's PAV) of the labels on ``scores`` over pre-binned groups.

    The sorted samples are first cut into consecutive groups of at least ``min_block`` samples (equal
    scores never split); isotonic regression then runs on the groups' rates weighted by their counts,
    and adjacent groups it pools into one value become one block. So no step of the map rests on
    fewer than ``min_block`` samples — with fewer samples than that in all, there is one block (the
    base rate). Raises InputError without samples.
    """
    n = len(scores)
    if n == 0 or n != len(labels):
        raise InputError(f"isotonic fit needs equal, non-empty scores and labels ({n} vs {len(labels)})")
    k = max(1, int(min_block))
    pairs = sorted(zip(scores, labels, strict=True), key=lambda p: p[0])
    groups: list[list[tuple[float, bool]]] = []
    start = 0
    while start < n:
        stop = min(n, start + k)
        while stop < n and pairs[stop][0] == pairs[stop - 1][0]:
            stop += 1
        if n - stop < k:
            stop = n  # the remainder joins the last group rather than forming a small one
        groups.append(pairs[start:stop])
        start = stop
    from sklearn.isotonic import IsotonicRegression  # heavy import, only when fitting

    index = list(range(len(groups)))
    rates = [sum(1 for _, y in grp if y) / len(grp) for grp in groups]
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0).fit(
        index, rates, sample_weight=[len(grp) for grp in groups]).predict(index)
    edges: list[float] = []
    values: list[float] = []
    counts: list[int] = []
    for i, grp in enumerate(groups):
        v = min(1.0, max(0.0, float(fitted[i])))
        if values and abs(v - values[-1]) <= 1e-12:
            counts[-1] += len(grp)
            continue
        if values:
            edges.append((groups[i - 1][-1][0] + grp[0][0]) / 2.0)
        values.append(v)
        counts.append(len(grp))
    return IsotonicBlocks(tuple(edges), tuple(values), tuple(counts))


# ---------------------------------------------------------------------------------------------
# The calibrator artifact
# ---------------------------------------------------------------------------------------------

NO_SKILL = "no skill"


@dataclass(frozen=True, slots=True)
class Calibrator:
    """A fitted confidence model with the facts needed to trust it — or to refuse to.

    ``model`` (a regularised logistic regression over the point-in-time features) is fitted on the
    labelled signals; ``blocks`` maps its output to P(TP1 before SL), fitted on *out-of-fold*
    outputs (each scored by a model fitted on earlier folds only). ``skill`` holds the held-out
    numbers per strategy (Brier skill score against the earlier folds' base rate, AUC, log loss,
    reliability); a strategy whose held-out Brier skill score is not positive has **no skill**:
    :meth:`predict` returns None for it and the scanner shows its measured ``base_rates`` instead.
    ``world`` is ``"live"`` or ``"demo"`` (what the data came from); the live scanner never loads a
    demo artifact.
    """

    version: str
    created_at: int
    data_start: int
    data_end: int
    n: int
    positives: int
    model: LinearModel
    blocks: IsotonicBlocks
    min_block: int
    base_rates: Mapping[str, Mapping[str, float]]  # strategy -> {n, positives, rate}
    skill: Mapping[str, Mapping[str, Any]]  # strategy (and "all") -> held-out metrics + "has_skill"
    world: str = "live"
    ece: float = 0.0  # held-out ECE of the pooled predictions (for the status line)
    #: each strategy against the baselines on the same data and ladder, with the lift
    #: (:func:`dexscan.metrics.strategy_worth`); ``/stats`` shows it
    worth: Mapping[str, Any] = field(default_factory=dict)

    def has_skill(self, strategy: str | None = None) -> bool:
        entry = self.skill.get(strategy or "all") if strategy else self.skill.get("all")
        return bool(entry and entry.get("has_skill"))

    @property
    def status(self) -> str:
        return "skill" if any(v.get("has_skill") for v in self.skill.values()) else NO_SKILL

    def probability(self, features: Mapping[str, float], strategy: str | None, raw: float | None = None) -> float:
        """The calibrated probability, ignoring skill (for validation); always a block's rate."""
        return self.blocks.predict(self.model.prob(features, strategy, raw))

    def predict(self, features: Mapping[str, float], strategy: str | None, raw: float | None = None) -> float | None:
        """P(TP1 before SL) for a signal of ``strategy`` — None when no held-out skill was measured."""
        if strategy is None or not self.has_skill(strategy):
            return None
        return self.probability(features, strategy, raw)

    def base_rate(self, strategy: str | None) -> float | None:
        entry = self.base_rates.get(strategy or "") or self.base_rates.get("all")
        return None if entry is None else float(entry["rate"])

    def record(self, strategy: str) -> StrategyRecord | None:
        """The strategy's own measured record (None when the data held none of its signals)."""
        entry = self.base_rates.get(strategy)
        if entry is None or not entry.get("n"):
            return None
        mean = entry.get("mean_r")
        return StrategyRecord(strategy, int(entry["n"]), float(entry["rate"]), None if mean is None else float(mean))

    def no_skill_text(self, strategy: str | None) -> str:
        """What the scanner says instead of a percentage: ``TP1 first 23% historically, no edge measured``."""
        rate = self.base_rate(strategy)
        if rate is None:
            return "no edge measured"
        return f"TP1 first {rate * 100:.0f}% historically, no edge measured"

    def to_json(self) -> str:
        return json.dumps({
            "kind": ARTIFACT_KIND,
            "format": ARTIFACT_FORMAT,
            "version": self.version,
            "created_at": self.created_at,
            "data_span": [self.data_start, self.data_end],
            "world": self.world,
            "n": self.n,
            "positives": self.positives,
            "status": self.status,
            "ece": self.ece,
            "ece_bins": ECE_BINS,
            "min_block": self.min_block,
            "model": self.model.to_dict(),
            "blocks": self.blocks.to_dict(),
            "base_rates": {k: dict(v) for k, v in sorted(self.base_rates.items())},
            "skill": {k: dict(v) for k, v in sorted(self.skill.items())},
            "worth": dict(self.worth),
        }, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Calibrator:
        """Parse an artifact; ConfigError naming the problem when it is not a valid one."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"calibrator artifact is not valid JSON: {exc}") from exc
        if not isinstance(d, dict) or d.get("kind") != ARTIFACT_KIND:
            raise ConfigError(f"calibrator artifact: kind is not {ARTIFACT_KIND!r}; re-run `dexscan calibrate`")
        if d.get("format") != ARTIFACT_FORMAT:
            raise ConfigError(f"calibrator artifact: format {d.get('format')!r} is not supported "
                              f"(expected {ARTIFACT_FORMAT}: a calibrator with its held-out skill); "
                              "re-run `dexscan calibrate`")
        try:
            start, end = (int(t) for t in d["data_span"])
            cal = cls(
                version=str(d["version"]), created_at=int(d["created_at"]), data_start=start, data_end=end,
                n=int(d["n"]), positives=int(d["positives"]), model=LinearModel.from_dict(d["model"]),
                blocks=IsotonicBlocks.from_dict(d["blocks"]), min_block=int(d["min_block"]),
                base_rates={str(k): {str(a): float(b) for a, b in v.items()} for k, v in d["base_rates"].items()},
                skill={str(k): dict(v) for k, v in d["skill"].items()},
                world=str(d.get("world") or "live"), ece=float(d.get("ece") or 0.0),
                worth=dict(d.get("worth") or {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"calibrator artifact: missing or invalid field ({exc}); "
                              "re-run `dexscan calibrate`") from exc
        b = cal.blocks
        if (not b.values or len(b.edges) != len(b.values) - 1 or len(b.counts) != len(b.values)
                or any(y < x for x, y in itertools.pairwise(b.edges))):
            raise ConfigError("calibrator artifact: isotonic blocks are empty, unequal in length or unsorted")
        if any(not 0.0 <= v <= 1.0 for v in b.values) or any(y < x for x, y in itertools.pairwise(b.values)):
            raise ConfigError("calibrator artifact: probabilities must rise within [0, 1]")
        if any(c < cal.min_block for c in b.counts) and len(b.counts) > 1:
            raise ConfigError(f"calibrator artifact: an isotonic block rests on fewer than {cal.min_block} "
                              "samples; re-run `dexscan calibrate`")
        return cal


def base_rates(samples: Sequence[Sample]) -> dict[str, dict[str, float]]:
    """TP1-first rate per strategy and over all (``"all"``), with the mean realized R when every
    sample of the group carries one (the strategy's measured expectancy)."""
    groups: dict[str, list[Sample]] = {"all": list(samples)}
    for s in samples:
        groups.setdefault(s.strategy, []).append(s)
    out: dict[str, dict[str, float]] = {}
    for k, v in groups.items():
        if not v:
            continue
        out[k] = {"n": float(len(v)), "positives": float(sum(1 for s in v if s.label)),
                  "rate": sum(1 for s in v if s.label) / len(v)}
        rs = [s.realized_r for s in v if s.realized_r is not None]
        if len(rs) == len(v):
            out[k]["mean_r"] = sum(rs) / len(rs)
    return out


@dataclass(frozen=True, slots=True)
class StrategyRecord:
    """A strategy's measured record in the calibrator's data: labelled signals, TP1-first rate and
    (when known) mean realized R. ``negative`` when the mean R is below zero: following every
    signal of it lost money on that data."""

    strategy: str
    n: int
    tp1_rate: float
    mean_r: float | None = None

    @property
    def negative(self) -> bool:
        return self.mean_r is not None and self.mean_r < 0

    def text(self) -> str:
        """``negative record: −0.96R mean over 53 signals`` or ``record: TP1 first 28%, +0.19R mean
        over 1,161 signals`` (the minus sign is U+2212, as a trader reads it)."""
        if self.mean_r is None:
            return f"record: TP1 first {self.tp1_rate * 100:.0f}% over {self.n:,} signals"
        mean = f"{self.mean_r:+.2f}R".replace("-", "\u2212")
        if self.negative:
            return f"negative record: {mean} mean over {self.n:,} signals"
        return f"record: TP1 first {self.tp1_rate * 100:.0f}%, {mean} mean over {self.n:,} signals"


def fit_calibrator(samples: Sequence[Sample], oof_scores: Sequence[float], oof_labels: Sequence[bool], *,
                   skill: Mapping[str, Mapping[str, Any]], version: str, created_at: int, min_samples: int = 500,
                   min_block: int = 50, c: float = 1.0, world: str = "live", ece: float = 0.0,
                   worth: Mapping[str, Any] | None = None) -> Calibrator:
    """The artifact: the linear model fitted on every sample, the blocked isotonic map fitted on the
    out-of-fold model outputs (``oof_scores``/``oof_labels``, see :mod:`dexscan.metrics`), and the
    held-out ``skill`` per strategy that decides whether any percentage is shown.

    Raises InputError with fewer than ``min_samples`` samples (the product then says
    "uncalibrated") or without out-of-fold outputs to fit the map on.
    """
    n = len(samples)
    if n < min_samples:
        raise InputError(f"calibration needs at least {min_samples} labelled signals, got {n}; "
                         "run a longer `dexscan backfill` first")
    if not oof_scores:
        raise InputError("calibration needs out-of-fold model outputs to fit the isotonic map on")
    times = [s.ts for s in samples]
    return Calibrator(
        version=version, created_at=created_at, data_start=int(min(times)), data_end=int(max(times)), n=n,
        positives=sum(1 for s in samples if s.label), model=fit_linear(samples, c),
        blocks=fit_blocked_isotonic(oof_scores, oof_labels, min_block), min_block=min_block,
        base_rates=base_rates(samples), skill=dict(skill), world=world, ece=ece, worth=dict(worth or {}),
    )


class Scorer:
    """Raw score from weighted normalised features; a calibrated confidence only where skill was measured."""

    def __init__(self, settings: ScoringSettings, calibrator: Calibrator | None = None) -> None:
        unknown = sorted(set(settings.weights) - set(FEATURES))
        if unknown:
            raise ConfigError(f"scoring.weights: unknown feature(s) {', '.join(unknown)}; "
                              f"known: {', '.join(FEATURES)}")
        self.bias = settings.bias
        self.weights = {f: 0.0 if f in NOT_IN_HISTORY else float(settings.weights.get(f, 0.0)) for f in FEATURES}
        self.min_samples = settings.min_calibration_samples
        self.calibrator = calibrator

    def raw_score(self, features: Mapping[str, float]) -> float:
        """The hand-weighted score of ``[scoring]`` (the prior): it orders signals, it is no probability."""
        z = self.bias
        for name, x in normalise(features).items():
            z += self.weights[name] * x
        return logistic(z)

    def usable(self) -> Calibrator | None:
        cal = self.calibrator
        return cal if cal is not None and cal.n >= self.min_samples else None

    def confidence(self, features: Mapping[str, float], strategy: str | None = None) -> Confidence:
        raw = self.raw_score(features)
        cal = self.usable()
        prob = None if cal is None else cal.predict(features, strategy, raw)
        if cal is None or prob is None:
            return Confidence(raw_score=raw)
        return Confidence(raw_score=raw, probability=prob, calibrator_version=cal.version)

    def no_skill_text(self, strategy: str | None) -> str | None:
        """``TP1 first 23% historically, no edge measured`` when a calibrator measured no skill for it."""
        cal = self.usable()
        if cal is None or cal.has_skill(strategy):
            return None
        return cal.no_skill_text(strategy)

    def record(self, strategy: str) -> StrategyRecord | None:
        """The strategy's measured record from a usable calibrator (None without one)."""
        cal = self.usable()
        return None if cal is None else cal.record(strategy)

    def strategy_notes(self, strategy: str) -> tuple[str, ...]:
        """What a card and a dashboard row say about the strategy beyond its signal: the no-skill
        text (instead of any percentage) and its measured record, negative or not."""
        notes = []
        no_skill = self.no_skill_text(strategy)
        if no_skill is not None:
            notes.append(no_skill)
        rec = self.record(strategy)
        if rec is not None:
            notes.append(rec.text())
        return tuple(notes)

    def describe(self) -> dict[str, Any]:
        cal = self.usable()
        return {"bias": self.bias, "weights": dict(self.weights),
                "calibrated": cal is not None and cal.status != NO_SKILL,
                "calibrator_version": None if self.calibrator is None else self.calibrator.version}


def feature_vector(features: Mapping[str, float]) -> list[float | None]:
    """Features in :data:`FEATURES` order (None = absent), e.g. for a report table."""
    return [features.get(f) for f in FEATURES]


__all__ = [
    "FEATURES",
    "NOT_IN_HISTORY",
    "NO_SKILL",
    "Calibrator",
    "IsotonicBlocks",
    "LinearModel",
    "MarketContext",
    "Sample",
    "Scorer",
    "StrategyRecord",
    "auc",
    "base_rates",
    "brier_score",
    "compute_features",
    "expected_calibration_error",
    "feature_vector",
    "fit_blocked_isotonic",
    "fit_calibrator",
    "fit_linear",
    "log_loss",
    "logistic",
    "market_breadth",
    "normalise",
    "pool_agreement",
    "reliability_table",
    "rising_share",
    "skill_scores",
    "wilder_rsi",
    "wilson_interval",
]
