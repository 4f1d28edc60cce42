"""Ignition: the early layer, judged on the *forming* 4H candle at every price observation (SPEC §5).

Fires when both hold:

* ``price_now >= open_4h * (1 + rise_pct/100)`` — ``>=``: +2.00% fires, +1.99% does not;
* ``volume_5m > volume_mult * SMA(volume of the previous sma_bars completed 5m bars)`` — strict:
  exactly 3.00x does not fire. With an SMA of 0 (twenty empty bars) any traded volume exceeds it.

``volume_5m`` is the tick's rolling DexScreener m5 volume live, or the completed 5m bar's volume in a
bar replay; ``price_now`` is the tick price, or that bar's close (an intra-bar high that fell back
does not count: a replay only knows where the bar ended). Float ties: see :func:`~.base.meets`.

At most once per token per 4H candle. Before ``sma_bars`` completed 5m bars exist the token is
warming up (``Detector.warming_up`` says how many are missing) and ignition is not judged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from dexscan.domain import Reason
from dexscan.params import PluginParams
from dexscan.strategies.base import REL_TOL, Detection, Strategy, VolumeGate

if TYPE_CHECKING:
    from dexscan.market import TokenMarket


class Ignition(Strategy["Ignition.Params"]):
    name = "ignition"
    description = ("Early layer: the forming 4H candle is up rise_pct% over its open while the 5m volume "
                   "exceeds volume_mult x the SMA of the previous sma_bars completed 5m bars; once per candle.")
    layer = "ignition"
    observes_price = True

    class Params(PluginParams):
        rise_pct: float = Field(2.0, gt=0, le=1000,
                                description="rise of the price over the forming 4H candle's open, percent (>=)")
        volume_mult: float = Field(3.0, gt=0, le=1000,
                                   description="5m volume must exceed this multiple of its SMA (strict >)")
        sma_bars: int = Field(20, ge=1, le=1000,
                              description="completed 5m bars in the volume SMA (and the warm-up length)")

    def __init__(self, params: Ignition.Params | None = None) -> None:
        super().__init__(params)
        self._rise_factor = 1.0 + self.params.rise_pct / 100.0

    def bars_needed(self) -> int:
        return self.params.sma_bars

    def volume_windows(self) -> tuple[int, ...]:
        return (self.params.sma_bars,)

    def price_gate(self) -> float:
        return self._rise_factor

    def volume_gate(self) -> VolumeGate:
        return VolumeGate(self.params.sma_bars, self.params.volume_mult)

    def on_price(self, tm: TokenMarket, ts: int, price: float, volume_5m: float | None) -> Detection | None:
        f = tm.h4.forming
        p = self.params
        sma_bars = p.sma_bars
        if f is None or volume_5m is None or tm.count5 < sma_bars:
            return None
        open_ = f.open
        if not open_ > 0:
            return None
        price_threshold = open_ * self._rise_factor
        if price < price_threshold - REL_TOL * price_threshold:
            return None
        sma = tm.volumes[sma_bars].total / sma_bars
        volume_threshold = p.volume_mult * sma
        if not volume_5m > volume_threshold + REL_TOL * volume_threshold or not self.once_per_window(tm.mint, f.ts):
            return None
        rise = (price / open_ - 1.0) * 100.0
        if sma > 0:
            ratio: float | None = volume_5m / sma
            volume_reason = Reason(f"volume_5m_vs_sma{sma_bars}", volume_5m / sma, ">", p.volume_mult, "x")
        else:
            ratio = None
            volume_reason = Reason("volume_5m_after_empty_bars", volume_5m, ">", 0.0, " USD")
        low = f.low
        live = tm.live
        if live is not None and live.ts >= f.ts and live.low < low:
            low = live.low
        return Detection(
            strategy=self.name,
            layer=self.layer,
            candle_ts=f.ts,
            ts=ts,
            price=price,
            reasons=(Reason("rise_vs_4h_open", rise, ">=", p.rise_pct, "%"), volume_reason),
            signal_low=low,
            rise_pct=rise,
            volume_ratio=ratio,
        )
