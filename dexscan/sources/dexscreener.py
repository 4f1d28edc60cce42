"""DexScreener: live pair stats (the scanner's main polling source) and discovery feeds.

Two budgets, as documented: 300 requests/min for pair and token endpoints, 60/min for profiles and
boosts. Prices arrive as strings and ``pairCreatedAt`` in milliseconds.

Real behaviours this client is built on (``reference/external-apis.md`` §3):

* ``/tokens/v1/{chain}/{addresses}`` (≤ 30 mints a call) answers ONE pair per token: DexScreener's
  pick of the token's main pair, which may be quoted in USD1 or another token, may lack
  ``pairCreatedAt`` and moves when a pump.fun token migrates (§3.2). :meth:`pairs_for_tokens` is
  the cheap live poll; it is never a token's pool list.
* ``/token-pairs/v1/{chain}/{tokenAddress}`` lists the token's pools, including pools where it is the
  *quote*; one token per call, same 300/min bucket (§3.2). :meth:`pools_for_tokens` is what the
  gates judge (the universe fetches it once per discovery round).
* A pump.fun bonding curve is a "pair" with ``dexId`` ``pumpfun`` and ``liquidity: null`` (§3.3).
* ``liquidity.usd``, ``priceUsd``, ``marketCap`` and ``pairCreatedAt`` may be absent (§3.3, §7.1).

Which pool is the main one is decided by :func:`dexscan.domain.main_pool`, never by DexScreener.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from dexscan.config import Settings
from dexscan.domain import DiscoveredToken, PairSnapshot, TxnCounts, Window4, main_pool  # noqa: F401 (re-exported)
from dexscan.errors import InputError
from dexscan.sources.http import HttpLayer, ParamValue, ProviderSpec, by_address_batches
from dexscan.sources.parse import (
    MAX_PRICE_USD,
    MAX_USD_AMOUNT,
    ParseContext,
    as_object,
    lookup,
    opt_float,
    opt_int,
    opt_ms_ts,
    opt_str,
    opt_str_list,
    parse_records,
    req_address,
    str_or,
    valid_addresses,
)

DEXSCREENER = "dexscreener"
#: DexScreener's two documented budgets.
PAIRS_BUCKET = "pairs"
PROFILES_BUCKET = "profiles"
CHAIN = "solana"
TOKENS = "/tokens/v1/solana/{mints}"
TOKEN_PAIRS = "/token-pairs/v1/solana/{mint}"
PAIRS = "/latest/dex/pairs/solana/{pairs}"
SEARCH = "/latest/dex/search"
PROFILES = "/token-profiles/latest/v1"
BOOSTS = "/token-boosts/latest/v1"
TOP_BOOSTS = "/token-boosts/top/v1"


class DexScreenerClient:
    @staticmethod
    def provider(settings: Settings) -> ProviderSpec:
        """Two budgets, as documented: pair endpoints and the profile/boost feeds, each per minute."""
        cfg = settings.sources.dexscreener
        return ProviderSpec(DEXSCREENER, cfg.base_url, {PAIRS_BUCKET: (cfg.pairs_per_minute, 60.0),
                                                        PROFILES_BUCKET: (cfg.profiles_per_minute, 60.0)})

    def __init__(self, http: HttpLayer, settings: Settings) -> None:
        self._http = http
        self._cfg = settings.sources.dexscreener

    def _ctx(self, endpoint: str) -> ParseContext:
        return ParseContext(DEXSCREENER, endpoint, self._http.count_bad_record)

    async def _get(self, bucket: str, endpoint: str, path_args: dict[str, str] | None = None,
                   params: dict[str, ParamValue] | None = None) -> Any:
        return await self._http.get_json(DEXSCREENER, bucket, endpoint, path_args, params=params)

    def _pairs(self, records: Any, ctx: ParseContext, field: str = "<body>") -> list[PairSnapshot]:
        observed_at = int(self._http.clock.now())
        parsed = parse_records(records, lambda r: parse_pair(r, ctx, observed_at), ctx, field)
        return [p for p in parsed if p is not None]

    async def pairs_for_tokens(self, mints: Sequence[str]) -> list[PairSnapshot]:
        """DexScreener's picked pair of each of ``mints`` (one per token, when it is the pair's base);
        ``tokens_batch`` (≤ 30) mints per call. The live poll: a snapshot of the token's main pool
        whenever DexScreener's pick agrees with :func:`main_pool`; never the list of its pools."""
        ctx = self._ctx(TOKENS)

        async def fetch(ids: str) -> list[PairSnapshot]:
            return self._pairs(await self._get(PAIRS_BUCKET, TOKENS, {"mints": ids}), ctx)

        return await by_address_batches(mints, self._cfg.tokens_batch, ctx, "mints", fetch, lambda p: p.base_mint)

    async def token_pairs(self, mint: str) -> list[PairSnapshot]:
        """Every pool of a token, including pools where it is the quote (sum volumes over these)."""
        ctx = self._ctx(TOKEN_PAIRS)
        if not valid_addresses([mint], ctx, "mint"):
            return []
        return self._pairs(await self._get(PAIRS_BUCKET, TOKEN_PAIRS, {"mint": mint}), ctx)

    async def pools_for_tokens(self, mints: Sequence[str]) -> dict[str, list[PairSnapshot]]:
        """Each mint's pools (``/token-pairs/v1``, one call per mint, concurrently; the pairs budget
        paces them): pools where it is the base or the quote, each once, in DexScreener's order.
        Raises the first source error when a call fails (nothing is judged on half a pool list)."""
        unique = list(dict.fromkeys(mints))
        found = await asyncio.gather(*(self.token_pairs(m) for m in unique))
        out: dict[str, list[PairSnapshot]] = {}
        for mint, pairs in zip(unique, found, strict=True):
            seen: dict[str, PairSnapshot] = {}
            for p in pairs:
                if mint in (p.base_mint, p.quote_mint) and p.pair_address not in seen:
                    seen[p.pair_address] = p
            out[mint] = list(seen.values())
        return out

    async def pairs(self, pair_addresses: Sequence[str]) -> list[PairSnapshot]:
        """Pairs by pool address, up to 30 per call."""
        ctx = self._ctx(PAIRS)

        async def fetch(ids: str) -> list[PairSnapshot]:
            data = as_object(await self._get(PAIRS_BUCKET, PAIRS, {"pairs": ids}), ctx)
            records = data.get("pairs")
            if records is None and data.get("pair") is not None:
                records = [data["pair"]]
            return self._pairs(records, ctx, "pairs")

        return await by_address_batches(pair_addresses, self._cfg.tokens_batch, ctx, "pairs", fetch)

    async def search(self, query: str) -> list[PairSnapshot]:
        """Free-text pair search (all chains on the server side; Solana pairs kept)."""
        if not query.strip():
            raise InputError("DexScreener search needs a non-empty query")
        ctx = self._ctx(SEARCH)
        data = as_object(await self._get(PAIRS_BUCKET, SEARCH, params={"q": query.strip()}), ctx)
        return self._pairs(data.get("pairs"), ctx, "pairs")

    async def latest_profiles(self) -> list[DiscoveredToken]:
        return await self._discovered(PROFILES, "dexscreener:profiles")

    async def latest_boosts(self) -> list[DiscoveredToken]:
        return await self._discovered(BOOSTS, "dexscreener:boosts")

    async def top_boosts(self) -> list[DiscoveredToken]:
        return await self._discovered(TOP_BOOSTS, "dexscreener:top-boosts")

    async def _discovered(self, endpoint: str, source: str) -> list[DiscoveredToken]:
        ctx = self._ctx(endpoint)
        data = await self._get(PROFILES_BUCKET, endpoint)
        if isinstance(data, dict):  # the docs show a single object; real answers are arrays
            data = [data]
        found = parse_records(data, lambda r: parse_discovered(r, ctx, source), ctx)
        unique: dict[str, DiscoveredToken] = {}
        for tok in found:
            if tok is not None and tok.mint not in unique:
                unique[tok.mint] = tok
        return list(unique.values())


