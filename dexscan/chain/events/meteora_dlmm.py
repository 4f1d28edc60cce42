"""Meteora DLMM (``LBUZKhRx…``): the Swap event (``reference/onchain/meteora_dlmm.md``), 137 B.

Emitted only with ``emit_cpi!``: it is the data of a self-invoke inner instruction (after the
8-byte EVENT_IX_TAG), never a log line, so only a ``getTransaction`` answer carries it; a
``logsNotification`` of a DLMM swap decodes to nothing. ``swap_for_y`` true: token X in, Y out.
The discriminator is shared with Jupiter v4's ``Swap`` log event (credited by the invoke stack).
"""

from __future__ import annotations

import struct

from dexscan.chain.events.codec import b58encode
from dexscan.chain.events.model import Rejection, Swap, TxContext, unreadable

PROGRAM_ID = "LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo"
NAME = "meteora_dlmm"

SWAP = bytes.fromhex("516ce3becdd00ac4")
_V1 = struct.Struct("<32s32siiQQ?QQ")  # offset 8 .. 113
MIN_SIZE = 113  # fields through protocol_fee; fee_bps and host_fee (to 137) are not needed


def decode_swap(p: bytes, ctx: TxContext, index: int) -> Swap | Rejection:
    if (bad := unreadable(p, NAME, "Swap", MIN_SIZE, "swap_for_y", 96)) is not None:
        return bad
    pair_b, from_b, _start, _end, amount_in, amount_out, swap_for_y, _fee, _pfee = _V1.unpack_from(p, 8)
    return Swap(ctx.signature, ctx.slot, ctx.block_time, NAME, "Swap", index, b58encode(pair_b), None,
                amount_in, amount_out, signer=b58encode(from_b), layout_size=len(p), direction=int(swap_for_y))


EVENTS = {SWAP: ("Swap", decode_swap)}
