"""Decoded swaps in the token's terms: :class:`Trade` (pool, mint, time, side, amounts, price, signer).

Pure: no I/O, no clock. A :class:`~dexscan.chain.events.model.Swap` states what went into and out of
a pool in raw units and, depending on the program, which token that was: pump.fun and PumpSwap
say buy or sell, Raydium CPMM's 170-byte layout names both mints, the others give only a direction
in the pool's own token order (Raydium AMM v4 ``direction`` 1 = pc in / coin out, 2 = coin in;
CLMM ``zero_for_one``; Whirlpool ``a_to_b``; DLMM ``swap_for_y``). :class:`PoolMints` is what the
engine knows of a watched pool from DexScreener / GeckoTerminal (the tracked token, its quote, their
decimals) plus the pool's first token (:func:`first_mint_rule`); with it every swap becomes a trade
of the tracked token, or a named rejection (:data:`REJECTIONS`).

Prices: ``price_quote`` is quote units per token (decimals applied); ``price_usd`` multiplies it by
the quote's USD value: 1 for a USD stablecoin, SOL/USD for wrapped SOL (:class:`SolUsd`: the latest
figure from Jupiter Price v3 or from a streamed SOL/USDC pool, unusable once older than its
``max_age_s``), None when unknown (the trade still counts, its USD figures are None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dexscan.address import b58decode
from dexscan.chain.events.model import Side, Swap
from dexscan.domain import SOL_MINT, USD_STABLECOINS

#: Decimals of the quote mints every pool of interest uses (others come from the mint account).
KNOWN_DECIMALS = {SOL_MINT: 9, **{m: 6 for m in USD_STABLECOINS}}
#: Programs whose pools keep their two mints in byte order (the pool-creation instruction refuses
#: another order): Raydium CLMM and CPMM (token 0 < token 1), Orca Whirlpool (A < B), Meteora DLMM
#: (X < Y, as every DLMM pool of the real corpus has it).
BYTE_ORDERED = frozenset({"raydium_clmm", "raydium_cpmm", "orca_whirlpool", "meteora_dlmm"})
#: Why a swap gave no trade.
REJECTIONS = ("unknown_pool", "no_direction", "mint_mismatch", "zero_amount", "no_time")

Rejection = Literal["unknown_pool", "no_direction", "mint_mismatch", "zero_amount", "no_time"]


def first_mint_rule(program: str, base_mint: str, quote_mint: str) -> str:
    """The pool's first token (Raydium v4 coin, CLMM/CPMM token 0, Whirlpool A, DLMM X, PumpSwap
    base) when nothing better is known: the smaller mint by bytes for :data:`BYTE_ORDERED` programs;
    otherwise the tracked token (Raydium v4 pools list the launched token as coin and SOL/USDC as
    pc, PumpSwap pools the token as base; the real v4 swap of the corpus is such a pool)."""
    if program in BYTE_ORDERED:
        return min(base_mint, quote_mint, key=b58decode)
    return base_mint


@dataclass(frozen=True, slots=True)
class PoolMints:
    """A watched pool: the tracked token (``base_mint``), its quote, both decimals, the first token."""

    pool: str
    program: str
    base_mint: str
    quote_mint: str
    base_decimals: int
    quote_decimals: int
    first_mint: str

    @classmethod
    def of(cls, pool: str, program: str, base_mint: str, quote_mint: str, base_decimals: int,
           quote_decimals: int | None = None, first_mint: str | None = None) -> PoolMints:
        qd = KNOWN_DECIMALS.get(quote_mint) if quote_decimals is None else quote_decimals
        if qd is None:
            raise ValueError(f"pool {pool}: decimals of quote {quote_mint} unknown")
        return cls(pool, program, base_mint, quote_mint, base_decimals, qd,
                   first_mint or first_mint_rule(program, base_mint, quote_mint))


@dataclass(frozen=True, slots=True)
class TradeFacts:
    """What a trade of the tracked token states wherever it is read from (a decoded swap, a row of the
    tape): its identity, pool, token, time, side, amount and signer."""

    signature: str
    index: int  # the event's position in its transaction: (signature, index) is the trade's identity
    pool: str
    mint: str
    block_time: int
    side: Side
    base_amount: float
    signer: str | None

    @property
    def key(self) -> tuple[str, int]:
        return self.signature, self.index


@dataclass(frozen=True, slots=True)
class Trade(TradeFacts):
    """One swap of a watched pool, in the tracked token's terms (amounts with decimals applied)."""

    program: str
    slot: int | None
    quote_amount: float
    price_quote: float  # quote per token
    price_usd: float | None

    @property
    def volume_usd(self) -> float | None:
        return None if self.price_usd is None else self.base_amount * self.price_usd


