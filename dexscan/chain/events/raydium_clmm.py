"""Raydium CLMM (``CAMMCzo5…``): SwapEvent (``reference/onchain/raydium_clmm.md``).

Layouts: 205 B (pool_state, sender, token accounts, amount_0, transfer_fee_0, amount_1,
transfer_fee_1, zero_for_one, sqrt_price_x64, liquidity, tick) and 221 B (2026-05: + trade fees).
``zero_for_one`` true: token 0 went in (``amount_0``), token 1 came out (``amount_1``). The event
names no mints. Same discriminator as CPMM's SwapEvent (credited by the invoke stack).
"""

from __future__ import annotations

import struct

from dexscan.chain.events.codec import b58encode
from dexscan.chain.events.model import Rejection, Swap, TxContext, unreadable

PROGRAM_ID = "CAMMCzo5YL8w4VFF8KVHrK22GGUsp5VTaW7grrKgrWqK"
NAME = "raydium_clmm"

SWAP = bytes.fromhex("40c6cde8260871e2")
_V1 = struct.Struct("<32s32s64xQQQQ?")  # offset 8 .. 169
V1_SIZE = 205


def decode_swap(p: bytes, ctx: TxContext, index: int) -> Swap | Rejection:
    if (bad := unreadable(p, NAME, "SwapEvent", V1_SIZE, "zero_for_one", 168)) is not None:
        return bad
    pool_b, sender_b, amount_0, _fee_0, amount_1, _fee_1, zero_for_one = _V1.unpack_from(p, 8)
    amount_in, amount_out = (amount_0, amount_1) if zero_for_one else (amount_1, amount_0)
    return Swap(ctx.signature, ctx.slot, ctx.block_time, NAME, "SwapEvent", index, b58encode(pool_b), None,
                amount_in, amount_out, signer=b58encode(sender_b), layout_size=len(p), direction=int(zero_for_one))


def sqrt_price_liquidity_tick(p: bytes) -> tuple[int, int, int]:
    """(sqrt_price_x64, liquidity, tick) after the swap, from a payload of at least 205 bytes."""
    lo1, hi1, lo2, hi2, tick = struct.unpack_from("<QQQQi", p, 169)
    return lo1 | (hi1 << 64), lo2 | (hi2 << 64), tick


EVENTS = {SWAP: ("SwapEvent", decode_swap)}
