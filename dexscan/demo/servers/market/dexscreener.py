"""DexScreener pairs, profiles and boosts, served from the simulated market (one picked pair per
token on ``/tokens/v1``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from dexscan.demo.market_sim import (
    SimPool,
)
from dexscan.demo.servers.market.common import _QUOTES, _STABLE_QUOTES, MarketFakesBase, _HttpError, _plain, serves
from dexscan.demo.servers.market.providers import DEXSCREENER
from dexscan.domain import BONDING_CURVE_DEXES


def _fixture_pick(records: list[dict[str, Any]], mint: str) -> dict[str, Any] | None:
    """:meth:`MarketFakes.ds_pick`'s rule over recorded pairs: deepest with the token as base, a
    bonding curve last."""
    own = [r for r in records if (r.get("baseToken") or {}).get("address") == mint]
    if not own:
        return None
    return max(own, key=lambda r: (r.get("dexId") not in BONDING_CURVE_DEXES,
                                   float(((r.get("liquidity") or {}).get("usd")) or -1.0), r["pairAddress"]))


class DexScreenerRoutes(MarketFakesBase):
    def _ds_addresses(self, raw: str) -> list[str]:
        addrs = list(dict.fromkeys(a.strip() for a in raw.split(",") if a.strip()))
        if len(addrs) > 30:
            raise _HttpError(400, f"too many addresses: {len(addrs)} (at most 30)")
        return addrs

    def _ds_pairs_of_tokens(self, mints: Iterable[str], now: float) -> list[dict[str, Any]]:
        boosted = self._boosted(now)
        seen: set[str] = set()
        out = []
        for mint in mints:
            for record in self.fixture_pairs.get(mint, ()):
                if record["pairAddress"] not in seen:
                    seen.add(record["pairAddress"])
                    out.append(record)
            for pool in self.sim.pools_with(mint):
                if pool.address not in seen and self.sim.pool_open(pool.address, now):
                    seen.add(pool.address)
                    pair = self._ds_pair(pool, now, boosted)
                    if pair is not None:
                        out.append(pair)
        return out

    @serves(DEXSCREENER, "/latest/dex/tokens/{addresses}", bucket="pairs")
    def _ds_latest_tokens(self, request: web.Request, now: float) -> dict[str, Any]:
        pairs = self._ds_pairs_of_tokens(self._ds_addresses(request.match_info["addresses"]), now)
        return {"schemaVersion": "1.0.0", "pairs": pairs or None}

    @serves(DEXSCREENER, "/tokens/v1/{chain}/{addresses}", bucket="pairs")
    def _ds_tokens_v1(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        """One pair per token: DexScreener's pick of its main pair (``reference/external-apis.md`` §3.2)."""
        addrs = self._ds_addresses(request.match_info["addresses"])
        if request.match_info["chain"] != "solana":
            return []
        boosted = self._boosted(now)
        out = []
        for mint in addrs:
            if mint in self.fixture_pairs:
                record = _fixture_pick(self.fixture_pairs[mint], mint)
                if record is not None:
                    out.append(record)
                continue
            pick = self.ds_pick(mint, now)
            pair = None if pick is None else self._ds_pair(pick, now, boosted)
            if pair is not None:
                out.append(pair)
        return out

    def ds_pick(self, mint: str, now: float) -> SimPool | None:
        """The fake's model of DexScreener's pick: the deepest open pool with the token as base, any
        quote; a bonding curve only while the token has no other pool."""
        own = [p for p in self.sim.pools_with(mint) if p.base_mint == mint and self.sim.pool_open(p.address, now)]
        best: tuple[bool, float, str] | None = None
        picked: SimPool | None = None
        for p in own:
            st = self.sim.pair_stats(p.address, now)
            if st is None:
                continue
            key = (p.dex_id not in BONDING_CURVE_DEXES, st.liquidity_usd, p.address)
            if best is None or key > best:
                best, picked = key, p
        return picked

    @serves(DEXSCREENER, "/token-pairs/v1/{chain}/{address}", bucket="pairs")
    def _ds_token_pairs(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        if request.match_info["chain"] != "solana":
            return []
        return self._ds_pairs_of_tokens([request.match_info["address"]], now)

    @serves(DEXSCREENER, "/latest/dex/pairs/{chain}/{pairs}", bucket="pairs")
    def _ds_pairs(self, request: web.Request, now: float) -> dict[str, Any]:
        addrs = self._ds_addresses(request.match_info["pairs"])
        out = []
        if request.match_info["chain"] == "solana":
            boosted = self._boosted(now)
            for a in addrs:
                if self.sim.has_pool(a) and self.sim.pool_open(a, now):
                    pair = self._ds_pair(self.sim.pool(a), now, boosted)
                    if pair is not None:
                        out.append(pair)
        return {"schemaVersion": "1.0.0", "pairs": out or None, "pair": out[0] if out else None}

    @serves(DEXSCREENER, "/latest/dex/search", bucket="pairs")
    def _ds_search(self, request: web.Request, now: float) -> dict[str, Any]:
        query = request.query.get("q", "").strip()
        if not query:
            raise _HttpError(400, "q is required")
        mints = [t.mint for t in self.sim.find(query)]
        return {"schemaVersion": "1.0.0", "pairs": self._ds_pairs_of_tokens(mints, now)[:30]}

    def _ds_profile(self, mint: str) -> dict[str, Any]:
        tok = self.sim.token(mint)
        slug = tok.symbol.lower()
        return {
            "url": f"https://dexscreener.com/solana/{mint.lower()}", "chainId": "solana", "tokenAddress": mint,
            "icon": f"https://dd.dexscreener.com/ds-data/tokens/solana/{mint}.png",
            "header": f"https://dd.dexscreener.com/ds-data/tokens/solana/{mint}/header.png",
            "description": f"{tok.name} — community token on Solana",
            "links": [{"type": "twitter", "url": f"https://x.com/{slug}"},
                      {"label": "Website", "url": f"https://{slug}.example"}],
        }

    @serves(DEXSCREENER, "/token-profiles/latest/v1", bucket="profiles")
    def _ds_profiles(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        return [self._ds_profile(m) for m in self.sim.profiles(now)]

    def _ds_boosts(self, now: float, top: bool) -> list[dict[str, Any]]:
        return [{**self._ds_profile(b.mint), "amount": b.amount, "totalAmount": b.total_amount}
                for b in self.sim.boosts(now, top=top)]

    @serves(DEXSCREENER, "/token-boosts/latest/v1", bucket="profiles")
    def _ds_boosts_latest(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        return self._ds_boosts(now, top=False)

    @serves(DEXSCREENER, "/token-boosts/top/v1", bucket="profiles")
    def _ds_boosts_top(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        return self._ds_boosts(now, top=True)

    def _boosted(self, now: float) -> dict[str, int]:
        return {b.mint: 1 + int(b.total_amount // 100) for b in self.sim.boosts(now, limit=10**9)}

    def _ds_pair(self, pool: SimPool, now: float, boosted: dict[str, int]) -> dict[str, Any] | None:
        st = self.sim.pair_stats(pool.address, now)
        if st is None:
            return None
        tok = self.sim.token(pool.base_mint)
        exotic = pool.quote_mint not in _QUOTES and pool.quote_mint not in _STABLE_QUOTES
        curve = pool.dex_id in BONDING_CURVE_DEXES
        pair: dict[str, Any] = {
            "chainId": "solana", "dexId": pool.dex_id,
            "url": f"https://dexscreener.com/solana/{pool.address.lower()}", "pairAddress": pool.address,
        }
        if pool.labels:
            pair["labels"] = list(pool.labels)
        pair.update({
            "baseToken": self._token_ref(pool.base_mint), "quoteToken": self._token_ref(pool.quote_mint),
            "priceNative": _plain(st.price_native), "priceUsd": _plain(st.price_usd),
            "txns": {k: {"buys": v.buys, "sells": v.sells} for k, v in st.txns.items()},
            "volume": {k: round(getattr(st.volume, k), 2) for k in ("h24", "h6", "h1", "m5")},
            "priceChange": {k: round(v, 2) for k in ("m5", "h1", "h6", "h24")
                            if (v := getattr(st.price_change, k)) is not None},
        })
        liquidity: dict[str, float] = {"base": round(st.liquidity_base, 2), "quote": round(st.liquidity_quote, 6)}
        if not exotic:
            liquidity = {"usd": round(st.liquidity_usd, 2), **liquidity}
        pair["liquidity"] = None if curve else liquidity  # a bonding curve has no pool liquidity
        pair["fdv"] = round(st.fdv)
        if not exotic:
            pair["marketCap"] = round(st.market_cap)
        if pool.quote_mint not in _STABLE_QUOTES:  # USD1 pairs come without it
            pair["pairCreatedAt"] = pool.created_at * 1000
        if not self._young(tok, now):
            slug = tok.symbol.lower()
            pair["info"] = {
                "imageUrl": f"https://dd.dexscreener.com/ds-data/tokens/solana/{tok.mint}.png",
                "websites": [{"label": "Website", "url": f"https://{slug}.example"}],
                "socials": [{"type": "twitter", "url": f"https://x.com/{slug}"}],
            }
        if tok.mint in boosted:
            pair["boosts"] = {"active": boosted[tok.mint]}
        return pair
