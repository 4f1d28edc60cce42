"""Jupiter Tokens V2 and Price V3, served from the simulated market."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dexscan.demo.market_sim import (
    SOL_USD,
    SimToken,
    SimTokenInfo,
)
from dexscan.demo.servers.market.common import (
    _QUOTES,
    MarketFakesBase,
    _HttpError,
    _int_param,
    _iso,
    _looks_like_address,
    _round,
    _slot,
    serves,
)
from dexscan.demo.servers.market.providers import JUPITER
from dexscan.domain import SOL_MINT

_JUP_STATS = {"stats5m": "5m", "stats1h": "1h", "stats6h": "6h", "stats24h": "24h"}


def _static_mint_information(mint: str, now: float) -> dict[str, Any]:
    name, symbol, decimals = _QUOTES[mint]
    return {
        "id": mint, "name": name, "symbol": symbol, "decimals": decimals,
        "tokenProgram": "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", "organicScore": 99.0,
        "organicScoreLabel": "high", "isVerified": True, "tags": ["verified", "community", "strict"],
        "usdPrice": SOL_USD if mint == SOL_MINT else 1.0, "liquidity": 500_000_000.0,
        "audit": {"mintAuthorityDisabled": True, "freezeAuthorityDisabled": mint == SOL_MINT},
        "updatedAt": _iso(now),
    }


class JupiterRoutes(MarketFakesBase):
    @serves(JUPITER, "/tokens/v2/search")
    def _jup_search(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        query = request.query.get("query", "").strip()
        if not query:
            raise _HttpError(400, "query is required")
        parts = [q.strip() for q in query.split(",") if q.strip()]
        if len(parts) > 1 or _looks_like_address(parts[0]):
            if len(parts) > 100:
                raise _HttpError(400, f"too many mints in query: {len(parts)} (at most 100)")
            out = []
            for mint in dict.fromkeys(parts):
                record = self._mint_information(mint, now)
                if record is not None:
                    out.append(record)
            return out
        found = [t for t in self.sim.find(query) if self.sim.listed(t.mint, now)][:20]
        return [r for t in found if (r := self._mint_information(t.mint, now)) is not None]

    @serves(JUPITER, "/tokens/v2/tag")
    def _jup_tag(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        tag = request.query.get("query", "")
        if tag not in ("verified", "lst", "stocks"):
            raise _HttpError(400, "query must be one of verified, lst, stocks")
        if tag != "verified":
            return []
        out = [_static_mint_information(m, now) for m in _QUOTES]
        for tok in self.sim.tokens:
            if self.sim.is_verified(tok.mint, now):
                info = self.sim.token_info(tok.mint, now)
                assert info is not None
                out.append(self._jup_record(tok, info, now))
        return out

    @serves(JUPITER, "/tokens/v2/recent")
    def _jup_recent(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        return [r for m in self.sim.recent(now) if (r := self._mint_information(m, now)) is not None]

    @serves(JUPITER, "/tokens/v2/{category}/{interval}")
    def _jup_top(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        category = request.match_info["category"]
        interval = request.match_info["interval"]
        if category not in ("toporganicscore", "toptraded", "toptrending"):
            raise _HttpError(400, f"unknown category {category!r}")
        if interval not in ("5m", "1h", "6h", "24h"):
            raise _HttpError(400, f"unknown interval {interval!r}")
        limit = _int_param(request, "limit", 50)
        if not 1 <= limit <= 100:
            raise _HttpError(400, "limit must be between 1 and 100")
        mints = self.sim.discovery(category, interval, now, limit)  # type: ignore[arg-type]
        return [r for m in mints if (r := self._mint_information(m, now)) is not None]

    @serves(JUPITER, "/price/v3")
    def _jup_price(self, request: web.Request, now: float) -> dict[str, Any]:
        ids = [i.strip() for i in request.query.get("ids", "").split(",") if i.strip()]
        if not ids:
            raise _HttpError(400, "ids is required")
        if len(ids) > 50:
            raise _HttpError(400, f"too many ids: {len(ids)} (at most 50)")
        out: dict[str, Any] = {}
        for mint in dict.fromkeys(ids):
            if mint in _QUOTES:
                price = self.sim.token_price(mint, now)
                out[mint] = {"usdPrice": price, "blockId": _slot(now), "decimals": _QUOTES[mint][2],
                             "priceChange24h": 0.0, "createdAt": "2024-06-05T08:55:25.527Z",
                             "liquidity": 500_000_000.0}
                continue
            if not self.sim.has_token(mint) or not self.sim.listed(mint, now):
                continue
            tok = self.sim.token(mint)
            info = self.sim.token_info(mint, now)
            assert info is not None
            out[mint] = {
                "createdAt": _iso(tok.main_pool.created_at), "liquidity": round(info.liquidity_usd, 2),
                "usdPrice": info.usd_price, "blockId": _slot(now), "decimals": tok.decimals,
                "priceChange24h": _round(info.price_change_24h, 4),
            }
        return out

    def _mint_information(self, mint: str, now: float) -> dict[str, Any] | None:
        if mint in _QUOTES:
            return _static_mint_information(mint, now)
        if not self.sim.has_token(mint):
            return None
        info = self.sim.token_info(mint, now)
        if info is None:
            return None
        return self._jup_record(self.sim.token(mint), info, now)

    def _jup_record(self, tok: SimToken, info: SimTokenInfo, now: float) -> dict[str, Any]:
        main, first = tok.main_pool, tok.first_pool
        record: dict[str, Any] = {
            "id": tok.mint, "name": tok.name, "symbol": tok.symbol, "decimals": tok.decimals,
            "tokenProgram": tok.token_program, "createdAt": _iso(first.created_at - 900), "dev": tok.dev,
            "circSupply": tok.circ_supply, "totalSupply": tok.total_supply,
            "firstPool": {"id": first.address, "createdAt": _iso(first.created_at)},
            "holderCount": info.holder_count, "organicScore": round(info.organic_score, 2),
            "organicScoreLabel": info.organic_score_label, "fdv": round(info.fdv, 2), "mcap": round(info.mcap, 2),
            "usdPrice": info.usd_price, "priceBlockId": _slot(now), "liquidity": round(info.liquidity_usd, 2),
            "updatedAt": _iso(now),
        }
        if tok.mint_authority:
            record["mintAuthority"] = tok.dev
        if tok.freeze_authority:
            record["freezeAuthority"] = tok.dev
        if main.dex_id == "pumpswap" or tok.curve is not None:
            record["launchpad"] = "pump.fun"
        if tok.migrated_at is not None and now >= tok.migrated_at:
            record["graduatedPool"], record["graduatedAt"] = main.address, _iso(tok.migrated_at)
        blocks = ("stats5m", "stats1h") if info.young else tuple(_JUP_STATS)
        for key in blocks:
            s = info.stats[_JUP_STATS[key]]
            record[key] = {
                "priceChange": _round(s.price_change, 4), "holderChange": _round(s.holder_change, 4),
                "liquidityChange": _round(s.liquidity_change, 4), "volumeChange": _round(s.volume_change, 4),
                "buyVolume": round(s.buy_volume, 2), "sellVolume": round(s.sell_volume, 2),
                "buyOrganicVolume": round(s.buy_volume * tok.organic_score / 100, 2),
                "sellOrganicVolume": round(s.sell_volume * tok.organic_score / 100, 2),
                "numBuys": s.num_buys, "numSells": s.num_sells, "numTraders": s.num_traders,
                "numOrganicBuyers": s.num_organic_buyers, "numNetBuyers": s.num_net_buyers,
            }
        if not info.young:
            slug = tok.symbol.lower()
            record.update({
                "icon": f"https://static.dexscan.invalid/icons/{tok.mint}.png",
                "twitter": f"https://x.com/{slug}", "website": f"https://{slug}.example",
                "isVerified": info.is_verified, "tags": list(info.tags),
            })
            audit: dict[str, Any] = {
                "mintAuthorityDisabled": info.mint_authority_disabled,
                "freezeAuthorityDisabled": info.freeze_authority_disabled,
                "topHoldersPercentage": round(info.top_holders_pct, 2),
                "devBalancePercentage": info.dev_balance_pct, "devMints": 1,
            }
            if info.is_sus:
                audit["isSus"] = True
            record["audit"] = audit
        return record
