"""The strategy plugin interface and its registry (in the spirit of freqtrade's pairlist handlers).

A strategy is a self-describing class: ``name``, ``description``, ``layer``, ``params`` (defaults,
types, ranges, meaning) and ``point_in_time_safe`` (True when it only uses what a bar replay can
show it, so backfill may judge it on history). Adding a strategy is one file::

    @register
    class MyStrategy(Strategy):
        name = "my_strategy"
        description = "..."
        params = (Param("threshold", 5.0, "what it means", minimum=0),)
        bar_timeframes = frozenset({Timeframe.M5})

        def on_bar(self, tm, tf, bar, at): ...

plus an import line in ``dexscan/strategies/__init__.py``. Strategies never veto each other: the
detector runs every enabled one and tags each :class:`Detection` with the strategy's name.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from dexscan.domain import Candle, Layer, Reason, Timeframe
from dexscan.errors import ConfigError

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
class Param:
    """One tunable of a strategy: default, allowed range and meaning."""

    name: str
    default: float | int
    description: str
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False

    def validate(self, strategy: str, value: Any) -> float | int:
        """``value`` as the declared type, or ConfigError naming the strategy and the parameter."""
        where = f"strategy {strategy}: parameter {self.name}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        if self.integer and float(value) != int(value):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"{where}: {value} is below the minimum {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ConfigError(f"{where}: {value} is above the maximum {self.maximum}")
        return int(value) if self.integer else float(value)


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


class Strategy:
    """Base class of every strategy plugin. Subclasses set the class attributes and a hook."""

    name: ClassVar[str]
    description: ClassVar[str]
    layer: ClassVar[Layer] = "strategy"
    point_in_time_safe: ClassVar[bool] = True
    params: ClassVar[tuple[Param, ...]] = ()
    #: Completed-bar timeframes whose bars :meth:`on_bar` wants.
    bar_timeframes: ClassVar[frozenset[Timeframe]] = frozenset()
    #: True when :meth:`on_price` wants every price observation.
    observes_price: ClassVar[bool] = False

    def __init__(self, **values: Any) -> None:
        known = {p.name: p for p in self.params}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"strategy {self.name}: unknown parameter(s) {', '.join(unknown)}; "
                              f"known: {', '.join(known) or '(none)'}")
        self.values: dict[str, float | int] = {
            p.name: p.validate(self.name, values.get(p.name, p.default)) for p in self.params
        }
        self._fired: dict[str, int] = {}

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def settings_values(cls, settings: Settings) -> Mapping[str, Any]:
        """This strategy's parameter values from the settings (default: none, i.e. defaults)."""
        return {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Strategy:
        values = cls.settings_values(settings)
        return cls(**{p.name: values[p.name] for p in cls.params if p.name in values})

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
        """True the first time this strategy fires for ``mint`` in the 4H window ``window_ts``."""
        if self._fired.get(mint) == window_ts:
            return False
        self._fired[mint] = window_ts
        return True

    def already_fired(self, mint: str, window_ts: int) -> bool:
        return self._fired.get(mint) == window_ts

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Self-description for ``dexscan config`` and docs."""
        return {
            "name": cls.name,
            "description": cls.description,
            "layer": cls.layer,
            "point_in_time_safe": cls.point_in_time_safe,
            "params": [
                {"name": p.name, "default": p.default, "min": p.minimum, "max": p.maximum,
                 "description": p.description}
                for p in cls.params
            ],
        }


#: Registered strategy classes by name, in registration order.
STRATEGY_REGISTRY: dict[str, type[Strategy]] = {}

_S = TypeVar("_S", bound=type[Strategy])


def register(cls: _S) -> _S:
    """Class decorator: make a strategy available to :func:`build_strategies`."""
    if cls.name in STRATEGY_REGISTRY and STRATEGY_REGISTRY[cls.name] is not cls:
        raise ValueError(f"strategy {cls.name!r} is registered twice")
    STRATEGY_REGISTRY[cls.name] = cls
    return cls


def build_strategies(settings: Settings, names: Sequence[str] | None = None) -> list[Strategy]:
    """The enabled strategies (``settings.strategies.enabled`` unless ``names``), configured."""
    wanted = list(settings.strategies.enabled if names is None else names)
    unknown = [n for n in wanted if n not in STRATEGY_REGISTRY]
    if unknown:
        raise ConfigError(f"strategies.enabled: unknown strategy {', '.join(map(repr, unknown))}; "
                          f"known: {', '.join(STRATEGY_REGISTRY)}")
    seen: set[str] = set()
    out: list[Strategy] = []
    for n in wanted:
        if n not in seen:
            seen.add(n)
            out.append(STRATEGY_REGISTRY[n].from_settings(settings))
    return out