def _first_in(swap: Swap) -> bool | None:
    """Whether the pool's first token went in, from the event's direction flag; None if unstated."""
    d = swap.direction
    if d is None:
        return None
    if swap.program == "raydium_amm_v4":
        return {1: False, 2: True}.get(d)
    if swap.program in ("raydium_clmm", "orca_whirlpool", "meteora_dlmm"):
        return d == 1
    return None


def base_went_in(swap: Swap, pool: PoolMints) -> bool | Rejection:
    """True when the tracked token went into the pool (a sell), False when it came out (a buy)."""
    if swap.mint_in is not None and swap.mint_out is not None:  # the event names both mints
        pair = {pool.base_mint, pool.quote_mint}
        if {swap.mint_in, swap.mint_out} != pair:
            return "mint_mismatch"
        return swap.mint_in == pool.base_mint
    if swap.program == "pumpfun":
        if swap.mint is not None and swap.mint != pool.base_mint:
            return "mint_mismatch"
        return swap.side == "sell"
    # the pool's program as the listing named it may be wrong (a Raydium pair without its CLMM label):
    # the program that emitted the event decides the order rule then
    first = pool.first_mint if swap.program == pool.program else first_mint_rule(swap.program, pool.base_mint,
                                                                                  pool.quote_mint)
    if swap.program == "pumpswap" and swap.side is not None:  # buy: the pool's base came out
        return (swap.side == "sell") == (first == pool.base_mint)
    first_in = _first_in(swap)
    if first_in is None:
        return "no_direction"
    return first_in == (first == pool.base_mint)


def to_trade(swap: Swap, pool: PoolMints | None, quote_usd: float | None) -> Trade | Rejection:
    """The trade ``swap`` stands for in ``pool``; ``quote_usd`` = USD value of one quote unit."""
    if pool is None or (swap.pool is not None and swap.pool != pool.pool):
        return "unknown_pool"
    if swap.block_time is None:
        return "no_time"
    base_in = base_went_in(swap, pool)
    if isinstance(base_in, str):
        return base_in
    base_raw, quote_raw = (swap.amount_in, swap.amount_out) if base_in else (swap.amount_out, swap.amount_in)
    if base_raw <= 0 or quote_raw <= 0:
        return "zero_amount"
    base = base_raw / 10 ** pool.base_decimals
    quote = quote_raw / 10 ** pool.quote_decimals
    price = quote / base
    usd = price * quote_usd if quote_usd is not None and quote_usd > 0 else None
    return Trade(signature=swap.signature, index=swap.index, pool=pool.pool, mint=pool.base_mint,
                 block_time=swap.block_time, side="sell" if base_in else "buy", base_amount=base,
                 signer=swap.signer, program=swap.program, slot=swap.slot, quote_amount=quote, price_quote=price,
                 price_usd=usd)


class SolUsd:
    """The latest SOL/USD figure and where it came from; stale after ``max_age_s`` (then None).

    Fed by the Jupiter Price v3 poll (``observe(ts, price, "jupiter")``) and by trades of a streamed
    SOL/USD-stablecoin pool (:meth:`observe_trade`); the newest observation wins.
    """

    def __init__(self, max_age_s: float = 300.0) -> None:
        self.max_age_s = max_age_s
        self.price: float | None = None
        self.at: float | None = None
        self.source: str | None = None

    def observe(self, ts: float, price: float, source: str) -> None:
        if not price > 0 or price != price or price == float("inf"):
            return
        if self.at is None or ts >= self.at:
            self.price, self.at, self.source = price, ts, source

    def observe_trade(self, trade: Trade, quote_mint: str) -> bool:
        """A trade of a SOL/stablecoin pool sets SOL/USD; True when it did."""
        if trade.mint == SOL_MINT and quote_mint in USD_STABLECOINS:
            self.observe(trade.block_time, trade.price_quote, "stream")
            return True
        return False

    def value(self, now: float) -> float | None:
        if self.price is None or self.at is None or now - self.at > self.max_age_s:
            return None
        return self.price

    def quote_usd(self, quote_mint: str, now: float) -> float | None:
        """USD value of one unit of ``quote_mint``: 1 for stablecoins, SOL/USD for SOL, else None."""
        if quote_mint in USD_STABLECOINS:
            return 1.0
        if quote_mint == SOL_MINT:
            return self.value(now)
        return None
