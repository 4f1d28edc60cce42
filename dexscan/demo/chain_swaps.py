"""The demo market's trades as the chain would show them: swaps encoded with the real event layouts.

:func:`minute_swaps` splits one simulated minute bar of a pool into individual swaps (deterministic
from the pool and the minute: count from the bar's volume and the token's trade size, prices along
open -> high/low -> close, volumes summing to the bar's); :func:`swap_logs` encodes one as the log
lines of the pool's program (``reference/onchain/*.md``): Raydium CPMM ``SwapEvent`` (the 170-byte
layout, naming both mints), Raydium CLMM ``SwapEvent`` (205 bytes), PumpSwap ``BuyEvent`` /
``SellEvent`` (312 bytes), Orca Whirlpool ``Traded`` (121 bytes), each under its program's invoke
line, as ``logsNotification`` delivers them. A Meteora DLMM swap's logs carry no event (as on
mainnet: its Swap is a self-CPI); :func:`dlmm_inner_instructions` gives the ``getTransaction``
inner instruction that holds it (the 137-byte layout). Bonding curves are not encoded.
:func:`launch_logs` encodes a pool's opening: PumpSwap ``CreatePoolEvent``, under pump.fun's ``migrate`` with its
``CompletePumpAmmMigrationEvent`` when a token graduates from its bonding curve.
:func:`raydium_init_transaction` encodes a Raydium AMM v4 pool's creation (the simulator opens none:
tests do): its ``ray_log`` ``InitLog`` and the ``initialize2`` instruction ``getTransaction`` shows.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass

from dexscan.address import b58decode
from dexscan.chain.events import PROGRAM_IDS
from dexscan.chain.events.codec import EVENT_IX_TAG, b58encode
from dexscan.chain.events.meteora_dlmm import SWAP as DLMM_SWAP
from dexscan.chain.events.orca_whirlpool import TRADED
from dexscan.chain.events.pumpfun import MIGRATION
from dexscan.chain.events.pumpswap import BUY, CREATE_POOL, SELL
from dexscan.chain.events.raydium_clmm import SWAP as CLMM_SWAP
from dexscan.chain.events.raydium_cpmm import SWAP as CPMM_SWAP
from dexscan.domain import Candle

#: Solana's slot time: the slot stated in a notification is ``(t - SLOT_EPOCH) / 0.4``.
SLOT_S = 0.4
SLOT_EPOCH = 1_600_000_000
#: Most swaps one minute bar is split into.
MAX_SWAPS_PER_MINUTE = 6
#: Distinct wallets trading one token.
WALLETS = 64


class _AtSlot:
    """Something simulated at ``ts``, in the slot a notification of it states."""

    __slots__ = ()
    ts: float

    @property
    def slot(self) -> int:
        return int((self.ts - SLOT_EPOCH) / SLOT_S)


@dataclass(frozen=True, slots=True)
class SimSwap(_AtSlot):
    """One simulated swap of a pool: the token bought or sold, in UI units and USD."""

    pool: str
    ts: float
    side: str  # "buy" | "sell"
    price_usd: float
    volume_usd: float
    signer: str
    signature: str


def _digest(*parts: object) -> bytes:
    return hashlib.sha256(":".join(map(str, parts)).encode()).digest()


def minute_swaps(pool: str, bar: Candle, trade_size_usd: float) -> list[SimSwap]:
    """The swaps of one one-minute bar (none for an empty bar), in time order.

    Prices walk open -> (high, low, or low, high: whichever the close is farther from) -> close;
    each step up is a buy, each step down (or flat after a down step) a sell. Volumes are split in
    deterministic unequal shares that sum to the bar's volume.
    """
    if bar.volume <= 0:
        return []
    seed = _digest("swap", pool, bar.ts)
    n = max(1, min(MAX_SWAPS_PER_MINUTE, round(bar.volume / max(trade_size_usd, 1e-9))))
    first, second = (bar.low, bar.high) if bar.close >= bar.open else (bar.high, bar.low)
    path = [bar.open, first, second, bar.close]
    prices = [path[min(3, round(i * 3 / max(1, n - 1)))] if n > 1 else bar.close for i in range(n)]
    weights = [1 + seed[i] / 64 for i in range(n)]
    total = sum(weights)
    out: list[SimSwap] = []
    prev = bar.open
    side = "buy" if bar.close >= bar.open else "sell"
    for i, price in enumerate(prices):
        if price > prev:
            side = "buy"
        elif price < prev:
            side = "sell"
        prev = price
        ts = bar.ts + 1 + (58 * (i + 0.5)) / n
        wallet = seed[8 + i] % WALLETS
        signer = b58encode(_digest("wallet", pool, wallet))
        signature = b58encode(_digest("sig", pool, bar.ts, i) + _digest("sig2", pool, bar.ts, i))
        out.append(SimSwap(pool, ts, side, price, bar.volume * weights[i] / total, signer, signature))
    return out


def _data(payload: bytes) -> str:
    return "Program data: " + base64.b64encode(payload).decode()


def _wrap(program_id: str, *lines: str) -> list[str]:
    return [f"Program {program_id} invoke [1]", "Program log: Instruction: Swap", *lines,
            f"Program {program_id} consumed 41234 of 200000 compute units", f"Program {program_id} success"]


def raw_amounts(swap: SimSwap, decimals: int, quote_usd: float, quote_decimals: int) -> tuple[int, int]:
    """(token raw amount, quote raw amount) of ``swap``."""
    base = round(swap.volume_usd / swap.price_usd * 10 ** decimals)
    quote = round(swap.volume_usd / quote_usd * 10 ** quote_decimals)
    return max(1, base), max(1, quote)


#: Meteora DLMM's event authority: the one account of its self-CPI event instruction.
DLMM_EVENT_AUTHORITY = "D1ZN9Wj1fRSUQfCjhvnu1hqDMT7hzjzBBpi12nVniYD6"


def swap_program(dex_id: str, labels: tuple[str, ...]) -> str:
    """The program id a pool's swaps invoke (and so mention); "" for pools the stream cannot carry."""
    name = {"pumpswap": "pumpswap", "orca": "orca_whirlpool", "meteora": "meteora_dlmm"}.get(dex_id)
    if dex_id == "raydium":
        name = "raydium_cpmm" if "CPMM" in labels else "raydium_clmm" if "CLMM" in labels else None
    return PROGRAM_IDS[name] if name is not None else ""


