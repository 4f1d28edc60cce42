"""On-chain DEX events: pure, table-driven decoders of the programs' own events.

One module per program (``raydium_amm_v4``, ``pumpfun``, ``pumpswap``, ``raydium_cpmm``,
``raydium_clmm``, ``orca_whirlpool``, ``meteora_dlmm``) holds its layouts, versioned by size, from
``reference/onchain/<program>.md``; :mod:`.registry` maps program ids to them and :mod:`.dispatch`
walks a notification's logs (invoke stack) or a transaction's inner instructions (self-CPI).
"""

from dexscan.chain.events.dispatch import (
    decode_any,
    decode_event_instruction,
    decode_logs,
    decode_notification,
    decode_payload,
    decode_transaction,
    payload_fields,
)
from dexscan.chain.events.model import PROGRAM_NAMES, Decoded, Event, PoolEvent, Rejection, Swap, TxContext
from dexscan.chain.events.registry import PROGRAM_IDS, PROGRAMS

__all__ = [
    "PROGRAMS", "PROGRAM_IDS", "PROGRAM_NAMES", "Decoded", "Event", "PoolEvent", "Rejection", "Swap", "TxContext",
    "decode_any", "decode_event_instruction", "decode_logs", "decode_notification", "decode_payload",
    "decode_transaction", "payload_fields",
]
