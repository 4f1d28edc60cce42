"""Gates: self-describing pure plugins that admit a token to the universe or say why not.

Importing this package registers every built-in gate (market first, then on-chain safety), so
:func:`build_gates` sees them in that order.
"""

from dexscan.gates import market, safety
from dexscan.gates.base import (
    GATE_REGISTRY,
    Gate,
    GateInput,
    ParamSpec,
    admitted,
    build_gates,
    evaluate_gates,
    register_gate,
)

__all__ = [
    "GATE_REGISTRY",
    "Gate",
    "GateInput",
    "ParamSpec",
    "admitted",
    "build_gates",
    "evaluate_gates",
    "market",
    "register_gate",
    "safety",
]
