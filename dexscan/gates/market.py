"""Market gates (SPEC §3): main-pool liquidity, 24h volume, price impact of a reference buy.

They judge DexScreener snapshots only, so they are point-in-time safe: fed the snapshots of a past
moment they give that moment's verdict. Their input is the token's pools as ``/token-pairs/v1`` lists
them — pools where it is the base or the quote (``reference/external-apis.md`` §3.2) — built by
:func:`dexscan.universe.gate_input` for the scanner and ``dexscan check`` alike. The 24h volume is the
sum over all of them. The main pool is :func:`dexscan.domain.main_pool` (the deepest pool where the
token is the base and the quote is SOL or a USD stablecoin), because a token's liquidity in an
obscure pair cannot absorb a real trade; a token with none fails the liquidity and price-impact
gates, with "on the pump.fun bonding curve, no pool liquidity yet" when it has not migrated yet.
"""

from __future__ import annotations

from pydantic import Field

from dexscan.domain import GateVerdict, PairSnapshot, is_bonding_curve, main_pool
from dexscan.gates.base import GateBase, GateInput, compared, failed, unverified, usd
from dexscan.params import P, PluginParams


def token_pools(inp: GateInput) -> list[PairSnapshot]:
    """The token's pools (as base or quote), each pool once."""
    seen: dict[str, PairSnapshot] = {}
    for p in inp.pairs:
        if inp.mint in (p.base_mint, p.quote_mint) and p.pair_address not in seen:
            seen[p.pair_address] = p
    return list(seen.values())


def price_impact_pct(size_usd: float, liquidity_usd: float) -> float:
    """Constant-product estimate of a buy's price impact: ``size / (liquidity/2 + size)``, in %."""
    return size_usd / (liquidity_usd / 2 + size_usd) * 100


_NO_POOLS = "no pool data for this token (DexScreener had no pairs or was not reached)"
BONDING_CURVE = "on the pump.fun bonding curve, no pool liquidity yet"


def bonding_curve(inp: GateInput, pools: list[PairSnapshot]) -> PairSnapshot | None:
    """The token's bonding curve when it has one (it is the base), else None."""
    return next((p for p in pools if p.base_mint == inp.mint and is_bonding_curve(p)), None)


class MarketGate(GateBase[P]):
    """A gate on the token's pools: without any, it is unverified; else :meth:`judge` decides."""

    def evaluate(self, inp: GateInput) -> GateVerdict:
        pools = token_pools(inp)
        if not pools:
            return unverified(self.name, inp, _NO_POOLS)
        return self.judge(inp, pools)

    def judge(self, inp: GateInput, pools: list[PairSnapshot]) -> GateVerdict:
        raise NotImplementedError


class LiquidityGate(MarketGate["LiquidityGate.Params"]):
    name = "liquidity"
    description = ("Liquidity (USD) of the main pool: the deepest pool with the token as base quoted in SOL or a USD "
                   "stablecoin (USDC, USDT, USD1, PYUSD).")

    class Params(PluginParams):
        min_liquidity_usd: float = Field(50_000.0, ge=0, description="minimum main-pool liquidity in USD")

    def judge(self, inp: GateInput, pools: list[PairSnapshot]) -> GateVerdict:
        minimum = self.params.min_liquidity_usd
        mp = main_pool(pools, inp.mint)
        if mp is None:
            curve = bonding_curve(inp, pools)
            if curve is not None:
                return failed(self.name, inp, BONDING_CURVE, pools=len(pools), bonding_curve=curve.pair_address)
            return failed(self.name, inp, f"no SOL/USDC/USDT pool with this token as base ({len(pools)} other pools)",
                          pools=len(pools))
        details = {"pair": mp.pair_address, "dex": mp.dex_id, "quote": mp.quote_symbol,
                   "liquidity_usd": mp.liquidity_usd, "min_liquidity_usd": minimum}
        if mp.liquidity_usd is None:
            return unverified(self.name, inp, f"main pool {mp.pair_address} reports no liquidity", **details)
        return compared(self.name, inp, mp.liquidity_usd, ">=", minimum, f"liquidity {usd(mp.liquidity_usd)}",
                        usd(minimum), **details)


class Volume24hGate(MarketGate["Volume24hGate.Params"]):
    name = "volume_24h"
    description = "24h trading volume (USD) summed over all of the token's pools."

    class Params(PluginParams):
        min_volume_24h_usd: float = Field(100_000.0, ge=0, description="minimum 24h volume in USD over all pools")

    def judge(self, inp: GateInput, pools: list[PairSnapshot]) -> GateVerdict:
        minimum = self.params.min_volume_24h_usd
        known = [p.volume.h24 for p in pools if p.volume.h24 is not None]
        total = float(sum(known))
        missing = len(pools) - len(known)
        details = {"volume_24h_usd": total, "min_volume_24h_usd": minimum,
                   "pools": len(pools), "pools_without_volume": missing}
        threshold = usd(minimum)
        over = f"over {len(pools)} pool{'s' if len(pools) != 1 else ''}"
        if missing and total < minimum:
            return unverified(
                self.name, inp,
                f"24h volume {usd(total)} from {len(known)} of {len(pools)} pools < {threshold}; "
                f"{missing} report no volume", **details)
        return compared(self.name, inp, total, ">=", minimum, f"24h volume {usd(total)}", f"{threshold} {over}",
                        **details)


class PriceImpactGate(MarketGate["PriceImpactGate.Params"]):
    name = "price_impact"
    description = "Estimated price impact of a reference buy in the main pool: size / (liquidity/2 + size)."

    class Params(PluginParams):
        impact_size_usd: float = Field(500.0, ge=0.01, description="reference buy size in USD")
        max_price_impact_pct: float = Field(2.0, gt=0, le=100, description="the impact must stay below this (percent)")

    def judge(self, inp: GateInput, pools: list[PairSnapshot]) -> GateVerdict:
        size, limit = self.params.impact_size_usd, self.params.max_price_impact_pct
        mp = main_pool(pools, inp.mint)
        if mp is None:
            if bonding_curve(inp, pools) is not None:
                return failed(self.name, inp, BONDING_CURVE)
            return failed(self.name, inp, "no SOL/USDC/USDT pool to buy from")
        if mp.liquidity_usd is None:
            return unverified(self.name, inp, f"main pool {mp.pair_address} reports no liquidity")
        impact = price_impact_pct(size, mp.liquidity_usd)
        details = {"pair": mp.pair_address, "impact_pct": impact, "size_usd": size,
                   "max_price_impact_pct": limit, "liquidity_usd": mp.liquidity_usd}
        return compared(self.name, inp, impact, "<", limit, f"price impact of a {usd(size)} buy {impact:.2f}%",
                        f"{limit:.2f}%", **details)