def parse_pair(rec: Any, ctx: ParseContext, observed_at: int) -> PairSnapshot | None:
    """A DexScreener ``Pair``; ``None`` for another chain's pair from a search (not an error).

    A pair without ``chainId`` is not known to be Solana and is refused; so is another chain's pair
    from an endpoint that names Solana (a contract break). Prices, liquidity and volumes past the
    plausibility bounds (:data:`MAX_PRICE_USD`, :data:`MAX_USD_AMOUNT`) refuse the pair.
    """
    chain = opt_str(rec, "chainId", ctx)
    if chain is None:
        raise ctx.bad("chainId", "missing: a pair without chainId is not known to be a Solana pair")
    if chain != CHAIN:
        if f"/{CHAIN}/" in ctx.endpoint:
            raise ctx.bad("chainId", f"expected {CHAIN!r} from a Solana endpoint, got {chain[:40]!r}")
        return None
    return PairSnapshot(
        pair_address=req_address(rec, "pairAddress", ctx),
        dex_id=str_or(rec, "dexId", ctx),
        base_mint=req_address(rec, "baseToken.address", ctx),
        base_symbol=str_or(rec, "baseToken.symbol", ctx),
        base_name=str_or(rec, "baseToken.name", ctx),
        quote_mint=req_address(rec, "quoteToken.address", ctx),
        quote_symbol=str_or(rec, "quoteToken.symbol", ctx),
        price_usd=opt_float(rec, "priceUsd", ctx, non_negative=True, at_most=MAX_PRICE_USD),
        price_native=opt_float(rec, "priceNative", ctx, non_negative=True),
        volume=_window(rec, "volume", ctx, non_negative=True, at_most=MAX_USD_AMOUNT),
        price_change=_window(rec, "priceChange", ctx, non_negative=False),
        txns_m5=_txns(rec, "txns.m5", ctx),
        txns_h1=_txns(rec, "txns.h1", ctx),
        txns_h24=_txns(rec, "txns.h24", ctx),
        liquidity_usd=opt_float(rec, "liquidity.usd", ctx, non_negative=True, at_most=MAX_USD_AMOUNT),
        fdv=opt_float(rec, "fdv", ctx, non_negative=True),
        market_cap=opt_float(rec, "marketCap", ctx, non_negative=True),
        pair_created_at=opt_ms_ts(rec, "pairCreatedAt", ctx),
        observed_at=observed_at,
        labels=opt_str_list(rec, "labels", ctx),
        url=opt_str(rec, "url", ctx),
    )


