"""Scoring: normalised features, raw score, isotonic calibration and its artifact (SPEC §7)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dexscan.calibration import NO_SKILL, Calibrator, Sample, fit_blocked_isotonic, fit_calibrator, fit_linear
from dexscan.config import Settings, load_settings
from dexscan.detector import Detector
from dexscan.domain import Candle, PairSnapshot, Timeframe, TxnCounts, Window4
from dexscan.errors import ConfigError, InputError
from dexscan.market import Tick
from dexscan.scoring import NOT_IN_HISTORY, MarketContext, Scorer, market_breadth, normalise, pool_agreement, wilder_rsi
from dexscan.skill import auc, brier_score, expected_calibration_error, skill_scores, wilson_interval

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


def samples(n: int, seed: int, strategy: str = "ignition", skill: bool = True) -> list[Sample]:
    """Signals whose TP1-first chance rises with the rise vs open (``skill``) or is a flat 30%."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        rise = float(rng.uniform(0.0, 20.0))
        p = 0.1 + 0.04 * rise if skill else 0.3
        out.append(Sample({"rise_vs_open": rise, "volume_ratio": float(rng.uniform(0.5, 50))}, strategy,
                          bool(rng.uniform() < p), T + i * 600))
    return out


def test_blocked_isotonic_never_rests_a_step_on_fewer_than_min_block_samples() -> None:
    rng = np.random.default_rng(7)
    scores = rng.uniform(0, 1, 1003).tolist()
    labels = [bool(rng.uniform() < s * s) for s in scores]
    for min_block in (1, 10, 50, 200, 1003, 5000):
        blocks = fit_blocked_isotonic(scores, labels, min_block)
        assert sum(blocks.counts) == 1003
        assert all(c >= min(min_block, 1003) for c in blocks.counts), (min_block, blocks.counts)
        assert list(blocks.values) == sorted(blocks.values)
        # every probability the map can give is one block's rate, fitted on >= min_block samples
        probe = np.linspace(-0.5, 1.5, 2001)
        for x in probe:
            i = blocks.block(float(x))
            assert blocks.predict(float(x)) == blocks.values[i] and blocks.counts[i] >= min(min_block, 1003)
    one = fit_blocked_isotonic(scores, labels, 5000)
    assert one.values == (sum(labels) / 1003,) and one.counts == (1003,) and one.edges == ()


def test_a_hand_example_of_blocked_isotonic() -> None:
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    labels = [False, True, False, False, True, True, False, True]
    # groups of 2: rates 0.5, 0.0, 1.0, 0.5 -> PAV pools (0.5, 0.0) -> 0.25 and (1.0, 0.5) -> 0.75
    blocks = fit_blocked_isotonic(scores, labels, 2)
    assert blocks.values == (0.25, 0.75) and blocks.counts == (4, 4) and blocks.edges == pytest.approx((0.45,))
    # sklearn's plain isotonic fit would give a step of 1.0 resting on a single signal
    from sklearn.isotonic import IsotonicRegression

    assert max(IsotonicRegression().fit(scores, labels).predict(scores)) == 1.0


def skill_for(probs: list[float], base: list[float], labels: list[bool]) -> dict[str, object]:
    s = skill_scores(probs, base, labels)
    return {"n": s["n"], "brier": s["brier"], "brier_base_rate": s["brier_base_rate"],
            "brier_skill": s["brier_skill"], "has_skill": s["brier_skill"] > 0, "verdict": "x"}


def test_skill_scores_on_a_hand_example() -> None:
    s = skill_scores([0.8, 0.2, 0.6, 0.4], [0.5, 0.5, 0.5, 0.5], [True, False, True, False], ranking=[1, 2, 3, 4])
    assert s["brier"] == pytest.approx((0.04 + 0.04 + 0.16 + 0.16) / 4)
    assert s["brier_base_rate"] == pytest.approx(0.25)
    assert s["brier_skill"] == pytest.approx(1 - 0.1 / 0.25)
    assert s["auc"] == 1.0 and s["auc_ranking"] == 0.25  # 1 of the 4 (pos, neg) pairs in order
    assert s["log_loss"] == pytest.approx(-(2 * math.log(0.8) + 2 * math.log(0.6)) / 4)
    assert s["log_loss_base_rate"] == pytest.approx(math.log(2))
    rel = s["reliability"]
    assert [b["n"] for b in rel] == [0, 0, 1, 0, 1, 0, 1, 0, 1, 0]
    assert rel[8]["observed"] == 1.0 and rel[8]["observed_ci95"] == pytest.approx([0.2065, 1.0], abs=1e-4)
    assert auc([0.1, 0.1, 0.9], [0, 1, 1]) == 0.75  # ties count half
    assert wilson_interval(0, 0) is None


