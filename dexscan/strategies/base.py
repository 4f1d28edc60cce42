"""The strategy plugin interface (in the spirit of freqtrade's pairlist handlers).

A strategy is a self-describing class: ``name``, ``description``, ``layer``, one ``Params`` model
(defaults, bounds, meaning: :mod:`dexscan.params`; its ``[strategies.<name>]`` table is built from
it) and ``point_in_time_safe`` (True when it only uses what a bar replay can show it: ``evaluate``
replays only those and lists the others). Adding a strategy is one file::

    class MyStrategy(Strategy["MyStrategy.Params"]):
        name = "my_strategy"
        description = "..."
        bar_timeframes = frozenset({Timeframe.M5})

        class Params(PluginParams):
            threshold: float = Field(5.0, gt=0, description="what it means")

        def on_bar(self, tm, tf, bar, at): ...  # reads self.params.threshold

plus its line in :data:`dexscan.plugins.STRATEGIES` (and its table in ``default.toml``). Strategies
never veto each other: the detector runs every enabled one and tags each :class:`Detection` with the
strategy's name. A strategy fires at most once per token and 4H window: :meth:`Strategy.once_per_window`.

Two hooks, both pure (time is an argument, no I/O):

* :meth:`Strategy.on_price` — a price observation: a live tick, or the close of a completed 5m bar
  in replay (``volume_5m`` = the tick's rolling m5 volume, or that bar's volume).
* :meth:`Strategy.on_bar` — a completed bar of a timeframe in ``bar_timeframes``. ``tm`` does not
  yet hold ``bar`` in that timeframe's book, so "the previous N bars" is simply the book's last N.

**Thresholds and float error.** Rules are stated on decimal numbers (+2.00% fires, +1.99% does
not), but ``0.1 * 1.02`` is ``0.10200000000000001`` in binary floating point. :func:`meets` and
:func:`exceeds` compare with a relative tolerance of 1e-9 *in the boundary's favour of the rule's
wording*: ``>=`` counts a value within 1e-9 (relative) below the threshold as met, ``>`` counts a
value within 1e-9 above it as not exceeded. 1e-9 is far below any price or volume precision a
provider reports, and far above accumulated float error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from dexscan.domain import Candle, Layer, Reason, Timeframe
from dexscan.params import P, Plugin

if TYPE_CHECKING:
    from dexscan.config import Settings
    from dexscan.market import TokenMarket

#: Relative tolerance of threshold comparisons (see the module docstring).
REL_TOL = 1e-9
#: Relative slack of the detector's gate checks (see :meth:`Strategy.price_gate`): far above REL_TOL.
GATE_SLACK = 1e-6


def meets(value: float, threshold: float) -> bool:
    """``value >= threshold``, where a value within REL_TOL (relative) below counts as equal."""
    return value >= threshold - REL_TOL * abs(threshold)


def exceeds(value: float, threshold: float) -> bool:
    """``value > threshold``, where a value within REL_TOL (relative) above counts as equal."""
    return value > threshold + REL_TOL * abs(threshold)


@dataclass(frozen=True, slots=True)
class VolumeGate:
    """A necessary condition on an observed volume ``v`` (see :meth:`Strategy.volume_gate`):
    ``v >= mult * mean + sigmas * std`` of the volumes of the previous ``bars`` completed 5m bars
    (``tm.volume_window(bars)``; the detector checks the ``std`` term with a cheap lower bound,
    :meth:`~dexscan.market.RollingVolume.std_floor`)."""

    bars: int
    mult: float = 1.0
    sigmas: float = 0.0


@dataclass(frozen=True, slots=True)
class Detection:
    """What a strategy found; the detector turns it into a :class:`~dexscan.domain.Signal`.

    ``signal_low`` is the low of the signal candle (for the structural stop); ``extras`` are
    strategy-specific numbers worth keeping with the signal's features.
    """

    strategy: str
    layer: Layer
    candle_ts: int
    ts: int
    price: float
    reasons: tuple[Reason, ...]
    signal_low: float
    rise_pct: float | None = None
    volume_ratio: float | None = None
    extras: Mapping[str, float] = field(default_factory=dict)


_S = TypeVar("_S", bound="Strategy")


class Strategy(Plugin[P]):
    """Base class of every strategy plugin. Subclasses set the class attributes, ``Params`` and a hook."""

    kind = "strategy"
    layer: ClassVar[Layer] = "strategy"
    #: Completed-bar timeframes whose bars :meth:`on_bar` wants.
    bar_timeframes: ClassVar[frozenset[Timeframe]] = frozenset()
    #: True when :meth:`on_price` wants every price observation.
    observes_price: ClassVar[bool] = False

    def __init__(self, params: P | None = None) -> None:
        super().__init__(params)
        self._fired: dict[str, int] = {}

    @classmethod
    def from_settings(cls: type[_S], settings: Settings) -> _S:
        """The strategy with its ``[strategies.<name>]`` parameters."""
        return cls(settings.strategies.params_for(cls.Params))

    # -- sizing: what the market books must hold for this strategy ----------------------------

    def bars_needed(self) -> int:
        """Completed 5m bars this strategy looks back over (sizes the 5m ring)."""
        return 0

    def volume_windows(self) -> tuple[int, ...]:
        """Rolling 5m volume windows (bar counts) this strategy reads via ``tm.volume_window(n)``."""
        return ()

    # -- gates: necessary conditions the detector checks before calling a hook ----------------
    #
    # Almost every observation fires nothing, and with thousands of tokens the calls that say so
    # are most of the detector's work. A strategy may state a cheap *necessary* condition of its
    # hook; the detector then skips the call when the condition clearly fails (with a relative
    # slack of GATE_SLACK, a thousand times REL_TOL, so float rounding can never skip a call that
    # would have fired). The hook still decides everything exactly: a gate changes speed, never
    # results — provided the hook has no side effects when it does not fire (keeps no per-bar
    # state), which a strategy with a gate must guarantee. None (the default) means "call me
    # every time".

    def price_gate(self) -> float | None:
        """A factor ``k``: :meth:`on_price` can only fire when ``price >= k * open`` of the forming 4H candle."""
        return None

    def volume_gate(self) -> VolumeGate | None:
        """The hooks can only fire when the observed volume passes this :class:`VolumeGate`. The
        observed volume is the bar's for :meth:`on_bar` on a 5m bar, ``volume_5m`` for
        :meth:`on_price` (an observation without one is not gated)."""
        return None

    # -- hooks -------------------------------------------------------------------------------

    def on_price(self, tm: TokenMarket, ts: int, price: float, volume_5m: float | None) -> Detection | None:
        return None

    def on_bar(self, tm: TokenMarket, tf: Timeframe, bar: Candle, at: int) -> Detection | None:
        return None

    def forget(self, mint: str) -> None:
        """Drop per-token state (the token left the universe)."""
        self._fired.pop(mint, None)

    # -- helpers -------------------------------------------------------------------------------

    def once_per_window(self, mint: str, window_ts: int) -> bool:
        """True the first time this strategy fires for ``mint`` in the 4H window ``window_ts`` (and
        remembers it): call it last, when every other condition of a detection holds."""
        if self._fired.get(mint) == window_ts:
            return False
        self._fired[mint] = window_ts
        return True

    def bar_detection(self, bar: Candle, at: int, reasons: tuple[Reason, ...], **extra: Any) -> Detection:
        """A detection on the completed ``bar``: entered at its close, its low as the signal low."""
        return Detection(strategy=self.name, layer=self.layer, candle_ts=bar.ts, ts=at, price=bar.close,
                         reasons=reasons, signal_low=bar.low, **extra)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {**super().describe(), "layer": cls.layer}
