"""Jupiter Tokens v2 and Price v3 (``api.jup.ag``, keyless by default).

One budget covers every Jupiter endpoint (30 requests per 60 s sliding window keyless, more with a
key), so batching is what makes Jupiter usable: search takes up to 100 comma-joined mints per call,
Price v3 up to 50 ids. Tokens without a reliable price are *absent* from a price answer, never zero.
The API key, when set, travels in the ``x-api-key`` header only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dexscan.config import Settings
from dexscan.domain import PriceQuote, SwapStats, TokenAudit, TokenInfo
from dexscan.errors import InputError
from dexscan.sources.http import DEFAULT_BUCKET, HttpLayer, ParamValue, ProviderSpec, by_address_batches
from dexscan.sources.parse import (
    MAX_PRICE_USD,
    MAX_USD_AMOUNT,
    ParseContext,
    lookup,
    opt_address,
    opt_bool,
    opt_decimals,
    opt_float,
    opt_int,
    opt_iso_ts,
    opt_str,
    opt_str_list,
    parse_entries,
    parse_records,
    req_address,
    req_float,
    str_or,
    to_address,
)

JUPITER = "jupiter"
SEARCH = "/tokens/v2/search"
TAG = "/tokens/v2/tag"
TOP = "/tokens/v2/{category}/{interval}"
RECENT = "/tokens/v2/recent"
PRICE = "/price/v3"

TOP_CATEGORIES = ("toporganicscore", "toptraded", "toptrending")
TOP_INTERVALS = ("5m", "1h", "6h", "24h")


class JupiterClient:
    @staticmethod
    def provider(settings: Settings) -> ProviderSpec:
        """One budget over every Jupiter endpoint: ``requests_per_minute`` in any 60 s."""
        cfg = settings.sources.jupiter
        return ProviderSpec(JUPITER, cfg.base_url, {DEFAULT_BUCKET: (cfg.requests_per_minute, 60.0)})

    def __init__(self, http: HttpLayer, settings: Settings) -> None:
        self._http = http
        self._cfg = settings.sources.jupiter
        key = settings.secrets.jupiter_api_key
        self._headers = {"x-api-key": key.get_secret_value()} if key is not None else {}

    def _ctx(self, endpoint: str) -> ParseContext:
        return ParseContext(JUPITER, endpoint, self._http.count_bad_record)

    async def _get(self, endpoint: str, path_args: dict[str, str] | None = None,
                   params: dict[str, ParamValue] | None = None) -> Any:
        return await self._http.get_json(JUPITER, DEFAULT_BUCKET, endpoint, path_args,
                                         params=params, headers=self._headers)

    async def _tokens(self, endpoint: str, path_args: dict[str, str] | None = None,
                      params: dict[str, ParamValue] | None = None) -> list[TokenInfo]:
        ctx = self._ctx(endpoint)
        data = await self._get(endpoint, path_args, params)
        return parse_records(data, lambda r: parse_token(r, ctx), ctx)

    async def search(self, mints: Sequence[str]) -> list[TokenInfo]:
        """Metadata for mints, ``search_batch`` (≤ 100) comma-joined mints per call."""
        return await by_address_batches(mints, self._cfg.search_batch, self._ctx(SEARCH), "query",
                                     lambda ids: self._tokens(SEARCH, params={"query": ids}), lambda t: t.mint)

    async def search_text(self, query: str) -> list[TokenInfo]:
        """Search by symbol or name (the API returns at most 20 matches)."""
        if not query.strip():
            raise InputError("Jupiter search needs a non-empty symbol, name or mint")
        return await self._tokens(SEARCH, params={"query": query.strip()})

    async def tag(self, tag: str) -> list[TokenInfo]:
        """Every token with a tag (``verified``, ``lst``, ``stocks``): a large payload."""
        if not tag.strip():
            raise InputError("Jupiter tag needs a tag name, e.g. 'verified'")
        return await self._tokens(TAG, params={"query": tag.strip()})

    async def top(self, category: str, interval: str, limit: int = 50) -> list[TokenInfo]:
        if category not in TOP_CATEGORIES:
            raise InputError(f"Jupiter category {category!r} unknown; expected one of {', '.join(TOP_CATEGORIES)}")
        if interval not in TOP_INTERVALS:
            raise InputError(f"Jupiter interval {interval!r} unknown; expected one of {', '.join(TOP_INTERVALS)}")
        if not 1 <= limit <= 100:
            raise InputError(f"Jupiter top limit must be 1..100, got {limit}")
        return await self._tokens(TOP, {"category": category, "interval": interval}, {"limit": limit})

    async def recent(self) -> list[TokenInfo]:
        """Tokens whose first pool was created most recently (about 30)."""
        return await self._tokens(RECENT)

    async def prices(self, mints: Sequence[str]) -> dict[str, PriceQuote]:
        """USD prices, ``price_batch`` (≤ 50) ids per call. Unpriced mints are absent from the result."""
        ctx = self._ctx(PRICE)

        async def fetch(ids: str) -> list[PriceQuote]:
            data = await self._get(PRICE, params={"ids": ids})
            return list(parse_entries(data, lambda mint, rec: parse_price(mint, rec, ctx), ctx).values())

        found = await by_address_batches(mints, self._cfg.price_batch, ctx, "ids", fetch, lambda q: q.mint)
        return {q.mint: q for q in found}


def parse_token(rec: Any, ctx: ParseContext) -> TokenInfo:
    """A Tokens v2 ``MintInformation``; only ``id`` is required, everything else is optional."""
    audit = None
    if lookup(rec, "audit", ctx) is not None:
        audit = TokenAudit(
            mint_authority_disabled=opt_bool(rec, "audit.mintAuthorityDisabled", ctx),
            freeze_authority_disabled=opt_bool(rec, "audit.freezeAuthorityDisabled", ctx),
            top_holders_pct=opt_float(rec, "audit.topHoldersPercentage", ctx, non_negative=True),
            dev_balance_pct=opt_float(rec, "audit.devBalancePercentage", ctx, non_negative=True),
            # isSus is present only when the token is flagged: presence, not value, is the signal.
            is_sus=lookup(rec, "audit.isSus", ctx) is not None and opt_bool(rec, "audit.isSus", ctx) is not False,
        )
    return TokenInfo(
        mint=req_address(rec, "id", ctx),
        symbol=str_or(rec, "symbol", ctx),
        name=str_or(rec, "name", ctx),
        decimals=opt_decimals(rec, "decimals", ctx),
        token_program=opt_str(rec, "tokenProgram", ctx),
        usd_price=opt_float(rec, "usdPrice", ctx, non_negative=True, at_most=MAX_PRICE_USD),
        liquidity_usd=opt_float(rec, "liquidity", ctx, non_negative=True, at_most=MAX_USD_AMOUNT),
        fdv=opt_float(rec, "fdv", ctx, non_negative=True),
        mcap=opt_float(rec, "mcap", ctx, non_negative=True),
        holder_count=opt_int(rec, "holderCount", ctx, non_negative=True),
        organic_score=opt_float(rec, "organicScore", ctx, non_negative=True),
        organic_score_label=opt_str(rec, "organicScoreLabel", ctx),
        is_verified=opt_bool(rec, "isVerified", ctx),
        tags=opt_str_list(rec, "tags", ctx),
        created_at=opt_iso_ts(rec, "createdAt", ctx),
        first_pool=opt_address(rec, "firstPool.id", ctx),
        first_pool_created_at=opt_iso_ts(rec, "firstPool.createdAt", ctx),
        audit=audit,
        stats5m=_stats(rec, "stats5m", ctx),
        stats1h=_stats(rec, "stats1h", ctx),
        stats24h=_stats(rec, "stats24h", ctx),
    )


def _stats(rec: Any, key: str, ctx: ParseContext) -> SwapStats | None:
    if lookup(rec, key, ctx) is None:
        return None
    return SwapStats(
        price_change_pct=opt_float(rec, f"{key}.priceChange", ctx),
        buy_volume=opt_float(rec, f"{key}.buyVolume", ctx, non_negative=True),
        sell_volume=opt_float(rec, f"{key}.sellVolume", ctx, non_negative=True),
        num_buys=opt_int(rec, f"{key}.numBuys", ctx, non_negative=True),
        num_sells=opt_int(rec, f"{key}.numSells", ctx, non_negative=True),
        num_traders=opt_int(rec, f"{key}.numTraders", ctx, non_negative=True),
    )


def parse_price(mint: str, rec: Any, ctx: ParseContext) -> PriceQuote:
    """A Price v3 entry; a price that is not a positive number makes the entry bad, not zero."""
    return PriceQuote(
        mint=to_address(mint, "<id>", ctx),
        usd_price=req_float(rec, "usdPrice", ctx, positive=True, at_most=MAX_PRICE_USD),
        decimals=opt_decimals(rec, "decimals", ctx),
        liquidity_usd=opt_float(rec, "liquidity", ctx, non_negative=True, at_most=MAX_USD_AMOUNT),
        price_change_24h_pct=opt_float(rec, "priceChange24h", ctx),
        block_id=opt_int(rec, "blockId", ctx, non_negative=True),
    )
