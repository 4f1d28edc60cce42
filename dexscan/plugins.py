"""The plugin registry: every strategy and gate dexscan ships, in one place.

Each plugin is a class with a ``name``, a ``description``, ``point_in_time_safe`` and one
``Params`` model (:mod:`dexscan.params`). From these lists :mod:`dexscan.config` builds the settings:

* ``[strategies.<name>]``: one table per strategy, the strategy's ``Params``;
* ``[gates]``: one flat table holding every gate's ``Params`` fields (two gates never share a key).

The order here is the order gates are evaluated and shown, and the order of ``describe``; strategies
run in the order of ``strategies.enabled``. Adding a plugin: write its class, add it below, add its
keys to ``dexscan/default.toml`` (tests/unit/test_plugins.py checks the file against these models).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from dexscan.errors import ConfigError
from dexscan.gates.base import Gate, GateBase
from dexscan.gates.market import LiquidityGate, PriceImpactGate, Volume24hGate
from dexscan.gates.safety import FreezeAuthorityGate, MintAuthorityGate, Token2022ExtensionsGate, Top10HoldersGate
from dexscan.params import Plugin
from dexscan.strategies.base import Strategy
from dexscan.strategies.confirmation import Confirmation
from dexscan.strategies.god_candle import GodCandle
from dexscan.strategies.ignition import Ignition
from dexscan.strategies.volume_surge import VolumeSurge

if TYPE_CHECKING:
    from dexscan.config import GateSettings, Settings


_T = TypeVar("_T", bound=type[Plugin])


def _by_name(classes: Sequence[_T]) -> dict[str, _T]:
    out: dict[str, _T] = {}
    for cls in classes:
        if cls.name in out:
            raise ValueError(f"plugin {cls.name!r} is listed twice")
        out[cls.name] = cls
    return out


#: Strategies by name.
STRATEGIES: Mapping[str, type[Strategy]] = _by_name([Ignition, Confirmation, GodCandle, VolumeSurge])

#: Gates by name, in evaluation (and display) order: market gates, then on-chain safety.
GATES: Mapping[str, type[GateBase]] = _by_name([
    LiquidityGate, Volume24hGate, PriceImpactGate,
    MintAuthorityGate, FreezeAuthorityGate, Token2022ExtensionsGate, Top10HoldersGate,
])


def build_strategies(settings: Settings, names: Sequence[str] | None = None) -> list[Strategy]:
    """The enabled strategies (``settings.strategies.enabled`` unless ``names``), configured."""
    wanted = list(settings.strategies.enabled if names is None else names)
    unknown = [n for n in wanted if n not in STRATEGIES]
    if unknown:
        raise ConfigError(f"strategies.enabled: unknown strategy {', '.join(map(repr, unknown))}; "
                          f"known: {', '.join(STRATEGIES)}")
    return [STRATEGIES[n].from_settings(settings) for n in dict.fromkeys(wanted)]


def build_gates(settings: GateSettings) -> list[Gate]:
    """The enabled gates, each with its parameters from ``[gates]``.

    The mint/freeze authority gates follow ``require_*_renounced``; the top-10 holder gate exists
    only when ``max_top10_pct >= 0`` (its share is reported in the extension gate's details always).
    """
    gates: list[Gate] = []
    for cls in GATES.values():
        params = settings.params_for(cls.Params)
        if cls.enabled(params):
            gates.append(cls(params))
    return gates


def not_point_in_time_safe(plugins: Mapping[str, type[Strategy]] | Mapping[str, type[GateBase]]) -> list[str]:
    """Names of the plugins that cannot judge history (they read the present, e.g. the chain now)."""
    return [name for name, cls in plugins.items() if not cls.point_in_time_safe]


def describe() -> dict[str, list[dict[str, Any]]]:
    """Every plugin's self-description (name, meaning, parameters with defaults and bounds)."""
    return {"strategies": [cls.describe() for cls in STRATEGIES.values()],
            "gates": [cls.describe() for cls in GATES.values()]}
