"""Gates: self-describing pure plugins that admit a token to the universe or say why not.

The built-ins are listed in :data:`dexscan.plugins.GATES` (market first, then on-chain safety), the
order :func:`dexscan.plugins.build_gates` builds and the universe evaluates them in.
"""

from dexscan.gates.base import Gate, GateBase, GateInput, admitted, evaluate_gates

__all__ = ["Gate", "GateBase", "GateInput", "admitted", "evaluate_gates"]
