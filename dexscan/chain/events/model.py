"""What the decoders produce: one frozen dataclass per decoded event, and typed rejections.

Amounts are raw integer units exactly as the event states them (no decimals applied). ``pool`` and
``mint`` are ``None`` when the input cannot tell (Raydium AMM v4's ``ray_log`` names no pool;
PumpSwap's trade events name the pool but not its mints; a pump.fun trade names the mint, and its
pool, the bonding curve, is derived from it). ``side`` is ``"buy"`` when the non-quote
token left the pool, ``"sell"`` when it went in, ``None`` when the event does not say which token is
the quote. ``block_time`` is the transaction's block time when the input has it, else the event's own
``timestamp`` (pump.fun, PumpSwap), else ``None``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

Side = Literal["buy", "sell"]

#: Program names as the rest of dexscan (and ``dexscan stream decode``) spells them.
PROGRAM_NAMES = (
    "raydium_amm_v4", "pumpfun", "pumpswap", "raydium_cpmm", "raydium_clmm", "orca_whirlpool", "meteora_dlmm",
)


@dataclass(frozen=True, slots=True)
class TxContext:
    """Where an event came from: the transaction around it."""

    signature: str
    slot: int | None = None
    block_time: int | None = None
    fee_payer: str | None = None


@dataclass(frozen=True, slots=True)
class Swap:
    """One swap against one pool, as the program's own event states it."""

    signature: str
    slot: int | None
    block_time: int | None
    program: str
    event: str  # the event's name in its program: "TradeEvent", "SwapBaseIn", "Traded", ...
    index: int  # position of the event within its transaction (log order, then self-CPI order)
    pool: str | None
    mint: str | None  # the non-quote token when the event tells which one that is
    amount_in: int
    amount_out: int
    mint_in: str | None = None
    mint_out: str | None = None
    side: Side | None = None
    signer: str | None = None
    layout_size: int = 0  # payload bytes incl. discriminator: which layout version was read
    # Program-specific direction flag, as stated: Raydium v4 direction (1 pc->coin, 2 coin->pc),
    # CLMM zero_for_one, Whirlpool a_to_b, DLMM swap_for_y, CPMM base_input; None when not stated.
    direction: int | None = None
    reserve_in: int | None = None  # pool reserve of the input token as the event states it (None if not)
    reserve_out: int | None = None

    kind = "swap"

    def to_json(self) -> dict[str, object]:
        return {
            "kind": "swap", "signature": self.signature, "slot": self.slot, "block_time": self.block_time,
            "program": self.program, "event": self.event, "index": self.index, "pool": self.pool,
            "mint": self.mint, "amount_in": self.amount_in, "amount_out": self.amount_out,
            "mint_in": self.mint_in, "mint_out": self.mint_out, "side": self.side, "signer": self.signer,
            "direction": self.direction, "reserve_in": self.reserve_in, "reserve_out": self.reserve_out,
            "layout_size": self.layout_size,
        }


PoolEventKind = Literal["pool_created", "graduated"]


@dataclass(frozen=True, slots=True)
class PoolEvent:
    """A new pool (Raydium v4 Init, pump.fun Create, PumpSwap CreatePool) or a graduation
    (pump.fun Complete / CompletePumpAmmMigration): discovery in real time."""

    signature: str
    slot: int | None
    block_time: int | None
    program: str
    event: str
    index: int
    kind: PoolEventKind
    pool: str | None  # the new pool (bonding curve for pump.fun Create/Complete) when stated
    mint: str | None  # the token
    quote_mint: str | None = None
    creator: str | None = None
    base_amount: int | None = None  # initial liquidity, as stated
    quote_amount: int | None = None
    name: str | None = None
    symbol: str | None = None
    layout_size: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind, "signature": self.signature, "slot": self.slot, "block_time": self.block_time,
            "program": self.program, "event": self.event, "index": self.index, "pool": self.pool,
            "mint": self.mint, "quote_mint": self.quote_mint, "creator": self.creator,
            "base_amount": self.base_amount, "quote_amount": self.quote_amount, "name": self.name,
            "symbol": self.symbol, "layout_size": self.layout_size,
        }


Event = Swap | PoolEvent


@dataclass(frozen=True, slots=True)
class Rejection:
    """Something a decoder could not use, with a short machine-readable reason
    (``"bad_base64"``, ``"short_payload"``, ``"tx_failed"``, ...) and a human detail."""

    reason: str
    detail: str = ""
    program: str | None = None


def unreadable(p: bytes, program: str, event: str, min_size: int, flag: str, flag_at: int) -> Rejection | None:
    """Why a fixed-layout event payload cannot be read: fewer than ``min_size`` bytes, or its boolean
    ``flag`` byte (at offset ``flag_at``) is neither 0 nor 1; ``None`` when it can be read."""
    if len(p) < min_size:
        return Rejection("short_payload", f"{event} has {len(p)} bytes, needs {min_size}", program)
    if p[flag_at] > 1:
        return Rejection("bad_field", f"{event} {flag} byte {p[flag_at]}", program)
    return None


@dataclass(slots=True)
class Decoded:
    """Everything one input (a notification, a transaction) gave: events, rejections, and whether
    the input described a failed transaction (then ``events`` is empty)."""

    signature: str | None = None
    slot: int | None = None
    events: list[Event] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    failed: bool = False
    truncated: bool = False

    @property
    def swaps(self) -> list[Swap]:
        return [e for e in self.events if isinstance(e, Swap)]

    def reject(self, reason: str, detail: str = "", program: str | None = None) -> None:
        self.rejections.append(Rejection(reason, detail, program))

    def count_into(self, counter: Counter[str]) -> None:
        for r in self.rejections:
            counter[r.reason] += 1
