"""Universe: admission by gates, the sustained-exit rule, re-check scheduling, and the orchestration."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from dexscan.clock import SimClock
from dexscan.config import Settings, load_settings
from dexscan.domain import (
    SOL_MINT,
    DiscoveredToken,
    GateStatus,
    GateVerdict,
    MintFacts,
    PairSnapshot,
    TokenInfo,
    TxnCounts,
    Window4,
)
from dexscan.errors import SourceUnavailable
from dexscan.store import Store
from dexscan.universe import Entered, Universe
from dexscan.universe_book import FORGET_AFTER_S, UniverseBook

T = 1_750_003_200
MARKET = ("liquidity", "volume_24h", "price_impact")
SAFETY = ("mint_authority", "freeze_authority", "token2022_extensions")


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(env={})


def verdicts(mint: str, now: int, failing: Sequence[str] = (),
             status: GateStatus = GateStatus.FAIL) -> list[GateVerdict]:
    return [GateVerdict(mint, g, status if g in failing else GateStatus.PASS, f"{g} reason", now)
            for g in (*MARKET, *SAFETY)]


# -- the pure book ------------------------------------------------------------------------------------


def test_a_token_is_admitted_only_when_every_gate_passes(settings: Settings) -> None:
    book = UniverseBook(settings.universe)
    assert book.discovered([DiscoveredToken("A", "jupiter:recent"), DiscoveredToken("B", "dexscreener:boosts")], T) == [
        "A", "B"]
    assert book.due(T) == ["A", "B"]
    a = book.apply("A", verdicts("A", T), T)
    b = book.apply("B", verdicts("B", T, failing=["freeze_authority"]), T)
    assert (a.action, a.member, a.changed, a.next_check_at) == ("admitted", True, True, T + 600)
    assert (b.action, b.member, b.reason, b.next_check_at) == (
        "rejected", False, "freeze_authority fail: freeze_authority reason", T + 1800)
    assert book.members() == ["A"]
    assert book.apply("C", [], T).action == "rejected"  # no verdicts at all: fail closed


def test_a_brief_dip_below_liquidity_does_not_drop_a_member(settings: Settings) -> None:
    book = UniverseBook(settings.universe)
    book.apply("A", verdicts("A", T), T)
    dip = book.apply("A", verdicts("A", T + 600, failing=["liquidity"]), T + 600)
    assert (dip.action, dip.member, dip.failing_since) == ("kept", True, T + 600)
    assert "leaves after 3600 s" in dip.reason
    back = book.apply("A", verdicts("A", T + 1200), T + 1200)
    assert (back.action, back.member, back.failing_since) == ("kept", True, None)
    still = book.apply("A", verdicts("A", T + 1800, failing=["volume_24h"]), T + 1800)
    assert still.failing_since == T + 1800  # the clock restarted after the passing check


def test_a_member_leaves_after_failing_market_gates_continuously_for_exit_after_s(settings: Settings) -> None:
    book = UniverseBook(settings.universe)
    book.apply("A", verdicts("A", T), T)
    for k in range(1, 7):
        ch = book.apply("A", verdicts("A", T + k * 600, failing=["liquidity"], status=GateStatus.UNVERIFIED),
                        T + k * 600)
        assert (ch.action, ch.member) == ("kept", True)
    gone = book.apply("A", verdicts("A", T + 4200, failing=["price_impact"]), T + 4200)
    assert (gone.action, gone.member, gone.changed) == ("removed", False, True)
    assert gone.reason == "price_impact fail: price_impact reason (failing for 3600 s)"
    assert gone.next_check_at == T + 4200 + 1800
    assert book.members() == []


def test_a_safety_failure_removes_at_once(settings: Settings) -> None:
    book = UniverseBook(settings.universe)
    book.apply("A", verdicts("A", T), T)
    ch = book.apply("A", verdicts("A", T + 600, failing=["mint_authority"], status=GateStatus.UNVERIFIED), T + 600)
    assert (ch.action, ch.member, ch.failing_since) == ("removed", False, None)
    assert ch.reason == "mint_authority unverified: mint_authority reason"


def test_recheck_scheduling_and_pruning(settings: Settings) -> None:
    book = UniverseBook(settings.universe)
    book.discovered([DiscoveredToken(m, "jupiter:recent") for m in ("M", "F", "W")], T)
    book.apply("M", verdicts("M", T), T)
    book.apply("F", verdicts("F", T, failing=["liquidity"]), T)
    book.apply("W", verdicts("W", T, failing=["liquidity"]), T)
    book.watch("W", T + 60)
    assert book.due(T + 60) == ["W"]  # a watch means: check now
    book.apply("W", verdicts("W", T + 60, failing=["liquidity"]), T + 60)
    assert book.due(T + 599) == []
    assert book.due(T + 600) == ["M"]
    assert book.due(T + 1860) == ["M", "W", "F"]  # members, then watched, then the rest
    assert book.prune(T + FORGET_AFTER_S) == ["F"]
    state = book.state("W")
    assert state is not None and state.watched and state.sources == ("jupiter:recent", "user:watch")
    book.unwatch("W")
    assert book.prune(T + 60 + FORGET_AFTER_S) == ["W"]
    assert len(book) == 1


def test_the_universe_never_exceeds_max_tokens(settings: Settings) -> None:
    book = UniverseBook(settings.universe.model_copy(update={"max_tokens": 2}))
    actions = [book.apply(m, verdicts(m, T), T).action for m in ("A", "B", "C")]
    assert actions == ["admitted", "admitted", "rejected"]
    assert book.state("C") is not None and "universe is full" in book.state("C").reason  # type: ignore[union-attr]


def test_exit_after_zero_drops_on_the_first_failure(settings: Settings) -> None:
    book = UniverseBook(settings.universe.model_copy(update={"exit_after_s": 0}))
    book.apply("A", verdicts("A", T), T)
    assert book.apply("A", verdicts("A", T + 600, failing=["liquidity"]), T + 600).action == "removed"


# -- the orchestration over fake clients ------------------------------------------------------------


def pair(mint: str, liquidity: float, volume_h24: float, now: int) -> PairSnapshot:
    return PairSnapshot(
        pair_address=f"pool-{mint}", dex_id="raydium", base_mint=mint, base_symbol=mint, base_name=mint,
        quote_mint=SOL_MINT, quote_symbol="SOL", price_usd=1.0, price_native=0.01,
        volume=Window4(m5=1e3, h1=1e4, h6=5e4, h24=volume_h24), price_change=Window4(m5=1.0),
        txns_m5=TxnCounts(5, 3), txns_h1=TxnCounts(50, 30), txns_h24=TxnCounts(500, 300),
        liquidity_usd=liquidity, fdv=1e6, market_cap=1e6, pair_created_at=now - 86_400, observed_at=now)


class FakeJupiter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    async def top(self, category: str, interval: str, limit: int = 50) -> list[TokenInfo]:
        self.calls.append((category, interval, str(limit)))
        if category == "toptraded":
            raise SourceUnavailable("jupiter", "/tokens/v2/toptraded/1h", "HTTP 503")
        return [TokenInfo("GOOD", "GOOD", "Good")] if category == "toptrending" else []

    async def recent(self) -> list[TokenInfo]:
        self.calls.append(("recent",))
        return [TokenInfo("THIN", "THIN", "Thin")]


class FakeDexScreener:
    def __init__(self) -> None:
        self.liquidity = {"GOOD": 80_000.0, "THIN": 10_000.0, "RUG": 90_000.0}
        self.down = False

    async def latest_profiles(self) -> list[DiscoveredToken]:
        return [DiscoveredToken("RUG", "dexscreener:profiles", "RUG")]

    async def latest_boosts(self) -> list[DiscoveredToken]:
        return []

    async def pairs_for_tokens(self, mints: Sequence[str]) -> list[PairSnapshot]:
        if self.down:
            raise SourceUnavailable("dexscreener", "/tokens/v1", "HTTP 502")
        return [pair(m, self.liquidity[m], 500_000.0, T) for m in mints if m in self.liquidity]

    async def pools_for_tokens(self, mints: Sequence[str]) -> dict[str, list[PairSnapshot]]:
        """The gates' pool lists (``/token-pairs/v1``): here each token's one pool."""
        return {m: await self.pairs_for_tokens([m]) for m in mints}


class FakeInspector:
    async def inspect(self, mints: Sequence[str], holders: bool = True) -> dict[str, MintFacts]:
        return {m: MintFacts(m, T, exists=True, is_mint=True, owner_program="spl-token", supply=10**9, decimals=6,
                             mint_authority="Auth1111" if m == "RUG" else None) for m in mints}


@dataclass
class Clients:
    jupiter: FakeJupiter | None
    dexscreener: FakeDexScreener


class RecordingStore:
    def __init__(self) -> None:
        self.verdicts: list[GateVerdict] = []
        self.membership: list[tuple[str, bool, int, int | None, str | None]] = []
        self.tokens: list[tuple[str, str | None]] = []

    async def save_verdicts(self, verdicts: Iterable[GateVerdict]) -> None:
        self.verdicts += list(verdicts)

    async def set_universe_membership(self, mint: str, in_universe: bool, now: int, failing_since: int | None,
                                      main_pool: str | None = None) -> None:
        self.membership.append((mint, in_universe, now, failing_since, main_pool))

    async def upsert_token(self, mint: str, now: int, symbol: str = "", name: str = "", decimals: int | None = None,
                           source: str | None = None) -> None:
        self.tokens.append((mint, source))

    async def universe(self) -> list[dict[str, Any]]:
        return []

    async def watched_mints(self) -> list[str]:
        return []


async def test_refresh_discovers_gates_stores_and_admits(settings: Settings) -> None:
    store = RecordingStore()
    jup, ds = FakeJupiter(), FakeDexScreener()
    uni = Universe(settings, store, Clients(jup, ds), FakeInspector(), SimClock(T))
    report = await uni.refresh()
    assert report.source_errors == {"jupiter:toptraded/1h": "jupiter /tokens/v2/toptraded/1h: HTTP 503"}
    assert (report.discovered, report.new) == (3, 3)
    assert sorted(report.checked) == ["GOOD", "RUG", "THIN"]
    assert report.admitted == ("GOOD",)
    assert report.entered == (Entered("GOOD", "GOOD", "Good", "pool-GOOD"),)
    assert (report.passed, report.failed, report.unverified, report.left) == (1, 2, 0, ())
    assert uni.book.members() == ["GOOD"]
    assert report.changes["THIN"].reason.startswith("liquidity fail: liquidity $10,000 < $50,000")
    assert report.changes["RUG"].reason.startswith("mint_authority fail")
    assert {v.mint for v in store.verdicts} == {"GOOD", "RUG", "THIN"}
    assert len(store.verdicts) == 3 * len(uni.gates)
    assert store.membership == [("GOOD", True, T, None, "pool-GOOD")]
    assert ("toptrending", "1h", "100") in jup.calls and ("recent",) in jup.calls
    assert uni.symbol("GOOD") == "GOOD" and [p.pair_address for p in uni.pairs("GOOD")] == ["pool-GOOD"]


async def test_an_outage_of_pool_snapshots_judges_nobody(settings: Settings) -> None:
    ds = FakeDexScreener()
    uni = Universe(settings, RecordingStore(), Clients(FakeJupiter(), ds), FakeInspector())
    await uni.refresh(now=T)
    ds.down = True
    report = await uni.refresh(now=T + 600)
    assert report.checked == () and report.changes == {}
    assert report.source_errors["dexscreener:pairs"] == "dexscreener /tokens/v1: HTTP 502"
    assert uni.book.members() == ["GOOD"]
    assert uni.book.due(T + 600)[0] == "GOOD"  # still due: checked again next round


async def test_a_member_survives_a_dip_and_leaves_after_an_hour(settings: Settings) -> None:
    ds = FakeDexScreener()
    store = RecordingStore()
    uni = Universe(settings, store, Clients(FakeJupiter(), ds), FakeInspector())
    await uni.refresh(now=T)
    ds.liquidity["GOOD"] = 20_000.0
    for k in range(1, 6):
        r = await uni.refresh(now=T + k * 600, discover=False)
        assert r.left == () and uni.book.is_member("GOOD")
    r = await uni.refresh(now=T + 3600 + 600, discover=False)
    assert r.left == ("GOOD",)
    assert store.membership[-1] == ("GOOD", False, T + 4200, None, "pool-GOOD")


async def test_live_snapshots_between_rounds_apply_the_sustained_exit_rule(settings: Settings) -> None:
    ds = FakeDexScreener()
    uni = Universe(settings, RecordingStore(), Clients(FakeJupiter(), ds), FakeInspector())
    await uni.refresh(now=T)
    thin = [pair("GOOD", 20_000.0, 500_000.0, T), pair("RUG", 1.0, 1.0, T)]
    assert await uni.observe(thin, T + 60) == []  # failing starts the clock; RUG is no member: ignored
    state = uni.book.state("GOOD")
    assert state is not None and state.failing_since == T + 60
    assert await uni.observe([pair("GOOD", 90_000.0, 500_000.0, T)], T + 120) == []
    assert uni.book.state("GOOD").failing_since is None  # type: ignore[union-attr]
    await uni.observe(thin, T + 180)
    [gone] = await uni.observe(thin, T + 180 + 3600)
    assert (gone.mint, gone.action) == ("GOOD", "removed")
    report = await uni.refresh(now=T + 3900, discover=False)
    assert report.left == ("GOOD",)


async def test_watch_checks_at_once_and_check_leaves_membership_alone(settings: Settings) -> None:
    uni = Universe(settings, RecordingStore(), Clients(None, FakeDexScreener()), FakeInspector(), SimClock(T))
    change = await uni.watch("GOOD")
    assert (change.action, change.member) == ("admitted", True)
    verdicts_by_mint = await uni.check(["RUG"])
    assert [v.gate for v in verdicts_by_mint["RUG"] if not v.passed] == ["mint_authority"]
    assert not uni.book.is_member("RUG") and uni.book.state("RUG") is None


async def test_watch_now_checks_only_the_watched_mints_and_asks_no_feed(settings: Settings) -> None:
    jup = FakeJupiter()
    uni = Universe(settings, RecordingStore(), Clients(jup, FakeDexScreener()), FakeInspector())
    await uni.refresh(now=T)  # GOOD admitted, THIN rejected: both due again later, not now
    jup.calls.clear()
    report = await uni.watch_now(["RUG", "THIN", "RUG"], T + 60)
    assert jup.calls == []
    assert report.checked == ("RUG", "THIN") and report.discovered == 0
    assert report.entered == () and uni.book.watched() == ["RUG", "THIN"]
    assert uni.book.members() == ["GOOD"]


async def test_membership_survives_a_restart_through_the_store(settings: Settings, store: Store) -> None:
    uni = Universe(settings, store, Clients(FakeJupiter(), FakeDexScreener()), FakeInspector())
    await uni.refresh(now=T)
    await store.set_watched("THIN", True, T)
    again = Universe(settings, store, Clients(FakeJupiter(), FakeDexScreener()), FakeInspector())
    assert await again.load(T + 60) == 2
    assert again.book.members() == ["GOOD"] and again.book.watched() == ["THIN"]
    assert again.book.due(T + 60) == ["GOOD", "THIN"]
    assert len(await store.latest_verdicts("GOOD")) == len(uni.gates)
