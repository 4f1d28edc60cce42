"""Optional chart image for an alert: 4H and 5m candles with the entry, stop and targets drawn.

Built on a bare :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot, so no global
figure state and no GUI backend), returning PNG bytes for ``sendPhoto``. Rendering is CPU work;
callers in the event loop run it through ``asyncio.to_thread``.

Price ticks are placed by hand, at the ladder's levels (or evenly over the range without one),
labelled like the card (:func:`~dexscan.fmt.fmt_price`). Besides reading better than
round numbers, this keeps matplotlib's automatic tick locator out of the way: it relies on
numpy's float ``//``, which native code sharing the process (LiteSVM in the demo) has been seen to
break.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from dexscan.domain import Candle, Signal
from dexscan.fmt import fmt_price

UP, DOWN = "#26a69a", "#ef5350"
#: Colour and line style of each ladder level, on the alert chart and the report's example pump:
#: the three targets are told apart by both (light to dark green; dotted, dash-dot, dashed).
LEVEL_STYLE = {
    "entry": ("#1e88e5", "-"),
    "sl": ("#e53935", "--"),
    "tp1": ("#81c784", ":"),
    "tp2": ("#43a047", "-."),
    "tp3": ("#1b5e20", "--"),
}


def render_chart(signal: Signal, candles_4h: Sequence[Candle], candles_5m: Sequence[Candle], **limits: int) -> bytes:
    """PNG of :func:`chart_figure` (``limits``: its ``max_4h`` and ``max_5m`` bars)."""
    buf = io.BytesIO()
    chart_figure(signal, candles_4h, candles_5m, **limits).savefig(buf, format="png")
    return buf.getvalue()


def chart_figure(
    signal: Signal,
    candles_4h: Sequence[Candle],
    candles_5m: Sequence[Candle],
    max_4h: int = 30,
    max_5m: int = 72,
) -> Figure:
    """The last ``max_4h`` 4H and ``max_5m`` 5m bars with the signal's ladder (:func:`render_chart` makes
    it a PNG; tests look at its axes)."""
    if not candles_4h and not candles_5m:
        raise ValueError(f"no candles to chart for {signal.mint}")
    fig = Figure(figsize=(10, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax4, ax5 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    _candles(ax4, list(candles_4h)[-max_4h:], 14400, "4H")
    _candles(ax5, list(candles_5m)[-max_5m:], 300, "5m")
    for ax in (ax4, ax5):
        _levels(ax, signal)
        _price_ticks(ax, signal)
    fig.suptitle(f"{signal.symbol or signal.mint[:8]} · {signal.strategy} · {signal.layer}", fontsize=11)
    fig.tight_layout()
    return fig


def _candles(ax: Axes, candles: list[Candle], width_s: int, label: str) -> None:
    ax.set_title(label, fontsize=9)
    ax.grid(alpha=0.2)
    ax.tick_params(labelsize=7)
    ax.set_xticks([])
    if not candles:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return
    body_w = width_s * 0.7
    for c in candles:
        color = UP if c.close >= c.open else DOWN
        ax.vlines(c.ts + width_s / 2, c.low, c.high, colors=color, linewidth=0.8)
        lo, hi = sorted((c.open, c.close))
        ax.add_patch(Rectangle((c.ts + (width_s - body_w) / 2, lo), body_w, max(hi - lo, 1e-18), color=color))
    ax.set_xlim(candles[0].ts, candles[-1].ts + width_s)
    ax.set_ylim(min(c.low for c in candles), max(c.high for c in candles))


def _levels(ax: Axes, signal: Signal) -> None:
    lv = signal.levels
    if lv is None:
        return
    values = {"entry": lv.entry, "sl": lv.sl, "tp1": lv.tp1, "tp2": lv.tp2, "tp3": lv.tp3}
    lo, hi = ax.get_ylim()
    lo, hi = min(lo, *values.values()), max(hi, *values.values())
    pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1e-9
    ax.set_ylim(lo - pad, hi + pad)
    for name, value in values.items():
        color, style = LEVEL_STYLE[name]
        ax.axhline(value, color=color, linestyle=style, linewidth=0.9, label=name.upper())
        ax.annotate(name.upper(), (1.0, value), xycoords=("axes fraction", "data"), fontsize=7, color=color,
                    ha="right", va="bottom")


def _price_ticks(ax: Axes, signal: Signal) -> None:
    lo, hi = ax.get_ylim()
    lv = signal.levels
    if lv is not None:
        ticks = sorted({lv.sl, lv.entry, lv.tp1, lv.tp2, lv.tp3})
    else:
        ticks = [lo + (hi - lo) * k / 4 for k in range(5)]
    ax.set_yticks(ticks, labels=[fmt_price(t) for t in ticks])
    ax.set_ylim(lo, hi)