def _window(rec: Any, key: str, ctx: ParseContext, *, non_negative: bool, at_most: float | None = None) -> Window4:
    return Window4(
        m5=opt_float(rec, f"{key}.m5", ctx, non_negative=non_negative, at_most=at_most),
        h1=opt_float(rec, f"{key}.h1", ctx, non_negative=non_negative, at_most=at_most),
        h6=opt_float(rec, f"{key}.h6", ctx, non_negative=non_negative, at_most=at_most),
        h24=opt_float(rec, f"{key}.h24", ctx, non_negative=non_negative, at_most=at_most),
    )


def _txns(rec: Any, key: str, ctx: ParseContext) -> TxnCounts:
    if lookup(rec, key, ctx) is None:
        return TxnCounts()
    return TxnCounts(
        buys=opt_int(rec, f"{key}.buys", ctx, non_negative=True) or 0,
        sells=opt_int(rec, f"{key}.sells", ctx, non_negative=True) or 0,
    )


def parse_discovered(rec: Any, ctx: ParseContext, source: str) -> DiscoveredToken | None:
    """A ``TokenProfile`` or ``TokenBoost``; ``None`` when it is another chain's token."""
    if opt_str(rec, "chainId", ctx) != CHAIN:
        return None
    return DiscoveredToken(mint=req_address(rec, "tokenAddress", ctx), source=source)

