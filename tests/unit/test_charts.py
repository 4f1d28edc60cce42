"""Charts a trader reads (issue 16): prices as the card writes them, targets told apart, round
times, whole-number counts; looked at through the matplotlib objects, not the pixels."""

from __future__ import annotations

from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from dexscan.alerts.charts import chart_figure
from dexscan.domain import Candle, Levels, Timeframe
from dexscan.evaluate import fmt_minutes
from dexscan.fmt import fmt_price
from dexscan.report import PumpExample, example_figure, lead_time_figure, time_ticks
from tests.unit.test_alert_format import MINT, TS, make_signal

CANDLE = Timeframe.H4.floor(TS)  # 2025-11-21 04:00 UTC (TS is 04:40)
#: A meme price around 1.2e-5 USD: matplotlib's default formatter writes such an axis as 1.1 … 1.3 "1e−5"
LEVELS = Levels(1.2e-5, 1.1e-5, 1.3e-5, 1.45e-5, 1.6e-5, 6e-7, "4h", "atr")


def _bars(start: int, step: int, n: int, price: float = 1.2e-5) -> list[Candle]:
    return [Candle(start + k * step, price, price * 1.04, price * 0.97, price * 1.01, 100.0) for k in range(n)]


def _level_lines(ax: object) -> dict[str, tuple[str, str]]:
    lines = [ln for ln in ax.get_lines() if isinstance(ln, Line2D)]  # type: ignore[attr-defined]
    return {str(ln.get_label()): (str(ln.get_color()), str(ln.get_linestyle())) for ln in lines
            if str(ln.get_label()) in ("TP1", "TP2", "TP3", "SL", "entry", "ENTRY")}


def test_example_pump_prices_have_no_offset_and_targets_differ() -> None:
    sig = make_signal(levels=LEVELS, price=1.2e-5)
    ex = PumpExample(MINT, "PUMP", CANDLE, _bars(CANDLE - 10 * 14400, 14400, 11), _bars(CANDLE, 300, 48), sig)
    fig = example_figure(ex)
    fig.canvas.draw()
    ax4, ax5 = fig.axes
    for ax in (ax4, ax5):
        formatter = ax.yaxis.get_major_formatter()
        assert isinstance(formatter, FuncFormatter) and formatter.get_offset() == ""
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == [fmt_price(v) for v in ax.get_yticks()]
        assert len(labels) >= 4 and all(lb.startswith("$0.0000") and "e" not in lb for lb in labels)
        styles = _level_lines(ax)
        assert set(styles) == {"entry", "SL", "TP1", "TP2", "TP3"}
        targets = [styles[k] for k in ("TP1", "TP2", "TP3")]
        assert len({c for c, _ in targets}) == 3 and len({s for _, s in targets}) == 3  # colour and dash both
    assert [t.get_text() for t in ax5.get_xticklabels()] == ["11-21\n04:00", "05:00", "06:00", "07:00", "08:00"]
    assert [t.get_text() for t in ax4.get_xticklabels()] == [  # 44 hours: every 8 hours
        "11-19\n16:00", "11-20\n00:00", "08:00", "16:00", "11-21\n00:00", "08:00"]


def test_time_ticks_are_round_and_dated_where_the_day_changes() -> None:
    day = 1_763_683_200  # 2025-11-21 00:00 UTC
    assert time_ticks(day - 3 * 3600, day + 2 * 3600) == (
        [day - 3 * 3600, day - 2 * 3600, day - 3600, day, day + 3600, day + 7200],
        ["11-20\n21:00", "22:00", "23:00", "11-21\n00:00", "01:00", "02:00"])
    assert time_ticks(day + 130, day + 130 + 1500) == (
        [day + 300, day + 600, day + 900, day + 1200, day + 1500],
        ["11-21\n00:05", "00:10", "00:15", "00:20", "00:25"])


def test_alert_chart_tells_the_targets_apart_and_labels_prices_like_the_card() -> None:
    fig = chart_figure(make_signal(levels=LEVELS, price=1.2e-5), _bars(CANDLE - 10 * 14400, 14400, 11),
                       _bars(CANDLE, 300, 8))
    for ax in fig.axes:
        styles = _level_lines(ax)
        assert set(styles) == {"ENTRY", "SL", "TP1", "TP2", "TP3"}
        assert len({styles[k] for k in ("TP1", "TP2", "TP3")}) == 3
        assert len({styles[k][1] for k in ("TP1", "TP2", "TP3")}) == 3
        assert [t.get_text() for t in ax.get_yticklabels()] == [
            "$0.00001100", "$0.00001200", "$0.00001300", "$0.00001450", "$0.00001600"]


def test_lead_time_histogram_counts_whole_pumps_in_5_minute_bins() -> None:
    fig = lead_time_figure([600.0, 900.0, 900.0, 1200.0, 2100.0])
    fig.canvas.draw()
    ax = fig.axes[0]
    ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    assert ticks == [0.0, 1.0, 2.0]  # not 0, 0.25, 0.5, ...
    bars = ax.patches
    assert [(p.get_x(), p.get_width(), p.get_height()) for p in bars] == [  # type: ignore[attr-defined]
        (10.0, 5.0, 1.0), (15.0, 5.0, 2.0), (20.0, 5.0, 1.0), (25.0, 5.0, 0.0), (30.0, 5.0, 0.0), (35.0, 5.0, 1.0)]


def test_lead_time_in_minutes() -> None:
    assert [fmt_minutes(s) for s in (900.0, 450.0, 3600.0, 0.0, None)] == [
        "15 min", "7.5 min", "60 min", "0 min", "–"]
