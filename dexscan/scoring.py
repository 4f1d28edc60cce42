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
``market_breadth``     share of the universe whose m5 price change is > 0 (input)     ``2x - 1``
=====================  ==========================================================  =================================

**Raw score** = ``logistic(bias + sum(weight_f * normalised_f))``, weights and bias from
``[scoring]``. A raw score orders signals; it is not a probability.

**Calibration.** :func:`fit_calibrator` fits scikit-learn's
``IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)`` of the label (TP1 before SL within the
time stop) on the raw score, and keeps the fitted step function's thresholds in a versioned JSON
artifact with its data span, sample and positive counts, Brier score and ECE. Applying it is a
linear interpolation between the thresholds (what ``IsotonicRegression.predict`` does), clipped at
the ends, so no scikit-learn is needed at scan time. **ECE** uses 10 equal-width bins on [0, 1]
(bin ``i`` holds ``i/10 <= p < (i+1)/10``, the last bin includes 1): ``sum(n_b / N * |mean(y_b) -
mean(p_b)|)``. With fewer than ``min_calibration_samples`` (500) labelled signals, or no artifact,
:meth:`Scorer.confidence` returns ``Confidence(raw_score, probability=None)`` — "uncalibrated" —
never a made-up percentage.
"""

from __future__ import annotations

import itertools
import json
import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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

ARTIFACT_KIND = "dexscan.calibrator.isotonic"
ARTIFACT_FORMAT = 1
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


def market_breadth(m5_changes: Iterable[float | None]) -> float | None:
    """Share of the universe rising over the last 5 minutes (one m5 change per token)."""
    return rising_share(m5_changes)


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
        b = min(int(p * bins), bins - 1) if p > 0 else 0
        count[b] += 1
        p_sum[b] += p
        y_sum[b] += float(y)
    n = len(probs)
    return sum(abs(y_sum[b] - p_sum[b]) / n for b in range(bins) if count[b])


# ---------------------------------------------------------------------------------------------
# The calibrator artifact
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Calibrator:
    """A fitted isotonic map raw score -> P(TP1 before SL), with the facts needed to trust it."""

    version: str
    created_at: int
    data_start: int
    data_end: int
    n: int
    positives: int
    brier: float
    ece: float
    x_thresholds: tuple[float, ...]
    y_thresholds: tuple[float, ...]
    brier_raw: float | None = None
    ece_raw: float | None = None
    validation: Mapping[str, float] = field(default_factory=dict)

    def predict(self, raw_score: float) -> float:
        """Calibrated probability: linear between thresholds, clipped outside (as sklearn does)."""
        xs, ys = self.x_thresholds, self.y_thresholds
        if raw_score <= xs[0]:
            return ys[0]
        if raw_score >= xs[-1]:
            return ys[-1]
        i = bisect_right(xs, raw_score)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        if x1 == x0:
            return y1
        return y0 + (y1 - y0) * (raw_score - x0) / (x1 - x0)

    def to_json(self) -> str:
        return json.dumps({
            "kind": ARTIFACT_KIND,
            "format": ARTIFACT_FORMAT,
            "version": self.version,
            "created_at": self.created_at,
            "data_span": [self.data_start, self.data_end],
            "n": self.n,
            "positives": self.positives,
            "brier": self.brier,
            "ece": self.ece,
            "ece_bins": ECE_BINS,
            "brier_raw": self.brier_raw,
            "ece_raw": self.ece_raw,
            "validation": dict(self.validation),
            "x_thresholds": list(self.x_thresholds),
            "y_thresholds": list(self.y_thresholds),
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
                              f"(expected {ARTIFACT_FORMAT}); re-run `dexscan calibrate`")
        try:
            xs = tuple(float(x) for x in d["x_thresholds"])
            ys = tuple(float(y) for y in d["y_thresholds"])
            start, end = (int(t) for t in d["data_span"])
            cal = cls(
                version=str(d["version"]), created_at=int(d["created_at"]), data_start=start, data_end=end,
                n=int(d["n"]), positives=int(d["positives"]), brier=float(d["brier"]), ece=float(d["ece"]),
                x_thresholds=xs, y_thresholds=ys,
                brier_raw=None if d.get("brier_raw") is None else float(d["brier_raw"]),
                ece_raw=None if d.get("ece_raw") is None else float(d["ece_raw"]),
                validation={str(k): float(v) for k, v in (d.get("validation") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"calibrator artifact: missing or invalid field ({exc}); "
                              "re-run `dexscan calibrate`") from exc
        if not xs or len(xs) != len(ys) or any(b < a for a, b in itertools.pairwise(xs)):
            raise ConfigError("calibrator artifact: thresholds are empty, unequal in length or unsorted")
        if any(not 0.0 <= y <= 1.0 for y in ys) or any(b < a for a, b in itertools.pairwise(ys)):
            raise ConfigError("calibrator artifact: probabilities must rise within [0, 1]")
        return cal


def fit_calibrator(scores: Sequence[float], labels: Sequence[float], times: Sequence[int], *,
                   version: str, created_at: int, min_samples: int = 500,
                   validation: Mapping[str, float] | None = None) -> Calibrator:
    """Fit the isotonic calibrator on labelled raw scores (``times`` = signal times, for the span).

    Raises InputError with fewer than ``min_samples`` samples: below that, the product says
    "uncalibrated" instead. Brier/ECE recorded here are in-sample; pass the held-out numbers of a
    purged walk-forward validation as ``validation`` to keep them in the artifact too.
    """
    n = len(scores)
    if not (n == len(labels) == len(times)):
        raise InputError(f"calibration inputs differ in length: {n} scores, {len(labels)} labels, {len(times)} times")
    if n < min_samples:
        raise InputError(f"calibration needs at least {min_samples} labelled signals, got {n}; "
                         "run a longer `dexscan backfill` first")
    from sklearn.isotonic import IsotonicRegression  # heavy import, only when fitting

    y = [1.0 if bool(v) else 0.0 for v in labels]
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    iso.fit(list(scores), y)
    xs = tuple(float(v) for v in iso.X_thresholds_)
    ys = tuple(float(v) for v in iso.y_thresholds_)
    cal = Calibrator(version=version, created_at=created_at, data_start=int(min(times)), data_end=int(max(times)),
                     n=n, positives=int(sum(y)), brier=0.0, ece=0.0, x_thresholds=xs, y_thresholds=ys)
    probs = [cal.predict(s) for s in scores]
    return Calibrator(
        version=version, created_at=created_at, data_start=cal.data_start, data_end=cal.data_end, n=n,
        positives=cal.positives, brier=brier_score(probs, y), ece=expected_calibration_error(probs, y),
        x_thresholds=xs, y_thresholds=ys, brier_raw=brier_score(list(scores), y),
        ece_raw=expected_calibration_error(list(scores), y), validation=dict(validation or {}),
    )


class Scorer:
    """Raw score from weighted normalised features; calibrated confidence when it is earned."""

    def __init__(self, settings: ScoringSettings, calibrator: Calibrator | None = None) -> None:
        unknown = sorted(set(settings.weights) - set(FEATURES))
        if unknown:
            raise ConfigError(f"scoring.weights: unknown feature(s) {', '.join(unknown)}; "
                              f"known: {', '.join(FEATURES)}")
        self.bias = settings.bias
        self.weights = {f: float(settings.weights.get(f, 0.0)) for f in FEATURES}
        self.min_samples = settings.min_calibration_samples
        self.calibrator = calibrator

    def raw_score(self, features: Mapping[str, float]) -> float:
        z = self.bias
        for name, x in normalise(features).items():
            z += self.weights[name] * x
        return logistic(z)

    def confidence(self, features: Mapping[str, float]) -> Confidence:
        raw = self.raw_score(features)
        cal = self.calibrator
        if cal is None or cal.n < self.min_samples:
            return Confidence(raw_score=raw)
        return Confidence(raw_score=raw, probability=cal.predict(raw), calibrator_version=cal.version)

    def describe(self) -> dict[str, Any]:
        cal = self.calibrator
        return {"bias": self.bias, "weights": dict(self.weights),
                "calibrated": cal is not None and cal.n >= self.min_samples,
                "calibrator_version": None if cal is None else cal.version}


def feature_vector(features: Mapping[str, float]) -> list[float | None]:
    """Features in :data:`FEATURES` order (None = absent), e.g. for a report table."""
    return [features.get(f) for f in FEATURES]


__all__ = [
    "FEATURES",
    "Calibrator",
    "MarketContext",
    "Scorer",
    "brier_score",
    "compute_features",
    "expected_calibration_error",
    "feature_vector",
    "fit_calibrator",
    "logistic",
    "market_breadth",
    "normalise",
    "pool_agreement",
    "rising_share",
    "wilder_rsi",
]
