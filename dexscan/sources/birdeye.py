"""Birdeye (optional): OHLCV, token overview and token security, only with an API key.

Every answer is a ``{"success": bool, "data": ...}`` envelope. OHLCV v1 (``/defi/ohlcv``) and v3
(``/defi/v3/ohlcv``) spell the same things differently (``unixTime`` vs ``unix_time``; v3 adds
``v_usd``), and v1's ``v`` is a *token* amount, not USD. Timeframes are case-sensitive (``5m``,
``1H``, ``4H``). ``top10HolderPercent`` is a 0–1 fraction, unlike Jupiter's 0–100 percentages; the
client converts it so every percentage in dexscan is 0–100. The key travels in ``X-API-KEY``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dexscan.config import ENV_BIRDEYE_KEY, Settings
from dexscan.domain import Candle, Timeframe, TokenInfo
from dexscan.errors import ConfigError, InputError
from dexscan.sources.http import DEFAULT_BUCKET, HttpLayer, ParamValue, ProviderSpec
from dexscan.sources.parse import (
    ParseContext,
    as_object,
    bar_series,
    bar_time,
    check_bar,
    lookup,
    opt_bool,
    opt_decimals,
    opt_epoch,
    opt_float,
    opt_int,
    opt_str,
    parse_records,
    parse_single,
    req_float,
    req_str,
    str_or,
)

OHLCV_V1 = "/defi/ohlcv"
OHLCV_V3 = "/defi/v3/ohlcv"
BIRDEYE = "birdeye"
TOKEN_OVERVIEW = "/defi/token_overview"
TOKEN_SECURITY = "/defi/token_security"

#: Records per call: v1 returns at most 1000, v3 at most 5000.
MAX_ITEMS = {1: 1000, 3: 5000}

TIMEFRAMES: dict[Timeframe, str] = {
    Timeframe.M1: "1m",
    Timeframe.M5: "5m",
    Timeframe.M15: "15m",
    Timeframe.H1: "1H",
    Timeframe.H4: "4H",
    Timeframe.H12: "12H",
    Timeframe.D1: "1D",
}


@dataclass(frozen=True, slots=True)
class BirdeyeSecurity:
    """Birdeye's token-security answer (hints; the safety gates read the chain)."""

    mint: str
    top10_holder_pct: float | None  # 0–100 (Birdeye sends a 0–1 fraction)
    creator_address: str | None = None
    owner_address: str | None = None
    freezeable: bool | None = None
    freeze_authority: str | None = None
    is_token_2022: bool | None = None
    transfer_fee_enabled: bool | None = None
    non_transferable: bool | None = None
    mutable_metadata: bool | None = None
    jup_strict_list: bool | None = None
    creation_time: int | None = None


class BirdeyeClient:
    """Constructed only when ``DEXSCAN_BIRDEYE_API_KEY`` is set (see :func:`build_clients`)."""

    @staticmethod
    def provider(settings: Settings) -> ProviderSpec:
        """Requests per second (the plan's limit); declared with or without a key, so doctor can
        name the source it cannot use."""
        cfg = settings.sources.birdeye
        return ProviderSpec(BIRDEYE, cfg.base_url, {DEFAULT_BUCKET: (cfg.requests_per_second, 1.0)})

    def __init__(self, http: HttpLayer, settings: Settings) -> None:
        key = settings.secrets.birdeye_api_key
        if key is None or not key.get_secret_value():
            raise ConfigError(f"Birdeye needs an API key: set {ENV_BIRDEYE_KEY}")
        self._http = http
        self._headers = {"X-API-KEY": key.get_secret_value(), "x-chain": "solana"}

    def _ctx(self, endpoint: str) -> ParseContext:
        return ParseContext(BIRDEYE, endpoint, self._http.count_bad_record)

    async def _data(self, endpoint: str, params: Mapping[str, ParamValue]) -> Any:
        """The ``data`` of a success envelope; ``success: false`` is a bad payload naming the message."""
        ctx = self._ctx(endpoint)
        body = as_object(await self._http.get_json(BIRDEYE, DEFAULT_BUCKET, endpoint,
                                                   params=params, headers=self._headers), ctx)
        if body.get("success") is not True:
            message = body.get("message")
            raise ctx.reject("success", f"Birdeye reported failure: {message!r}" if message else "not true")
        if body.get("data") is None:
            raise ctx.reject("data", "missing")
        return body["data"]

    async def ohlcv(self, mint: str, tf: Timeframe, start: int, end: int, version: int = 3) -> list[Candle]:
        """Candles with ``start <= ts < end``, ascending and unique; pages forward past the item cap."""
        if version not in MAX_ITEMS:
            raise InputError(f"Birdeye OHLCV version must be 1 or 3, got {version}")
        endpoint = OHLCV_V3 if version == 3 else OHLCV_V1
        ctx = self._ctx(endpoint)
        cap = MAX_ITEMS[version]
        by_ts: dict[int, Candle] = {}
        time_from = start
        while time_from < end:
            data = await self._data(endpoint, {
                "address": mint, "type": TIMEFRAMES[tf], "currency": "usd",
                "time_from": time_from, "time_to": end - 1,
            })
            items = lookup(data, "items", ctx)
            candles = bar_series(parse_records(items, lambda r: parse_ohlcv_item(r, ctx), ctx, "items"), int(tf),
                                 "items.unix_time" if version == 3 else "items.unixTime", ctx)
            for c in candles:
                if start <= c.ts < end:
                    by_ts[c.ts] = c
            if not isinstance(items, list) or len(items) < cap or not candles:
                break
            next_from = max(c.ts for c in candles) + int(tf)
            if next_from <= time_from:
                break
            time_from = next_from
        return [by_ts[ts] for ts in sorted(by_ts)]

    async def token_overview(self, mint: str) -> TokenInfo:
        ctx = self._ctx(TOKEN_OVERVIEW)
        data = await self._data(TOKEN_OVERVIEW, {"address": mint})
        return parse_single(lambda: _overview(data, ctx), ctx)

    async def token_security(self, mint: str) -> BirdeyeSecurity:
        ctx = self._ctx(TOKEN_SECURITY)
        data = await self._data(TOKEN_SECURITY, {"address": mint})
        return parse_single(lambda: _security(mint, data, ctx), ctx)


