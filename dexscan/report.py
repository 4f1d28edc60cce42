"""Evaluation reports: ``report.md`` + ``metrics.json`` + PNG charts in one directory.

The report is rendered from two inputs only: the metrics dictionary (exactly what goes into
``metrics.json``) and :class:`ChartData` (the raw series the charts draw). Nothing here computes
a metric, so the Markdown, the JSON and the charts can never disagree. ``metrics.json`` is written
with sorted keys and rounded floats and holds no wall-clock time, so replaying the same period
twice gives the same bytes. Charts use matplotlib's object API with the Agg canvas (no GUI, no
global backend switch).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from dexscan.alerts.charts import LEVEL_STYLE
from dexscan.domain import Candle, Signal
from dexscan.fmt import fmt_duration, fmt_price, fmt_share

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
CHART_RELIABILITY = "reliability.png"
CHART_THRESHOLD = "precision_recall_threshold.png"
CHART_LEAD_TIME = "lead_time.png"
CHART_R_MULTIPLES = "r_multiples.png"
CHART_EXAMPLE = "example_pump.png"

_UP, _DOWN = "#26a69a", "#ef5350"
_PNG_META = {"Software": None}


@dataclass(frozen=True, slots=True)
class PumpExample:
    """One detected pump to draw: its 4H context, its 5m bars, and the signal with its levels."""

    mint: str
    symbol: str
    candle_ts: int
    candles_4h: Sequence[Candle]
    candles_5m: Sequence[Candle]
    signal: Signal


@dataclass(frozen=True, slots=True)
class ChartData:
    lead_times_s: Sequence[float] = ()
    r_by_strategy: Mapping[str, Sequence[float]] = field(default_factory=dict)
    example: PumpExample | None = None


def dump_metrics(metrics: Mapping[str, Any]) -> str:
    """The canonical text of ``metrics.json`` (sorted keys, no NaN, trailing newline)."""
    return json.dumps(metrics, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_report(out_dir: Path, metrics: Mapping[str, Any], charts: ChartData) -> Path:
    """Write metrics.json, the charts and report.md into ``out_dir``; returns the report path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / METRICS_FILE).write_text(dump_metrics(metrics), encoding="utf-8")
    drawn = draw_charts(out_dir, metrics, charts)
    path = out_dir / REPORT_FILE
    path.write_text(render_markdown(metrics, drawn), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


#: A missing value in a report table.
_NONE = "–"


def _pct(v: Any) -> str:
    return fmt_share(v, _NONE)


def _num(v: Any, fmt: str = ".2f") -> str:
    return _NONE if v is None else format(v, fmt)


def _dur(seconds: Any) -> str:
    return fmt_duration(seconds, _NONE)


def _utc(ts: Any) -> str:
    return _NONE if ts is None else datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%d %H:%M")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def render_markdown(m: Mapping[str, Any], charts: Sequence[str]) -> str:
    span = m.get("span", {})
    lines = [
        f"# dexscan evaluation — {m.get('run', '')}",
        "",
        f"Data: {_utc(span.get('start'))} → {_utc(span.get('end'))} UTC, {m.get('tokens', 0)} tokens, "
        f"{m.get('bars', {}).get('5m', 0)} 5m / {m.get('bars', {}).get('1h', 0)} 1h / "
        f"{m.get('bars', {}).get('4h', 0)} 4h bars. Settings hash `{m.get('settings_hash', '')}`.",
        "",
        "Every number below comes from replaying the stored history through the live detector in time "
        "order (a bar is visible only once it has closed) and labelling each signal with the live ladder code.",
        "",
    ]
    if m.get("strategies_excluded"):
        lines += [f"Not replayed (not point-in-time safe): {', '.join(m['strategies_excluded'])}.", ""]
    if m.get("gates_as_of_now"):
        lines += [f"Gates judged on the chain as it is now, not as it was then (not point-in-time safe; the replayed "
                  f"tokens are the ones the scanner admitted): {', '.join(m['gates_as_of_now'])}.", ""]
    lines += [f"Note: {n}" for n in m.get("notes", [])]
    if m.get("notes"):
        lines.append("")
    lines += [
        "## 4H candles and the ignition layer",
        "",
    ]
    overall = m.get("overall", {})
    lines += _candle_section(overall)
    lines += ["", "## Outcomes per strategy", ""]
    rows = []
    for name, t in sorted(overall.get("strategies", {}).items()):
        outs = ", ".join(f"{k} {v}" for k, v in sorted(t.get("outcomes", {}).items())) or "–"
        rows.append([name, str(t["signals"]), str(t["closed"]), _pct(t["tp1_first_rate"]),
                     _num(t["mean_r"]), _num(t["total_r"]), outs])
    lines += _table(["strategy", "signals", "closed", "TP1 first", "mean R", "total R", "outcomes"], rows) \
        if rows else ["No signals."]
    if m.get("worth"):
        lines += ["", "## What each strategy is worth (vs baselines on the same data and ladder)", "",
                  *_worth_section(m["worth"])]
    if m.get("audit"):
        lines += ["", "## Ladder and coverage audit", "", *_audit_section(m["audit"])]
    deciles = overall.get("deciles", [])
    lines += ["", "## Outcomes per confidence decile", ""]
    if deciles:
        lines.append(f"Score used: {m.get('decile_score', 'raw score')}.")
        lines.append("")
        lines += _table(
            ["decile", "score range", "closed", "TP1 first", "mean R"],
            [[str(d["decile"]), f"{_num(d['score_min'], '.3f')}–{_num(d['score_max'], '.3f')}", str(d["closed"]),
              _pct(d["tp1_first_rate"]), _num(d["mean_r"])] for d in deciles],
        )
    else:
        lines.append("No closed signal with a score.")
    lines += ["", "## Purged walk-forward folds", ""]
    v = m.get("validation", {})
    lines.append(
        f"{len(v.get('folds', []))} folds, embargo {v.get('embargo_days', 0):g} day(s), time stop "
        f"{v.get('horizon_h', 0):g} h. Purged (outcome window crosses a fold boundary): "
        f"{v.get('signals_purged', 0)} signals; embargoed: {v.get('signals_embargoed', 0)}.")
    lines.append("")
    frows = []
    for f in [*v.get("folds", []), {"index": "pooled", **v.get("pooled", {})}]:
        ign = f.get("candles", {}).get("ignition", {})
        sig = f.get("signals", {})
        fs = f.get("skill", {})
        frows.append([
            str(f["index"]), f"{_utc(f.get('start'))} → {_utc(f.get('end'))}" if "start" in f else "all folds",
            str(f.get("candles", {}).get("pumps", 0)),
            _pct(ign.get("recall")) if ign.get("status") == "ok" else ign.get("status", "–"),
            _pct(ign.get("precision")) if ign.get("status") == "ok" else "–",
            str(sig.get("closed", 0)), _pct(sig.get("tp1_first_rate")), _num(sig.get("mean_r")),
            _num(fs.get("brier"), ".4f"), _num(fs.get("brier_base_rate"), ".4f"),
        ])
    lines += _table(["fold", "span (UTC)", "pumps", "recall", "precision", "closed signals", "TP1 first",
                     "mean R", "Brier model", "Brier base rate"], frows)
    lines += ["", "## Skill of the confidence (held-out folds)", ""]
    lines += _skill_section(v.get("pooled", {}).get("skill", {}))
    if "calibration" in m:
        lines += ["", "## Calibrator artifact", "", *_artifact_section(m["calibration"])]
    if charts:
        lines += ["", "## Charts", ""]
        for name in charts:
            lines += [f"![{name.removesuffix('.png').replace('_', ' ')}]({name})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _candle_section(overall: Mapping[str, Any]) -> list[str]:
    c = overall.get("candles", {})
    lines = [f"{c.get('candles', 0)} labelled 4H candles, {c.get('pumps', 0)} pumps "
             f"(close ≥ +{overall.get('pump_threshold_pct', 10):g}% over open; base rate {_pct(c.get('pump_rate'))}). "
             f"Counted: {c.get('partial_start_candles', 0)} first candles of pools that started inside them "
             f"({c.get('partial_start_pumps', 0)} pumps). Not counted: {c.get('synthetic_empty_candles', 0)} "
             "synthetic empty candles (gaps without a trade)."]
    ign = c.get("ignition", {})
    if ign.get("status") != "ok":
        lines += ["", f"Ignition metrics: **{ign.get('status', 'n/a')}** (recall, precision and lead time need "
                  "5m bars; confirmation labels and ladder outcomes below are still computed)."]
        return lines
    lead = ign.get("lead_time_s", {})
    lines += [
        "",
        *_table(["metric", "value"], [
            ["candles judged (5m bars, warm-up done)", str(ign["candles_with_5m"])],
            ["warming up (excluded: fewer than 20 earlier 5m bars)",
             f"{ign.get('candles_warming_up', 0)} candles, {ign.get('pumps_warming_up', 0)} pumps"],
            ["ignitions", str(ign["ignitions"])],
            ["ignited pumps / pumps", f"{ign['ignited_pumps']} / {ign['pumps_with_5m']}"],
            ["fizzled ignitions", str(ign["fizzled"])],
            ["recall", _pct(ign["recall"])],
            ["precision (ignition → pump)", _pct(ign["precision"])],
            ["precision (ignition → TP1 first)", _pct(overall.get("ignition_tp1_first_rate"))],
            ["F1", _num(ign["f1"], ".3f")],
            ["lead time p25 / median / p75",
             f"{_dur(lead.get('p25'))} / {_dur(lead.get('median'))} / {_dur(lead.get('p75'))} (n={lead.get('n', 0)})"],
        ]),
    ]
    missed = ign.get("missed_pumps", [])
    lines += ["", f"Missed pumps (no ignition before the 4H close): {ign['missed']}."]
    if missed:
        lines += ["", *_table(["4H candle (UTC)", "token", "pool", "rise"], [
            [_utc(p["candle_ts"]), p["symbol"] or p["mint"][:8], p["pool"][:8], f"{p['rise_pct']:+.1f}%"]
            for p in missed
        ])]
        if ign["missed"] > len(missed):
            lines.append(f"(first {len(missed)} of {ign['missed']} shown)")
    return lines


def _worth_section(w: Mapping[str, Any]) -> list[str]:
    base = w.get("baselines", {})
    names = sorted(base)
    rows = [[f"*{b}*", str(t["signals"]), str(t["closed"]), _pct(t["tp1_first_rate"]), _num(t["mean_r"]), "", ""]
            for b, t in sorted(base.items())]
    for name, t in sorted(w.get("strategies", {}).items()):
        lifts = [t.get("lift", {}).get(b, {}) for b in names]
        rows.append([
            name + (" ⚠ negative expectancy" if t.get("expectancy") == "negative" else ""), str(t["signals"]),
            str(t["closed"]), _pct(t["tp1_first_rate"]), _num(t["mean_r"]),
            " / ".join("–" if x.get("tp1_first_rate") is None else f"{x['tp1_first_rate'] * 100:+.1f} pp"
                       for x in lifts),
            " / ".join(_num(x.get("mean_r"), "+.2f") for x in lifts)])
    return [f"Lift = strategy minus baseline ({' / '.join(names)}). A strategy is worth its alerts only when it "
            "beats entering blindly on the same tokens with the same ladder.", "",
            *_table(["rule", "signals", "closed", "TP1 first", "mean R", "lift TP1 first", "lift mean R"], rows)]


def _audit_section(a: Mapping[str, Any]) -> list[str]:
    rows = [[name, str(v["signals"]), str(v["without_ladder"]), str(v["sl_clamped"]), str(v["atr_from_1h"])]
            for name, v in a.get("by_strategy", {}).items()]
    rows.append(["**all**", str(a.get("signals", 0)), str(a.get("without_ladder", 0)), str(a.get("sl_clamped", 0)),
                 str(a.get("atr_from_1h", 0))])
    lines = _table(["strategy", "signals", "no ladder (too little history)", "stop clamped at entry × 0.5",
                    "ATR from 1H × 2"], rows)
    not_run = a.get("strategies_not_run", [])
    lines += ["", "Strategies that could not run everywhere: " + ("none." if not not_run else "")]
    lines += [f"- {x['strategy']}: {x['why']}" for x in not_run]
    lines += ["", "Every signal with its levels, ATR source, flags, score and outcome is in `signals.csv`."]
    return lines


def _skill_section(sk: Mapping[str, Any]) -> list[str]:
    if not sk or sk.get("status") != "ok":
        return [sk.get("note", "No labelled signals in the held-out folds: skill cannot be judged.")
                if sk else "No labelled signals."]
    lines = [
        f"Model: {sk.get('model', '')}; at least {sk.get('min_block', 0)} signals per isotonic block. "
        f"Reference forecast: {sk.get('reference', 'the earlier folds’ base rate')}. Brier skill = 1 − Brier(model) / "
        "Brier(reference): above 0 the model beats the base rate, at or below 0 there is **no skill** and the "
        "scanner shows only the strategy's base rate. AUC 0.5 = no ranking ('AUC' of the probabilities shown, "
        "'AUC regression' of the fitted regression's output before the isotonic map). 'raw' columns judge the "
        "hand-weighted raw score (the prior) the same way: its isotonic map fitted on the earlier folds, no model fit.",
        "",
    ]
    rows = []
    for name, v in sorted(sk.get("by_strategy", {}).items(), key=lambda kv: (kv[0] != "all", kv[0])):
        rows.append([name, str(v.get("n", 0)), _pct(v.get("base_rate_prior_folds")), _pct(v.get("observed_rate")),
                     _num(v.get("brier"), ".4f"), _num(v.get("brier_base_rate"), ".4f"),
                     _num(v.get("brier_skill"), "+.4f"), _num(v.get("prior_brier_skill"), "+.4f"),
                     _num(v.get("auc"), ".3f"), _num(v.get("auc_model_output"), ".3f"),
                     _num(v.get("auc_ranking"), ".3f"),
                     f"{_num(v.get('log_loss'), '.4f')} / {_num(v.get('log_loss_base_rate'), '.4f')}",
                     _num(v.get("ece"), ".4f"), f"**{v.get('verdict', '')}**"])
    lines += _table(["strategy", "held-out n", "base rate (earlier folds)", "observed", "Brier", "Brier base rate",
                     "Brier skill", "Brier skill raw", "AUC", "AUC regression", "AUC raw", "log loss model / base",
                     "ECE", "verdict"], rows)
    rel = (sk.get("by_strategy", {}).get("all") or {}).get("reliability", [])
    if rel:
        lines += ["", "Reliability of the held-out predictions (all strategies; 95% Wilson intervals):", ""]
        lines += _table(["predicted", "n", "mean predicted", "observed", "95% interval"], [
            [f"{b['bin'][0]:.1f}–{b['bin'][1]:.1f}", str(b["n"]), _pct(b.get("mean_predicted")),
             _pct(b.get("observed")),
             "–" if not b.get("observed_ci95") else f"{_pct(b['observed_ci95'][0])}–{_pct(b['observed_ci95'][1])}"]
            for b in rel if b["n"]])
    return lines


def _artifact_section(c: Mapping[str, Any]) -> list[str]:
    lines = [f"Labelled signals held by the folds (purged, embargoed): {c.get('samples', 0)} "
             f"({c.get('positives', 0)} reached TP1 first); at least {c.get('min_samples', 0)} are needed. "
             f"Data: {c.get('world', 'live')}."]
    status = c.get("status")
    if status in ("calibrated", "no skill"):
        blocks = c.get("blocks", {})
        lines += ["", f"Status: **{status}** — version `{c.get('version')}`, written to `{c.get('artifact')}`. "
                  f"Isotonic blocks (counts): {', '.join(str(n) for n in blocks.get('counts', []))}. "
                  f"Strategies with held-out skill: {', '.join(c.get('skill_strategies', [])) or 'none'}."]
        if c.get("note"):
            lines += ["", c["note"]]
        rates = c.get("base_rates", {})
        if rates:
            lines += ["", *_table(["strategy", "labelled", "TP1 first (base rate)"], [
                [k, str(int(v.get("n", 0))), _pct(v.get("rate"))] for k, v in sorted(rates.items())])]
    else:
        lines += ["", f"Status: **uncalibrated** — {c.get('note', '')}"]
    return lines


# ---------------------------------------------------------------------------------------------
# Charts
# ---------------------------------------------------------------------------------------------


def _figure(w: float = 7.0, h: float = 4.5) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, format="png", metadata=_PNG_META)


def draw_charts(out_dir: Path, m: Mapping[str, Any], data: ChartData) -> list[str]:
    """Draw every chart there is data for; returns the file names written, in report order."""
    drawn: list[str] = []
    sk = m.get("validation", {}).get("pooled", {}).get("skill", {})
    if any(b.get("n") for b in (sk.get("by_strategy", {}).get("all") or {}).get("reliability", [])):
        _reliability(out_dir / CHART_RELIABILITY, sk)
        drawn.append(CHART_RELIABILITY)
    curve = m.get("overall", {}).get("threshold_curve", {})
    if curve.get("points"):
        _threshold(out_dir / CHART_THRESHOLD, curve)
        drawn.append(CHART_THRESHOLD)
    if data.lead_times_s:
        _lead_times(out_dir / CHART_LEAD_TIME, data.lead_times_s)
        drawn.append(CHART_LEAD_TIME)
    if any(data.r_by_strategy.values()):
        _r_multiples(out_dir / CHART_R_MULTIPLES, data.r_by_strategy)
        drawn.append(CHART_R_MULTIPLES)
    if data.example is not None:
        _example(out_dir / CHART_EXAMPLE, data.example)
        drawn.append(CHART_EXAMPLE)
    return drawn


def _reliability(path: Path, sk: Mapping[str, Any]) -> None:
    fig, ax = _figure(6, 6)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    overall = sk.get("by_strategy", {}).get("all") or {}
    bins = [b for b in overall.get("reliability", []) if b["n"]]
    if bins:
        xs = [b["mean_predicted"] for b in bins]
        ys = [b["observed"] for b in bins]
        lo = [max(0.0, y - b["observed_ci95"][0]) for y, b in zip(ys, bins, strict=True)]
        hi = [max(0.0, b["observed_ci95"][1] - y) for y, b in zip(ys, bins, strict=True)]
        label = f"model (ECE {overall.get('ece') or 0:.3f}, Brier skill {overall.get('brier_skill') or 0:+.3f})"
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", color="#1e88e5", capsize=3, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted P(TP1 before SL)")
    ax.set_ylabel("observed frequency")
    ax.set_title("Reliability (held-out folds)")
    ax.legend(loc="upper left")
    _save(fig, path)


def _threshold(path: Path, curve: Mapping[str, Any]) -> None:
    pts = curve["points"]
    fig, ax = _figure()
    xs = [p["threshold"] for p in pts]
    ax.plot(xs, [p["precision"] if p["precision"] is not None else float("nan") for p in pts],
            label="precision", color="#1e88e5")
    ax.plot(xs, [p["recall"] if p["recall"] is not None else float("nan") for p in pts],
            label="recall", color="#e53935")
    ax.set_xlabel(f"minimum {curve.get('score', 'score')}")
    ax.set_ylabel("share")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Precision / recall vs threshold ({curve.get('label', '')})")
    ax.legend()
    _save(fig, path)


def _lead_times(path: Path, leads: Sequence[float]) -> None:
    _save(lead_time_figure(leads), path)


def lead_time_figure(leads: Sequence[float]) -> Figure:
    """Pumps per lead time: bins of whole 5-minute bars (wider multiples of 5 beyond 30 bins), and
    a count axis with whole numbers only."""
    fig, ax = _figure()
    minutes = [v / 60 for v in leads]
    step = 5 * max(1, math.ceil((max(minutes) - min(minutes)) / 5 / 30))
    lo, hi = math.floor(min(minutes) / step) * step, (math.floor(max(minutes) / step) + 1) * step
    ax.hist(minutes, bins=[lo + k * step for k in range(round((hi - lo) / step) + 1)], color="#1e88e5",
            edgecolor="white")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("lead time: ignition → +10% reached (minutes)")
    ax.set_ylabel("pumps")
    ax.set_title(f"Lead time (n={len(leads)})")
    return fig


def _r_multiples(path: Path, r_by_strategy: Mapping[str, Sequence[float]]) -> None:
    fig, ax = _figure()
    names = [n for n in sorted(r_by_strategy) if r_by_strategy[n]]
    ax.hist([list(r_by_strategy[n]) for n in names], bins=20, label=names, stacked=True)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.axvline(0, color="grey", linewidth=1)
    ax.set_xlabel("realized R")
    ax.set_ylabel("signals")
    ax.set_title("Realized R per closed signal")
    ax.legend()
    _save(fig, path)


def _candles(ax: Axes, bars: Sequence[Candle], width_s: float) -> None:
    for b in bars:
        colour = _UP if b.close >= b.open else _DOWN
        x = b.ts + width_s / 2
        ax.vlines(x, b.low, b.high, color=colour, linewidth=0.8)
        ax.bar(x, max(abs(b.close - b.open), b.close * 1e-4), width_s * 0.7, bottom=min(b.open, b.close),
               color=colour)


def _example(path: Path, ex: PumpExample) -> None:
    _save(example_figure(ex), path)


#: Steps the example's time axis ticks at (seconds): round 5m-bar and 4H-candle times.
_TIME_STEPS = (300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400)


def time_ticks(lo: float, hi: float, max_ticks: int = 6) -> tuple[list[int], list[str]]:
    """Round UTC times in ``[lo, hi]``, the smallest step of :data:`_TIME_STEPS` giving at most
    ``max_ticks``: ``HH:MM``, with the date (``MM-DD``) on the first tick and where the day changes."""
    span = max(hi - lo, 1.0)
    step = next((s for s in _TIME_STEPS if span / s <= max_ticks), _TIME_STEPS[-1])
    ticks = list(range(math.ceil(lo / step) * step, math.floor(hi) + 1, step))
    labels: list[str] = []
    last_day = None
    for t in ticks:
        when = datetime.fromtimestamp(t, UTC)
        labels.append(when.strftime("%m-%d") if step >= 86400 else
                      when.strftime("%H:%M") if when.date() == last_day else when.strftime("%m-%d\n%H:%M"))
        last_day = when.date()
    return ticks, labels


def _price_label(value: float, _pos: int | None = None) -> str:
    return fmt_price(value)


def example_figure(ex: PumpExample) -> Figure:
    """The example pump: 4H context and the 5m bars of its candle, the ignition, and the ladder with
    each level in its own colour and line style (:data:`~dexscan.alerts.charts.LEVEL_STYLE`) and
    labelled; prices as the alert card writes them (no offset or ``1e-5`` factor), round times."""
    fig = Figure(figsize=(11, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax4, ax5 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    _candles(ax4, ex.candles_4h, 4 * 3600)
    _candles(ax5, ex.candles_5m, 300)
    sig = ex.signal
    for ax, bars, width_s in ((ax4, ex.candles_4h, 4 * 3600), (ax5, ex.candles_5m, 300)):
        ax.axvline(sig.ts, color="#ff9800", linestyle=":", linewidth=1.2, label="ignition")
        if sig.levels is not None:
            lv = sig.levels
            for name, price in (("entry", lv.entry), ("sl", lv.sl), ("tp1", lv.tp1), ("tp2", lv.tp2),
                                ("tp3", lv.tp3)):
                colour, style = LEVEL_STYLE[name]
                label = "entry" if name == "entry" else name.upper()
                ax.axhline(price, color=colour, linestyle=style, linewidth=1.0, label=label)
                ax.annotate(label, (1.0, price), xycoords=("axes fraction", "data"), fontsize=7, color=colour,
                            ha="right", va="bottom")
        ax.yaxis.set_major_formatter(FuncFormatter(_price_label))
        ax.tick_params(axis="y", labelsize=7)
        if bars:
            lo, hi = bars[0].ts, bars[-1].ts + width_s
            ax.set_xlim(lo, hi)
            ticks, labels = time_ticks(lo, hi)
            ax.set_xticks(ticks, labels=labels, fontsize=7)
    ax4.set_title(f"{ex.symbol or ex.mint[:8]} 4H")
    ax5.set_title(f"5m bars of the 4H candle {_utc(ex.candle_ts)} UTC ({sig.strategy})")
    ax5.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig
