"""Raydium AMM v4 (``675kPX9M…``): the ``Program log: ray_log: <base64>`` line.

Layouts (``reference/onchain/raydium_amm_v4.md``, bincode, little-endian): byte 0 is the log type;
0 Init (75 B), 1 Deposit (105 B), 2 Withdraw (89 B), 3 SwapBaseIn (57 B), 4 SwapBaseOut (57 B).
The log names no pool and no mint: a swap is attributed to its pool by the subscription that carried
it (``logsSubscribe`` ``mentions`` the pool). ``direction`` 1 = pc in, coin out; 2 = coin in, pc out.
``pool_coin``/``pool_pc`` are the reserves before the swap.
"""

from __future__ import annotations

import struct

from dexscan.chain.events.codec import b64decode
from dexscan.chain.events.model import PoolEvent, Rejection, Swap, TxContext

PROGRAM_ID = "675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8"
NAME = "raydium_amm_v4"
LOG_PREFIX = "Program log: ray_log: "

_SWAP = struct.Struct("<QQQQQQQ")  # at offset 1: 7 x u64 -> 57 bytes
_INIT = struct.Struct("<QBBQQQQ32s")  # at offset 1: time, pc_dec, coin_dec, pc_lot, coin_lot, pc, coin, market
#: log type -> (name, size of the layout)
LAYOUTS = {0: ("Init", 75), 1: ("Deposit", 105), 2: ("Withdraw", 89), 3: ("SwapBaseIn", 57), 4: ("SwapBaseOut", 57)}


def decode_ray_log(text: str, ctx: TxContext, index: int) -> Swap | PoolEvent | Rejection | None:
    """One ``ray_log`` payload (the text after ``ray_log: ``). None for Deposit/Withdraw (not trades)."""
    raw = b64decode(text.strip())
    if raw is None:  # log_keys_mismatch prints plain text after the same prefix
        return Rejection("bad_base64", f"ray_log is not base64: {text[:40]!r}", NAME)
    if not raw:
        return Rejection("short_payload", "empty ray_log", NAME)
    kind = raw[0]
    layout = LAYOUTS.get(kind)
    if layout is None:
        return Rejection("unknown_event", f"ray_log type {kind}", NAME)
    name, size = layout
    if len(raw) < size:
        return Rejection("short_payload", f"ray_log {name} has {len(raw)} bytes, needs {size}", NAME)
    if kind in (3, 4):
        a, b, direction, _user_source, pool_coin, pool_pc, c = _SWAP.unpack_from(raw, 1)
        if kind == 3:  # amount_in, minimum_out, ..., out_amount
            amount_in, amount_out = a, c
        else:  # max_in, amount_out, ..., deduct_in
            amount_in, amount_out = c, b
        if direction == 1:
            reserve_in, reserve_out = pool_pc, pool_coin
        elif direction == 2:
            reserve_in, reserve_out = pool_coin, pool_pc
        else:
            return Rejection("bad_field", f"ray_log {name} direction {direction}", NAME)
        return Swap(
            ctx.signature, ctx.slot, ctx.block_time, NAME, name, index, None, None, amount_in, amount_out,
            signer=ctx.fee_payer, layout_size=len(raw), direction=direction,
            reserve_in=reserve_in, reserve_out=reserve_out,
        )
    if kind == 0:
        # base_amount = coin, quote_amount = pc, as the log states them (which one is SOL varies)
        _t, _pc_dec, _coin_dec, _pc_lot, _coin_lot, pc_amount, coin_amount, _market = _INIT.unpack_from(raw, 1)
        return PoolEvent(
            ctx.signature, ctx.slot, ctx.block_time, NAME, name, index, "pool_created", None, None,
            creator=ctx.fee_payer, base_amount=coin_amount, quote_amount=pc_amount, layout_size=len(raw),
        )
    return None  # Deposit / Withdraw: liquidity, not trades