def _overview(data: Any, ctx: ParseContext) -> TokenInfo:
    return TokenInfo(
        mint=req_str(data, "address", ctx),
        symbol=str_or(data, "symbol", ctx),
        name=str_or(data, "name", ctx),
        decimals=opt_decimals(data, "decimals", ctx),
        usd_price=opt_float(data, "price", ctx, non_negative=True),
        liquidity_usd=opt_float(data, "liquidity", ctx, non_negative=True),
        fdv=opt_float(data, "fdv", ctx, non_negative=True),
        mcap=opt_float(data, "marketCap", ctx, non_negative=True),
        holder_count=opt_int(data, "holder", ctx, non_negative=True),
    )


def _security(mint: str, data: Any, ctx: ParseContext) -> BirdeyeSecurity:
    fraction = opt_float(data, "top10HolderPercent", ctx, non_negative=True)
    if fraction is not None and fraction > 1.0:
        raise ctx.bad("top10HolderPercent", f"expected a 0-1 fraction, got {fraction!r}")
    return BirdeyeSecurity(
        mint=mint,
        top10_holder_pct=None if fraction is None else fraction * 100.0,
        creator_address=opt_str(data, "creatorAddress", ctx),
        owner_address=opt_str(data, "ownerAddress", ctx),
        freezeable=opt_bool(data, "freezeable", ctx),
        freeze_authority=opt_str(data, "freezeAuthority", ctx),
        is_token_2022=opt_bool(data, "isToken2022", ctx),
        transfer_fee_enabled=opt_bool(data, "transferFeeEnable", ctx),
        non_transferable=opt_bool(data, "nonTransferable", ctx),
        mutable_metadata=opt_bool(data, "mutableMetadata", ctx),
        jup_strict_list=opt_bool(data, "jupStrictList", ctx),
        creation_time=opt_epoch(data, "creationTime", ctx),
    )


def parse_ohlcv_item(rec: Any, ctx: ParseContext) -> Candle:
    """A v1 (``unixTime``) or v3 (``unix_time``, ``v_usd``) item; volume in USD.

    v1 has no USD volume: ``v`` (token units) × close is used, an approximation at the bar's close.
    """
    raw_ts = lookup(rec, "unix_time", ctx)
    ts_field = "unix_time"
    if raw_ts is None:
        raw_ts, ts_field = lookup(rec, "unixTime", ctx), "unixTime"
    if raw_ts is None:
        raise ctx.bad("unix_time", "missing (neither unix_time nor unixTime)")
    close = req_float(rec, "c", ctx, positive=True)
    v_usd = opt_float(rec, "v_usd", ctx, non_negative=True)
    volume = v_usd if v_usd is not None else req_float(rec, "v", ctx, non_negative=True) * close
    return check_bar(Candle(
        ts=bar_time(raw_ts, ts_field, ctx),
        open=req_float(rec, "o", ctx, positive=True),
        high=req_float(rec, "h", ctx, positive=True),
        low=req_float(rec, "l", ctx, positive=True),
        close=close,
        volume=volume,
    ), "h", "l", ctx)