def swap_logs(dex_id: str, labels: tuple[str, ...], swap: SimSwap, mint: str, quote_mint: str, decimals: int,
              quote_usd: float, quote_decimals: int) -> list[str] | None:
    """The log lines of ``swap`` in its pool's program; None for a pool the stream cannot carry."""
    base_raw, quote_raw = raw_amounts(swap, decimals, quote_usd, quote_decimals)
    buy = swap.side == "buy"
    pool_b, signer_b = b58decode(swap.pool), b58decode(swap.signer)
    token_first = b58decode(mint) < b58decode(quote_mint)  # CLMM/CPMM token 0, Whirlpool A: the smaller
    amount_in, amount_out = (quote_raw, base_raw) if buy else (base_raw, quote_raw)
    if dex_id == "raydium" and "CPMM" in labels:
        mint_in, mint_out = (quote_mint, mint) if buy else (mint, quote_mint)
        payload = CPMM_SWAP + struct.pack("<32sQQQQQQ?32s32sQQ?", pool_b, 10**15, 10**15, amount_in, amount_out,
                                          0, 0, True, b58decode(mint_in), b58decode(mint_out), 0, 0, True)
        return _wrap(PROGRAM_IDS["raydium_cpmm"], _data(payload))
    if dex_id == "raydium" and "CLMM" in labels:
        zero_for_one = buy != token_first  # token 0 went in
        amount_0, amount_1 = (amount_in, amount_out) if zero_for_one else (amount_out, amount_in)
        payload = CLMM_SWAP + struct.pack("<32s32s32s32sQQQQ?16s16si", pool_b, signer_b, b"\1" * 32, b"\2" * 32,
                                          amount_0, 0, amount_1, 0, zero_for_one, b"\0" * 16, b"\0" * 16, 0)
        return _wrap(PROGRAM_IDS["raydium_clmm"], _data(payload))
    if dex_id == "orca":
        a_to_b = buy != token_first  # A went in
        payload = TRADED + struct.pack("<32s?QQQQQQQQQQ", pool_b, a_to_b, 0, 0, 0, 0, amount_in, amount_out,
                                       0, 0, 0, 0)
        return _wrap(PROGRAM_IDS["orca_whirlpool"], _data(payload))
    if dex_id == "meteora":  # no event in the logs: only the invoke of its self-CPI
        dlmm = PROGRAM_IDS["meteora_dlmm"]
        return [f"Program {dlmm} invoke [1]", "Program log: Instruction: Swap", f"Program {dlmm} invoke [2]",
                f"Program {dlmm} consumed 2132 of 150000 compute units", f"Program {dlmm} success",
                f"Program {dlmm} consumed 61234 of 200000 compute units", f"Program {dlmm} success"]
    if dex_id == "pumpswap":
        head = struct.pack("<q13Q32s32s", int(swap.ts), base_raw, quote_raw, 0, 0, 10**15, 10**15, quote_raw,
                           20, 0, 5, 0, quote_raw, quote_raw, pool_b, signer_b)
        payload = (BUY if buy else SELL) + head + b"\0" * (312 - 8 - len(head))
        return _wrap(PROGRAM_IDS["pumpswap"], _data(payload))
    return None


