"""The universe's pools (issue 12, points 1–2): every pool counts, live snapshots merge into the
cached pool list, a bonding-curve token is looked at every round, and a move of the main pool is
reported."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pytest

from dexscan.config import Settings, load_settings
from dexscan.domain import SOL_MINT, USD1_MINT, DiscoveredToken, PairSnapshot
from dexscan.universe import Universe
from tests.unit.test_universe import FakeInspector, RecordingStore, pair

T = 1_750_003_200


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(env={})


def pool(address: str, mint: str, liquidity: float | None, volume_h24: float, *, quote: str = SOL_MINT,
         dex: str = "raydium") -> PairSnapshot:
    return replace(pair(mint, liquidity or 0.0, volume_h24, T), pair_address=address, quote_mint=quote,
                   liquidity_usd=liquidity, dex_id=dex)


class PoolsByToken:
    """A DexScreener stand-in whose ``/token-pairs/v1`` lists are set by the test."""

    def __init__(self) -> None:
        self.pools: dict[str, list[PairSnapshot]] = {}
        self.asked: list[str] = []

    async def latest_profiles(self) -> list[DiscoveredToken]:
        return []

    async def latest_boosts(self) -> list[DiscoveredToken]:
        return []

    async def pools_for_tokens(self, mints: Sequence[str]) -> dict[str, list[PairSnapshot]]:
        self.asked += list(mints)
        return {m: list(self.pools.get(m, ())) for m in mints}


@dataclass
class Clients:
    jupiter: None
    dexscreener: PoolsByToken


async def test_live_snapshots_merge_into_the_pools_the_gates_judge(settings: Settings) -> None:
    ds = PoolsByToken()
    ds.pools["TOK"] = [pool("A", "TOK", 80_000.0, 60_000.0), pool("B", "TOK", 30_000.0, 50_000.0, quote=USD1_MINT)]
    uni = Universe(settings, RecordingStore(), Clients(None, ds), FakeInspector())
    report = await uni.refresh(watch=["TOK"], discover=False, now=T)
    assert report.admitted == ("TOK",) and report.entered[0].pool == "A"
    vol = next(v for v in report.verdicts["TOK"] if v.gate == "volume_24h")
    assert vol.reason == "24h volume $110,000 >= $100,000 over 2 pools"
    # the live poll sees one pair (DexScreener's pick); the other pool still counts
    assert await uni.observe([pool("A", "TOK", 80_000.0, 61_000.0)], T + 60) == []
    assert uni.book.state("TOK").failing_since is None  # type: ignore[union-attr]
    assert [(p.pair_address, p.volume.h24) for p in uni.pairs("TOK")] == [("A", 61_000.0), ("B", 50_000.0)]


async def test_a_deeper_pool_moves_the_main_pool_at_the_next_round(settings: Settings) -> None:
    ds = PoolsByToken()
    ds.pools["TOK"] = [pool("A", "TOK", 80_000.0, 60_000.0), pool("B", "TOK", 30_000.0, 50_000.0)]
    uni = Universe(settings, RecordingStore(), Clients(None, ds), FakeInspector())
    await uni.refresh(watch=["TOK"], discover=False, now=T)
    ds.pools["TOK"][1] = pool("B", "TOK", 200_000.0, 50_000.0)
    report = await uni.refresh(discover=False, now=T + 600)
    assert report.moved == {"TOK": ("A", "B")}
    assert uni.main_pool("TOK") is not None and uni.main_pool("TOK").pair_address == "B"  # type: ignore[union-attr]
    assert ds.asked == ["TOK", "TOK"]  # pools fetched at every round of a member


async def test_a_bonding_curve_token_waits_outside_and_enters_when_it_migrates(settings: Settings) -> None:
    ds = PoolsByToken()
    ds.pools["PUMP"] = [pool("CURVE", "PUMP", None, 300_000.0, dex="pumpfun")]
    uni = Universe(settings, RecordingStore(), Clients(None, ds), FakeInspector())
    first = await uni.refresh(watch=["PUMP"], discover=False, now=T)
    change = first.changes["PUMP"]
    assert (change.action, change.reason, change.next_check_at) == (
        "rejected", "liquidity fail: on the pump.fun bonding curve, no pool liquidity yet", T + 600)
    second = await uni.refresh(discover=False, now=T + 600)
    assert second.changes["PUMP"].action == "rejected" and second.moved == {}
    ds.pools["PUMP"] = [pool("CURVE", "PUMP", None, 300_000.0, dex="pumpfun"),
                        pool("SWAP", "PUMP", 90_000.0, 20_000.0, dex="pumpswap")]
    third = await uni.refresh(discover=False, now=T + 1200)
    assert third.admitted == ("PUMP",) and third.entered[0].pool == "SWAP"
    assert third.moved == {"PUMP": ("CURVE", "SWAP")}
