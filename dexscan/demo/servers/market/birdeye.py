"""Birdeye OHLCV (v1 and v3), token overview and security, served from the simulated market (keyed)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dexscan.demo.market_sim import (
    SOL_USD,
)
from dexscan.demo.servers.market.common import (
    MarketFakesBase,
    _HttpError,
    _int_param,
    _iso,
    _looks_like_address,
    _opt_int_param,
    _round,
    serves,
)
from dexscan.demo.servers.market.providers import BIRDEYE
from dexscan.domain import Candle, Timeframe

_BIRDEYE_TYPES = {"1m": Timeframe.M1, "5m": Timeframe.M5, "15m": Timeframe.M15, "1H": Timeframe.H1,
                  "4H": Timeframe.H4, "12H": Timeframe.H12, "1D": Timeframe.D1}
_BIRDEYE_KNOWN_TYPES = ("1s", "15s", "30s", "1m", "3m", "5m", "15m", "30m", "1H", "2H", "4H", "6H", "8H",
                        "12H", "1D", "3D", "1W", "1M")
_BIRDEYE_FRAMES = {"1m": 60, "5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "4h": 14_400, "8h": 28_800,
                   "24h": 86_400}


class BirdeyeRoutes(MarketFakesBase):
    def _be_address(self, request: web.Request) -> str:
        address = request.query.get("address", "").strip()
        if not address:
            raise _HttpError(400, "Invalid request parameters or payload.")
        if not _looks_like_address(address):
            raise _HttpError(400, "address is invalid format")
        return address

    def _be_candles(self, request: web.Request, now: float, max_records: int,
                    padding: bool) -> tuple[str, str, str, list[Candle], float]:
        """(address, type, currency, bars of the token's main pool, that pool's volume share)."""
        address = self._be_address(request)
        type_ = request.query.get("type", "")
        if type_ not in _BIRDEYE_KNOWN_TYPES:
            raise _HttpError(400, "type is invalid")
        if type_ not in _BIRDEYE_TYPES:
            raise _HttpError(400, f"type {type_} is not served by the dexscan fake")
        currency = request.query.get("currency", "usd")
        if currency not in ("usd", "native"):
            raise _HttpError(400, "currency must be usd or native")
        mode = request.query.get("mode", "range")
        if mode not in ("range", "count"):
            raise _HttpError(400, "mode must be range or count")
        time_from = _opt_int_param(request, "time_from")
        time_to = _opt_int_param(request, "time_to")
        if mode == "count":
            count = min(max_records, max(1, _int_param(request, "count_limit", max_records)))
            if (time_from is None) == (time_to is None):
                raise _HttpError(400, "mode=count needs exactly one of time_from and time_to")
        else:
            count = max_records
            if time_from is None or time_to is None or time_from > time_to:
                raise _HttpError(400, "time_from and time_to are required, time_from <= time_to")
        if not self.sim.has_token(address) or not self.sim.listed(address, now):
            return address, type_, currency, [], 1.0
        main = self.sim.token(address).main_pool
        tfs = int(_BIRDEYE_TYPES[type_])
        if time_from is not None:
            lo = max(time_from, main.bars_from - main.bars_from % tfs)
            hi = lo + (count + 1) * tfs if time_to is None else min(time_to + tfs, lo + (count + 1) * tfs)
        else:
            assert time_to is not None
            hi = time_to + tfs
            lo = max(0, hi - (count + 1) * tfs)
        forming = hi > now
        bars = self.sim.bars(main.address, _BIRDEYE_TYPES[type_], lo, min(hi, now), include_forming=forming,
                             include_empty=padding)
        bars = [b for b in bars if time_to is None or b.ts <= time_to]
        bars = bars[-count:] if time_from is None else bars[:count]
        return address, type_, currency, bars, main.volume_share

    def _be_scale(self, currency: str, bars: list[Candle], share: float) -> list[tuple[Candle, float, float]]:
        """(bar, price divisor, USD volume of the token across pools) for each bar."""
        div = SOL_USD if currency == "native" else 1.0
        return [(b, div, b.volume / share) for b in bars]

    @serves(BIRDEYE, "/defi/ohlcv")
    def _be_ohlcv_v1(self, request: web.Request, now: float) -> dict[str, Any]:
        address, type_, currency, bars, share = self._be_candles(request, now, 1000, padding=True)
        items = [{"o": b.open / d, "h": b.high / d, "l": b.low / d, "c": b.close / d, "v": round(v / b.close, 6),
                  "unixTime": b.ts, "address": address, "type": type_, "currency": currency}
                 for b, d, v in self._be_scale(currency, bars, share)]
        return {"success": True, "data": {"isScaledUiToken": False, "items": items}}

    @serves(BIRDEYE, "/defi/v3/ohlcv")
    def _be_ohlcv_v3(self, request: web.Request, now: float) -> dict[str, Any]:
        padding = request.query.get("padding", "false").lower() == "true"
        address, type_, currency, bars, share = self._be_candles(request, now, 5000, padding=padding)
        items = [{"o": b.open / d, "h": b.high / d, "l": b.low / d, "c": b.close / d, "v": round(v / b.close, 6),
                  "v_usd": round(v, 6), "unix_time": b.ts, "address": address, "type": type_, "currency": currency}
                 for b, d, v in self._be_scale(currency, bars, share)]
        return {"success": True, "data": {"is_scaled_ui_token": False, "items": items}}

    @serves(BIRDEYE, "/defi/token_overview")
    def _be_overview(self, request: web.Request, now: float) -> dict[str, Any]:
        address = self._be_address(request)
        if not self.sim.has_token(address) or not self.sim.listed(address, now):
            return {"success": True, "data": {}}
        tok = self.sim.token(address)
        info = self.sim.token_info(address, now)
        assert info is not None
        slug = tok.symbol.lower()
        data: dict[str, Any] = {
            "address": address, "decimals": tok.decimals, "symbol": tok.symbol, "name": tok.name,
            "marketCap": round(info.mcap, 2), "fdv": round(info.fdv, 2),
            "extensions": {"coingeckoId": None, "website": f"https://{slug}.example",
                           "twitter": f"https://x.com/{slug}", "description": f"{tok.name} on Solana"},
            "logoURI": f"https://static.dexscan.invalid/icons/{address}.png",
            "liquidity": round(info.liquidity_usd, 2), "lastTradeUnixTime": int(now),
            "lastTradeHumanTime": _iso(now)[:-5], "price": info.usd_price,
            "totalSupply": tok.total_supply, "circulatingSupply": tok.circ_supply,
            "holder": info.holder_count, "numberMarkets": len(self.sim.pools_with(address)),
            "isScaledUiToken": False, "multiplier": None,
        }
        for frame, seconds in _BIRDEYE_FRAMES.items():
            w = self.sim.token_window(address, now, seconds)
            prev = self.sim.token_window(address, now - seconds, seconds)
            assert w is not None
            past = self.sim.token_price(address, now - seconds)
            trades = w.txns.buys + w.txns.sells
            buy_share = w.txns.buys / trades if trades else 0.5
            prev_vol = prev.volume if prev is not None else 0.0
            data.update({
                f"history{frame}Price": past, f"priceChange{frame}Percent": _round(w.price_change, 4),
                f"uniqueWallet{frame}": int(trades * 0.6), f"trade{frame}": trades,
                f"buy{frame}": w.txns.buys, f"sell{frame}": w.txns.sells,
                f"v{frame}": round(w.volume / info.usd_price, 4), f"v{frame}USD": round(w.volume, 2),
                f"vHistory{frame}USD": round(prev_vol, 2),
                f"v{frame}ChangePercent": round((w.volume / prev_vol - 1) * 100, 4) if prev_vol > 0 else None,
                f"vBuy{frame}USD": round(w.volume * buy_share, 2),
                f"vSell{frame}USD": round(w.volume * (1 - buy_share), 2),
            })
        return {"success": True, "data": data}

    @serves(BIRDEYE, "/defi/token_security")
    def _be_security(self, request: web.Request, now: float) -> dict[str, Any]:
        address = self._be_address(request)
        if not self.sim.has_token(address):
            return {"success": True, "data": {}}
        tok = self.sim.token(address)
        created = tok.main_pool.created_at - 900
        top10 = tok.top_holders_pct / 100
        return {"success": True, "data": {
            "creatorAddress": tok.dev, "creatorOwnerAddress": None, "ownerAddress": None,
            "ownerOfOwnerAddress": None, "creationTx": None, "creationTime": created, "creationSlot": None,
            "mintTx": None, "mintTime": created, "mintSlot": None, "creatorBalance": 0, "ownerBalance": None,
            "ownerPercentage": None, "creatorPercentage": 0, "metaplexUpdateAuthority": tok.dev,
            "metaplexOwnerUpdateAuthority": None, "metaplexUpdateAuthorityBalance": 0,
            "metaplexUpdateAuthorityPercent": 0, "mutableMetadata": not tok.safe,
            "top10HolderBalance": top10 * tok.total_supply, "top10HolderPercent": top10,
            "top10UserBalance": top10 * tok.total_supply, "top10UserPercent": top10, "isTrueToken": None,
            "fakeToken": None, "totalSupply": tok.total_supply, "preMarketHolder": [], "lockInfo": None,
            "freezeable": tok.freeze_authority or None, "freezeAuthority": tok.dev if tok.freeze_authority else None,
            "transferFeeEnable": tok.transfer_fee_bps is not None or None,
            "transferFeeData": ({"transferFeeConfigAuthority": tok.dev, "withdrawWithheldAuthority": tok.dev,
                                 "newerTransferFee": {"transferFeeBasisPoints": tok.transfer_fee_bps,
                                                      "maximumFee": 10**18}}
                                if tok.transfer_fee_bps is not None else None),
            "isToken2022": tok.token2022, "nonTransferable": None, "jupStrictList": tok.safe and tok.kind == "normal",
        }}
