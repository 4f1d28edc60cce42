"""Pure parts of the evaluation: purged walk-forward folds, metric math, deterministic JSON."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dexscan.config import load_settings
from dexscan.domain import Confidence, Outcome, Reason, Signal
from dexscan.metrics import (
    NO_5M_DATA,
    Fold,
    assign,
    candle_metrics,
    f1,
    make_folds,
    outcome_table,
    per_decile,
    quantiles,
    rounded,
    threshold_curve,
    validation_metrics,
)
from dexscan.replay import CandleLabel, Replay, SignalRecord
from dexscan.report import render_markdown
from dexscan.skill import reliability_table

H4 = 4 * 3600
DAY = 86_400
T0 = 1_754_870_400  # 2025-08-11 00:00 UTC


@dataclass(frozen=True)
class Win:
    start: int
    end: int


def test_folds_are_contiguous_h4_aligned_blocks_with_embargo_after_each() -> None:
    folds = make_folds(T0, T0 + 10 * DAY, 5, embargo_s=DAY)
    assert [(f.start - T0, f.end - T0) for f in folds] == [
        (0, 2 * DAY), (2 * DAY, 4 * DAY), (4 * DAY, 6 * DAY), (6 * DAY, 8 * DAY), (8 * DAY, 10 * DAY)]
    assert [f.embargo_until - f.start for f in folds] == [0, DAY, DAY, DAY, DAY]
    uneven = make_folds(T0, T0 + 7 * H4, 2, embargo_s=0)
    assert [(f.start - T0, f.end - T0) for f in uneven] == [(0, 3 * H4), (3 * H4, 7 * H4)]


def test_assign_purges_windows_crossing_a_boundary_and_embargoes_after_a_fold() -> None:
    folds = [Fold(0, 0, 100, 0), Fold(1, 100, 200, 120)]
    items = [
        Win(10, 40),  # fold 0
        Win(90, 110),  # crosses 100: purged
        Win(100, 130),  # starts in fold 1's embargo: embargoed
        Win(119, 125),  # still in the embargo
        Win(120, 200),  # fold 1 (ends exactly at the boundary)
        Win(190, 230),  # runs past the data: purged
        Win(250, 260),  # outside every fold: purged
    ]
    a = assign(items, folds)
    assert a.tests == ((0,), (4,))
    assert (a.purged, a.embargoed) == (3, 2)
    assert a.train_before(0) == [] and a.train_before(1) == [0]


def _label(ts: int, rise: float, ignited: int | None = None, reached: int | None = None,
           has_5m: bool = True, warming_up: bool = False) -> CandleLabel:
    return CandleLabel("M", "SYM", "P", ts, 1.0, 1 + rise / 100, rise, rise >= 10.0, has_5m, ignited, reached,
                       warming_up)


def test_candle_metrics_recall_precision_f1_and_lead_times() -> None:
    labels = [
        _label(-H4, 40.0, warming_up=True),  # fewer than 20 earlier 5m bars: not judged, not a miss
        _label(0, 12.0, ignited=100, reached=700),  # caught, lead 600 s
        _label(H4, 10.0, ignited=H4 + 50, reached=H4 + 1250),  # exactly +10.00%: a pump; lead 1200 s
        _label(2 * H4, 9.99, ignited=2 * H4 + 10),  # +9.99%: not a pump -> fizzled
        _label(3 * H4, 25.0),  # missed pump
        _label(4 * H4, 1.0),  # quiet
    ]
    m = candle_metrics(labels)
    assert (m["candles"], m["pumps"], m["pump_rate"]) == (6, 4, 4 / 6)
    ign = m["ignition"]
    assert (ign["candles_with_5m"], ign["candles_warming_up"], ign["pumps_warming_up"]) == (5, 1, 1)
    assert (ign["ignitions"], ign["ignited_pumps"], ign["fizzled"], ign["missed"]) == (3, 2, 1, 1)
    assert ign["recall"] == pytest.approx(2 / 3)
    assert ign["precision"] == pytest.approx(2 / 3)
    assert ign["f1"] == pytest.approx(2 / 3)
    assert ign["lead_time_s"]["median"] == 900.0
    assert (ign["lead_time_s"]["p25"], ign["lead_time_s"]["p75"]) == (750.0, 1050.0)
    assert ign["missed_pumps"] == [{"mint": "M", "symbol": "SYM", "pool": "P", "candle_ts": 3 * H4,
                                    "rise_pct": 25.0}]


def test_without_5m_bars_ignition_metrics_say_so_but_labels_remain() -> None:
    m = candle_metrics([_label(0, 12.0, has_5m=False), _label(H4, 3.0, has_5m=False)])
    assert m == {"candles": 2, "pumps": 1, "pump_rate": 0.5, "ignition": {"status": NO_5M_DATA},
                 "synthetic_empty_candles": 0, "partial_start_candles": 0, "partial_start_pumps": 0}


def _record(strategy: str, result: str, r: float, score: float, ts: int = 0) -> SignalRecord:
    sig = Signal("M", strategy, "ignition", ts, ts, 1.0, (Reason("rise", 2.0, ">=", 2.0),),
                 confidence=Confidence(score))
    return SignalRecord(sig, Outcome(result, r, closed_at=ts + 10), 24 * 3600)  # type: ignore[arg-type]


def test_outcome_table_and_deciles() -> None:
    recs = [_record("ignition", "tp1", 1.5, 0.9), _record("ignition", "sl", -1.0, 0.1),
            _record("ignition", "breakeven", 0.0, 0.5), _record("ignition", "expired", 0.2, 0.3)]
    t = outcome_table(recs)
    assert t["outcomes"] == {"breakeven": 1, "expired": 1, "sl": 1, "tp1": 1}
    assert (t["closed"], t["tp1_first"], t["tp1_first_rate"]) == (4, 2, 0.5)
    assert t["total_r"] == pytest.approx(0.7)
    assert t["mean_r"] == pytest.approx(0.175)
    deciles = per_decile(recs, lambda r: r.raw_score, n_bins=2)
    assert [(d["decile"], d["closed"], d["tp1_first"]) for d in deciles] == [(1, 2, 0), (2, 2, 2)]
    assert (deciles[0]["score_min"], deciles[1]["score_max"]) == (0.1, 0.9)


def test_threshold_curve_and_reliability_bins() -> None:
    curve = threshold_curve([(0.2, False), (0.5, True), (0.8, True), (0.9, False)], 3, "x", "raw", steps=2)
    assert [(p["threshold"], p["kept"], p["precision"], p["recall"]) for p in curve["points"]] == [
        (0.0, 4, 0.5, 2 / 3), (0.5, 3, 2 / 3, 2 / 3), (1.0, 0, None, 0.0)]
    bins = reliability_table([0.05, 0.15, 0.12, 1.0], [False, True, False, True], bins=2)
    assert bins == [
        {"bin": [0.0, 0.5], "n": 3, "mean_predicted": pytest.approx(0.32 / 3), "observed": pytest.approx(1 / 3),
         "observed_ci95": pytest.approx([0.0615, 0.7923], abs=1e-4)},
        {"bin": [0.5, 1.0], "n": 1, "mean_predicted": 1.0, "observed": 1.0,
         "observed_ci95": pytest.approx([0.2065, 1.0], abs=1e-4)},
    ]


def test_quantiles_f1_and_rounding_are_exact() -> None:
    assert quantiles([4.0, 1.0, 3.0, 2.0], (0.0, 0.5, 1.0)) == [1.0, 2.5, 4.0]
    assert quantiles([], (0.5,)) == [None]
    assert f1(None, 1.0) is None and f1(0.0, 0.0) == 0.0
    assert rounded({"b": 1 / 3, "a": [float("nan"), -1e-9, True, 2]}) == {"b": 0.333333, "a": [None, 0.0, True, 2]}


def test_walk_forward_validation_purges_embargoes_and_judges_skill_on_later_folds_only() -> None:
    # One signal an hour for 30 days. Raw score 0.8 on odd hours, 0.2 on even ones; TP1 first on
    # hours ending in 1, 3, 5: a high score wins 60% of the time, a low one never.
    records = []
    for h in range(720):
        ts = T0 + h * 3600
        win = h % 10 in (1, 3, 5)
        sig = Signal("M", "ignition", "ignition", ts, ts, 1.0, (Reason("rise", 2.0, ">=", 2.0),),
                     confidence=Confidence(0.8 if h % 2 else 0.2))
        records.append(SignalRecord(sig, Outcome("tp1" if win else "sl", 1.5 if win else -1.0, closed_at=ts + 60),
                                    24 * 3600))
    replay = Replay([], [], records, (T0, T0 + 30 * DAY), 0, 0, [], [])
    v = validation_metrics(load_settings(), replay)
    # 6-day folds: a signal is held when its 24 h window ends inside its fold; folds after the
    # first lose their first day to the embargo. 23 signals straddle each of the 5 fold ends.
    assert [f["skill"]["test"] for f in v["folds"]] == [121, 97, 97, 97, 97]
    assert [f["skill"]["train"] for f in v["folds"]] == [0, 121, 218, 315, 412]
    assert (v["signals_purged"], v["signals_embargoed"]) == (115, 96)
    assert "brier" not in v["folds"][0]["skill"]  # nothing earlier to fit on
    # Folds 1 and 2: fewer than 2 x 50 out-of-fold outputs to fit an isotonic map on, so the
    # prediction is one block, the earlier folds' base rate: exactly the reference forecast.
    for f in v["folds"][1:3]:
        assert f["skill"]["brier"] == f["skill"]["brier_base_rate"]
        assert "one block" in f["skill"]["model"]
    assert [f["skill"]["model"].split(" on ")[-1] for f in v["folds"][3:]] == [
        "194 out-of-fold outputs", "291 out-of-fold outputs"]
    sk = v["pooled"]["skill"]
    a = sk["by_strategy"]["all"]
    assert (sk["status"], sk["n"], a["n"], a["positives"], a["verdict"], a["has_skill"]) == (
        "ok", 388, 388, 116, "skill", True)
    assert a["brier_skill"] > 0.2 and a["auc"] > 0.75 and a["log_loss"] < a["log_loss_base_rate"]
    rel = [b for b in a["reliability"] if b["n"]]
    # the low-score signals of folds 3-4 sit in a block that never won: predicted 0, observed 0
    assert (rel[0]["n"], rel[0]["mean_predicted"], rel[0]["observed"]) == (98, 0.0, 0.0)
    assert sum(b["n"] for b in a["reliability"]) == 388


def test_markdown_shows_negative_lead_times_and_no_5m_honestly() -> None:
    base = {"run": "r", "span": {"start": T0, "end": T0 + DAY}, "validation": {}}
    lead = {"n": 2, "p25": -30.0, "median": 300.0, "p75": 3900.0}
    ok = {"status": "ok", "candles_with_5m": 6, "candles_warming_up": 0, "pumps_warming_up": 0, "ignitions": 2,
          "ignited_pumps": 2, "pumps_with_5m": 2, "fizzled": 0, "recall": 1.0, "precision": 1.0, "f1": 1.0,
          "lead_time_s": lead, "missed": 0, "missed_pumps": []}
    text = render_markdown({**base, "overall": {"candles": {"candles": 6, "pumps": 2, "ignition": ok}}}, [])
    assert "| lead time p25 / median / p75 | -30s / 5m / 1h05m (n=2) |" in text
    text = render_markdown({**base, "overall": {"candles": {"candles": 6, "pumps": 2,
                                                            "ignition": {"status": NO_5M_DATA}}}}, [])
    assert "Ignition metrics: **no 5m data**" in text
