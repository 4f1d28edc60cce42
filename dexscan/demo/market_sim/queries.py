"""Point-in-time queries: prices, trailing-window activity, and what DexScreener and Jupiter report
about a pool or a token at a given time."""

from __future__ import annotations

import math

from dexscan.demo.market_sim.bars import BarQueries
from dexscan.demo.market_sim.model import (
    CANDLE_S,
    MINUTES_PER_CANDLE,
    SOL_USD,
    USDC_USD,
    WINDOWS_S,
    YOUNG_AGE_S,
    PoolStats,
    SimPool,
    SimSwapStats,
    SimToken,
    SimTokenInfo,
    WindowStats,
    _CandleData,
)
from dexscan.domain import SOL_MINT, USD1_MINT, USDC_MINT, TxnCounts, Window4

#: Answers of :meth:`PointQueries.token_info` kept (a few scan rounds of every provider's tokens).
TOKEN_INFOS_KEPT = 1024


class PointQueries(BarQueries):
    """Prices, volumes and the providers' stats of a pool or token at a time ``t``."""

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
        """Jupiter's view of a token at ``t``; None before its first pool trades. A pure function of
        the seed, ``mint`` and ``t``: the last :data:`TOKEN_INFOS_KEPT` answers are kept."""
        key = (mint, t)
        cache = self._token_infos
        if key in cache:
            return cache[key]
        info = cache[key] = self._token_info(mint, t)
        if len(cache) > TOKEN_INFOS_KEPT:
            cache.popitem(last=False)
        return info

    def _token_info(self, mint: str, t: float) -> SimTokenInfo | None:
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
