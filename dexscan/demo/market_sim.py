"""A seedable simulated Solana DEX market with planted events whose ground truth is exact.

The demo scanner, the loopback fakes of the market-data providers and the backfill/evaluation tests
all read this one model, so a number a test asserts is the number the demo shows. It is pure: no
I/O, no wall clock (every query takes its time as an argument), and deterministic in ``seed``.

How the path is built, and why it makes the ground truth exact:

* Each token has one USD price path shared by all of its pools (perfect arbitrage); pools differ in
  volume share, liquidity and quote. Time is cut into UTC 4H candles. A per-token *anchor chain*
  fixes the log price at every 4H boundary; an ordinary candle's change is fat-tailed (Student t,
  σ 2.5–8% by token), reflected below a +8.9% cap and never under -26%: slow grinds and bleeds
  happen, but no ordinary 4H candle can close +10% above its open. Planted pumps and fizzles set their candle's close
  themselves, and the two candles after a pump fade by 1–15% each.
* Inside a candle, 1-minute bars follow a Brownian bridge between the two anchors, regenerated on
  demand from an RNG seeded by (seed, token, candle): random access, no hidden state, and an LRU
  keeps memory bounded for thousands of tokens.
* 5-minute volume is ``baseline × U(0.7, 1.35)``, the baseline moves at most 7.5% per candle, and
  at most one 5m bar in each aligned group of 12 is empty: an ordinary bar never exceeds ~2.5× the
  mean of the 20 bars before it. On top, 24–80% (by token) of the bars a token could spike on get a
  sell-side volume spike of 2.6–25× (:meth:`MarketSim._add_spikes`): only on a down bar closing in the lower
  half of its range, whose highs and the next bar's stay below +1.5% over the 4H open. So volume
  spikes are common, as in real pools, yet the ignition rule (SPEC §5) can only hold where an
  event was planted, even on a rolling 5-minute window.
* An ignition bar closes +2.6–14.6% over the 4H open on 3.7–80× the exact mean of the 20 bars before
  it (spikes included), in one of three shapes (a ramp, a jump in its first minute, the volume
  arriving late), and the candle before it stays below +1% (highs included). A pump then spikes
  and holds, climbs in steps or grinds to a late peak, and closes +10.5% to +60%; a fizzle fades,
  pops to +9–25% and reverses (past a first target and back), or dumps right after igniting.
* Quiet minutes are real: zero volume and O=H=L=C=previous close, exactly.

Tokens are sized like the gate-passing pools of real GeckoTerminal snapshots (main-pool liquidity
log-normal around $200k, from $75k; a day's volume 0.4–12× the liquidity, at least $160k) and carry made-up names;
thin tokens fail the liquidity gate, the volume gate or both. ``scripts/bench_demo_realism.py``
compares the simulated distributions with the real candles in ``data/``.

Pools change as real ones do (``reference/external-apis.md`` §3.2–3.3): some secondary pools are
quoted in USD1 (a USD stablecoin) and three in another simulated token; and one young token
(``SimConfig.migration``) starts on a pump.fun bonding curve (``SimToken.curve``: DexScreener's
``dexId`` ``pumpfun``, no pool liquidity) and migrates to its PumpSwap main pool one 4H candle into the
live period, at a 4H boundary; its pools open then, and a pump is planted in the candle after the
migration. The curve trades the token's whole volume until the migration and none after it. The
guarantees above hold for it too (its pump's warm-up bars are counted on the new pool).
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from dexscan.domain import SOL_MINT, USD1_MINT, USDC_MINT, Candle, Timeframe, TxnCounts, Window4

if TYPE_CHECKING:
    from dexscan.demo.chain_swaps import SimSwap

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

_SIGMA_MINUTE = 0.0016
_WICK = 0.0025
_CANDLE_CLIP = 0.085  # an ordinary 4H candle closes at most +8.9% (a +10% close is always planted)
_CANDLE_FLOOR = -0.30  # ... and at worst -26%
_REVERSION = 0.03
_BRIDGE_AMP = 0.03
_PRE_EVENT_MAX = 0.008  # closes before an ignition/rug stay below +0.8% (+1.0% with wicks)
_PRE_EVENT_MIN = -0.02
_PRE_EVENT_WICK = 0.002
_BASE_STEP = 0.075  # max |Δ log baseline volume| per candle
_BASE_SPREAD = 0.22  # max |log baseline - log initial baseline|
_DEAD_VOLUME = 0.02  # baseline volume multiplier after a rug
_BLOCK = 256  # candles per anchor-chain extension block
_WARMUP_BARS = 20
_SPIKE_PRICE_CAP = 1.015  # volume spikes only on bars (and the bar after) below +1.5% over the 4H open
#: The ignition bar's minutes, by shape (ramp, jump, late volume): share of the move done ...
_IGNITION_PRICE = (np.array([0.2, 0.4, 0.6, 0.8, 1.0]), np.array([0.8, 0.85, 0.9, 0.95, 1.0]),
                   np.array([0.5, 0.8, 0.95, 1.0, 1.0]))
#: ... and share of the bar's volume traded.
_IGNITION_VOLUME = (np.arange(1, 6) / 15, np.array([0.6, 0.1, 0.1, 0.1, 0.1]),
                    np.array([0.04, 0.06, 0.1, 0.3, 0.5]))

#: Syllables the token names are built from: generated words, never copies of real tickers.
_SYLLABLES = (
    "ba", "bo", "bu", "da", "do", "fi", "fu", "ga", "go", "gu", "ki", "ko", "ku", "la", "lo", "lu", "ma", "mi",
    "mo", "mu", "na", "ni", "no", "pa", "pe", "pi", "po", "pu", "ra", "ri", "ro", "ru", "sa", "si", "so", "ta",
    "ti", "to", "tu", "wa", "wi", "wo", "za", "zo", "zu", "chi", "sha", "shi", "bre", "fro", "gri", "plo", "sku",
    "tra", "zor", "nyx", "vex", "jax", "quo", "blu", "kra", "gle", "mb",
)
#: How real meme tokens are named around their word (``{w}``): a bare word, a joke, a franchise.
_NAME_PATTERNS = (
    "{w}", "{w}", "{w} Inu", "Baby {w}", "{w} the Cat", "{w} on Sol", "{w} AI", "Lil {w}", "{w} Coin",
    "Sir {w}", "{w} Frog", "Based {w}", "{w} wif Hat", "Official {w}", "{w} Dog", "Grumpy {w}",
)
#: Real tickers a generated word must not collide with (the demo shows made-up tokens only).
_REAL_TICKERS = frozenset({
    "BONK", "WIF", "MEW", "POPCAT", "MOODENG", "GOAT", "PNUT", "CHILL", "FWOG", "MICHI", "GIGA", "PONKE",
    "SLERF", "MYRO", "WEN", "SAMO", "TURBO", "BOME", "PEPE", "DOGE", "SHIB", "TRUMP", "SOL", "USDC", "USDT",
    "JUP", "RAY", "ORCA", "PYTH", "JTO", "MOBI", "BOBO", "KIKI", "MAMA", "PAPA", "MOMO", "DODO", "LUNA",
})


def _token_name(rng: np.random.Generator, taken: set[str]) -> tuple[str, str]:
    """A made-up (symbol, name) pair whose symbol is not in ``taken`` (case-insensitive) nor a real ticker.

    Symbols are 3–10 characters like real ones: mostly a capitalised 2–3 syllable word, sometimes
    an abbreviation, a lowercase ticker or a long one that a dashboard has to cut.
    """
    while True:
        n_syl = 2 if rng.random() < 0.6 else (3 if rng.random() < 0.8 else 4)
        word = "".join(_SYLLABLES[int(rng.integers(len(_SYLLABLES)))] for _ in range(n_syl))
        word = word[0].upper() + word[1:]
        style = rng.random()
        if style < 0.12:  # an abbreviation: consonants of the word (GRBL)
            symbol = "".join(ch for ch in word.upper() if ch not in "AEIOU")[:5]
        elif style < 0.22:  # a lowercase ticker
            symbol = word.lower()[:6]
        else:
            symbol = word.upper()
        if len(symbol) < 3 or symbol.upper() in _REAL_TICKERS or symbol.upper() in taken:
            continue
        taken.add(symbol.upper())
        name = _NAME_PATTERNS[int(rng.integers(len(_NAME_PATTERNS)))].format(w=word)
        return symbol, name


def _uniform_log(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _address(tag: str, seed: int, *parts: object) -> str:
    digest = hashlib.sha256(":".join(["dexscan-sim-" + tag, str(seed), *map(str, parts)]).encode()).digest()
    return str(Pubkey.from_bytes(digest))


def mint_seed_for(seed: int, index: int) -> bytes:
    """The 32-byte keypair seed of token ``index``; the chain fake creates the mint from it."""
    return hashlib.sha256(f"dexscan-sim:{seed}:{index}".encode()).digest()


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

    def opens(self) -> np.ndarray:
        out = np.empty_like(self.close)
        out[0] = self.open0
        out[1:] = self.close[:-1]
        return out

    def open_at(self, m: int) -> float:
        return self.open0 if m == 0 else float(self.close[m - 1])

    def volume_before(self, m: int) -> float:
        """Volume of the minutes before minute ``m`` (summed in order, so totals are reproducible)."""
        return float(np.cumsum(self.volume[:m])[-1]) if m > 0 else 0.0


class MarketSim:
    """The simulated market; see the module docstring for how ground truth is guaranteed."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = cfg = config or SimConfig()
        self.start_ts = cfg.start_ts
        self.live_start = cfg.start_ts + round(cfg.history_days * 86_400)
        self.live_end = self.live_start + round(cfg.live_days * 86_400)
        self._c_live = -(-(self.live_start - self.start_ts) // CANDLE_S)
        self._c_live_end = (self.live_end - self.start_ts) // CANDLE_S
        self.tokens: list[SimToken] = []
        self._by_mint: dict[str, SimToken] = {}
        self._pools: dict[str, SimPool] = {}
        self._pools_with: dict[str, list[SimPool]] = {}
        self._schedules: dict[int, _Schedule] = {}
        self._paths: dict[int, _Path] = {}
        self._cache: OrderedDict[tuple[int, int], _CandleData] = OrderedDict()
        self._totals: OrderedDict[tuple[int, int], float] = OrderedDict()
        self._feed_members: tuple[list[tuple[SimToken, int]], list[SimToken]] | None = None
        self._boost_amounts: dict[tuple[int, int], float] = {}
        # (pool, minute) -> its swaps: the stream asks for every 2 s slice, a minute's bar is split once
        self._minute_swaps: OrderedDict[tuple[str, int], list[SimSwap]] = OrderedDict()
        self._build_tokens()
        self._live_plan = self._plan_live()

    # ------------------------------------------------------------------ construction

    def _counts(self) -> dict[TokenKind, int]:
        cfg, n = self.config, self.config.n_tokens
        counts: dict[TokenKind, int] = {
            "pump": round(cfg.pump_share * n),
            "fizzle": round(cfg.fizzle_share * n),
            "rug": round(cfg.rug_share * n),
            "thin": round(cfg.thin_share * n),
        }
        shrink: tuple[TokenKind, ...] = ("thin", "rug", "fizzle", "pump")
        for kind in shrink:
            while sum(counts.values()) > n and counts[kind] > 0:
                counts[kind] -= 1
        counts["normal"] = n - sum(counts.values())
        return counts

    def _build_tokens(self) -> None:
        cfg, n, seed = self.config, self.config.n_tokens, self.config.seed
        rng = np.random.default_rng([seed, 0])
        order = [int(i) for i in rng.permutation(n)]
        kinds: list[TokenKind] = ["normal"] * n
        pos = 0
        by_kind: dict[TokenKind, list[int]] = {}
        for kind, count in self._counts().items():
            members = order[pos:pos + count]
            pos += count
            by_kind[kind] = sorted(members)
            for i in members:
                kinds[i] = kind

        n_young = round(cfg.young_share * n)
        young_pool = [i for pair in zip(reversed(by_kind["pump"]), reversed(by_kind["normal"]), strict=False)
                      for i in pair]
        paired = set(young_pool)
        young_pool += [i for i in reversed(by_kind["pump"] + by_kind["normal"]) if i not in paired]
        young = set(young_pool[:n_young])

        n_unsafe = round(cfg.unsafe_share * n)
        pumps_ok = [i for i in by_kind["pump"] if i not in young]
        from_pumps = min(n_unsafe, max(min(3, len(pumps_ok)), min(-(-n_unsafe // 2), len(pumps_ok) // 2)))
        others = [i for i in by_kind["normal"] + by_kind["fizzle"] if i not in young]
        unsafe_order = pumps_ok[:from_pumps] + sorted(others)[: n_unsafe - from_pumps]
        unsafe_kind = {i: j % 3 for j, i in enumerate(unsafe_order)}  # 0 mint, 1 freeze, 2 Token-2022 fee

        reasons = ("liquidity", "volume", "both")
        thin_reason = {i: reasons[j % 3] for j, i in enumerate(by_kind["thin"])}
        taken_symbols: set[str] = set()
        n_quote = round(cfg.quote_pool_share * n)
        quoted_in_token = set(sorted(range(1, n), key=lambda i: (i * 7919 + seed) % n)[:n_quote]) if n > 1 else set()

        young_listing_candle = self._c_live - 10
        c_migrate = self._c_live + 1
        young_normal = [i for i in sorted(young) if kinds[i] == "normal"]
        self.migrating: int | None = None
        if cfg.migration and young_normal and self._c_live_end >= c_migrate + 2:
            self.migrating = young_normal[-1]
        migrate_at = self.start_ts + c_migrate * CANDLE_S
        mains: list[SimPool] = []
        for i in range(n):
            trng = np.random.default_rng([seed, 1, i])
            kind = kinds[i]
            mseed = mint_seed_for(seed, i)
            mint = str(Keypair.from_seed(mseed).pubkey())
            symbol, name = _token_name(np.random.default_rng([seed, 6, i]), taken_symbols)
            if i % 10 == 3:  # names are user input: the outputs must escape them
                name = f"{name} <{symbol}> & Friends"
            elif i % 10 == 7:
                name = f'{name} "{symbol}" </b>&amp;'
            decimals = 6 if trng.random() < 0.75 else 9
            r = trng.random()
            supply = 1e9 if r < 0.6 else (1e12 if r < 0.8 else _uniform_log(trng, 1e7, 1e10))
            # sizes spread like the gate-passing pools of real snapshots: a median pool of ~$200k
            # with a long tail of large ones; a day's volume is 0.4–12x the liquidity
            # (floors with a spread, not a pile: the gates' margins without a wall of equal tokens)
            liq = min(8e6, max(7.5e4 * math.exp(0.5 * trng.random()), float(trng.lognormal(math.log(2e5), 0.9))))
            turnover = min(12.0, max(0.4, float(trng.lognormal(math.log(1.1), 0.7))))
            daily = min(3e7, max(1.6e5 * math.exp(0.5 * trng.random()), liq * turnover))
            fdv = min(5e8, max(1.5e5, liq * float(trng.lognormal(math.log(6.0), 0.8))))
            price0 = fdv / supply
            circ = supply * float(trng.uniform(0.8, 1.0))
            reason = thin_reason.get(i)
            if reason in ("liquidity", "both"):
                liq = _uniform_log(trng, 6e3, 3e4)
            if reason in ("volume", "both"):
                daily = _uniform_log(trng, 8e3, 4e4)
            volatility = _uniform_log(trng, 0.025, 0.08)  # σ of an ordinary 4H candle's log change
            # sell-side volume spikes (whales exiting, arbitrage churn): 8x this share of the bars
            # where one cannot look like an ignition (see _add_spikes)
            spike_rate = float(trng.uniform(0.01, 0.03) if kind == "thin" else trng.uniform(0.03, 0.10))
            is_young = i in young
            if is_young:
                listed = self.start_ts + (young_listing_candle + int(trng.integers(0, 4))) * CANDLE_S
                created = listed
            else:
                listed = self.start_ts
                created = self.start_ts - 60 * int(trng.integers(3 * 1440, 200 * 1440))
            uk = unsafe_kind.get(i)
            dev = _address("dev", seed, i)
            organic = float(trng.uniform(40, 95))
            if uk is not None:
                organic = float(trng.uniform(5, 30))
            elif kind == "thin":
                organic = float(trng.uniform(10, 40))
            top_holders = float(trng.uniform(50, 80) if uk is not None else trng.uniform(12, 45))

            n_pools = 1 + int(trng.random() < 0.5) + int(trng.random() < 0.3)
            if i in quoted_in_token and n_pools == 1:
                n_pools = 2
            main_share = float(trng.uniform(0.6, 0.9)) if n_pools > 1 else 1.0
            weights = trng.uniform(0.3, 1.0, n_pools - 1)
            pools: list[SimPool] = []
            for j in range(n_pools):
                address = _address("pool", seed, i, j)
                dex = DEXES[int(trng.integers(len(DEXES)))]
                labels = {"raydium": ("CPMM",) if trng.random() < 0.5 else ("CLMM",), "meteora": ("DLMM",),
                          "orca": ("wp",), "pumpswap": ()}[dex]
                if j == 0:
                    quote = SOL_MINT if trng.random() < 0.7 else USDC_MINT
                    pool_liq, share, p_created = liq, main_share, created
                else:
                    is_quote_pool = i in quoted_in_token and j == n_pools - 1
                    if is_quote_pool:
                        quote = mains[int(trng.integers(len(mains)))].base_mint if mains else SOL_MINT
                    else:
                        quote = SOL_MINT if trng.random() < 0.5 else USDC_MINT
                        if _unit(seed, "usd1", i, j) < cfg.usd1_pool_share:  # a hash, not trng: same stream
                            quote = USD1_MINT
                    pool_liq = liq * float(trng.uniform(0.03, 0.15) if is_quote_pool else trng.uniform(0.05, 0.4))
                    share = (1 - main_share) * float(weights[j - 1] / weights.sum())
                    if is_young:
                        p_created = listed + CANDLE_S * int(trng.integers(0, 3))
                    else:
                        p_created = min(self.start_ts - 60, created + 60 * int(trng.integers(0, 30 * 1440)))
                    if quote in self._by_mint:
                        p_created = max(p_created, self._by_mint[quote].listed_at)
                if i == self.migrating:  # its pools open at the migration; the main one on PumpSwap
                    p_created = migrate_at + (0 if j == 0 else CANDLE_S * j)
                    if j == 0:
                        dex, labels = "pumpswap", ()
                bars_from = max(self.start_ts, -(-p_created // CANDLE_S) * CANDLE_S)
                pools.append(SimPool(address, mint, quote, dex, pool_liq, p_created, bars_from, share,
                                     labels, i, j == 0))
            curve = None
            if i == self.migrating:
                curve = SimPool(_address("curve", seed, i), mint, SOL_MINT, BONDING_CURVE_DEX, liq * 0.25, listed,
                                listed, 1.0, (), i, False, closes_at=migrate_at)
            token = SimToken(
                index=i, mint=mint, mint_seed=mseed, symbol=symbol, name=name, decimals=decimals, kind=kind,
                mint_authority=uk == 0, freeze_authority=uk == 1, token2022=uk == 2,
                transfer_fee_bps=500 if uk == 2 else None, pools=tuple(pools), listed_at=listed,
                initial_price=price0, total_supply=supply, circ_supply=circ, daily_volume_usd=daily,
                thin_reason=reason, young=is_young, dev=dev, organic_score=organic,
                holders0=int(_uniform_log(trng, 80, 400) if is_young else _uniform_log(trng, 800, 40_000)),
                trade_size_usd=float(trng.uniform(60, 400)), top_holders_pct=top_holders, curve=curve,
                volatility=volatility, spike_rate=spike_rate,
            )
            self.tokens.append(token)
            self._by_mint[mint] = token
            mains.append(pools[0])
            for p in pools:
                self._pools[p.address] = p
                self._pools_with.setdefault(p.base_mint, []).append(p)
                if p.quote_mint in self._by_mint:
                    self._pools_with.setdefault(p.quote_mint, []).append(p)
            if curve is not None:
                self._pools[curve.address] = curve
                self._pools_with[mint].append(curve)

    def _plan_live(self) -> dict[int, list[tuple[int, int, EventKind]]]:
        """Live events, token index -> [(candle, slot, kind)].

        Slot 0 of every live 4H candle (the earliest ignition) goes round-robin to the safe, liquid
        pump tokens, so a demo sees an alert-worthy pump minutes after it starts; the other slots
        rotate over everything else that can ignite (fizzle, thin and unsafe tokens).
        """
        cfg = self.config
        per = cfg.live_events_per_candle
        plan: dict[int, list[tuple[int, int, EventKind]]] = {}
        good = [t.index for t in self.tokens if t.kind == "pump" and t.safe]
        rest = [t.index for t in self.tokens if t.kind in ("pump", "fizzle", "thin") and t.index not in good]
        if per == 0 or not good + rest:
            return plan
        for j, c in enumerate(range(self._c_live, self._c_live_end)):
            for r in range(per):
                kind: EventKind = "pump"
                if r == 0 and good:
                    ti = good[j % len(good)]
                else:
                    pool = rest or good
                    slot = j * (per - (1 if good else 0)) + r - (1 if good else 0)
                    ti = pool[slot % len(pool)]
                    kind = self._live_kind(self.tokens[ti].kind, slot)
                taken = plan.setdefault(ti, [])
                if all(abs(c - other) >= cfg.min_event_gap_candles for other, _, _ in taken):
                    taken.append((c, r, kind))
        return plan

    @staticmethod
    def _live_kind(kind: TokenKind, slot: int) -> EventKind:
        if kind == "fizzle":
            return "fizzle"
        if kind == "thin":
            return "pump" if slot % 2 == 0 else "fizzle"
        return "fizzle" if slot % 4 == 3 else "pump"

    # ------------------------------------------------------------------ lookups

    def token(self, mint: str) -> SimToken:
        try:
            return self._by_mint[mint]
        except KeyError:
            raise KeyError(f"unknown simulated mint {mint!r}") from None

    def has_token(self, mint: str) -> bool:
        return mint in self._by_mint

    def pool(self, address: str) -> SimPool:
        try:
            return self._pools[address]
        except KeyError:
            raise KeyError(f"unknown simulated pool {address!r}") from None

    def has_pool(self, address: str) -> bool:
        return address in self._pools

    def pools_of(self, mint: str) -> tuple[SimPool, ...]:
        """The token's own pools (it is the base), deepest SOL/USDC pool first."""
        return self.token(mint).pools

    def pools_with(self, mint: str) -> list[SimPool]:
        """Pools where the token is base *or* quote (what DexScreener/GeckoTerminal list for it)."""
        return list(self._pools_with.get(mint, ()))

    def find(self, query: str) -> list[SimToken]:
        """Tokens matching a mint/pool address exactly, or a symbol/name substring (case-insensitive)."""
        q = query.strip()
        if q in self._by_mint:
            return [self._by_mint[q]]
        if q in self._pools:
            return [self.tokens[self._pools[q].token_index]]
        low = q.lower()
        if not low:
            return []
        return [t for t in self.tokens if low in t.symbol.lower() or low in t.name.lower()]

    def listed(self, mint: str, t: float) -> bool:
        return t >= self.token(mint).listed_at

    def pool_open(self, address: str, t: float) -> bool:
        return t >= self.pool(address).bars_from

    # ------------------------------------------------------------------ event schedule

    def _kmin(self, ti: int, c: int) -> int:
        cs = self.start_ts + c * CANDLE_S
        ref = max(cs - cs % 86_400, self.tokens[ti].listed_at, self.tokens[ti].main_pool.bars_from)
        return max(2, _WARMUP_BARS - (cs - ref) // 300)

    def _schedule(self, ti: int) -> _Schedule:
        sched = self._schedules.get(ti)
        if sched is not None:
            return sched
        cfg, tok = self.config, self.tokens[ti]
        rng = np.random.default_rng([cfg.seed, 4, ti])
        gap = cfg.min_event_gap_candles
        c_first = (tok.listed_at - self.start_ts) // CANDLE_S
        c_hist_end = self._c_live - gap
        events: dict[int, _Event] = {}
        rug: _Event | None = None
        if tok.kind == "rug":
            rank = [t.index for t in self.tokens if t.kind == "rug"].index(ti)
            lo, hi = c_first + 12, self._c_live - 4
            if rank % 2 == 0 and hi > lo:
                c_rug = int(rng.integers(lo, hi))
                live = False
            else:
                c_rug = min(self._c_live + 1 + rank // 2, max(self._c_live, self._c_live_end - 1))
                live = True
            rug = self._make_rug(rng, c_rug, live)
            events[c_rug] = rug
            c_hist_end = min(c_hist_end, c_rug - gap + 1)
        if tok.kind in ("pump", "fizzle", "thin", "rug"):
            candidates = list(range(max(c_first, 0), max(c_first, c_hist_end)))
            days = len(candidates) / 6
            wanted = round(cfg.events_per_token_day * days)
            picked: list[int] = []
            for c in rng.permutation(candidates) if candidates else []:
                if len(picked) >= wanted:
                    break
                c = int(c)
                if all(abs(c - o) >= gap for o in picked) and (rug is None or rug.candle - c >= gap):
                    picked.append(c)
            for c in sorted(picked):
                events[c] = self._make_ignition(rng, ti, c, self._history_kind(rng, tok.kind), live=False)
            for c, slot, kind in self._live_plan.get(ti, []):
                if rug is not None and rug.candle - c < gap:
                    continue
                per = max(1, cfg.live_events_per_candle)
                kmin = self._kmin(ti, c)
                step = min(8, max(0, (30 - kmin) // max(1, per - 1)))
                jitter = int(rng.integers(0, 6)) if slot else 0  # slot 0 ignites first, the others when they do
                events[c] = self._make_ignition(rng, ti, c, kind, live=True, k=kmin + slot * step + jitter)
        if ti == self.migrating and tok.migrated_at is not None:  # it pumps in the candle after migrating
            c = (tok.migrated_at - self.start_ts) // CANDLE_S + 1
            events[c] = self._make_ignition(rng, ti, c, "pump", live=True)
        retrace: dict[int, float] = {}
        for ev in events.values():
            if ev.kind == "pump":
                for d in (1, 2):
                    retrace[ev.candle + d] = float(rng.uniform(-0.16, -0.01))  # the pump fades
        ordered = sorted(events.values(), key=lambda e: e.candle)
        sched = _Schedule(events, ordered, rug, retrace)
        self._schedules[ti] = sched
        return sched

    def _history_kind(self, rng: np.random.Generator, kind: TokenKind) -> EventKind:
        if kind == "fizzle":
            return "fizzle"
        if kind == "thin":
            return "pump" if rng.random() < 0.5 else "fizzle"
        if kind == "rug":
            return "pump"
        return "pump" if rng.random() < self.config.pump_fraction else "fizzle"

    def _make_ignition(self, rng: np.random.Generator, ti: int, c: int, kind: EventKind, *, live: bool,
                       k: int | None = None) -> _Event:
        """One pump or fizzle, drawn from the shapes real pumps take.

        The ignition bar closes +2.6–14.6% over the 4H open (most near the low end) on 3.7–80x the mean
        of the 20 bars before it, and reaches that either in a ramp, a jump in its first minute, or
        with the volume arriving late. A pump then spikes early and holds, grinds or climbs in steps
        to a peak and closes +10.5% to +60%; a fizzle fades (peak a few % higher), pops to +9–25% and
        reverses (past a first target, then back), or dumps right after igniting.
        """
        kmin = self._kmin(ti, c)
        kmax = 30 if kind == "pump" else 36
        draws = rng.random(12)
        if k is None:
            k = kmin + int(draws[0] * (kmax - kmin + 1))
        k = min(max(k, kmin), kmax)
        m_i = 5 * k
        x_pre = -0.01 + 0.016 * float(draws[1])
        x_ign = math.log1p(0.026 + 0.12 * float(draws[2]) ** 2.2)
        surge = min(80.0, 3.7 * (1.0 - 0.999 * float(draws[3])) ** -0.9)  # median ~7x, a tail to 80x
        shape = int(draws[7] * 3)  # 0 ramp, 1 jump, 2 late volume
        room = MINUTES_PER_CANDLE - (m_i + 5) - 20
        style = float(draws[8])
        if kind == "pump":
            x_close = math.log1p(0.105 + 0.5 * float(draws[4]) ** 2)
            x_peak = x_close + 0.01 + 0.3 * float(draws[5]) ** 2
            if style < 0.4:  # spike early, then hold most of it
                ramp = 5 + int(draws[6] * 26)
            elif style < 0.7:  # climb in steps
                ramp = 30 + int(draws[6] * (min(110, room) - 30 + 1))
            else:  # slow grind to a late peak
                ramp = min(room, 90) + int(draws[6] * (room - min(room, 90) + 1))
        elif style < 0.45:  # fade: a little higher, then back near the open
            x_close = math.log1p(-0.04 + 0.1 * float(draws[4]))
            x_peak = min(x_ign + 0.005 + 0.04 * float(draws[5]), max(math.log1p(0.085), x_ign + 0.005))
            ramp = 3 + int(draws[6] * 23)
        elif style < 0.8:  # pop past a first target, then reverse
            x_close = math.log1p(-0.12 + 0.17 * float(draws[4]))
            x_peak = max(math.log1p(0.09 + 0.16 * float(draws[5])), x_ign + 0.01)
            ramp = 5 + int(draws[6] * 36)
        else:  # dump right after igniting
            x_close = math.log1p(-0.18 + 0.14 * float(draws[4]))
            x_peak = x_ign + 0.002 + 0.01 * float(draws[5])
            ramp = 2 + int(draws[6] * 6)
        x_peak = max(x_peak, x_ign + 0.002, x_close + 0.003)
        peak_minute = m_i + 5 + ramp - 1
        return _Event(kind, c, m_i, x_pre, x_ign, x_peak, x_close, peak_minute, surge, 0, 1.0, live, shape)

    def _make_rug(self, rng: np.random.Generator, c: int, live: bool) -> _Event:
        draws = rng.random(7)
        m_r = 40 + int(draws[0] * 161) if not live else 40 + int(draws[0] * 30)
        x_pre = -0.01 + 0.016 * float(draws[1])
        x_bottom = x_pre + math.log(0.05 + 0.10 * float(draws[2]))
        x_close = x_bottom - 0.03 + 0.06 * float(draws[3])
        drop = 1 + int(draws[4] * 3)
        surge = 15.0 + 25.0 * float(draws[5])
        liq = 0.02 + 0.06 * float(draws[6])
        return _Event("rug", c, m_r, x_pre, x_bottom, x_pre, x_close, m_r, surge, drop, liq, live, 0)

    def planted_events(self, start: int, end: int) -> list[PlantedEvent]:
        """Events whose 4H candle starts in ``[start, end)``, by candle time then mint."""
        out: list[PlantedEvent] = []
        for tok in self.tokens:
            sched = self._schedule(tok.index)
            for ev in sched.ordered:
                cs = self.start_ts + ev.candle * CANDLE_S
                if not start <= cs < end:
                    continue
                if ev.kind == "rug":
                    ignite = cs + ev.start_minute * 60
                    peak = math.expm1(ev.x_ign - ev.x_pre) * 100
                else:
                    ignite = cs + ev.start_minute * 60 + 300
                    peak = math.expm1(ev.x_peak) * 100
                out.append(PlantedEvent(
                    mint=tok.mint, pool=tok.main_pool.address, kind=ev.kind, candle_ts=cs, ignite_ts=ignite,
                    peak_pct=peak, close_pct=math.expm1(ev.x_close) * 100, symbol=tok.symbol,
                    token_kind=tok.kind, eligible=tok.safe and tok.kind != "thin", live=ev.live,
                ))
        out.sort(key=lambda e: (e.candle_ts, e.mint))
        return out

    def rug_time(self, mint: str) -> int | None:
        """When the token's liquidity is pulled (start of the crash minute), if ever."""
        tok = self.token(mint)
        rug = self._schedule(tok.index).rug
        if rug is None:
            return None
        return self.start_ts + rug.candle * CANDLE_S + rug.start_minute * 60

    # ------------------------------------------------------------------ anchor chain

    def _path(self, ti: int, upto: int) -> _Path:
        """The token's anchor chain, extended so that candle ``upto`` (and its end) exists."""
        path = self._paths.get(ti)
        tok = self.tokens[ti]
        if path is None:
            lb0 = math.log(tok.daily_volume_usd / 288)
            path = _Path([], [], math.log(tok.initial_price), lb0)
            self._paths[ti] = path
        if len(path.anchors) > upto + 1:
            return path
        cfg = self.config
        sched = self._schedule(ti)
        c_first = (tok.listed_at - self.start_ts) // CANDLE_S
        events, retrace = sched.events, sched.retrace
        anchors, log_base, lb0 = path.anchors, path.log_base, path.lb0
        clip, rev, sigma, step = _CANDLE_CLIP, _REVERSION, tok.volatility, _BASE_STEP
        lo, hi = lb0 - _BASE_SPREAD, lb0 + _BASE_SPREAD
        while len(anchors) <= upto + 1:
            block = len(anchors) // _BLOCK
            rng = np.random.default_rng([cfg.seed, 2, ti, block])
            z = (rng.standard_t(4, _BLOCK) / math.sqrt(2.0)).tolist()  # unit variance, fat tails
            zb = rng.normal(0.0, 1.0, _BLOCK).tolist()
            for j in range(_BLOCK):
                c = block * _BLOCK + j
                if c < c_first:
                    anchors.append(math.nan)
                    log_base.append(math.nan)
                    continue
                if c == c_first:
                    anchors.append(math.log(tok.initial_price))
                    log_base.append(lb0)
                # the anchor and baseline of candle c are known: append those of c + 1
                a = anchors[c]
                ev = events.get(c)
                if ev is not None:
                    inc = ev.x_close
                    if ev.kind == "rug":
                        path.ref = a + ev.x_close
                elif c in retrace:
                    inc = retrace[c]
                else:
                    inc = -rev * (a - path.ref) + sigma * z[j]
                    if inc > clip:  # reflected below the cap: no pile of candles closing at exactly +8.9%
                        inc = 2 * clip - inc
                    inc = max(inc, _CANDLE_FLOOR)
                anchors.append(a + inc)
                lb = log_base[c]
                nxt = lb0 + 0.95 * (lb - lb0) + 0.04 * zb[j]
                nxt = lb + step if nxt > lb + step else (lb - step if nxt < lb - step else nxt)
                log_base.append(hi if nxt > hi else (lo if nxt < lo else nxt))
        return path

    # ------------------------------------------------------------------ minute paths

    def _candle(self, ti: int, c: int) -> _CandleData:
        key = (ti, c)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        data = self._generate(ti, c)
        self._cache[key] = data
        if len(self._cache) > self.config.candle_cache:
            self._cache.popitem(last=False)
        self._remember_total(key, data.volume_before(MINUTES_PER_CANDLE))
        return data

    def _remember_total(self, key: tuple[int, int], total: float) -> None:
        self._totals[key] = total
        if len(self._totals) > 16 * self.config.candle_cache:
            self._totals.popitem(last=False)

    def _candle_total(self, ti: int, c: int) -> float:
        """A whole candle's volume; generates the candle without caching it when needed."""
        key = (ti, c)
        total = self._totals.get(key)
        if total is None:
            hit = self._cache.get(key)
            total = (hit or self._generate(ti, c)).volume_before(MINUTES_PER_CANDLE)
            self._remember_total(key, total)
        return total

    def _generate(self, ti: int, c: int) -> _CandleData:
        tok = self.tokens[ti]
        path = self._path(ti, c + 1)
        sched = self._schedule(ti)
        a0, a1 = path.anchors[c], path.anchors[c + 1]
        if math.isnan(a0):
            raise ValueError(f"{tok.symbol}: no data before its listing at {tok.listed_at}")
        rng = np.random.default_rng([self.config.seed, 3, ti, c])
        thin = tok.kind == "thin"
        q5, qm = (0.6, 0.35) if thin else (0.15, 0.08)
        g_draw = rng.random(BARS5_PER_CANDLE // QUIET_GROUP_BARS)
        g_pos = rng.integers(0, QUIET_GROUP_BARS - 1, BARS5_PER_CANDLE // QUIET_GROUP_BARS)
        mult5 = rng.uniform(0.7, 1.35, BARS5_PER_CANDLE)
        minute_quiet = rng.random(MINUTES_PER_CANDLE) < qm
        weights = rng.exponential(1.0, MINUTES_PER_CANDLE)
        steps = rng.normal(0.0, _SIGMA_MINUTE, MINUTES_PER_CANDLE)
        wick_up = np.abs(rng.normal(0.0, _WICK, MINUTES_PER_CANDLE))
        wick_dn = np.abs(rng.normal(0.0, _WICK, MINUTES_PER_CANDLE))
        noise = rng.uniform(0.7, 1.3, MINUTES_PER_CANDLE)

        quiet5 = np.zeros(BARS5_PER_CANDLE, dtype=bool)
        for g in range(len(g_draw)):
            if g_draw[g] < q5:
                quiet5[g * QUIET_GROUP_BARS + int(g_pos[g])] = True
        active = ~np.repeat(quiet5, 5) & ~minute_quiet
        by_bar = active.reshape(BARS5_PER_CANDLE, 5)
        empty_bars = ~quiet5 & ~by_bar.any(axis=1)
        by_bar[empty_bars, 4] = True
        active = by_bar.ravel()
        active[-1] = True

        base = math.exp(path.log_base[c])
        rug = sched.rug
        dead_before = rug is not None and rug.candle < c
        if dead_before:
            base *= _DEAD_VOLUME
        v5 = base * mult5 * ~quiet5
        w = (weights * active).reshape(BARS5_PER_CANDLE, 5)
        ws = w.sum(axis=1)
        volume = (w * (v5 / np.where(ws > 0, ws, 1.0))[:, None]).ravel()

        ev = sched.events.get(c)
        peak: float | None = None
        if ev is None:
            x = _bridge(active, steps, 0.0, a1 - a0, _BRIDGE_AMP + 0.25 * abs(a1 - a0))
        else:
            x = self._event_path(ev, active, steps, volume, noise, base, a1 - a0)
            wick_up[:ev.start_minute] = np.minimum(wick_up[:ev.start_minute], _PRE_EVENT_WICK)
            if ev.kind != "rug":
                peak = math.exp(a0 + ev.x_peak)
        open0 = math.exp(a0)
        close = np.exp(a0 + x)
        close[-1] = math.exp(a1)
        if peak is not None and ev is not None:
            close[ev.peak_minute] = peak
        # a quiet minute holds the previous close bit for bit (no float drift through exp)
        last_active = np.where(active, np.arange(MINUTES_PER_CANDLE), -1)
        np.maximum.accumulate(last_active, out=last_active)
        close = np.where(last_active >= 0, close[np.maximum(last_active, 0)], open0)
        open_ = np.empty_like(close)
        open_[0] = open0
        open_[1:] = close[:-1]
        wick_up[~active] = 0.0
        wick_dn[~active] = 0.0
        body_hi = np.maximum(open_, close)
        high = body_hi * np.exp(wick_up)
        low = np.minimum(open_, close) * np.exp(-wick_dn)
        if peak is not None and ev is not None:
            high[ev.start_minute:] = np.maximum(np.minimum(high[ev.start_minute:], peak),
                                                body_hi[ev.start_minute:])
        high = np.maximum(high, body_hi)
        volume[~active] = 0.0
        self._add_spikes(tok, c, open0, close, high, low, volume, ev)
        if ev is not None and ev.kind != "rug":
            self._size_ignition(ti, c, ev, volume)
        for arr in (high, low, close, volume):
            arr.flags.writeable = False
        return _CandleData(open0, high, low, close, volume)

    def _event_path(self, ev: _Event, active: np.ndarray, steps: np.ndarray, volume: np.ndarray,
                    noise: np.ndarray, base: float, x_end: float) -> np.ndarray:
        """Candle-relative log path of an event candle (edits ``active``/``volume`` in place)."""
        m0 = ev.start_minute
        x = np.empty(MINUTES_PER_CANDLE)
        x[:m0] = np.clip(_bridge(active[:m0], steps[:m0], 0.0, ev.x_pre, 0.012), _PRE_EVENT_MIN, _PRE_EVENT_MAX)
        if ev.kind == "rug":
            n = ev.drop_minutes
            active[m0:m0 + n] = True
            x[m0:m0 + n] = ev.x_pre + (ev.x_ign - ev.x_pre) * np.arange(1, n + 1) / n
            x[m0 + n - 1] = ev.x_ign
            volume[m0:m0 + n] = base * ev.surge / n
            after = slice(m0 + n, MINUTES_PER_CANDLE)
            volume[after] *= _DEAD_VOLUME
            x[after] = _bridge(active[after], steps[after], ev.x_ign, x_end, 0.015)
            return x
        active[m0:] = True
        x[m0:m0 + 5] = ev.x_pre + (ev.x_ign - ev.x_pre) * _IGNITION_PRICE[ev.shape]
        x[m0 + 4] = ev.x_ign  # its volume is set by _size_ignition, once the bars before it are final
        p = ev.peak_minute
        up = slice(m0 + 5, p + 1)
        x[up] = np.minimum(_bridge(active[up], steps[up], ev.x_ign, ev.x_peak, 0.25 * (ev.x_peak - ev.x_ign)),
                           ev.x_peak)
        x[p] = ev.x_peak
        down = slice(p + 1, MINUTES_PER_CANDLE)
        amp = 0.3 * abs(ev.x_peak - x_end) + 0.004
        x[down] = np.minimum(_bridge(active[down], steps[down], ev.x_peak, x_end, amp), ev.x_peak)
        tau = np.arange(MINUTES_PER_CANDLE - m0 - 5, dtype=float)
        level, decay, floor = (8.0, 40.0, 1.5) if ev.kind == "pump" else (5.0, 20.0, 1.2)
        level *= math.sqrt(ev.surge / 7.0)  # a bigger ignition draws a bigger crowd after it
        volume[m0 + 5:] = base / 5 * (level * np.exp(-tau / decay) + floor) * noise[m0 + 5:]
        return x

    def _add_spikes(self, tok: SimToken, c: int, open0: float, close: np.ndarray, high: np.ndarray,
                    low: np.ndarray, volume: np.ndarray, ev: _Event | None) -> None:
        """Sell-side volume spikes (2.6–25x the bar) where they cannot look like an ignition (in place).

        Only on a 5m bar that ends at its lowest close, in the lower half of its range (so it never
        closes in its upper third, where a volume-surge strategy would read buyers), and
        whose highs, and the next bar's, stay below +1.5% over the 4H open; never in the last bar
        of the candle, nor in or right before an event's first bar. The rolling 5-minute volume a
        scanner polls is therefore never large while the price is +2% up, outside planted events.
        """
        limit = BARS5_PER_CANDLE - 1 if ev is None else ev.start_minute // 5 - 1
        if limit <= 0 or tok.spike_rate <= 0:
            return
        rng = np.random.default_rng([self.config.seed, 5, tok.index, c])
        draw = rng.random(BARS5_PER_CANDLE)
        size = np.minimum(25.0, 2.6 * np.exp(rng.exponential(0.7, BARS5_PER_CANDLE)))
        bars = (BARS5_PER_CANDLE, 5)
        below = high.reshape(bars).max(axis=1) < open0 * _SPIKE_PRICE_CAP
        opens = np.r_[open0, close[:-1]].reshape(bars)
        closes = close.reshape(bars)
        hi5, lo5 = high.reshape(bars).max(axis=1), low.reshape(bars).min(axis=1)
        ends_low = ((closes[:, 4] <= np.minimum(opens.min(axis=1), closes.min(axis=1)))
                    & (closes[:, 4] - lo5 < 0.5 * (hi5 - lo5)))
        traded = volume.reshape(bars).sum(axis=1) > 0
        ok = np.zeros(BARS5_PER_CANDLE, dtype=bool)
        ok[:-1] = below[:-1] & below[1:] & ends_low[:-1] & traded[:-1]
        ok[limit:] = False
        chosen = ok & (draw < min(0.95, 8.0 * tok.spike_rate))
        if chosen.any():
            by_bar = volume.reshape(bars)
            by_bar[chosen] *= size[chosen, None]

    def _size_ignition(self, ti: int, c: int, ev: _Event, volume: np.ndarray) -> None:
        """The ignition bar's volume: ``ev.surge`` x the mean of the 20 bars before it (in place)."""
        k = ev.start_minute // 5
        own = volume.reshape(BARS5_PER_CANDLE, 5).sum(axis=1)[max(0, k - _WARMUP_BARS):k]
        total = float(own.sum())
        need = _WARMUP_BARS - len(own)
        if need:  # the warm-up reaches into the previous candle (same UTC day, see _kmin)
            prev = self._candle(ti, c - 1).volume.reshape(BARS5_PER_CANDLE, 5).sum(axis=1)
            total += float(prev[BARS5_PER_CANDLE - need:].sum())
        volume[ev.start_minute:ev.start_minute + 5] = ev.surge * total / _WARMUP_BARS * _IGNITION_VOLUME[ev.shape]

    # ------------------------------------------------------------------ bars

    def _minutes(self, ti: int, m_lo: int, m_hi: int) -> tuple[np.ndarray, ...]:
        """Minute arrays (open, high, low, close, volume) for minute timestamps [m_lo, m_hi)."""
        c_lo = (m_lo - self.start_ts) // CANDLE_S
        c_hi = (m_hi - 1 - self.start_ts) // CANDLE_S
        parts = [self._candle(ti, c) for c in range(c_lo, c_hi + 1)]
        first = (m_lo - self.start_ts - c_lo * CANDLE_S) // 60
        n = (m_hi - m_lo) // 60
        cols = []
        for column in (_CandleData.opens, lambda d: d.high, lambda d: d.low, lambda d: d.close, lambda d: d.volume):
            arr = column(parts[0]) if len(parts) == 1 else np.concatenate([column(p) for p in parts])
            cols.append(arr[first:first + n])
        return tuple(cols)

    def bars(self, pool: str, tf: Timeframe, start: int, end: float, *, include_forming: bool = False,
             include_empty: bool = True) -> list[Candle]:
        """Bars of ``pool`` with ``start <= ts`` that closed by ``end``; ascending, volume in USD.

        ``include_forming`` adds the bar in progress at ``end`` (aggregated up to ``end``, the
        current minute pro rata). ``include_empty=False`` drops zero-volume intervals the way
        GeckoTerminal does by default.
        """
        p = self.pool(pool)
        if p.closes_at is not None:  # a bonding curve trades nothing after the migration
            end = min(end, p.closes_at)
        tfs = int(tf)
        first_bar = max(-(-start // tfs) * tfs, p.bars_from - p.bars_from % tfs)
        done_end = int(end) - int(end) % tfs
        out: list[Candle] = []
        m_lo, m_hi = max(first_bar, p.bars_from), done_end
        if m_hi > m_lo:
            out = self._aggregate(p, tfs, m_lo, m_hi, include_empty)
        if include_forming and done_end >= first_bar and done_end < end:
            forming = self._forming(p, tfs, done_end, end)
            if forming is not None and (include_empty or forming.volume > 0):
                out.append(forming)
        return out

    def _aggregate(self, p: SimPool, tfs: int, m_lo: int, m_hi: int, include_empty: bool) -> list[Candle]:
        o, h, lo, c, v = self._minutes(p.token_index, m_lo, m_hi)
        v = v * p.volume_share
        ts = m_lo + 60 * np.arange(len(o))
        bucket = ts - ts % tfs
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        ends = np.r_[starts[1:], len(o)]
        hh = np.maximum.reduceat(h, starts)
        ll = np.minimum.reduceat(lo, starts)
        vv = np.add.reduceat(v, starts)
        oo = o[starts]
        cc = c[ends - 1]
        bt = bucket[starts]
        keep = np.ones(len(starts), dtype=bool) if include_empty else vv > 0
        return [Candle(int(bt[i]), float(oo[i]), float(hh[i]), float(ll[i]), float(cc[i]), float(vv[i]))
                for i in np.flatnonzero(keep)]

    def _forming(self, p: SimPool, tfs: int, bar_ts: int, t: float) -> Candle | None:
        m_lo = max(bar_ts, p.bars_from)
        if t <= m_lo:
            return None
        whole_end = int(t) - int(t) % 60
        o = h = lo = c = v = None
        if whole_end > m_lo:
            oo, hh, ll, cc, vv = self._minutes(p.token_index, m_lo, whole_end)
            o, h, lo, c, v = float(oo[0]), float(hh.max()), float(ll.min()), float(cc[-1]), float(vv.sum())
        if t > whole_end:
            po, pc, pv = self._partial_minute(p.token_index, whole_end, t)
            o = po if o is None else o
            h = max(po, pc) if h is None else max(h, po, pc)
            lo = min(po, pc) if lo is None else min(lo, po, pc)
            c = pc
            v = pv if v is None else v + pv
        assert o is not None and h is not None and lo is not None and c is not None and v is not None
        return Candle(bar_ts, o, h, lo, c, v * p.volume_share)

    def _partial_minute(self, ti: int, minute_ts: int, t: float) -> tuple[float, float, float]:
        """(open, price at t, volume so far) of the minute starting at ``minute_ts``."""
        cidx = (minute_ts - self.start_ts) // CANDLE_S
        data = self._candle(ti, cidx)
        m = (minute_ts - self.start_ts - cidx * CANDLE_S) // 60
        f = (t - minute_ts) / 60
        o, cl = data.open_at(m), float(data.close[m])
        price = o if cl == o else o * (cl / o) ** f
        return o, price, float(data.volume[m]) * f

    # ------------------------------------------------------------------ point-in-time queries

    def token_price(self, mint: str, t: float) -> float | None:
        """USD price at ``t`` (None before listing). SOL, USDC and USD1 have fixed prices."""
        if mint == SOL_MINT:
            return SOL_USD
        if mint in (USDC_MINT, USD1_MINT):
            return USDC_USD
        tok = self.token(mint)
        if t < tok.listed_at:
            return None
        minute = int(t) - int(t) % 60
        return self._partial_minute(tok.index, minute, t)[1]

    def _token_volume(self, ti: int, t0: float, t1: float) -> float:
        """Token-level USD volume traded in [t0, t1) (the current minute pro rata)."""
        t0 = max(t0, float(self.tokens[ti].listed_at))
        if t1 <= t0:
            return 0.0
        c0 = int((t0 - self.start_ts) // CANDLE_S)
        c1 = int((t1 - self.start_ts) // CANDLE_S)
        if (t1 - self.start_ts) % CANDLE_S == 0:
            c1 -= 1
        total = 0.0
        for c in range(c0, c1 + 1):
            cs = self.start_ts + c * CANDLE_S
            lo, hi = max(t0, cs) - cs, min(t1, cs + CANDLE_S) - cs
            if lo <= 0 and hi >= CANDLE_S:
                total += self._candle_total(ti, c)
            else:
                data = self._candle(ti, c)
                total += _cum(data, hi) - _cum(data, lo)
        return total

    def _liquidity(self, p: SimPool, t: float, price: float) -> float:
        tok = self.tokens[p.token_index]
        factor = min(1.4, max(0.7, math.sqrt(price / tok.initial_price)))
        rug = self._schedule(tok.index).rug
        if rug is not None and t >= self.start_ts + rug.candle * CANDLE_S + rug.start_minute * 60:
            factor = 0.7 * rug.liquidity_factor
        return p.liquidity_usd * factor

    def pair_stats(self, pool: str, t: float) -> PoolStats | None:
        """DexScreener's view of ``pool`` at ``t``; None before the pool has traded."""
        p = self.pool(pool)
        if t < p.bars_from:
            return None
        ti = p.token_index
        tok = self.tokens[ti]
        until = t if p.closes_at is None else min(t, p.closes_at)  # a migrated curve: its last trade
        price = self.token_price(tok.mint, until)
        quote_usd = self.token_price(p.quote_mint, until)
        assert price is not None
        if quote_usd is None:
            return None
        windows: dict[str, WindowStats] = {}
        for key, w in WINDOWS_S.items():
            vol = self._token_volume(ti, max(t - w, p.bars_from), until) * p.volume_share
            windows[key] = WindowStats(vol, *self._change_and_txns(tok, until, w, p.bars_from, vol))
        volume = {k: v.volume for k, v in windows.items()}
        change = {k: v.price_change for k, v in windows.items()}
        txns = {k: v.txns for k, v in windows.items()}
        liq = self._liquidity(p, t, price)
        return PoolStats(
            pool=pool, t=t, price_usd=price, price_native=price / quote_usd,
            volume=Window4(**volume), price_change=Window4(**change), txns=txns,
            liquidity_usd=liq, liquidity_base=liq / 2 / price, liquidity_quote=liq / 2 / quote_usd,
            fdv=price * tok.total_supply, market_cap=price * tok.circ_supply, pair_created_at=p.created_at,
        )

    def pool_window(self, pool: str, t: float, seconds: float) -> WindowStats | None:
        """Activity of one pool over ``[t - seconds, t)``; None before the pool trades."""
        p = self.pool(pool)
        if t < p.bars_from:
            return None
        tok = self.tokens[p.token_index]
        until = t if p.closes_at is None else min(t, p.closes_at)
        vol = self._token_volume(tok.index, max(t - seconds, p.bars_from), until) * p.volume_share
        return WindowStats(vol, *self._change_and_txns(tok, until, seconds, p.bars_from, vol))

    def token_window(self, mint: str, t: float, seconds: float) -> WindowStats | None:
        """Activity of a token over all its own pools over ``[t - seconds, t)``."""
        tok = self.token(mint)
        if t < tok.listed_at:
            return None
        vol = self._token_volume(tok.index, t - seconds, t)
        return WindowStats(vol, *self._change_and_txns(tok, t, seconds, tok.listed_at, vol))

    def _change_and_txns(self, tok: SimToken, t: float, seconds: float, since: int,
                         volume: float) -> tuple[float | None, TxnCounts]:
        price = self.token_price(tok.mint, t)
        past = self.token_price(tok.mint, t - seconds) if t - seconds >= since else None
        pct = None if past is None or price is None else (price / past - 1) * 100
        return pct, _txns(volume, tok.trade_size_usd, pct or 0.0)

    def is_verified(self, mint: str, t: float) -> bool:
        """Jupiter's ``verified`` tag: safe, liquid, well scored and older than two days."""
        tok = self.token(mint)
        return (tok.safe and tok.kind not in ("thin", "rug") and tok.organic_score >= 70
                and t - tok.listed_at >= YOUNG_AGE_S)

    def token_info(self, mint: str, t: float) -> SimTokenInfo | None:
        """Jupiter's view of a token at ``t``; None before its first pool trades."""
        tok = self.token(mint)
        if t < tok.listed_at:
            return None
        ti = tok.index
        price = self.token_price(mint, t)
        assert price is not None
        age = t - tok.listed_at
        liq = sum(self._liquidity(p, t, price) for p in tok.pools if t >= p.bars_from)
        stats: dict[str, SimSwapStats] = {}
        for label, w in (("5m", 300), ("1h", 3600), ("6h", 21_600), ("24h", 86_400)):
            vol = self._token_volume(ti, t - w, t)
            prev_vol = self._token_volume(ti, t - 2 * w, t - w)
            past = self.token_price(mint, t - w) if age >= w else None
            pct = None if past is None else (price / past - 1) * 100
            tx = _txns(vol, tok.trade_size_usd, pct or 0.0)
            buy_share = tx.buys / (tx.buys + tx.sells) if tx.buys + tx.sells else 0.5
            liq_past = sum(self._liquidity(p, t - w, past) for p in tok.pools if t - w >= p.bars_from) if past else 0
            stats[label] = SimSwapStats(
                price_change=pct,
                volume_change=(vol / prev_vol - 1) * 100 if prev_vol > 0 and age >= 2 * w else None,
                liquidity_change=(liq / liq_past - 1) * 100 if liq_past > 0 else None,
                holder_change=(_holders(tok, age) / _holders(tok, age - w) - 1) * 100 if age >= w else None,
                buy_volume=vol * buy_share, sell_volume=vol * (1 - buy_share),
                num_buys=tx.buys, num_sells=tx.sells,
                num_traders=max(1, int((tx.buys + tx.sells) * 0.6)) if tx.buys + tx.sells else 0,
                num_organic_buyers=int(tx.buys * tok.organic_score / 200),
                num_net_buyers=tx.buys - tx.sells,
            )
        label = "high" if tok.organic_score >= 70 else ("medium" if tok.organic_score >= 40 else "low")
        young = age < YOUNG_AGE_S
        verified = self.is_verified(mint, t)
        return SimTokenInfo(
            mint=mint, t=t, usd_price=price, liquidity_usd=liq, fdv=price * tok.total_supply,
            mcap=price * tok.circ_supply, holder_count=_holders(tok, age), organic_score=tok.organic_score,
            organic_score_label=label, young=young, is_verified=verified,
            tags=("verified", "community", "strict") if verified else (("community",) if tok.safe else ()),
            mint_authority_disabled=not tok.mint_authority, freeze_authority_disabled=not tok.freeze_authority,
            top_holders_pct=tok.top_holders_pct, dev_balance_pct=round(tok.top_holders_pct / 8, 2),
            is_sus=tok.mint_authority or tok.transfer_fee_bps is not None,
            price_change_24h=stats["24h"].price_change, stats=stats,
        )

    # ------------------------------------------------------------------ discovery feeds

    def _listed_tokens(self, t: float) -> list[SimToken]:
        return [tok for tok in self.tokens if tok.listed_at <= t]

    def _event_near(self, ti: int, t: float) -> bool:
        c = int((t - self.start_ts) // CANDLE_S)
        events = self._schedule(ti).events
        return any(k in events and events[k].kind != "rug" for k in (c, c - 1))

    def discovery(self, category: DiscoveryCategory, interval: str, t: float, limit: int = 50) -> list[str]:
        """Jupiter's ``/tokens/v2/{category}/{interval}``: a deterministic ranked subset of mints.

        Cheap by design (candle-level, no minute paths) so 2,000 tokens cost nothing: trending
        favours tokens with a planted event in the current or previous 4H candle, traded ranks by
        baseline volume, organic by organic score; a per-hour jitter keeps the lists moving.
        """
        if category not in ("toptrending", "toporganicscore", "toptraded"):
            raise ValueError(f"unknown discovery category {category!r}")
        listed = self._listed_tokens(t)
        if not listed:
            return []
        hour = int(t // 3600)
        scored: list[tuple[float, int]] = []
        for tok in listed:
            jitter = _unit(self.config.seed, "disc", category, interval, tok.index, hour)
            if category == "toptrending":
                score = jitter + (2.0 if self._event_near(tok.index, t) else 0.0)
            elif category == "toptraded":
                score = math.log(tok.daily_volume_usd) + jitter
            else:
                score = tok.organic_score / 10 + jitter
            scored.append((score, tok.index))
        scored.sort(key=lambda s: (-s[0], s[1]))
        size = min(limit, max(1, math.ceil(0.6 * len(listed))))
        return [self.tokens[i].mint for _, i in scored[:size]]

    def recent(self, t: float, limit: int = 30) -> list[str]:
        """Jupiter's ``/tokens/v2/recent``: newest first pool first."""
        listed = sorted(self._listed_tokens(t), key=lambda tok: (-tok.first_pool.created_at, tok.index))
        return [tok.mint for tok in listed[:limit]]

    def _feeds(self) -> tuple[list[tuple[SimToken, int]], list[SimToken]]:
        """Which tokens post profiles (with their refresh period) and which buy boosts (static)."""
        if self._feed_members is None:
            seed = self.config.seed
            profiled = [(tok, 6 * 3600 + int(_unit(seed, "profile-period", tok.index) * 42 * 3600))
                        for tok in self.tokens if _unit(seed, "profile", tok.index) < 0.5]
            boosted = [tok for tok in self.tokens if _unit(seed, "boost", tok.index) < 0.3]
            self._feed_members = (profiled, boosted)
        return self._feed_members

    def profiles(self, t: float, limit: int = 30) -> list[str]:
        """DexScreener's latest token profiles: about half the tokens refresh a profile now and then."""
        updates: list[tuple[int, int]] = []
        for tok, period in self._feeds()[0]:
            if tok.listed_at <= t:
                updates.append((tok.listed_at + int((t - tok.listed_at) // period) * period, tok.index))
        updates.sort(key=lambda u: (-u[0], u[1]))
        return [self.tokens[i].mint for _, i in updates[:limit]]

    def boosts(self, t: float, limit: int = 30, top: bool = False) -> list[SimBoost]:
        """DexScreener boosts active at ``t``: latest first, or by total amount with ``top``."""
        out: list[SimBoost] = []
        period = 12 * 3600
        for tok in self._feeds()[1]:
            if tok.listed_at > t:
                continue
            k = int((t - tok.listed_at) // period)
            amount = self._boost_amounts.get((tok.index, k))
            if amount is None:  # one hash per token and 12 h period, not one per request
                amount = float(10 * (1 + int(_unit(self.config.seed, "boost-amount", tok.index, k) * 5)))
                self._boost_amounts[(tok.index, k)] = amount
            out.append(SimBoost(tok.mint, amount, amount * (k + 1), tok.listed_at + k * period))
        if top:
            out.sort(key=lambda b: (-b.total_amount, b.mint))
        else:
            out.sort(key=lambda b: (-b.boosted_at, b.mint))
        return out[:limit]

    def pool_launches(self, start: float, end: float) -> list[tuple[SimPool, SimPool | None]]:
        """Pools opening in ``[start, end)`` (their ``created_at``), in time order, each with the
        bonding curve it replaces when it is a token's graduation (its main pool opening as the curve
        closes), else None: what the chain shows as pool-creation and migration events."""
        out = []
        for tok in self.tokens:
            for p in tok.pools:
                if start <= p.created_at < end:
                    curve = tok.curve if tok.curve is not None and p.is_main and p.created_at == tok.migrated_at \
                        else None
                    out.append((p, curve))
        out.sort(key=lambda pc: (pc[0].created_at, pc[0].address))
        return out

    def swaps(self, pool: str, start: float, end: float) -> list[SimSwap]:
        """The individual swaps of ``pool`` with ``start <= ts < end``, in time order: each one-minute
        bar split by :func:`dexscan.demo.chain_swaps.minute_swaps` (its volume is the bar's), once per
        minute (kept for :data:`MINUTE_SWAPS_KEPT` pool-minutes: the stream asks slice by slice)."""
        from dexscan.demo.chain_swaps import minute_swaps

        first = int(start) - int(start) % 60
        minutes = range(first, int(end) - int(end) % 60 + 60, 60)
        cache = self._minute_swaps
        missing = [m for m in minutes if (pool, m) not in cache]
        if missing:
            size = self.tokens[self.pool(pool).token_index].trade_size_usd
            bars = {bar.ts: bar for bar in self.bars(pool, Timeframe.M1, missing[0], missing[-1] + 60,
                                                     include_empty=False)}
            for m in missing:
                cache[(pool, m)] = minute_swaps(pool, bars[m], size) if m in bars else []
            while len(cache) > MINUTE_SWAPS_KEPT:
                cache.popitem(last=False)
        return [s for m in minutes for s in cache[(pool, m)] if start <= s.ts < end]


def _bridge(active: np.ndarray, steps: np.ndarray, x_start: float, x_end: float, amp: float) -> np.ndarray:
    """A random walk over active minutes pinned at ``x_end`` on the last minute; |excursion| <= amp.

    Quiet minutes have a zero step and no share of the drift, so their value equals the previous
    minute's bit for bit (an empty interval is O=H=L=C=previous close, exactly).
    """
    n = np.cumsum(active)
    total = n[-1] if len(n) else 0
    if total == 0:
        return np.full(len(active), x_start)
    s = np.cumsum(steps * active)
    frac = n / total
    br = s - frac * s[-1]
    peak = float(np.abs(br).max())
    if peak > amp:
        br = br * (amp / peak)
    return x_start + frac * (x_end - x_start) + br


def _cum(data: _CandleData, seconds: float) -> float:
    """Volume traded in the first ``seconds`` of a candle, the last minute pro rata."""
    if seconds <= 0:
        return 0.0
    if seconds >= CANDLE_S:
        return data.volume_before(MINUTES_PER_CANDLE)
    m = int(seconds // 60)
    return data.volume_before(m) + float(data.volume[m]) * (seconds - m * 60) / 60


def _txns(volume: float, trade_size: float, change_pct: float) -> TxnCounts:
    """Buys/sells derived from volume; buys outnumber sells while the price rises."""
    n = round(volume / trade_size)
    if n == 0:
        return TxnCounts(0, 0)
    share = min(0.75, max(0.25, 0.5 + change_pct * 0.015))
    buys = round(n * share)
    if change_pct > 0:
        buys = max(buys, n // 2 + 1)
    elif change_pct < 0:
        buys = min(buys, (n - 1) // 2)
    buys = min(n, max(0, buys))
    return TxnCounts(buys, n - buys)


def _holders(tok: SimToken, age: float) -> int:
    return int(tok.holders0 * math.sqrt(1 + max(0.0, age) / 86_400))


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from its parts (cheap per-token jitter)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
