"""The simulated tokens and pools, built from the seed, and their lookups: the one state the layers of
:class:`~dexscan.demo.market_sim.MarketSim` share (schedule, paths, bars, queries and feeds fill its
caches)."""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from dexscan.demo.market_sim.model import (
    BONDING_CURVE_DEX,
    CANDLE_S,
    DEXES,
    EventKind,
    SimConfig,
    SimPool,
    SimToken,
    SimTokenInfo,
    TokenKind,
    _CandleData,
    _Path,
    _Schedule,
)
from dexscan.domain import SOL_MINT, USD1_MINT, USDC_MINT

if TYPE_CHECKING:
    from dexscan.demo.chain_swaps import SimSwap

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


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from its parts (cheap per-token jitter)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


_V = TypeVar("_V")


def _known(table: Mapping[str, _V], key: str, what: str) -> _V:
    """``table[key]``, or a KeyError that names the unknown simulated ``what`` (mint, pool)."""
    try:
        return table[key]
    except KeyError:
        raise KeyError(f"unknown simulated {what} {key!r}") from None


class SimUniverse:
    """The tokens and pools of a seeded market, their lookups, and the caches every layer above fills."""

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
        # (mint, t) -> Jupiter's view of the token then: the fakes ask for the same tokens at one
        # instant again and again (every category and interval of a scan round, each provider)
        self._launches: list[tuple[SimPool, SimPool | None]] | None = None  # (pool, curve) by opening time
        self._launch_times: list[int] = []
        self._token_infos: OrderedDict[tuple[str, float], SimTokenInfo | None] = OrderedDict()
        self._build_tokens()
        self._live_plan = self._plan_live()

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
        return _known(self._by_mint, mint, "mint")

    def has_token(self, mint: str) -> bool:
        return mint in self._by_mint

    def pool(self, address: str) -> SimPool:
        return _known(self._pools, address, "pool")

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
