"""Scoring: normalised features, raw score, isotonic calibration and its artifact (SPEC §7)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dexscan.config import Settings, load_settings
from dexscan.detector import Detector
from dexscan.domain import Candle, PairSnapshot, Timeframe, TxnCounts, Window4
from dexscan.errors import ConfigError, InputError
from dexscan.market import Tick
from dexscan.scoring import (
    Calibrator,
    MarketContext,
    Scorer,
    brier_score,
    expected_calibration_error,
    fit_calibrator,
    market_breadth,
    normalise,
    pool_agreement,
    wilder_rsi,
)

T = 1_750_003_200


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(env={})


def synthetic(n: int, seed: int) -> tuple[list[float], list[int], list[int]]:
    """Raw scores uniform on (0, 1) whose true win probability is score**2 (so raw is over-confident)."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.0, 1.0, n)
    y = (rng.uniform(0.0, 1.0, n) < s**2).astype(int)
    times = (T + np.arange(n) * 600).tolist()
    return s.tolist(), y.tolist(), times


def test_raw_score_is_the_logistic_of_bias_plus_weighted_normalised_features(settings: Settings) -> None:
    scorer = Scorer(settings.scoring)
    assert scorer.raw_score({}) == pytest.approx(1 / (1 + math.e))  # bias -1 alone
    assert scorer.raw_score({"rise_vs_open": 5.0, "volume_ratio": 10.0}) == 0.5  # -1 + 0.8*0.5 + 0.6*1
    conf = scorer.confidence({"rise_vs_open": 5.0, "volume_ratio": 10.0})
    assert (conf.raw_score, conf.probability, conf.calibrated) == (0.5, None, False)
    assert conf.label() == "uncalibrated (raw 0.50)"


def test_each_feature_normalisation() -> None:
    assert normalise({
        "rise_vs_open": 25.0, "volume_ratio": 0.01, "volume_z_4h": 4.5, "rsi14_5m": 75.0, "atr_percentile": 0.25,
        "buy_sell_ratio_m5": 0.75, "buy_sell_ratio_h1": 0.5, "liquidity": 1e6, "pair_age": 999.0,
        "pool_agreement": 1.0, "market_breadth": 0.0, "unknown": 3.0, "volume_ratio_nan": float("nan"),
    }) == {
        "rise_vs_open": 2.0, "volume_ratio": -1.0, "volume_z_4h": 1.5, "rsi14_5m": 0.5, "atr_percentile": -0.5,
        "buy_sell_ratio_m5": 0.5, "buy_sell_ratio_h1": 0.0, "liquidity": 1.0, "pair_age": 1.0,
        "pool_agreement": 1.0, "market_breadth": -1.0,
    }


def test_unknown_weights_are_a_config_error(settings: Settings) -> None:
    bad = settings.scoring.model_copy(update={"weights": {"moon_factor": 1.0}})
    with pytest.raises(ConfigError, match=r"scoring\.weights: unknown feature"):
        Scorer(bad)


def test_ece_and_brier_on_a_hand_example() -> None:
    probs, labels = [0.05, 0.15, 0.95, 1.0], [0, 1, 1, 1]
    assert expected_calibration_error(probs, labels) == pytest.approx((0.05 + 0.85 + 2 * 0.025) / 4)
    assert brier_score(probs, labels) == pytest.approx((0.05**2 + 0.85**2 + 0.05**2 + 0.0) / 4)


def test_the_fitted_calibrator_beats_the_raw_score_on_held_out_data() -> None:
    scores, labels, times = synthetic(6000, seed=11)
    held_s, held_y, _ = synthetic(6000, seed=12)
    cal = fit_calibrator(scores, labels, times, version="2025-06-15.1", created_at=T, min_samples=500)
    ece_raw = expected_calibration_error(held_s, held_y)
    ece_cal = expected_calibration_error([cal.predict(s) for s in held_s], held_y)
    assert ece_raw > 0.15
    assert ece_cal < 0.03
    assert ece_cal < ece_raw
    assert (cal.n, cal.positives, cal.data_start, cal.data_end) == (6000, sum(labels), T, T + 5999 * 600)
    assert cal.ece_raw is not None and cal.ece < cal.ece_raw
    assert cal.brier_raw is not None and cal.brier < cal.brier_raw


def test_predict_matches_sklearn_isotonic_predict() -> None:
    from sklearn.isotonic import IsotonicRegression

    scores, labels, times = synthetic(800, seed=3)
    cal = fit_calibrator(scores, labels, times, version="v", created_at=T)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(scores, labels)
    probe = np.linspace(-0.5, 1.5, 401)
    assert np.allclose([cal.predict(float(x)) for x in probe], iso.predict(probe), atol=1e-12)


def test_the_artifact_round_trips_through_json_unchanged() -> None:
    scores, labels, times = synthetic(700, seed=5)
    cal = fit_calibrator(scores, labels, times, version="2025-06-15.2", created_at=T + 1,
                         validation={"brier": 0.19, "ece": 0.031})
    text = cal.to_json()
    again = Calibrator.from_json(text)
    assert again == cal
    assert again.to_json() == text
    assert '"ece_bins": 10' in text and '"version": "2025-06-15.2"' in text


