"""The simulated market's data model: its knobs (:class:`SimConfig`), tokens and pools, the ground
truth of planted events (:class:`PlantedEvent`), the stats it answers with, and the records its
generator keeps (an event, a token's schedule, its anchor chain, one candle's minutes)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np

from dexscan.domain import Timeframe, TxnCounts, Window4

TokenKind = Literal["normal", "pump", "fizzle", "rug", "thin"]
EventKind = Literal["pump", "fizzle", "rug"]
DiscoveryCategory = Literal["toptrending", "toporganicscore", "toptraded"]

CANDLE_S = int(Timeframe.H4)
MINUTES_PER_CANDLE = CANDLE_S // 60
BARS5_PER_CANDLE = CANDLE_S // 300
#: At most one empty 5m bar per aligned group of this many bars (keeps the 20-bar mean honest).
QUIET_GROUP_BARS = 12
#: 2026-01-01 08:00 UTC: a 4H boundary that is not midnight, so the live period starts mid-day and
#: live events can ignite minutes after it while still having 20 warm-up bars in the same day.
DEFAULT_START_TS = 1_767_254_400
SOL_USD = 150.0
USDC_USD = 1.0
#: A token younger than this hides the optional fields real APIs omit for new tokens.
YOUNG_AGE_S = 2 * 86_400
DEXES = ("raydium", "pumpswap", "meteora", "orca")
#: DexScreener's ``dexId`` of a pump.fun bonding curve (a "pair" without pool liquidity).
BONDING_CURVE_DEX = "pumpfun"
#: Pool-minutes whose swaps :meth:`MarketSim.swaps` keeps (a few simulated minutes of every streamed pool).
MINUTE_SWAPS_KEPT = 20_000
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022_PROGRAM = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
WINDOWS_S: Mapping[str, int] = {"m5": 300, "h1": 3600, "h6": 21_600, "h24": 86_400}


@dataclass(frozen=True)
class SimConfig:
    """Knobs of the simulated market. Shares are fractions of ``n_tokens`` (rounded)."""

    seed: int = 7
    n_tokens: int = 20
    start_ts: int = DEFAULT_START_TS  # history start, UTC, on a 4H boundary
    history_days: float = 30.0
    live_days: float = 2.0  # after the history: dense planted events for the live demo
    pump_share: float = 0.3  # tokens whose events are mostly pumps
    fizzle_share: float = 0.15  # tokens whose events are fizzles only
    rug_share: float = 0.1  # tokens that get rugged once (pumps possible before)
    thin_share: float = 0.15  # tokens failing the liquidity or the 24h-volume gate (events too)
    unsafe_share: float = 0.2  # mint authority, freeze authority or Token-2022 with a 500 bps fee
    young_share: float = 0.1  # tokens whose first pool opens 1–2 days before the live period
    quote_pool_share: float = 0.15  # tokens with a pool quoted in another simulated token
    usd1_pool_share: float = 0.35  # secondary pools (not quoted in a token) quoted in USD1
    migration: bool = True  # one young token starts on a pump.fun bonding curve and migrates (see above)
    events_per_token_day: float = 0.8  # planted pumps+fizzles per event token per history day
    pump_fraction: float = 0.6  # share of pumps among a pump token's events
    live_events_per_candle: int = 3  # planted ignitions in every live 4H candle
    min_event_gap_candles: int = 3  # candles between two events of one token
    candle_cache: int = 12_000  # (token, 4H candle) minute paths kept in memory, ~7.7 KB each

    def __post_init__(self) -> None:
        if self.start_ts % CANDLE_S:
            raise ValueError(f"start_ts {self.start_ts} is not on a 4H boundary (multiple of {CANDLE_S})")
        if self.n_tokens < 1:
            raise ValueError("n_tokens must be at least 1")
        if self.history_days <= 0 or self.live_days < 0:
            raise ValueError("history_days must be > 0 and live_days >= 0")
        if round(self.history_days * 86_400) % 60:
            raise ValueError("history_days must be a whole number of minutes")
        shares = (self.pump_share, self.fizzle_share, self.rug_share, self.thin_share)
        if any(s < 0 for s in shares) or sum(shares) > 1 + 1e-9:
            raise ValueError("pump/fizzle/rug/thin shares must be >= 0 and sum to at most 1")
        for name in ("unsafe_share", "young_share", "quote_pool_share", "usd1_pool_share", "pump_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.events_per_token_day < 0 or self.live_events_per_candle < 0:
            raise ValueError("event rates must be >= 0")
        if self.min_event_gap_candles < 3:
            raise ValueError("min_event_gap_candles must be >= 3 (a pump retraces over two candles)")
        if self.candle_cache < 16:
            raise ValueError("candle_cache must be >= 16")


@dataclass(frozen=True, slots=True)
class SimPool:
    address: str
    base_mint: str
    quote_mint: str
    dex_id: str  # raydium | pumpswap | meteora | orca; "pumpfun" for a bonding curve (SimToken.curve)
    liquidity_usd: float  # nominal: moves with sqrt(price) within ±30–40%, collapses on a rug
    created_at: int
    bars_from: int  # first minute with data (history start, or the pool's creation)
    volume_share: float  # of the base token's volume
    labels: tuple[str, ...]
    token_index: int
    is_main: bool
    closes_at: int | None = None  # a bonding curve's migration: no trades from then on (still listed)


@dataclass(frozen=True, slots=True)
class SimToken:
    index: int
    mint: str
    mint_seed: bytes
    symbol: str
    name: str
    decimals: int
    kind: TokenKind
    mint_authority: bool
    freeze_authority: bool
    token2022: bool
    transfer_fee_bps: int | None
    pools: tuple[SimPool, ...]  # first = the deepest SOL/USDC pool
    listed_at: int  # first bar of the main pool
    initial_price: float  # USD at ``listed_at``
    total_supply: float  # UI units
    circ_supply: float
    daily_volume_usd: float  # nominal baseline, all pools
    thin_reason: str | None  # "liquidity" | "volume" | "both" for kind "thin"
    young: bool  # first pool opened shortly before the live period
    dev: str  # developer wallet (also the authority when one is kept)
    organic_score: float
    holders0: int
    trade_size_usd: float
    top_holders_pct: float  # 0–100
    curve: SimPool | None = None  # the pump.fun bonding curve it traded on before migrating, if any
    volatility: float = 0.025  # σ of an ordinary 4H candle's log change (fat-tailed, clipped)
    spike_rate: float = 0.0  # an eligible 5m bar carries a sell-side volume spike with 8x this chance

    @property
    def main_pool(self) -> SimPool:
        return self.pools[0]

    @property
    def first_pool(self) -> SimPool:
        """Where it first traded: its bonding curve, else its main pool."""
        return self.curve or self.pools[0]

    @property
    def migrated_at(self) -> int | None:
        return None if self.curve is None else self.curve.closes_at

    @property
    def safe(self) -> bool:
        """Passes the on-chain gates: both authorities renounced, no transfer fee above 100 bps."""
        fee_ok = self.transfer_fee_bps is None or self.transfer_fee_bps <= 100
        return not self.mint_authority and not self.freeze_authority and fee_ok

    @property
    def token_program(self) -> str:
        return TOKEN_2022_PROGRAM if self.token2022 else TOKEN_PROGRAM


@dataclass(frozen=True, slots=True)
class PlantedEvent:
    """Ground truth of one planted event on a token's main pool.

    ``ignite_ts`` — pump/fizzle: the close time (bar start + 300) of the first 5m bar at whose close
    the ignition rule holds; rug: the start of the first crash minute. ``peak_pct`` — pump/fizzle:
    highest high of the 4H candle over its open, in %; rug: crash bottom vs the pre-crash price, in %
    (negative). ``close_pct``: the 4H close over its open, in %. ``eligible``: the token passes every
    SPEC gate (safe and not thin), i.e. a correct scanner may alert on it.
    """

    mint: str
    pool: str
    kind: EventKind
    candle_ts: int
    ignite_ts: int
    peak_pct: float
    close_pct: float
    symbol: str
    token_kind: TokenKind
    eligible: bool
    live: bool  # in the live period (at or after ``live_start``)


@dataclass(frozen=True, slots=True)
class PoolStats:
    """Live stats of one pool at time ``t`` as DexScreener reports them (volumes in USD)."""

    pool: str
    t: float
    price_usd: float
    price_native: float
    volume: Window4
    price_change: Window4  # percent; None for windows longer than the pool's age
    txns: Mapping[str, TxnCounts]  # keys m5, h1, h6, h24
    liquidity_usd: float
    liquidity_base: float  # base token units
    liquidity_quote: float  # quote token units
    fdv: float
    market_cap: float
    pair_created_at: int  # epoch seconds


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Trailing-window activity: USD volume, price change in % (None when older than the data)."""

    volume: float
    price_change: float | None
    txns: TxnCounts


