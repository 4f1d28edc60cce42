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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dexscan.domain import Reason
from dexscan.strategies.base import REL_TOL, Detection, Param, Strategy, VolumeGate, register

if TYPE_CHECKING:
    from dexscan.config import Settings
    from dexscan.market import TokenMarket


@register
class Ignition(Strategy):
    name = "ignition"
    description = ("Early layer: the forming 4H candle is up rise_pct% over its open while the 5m volume "
                   "exceeds volume_mult x the SMA of the previous sma_bars completed 5m bars; once per candle.")
    layer = "ignition"
    observes_price = True
    params = (
        Param("rise_pct", 2.0, "rise of the price over the forming 4H candle's open, percent (>=)",
              minimum=1e-9, maximum=1000),
        Param("volume_mult", 3.0, "5m volume must exceed this multiple of its SMA (strict >)",
              minimum=1e-9, maximum=1000),
        Param("sma_bars", 20, "completed 5m bars in the volume SMA (and the warm-up length)",
              minimum=1, maximum=1000, integer=True),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.rise_pct = float(self.values["rise_pct"])
        self.volume_mult = float(self.values["volume_mult"])
        self.sma_bars = int(self.values["sma_bars"])
        self._rise_factor = 1.0 + self.rise_pct / 100.0

    @classmethod
    def settings_values(cls, settings: Settings) -> Mapping[str, Any]:
        return settings.detector.ignition.model_dump()

    def bars_needed(self) -> int:
        return self.sma_bars

    def volume_windows(self) -> tuple[int, ...]:
        return (self.sma_bars,)

    def price_gate(self) -> float:
        return self._rise_factor

    def volume_gate(self) -> VolumeGate:
        return VolumeGate(self.sma_bars, self.volume_mult)

    def on_price(self, tm: TokenMarket, ts: int, price: float, volume_5m: float | None) -> Detection | None:
        f = tm.h4.forming
        if f is None or volume_5m is None or tm.count5 < self.sma_bars:
            return None
        open_ = f.open
        if not open_ > 0:
            return None
        price_threshold = open_ * self._rise_factor
        if price < price_threshold - REL_TOL * price_threshold:
            return None
        if self._fired.get(tm.mint) == f.ts:
            return None
        sma = tm.volumes[self.sma_bars].total / self.sma_bars
        volume_threshold = self.volume_mult * sma
        if not volume_5m > volume_threshold + REL_TOL * volume_threshold:
            return None
        self._fired[tm.mint] = f.ts
        rise = (price / open_ - 1.0) * 100.0
        if sma > 0:
            ratio: float | None = volume_5m / sma
            volume_reason = Reason(f"volume_5m_vs_sma{self.sma_bars}", volume_5m / sma, ">", self.volume_mult, "x")
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
            reasons=(Reason("rise_vs_4h_open", rise, ">=", self.rise_pct, "%"), volume_reason),
            signal_low=low,
            rise_pct=rise,
            volume_ratio=ratio,
        )