def dlmm_swap_event(swap: SimSwap, mint: str, quote_mint: str, decimals: int, quote_usd: float,
                    quote_decimals: int) -> bytes:
    """Meteora DLMM's ``Swap`` event of ``swap`` (137 bytes; X is the smaller mint by bytes)."""
    base_raw, quote_raw = raw_amounts(swap, decimals, quote_usd, quote_decimals)
    buy = swap.side == "buy"
    swap_for_y = buy != (b58decode(mint) < b58decode(quote_mint))  # X went in
    amount_in, amount_out = (quote_raw, base_raw) if buy else (base_raw, quote_raw)
    return DLMM_SWAP + struct.pack("<32s32siiQQ?QQ16sQ", b58decode(swap.pool), b58decode(swap.signer), 0, 0,
                                   amount_in, amount_out, swap_for_y, 0, 0, b"\0" * 16, 0)


def dlmm_inner_instructions(event: bytes) -> list[dict[str, object]]:
    """``meta.innerInstructions`` of a DLMM swap whose accounts are [signer, pool, program, event
    authority]: the self-CPI (EVENT_IX_TAG + event, base58) under top-level instruction 0."""
    return [{"index": 0, "instructions": [{"programIdIndex": 2, "accounts": [3],
                                            "data": b58encode(EVENT_IX_TAG + event), "stackHeight": 2}]}]


@dataclass(frozen=True, slots=True)
class SimPoolLaunch(_AtSlot):
    """A pool that opens in the simulated market: a new pool (``kind`` "pool_created") or a token's
    graduation from its pump.fun bonding curve to its PumpSwap pool ("graduated")."""

    ts: int
    kind: str  # "pool_created" | "graduated"
    pool: str
    mint: str
    quote_mint: str
    curve: str | None  # the bonding curve left behind (graduations)
    creator: str
    base_raw: int  # initial liquidity, raw units
    quote_raw: int
    decimals: int
    quote_decimals: int

    @property
    def signature(self) -> str:
        return b58encode(_digest("launch", self.pool, self.ts) + _digest("launch2", self.pool, self.ts))


def _create_pool_event(launch: SimPoolLaunch) -> bytes:
    """PumpSwap ``CreatePoolEvent`` (the 334-byte layout of ``reference/onchain/pumpswap.md``)."""
    zero = b"\0" * 32
    return CREATE_POOL + struct.pack(
        "<qH32s32s32sBBQQQQQQQB32s32s32s32s32s?", launch.ts, 0, b58decode(launch.creator), b58decode(launch.mint),
        b58decode(launch.quote_mint), launch.decimals, launch.quote_decimals, launch.base_raw, launch.quote_raw,
        launch.base_raw, launch.quote_raw, 1000, 0, 0, 255, b58decode(launch.pool), zero, zero, zero,
        b58decode(launch.creator), False)


def launch_logs(launch: SimPoolLaunch) -> tuple[list[str], list[str]]:
    """(log lines, accounts the transaction mentions) of a pool launch, as ``logsNotification``
    delivers them. A graduation is pump.fun's ``migrate`` instruction: it creates the PumpSwap pool
    by CPI (``CreatePoolEvent`` under PumpSwap's invoke) and emits ``CompletePumpAmmMigrationEvent``
    (the 200-byte layout); a new pool is PumpSwap's ``create_pool`` alone."""
    pumpswap, pumpfun = PROGRAM_IDS["pumpswap"], PROGRAM_IDS["pumpfun"]
    create = [f"Program {pumpswap} invoke [{2 if launch.kind == 'graduated' else 1}]",
              "Program log: Instruction: CreatePool", _data(_create_pool_event(launch)),
              f"Program {pumpswap} consumed 91234 of 400000 compute units", f"Program {pumpswap} success"]
    mentions = [launch.creator, launch.pool, launch.mint, pumpswap]
    if launch.kind != "graduated" or launch.curve is None:
        return create, mentions
    migration = MIGRATION + struct.pack("<32s32sQQQ32sq32s32s", b58decode(launch.creator), b58decode(launch.mint),
                                        launch.base_raw, launch.quote_raw, 0, b58decode(launch.curve), launch.ts,
                                        b58decode(launch.pool), b"\0" * 32)
    return ([f"Program {pumpfun} invoke [1]", "Program log: Instruction: Migrate", *create, _data(migration),
             f"Program {pumpfun} consumed 171234 of 400000 compute units", f"Program {pumpfun} success"],
            [*mentions, launch.curve, pumpfun])


