"""PumpSwap AMM (``pAMMBay6…``): BuyEvent, SellEvent, CreatePoolEvent (``reference/onchain/pumpswap.md``).

Sizes seen: BuyEvent 312 -> 360 -> 393 -> 408+; SellEvent 312 -> 360 -> 392. The trade fields used
here (amounts, pool reserves before the trade, pool, user) sit in the 312-byte prefix every version
shares. ``amount_in``/``amount_out`` are the event's own figures without fees: a buy is
``quote_amount_in`` in and ``base_amount_out`` out; a sell ``base_amount_in`` in and
``quote_amount_out`` out. The events name the pool, not its mints (``mint`` is None).
"""

from __future__ import annotations

import struct

from dexscan.chain.events.codec import b58encode
from dexscan.chain.events.model import PoolEvent, Rejection, Swap, TxContext

PROGRAM_ID = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"
NAME = "pumpswap"

BUY = bytes.fromhex("67f4521f2cf57777")
SELL = bytes.fromhex("3e2f370aa503dc2a")
CREATE_POOL = bytes.fromhex("b1310cd2a076a774")

_TRADE = struct.Struct("<q13Q32s32s")  # offset 8 .. 184
TRADE_MIN = 312  # the oldest published layout (2025-04)
_CREATE = struct.Struct("<qH32s32s32sBBQQQQQQQB32s")  # offset 8 .. 205
CREATE_MIN = 205


def _trade(p: bytes, ctx: TxContext, index: int, buy: bool) -> Swap | Rejection:
    event = "BuyEvent" if buy else "SellEvent"
    if len(p) < TRADE_MIN:
        return Rejection("short_payload", f"{event} has {len(p)} bytes, needs {TRADE_MIN}", NAME)
    f = _TRADE.unpack_from(p, 8)
    ts, base_amt, _limit, _ub, _uq, pool_base, pool_quote, quote_amt = f[:8]
    pool, user = b58encode(f[14]), b58encode(f[15])
    block_time = ctx.block_time if ctx.block_time is not None else ts
    if buy:
        return Swap(ctx.signature, ctx.slot, block_time, NAME, event, index, pool, None, quote_amt, base_amt,
                    side="buy", signer=user, layout_size=len(p), reserve_in=pool_quote, reserve_out=pool_base)
    return Swap(ctx.signature, ctx.slot, block_time, NAME, event, index, pool, None, base_amt, quote_amt,
                side="sell", signer=user, layout_size=len(p), reserve_in=pool_base, reserve_out=pool_quote)


def decode_buy(p: bytes, ctx: TxContext, index: int) -> Swap | Rejection:
    return _trade(p, ctx, index, True)


def decode_sell(p: bytes, ctx: TxContext, index: int) -> Swap | Rejection:
    return _trade(p, ctx, index, False)


def decode_create_pool(p: bytes, ctx: TxContext, index: int) -> PoolEvent | Rejection:
    if len(p) < CREATE_MIN:
        return Rejection("short_payload", f"CreatePoolEvent has {len(p)} bytes, needs {CREATE_MIN}", NAME)
    f = _CREATE.unpack_from(p, 8)
    ts, _idx, creator, base_mint, quote_mint = f[:5]
    pool_base, pool_quote = f[9], f[10]
    pool = f[15]
    block_time = ctx.block_time if ctx.block_time is not None else ts
    return PoolEvent(ctx.signature, ctx.slot, block_time, NAME, "CreatePoolEvent", index, "pool_created",
                     b58encode(pool), b58encode(base_mint), quote_mint=b58encode(quote_mint),
                     creator=b58encode(creator), base_amount=pool_base, quote_amount=pool_quote, layout_size=len(p))


EVENTS = {
    BUY: ("BuyEvent", decode_buy),
    SELL: ("SellEvent", decode_sell),
    CREATE_POOL: ("CreatePoolEvent", decode_create_pool),
}
