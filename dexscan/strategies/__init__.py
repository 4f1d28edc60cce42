"""Detection strategies: plugins with one interface (:mod:`dexscan.strategies.base`).

The built-ins (ignition, confirmation, god_candle, volume_surge) are listed in
:data:`dexscan.plugins.STRATEGIES`; the detector runs the enabled ones in the order of
``settings.strategies.enabled``. A new strategy is one module here plus its line in that list.
"""

from dexscan.strategies.base import REL_TOL, Detection, Strategy, VolumeGate, exceeds, meets
from dexscan.strategies.confirmation import Confirmation
from dexscan.strategies.god_candle import GodCandle
from dexscan.strategies.ignition import Ignition
from dexscan.strategies.volume_surge import VolumeSurge

__all__ = [
    "REL_TOL",
    "Confirmation",
    "Detection",
    "GodCandle",
    "Ignition",
    "Strategy",
    "VolumeGate",
    "VolumeSurge",
    "exceeds",
    "meets",
]
