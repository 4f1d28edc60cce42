"""The universe: which tokens are scanned. Discovery feeds candidates; gates admit them (SPEC §3).

Two parts, split on purpose:

* :class:`~dexscan.universe_book.UniverseBook` — the **pure** membership decisions (admission,
  sustained exits, re-checks, forgetting), in its own module.

* :class:`Universe` — the async orchestration (``Universe(settings, store, clients, inspector,
  clock)``; :meth:`Universe.refresh` once per ``discovery_interval_s``, :meth:`Universe.observe` with
  the live pool snapshots in between): asks the discovery feeds (Jupiter ``toptrending`` /
  ``toporganicscore`` / ``toptraded`` per ``universe.jupiter_*``, Jupiter ``recent``, DexScreener
  latest profiles and boosts) plus user-watched mints, gathers each due token's pools and on-chain
  facts (:meth:`Universe.examine`), evaluates the gates, stores every verdict (``Store.save_verdicts``)
  and each membership change, and applies the book's decisions. A failing feed is reported and skipped;
  if the pool lists cannot be fetched, nobody in that chunk is judged that round (an outage on our
  side must not reject or drop tokens).

Pools (``reference/external-apis.md`` §3.2): a token's pools come from DexScreener ``/token-pairs/v1``
(one call per token, in the 300/min pairs budget; pools where the token is the base *or* the quote),
fetched when the token is checked — every discovery round for members and for tokens on a bonding
curve — and cached (:meth:`Universe.pairs`). ``/tokens/v1`` answers only DexScreener's pick of one
pair per token, so it is the live poll, never the gates' input. The gates judge one
:class:`~dexscan.gates.GateInput` built by :func:`gate_input` — the same function ``dexscan check``
uses — where the main pool is :func:`dexscan.domain.main_pool` and the 24h volume is the sum over all
of the token's pools. Between rounds, :meth:`Universe.observe` merges each live snapshot into the
cached pool list before judging the market gates again, so one polled pair never stands for all pools.
A token still on the pump.fun bonding curve fails the liquidity gate ("on the pump.fun bonding curve,
no pool liquidity yet") and is re-checked every round until it migrates; :attr:`RefreshReport.moved`
names the tokens whose main pool changed (a migration), so the engine re-pins its books.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from dexscan.clock import Clock
from dexscan.config import Settings
from dexscan.domain import (
    DiscoveredToken,
    GateStatus,
    GateVerdict,
    MintFacts,
    PairSnapshot,
    TokenInfo,
    is_bonding_curve,
    main_pool,
)
from dexscan.errors import DexscanError
from dexscan.gates import Gate, GateInput, evaluate_gates
from dexscan.plugins import build_gates
from dexscan.universe_book import SUSTAINED_GATES, WATCH_SOURCE, MembershipChange, UniverseBook

log = logging.getLogger(__name__)

#: Tokens whose pool lists are fetched (and then judged) together: admissions flow while a large
#: first round is still being fetched within the pairs budget.
POOLS_CHUNK = 60


# ---------------------------------------------------------------------------------------------
# I/O orchestration
# ---------------------------------------------------------------------------------------------


class JupiterDiscovery(Protocol):
    async def top(self, category: str, interval: str, limit: int = 50) -> list[TokenInfo]: ...

    async def recent(self) -> list[TokenInfo]: ...


class DexScreenerSource(Protocol):
    async def latest_profiles(self) -> list[DiscoveredToken]: ...

    async def latest_boosts(self) -> list[DiscoveredToken]: ...

    async def pools_for_tokens(self, mints: Sequence[str]) -> dict[str, list[PairSnapshot]]: ...


class DiscoveryClients(Protocol):
    """The client bundle (``dexscan.sources.build_clients``): Jupiter may be absent."""

    @property
    def jupiter(self) -> JupiterDiscovery | None: ...

    @property
    def dexscreener(self) -> DexScreenerSource | None: ...


class MintReader(Protocol):
    async def inspect(self, mints: Sequence[str], holders: bool = True) -> dict[str, MintFacts]: ...


class UniverseStore(Protocol):
    async def save_verdicts(self, verdicts: Iterable[GateVerdict]) -> None: ...

    async def set_universe_membership(self, mint: str, in_universe: bool, now: int, failing_since: int | None,
                                      main_pool: str | None = None) -> None: ...

    async def upsert_token(self, mint: str, now: int, symbol: str = "", name: str = "", decimals: int | None = None,
                           source: str | None = None) -> None: ...

    async def universe(self) -> list[dict[str, Any]]: ...

    async def watched_mints(self) -> list[str]: ...


def gate_input(mint: str, now: int, pairs: Iterable[PairSnapshot], facts: MintFacts | None) -> GateInput:
    """What the gates judge for one token — the one path of the scanner and of ``dexscan check``.

    Its pools where it is the base *or* the quote, each once, in the given order (the volume gate sums
    their 24h volume; the liquidity and price-impact gates take :func:`~dexscan.domain.main_pool` of
    them), and its on-chain facts (None: not read, the chain gates say unverified).
    """
    seen: dict[str, PairSnapshot] = {}
    for p in pairs:
        if mint in (p.base_mint, p.quote_mint) and p.pair_address not in seen:
            seen[p.pair_address] = p
    return GateInput(mint, now, tuple(seen.values()), facts)


@dataclass(frozen=True, slots=True)
class Examined:
    """Gate inputs and verdicts of some mints (:meth:`Universe.examine`), and what reading them took."""

    inputs: dict[str, GateInput]
    verdicts: dict[str, list[GateVerdict]]
    pools: dict[str, list[PairSnapshot]] | None  # None: no pool lists (DexScreener off or failing)
    pools_error: DexscanError | None
    chain_ms: float
    market_ms: float


def pool_key(pairs: Iterable[PairSnapshot], mint: str) -> str | None:
    """Where the token trades for the books: its main pool, else its bonding curve, else None."""
    pairs = list(pairs)
    mp = main_pool(pairs, mint)
    if mp is not None:
        return mp.pair_address
    curve = next((p for p in pairs if p.base_mint == mint and is_bonding_curve(p)), None)
    return None if curve is None else curve.pair_address


def on_bonding_curve(pairs: Iterable[PairSnapshot], mint: str) -> bool:
    """No main pool yet, but a bonding curve: the token has not migrated."""
    pairs = list(pairs)
    return main_pool(pairs, mint) is None and any(p.base_mint == mint and is_bonding_curve(p) for p in pairs)


@dataclass(frozen=True, slots=True)
class Entered:
    """A token that just entered the universe, with what the engine needs to start scanning it."""

    mint: str
    symbol: str
    name: str
    pool: str | None


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What one refresh did: for the engine, the dashboard, the logs and the tests."""

    at: int
    discovered: int  # tokens the feeds returned (with repeats across feeds)
    new: int  # of which new to the book
    checked: tuple[str, ...]
    entered: tuple[Entered, ...]
    left: tuple[str, ...]  # removed this round, or since the last round by :meth:`Universe.observe`
    members: int
    passed: int  # checked tokens whose every gate passed
    failed: int  # checked tokens with at least one failing gate
    unverified: int  # checked tokens with no failing gate but at least one unverified one
    source_errors: Mapping[str, str]
    changes: Mapping[str, MembershipChange]
    verdicts: Mapping[str, tuple[GateVerdict, ...]]
    #: Checked tokens whose main pool changed since their previous check: mint -> (old, new) pair
    #: address; ``old`` is a bonding curve's address when the token just migrated from one.
    moved: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict)

    @property
    def admitted(self) -> tuple[str, ...]:
        return tuple(e.mint for e in self.entered)


