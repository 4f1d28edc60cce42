"""The confidence calibrator (pure): the fitted model, its blocked isotonic map, and the artifact.

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
confidence is "uncalibrated".
"""

from __future__ import annotations

import itertools
import json
import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dexscan.errors import ConfigError, InputError
from dexscan.scoring import FEATURES, logistic, normalise
from dexscan.skill import ECE_BINS

ARTIFACT_KIND = "dexscan.calibrator.isotonic"
ARTIFACT_FORMAT = 2


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
    def skilled(self) -> bool:
        """True when some strategy (or all of them together) has held-out skill."""
        return any(v.get("has_skill") for v in self.skill.values())

    @property
    def status(self) -> str:
        return "skill" if self.skilled else NO_SKILL

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
    out-of-fold model outputs (``oof_scores``/``oof_labels``, see :mod:`dexscan.evaluate`), and the
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
