"""Confirmation: the certain layer, judged once at the 4H close (SPEC §5).

Fires when ``(close - open) / open >= rise_pct/100`` (+9.99% no, +10.00% yes; float ties: see
:func:`~.base.meets`). The detector's candle state machine reads these signals: a confirmation
after an ignition in the same candle is a hit, one without is a **missed** ignition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from dexscan.domain import Candle, Reason, Timeframe
from dexscan.params import PluginParams
from dexscan.strategies.base import Detection, Strategy, meets

if TYPE_CHECKING:
    from dexscan.market import TokenMarket


class Confirmation(Strategy["Confirmation.Params"]):
    name = "confirmation"
    description = "Certain layer: the 4H candle closed at least rise_pct% above its open."
    layer = "confirmation"
    bar_timeframes = frozenset({Timeframe.H4})

    class Params(PluginParams):
        rise_pct: float = Field(10.0, gt=0, le=10_000,
                                description="close over open of the completed 4H candle, percent (>=)")

    def on_bar(self, tm: TokenMarket, tf: Timeframe, bar: Candle, at: int) -> Detection | None:
        rise_pct = self.params.rise_pct
        if not bar.open > 0 or not meets(bar.close, bar.open * (1.0 + rise_pct / 100.0)):
            return None
        rise = (bar.close / bar.open - 1.0) * 100.0
        return self.bar_detection(bar, at, (Reason("close_vs_4h_open", rise, ">=", rise_pct, "%"),),
                                  rise_pct=rise)
