"""Volume surge: a 5m bar far outside its volume distribution, closing near its high (tagged).

On each completed 5m bar: volume ``>= mean + sigmas * std`` of the previous ``bars`` bars'
volumes (population std), volume strictly above that mean (so a perfectly flat window does not
"surge" on an equal bar), and the close in the upper ``close_in_top_frac`` of the bar's range:
``(close - low) / (high - low) >= 1 - close_in_top_frac``. A bar with no range has no "upper
third" and does not fire. At most once per token per 4H candle (``candle_ts`` is the firing bar).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from dexscan.domain import Candle, Reason, Timeframe
from dexscan.market import H4
from dexscan.params import PluginParams
from dexscan.strategies.base import REL_TOL, Detection, Strategy, VolumeGate, meets

if TYPE_CHECKING:
    from dexscan.market import TokenMarket


class VolumeSurge(Strategy["VolumeSurge.Params"]):
    name = "volume_surge"
    description = ("A 5m bar with volume >= mean + sigmas x std of the previous bars bars, closing in the "
                   "upper close_in_top_frac of its range.")
    bar_timeframes = frozenset({Timeframe.M5})

    class Params(PluginParams):
        sigmas: float = Field(4.0, gt=0, le=100, description="standard deviations above the window mean (>=)")
        bars: int = Field(20, ge=2, le=1000, description="previous bars in the volume window")
        close_in_top_frac: float = Field(0.3333, gt=0, le=1,
                                         description="the close must lie in this top share of the bar's range")

    def __init__(self, params: VolumeSurge.Params | None = None) -> None:
        super().__init__(params)
        self._min_position = 1.0 - self.params.close_in_top_frac

    def bars_needed(self) -> int:
        return self.params.bars

    def volume_windows(self) -> tuple[int, ...]:
        return (self.params.bars,)

    def volume_gate(self) -> VolumeGate:
        return VolumeGate(self.params.bars, 1.0, self.params.sigmas)

    def on_bar(self, tm: TokenMarket, tf: Timeframe, bar: Candle, at: int) -> Detection | None:
        p = self.params
        if tm.count5 < p.bars:
            return None
        window = tm.volumes[p.bars]
        v = bar.volume
        mean = window.total / p.bars
        if not v > mean + REL_TOL * mean:
            return None
        rng = bar.high - bar.low
        if not rng > 0:
            return None
        position = (bar.close - bar.low) / rng
        if not meets(position, self._min_position):
            return None
        std = window.pstdev()
        if not meets(v, mean + p.sigmas * std) or not self.once_per_window(tm.mint, bar.ts - bar.ts % H4):
            return None
        if std > 0:
            z = (v - mean) / std
            volume_reason = Reason(f"volume_z{p.bars}", z, ">=", p.sigmas, "σ")
        else:
            z = None
            volume_reason = Reason(f"volume_vs_flat_mean{p.bars}", v, ">", mean, " USD")
        extras = {"close_position": position} if z is None else {"close_position": position, "volume_z": z}
        return self.bar_detection(bar, at, (volume_reason, Reason("close_position_in_range", position, ">=",
                                                                  self._min_position)),
                                  volume_ratio=v / mean if mean > 0 else None, extras=extras)