def fitted(n: int, skill: bool, seed: int = 3, **kw: object) -> Calibrator:
    data = samples(n, seed, skill=skill)
    model = fit_linear(data)
    oof = [model.prob(s.features, s.strategy) for s in data]
    held = samples(n, seed + 1, skill=skill)
    probs = [model.prob(s.features, s.strategy) for s in held]
    rate = sum(s.label for s in data) / n
    y = [s.label for s in held]
    sk = {"all": skill_for(probs, [rate] * n, y), "ignition": skill_for(probs, [rate] * n, y)}
    args: dict = {"version": "v1", "created_at": T, "min_samples": 500, "min_block": 50, **kw}
    return fit_calibrator(data, oof, [s.label for s in data], skill=sk, **args)


def test_a_score_with_no_held_out_skill_yields_no_skill_and_never_a_percentage(settings: Settings) -> None:
    cal = fitted(1200, skill=False)
    assert cal.status == NO_SKILL and not cal.has_skill("ignition")
    assert cal.skill["ignition"]["brier_skill"] <= 0  # type: ignore[operator]
    scorer = Scorer(settings.scoring, cal)
    conf = scorer.confidence({"rise_vs_open": 15.0}, "ignition")
    assert conf.probability is None and not conf.calibrated
    rate = cal.base_rate("ignition")
    assert rate == sum(s.label for s in samples(1200, 3, skill=False)) / 1200
    assert scorer.no_skill_text("ignition") == f"TP1 first {rate * 100:.0f}% historically, no edge measured"
    again = Calibrator.from_json(cal.to_json())
    assert again == cal and '"status": "no skill"' in cal.to_json()


def test_a_score_with_held_out_skill_gives_block_probabilities(settings: Settings) -> None:
    cal = fitted(1200, skill=True)
    assert cal.status == "skill" and cal.has_skill("ignition") and not cal.has_skill("confirmation")
    scorer = Scorer(settings.scoring, cal)
    hi = scorer.confidence({"rise_vs_open": 19.0}, "ignition")
    lo = scorer.confidence({"rise_vs_open": 1.0}, "ignition")
    assert hi.probability is not None and lo.probability is not None and hi.probability > lo.probability
    assert hi.probability in cal.blocks.values and hi.calibrator_version == "v1"
    assert all(c >= 50 for c in cal.blocks.counts)
    assert scorer.confidence({"rise_vs_open": 19.0}, "confirmation").probability is None  # no skill measured there
    assert fit_linear(samples(1200, 3)).weights["rise_vs_open"] > 0
    assert "liquidity" not in fit_linear(samples(1200, 3)).weights  # a feature history lacks has no weight


def test_fewer_than_500_samples_stay_uncalibrated(settings: Settings) -> None:
    with pytest.raises(InputError, match="at least 500 labelled signals, got 499"):
        fitted(499, skill=True)
    small = fitted(499, skill=True, min_samples=100)
    conf = Scorer(settings.scoring, small).confidence({}, "ignition")
    assert conf.probability is None and conf.calibrator_version is None


def test_a_broken_artifact_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid JSON"):
        Calibrator.from_json("{nope")
    with pytest.raises(ConfigError, match="kind"):
        Calibrator.from_json('{"kind": "other"}')
    good = fitted(600, skill=True).to_json()
    d = json.loads(good)
    with pytest.raises(ConfigError, match="missing or invalid field"):
        Calibrator.from_json(json.dumps({**d, "n": "many"}))
    with pytest.raises(ConfigError, match="format 1 is not supported"):
        Calibrator.from_json(json.dumps({**d, "format": 1}))
    d["blocks"] = {"edges": [0.5], "values": [0.2, 0.4], "counts": [590, 10]}
    with pytest.raises(ConfigError, match="fewer than 50 samples"):
        Calibrator.from_json(json.dumps(d))