def test_fewer_than_500_samples_stay_uncalibrated(settings: Settings) -> None:
    scores, labels, times = synthetic(499, seed=1)
    with pytest.raises(InputError, match="at least 500 labelled signals, got 499"):
        fit_calibrator(scores, labels, times, version="v", created_at=T)
    small = fit_calibrator(scores, labels, times, version="v-small", created_at=T, min_samples=100)
    conf = Scorer(settings.scoring, small).confidence({})
    assert conf.probability is None and conf.calibrator_version is None
    big = fit_calibrator(*synthetic(600, seed=2), version="v-big", created_at=T)
    conf = Scorer(settings.scoring, big).confidence({})
    assert conf.probability == big.predict(conf.raw_score) and conf.calibrator_version == "v-big"


def test_a_broken_artifact_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid JSON"):
        Calibrator.from_json("{nope")
    with pytest.raises(ConfigError, match="kind"):
        Calibrator.from_json('{"kind": "other"}')
    good = fit_calibrator(*synthetic(600, seed=4), version="v", created_at=T).to_json()
    with pytest.raises(ConfigError, match="missing or invalid field"):
        Calibrator.from_json(good.replace('"n": 600', '"n": "many"'))


def test_rsi_and_breadth_helpers() -> None:
    assert wilder_rsi([float(i) for i in range(20)]) == 100.0
    assert wilder_rsi([1.0] * 20) == 50.0
    assert wilder_rsi([1.0] * 14) is None
    closes = [1.0, 2.0] * 7 + [1.0]  # 7 gains and 7 losses of 1.0 each
    assert wilder_rsi(closes) == pytest.approx(50.0)
    assert market_breadth([1.0, -2.0, None, 0.0, 3.0]) == 0.5
    assert market_breadth([None]) is None

    def pair(m5: float | None) -> PairSnapshot:
        return PairSnapshot("P", "d", "M", "S", "N", "Q", "SOL", 1.0, None, Window4(), Window4(m5=m5), TxnCounts(),
                            TxnCounts(), TxnCounts(), None, None, None, None, T)

    assert pool_agreement([pair(1.0), pair(2.0), pair(-1.0), pair(None)]) == pytest.approx(2 / 3)


def test_signals_carry_features_known_at_signal_time(settings: Settings) -> None:
    det = Detector(settings)
    rng = np.random.default_rng(9)
    hist4 = [Candle(T - (30 - i) * 14_400, 1.0, 1.0 + 0.05 * (1 + i % 3), 0.95, 1.0, float(1000 + 10 * i))
             for i in range(30)]
    det.bootstrap("A", Timeframe.H4, hist4)
    closes = [1.0 + float(rng.uniform(-0.01, 0.01)) for _ in range(29)] + [1.0]
    det.bootstrap("A", Timeframe.M5, [Candle(T - (30 - i) * 300, 1.0, 1.02, 0.98, closes[i], 100.0) for i in range(30)])
    for k in range(12):  # polled every 5 minutes for an hour: every bar observed at volume 100
        det.on_tick("A", Tick(T + 10 + 300 * k, 1.0, 100.0, buys_m5=1, sells_m5=9, liquidity_usd=1.0))
    ctx = MarketContext(market_breadth=0.7, pool_agreement=1.0, buys_h1=10, sells_h1=10)
    [sig] = det.on_tick("A", Tick(T + 3600, 1.05, 900.0, buys_m5=3, sells_m5=1, buys_h1=1, sells_h1=0,
                                  liquidity_usd=2e5, pair_created_at=T - 36_000 + 3600), ctx)
    f = sig.features
    assert f["rise_vs_open"] == pytest.approx(5.0)
    # the previous 20 bars: 8 bootstrapped and 11 tick-built at 100, and the bar ending at T+3600,
    # whose volume is the m5 reading taken at its end (900): a mean of 140
    assert f["volume_ratio"] == sig.volume_ratio == pytest.approx(900.0 / 140.0)
    # the latest tick's txns and liquidity; the context wins where it says something
    assert (f["buy_sell_ratio_m5"], f["buy_sell_ratio_h1"], f["liquidity"]) == (0.75, 0.5, 2e5)
    assert sig.liquidity_usd == 2e5
    assert f["pair_age"] == pytest.approx(10.0)
    assert (f["market_breadth"], f["pool_agreement"]) == (0.7, 1.0)
    assert 0.0 < f["atr_percentile"] <= 1.0
    assert 0.0 <= f["rsi14_5m"] <= 100.0
    assert "volume_z_4h" in f
    assert sig.confidence is not None and sig.confidence.raw_score == det.scorer.raw_score(
        {k: v for k, v in f.items() if k in normalise(f)})
    assert sig.levels is not None and sig.levels.atr_source == "4h"
