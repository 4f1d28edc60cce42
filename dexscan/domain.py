"""The shared vocabulary of dexscan.

Every module speaks in these types: clients return them (never raw dicts), the pure core consumes
and produces them, the store persists them. They are frozen dataclasses with slots: cheap to build
in the hot path, impossible to mutate by accident, and hashable where that is useful.

Times are UTC epoch **seconds** (int) everywhere. Prices are USD floats unless a name says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Literal

SOL_MINT = "So11111111111111111111111111111111111111112"
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
USDT_MINT = "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"
USD1_MINT = "USD1ttGY1N17NEEHLmELoaybftRBUSErhqYiQzvEmuB"  # World Liberty Financial USD
PYUSD_MINT = "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo"  # PayPal USD
#: USD stablecoins a main pool may be quoted in (real 2026 main pairs are quoted in USD1 too).
USD_STABLECOINS = frozenset({USDC_MINT, USDT_MINT, USD1_MINT, PYUSD_MINT})
#: Quote tokens whose pools count as a token's "main pool" (SPEC §3): SOL or a USD stablecoin.
MAIN_QUOTES = frozenset({SOL_MINT}) | USD_STABLECOINS
#: DexScreener ``dexId`` of a launchpad bonding curve: a "pair" with no pool liquidity
#: (``liquidity: null``) until the token migrates to a real pool (``reference/external-apis.md`` §3.2).
BONDING_CURVE_DEXES = frozenset({"pumpfun"})


class Timeframe(IntEnum):
    """Candle timeframes, valued in seconds; bars start on UTC multiples of the value."""

    M1 = 60
    M5 = 300
    M15 = 900
    H1 = 3600
    H4 = 14400
    H12 = 43200
    D1 = 86400

    @property
    def label(self) -> str:
        return _TF_LABELS[self]

    @classmethod
    def from_label(cls, label: str) -> Timeframe:
        for tf, lab in _TF_LABELS.items():
            if lab == label:
                return tf
        raise ValueError(f"unknown timeframe {label!r}; expected one of {', '.join(_TF_LABELS.values())}")

    def floor(self, ts: int) -> int:
        """Start of the bar that contains ``ts``."""
        return ts - ts % int(self)


_TF_LABELS = {
    Timeframe.M1: "1m",
    Timeframe.M5: "5m",
    Timeframe.M15: "15m",
    Timeframe.H1: "1h",
    Timeframe.H4: "4h",
    Timeframe.H12: "12h",
    Timeframe.D1: "1d",
}


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV bar; ``ts`` is the bar's start (UTC epoch seconds), volume in USD."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


# ---------------------------------------------------------------------------------------------
# Market data as the providers describe it
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window4:
    """A value per rolling window, as DexScreener reports them (m5, h1, h6, h24); None = absent."""

    m5: float | None = None
    h1: float | None = None
    h6: float | None = None
    h24: float | None = None


@dataclass(frozen=True, slots=True)
class TxnCounts:
    buys: int = 0
    sells: int = 0


@dataclass(frozen=True, slots=True)
class PairSnapshot:
    """Live stats of one pool at ``observed_at`` (DexScreener pair, or an equivalent source)."""

    pair_address: str
    dex_id: str
    base_mint: str
    base_symbol: str
    base_name: str
    quote_mint: str
    quote_symbol: str
    price_usd: float | None
    price_native: float | None
    volume: Window4
    price_change: Window4
    txns_m5: TxnCounts
    txns_h1: TxnCounts
    txns_h24: TxnCounts
    liquidity_usd: float | None
    fdv: float | None
    market_cap: float | None
    pair_created_at: int | None  # epoch seconds (DexScreener sends ms; the client converts)
    observed_at: int
    labels: tuple[str, ...] = ()
    url: str | None = None


def is_bonding_curve(pair: PairSnapshot) -> bool:
    """A launchpad bonding curve (pump.fun), not a pool: it has no pool liquidity to trade against."""
    return pair.dex_id in BONDING_CURVE_DEXES


def main_pool(pairs: Iterable[PairSnapshot], mint: str) -> PairSnapshot | None:
    """The token's main pool: the ONE rule the gates, the universe, the engine and ``dexscan check`` use.

    The deepest pool (by ``liquidity_usd``) where ``mint`` is the **base** and the quote is SOL or a
    USD stablecoin (:data:`MAIN_QUOTES`: USDC, USDT, USD1, PYUSD); pools without a liquidity figure
    rank below every pool that has one; equal depth goes to the lower pair address (deterministic).
    Otherwise None: a token whose pools are all quoted in other tokens, or where it is only the quote,
    or that is still on a bonding curve (never a main pool, see :func:`is_bonding_curve`), has no main
    pool, and the liquidity and price-impact gates fail it saying which of these it is. DexScreener's
    own pick (``/tokens/v1``) is not used: it may be quoted in anything (``reference/external-apis.md`` §3.2).
    """
    candidates = [p for p in pairs if p.base_mint == mint and p.quote_mint in MAIN_QUOTES and not is_bonding_curve(p)]
    if not candidates:
        return None
    return min(candidates, key=lambda p: (p.liquidity_usd is None, -(p.liquidity_usd or 0.0), p.pair_address))


@dataclass(frozen=True, slots=True)
class TokenAudit:
    """Jupiter's audit hints. Hints only: safety gates use the chain (SPEC §3)."""

    mint_authority_disabled: bool | None = None
    freeze_authority_disabled: bool | None = None
    top_holders_pct: float | None = None  # 0–100
    dev_balance_pct: float | None = None  # 0–100
    is_sus: bool = False