def test_rsi_and_breadth_helpers() -> None:
    assert wilder_rsi([float(i) for i in range(20)]) == 100.0
    assert wilder_rsi([1.0] * 20) == 50.0
    assert wilder_rsi([1.0] * 14) is None
    closes = [1.0, 2.0] * 7 + [1.0]  # 7 gains and 7 losses of 1.0 each
    assert wilder_rsi(closes) == pytest.approx(50.0)
    def bar(o: float, c: float) -> Candle:
        return Candle(T, o, max(o, c), min(o, c), c, 1.0)

    # one definition live and in replay: the last completed 5m bar closed above its open
    assert market_breadth([bar(1.0, 2.0), bar(2.0, 1.0), None, bar(1.0, 1.0), bar(1.0, 1.5)]) == 0.5
    assert market_breadth([None]) is None

    def pair(m5: float | None) -> PairSnapshot:
        return PairSnapshot("P", "d", "M", "S", "N", "Q", "SOL", 1.0, None, Window4(), Window4(m5=m5), TxnCounts(),
                            TxnCounts(), TxnCounts(), None, None, None, None, T)

    assert pool_agreement([pair(1.0), pair(2.0), pair(-1.0), pair(None)]) == pytest.approx(2 / 3)


def test_features_only_live_snapshots_carry_have_no_weight_in_the_raw_score(settings: Settings) -> None:
    heavy = settings.with_overrides({"scoring.weights": {**settings.scoring.weights, "liquidity": 5.0,
                                                         "buy_sell_ratio_m5": 5.0, "pool_agreement": 5.0}})
    scorer = Scorer(heavy.scoring)
    replayed = {"rise_vs_open": 6.0, "volume_ratio": 4.0, "market_breadth": 0.7, "pair_age": 30.0}
    live = {**replayed, "liquidity": 2e6, "buy_sell_ratio_m5": 0.9, "buy_sell_ratio_h1": 0.2, "pool_agreement": 1.0}
    assert set(NOT_IN_HISTORY) == {"buy_sell_ratio_m5", "buy_sell_ratio_h1", "liquidity", "pool_agreement"}
    assert scorer.raw_score(live) == scorer.raw_score(replayed)
    assert all(scorer.weights[f] == 0.0 for f in NOT_IN_HISTORY)
    assert scorer.raw_score({**replayed, "market_breadth": 0.2}) < scorer.raw_score(replayed)


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


def test_the_status_line_names_no_skill_with_the_base_rate_and_the_data_span(settings: Settings) -> None:
    from dexscan.calibrator_loading import calibrator_label

    cal = fitted(1200, skill=False)
    rate = cal.base_rate(None)
    assert rate is not None
    assert calibrator_label(cal, settings) == (
        f"no skill · TP1 first {rate * 100:.0f}% historically, no edge measured · data 2025-06-15→2025-06-23")
    good = fitted(1200, skill=True)
    assert calibrator_label(good, settings).startswith("v1 · n=1200 · ECE 0.000 · skill: ignition · data 2025-06-15→")
    assert calibrator_label(None, settings) == "uncalibrated"


def test_the_artifact_keeps_each_strategys_mean_r_and_worth_and_marks_a_negative_record(settings: Settings) -> None:
    from dataclasses import replace

    data = samples(600, 11, skill=False)
    data = [replace(s, strategy="confirmation" if i < 53 else "ignition",
                    realized_r=(-1.0 if i % 53 else 1.12) if i < 53 else (1.5 if s.label else -0.5))
            for i, s in enumerate(data)]
    worth = {"strategies": {"confirmation": {"mean_r": -0.96, "expectancy": "negative"}}, "baselines": {}}
    cal = fit_calibrator(data, [0.3] * 600, [s.label for s in data], skill={"all": {"has_skill": False}},
                         version="v", created_at=T, worth=worth)
    conf = cal.record("confirmation")
    assert conf is not None and (conf.n, conf.negative) == (53, True)
    assert conf.mean_r == pytest.approx((-52 + 1.12) / 53)
    assert conf.text() == "negative record: −0.96R mean over 53 signals"
    ign = cal.record("ignition")
    assert ign is not None and not ign.negative
    assert ign.text() == f"record: TP1 first {ign.tp1_rate * 100:.0f}%, +{ign.mean_r:.2f}R mean over 547 signals"
    again = Calibrator.from_json(cal.to_json())
    assert again.worth == worth and again.record("confirmation") == conf
    scorer = Scorer(settings.scoring, again)
    assert scorer.strategy_notes("confirmation") == (
        f"TP1 first {cal.base_rate('confirmation') * 100:.0f}% historically, no edge measured",  # type: ignore[operator]
        "negative record: −0.96R mean over 53 signals")
    assert cal.record("god_candle") is None
