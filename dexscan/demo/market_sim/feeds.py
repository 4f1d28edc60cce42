"""Discovery feeds (Jupiter's ranked lists and recent tokens, DexScreener's profiles and boosts), pool
launches, and the individual swaps of a pool that the chain stream publishes."""

from __future__ import annotations

import bisect
import math
from typing import TYPE_CHECKING

from dexscan.demo.market_sim.bars import BarQueries
from dexscan.demo.market_sim.model import (
    CANDLE_S,
    MINUTE_SWAPS_KEPT,
    DiscoveryCategory,
    SimBoost,
    SimPool,
    SimToken,
)
from dexscan.demo.market_sim.universe import _unit
from dexscan.domain import Timeframe

if TYPE_CHECKING:
    from dexscan.demo.chain_swaps import SimSwap


class DiscoveryFeeds(BarQueries):
    """What the providers' discovery endpoints and the chain's event stream show over time."""

    def _listed_tokens(self, t: float) -> list[SimToken]:
        return [tok for tok in self.tokens if tok.listed_at <= t]

    def _event_near(self, ti: int, t: float) -> bool:
        c = int((t - self.start_ts) // CANDLE_S)
        events = self._schedule(ti).events
        return any(k in events and events[k].kind != "rug" for k in (c, c - 1))

    def discovery(self, category: DiscoveryCategory, interval: str, t: float, limit: int = 50) -> list[str]:
        """Jupiter's ``/tokens/v2/{category}/{interval}``: a deterministic ranked subset of mints.

        Cheap by design (candle-level, no minute paths) so 2,000 tokens cost nothing: trending
        favours tokens with a planted event in the current or previous 4H candle, traded ranks by
        baseline volume, organic by organic score; a per-hour jitter keeps the lists moving.
        """
        if category not in ("toptrending", "toporganicscore", "toptraded"):
            raise ValueError(f"unknown discovery category {category!r}")
        listed = self._listed_tokens(t)
        if not listed:
            return []
        hour = int(t // 3600)
        scored: list[tuple[float, int]] = []
        for tok in listed:
            jitter = _unit(self.config.seed, "disc", category, interval, tok.index, hour)
            if category == "toptrending":
                score = jitter + (2.0 if self._event_near(tok.index, t) else 0.0)
            elif category == "toptraded":
                score = math.log(tok.daily_volume_usd) + jitter
            else:
                score = tok.organic_score / 10 + jitter
            scored.append((score, tok.index))
        scored.sort(key=lambda s: (-s[0], s[1]))
        size = min(limit, max(1, math.ceil(0.6 * len(listed))))
        return [self.tokens[i].mint for _, i in scored[:size]]

    def recent(self, t: float, limit: int = 30) -> list[str]:
        """Jupiter's ``/tokens/v2/recent``: newest first pool first."""
        listed = sorted(self._listed_tokens(t), key=lambda tok: (-tok.first_pool.created_at, tok.index))
        return [tok.mint for tok in listed[:limit]]

    def _feeds(self) -> tuple[list[tuple[SimToken, int]], list[SimToken]]:
        """Which tokens post profiles (with their refresh period) and which buy boosts (static)."""
        if self._feed_members is None:
            seed = self.config.seed
            profiled = [(tok, 6 * 3600 + int(_unit(seed, "profile-period", tok.index) * 42 * 3600))
                        for tok in self.tokens if _unit(seed, "profile", tok.index) < 0.5]
            boosted = [tok for tok in self.tokens if _unit(seed, "boost", tok.index) < 0.3]
            self._feed_members = (profiled, boosted)
        return self._feed_members

    def profiles(self, t: float, limit: int = 30) -> list[str]:
        """DexScreener's latest token profiles: about half the tokens refresh a profile now and then."""
        updates: list[tuple[int, int]] = []
        for tok, period in self._feeds()[0]:
            if tok.listed_at <= t:
                updates.append((tok.listed_at + int((t - tok.listed_at) // period) * period, tok.index))
        updates.sort(key=lambda u: (-u[0], u[1]))
        return [self.tokens[i].mint for _, i in updates[:limit]]

    def boosts(self, t: float, limit: int = 30, top: bool = False) -> list[SimBoost]:
        """DexScreener boosts active at ``t``: latest first, or by total amount with ``top``."""
        out: list[SimBoost] = []
        period = 12 * 3600
        for tok in self._feeds()[1]:
            if tok.listed_at > t:
                continue
            k = int((t - tok.listed_at) // period)
            amount = self._boost_amounts.get((tok.index, k))
            if amount is None:  # one hash per token and 12 h period, not one per request
                amount = float(10 * (1 + int(_unit(self.config.seed, "boost-amount", tok.index, k) * 5)))
                self._boost_amounts[(tok.index, k)] = amount
            out.append(SimBoost(tok.mint, amount, amount * (k + 1), tok.listed_at + k * period))
        if top:
            out.sort(key=lambda b: (-b.total_amount, b.mint))
        else:
            out.sort(key=lambda b: (-b.boosted_at, b.mint))
        return out[:limit]

    def pool_launches(self, start: float, end: float) -> list[tuple[SimPool, SimPool | None]]:
        """Pools opening in ``[start, end)`` (their ``created_at``), in time order, each with the
        bonding curve it replaces when it is a token's graduation (its main pool opening as the curve
        closes), else None: what the chain shows as pool-creation and migration events."""
        launches = self._launches
        if launches is None:  # every pool's opening, in time order, once (the stream asks every slice)
            launches = []
            for tok in self.tokens:
                for p in tok.pools:
                    curve = tok.curve if tok.curve is not None and p.is_main and p.created_at == tok.migrated_at \
                        else None
                    launches.append((p, curve))
            launches.sort(key=lambda pc: (pc[0].created_at, pc[0].address))
            self._launches = launches
            self._launch_times = [p.created_at for p, _ in launches]
        times = self._launch_times
        return launches[bisect.bisect_left(times, start):bisect.bisect_left(times, end)]

    def swaps(self, pool: str, start: float, end: float) -> list[SimSwap]:
        """The individual swaps of ``pool`` with ``start <= ts < end``, in time order: each one-minute
        bar split by :func:`dexscan.demo.chain_swaps.minute_swaps` (its volume is the bar's), once per
        minute (kept for :data:`MINUTE_SWAPS_KEPT` pool-minutes: the stream asks slice by slice)."""
        from dexscan.demo.chain_swaps import minute_swaps

        first = int(start) - int(start) % 60
        minutes = range(first, int(end) - int(end) % 60 + 60, 60)
        cache = self._minute_swaps
        kept = [cache.get((pool, m)) for m in minutes]
        missing = [m for m, swaps in zip(minutes, kept, strict=True) if swaps is None]
        if missing:
            size = self.tokens[self.pool(pool).token_index].trade_size_usd
            bars = {bar.ts: bar for bar in self.bars(pool, Timeframe.M1, missing[0], missing[-1] + 60,
                                                     include_empty=False)}
            made = {m: minute_swaps(pool, bars[m], size) if m in bars else [] for m in missing}
            for m, swaps in made.items():
                cache[(pool, m)] = swaps
            while len(cache) > MINUTE_SWAPS_KEPT:
                cache.popitem(last=False)
            kept = [made[m] if swaps is None else swaps for m, swaps in zip(minutes, kept, strict=True)]
        return [s for swaps in kept if swaps for s in swaps if start <= s.ts < end]
