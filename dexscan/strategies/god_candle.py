"""God candle: one violent 5m bar that breaks out on heavy volume (a scanner classic, tagged).

On each completed 5m bar, all of:

* volume ``>= volume_mult x`` the mean volume of the previous ``volume_bars`` bars (and > 0);
* close ``>`` the highest high of the previous ``breakout_bars`` bars (a break, so strict);
* ``close >= lowest low * (1 + rise_pct/100)``, the lowest low taken over the last ``window_bars``
  bars including this one (the rise happened within that window);
* not a rejection: the upper wick ``high - max(open, close)`` is at most ``max_upper_wick_frac`` of
  the bar's range (a wick of exactly 60% passes, more is rejected; a zero-range bar has no wick).

Runs on 5m bars: the live poller cannot build reliable 1-minute bars, and a strategy must behave the
same live and in replay. Needs ``max(volume_bars, breakout_bars, window_bars - 1)`` completed bars.
At most once per token per 4H candle (``candle_ts`` is the firing 5m bar).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from dexscan.domain import Candle, Reason, Timeframe
from dexscan.market import H4
from dexscan.params import PluginParams
from dexscan.strategies.base import REL_TOL, Detection, Strategy, VolumeGate, exceeds, meets

if TYPE_CHECKING:
    from dexscan.market import TokenMarket


class GodCandle(Strategy["GodCandle.Params"]):
    name = "god_candle"
    description = ("A 5m bar with volume >= volume_mult x its volume_bars mean, a close above the prior "
                   "breakout_bars high, a rise >= rise_pct% within window_bars bars, and no long upper wick.")
    bar_timeframes = frozenset({Timeframe.M5})

    class Params(PluginParams):
        rise_pct: float = Field(12.0, gt=0, le=10_000,
                                description="rise from the lowest low of the window to the close, percent (>=)")
        window_bars: int = Field(10, ge=1, le=1000, description="bars (including this one) the rise may take")
        volume_mult: float = Field(5.0, gt=0, le=1000,
                                   description="bar volume vs the mean of the previous volume_bars bars (>=)")
        volume_bars: int = Field(20, ge=1, le=1000, description="bars in the volume mean")
        breakout_bars: int = Field(50, ge=1, le=5000,
                                   description="the close must exceed the highest high of this many previous bars")
        max_upper_wick_frac: float = Field(
            0.6, ge=0, le=1, description="reject when the upper wick is more than this share of the range")

    def __init__(self, params: GodCandle.Params | None = None) -> None:
        super().__init__(params)
        self._need = max(self.params.volume_bars, self.params.breakout_bars, self.params.window_bars - 1)

    def bars_needed(self) -> int:
        return self._need

    def volume_windows(self) -> tuple[int, ...]:
        return (self.params.volume_bars,)

    def volume_gate(self) -> VolumeGate:
        return VolumeGate(self.params.volume_bars, self.params.volume_mult)

    def on_bar(self, tm: TokenMarket, tf: Timeframe, bar: Candle, at: int) -> Detection | None:
        v = bar.volume
        if tm.count5 < self._need or not v > 0:
            return None
        p = self.params
        mean = tm.volumes[p.volume_bars].total / p.volume_bars
        threshold = p.volume_mult * mean
        if v < threshold - REL_TOL * threshold:
            return None
        m5 = tm.m5
        n = len(m5)
        prior_high = max(m5[i].high for i in range(n - p.breakout_bars, n))
        if not exceeds(bar.close, prior_high):
            return None
        low = bar.low
        for i in range(n - (p.window_bars - 1), n):
            if m5[i].low < low:
                low = m5[i].low
        if not low > 0 or not meets(bar.close, low * (1.0 + p.rise_pct / 100.0)):
            return None
        rng = bar.high - bar.low
        wick = (bar.high - max(bar.open, bar.close)) / rng if rng > 0 else 0.0
        if exceeds(wick, p.max_upper_wick_frac) or not self.once_per_window(tm.mint, bar.ts - bar.ts % H4):
            return None
        rise = (bar.close / low - 1.0) * 100.0
        ratio = v / mean if mean > 0 else None
        volume_reason = (Reason(f"volume_vs_mean{p.volume_bars}", ratio, ">=", p.volume_mult, "x")
                         if ratio is not None else Reason("volume_after_empty_bars", v, ">", 0.0, " USD"))
        reasons = (
            Reason(f"rise_in_{p.window_bars}_bars", rise, ">=", p.rise_pct, "%"),
            volume_reason,
            Reason(f"close_vs_prior_{p.breakout_bars}_bar_high", bar.close, ">", prior_high),
            Reason("upper_wick_share", wick, "<=", p.max_upper_wick_frac),
        )
        return self.bar_detection(bar, at, reasons, volume_ratio=ratio,
                                  extras={"window_rise_pct": rise, "upper_wick_share": wick})
