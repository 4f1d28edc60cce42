"""Orca Whirlpool (``whirLbMi…``): the Traded event (``reference/onchain/orca_whirlpool.md``), 121 B.

Emitted since 2025-02-28 (one per hop of a two-hop swap). Older transactions carry no event and
decode to nothing. ``a_to_b`` true: token A in, token B out. The event names no mints.
"""

from __future__ import annotations

import struct

from dexscan.chain.events.codec import b58encode
from dexscan.chain.events.model import Rejection, Swap, TxContext, unreadable

PROGRAM_ID = "whirLbMiicVdio4qvUfM5KAg6Ct8VwpYzGff3uctyCc"
NAME = "orca_whirlpool"

TRADED = bytes.fromhex("e1ca49af932ba096")
_V1 = struct.Struct("<32s?QQQQQQQQQQ")  # offset 8 .. 121 (u128 prices as two u64 each)
V1_SIZE = 121


def decode_traded(p: bytes, ctx: TxContext, index: int) -> Swap | Rejection:
    if (bad := unreadable(p, NAME, "Traded", V1_SIZE, "a_to_b", 40)) is not None:
        return bad
    f = _V1.unpack_from(p, 8)
    pool_b, a_to_b, amount_in, amount_out = f[0], f[1], f[6], f[7]
    return Swap(ctx.signature, ctx.slot, ctx.block_time, NAME, "Traded", index, b58encode(pool_b), None,
                amount_in, amount_out, signer=ctx.fee_payer, layout_size=len(p), direction=int(a_to_b))


def sqrt_prices(p: bytes) -> tuple[int, int]:
    """(pre_sqrt_price, post_sqrt_price), Q64.64, from a payload of at least 121 bytes."""
    a, b, c, d = struct.unpack_from("<QQQQ", p, 41)
    return a | (b << 64), c | (d << 64)


EVENTS = {TRADED: ("Traded", decode_traded)}