#: Raydium AMM v4 ``initialize2``'s 21 accounts (``program/src/instruction.rs``); the amm (the pool) is
#: account 4, the coin and pc mints 8 and 9, the user wallet (signer, payer) 17
RAYDIUM_INITIALIZE2_ACCOUNTS = (
    "token_program", "associated_token_program", "system_program", "rent", "amm", "amm_authority",
    "amm_open_orders", "lp_mint", "coin_mint", "pc_mint", "coin_vault", "pc_vault", "target_orders", "amm_config",
    "create_pool_fee", "market_program", "market", "user_wallet", "user_token_coin", "user_token_pc",
    "user_token_lp")
_RAYDIUM_FIXED = {
    "token_program": "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
    "associated_token_program": "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL",
    "system_program": "11111111111111111111111111111111",
    "rent": "SysvarRent111111111111111111111111111111111",
    "amm_authority": "5Q544fKrFoe6tsEbD7S8EmxGTJYAKtTVhAW5Q5pge4j1",
    "amm_config": "9DCxsMizn3H1hprZ7xWe6LDzeUeZBksYFpBWBtSf1PQX",
    "create_pool_fee": "7YttLkHDoNj9wyDur5pM1ejNaAvT9X4eqaYcHQqtj2G5",
    "market_program": "srmqPvymJeFKQ4zGQed1GFppgkRHL9kaELCbyksJtPX",
}


def raydium_init_transaction(launch: SimPoolLaunch) -> tuple[list[str], list[str], list[dict[str, object]]]:
    """(log lines, account keys, top-level instructions) of a Raydium AMM v4 pool's creation as
    ``getTransaction`` (json) shows it: one ``initialize2`` (tag 1: nonce, open_time, init_pc_amount,
    init_coin_amount) over :data:`RAYDIUM_INITIALIZE2_ACCOUNTS` with the token as the coin and the quote
    as the pc, and its ``ray_log`` ``InitLog`` (75 bytes: the amounts and the market, no pool, no mint),
    which is all ``logsNotification`` shows of it."""
    ray = PROGRAM_IDS["raydium_amm_v4"]
    named = {**_RAYDIUM_FIXED, "amm": launch.pool, "coin_mint": launch.mint, "pc_mint": launch.quote_mint,
             "user_wallet": launch.creator}
    for role in RAYDIUM_INITIALIZE2_ACCOUNTS:
        named.setdefault(role, b58encode(_digest("raydium-init", role, launch.pool)))
    keys = [launch.creator, ray]  # the fee payer first, as in every transaction
    for role in RAYDIUM_INITIALIZE2_ACCOUNTS:
        if named[role] not in keys:
            keys.append(named[role])
    data = struct.pack("<BBQQQ", 1, 254, 0, launch.quote_raw, launch.base_raw)
    instruction: dict[str, object] = {"programIdIndex": 1, "accounts": [keys.index(named[r])
                                                                         for r in RAYDIUM_INITIALIZE2_ACCOUNTS],
                                      "data": b58encode(data), "stackHeight": None}
    init_log = struct.pack("<BQBBQQQQ32s", 0, launch.ts, launch.quote_decimals, launch.decimals, 1, 1,
                           launch.quote_raw, launch.base_raw, b58decode(named["market"]))
    logs = [f"Program {ray} invoke [1]",
            f"Program log: initialize2: InitializeInstruction2 {{ nonce: 254, open_time: 0, init_pc_amount: "
            f"{launch.quote_raw}, init_coin_amount: {launch.base_raw} }}",
            f"Program log: ray_log: {base64.b64encode(init_log).decode()}",
            f"Program {ray} consumed 91234 of 400000 compute units", f"Program {ray} success"]
    return logs, keys, [instruction]