@dataclass(frozen=True, slots=True)
class SwapStats:
    price_change_pct: float | None = None
    buy_volume: float | None = None
    sell_volume: float | None = None
    num_buys: int | None = None
    num_sells: int | None = None
    num_traders: int | None = None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """Token metadata (Jupiter Tokens v2 ``MintInformation``, or Birdeye overview)."""

    mint: str
    symbol: str
    name: str
    decimals: int | None = None
    token_program: str | None = None
    usd_price: float | None = None
    liquidity_usd: float | None = None
    fdv: float | None = None
    mcap: float | None = None
    holder_count: int | None = None
    organic_score: float | None = None
    organic_score_label: str | None = None
    is_verified: bool | None = None
    tags: tuple[str, ...] = ()
    created_at: int | None = None
    first_pool: str | None = None
    first_pool_created_at: int | None = None
    audit: TokenAudit | None = None
    stats5m: SwapStats | None = None
    stats1h: SwapStats | None = None
    stats24h: SwapStats | None = None


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """Jupiter Price v3 entry. Tokens without a reliable price are absent, never zero."""

    mint: str
    usd_price: float
    decimals: int | None = None
    liquidity_usd: float | None = None
    price_change_24h_pct: float | None = None
    block_id: int | None = None


@dataclass(frozen=True, slots=True)
class PoolRef:
    """A pool of a token as a directory lists it (GeckoTerminal token → pools)."""

    address: str
    dex_id: str
    base_mint: str
    quote_mint: str
    name: str
    reserve_usd: float | None = None
    volume_h24_usd: float | None = None
    created_at: int | None = None


@dataclass(frozen=True, slots=True)
class DiscoveredToken:
    """A mint some discovery feed surfaced, and which feed (for the universe's bookkeeping)."""

    mint: str
    source: str  # e.g. "jupiter:toptrending/1h", "dexscreener:boosts", "user:watch"
    symbol: str | None = None
    name: str | None = None


