"""Confirmation: the certain layer, judged once at the 4H close (SPEC §5).

Fires when ``(close - open) / open >= rise_pct/100`` (+9.99% no, +10.00% yes; float ties: see
:func:`~.base.meets`). The detector's candle state machine reads these signals: a confirmation
after an ignition in the same candle is a hit, one without is a **missed** ignition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dexscan.domain import Candle, Reason, Timeframe
from dexscan.strategies.base import Detection, Param, Strategy, meets, register

if TYPE_CHECKING:
    from dexscan.config import Settings
    from dexscan.market import TokenMarket


@register
class Confirmation(Strategy):
    name = "confirmation"
    description = "Certain layer: the 4H candle closed at least rise_pct% above its open."
    layer = "confirmation"
    bar_timeframes = frozenset({Timeframe.H4})
    params = (
        Param("rise_pct", 10.0, "close over open of the completed 4H candle, percent (>=)",
              minimum=1e-9, maximum=10_000),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.rise_pct = float(self.values["rise_pct"])
        self._rise_factor = 1.0 + self.rise_pct / 100.0

    @classmethod
    def settings_values(cls, settings: Settings) -> Mapping[str, Any]:
        return settings.detector.confirmation.model_dump()

    def on_bar(self, tm: TokenMarket, tf: Timeframe, bar: Candle, at: int) -> Detection | None:
        if not bar.open > 0 or not meets(bar.close, bar.open * self._rise_factor):
            return None
        rise = (bar.close / bar.open - 1.0) * 100.0
        return Detection(
            strategy=self.name,
            layer=self.layer,
            candle_ts=bar.ts,
            ts=at,
            price=bar.close,
            reasons=(Reason("close_vs_4h_open", rise, ">=", self.rise_pct, "%"),),
            signal_low=bar.low,
            rise_pct=rise,
        )
