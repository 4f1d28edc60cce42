"""GeckoTerminal: OHLCV history per pool and a token's pools (keyless, about 25 requests/min).

OHLCV rows come newest-first, as ``[ts, open, high, low, close, volume_usd]`` numbers, at most
1000 per call; older history is reached by paging backward with ``before_timestamp``. Timeframes
are ``minute``/``hour``/``day`` with an ``aggregate`` (5m = minute×5, 4h = hour×4). Pool resources
are JSON:API with every number as a string and ids prefixed ``solana_``.

Real behaviours this client relies on (``reference/external-apis.md``):

* OHLCV is asked with ``token=<mint address>`` whenever the caller knows the token it tracks (§4.2:
  ``token`` = ``base`` | ``quote`` | ``<token address>``): GeckoTerminal's ``base`` is *its* base,
  and providers disagree on the base/quote order of a pool (§7), so ``token=base`` could chart the
  other token of the pool.
* Rows are newest-first and empty intervals are skipped unless ``include_empty_intervals`` (§4.2).
"""

from __future__ import annotations

from typing import Any

from dexscan.config import Settings
from dexscan.domain import Candle, PoolRef, Timeframe
from dexscan.sources import parse
from dexscan.sources.http import DEFAULT_BUCKET, HttpLayer, ParamValue, ProviderSpec

GECKOTERMINAL = "geckoterminal"
NETWORK = "solana"
OHLCV = "/networks/solana/pools/{pool}/ohlcv/{timeframe}"
TOKEN_POOLS = "/networks/solana/tokens/{mint}/pools"

#: Our timeframes as GeckoTerminal spells them: (timeframe path segment, aggregate).
TIMEFRAMES: dict[Timeframe, tuple[str, int]] = {
    Timeframe.M1: ("minute", 1),
    Timeframe.M5: ("minute", 5),
    Timeframe.M15: ("minute", 15),
    Timeframe.H1: ("hour", 1),
    Timeframe.H4: ("hour", 4),
    Timeframe.H12: ("hour", 12),
    Timeframe.D1: ("day", 1),
}


class GeckoTerminalClient:
    @staticmethod
    def provider(settings: Settings) -> ProviderSpec:
        """About 25 requests a minute, keyless; the API version pinned by the Accept header."""
        cfg = settings.sources.geckoterminal
        return ProviderSpec(GECKOTERMINAL, cfg.base_url, {DEFAULT_BUCKET: (cfg.requests_per_minute, 60.0)},
                            headers={"Accept": "application/json;version=20230302"})

    def __init__(self, http: HttpLayer, settings: Settings) -> None:
        self._http = http
        self._cfg = settings.sources.geckoterminal

    def _ctx(self, endpoint: str) -> parse.ParseContext:
        return parse.ParseContext(GECKOTERMINAL, endpoint, self._http.count_bad_record)

    async def ohlcv(self, pool: str, tf: Timeframe, before: int | None = None, limit: int = 1000,
                    include_empty: bool = True, token: str | None = None) -> list[Candle]:
        """Up to ``limit`` candles of ``tf`` before ``before`` (or the latest), ascending by ts.

        ``token``: the mint whose USD price the candles chart (``token=<mint>``); None asks for
        GeckoTerminal's base token of the pool.
        """
        frame, aggregate = TIMEFRAMES[tf]
        params: dict[str, ParamValue] = {
            "aggregate": aggregate,
            "limit": max(1, min(limit, self._cfg.ohlcv_page_limit)),
            "currency": "usd",
            "token": token or "base",
            "include_empty_intervals": include_empty,
        }
        if before is not None:
            params["before_timestamp"] = before
        ctx = self._ctx(OHLCV)
        data = await self._http.get_json(GECKOTERMINAL, DEFAULT_BUCKET, OHLCV,
                                         {"pool": pool, "timeframe": frame}, params=params)
        body = parse.as_object(data, ctx)
        if "data" not in body:
            raise ctx.reject("data", "missing (expected a JSON:API ohlcv_request_response)")
        rows = parse.lookup(body, "data.attributes.ohlcv_list", ctx)
        candles = parse.parse_records(rows, lambda r: parse_ohlcv_row(r, ctx), ctx, "data.attributes.ohlcv_list")
        return parse.bar_series(candles, int(tf), "ohlcv_list.ts", ctx)

    async def ohlcv_range(self, pool: str, tf: Timeframe, start: int, end: int,
                          include_empty: bool = True, token: str | None = None) -> list[Candle]:
        """Every candle with ``start <= ts < end``, paging backward from ``end``; ascending, unique.

        ``token`` as in :meth:`ohlcv` (pass the tracked mint).
        """
        if end <= start:
            return []
        page = self._cfg.ohlcv_page_limit
        collected: list[Candle] = []
        before = end
        while True:
            wanted = (before - start + int(tf) - 1) // int(tf) + 1
            rows = await self.ohlcv(pool, tf, before=before, limit=min(page, wanted), include_empty=include_empty,
                                    token=token)
            older = [c for c in rows if c.ts < before]
            collected.extend(c for c in older if start <= c.ts < end)
            if not older or len(rows) < min(page, wanted):
                break
            oldest = older[0].ts
            if oldest <= start:
                break
            before = oldest
        return _ascending_unique(collected)

    async def token_pools(self, mint: str, page: int = 1) -> list[PoolRef]:
        """The token's top pools (one page of about 20; ``page`` 1..10)."""
        ctx = self._ctx(TOKEN_POOLS)
        data = await self._http.get_json(
            GECKOTERMINAL, DEFAULT_BUCKET, TOKEN_POOLS, {"mint": mint},
            params={"page": max(1, min(page, 10)), "include": "base_token,quote_token,dex"},
        )
        return parse.parse_records(parse.as_object(data, ctx).get("data"), lambda r: parse_pool(r, ctx), ctx, "data")