@dataclass(frozen=True, slots=True)
class SimSwapStats:
    """One Jupiter ``stats*`` block (volumes USD, changes in percent)."""

    price_change: float | None
    volume_change: float | None
    liquidity_change: float | None
    holder_change: float | None
    buy_volume: float
    sell_volume: float
    num_buys: int
    num_sells: int
    num_traders: int
    num_organic_buyers: int
    num_net_buyers: int


@dataclass(frozen=True, slots=True)
class SimTokenInfo:
    """What Jupiter Tokens v2 knows about a token at time ``t``."""

    mint: str
    t: float
    usd_price: float
    liquidity_usd: float  # all pools
    fdv: float
    mcap: float
    holder_count: int
    organic_score: float
    organic_score_label: str
    young: bool
    is_verified: bool
    tags: tuple[str, ...]
    mint_authority_disabled: bool
    freeze_authority_disabled: bool
    top_holders_pct: float
    dev_balance_pct: float
    is_sus: bool
    price_change_24h: float | None
    stats: Mapping[str, SimSwapStats]  # keys 5m, 1h, 6h, 24h


@dataclass(frozen=True, slots=True)
class SimBoost:
    mint: str
    amount: float
    total_amount: float
    boosted_at: int


@dataclass(frozen=True, slots=True)
class _Event:
    kind: EventKind
    candle: int
    start_minute: int  # ignition bar's first minute (pump/fizzle) or first crash minute (rug)
    x_pre: float  # log level vs the 4H open where the quiet pre-event path ends
    x_ign: float  # log level at the ignition bar's close (pump/fizzle); crash bottom (rug)
    x_peak: float
    x_close: float
    peak_minute: int
    surge: float  # ignition bar: volume over the mean of the 20 bars before it; rug: crash volume in baselines
    drop_minutes: int
    liquidity_factor: float
    live: bool
    shape: int  # ignition bar: 0 ramp, 1 jump in its first minute, 2 volume arriving late


@dataclass(slots=True)
class _Schedule:
    events: dict[int, _Event]
    ordered: list[_Event]
    rug: _Event | None
    retrace: dict[int, float] = field(default_factory=dict)


@dataclass(slots=True)
class _Path:
    anchors: list[float]  # log USD price at each candle start, by candle index (nan before listing)
    log_base: list[float]  # log baseline 5m volume (token level, before the rug factor)
    ref: float  # mean-reversion level of the anchors
    lb0: float


class _CandleData(NamedTuple):
    """One token's minutes in one 4H candle; a minute opens at the previous minute's close."""

    open0: float  # the candle's open (= previous candle's last close)
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # token level (all pools), USD
    cum_volume: np.ndarray  # ``np.cumsum(volume)``: the volume up to and including each minute

    def opens(self) -> np.ndarray:
        out = np.empty_like(self.close)
        out[0] = self.open0
        out[1:] = self.close[:-1]
        return out

    def open_at(self, m: int) -> float:
        return self.open0 if m == 0 else float(self.close[m - 1])

    def volume_before(self, m: int) -> float:
        """Volume of the minutes before minute ``m`` (summed in order, so totals are reproducible)."""
        return float(self.cum_volume[m - 1]) if m > 0 else 0.0
