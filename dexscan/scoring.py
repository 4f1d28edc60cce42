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

A percentage is shown only where it was earned out of sample:
:mod:`dexscan.calibration` fits and holds that model, :mod:`dexscan.skill` measures it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dexscan.config import ScoringSettings
from dexscan.domain import Confidence, PairSnapshot
from dexscan.errors import ConfigError
from dexscan.ladder import AtrReading, ladder_atr

if TYPE_CHECKING:
    from dexscan.calibration import Calibrator, StrategyRecord
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
                "calibrated": cal is not None and cal.skilled,
                "calibrator_version": None if self.calibrator is None else self.calibrator.version}


def feature_vector(features: Mapping[str, float]) -> list[float | None]:
    """Features in :data:`FEATURES` order (None = absent), e.g. for a report table."""
    return [features.get(f) for f in FEATURES]