def parse_ohlcv_row(row: Any, ctx: parse.ParseContext) -> Candle:
    """``[ts, open, high, low, close, volume]``: prices positive, volume non-negative, high/low bracket
    open/close (real GeckoTerminal bars always do; a bar that does not is garbage)."""
    field = "ohlcv_list"
    if not isinstance(row, list):
        raise ctx.bad(field, "expected a row of 6 numbers")
    rows = row
    if len(rows) < 6:
        raise ctx.bad(field, f"expected 6 values per row, got {len(rows)}")
    return parse.check_bar(Candle(
        ts=parse.bar_time(rows[0], f"{field}.ts", ctx),
        open=parse.to_float(rows[1], f"{field}.open", ctx, positive=True, at_most=parse.MAX_PRICE_USD),
        high=parse.to_float(rows[2], f"{field}.high", ctx, positive=True, at_most=parse.MAX_PRICE_USD),
        low=parse.to_float(rows[3], f"{field}.low", ctx, positive=True, at_most=parse.MAX_PRICE_USD),
        close=parse.to_float(rows[4], f"{field}.close", ctx, positive=True, at_most=parse.MAX_PRICE_USD),
        volume=parse.to_float(rows[5], f"{field}.volume", ctx, non_negative=True, at_most=parse.MAX_USD_AMOUNT),
    ), f"{field}.high", f"{field}.low", ctx)


def _strip_network(token_id: str) -> str:
    prefix = f"{NETWORK}_"
    return token_id[len(prefix):] if token_id.startswith(prefix) else token_id


def parse_pool(rec: Any, ctx: parse.ParseContext) -> PoolRef:
    return PoolRef(
        address=parse.req_address(rec, "attributes.address", ctx),
        dex_id=parse.str_or(rec, "relationships.dex.data.id", ctx),
        base_mint=parse.to_address(_strip_network(parse.req_str(rec, "relationships.base_token.data.id", ctx)),
                             "relationships.base_token.data.id", ctx),
        quote_mint=parse.to_address(_strip_network(parse.req_str(rec, "relationships.quote_token.data.id", ctx)),
                              "relationships.quote_token.data.id", ctx),
        name=parse.str_or(rec, "attributes.name", ctx),
        reserve_usd=parse.opt_float(rec, "attributes.reserve_in_usd", ctx, non_negative=True,
                                    at_most=parse.MAX_USD_AMOUNT),
        volume_h24_usd=parse.opt_float(rec, "attributes.volume_usd.h24", ctx, non_negative=True,
                                       at_most=parse.MAX_USD_AMOUNT),
        created_at=parse.opt_iso_ts(rec, "attributes.pool_created_at", ctx),
    )


def _ascending_unique(candles: list[Candle]) -> list[Candle]:
    by_ts = {c.ts: c for c in candles}
    return [by_ts[ts] for ts in sorted(by_ts)]
