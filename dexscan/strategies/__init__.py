"""Detection strategies: plugins with one interface (:mod:`dexscan.strategies.base`).

Importing this package registers the built-ins (ignition, confirmation, god_candle, volume_surge);
the detector runs them in the order of ``settings.strategies.enabled``. A new strategy is one module
here plus its import line below.
"""

from dexscan.strategies import confirmation, god_candle, ignition, volume_surge
from dexscan.strategies.base import (
    REL_TOL,
    STRATEGY_REGISTRY,
    Detection,
    Param,
    Strategy,
    VolumeGate,
    build_strategies,
    exceeds,
    meets,
    register,
)
from dexscan.strategies.confirmation import Confirmation
from dexscan.strategies.god_candle import GodCandle
from dexscan.strategies.ignition import Ignition
from dexscan.strategies.volume_surge import VolumeSurge

__all__ = [
    "REL_TOL",
    "STRATEGY_REGISTRY",
    "Confirmation",
    "Detection",
    "GodCandle",
    "Ignition",
    "Param",
    "Strategy",
    "VolumeGate",
    "VolumeSurge",
    "build_strategies",
    "confirmation",
    "exceeds",
    "god_candle",
    "ignition",
    "meets",
    "register",
    "volume_surge",
]
