"""GeckoTerminal pools and OHLCV, served from the simulated market."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from aiohttp import web

from dexscan.demo.market_sim import (
    SOL_USD,
    SimPool,
    WindowStats,
)
from dexscan.demo.servers.market.common import (
    _QUOTES,
    _STABLE_QUOTES,
    MarketFakesBase,
    _HttpError,
    _int_param,
    _iso,
    _plain,
    serves,
)
from dexscan.demo.servers.market.providers import GECKOTERMINAL
from dexscan.domain import Candle, Timeframe

_GT_AGGREGATES = {"day": (1,), "hour": (1, 4, 12), "minute": (1, 5, 15)}


def _gt_dex(pool: SimPool) -> str:
    if pool.dex_id == "raydium" and "CLMM" in pool.labels:
        return "raydium-clmm"
    return pool.dex_id


def _gt_txns(w: WindowStats | None) -> dict[str, int]:
    if w is None:
        return {"buys": 0, "sells": 0, "buyers": 0, "sellers": 0}
    return {"buys": w.txns.buys, "sells": w.txns.sells, "buyers": int(w.txns.buys * 0.7),
            "sellers": int(w.txns.sells * 0.7)}


class GeckoTerminalRoutes(MarketFakesBase):
    def _gt_network(self, request: web.Request) -> None:
        if request.match_info["network"] != "solana":
            raise _HttpError(404, "Not Found")

    @serves(GECKOTERMINAL, "/networks/{network}/pools/{pool}/ohlcv/{timeframe}")
    def _gt_ohlcv(self, request: web.Request, now: float) -> dict[str, Any]:
        self._gt_network(request)
        address = request.match_info["pool"]
        timeframe = request.match_info["timeframe"]
        if timeframe not in _GT_AGGREGATES:
            raise _HttpError(400, f"timeframe must be one of day, hour, minute (got {timeframe!r})")
        aggregate = _int_param(request, "aggregate", 1)
        if aggregate not in _GT_AGGREGATES[timeframe]:
            raise _HttpError(400, f"aggregate {aggregate} is not allowed for {timeframe}")
        limit = min(1000, max(1, _int_param(request, "limit", 100)))
        currency = request.query.get("currency", "usd")
        if currency not in ("usd", "token"):
            raise _HttpError(400, "currency must be usd or token")
        if not self.sim.has_pool(address):
            raise _HttpError(404, "Not Found")
        pool = self.sim.pool(address)
        gt_base, gt_quote = self._gt_order(pool)
        token_param = request.query.get("token", "base")
        wanted = {"base": gt_base, "quote": gt_quote}.get(token_param, token_param)
        if wanted not in (gt_base, gt_quote):
            raise _HttpError(400, "token must be base, quote or the address of one of the pool's tokens")
        empty = request.query.get("include_empty_intervals", "false").lower() == "true"
        tf = Timeframe({"day": 86_400, "hour": 3600, "minute": 60}[timeframe] * aggregate)
        tfs = int(tf)
        before = request.query.get("before_timestamp")
        end, forming = now, True
        if before is not None:
            try:
                before_ts = int(float(before))
            except ValueError:
                raise _HttpError(400, "before_timestamp must be a unix timestamp") from None
            ceil_before = -(-before_ts // tfs) * tfs
            if ceil_before <= now:
                end, forming = ceil_before, False
        rows = self._newest_bars(pool, tf, end, forming, empty, limit)
        if wanted != pool.base_mint:
            rows = self._other_side_bars(pool, wanted, tf, rows, end, forming)
        if currency == "token":
            other = gt_quote if wanted == gt_base else gt_base
            rows = [replace(b, open=b.open / q, high=b.high / q, low=b.low / q, close=b.close / q)
                    for b in rows if (q := self.sim.token_price(other, b.ts + tfs)) is not None]
        base, quote = self._token_ref(gt_base), self._token_ref(gt_quote)
        return {
            "data": {"id": str(uuid.uuid4()), "type": "ohlcv_request_response",
                     "attributes": {"ohlcv_list": [[b.ts, b.open, b.high, b.low, b.close, round(b.volume, 6)]
                                                   for b in reversed(rows)]}},
            "meta": {"base": {**base, "coingecko_coin_id": None}, "quote": {**quote, "coingecko_coin_id": None}},
        }

    def _newest_bars(self, pool: SimPool, tf: Timeframe, end: float, forming: bool, empty: bool,
                     limit: int) -> list[Candle]:
        """The newest ``limit`` bars ending at ``end``, widening the span when empty ones are skipped."""
        tfs = int(tf)
        span = limit
        while True:
            start = int(end) - int(end) % tfs - span * tfs
            bars = self.sim.bars(pool.address, tf, start, end, include_forming=forming, include_empty=empty)
            if len(bars) >= limit or start <= pool.bars_from:
                return bars[-limit:]
            span *= 2

    def _quote_usd(self, pool: SimPool, t: float) -> float | None:
        return self.sim.token_price(pool.quote_mint, t)

    def _gt_order(self, pool: SimPool) -> tuple[str, str]:
        """GeckoTerminal's (base, quote) of a pool. A pool of two simulated tokens is listed the other
        way round from DexScreener: providers disagree on the order of token/token pools
        (``reference/external-apis.md`` §4.2/§7), which is why OHLCV is asked with ``token=<mint>``."""
        if self.sim.has_token(pool.quote_mint):
            return pool.quote_mint, pool.base_mint
        return pool.base_mint, pool.quote_mint

    def _other_side_bars(self, pool: SimPool, mint: str, tf: Timeframe, rows: list[Candle], end: float,
                         forming: bool) -> list[Candle]:
        """The pool's bars priced in its *quote* token (USD): that token's price path, this pool's volume."""
        if not rows:
            return []
        if not self.sim.has_token(mint):  # SOL, USDC: fixed prices
            price = self.sim.token_price(mint, rows[0].ts)
            assert price is not None
            return [Candle(b.ts, price, price, price, price, b.volume) for b in rows]
        own = {b.ts: b for b in self.sim.bars(self.sim.token(mint).main_pool.address, tf, rows[0].ts, end,
                                              include_forming=forming, include_empty=True)}
        return [replace(own[b.ts], volume=b.volume) for b in rows if b.ts in own]

    @serves(GECKOTERMINAL, "/networks/{network}/tokens/{token}/pools")
    def _gt_token_pools(self, request: web.Request, now: float) -> dict[str, Any]:
        self._gt_network(request)
        mint = request.match_info["token"]
        if not self.sim.has_token(mint):
            raise _HttpError(404, "Not Found")
        page = _int_param(request, "page", 1)
        if not 1 <= page <= 10:
            raise _HttpError(400, "page must be between 1 and 10")
        pools = [p for p in self.sim.pools_with(mint) if self.sim.pool_open(p.address, now)]
        pools.sort(key=lambda p: -p.liquidity_usd)
        chunk = pools[(page - 1) * 20: page * 20]
        resources = [r for p in chunk if (r := self._gt_pool_resource(p, now)) is not None]
        out: dict[str, Any] = {"data": resources}
        include = {x.strip() for x in request.query.get("include", "").split(",") if x.strip()}
        if include:
            out["included"] = self._gt_included(chunk, include)
        return out

    @serves(GECKOTERMINAL, "/networks/{network}/pools/{pool}")
    def _gt_pool(self, request: web.Request, now: float) -> dict[str, Any]:
        self._gt_network(request)
        address = request.match_info["pool"]
        if not self.sim.has_pool(address) or not self.sim.pool_open(address, now):
            raise _HttpError(404, "Not Found")
        pool = self.sim.pool(address)
        resource = self._gt_pool_resource(pool, now)
        if resource is None:
            raise _HttpError(404, "Not Found")
        out: dict[str, Any] = {"data": resource}
        include = {x.strip() for x in request.query.get("include", "").split(",") if x.strip()}
        if include:
            out["included"] = self._gt_included([pool], include)
        return out

    def _gt_included(self, pools: list[SimPool], include: set[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for pool in pools:
            wanted = []
            gt_base, gt_quote = self._gt_order(pool)
            if "base_token" in include:
                wanted.append(("token", gt_base))
            if "quote_token" in include:
                wanted.append(("token", gt_quote))
            if "dex" in include:
                wanted.append(("dex", _gt_dex(pool)))
            for kind, ident in wanted:
                key = f"{kind}:{ident}"
                if key in seen:
                    continue
                seen.add(key)
                if kind == "dex":
                    out.append({"id": ident, "type": "dex", "attributes": {"name": ident.replace("-", " ").title()}})
                    continue
                ref = self._token_ref(ident)
                known = _QUOTES.get(ident) or _STABLE_QUOTES.get(ident)
                decimals = known[2] if known else self.sim.token(ident).decimals
                out.append({"id": f"solana_{ident}", "type": "token", "attributes": {
                    "address": ident, "name": ref["name"], "symbol": ref["symbol"], "decimals": decimals,
                    "image_url": f"https://static.dexscan.invalid/icons/{ident}.png", "coingecko_coin_id": None}})
        return out

    def _gt_pool_resource(self, pool: SimPool, now: float) -> dict[str, Any] | None:
        st = self.sim.pair_stats(pool.address, now)
        quote_usd = self._quote_usd(pool, now)
        if st is None or quote_usd is None:
            return None
        tok = self.sim.token(pool.base_mint)
        gt_base, gt_quote = self._gt_order(pool)
        base_ref, quote_ref = self._token_ref(gt_base), self._token_ref(gt_quote)
        base_usd, quote_usd = st.price_usd, quote_usd
        base_in_quote = st.price_native
        if gt_base != pool.base_mint:  # listed the other way round
            base_usd, quote_usd, base_in_quote = quote_usd, base_usd, 1 / base_in_quote
        windows = {k: self.sim.pool_window(pool.address, now, s)
                   for k, s in (("m5", 300), ("m15", 900), ("m30", 1800), ("h1", 3600), ("h6", 21_600),
                                ("h24", 86_400))}
        changes = {k: _plain(w.price_change, 4) if w and w.price_change is not None else None
                   for k, w in windows.items()}
        transactions = {k: _gt_txns(w) for k, w in windows.items() if k != "h6"}
        verified = tok.safe and not self._young(tok, now)
        return {
            "id": f"solana_{pool.address}", "type": "pool",
            "attributes": {
                "address": pool.address, "name": f"{base_ref['symbol']} / {quote_ref['symbol']}",
                "base_token_price_usd": _plain(base_usd), "base_token_price_native_currency":
                    _plain(base_usd / SOL_USD),
                "quote_token_price_usd": _plain(quote_usd),
                "quote_token_price_native_currency": _plain(quote_usd / SOL_USD),
                "base_token_price_quote_token": _plain(base_in_quote),
                "quote_token_price_base_token": _plain(1 / base_in_quote),
                "pool_created_at": _iso(pool.created_at), "reserve_in_usd": _plain(st.liquidity_usd, 10),
                "fdv_usd": _plain(st.fdv, 10), "market_cap_usd": _plain(st.market_cap, 10) if verified else None,
                "price_change_percentage": changes, "transactions": transactions,
                "volume_usd": {k: _plain(getattr(st.volume, k), 10) for k in ("m5", "h1", "h6", "h24")},
            },
            "relationships": {
                "base_token": {"data": {"id": f"solana_{base_ref['address']}", "type": "token"}},
                "quote_token": {"data": {"id": f"solana_{quote_ref['address']}", "type": "token"}},
                "dex": {"data": {"id": _gt_dex(pool), "type": "dex"}},
            },
        }
