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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dexscan.domain import Candle, Reason, Timeframe
from dexscan.market import H4
from dexscan.strategies.base import REL_TOL, Detection, Param, Strategy, VolumeGate, exceeds, meets, register

if TYPE_CHECKING:
    from dexscan.config import Settings
    from dexscan.market import TokenMarket


@register
class GodCandle(Strategy):
    name = "god_candle"
    description = ("A 5m bar with volume >= volume_mult x its volume_bars mean, a close above the prior "
                   "breakout_bars high, a rise >= rise_pct% within window_bars bars, and no long upper wick.")
    bar_timeframes = frozenset({Timeframe.M5})
    params = (
        Param("rise_pct", 12.0, "rise from the lowest low of the window to the close, percent (>=)",
              minimum=1e-9, maximum=10_000),
        Param("window_bars", 10, "bars (including this one) the rise may take", minimum=1, maximum=1000,
              integer=True),
        Param("volume_mult", 5.0, "bar volume vs the mean of the previous volume_bars bars (>=)",
              minimum=1e-9, maximum=1000),
        Param("volume_bars", 20, "bars in the volume mean", minimum=1, maximum=1000, integer=True),
        Param("breakout_bars", 50, "the close must exceed the highest high of this many previous bars",
              minimum=1, maximum=5000, integer=True),
        Param("max_upper_wick_frac", 0.6, "reject when the upper wick is more than this share of the range",
              minimum=0, maximum=1),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        v = self.values
        self.rise_pct = float(v["rise_pct"])
        self.window_bars = int(v["window_bars"])
        self.volume_mult = float(v["volume_mult"])
        self.volume_bars = int(v["volume_bars"])
        self.breakout_bars = int(v["breakout_bars"])
        self.max_upper_wick_frac = float(v["max_upper_wick_frac"])
        self._need = max(self.volume_bars, self.breakout_bars, self.window_bars - 1)

    @classmethod
    def settings_values(cls, settings: Settings) -> Mapping[str, Any]:
        return settings.strategies.god_candle.model_dump()

    def bars_needed(self) -> int:
        return self._need

    def volume_windows(self) -> tuple[int, ...]:
        return (self.volume_bars,)

    def volume_gate(self) -> VolumeGate:
        return VolumeGate(self.volume_bars, self.volume_mult)

    def on_bar(self, tm: TokenMarket, tf: Timeframe, bar: Candle, at: int) -> Detection | None:
        v = bar.volume
        if tm.count5 < self._need or not v > 0:
            return None
        mean = tm.volumes[self.volume_bars].total / self.volume_bars
        threshold = self.volume_mult * mean
        if v < threshold - REL_TOL * threshold:
            return None
        window = bar.ts - bar.ts % H4
        if self._fired.get(tm.mint) == window:
            return None
        m5 = tm.m5
        n = len(m5)
        prior_high = max(m5[i].high for i in range(n - self.breakout_bars, n))
        if not exceeds(bar.close, prior_high):
            return None
        low = bar.low
        for i in range(n - (self.window_bars - 1), n):
            if m5[i].low < low:
                low = m5[i].low
        if not low > 0 or not meets(bar.close, low * (1.0 + self.rise_pct / 100.0)):
            return None
        rng = bar.high - bar.low
        wick = (bar.high - max(bar.open, bar.close)) / rng if rng > 0 else 0.0
        if exceeds(wick, self.max_upper_wick_frac):
            return None
        self._fired[tm.mint] = window
        rise = (bar.close / low - 1.0) * 100.0
        ratio = v / mean if mean > 0 else None
        volume_reason = (Reason(f"volume_vs_mean{self.volume_bars}", ratio, ">=", self.volume_mult, "x")
                         if ratio is not None else Reason("volume_after_empty_bars", v, ">", 0.0, " USD"))
        return Detection(
            strategy=self.name,
            layer=self.layer,
            candle_ts=bar.ts,
            ts=at,
            price=bar.close,
            reasons=(
                Reason(f"rise_in_{self.window_bars}_bars", rise, ">=", self.rise_pct, "%"),
                volume_reason,
                Reason(f"close_vs_prior_{self.breakout_bars}_bar_high", bar.close, ">", prior_high),
                Reason("upper_wick_share", wick, "<=", self.max_upper_wick_frac),
            ),
            signal_low=bar.low,
            volume_ratio=ratio,
            extras={"window_rise_pct": rise, "upper_wick_share": wick},
        )
