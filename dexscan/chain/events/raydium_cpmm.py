"""Raydium CPMM (``CPMMoo8L…``): SwapEvent (``reference/onchain/raydium_cpmm.md``).

Two layouts: 89 B (2024: pool_id, vaults before, input/output amounts, transfer fees, base_input)
and 170 B (2025-08: + input_mint, output_mint, trade_fee, creator_fee, creator_fee_on_input). The
mints, hence ``mint`` and ``side``, are known only from the 170 B layout. The discriminator is shared
with Raydium CLMM, Jupiter and others: the dispatcher credits it to the program on top of the stack.
"""

from __future__ import annotations

import struct

from dexscan.chain.events.codec import b58encode, side_from_mints
from dexscan.chain.events.model import Rejection, Side, Swap, TxContext, unreadable

PROGRAM_ID = "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"
NAME = "raydium_cpmm"

SWAP = bytes.fromhex("40c6cde8260871e2")
_V1 = struct.Struct("<32sQQQQQQ?")  # offset 8 .. 89
_MINTS = struct.Struct("<32s32s")  # offset 89 .. 153
V1_SIZE, V2_SIZE = 89, 170


def decode_swap(p: bytes, ctx: TxContext, index: int) -> Swap | Rejection:
    if (bad := unreadable(p, NAME, "SwapEvent", V1_SIZE, "base_input", 88)) is not None:
        return bad
    pool_b, in_before, out_before, amount_in, amount_out, _fee_in, _fee_out, base_input = _V1.unpack_from(p, 8)
    mint_in: str | None = None
    mint_out: str | None = None
    mint: str | None = None
    side: Side | None = None
    if len(p) >= V2_SIZE:
        a, b = _MINTS.unpack_from(p, 89)
        mint_in, mint_out = b58encode(a), b58encode(b)
        side, mint = side_from_mints(mint_in, mint_out)
    return Swap(ctx.signature, ctx.slot, ctx.block_time, NAME, "SwapEvent", index, b58encode(pool_b), mint,
                amount_in, amount_out, mint_in, mint_out, side, ctx.fee_payer,
                len(p), int(base_input), in_before, out_before)


EVENTS = {SWAP: ("SwapEvent", decode_swap)}
