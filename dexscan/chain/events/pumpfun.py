"""pump.fun bonding curve (``6EF8rrec…``): TradeEvent, CreateEvent, CompleteEvent,
CompletePumpAmmMigrationEvent (Anchor events, ``reference/onchain/pumpfun.md``).

The layouts are append-only, so the payload's size says which version it is: TradeEvent 129 B
(2024), 225 (+fees, creator), 258 (+volume tracking), 265-267 (+ix_name, mayhem_mode), 358-359
(+cashback, buyback, shareholders, quote), and a 391 B variant whose tail is unpublished. Only the
stable prefix (mint .. real_token_reserves) is needed for a trade, and it is read by offset after
checking the size; nothing assumes the newest size. ``sol_amount`` excludes fees; reserves are
after the trade. The event names the mint, not the bonding curve; ``pool`` is the curve's address,
derived from the mint (the program-derived address of ``["bonding-curve", mint]``, as the program
itself finds it; cached per mint).
"""

from __future__ import annotations

import struct
from functools import lru_cache

from dexscan.chain.events.codec import WSOL_MINT, b58decode, b58encode, find_program_address, pubkey, read_string
from dexscan.chain.events.model import PoolEvent, Rejection, Swap, TxContext, unreadable

PROGRAM_ID = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"
NAME = "pumpfun"

TRADE = bytes.fromhex("bddb7fd34ee661ee")
CREATE = bytes.fromhex("1b72a94ddeeb6376")
COMPLETE = bytes.fromhex("5f72619cd42e9808")
MIGRATION = bytes.fromhex("bde95db95c94ea94")

_TRADE = struct.Struct("<32sQQ?32sqQQQQ")  # offset 8 .. 129
TRADE_MIN = 129
_ZERO_KEY = b"\0" * 32
_PROGRAM_BYTES = b58decode(PROGRAM_ID)


@lru_cache(maxsize=65_536)
def bonding_curve(mint: bytes) -> str:
    """The bonding-curve account of ``mint`` (32 raw bytes)."""
    return b58encode(find_program_address((b"bonding-curve", mint), _PROGRAM_BYTES)[0])


def decode_trade(p: bytes, ctx: TxContext, index: int) -> Swap | Rejection:
    if (bad := unreadable(p, NAME, "TradeEvent", TRADE_MIN, "is_buy", 56)) is not None:
        return bad
    mint_b, sol, tokens, is_buy, user_b, ts, v_sol, v_tok, _r_sol, _r_tok = _TRADE.unpack_from(p, 8)
    mint, curve = b58encode(mint_b), bonding_curve(mint_b)
    block_time = ctx.block_time if ctx.block_time is not None else ts
    if is_buy:  # SOL went into the curve, tokens came out; reserves are after the trade
        return Swap(ctx.signature, ctx.slot, block_time, NAME, "TradeEvent", index, curve, mint, sol, tokens,
                    WSOL_MINT, mint, "buy", b58encode(user_b), len(p), 1, v_sol - sol, v_tok + tokens)
    return Swap(ctx.signature, ctx.slot, block_time, NAME, "TradeEvent", index, curve, mint, tokens, sol,
                mint, WSOL_MINT, "sell", b58encode(user_b), len(p), 0, v_tok - tokens, v_sol + sol)


def trade_ix_name(p: bytes) -> str | None:
    """``ix_name`` ("buy"/"sell") of the 265+ B layouts, where it sits at offset 258; None when the
    payload is older or the bytes there are not a short name (the unpublished 391 B variant)."""
    if len(p) < 262:
        return None
    got = read_string(p, 258, limit=32)
    if got is None or not got[0].isascii() or not got[0].replace("_", "").isalpha():
        return None
    return got[0]


def decode_create(p: bytes, ctx: TxContext, index: int) -> PoolEvent | Rejection:
    off = 8
    texts: list[str] = []
    for _ in range(3):  # name, symbol, uri
        got = read_string(p, off, limit=1024)
        if got is None:
            return Rejection("short_payload", f"CreateEvent strings do not fit its {len(p)} bytes", NAME)
        texts.append(got[0])
        off = got[1]
    if off + 96 > len(p):
        return Rejection("short_payload", f"CreateEvent has {len(p)} bytes, needs {off + 96}", NAME)
    mint, curve, user = pubkey(p, off), pubkey(p, off + 32), pubkey(p, off + 64)
    creator = pubkey(p, off + 96) if off + 128 <= len(p) else user
    ts = struct.unpack_from("<q", p, off + 128)[0] if off + 136 <= len(p) else None
    block_time = ctx.block_time if ctx.block_time is not None else ts
    return PoolEvent(ctx.signature, ctx.slot, block_time, NAME, "CreateEvent", index, "pool_created", curve, mint,
                     quote_mint=WSOL_MINT, creator=creator, name=texts[0], symbol=texts[1], layout_size=len(p))


def decode_complete(p: bytes, ctx: TxContext, index: int) -> PoolEvent | Rejection:
    if len(p) < 112:
        return Rejection("short_payload", f"CompleteEvent has {len(p)} bytes, needs 112", NAME)
    user, mint, curve = pubkey(p, 8), pubkey(p, 40), pubkey(p, 72)
    (ts,) = struct.unpack_from("<q", p, 104)
    quote = WSOL_MINT
    if len(p) >= 144 and p[112:144] != _ZERO_KEY:
        quote = pubkey(p, 112)
    block_time = ctx.block_time if ctx.block_time is not None else ts
    return PoolEvent(ctx.signature, ctx.slot, block_time, NAME, "CompleteEvent", index, "graduated", curve, mint,
                     quote_mint=quote, creator=user, layout_size=len(p))


def decode_migration(p: bytes, ctx: TxContext, index: int) -> PoolEvent | Rejection:
    if len(p) < 168:
        return Rejection("short_payload", f"CompletePumpAmmMigrationEvent has {len(p)} bytes, needs 168", NAME)
    user, mint = pubkey(p, 8), pubkey(p, 40)
    mint_amount, sol_amount, _fee = struct.unpack_from("<QQQ", p, 72)
    (ts,) = struct.unpack_from("<q", p, 128)
    pool = pubkey(p, 136)
    quote = WSOL_MINT
    if len(p) >= 200 and p[168:200] != _ZERO_KEY:
        quote = pubkey(p, 168)
    block_time = ctx.block_time if ctx.block_time is not None else ts
    return PoolEvent(ctx.signature, ctx.slot, block_time, NAME, "CompletePumpAmmMigrationEvent", index,
                     "graduated", pool, mint, quote_mint=quote, creator=user, base_amount=mint_amount,
                     quote_amount=sol_amount, layout_size=len(p))


EVENTS = {
    TRADE: ("TradeEvent", decode_trade),
    CREATE: ("CreateEvent", decode_create),
    COMPLETE: ("CompleteEvent", decode_complete),
    MIGRATION: ("CompletePumpAmmMigrationEvent", decode_migration),
}