class Universe:
    """Discovery + gates + the book, over injected clients (real ones, or fakes in tests).

    ``clients`` is the bundle of :func:`dexscan.sources.build_clients` (``.jupiter``,
    ``.dexscreener``); ``clock`` supplies ``now`` when a call does not pass it.
    """

    def __init__(self, settings: Settings, store: UniverseStore | None, clients: DiscoveryClients,
                 inspector: MintReader, clock: Clock | None = None, *, gates: Sequence[Gate] | None = None,
                 book: UniverseBook | None = None) -> None:
        self.settings = settings
        self.store = store
        self.jupiter = clients.jupiter
        self.dexscreener = clients.dexscreener
        self.inspector = inspector
        self.clock = clock
        self.gates: list[Gate] = build_gates(settings.gates) if gates is None else list(gates)
        self._market_gates = [g for g in self.gates if g.name in SUSTAINED_GATES]
        self.book = UniverseBook(settings.universe) if book is None else book
        self._pairs: dict[str, list[PairSnapshot]] = {}
        self._names: dict[str, tuple[str, str]] = {}
        self._left_since_refresh: list[str] = []

    def _now(self, now: int | None) -> int:
        if now is not None:
            return now
        if self.clock is None:
            raise ValueError("Universe needs `now` or a clock")
        return int(self.clock.now())

    # -- restart ---------------------------------------------------------------------------------

    async def load(self, now: int | None = None) -> int:
        """Restore members and watched mints from the store; returns how many were restored."""
        if self.store is None:
            return 0
        t = self._now(now)
        rows = await self.store.universe()
        watched = set(await self.store.watched_mints())
        for r in rows:
            self.book.restore(r["mint"], member=True, since=r.get("universe_since"),
                              failing_since=r.get("failing_since"), watched=r["mint"] in watched, now=t)
            self._names[r["mint"]] = (r.get("symbol") or "", r.get("name") or "")
        for m in watched:
            self.book.watch(m, t)
        return len(rows) + len(watched - {r["mint"] for r in rows})

    # -- discovery -------------------------------------------------------------------------------

    async def discover(self, now: int | None = None) -> tuple[list[DiscoveredToken], dict[str, str]]:
        """Ask every enabled feed; a failing feed is reported, the others still count."""
        u = self.settings.universe
        calls: list[tuple[str, Any]] = []
        if self.jupiter is not None and self.settings.sources.jupiter.enabled:
            jup = self.jupiter
            for cat in u.jupiter_categories:
                calls.append((f"jupiter:{cat}/{u.jupiter_interval}", jup.top(cat, u.jupiter_interval, u.jupiter_limit)))
            if u.jupiter_recent:
                calls.append(("jupiter:recent", jup.recent()))
        if self.dexscreener is not None and self.settings.sources.dexscreener.enabled:
            if u.dexscreener_profiles:
                calls.append(("dexscreener:profiles", self.dexscreener.latest_profiles()))
            if u.dexscreener_boosts:
                calls.append(("dexscreener:boosts", self.dexscreener.latest_boosts()))
        results = await asyncio.gather(*(c for _, c in calls), return_exceptions=True)
        found: list[DiscoveredToken] = []
        errors: dict[str, str] = {}
        for (source, _), res in zip(calls, results, strict=True):
            if isinstance(res, BaseException):
                if not isinstance(res, DexscanError):
                    raise res
                errors[source] = str(res)
                log.warning("discovery feed %s failed: %s", source, res)
                continue
            for item in res:
                token = (DiscoveredToken(item.mint, source, item.symbol, item.name) if isinstance(item, TokenInfo)
                         else item)
                found.append(token)
                if token.symbol or token.name:
                    self._names[token.mint] = (token.symbol or "", token.name or "")
        return found, errors

    async def watch(self, mint: str, now: int | None = None) -> MembershipChange:
        """Watch a mint (``/watch``, ``--tokens``) and check it right away."""
        t = self._now(now)
        report = await self.watch_now([mint], t)
        change = report.changes.get(mint)
        if change is None:  # pools could not be fetched: the token stays a candidate, due now
            return MembershipChange(mint, "rejected", t, "; ".join(report.source_errors.values()),
                                    self.book.is_member(mint), None, t)
        return change

    async def watch_now(self, mints: Sequence[str], now: int | None = None) -> RefreshReport:
        """Watch ``mints`` and check just them, now: the on-demand round behind ``/watch``.

        No feed is asked and no other token is checked, so a burst of ``/watch`` costs a pool-list
        request per :data:`POOLS_CHUNK` new mints and their chain reads, never a discovery round.
        """
        t = self._now(now)
        for mint in mints:
            self.book.watch(mint, t)
            if self.store is not None:
                await self.store.upsert_token(mint, t, source=WATCH_SOURCE)
        return await self._check_and_apply(list(dict.fromkeys(mints)), t, 0, 0, {})

    async def discovered_now(self, tokens: Sequence[DiscoveredToken], limit: int, now: int | None = None
                             ) -> RefreshReport:
        """Candidates the chain stream just announced (a new pool, a graduation): recorded as a feed's
        would be, and the first ``limit`` checked now, as in :meth:`watch_now` (no feed asked); the
        rest are due at the next round. A member is checked again too: its main pool may have moved."""
        t = self._now(now)
        self.book.discovered(tokens, t)
        for tok in tokens:
            self.book.recheck_at(tok.mint, t)
            if self.store is not None:
                await self.store.upsert_token(tok.mint, t, symbol=tok.symbol or "", name=tok.name or "",
                                              source=tok.source)
        mints = list(dict.fromkeys(tok.mint for tok in tokens))
        return await self._check_and_apply(mints[:limit], t, len(mints), 0, {})

    # -- gates -----------------------------------------------------------------------------------

    async def examine(self, mints: Sequence[str], now: int, *, holders: bool | None = None) -> Examined:
        """Each mint's pools (``/token-pairs/v1``) and on-chain facts, read concurrently, as gate inputs
        (:func:`gate_input`), and their verdicts, membership untouched: what a round, :meth:`check` and
        ``dexscan check`` judge. ``holders``: read the top-10 holders (None: when their gate is on).

        Without DexScreener, or when its pool lists cannot be fetched (``pools_error``), the inputs carry
        no pools and the market gates say unverified (the cached pools are kept); the chain is read either way.
        """
        loop = asyncio.get_running_loop()

        async def timed(coro: Any) -> tuple[Any, float]:
            started = loop.time()
            try:
                return await coro, (loop.time() - started) * 1000
            except DexscanError as exc:
                return exc, (loop.time() - started) * 1000

        unique = list(dict.fromkeys(mints))
        pools_call = self.dexscreener.pools_for_tokens(unique) if self.dexscreener is not None else asyncio.sleep(0)
        read_holders = self.settings.gates.top10_gate_enabled if holders is None else holders
        (facts, chain_ms), (pools, market_ms) = await asyncio.gather(
            timed(self.inspector.inspect(unique, holders=read_holders)), timed(pools_call))
        if isinstance(facts, BaseException):
            raise facts
        error = pools if isinstance(pools, DexscanError) else None
        by_mint: dict[str, list[PairSnapshot]] | None = None if error is not None else pools
        inputs = {m: gate_input(m, now, (by_mint or {}).get(m, ()), facts.get(m)) for m in unique}
        if error is None:
            self._pairs.update((m, list(inp.pairs)) for m, inp in inputs.items())
        verdicts = {m: evaluate_gates(self.gates, inp) for m, inp in inputs.items()}
        return Examined(inputs, verdicts, by_mint, error, chain_ms, market_ms)

    async def check(self, mints: Sequence[str], now: int | None = None) -> dict[str, list[GateVerdict]]:
        """Verdicts for mints without touching membership (``/check``); raises the source error when
        the pool lists cannot be fetched, so that nobody is judged on missing pools."""
        got = await self.examine(mints, self._now(now))
        if got.pools_error is not None:
            raise got.pools_error
        return got.verdicts

    def pairs(self, mint: str) -> list[PairSnapshot]:
        """The token's pools as of its last check, with live snapshots merged in by :meth:`observe`."""
        return list(self._pairs.get(mint, ()))

    def main_pool(self, mint: str) -> PairSnapshot | None:
        """:func:`~dexscan.domain.main_pool` of the cached pools."""
        return main_pool(self._pairs.get(mint, ()), mint)

    def recheck(self, mint: str, now: int) -> None:
        """Check ``mint`` (its pools, its gates) again at the next round: its pinned pair went missing."""
        self.book.recheck_at(mint, now)

    def symbol(self, mint: str) -> str:
        return self._names.get(mint, ("", ""))[0]

    async def observe(self, pairs: Sequence[PairSnapshot], now: int | None = None) -> list[MembershipChange]:
        """Fresh pool snapshots from live polling: apply the sustained-exit rule between rounds.

        Only the market gates are judged (the chain is not read here), and only for members whose
        pools are in ``pairs``; a passing check resets a member's failing clock, a failure starts
        it, and a member failing for ``exit_after_s`` leaves (reported in the next refresh's ``left``).
        """
        t = self._now(now)
        members = {m for m in {p.base_mint for p in pairs} if self.book.is_member(m)}
        if not members or not self._market_gates:
            return []
        by_mint: dict[str, list[PairSnapshot]] = {m: [] for m in sorted(members)}
        for p in pairs:  # each member's pools where it is the base (DexScreener also lists it as a quote)
            if p.base_mint in by_mint:
                by_mint[p.base_mint].append(p)
        out: list[MembershipChange] = []
        for mint, own in by_mint.items():
            merged = {p.pair_address: p for p in self._pairs.get(mint, ())}
            merged.update((p.pair_address, p) for p in own)  # fresher snapshots of the same pools
            self._pairs[mint] = list(merged.values())
            vs = evaluate_gates(self._market_gates, gate_input(mint, t, self._pairs[mint], None))
            change = self.book.observe_market(mint, vs, t)
            if change is not None and change.action == "removed":
                self._left_since_refresh.append(mint)
                out.append(change)
                if self.store is not None:
                    pool = main_pool(self._pairs[mint], mint)
                    await self.store.save_verdicts(vs)
                    await self.store.set_universe_membership(mint, False, t, None,
                                                             None if pool is None else pool.pair_address)
        return out

    # -- one round -------------------------------------------------------------------------------

    async def refresh(self, watch: Sequence[str] = (), now: int | None = None, discover: bool = True
                      ) -> RefreshReport:
        """One round: watch ``watch``, discover, then check every due token and apply the decisions."""
        t = self._now(now)
        for mint in watch:
            if self.book.state(mint) is None or not self.book.state(mint).watched:  # type: ignore[union-attr]
                self.book.watch(mint, t)
        found: list[DiscoveredToken] = []
        errors: dict[str, str] = {}
        new: list[str] = []
        if discover:
            found, errors = await self.discover(t)
            new = self.book.discovered(found, t)
            if self.store is not None:
                for tok in {tok.mint: tok for tok in found}.values():
                    await self.store.upsert_token(tok.mint, t, symbol=tok.symbol or "", name=tok.name or "",
                                                  source=tok.source)
        self.book.prune(t)
        return await self._check_and_apply(self.book.due(t), t, len(found), len(new), errors)

    async def _check_and_apply(self, due: Sequence[str], now: int, discovered: int, new: int,
                               errors: dict[str, str]) -> RefreshReport:
        changes: dict[str, MembershipChange] = {}
        verdicts: dict[str, tuple[GateVerdict, ...]] = {}
        inputs: dict[str, GateInput] = {}
        moved: dict[str, tuple[str | None, str | None]] = {}
        for start in range(0, len(due), POOLS_CHUNK):
            chunk = due[start:start + POOLS_CHUNK]
            before = {m: pool_key(self._pairs[m], m) for m in chunk if m in self._pairs}
            try:
                got = await self.examine(chunk, now)
                if got.pools_error is not None:
                    raise got.pools_error
            except DexscanError as exc:
                errors["dexscreener:pairs"] = str(exc)
                log.warning("universe check skipped for %d tokens: pool lists unavailable: %s",
                            len(due) - start, exc)
                break
            inputs.update(got.inputs)
            for mint, inp in got.inputs.items():
                vs = got.verdicts[mint]
                verdicts[mint] = tuple(vs)
                changes[mint] = self.book.apply(mint, vs, now)
                if on_bonding_curve(inp.pairs, mint):  # about to migrate: look again every round
                    at = now + self.book.recheck_member_s
                    self.book.recheck_at(mint, at)
                    changes[mint] = replace(changes[mint], next_check_at=min(changes[mint].next_check_at, at))
                after = pool_key(inp.pairs, mint)
                if mint in before and before[mint] != after and after is not None:
                    moved[mint] = (before[mint], after)
                    log.info("universe: %s main pool moved from %s to %s", self._names.get(mint, ("", ""))[0] or mint,
                             before[mint] or "none", after)
        if self.store is not None and verdicts:
            await self.store.save_verdicts([v for vs in verdicts.values() for v in vs])
            for mint, ch in changes.items():
                if ch.changed or ch.member:
                    pool = main_pool(inputs[mint].pairs, mint)
                    await self.store.set_universe_membership(mint, ch.member, now, ch.failing_since,
                                                             None if pool is None else pool.pair_address)
        entered = []
        for mint, ch in changes.items():
            if ch.action == "admitted":
                pool = main_pool(inputs[mint].pairs, mint)
                symbol, name = self._names.get(mint, ("", ""))
                if pool is not None:
                    symbol, name = symbol or pool.base_symbol, name or pool.base_name
                entered.append(Entered(mint, symbol, name, None if pool is None else pool.pair_address))
        left = [*self._left_since_refresh, *(m for m, c in changes.items() if c.action == "removed")]
        self._left_since_refresh = []
        statuses = [{v.status for v in vs} for vs in verdicts.values()]
        return RefreshReport(
            at=now, discovered=discovered, new=new, checked=tuple(verdicts), entered=tuple(entered),
            left=tuple(dict.fromkeys(left)), members=self.book.member_count(),
            passed=sum(1 for st in statuses if st == {GateStatus.PASS}),
            failed=sum(1 for st in statuses if GateStatus.FAIL in st),
            unverified=sum(1 for st in statuses if GateStatus.FAIL not in st and GateStatus.UNVERIFIED in st),
            source_errors=dict(errors), changes=changes, verdicts=verdicts, moved=moved,
        )

