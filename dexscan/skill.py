"""Forecast skill metrics (pure): Brier score and skill, ECE, log loss, AUC, Wilson intervals and
the reliability table that ``dexscan calibrate`` and the evaluation report show.

**ECE** uses 10 equal-width bins on [0, 1] (bin ``i`` holds ``i/10 <=
p < (i+1)/10``, the last bin includes 1): ``sum(n_b / N * |mean(y_b) - mean(p_b)|)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from dexscan.errors import InputError

ECE_BINS = 10


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