# ---------------------------------------------------------------------------------------------
# On-chain facts and gates
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MintExtension:
    """A Token-2022 extension: camelCase name as jsonParsed spells it, and its state."""

    name: str
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MintFacts:
    """What the chain says about a mint, read at ``slot`` / ``checked_at``.

    ``read_error`` set means the chain could not be read: every on-chain gate then reports
    ``unverified`` (fail closed). ``exists=False`` and ``is_mint=False`` are definite answers.
    """

    mint: str
    checked_at: int
    exists: bool = False
    is_mint: bool = False
    owner_program: str | None = None  # "spl-token" | "spl-token-2022" | raw owner address
    mint_authority: str | None = None
    freeze_authority: str | None = None
    supply: int | None = None
    decimals: int | None = None
    extensions: tuple[MintExtension, ...] = ()
    top10_share_pct: float | None = None  # 0–100, pool vaults and bonding curves excluded
    slot: int | None = None
    endpoint: str | None = None  # masked name of the RPC endpoint that served the read
    read_error: str | None = None
    #: Why the top-10 share is unknown although the mint was read, e.g. "getTokenLargestAccounts
    #: unavailable from <endpoint> (-32010 ...)": the endpoints refuse the method; not a read failure.
    holders_unavailable: str | None = None
    #: Masked names of the RPC endpoints whose answers agreed on these facts: two when two or more are
    #: configured (an initialized mint), one when only one is (its word alone). Empty in facts stored
    #: before this was recorded, which then count as vouched by ``endpoint`` only.
    vouched_by: tuple[str, ...] = ()


class GateStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    UNVERIFIED = "unverified"


@dataclass(frozen=True, slots=True)
class GateVerdict:
    mint: str
    gate: str
    status: GateStatus
    reason: str
    checked_at: int
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status is GateStatus.PASS


# ---------------------------------------------------------------------------------------------
# Signals, levels, outcomes
# ---------------------------------------------------------------------------------------------

Layer = Literal["ignition", "confirmation", "strategy"]
OutcomeResult = Literal["open", "sl", "breakeven", "tp1", "tp2", "tp3", "expired"]


@dataclass(frozen=True, slots=True)
class Reason:
    """One condition that fired a signal: ``value op threshold`` (e.g. rise 2.4 >= 2.0)."""

    name: str
    value: float
    op: str
    threshold: float
    unit: str = ""

    def __str__(self) -> str:
        return f"{self.name} {self.value:.4g}{self.unit} {self.op} {self.threshold:.4g}{self.unit}"


@dataclass(frozen=True, slots=True)
class Levels:
    """The ATR ladder of a signal (SPEC §6). ``flags`` name every approximation taken."""

    entry: float
    sl: float
    tp1: float
    tp2: float
    tp3: float
    atr: float
    atr_source: str  # "4h" or "1h*2"
    sl_mode: str  # "atr" or "structural"
    flags: tuple[str, ...] = ()

    @property
    def risk(self) -> float:
        return self.entry - self.sl


@dataclass(frozen=True, slots=True)
class Confidence:
    """Calibrated probability, or an honest raw score when no calibrator applies."""

    raw_score: float
    probability: float | None = None  # calibrated P(TP1 before SL), 0–1; None = uncalibrated
    calibrator_version: str | None = None

    @property
    def calibrated(self) -> bool:
        return self.probability is not None

    def label(self) -> str:
        if self.probability is None:
            return f"uncalibrated (raw {self.raw_score:.2f})"
        return f"{self.probability * 100:.0f}%"


@dataclass(frozen=True, slots=True)
class Signal:
    """A detection. Natural key: (mint, strategy, candle_ts)."""

    mint: str
    strategy: str
    layer: Layer
    candle_ts: int  # the candle the strategy keys on (the 4H candle for ignition/confirmation)
    ts: int  # when the signal fired (event time, not wall time)
    price: float
    reasons: tuple[Reason, ...]
    symbol: str = ""
    pool: str | None = None
    rise_pct: float | None = None  # vs the 4H open
    volume_ratio: float | None = None
    levels: Levels | None = None
    confidence: Confidence | None = None
    features: Mapping[str, float] = field(default_factory=dict)
    liquidity_usd: float | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.mint, self.strategy, self.candle_ts)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a signal's ladder played out on the bar path (SPEC §6)."""

    result: OutcomeResult
    realized_r: float
    hits: Mapping[str, int] = field(default_factory=dict)  # level name -> ts of first touch
    closed_at: int | None = None
    last_price: float | None = None
    max_r: float = 0.0

    @property
    def closed(self) -> bool:
        return self.result != "open"
