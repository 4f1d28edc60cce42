"""The scanner's rounds over the gated universe (:class:`dexscan.universe.Universe`).

A *discovery round* asks the feeds for candidates and checks every due token, with ``--tokens``
and the mints watched from Telegram (``/watch``, kept in the store) in the same round, so their
pools are fetched in shared batches. An *on-demand round* checks only mints just watched from
Telegram, coalesced (see :meth:`UniverseRounds.request_watch`), and the tokens of new pools and
graduations the chain stream announced (:meth:`UniverseRounds.request_discovered`), in the same
coalesced rounds, at most ``stream.discovery_max_per_round`` checked per round. Rounds never interleave; the
:class:`~dexscan.engine.Engine` follows each one (pins, entries, leavers) through ``apply``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from dexscan.config import Settings
from dexscan.engine_ports import ScannedUniverse
from dexscan.errors import SourceError

if TYPE_CHECKING:
    from dexscan.clock import Clock
    from dexscan.domain import DiscoveredToken
    from dexscan.status import RejectedRow
    from dexscan.universe import RefreshReport
    from dexscan.universe_book import MembershipChange

log = logging.getLogger(__name__)


class RoundCounters(Protocol):
    """The counters the rounds keep (the engine's :class:`~dexscan.engine.EngineCounters`)."""

    discovery_rounds: int  # periodic rounds: feeds asked, every due token checked
    watch_rounds: int  # on-demand rounds: only just-watched mints checked (coalesced /watch)
    stream_discovery_rounds: int  # on-demand rounds for new pools and graduations of the chain stream


class UniverseRounds:
    """Discovery and on-demand rounds over ``universe``; the gate counts of the last discovery
    round and each token's latest rejection (the dashboard's REJECTED view)."""

    #: How many of the latest gate rejections are kept.
    REJECTED_KEPT = 50

    def __init__(self, universe: ScannedUniverse, settings: Settings, clock: Clock, watch: Sequence[str],
                 counters: RoundCounters, apply: Callable[[RefreshReport], Awaitable[None]]) -> None:
        self.universe = universe
        self.settings = settings
        self.clock = clock
        self.watch = tuple(dict.fromkeys(watch))
        self.counters = counters
        self._apply = apply
        self.gate_counts = (0, 0, 0)  # passed, failed, unverified in the last discovery round
        self.rejected: dict[str, RejectedRow] = {}
        self._round = asyncio.Lock()  # discovery and on-demand rounds never interleave
        self._loaded = False
        self._requests: dict[str, None] = {}  # mints waiting for an on-demand round, in order
        self._discovered: dict[str, DiscoveredToken] = {}  # the chain stream's, for the same rounds
        self._wake = asyncio.Event()

    async def discover(self) -> None:
        """One discovery and gating round (the feeds' candidates, ``--tokens`` and watched mints)."""
        universe = self.universe
        async with self._round:
            now = int(self.clock.now())
            await self._load(now)
            watch = list(self.watch)
            if universe.store is not None:
                watch += await universe.store.watched_mints()
            report = await universe.refresh(list(dict.fromkeys(watch)), now)
            self.counters.discovery_rounds += 1
            await self._apply(report)
            self._note_rejections(report.changes)
        self.gate_counts = (report.passed, report.failed, report.unverified)

    async def _load(self, now: int) -> None:
        if not self._loaded:
            self._loaded = True
            restored = await self.universe.load(now)
            if restored:
                log.info("universe: %d token(s) restored from the store", restored)

    def _note_rejections(self, changes: Mapping[str, MembershipChange]) -> None:
        """Keep each token's latest rejection (newest last); a token admitted again drops out."""
        from dexscan.status import RejectedRow

        for mint, ch in changes.items():
            self.rejected.pop(mint, None)
            if ch.action in ("rejected", "removed"):
                self.rejected[mint] = RejectedRow(ch.at, mint, self.universe.symbol(mint), ch.reason,
                                                  left=ch.action == "removed")
        while len(self.rejected) > self.REJECTED_KEPT:
            self.rejected.pop(next(iter(self.rejected)))

    async def discovery_loop(self) -> None:
        while True:
            try:
                await self.discover()
            except SourceError as exc:
                log.warning("discovery failed, retrying at the next cycle: %s", exc)
            await self.clock.sleep(self.settings.universe.discovery_interval_s)

    def request_watch(self, mint: str) -> None:
        """Check ``mint`` (just watched from Telegram) in the next on-demand round.

        Requests are coalesced: the first of a quiet spell is checked at once, those arriving while
        a round runs or within ``universe.watch_round_interval_s`` after it wait for the next one,
        which checks them all together. An on-demand round checks only the watched mints (no feed
        is asked), so a flood of ``/watch`` cannot multiply discovery rounds.
        """
        self._requests[mint] = None
        self._wake.set()

    def request_discovered(self, token: DiscoveredToken) -> None:
        """Check ``token`` (a new pool or a graduation the chain stream just saw) in the next on-demand
        round, coalesced as :meth:`request_watch` is (:meth:`~dexscan.universe.Universe.discovered_now`)."""
        self._discovered[token.mint] = token
        self._wake.set()

    async def watch_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            mints, self._requests = list(self._requests), {}
            found, self._discovered = list(self._discovered.values()), {}
            try:
                await self.watch_round(mints)
                await self.discovered_round(found)
            except SourceError as exc:
                log.warning("watched mints not checked now (%d), they are at the next discovery round: %s",
                            len(mints), exc)
            await self.clock.sleep(self.settings.universe.watch_round_interval_s)

    async def discovered_round(self, tokens: Sequence[DiscoveredToken]) -> None:
        """One on-demand round for the chain stream's candidates (at most ``stream.discovery_max_per_round``
        checked; the rest are due at the next round)."""
        if not tokens:
            return
        async with self._round:
            now = int(self.clock.now())
            await self._load(now)
            self.counters.stream_discovery_rounds += 1
            report = await self.universe.discovered_now(tokens, self.settings.stream.discovery_max_per_round, now)
            await self._apply(report)
            self._note_rejections(report.changes)

    async def watch_round(self, mints: Sequence[str]) -> None:
        """One on-demand round: check just ``mints`` (:meth:`~dexscan.universe.Universe.watch_now`)."""
        if not mints:
            return
        async with self._round:
            await self._load(int(self.clock.now()))
            self.counters.watch_rounds += 1
            report = await self.universe.watch_now(mints, int(self.clock.now()))
            await self._apply(report)
            self._note_rejections(report.changes)
