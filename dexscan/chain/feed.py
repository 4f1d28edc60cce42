"""The on-chain trade feed of the live scanner: which pools stream, and their swaps as trades.

The engine tells :class:`ChainFeed` which pool each tracked token trades on (its pinned main pool,
as DexScreener lists it); the feed subscribes to that pool's logs (:class:`~dexscan.chain.stream.LogStream`,
``mentions`` the pool: every swap of it mentions it), keeps its :class:`~dexscan.chain.trades.PoolMints`
(the token's decimals from the mint account, the quote's from the known quotes) and turns the
decoded swaps into :class:`~dexscan.chain.trades.Trade` s, each once (a ``logsNotification`` states no
block time: unless the event has its own timestamp, as pump.fun's and PumpSwap's do, the arrival
time stands for it, at most a few hundred milliseconds late, stamped by the stream on receipt), with USD prices from
:class:`~dexscan.chain.trades.SolUsd` (Jupiter Price v3 every ``sol_refresh_s``, one budgeted
request; a streamed SOL/USDC pool's trades when there is one).

A token is **streamed** while its pool is subscribed on a connection that is up and a notification
arrived within ``silence_timeout_s`` (the slot heartbeat counts: a quiet market is not a dead
stream); then the engine polls it only for liquidity and stats (``stream.stats_refresh_s``).
Otherwise (no WebSocket endpoint reachable, refused, silent) it is polled as before, and each switch
is counted (``fallbacks``, ``resumed``). Pools whose swaps never reach the logs (Meteora DLMM
emits its Swap only by self-CPI) are streamed through ``getTransaction``: each notification of such
a pool is fetched (json, inner instructions) and its Swap decoded, at most
``stream.dlmm_transactions_per_minute`` (through the RPC pool and its budgets; the rest are counted,
``dlmm_skipped_budget``, and those trades stay unobserved: the pool's polls go on). Bonding curves
are not streamed.

**Discovery in real time**: the programs of ``stream.discovery_programs`` are subscribed too, and
:meth:`ChainFeed.discoveries` turns their new-pool and graduation events into candidates for the
universe's gates (the engine checks them at once, in the on-demand rounds ``/watch`` uses, at most
``stream.discovery_max_per_round`` per round; the rest wait, due, for the next round): a graduation
(pump.fun ``CompleteEvent`` / ``CompletePumpAmmMigrationEvent``) and a pool creation (PumpSwap
``CreatePoolEvent``, Raydium v4 ``Init``). A pump.fun ``CreateEvent`` is counted, not gated: a token
on its bonding curve cannot pass the liquidity gate, and its graduation is streamed. A Raydium v4
``Init`` in logs names neither pool nor mint: its transaction is fetched (``getTransaction``, at most
``stream.raydium_init_transactions_per_minute``, the same budgeted fetch as DLMM swaps) and its
``initialize2`` instruction (top-level or inner) names them (amm at account 4, coin and pc mints at 8
and 9): the non-quote mint goes to the gates with its pool. Counted per outcome:
``raydium_init_transactions`` (fetched), ``raydium_init_skipped_budget``, ``raydium_init_no_initialize2``,
``raydium_init_no_quote`` (neither mint a known quote), ``raydium_init_failed_tx``,
``raydium_init_fetch_errors``, ``raydium_init_not_found``. Other events that name no mint are counted
(``pool_events_without_mint``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from dexscan.chain.events import PROGRAM_IDS, Decoded, Event, PoolEvent, Swap
from dexscan.chain.stream import LogStream, StreamOptions, from_settings
from dexscan.chain.trades import KNOWN_DECIMALS, PoolMints, SolUsd, Trade, to_trade
from dexscan.domain import SOL_MINT, DiscoveredToken, PairSnapshot

if TYPE_CHECKING:
    from dexscan.clock import Clock
    from dexscan.config import Settings

log = logging.getLogger(__name__)

#: Trades remembered to drop a second copy of one (a gap fill overlapping the stream, a repeat).
TRADE_DEDUPE = 50_000
#: Decoded events taken from the stream's queue per engine step.
BATCH = 512


def program_of(pair: PairSnapshot) -> str | None:
    """The DEX program of a DexScreener pair (``dexId`` + labels), None when dexscan cannot stream it.

    Raydium's pairs carry ``CLMM`` / ``CPMM`` labels (none: AMM v4); Orca's are Whirlpools; Meteora's
    ``DLMM`` pairs are DLMM (their swaps need a ``getTransaction`` each); DAMM and others are not
    decoded (None).
    """
    labels = {label.upper() for label in pair.labels}
    dex = pair.dex_id
    if dex == "raydium":
        if "CLMM" in labels:
            return "raydium_clmm"
        if "CPMM" in labels:
            return "raydium_cpmm"
        return "raydium_amm_v4"
    if dex == "orca":
        return "orca_whirlpool"
    if dex == "pumpswap":
        return "pumpswap"
    if dex == "meteora" and "DLMM" in labels:
        return "meteora_dlmm"
    return None


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """What the dashboard shows of the stream: one compact cell."""

    state: str  # "stream" | "polling" | "off"
    pools: int  # pools subscribed
    streamed: int  # tokens currently fed by the stream
    trades_per_s: float
    lag_s: float | None  # clock time minus the newest trade's block time
    reconnects: int
    dropped: int  # events lost (queue full) and swaps of watched pools refused (``rejected`` says why);
    # swaps of other pools in the same transaction (a route) are not drops

    def cell(self) -> str:
        if self.state == "off":
            return "stream off"
        lag = "" if self.lag_s is None else f" lag {self.lag_s:.0f}s"
        return (f"{self.state} {self.streamed}/{self.pools} pools · {self.trades_per_s:.1f} tr/s{lag} · "
                f"rc {self.reconnects} · drop {self.dropped}")


@dataclass(slots=True)
class FetchBudget:
    """``getTransaction`` s of one kind allowed per sliding minute (``per_minute``; 0: none)."""

    per_minute: int
    fetched_at: deque[float] = field(default_factory=deque)  # clock times of the last minute's fetches
    waiting: int = 0  # requests queued, not yet fetched

    def take(self, now: float) -> bool:
        """Spend one fetch at ``now``; False when the minute's budget is spent."""
        while self.fetched_at and now - self.fetched_at[0] >= 60.0:
            self.fetched_at.popleft()
        if len(self.fetched_at) >= self.per_minute:
            return False
        self.fetched_at.append(now)
        return True


class ChainFeed:
    """Stream subscriptions of the tracked tokens' pools; decoded swaps -> trades."""

    def __init__(self, endpoints: Sequence[str], options: StreamOptions, clock: Clock, *, inspector: Any = None,
                 queue_size: int = 10_000, stats_refresh_s: float = 300.0, sol_refresh_s: float = 60.0,
                 discovery_programs: Sequence[str] = (), dlmm_transactions_per_minute: int = 0,
                 raydium_init_transactions_per_minute: int = 0) -> None:
        self.clock = clock
        self.options = options
        self.inspector = inspector
        self.stats_refresh_s = stats_refresh_s
        self.sol_refresh_s = sol_refresh_s
        self.queue: asyncio.Queue[Event] = asyncio.Queue(queue_size)
        self.discovery_programs = [PROGRAM_IDS[name] for name in discovery_programs]
        self.stream = LogStream(endpoints, self.discovery_programs, queue=self.queue, options=options, now=clock.now,
                                on_fetch=self._fetch_later)
        #: per kind of fetched transaction: "dlmm" (a DLMM pool's swaps), "raydium_init" (a new v4 pool)
        self._budgets = {"dlmm": FetchBudget(dlmm_transactions_per_minute),
                         "raydium_init": FetchBudget(raydium_init_transactions_per_minute)}
        self._to_fetch: deque[tuple[str, str, str | None]] = deque()  # (kind, signature, pool) for getTransaction
        self._fetch_wake = asyncio.Event()
        self.pools: dict[str, PoolMints] = {}
        self.pool_of: dict[str, str] = {}  # mint -> pool
        self._unstreamable: set[str] = set()
        self._last_signature: dict[str, str] = {}  # pool -> the newest transaction the stream delivered
        self._connects_seen = 0
        self.sol = SolUsd()
        self.counts: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._heard = 0  # stream messages counted at the last look
        self._heard_at: float | None = None
        self._was_up = False
        self._rate: deque[float] = deque(maxlen=4096)  # clock times of recent trades
        self.last_block_time: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock, inspector: Any = None) -> ChainFeed | None:
        """The feed ``[stream]`` asks for; None when disabled or no WebSocket endpoint can be named."""
        if not settings.stream.enabled:
            return None
        try:
            endpoints, options = from_settings(settings)
        except ValueError as exc:
            log.warning("stream: no usable WebSocket endpoint (%s); prices come from polling", exc)
            return None
        if not endpoints:
            return None
        st = settings.stream
        return cls(endpoints, options, clock, inspector=inspector, queue_size=st.queue_size,
                   stats_refresh_s=st.stats_refresh_s, sol_refresh_s=st.sol_refresh_s,
                   discovery_programs=st.discovery_programs,
                   dlmm_transactions_per_minute=st.dlmm_transactions_per_minute,
                   raydium_init_transactions_per_minute=st.raydium_init_transactions_per_minute)

    # -- which pools -----------------------------------------------------------------------------

    async def watch(self, mint: str, pair: PairSnapshot) -> bool:
        """Stream ``pair`` (the token's pinned pool); False when it cannot be streamed."""
        if self.pool_of.get(mint) == pair.pair_address:
            return True
        if pair.pair_address in self._unstreamable:
            return False
        program = program_of(pair)
        if program == "meteora_dlmm" and self._budgets["dlmm"].per_minute <= 0:
            program = None
        if program is None:
            self._unstreamable.add(pair.pair_address)
            self.counts["unstreamable_pools"] += 1
            return False
        decimals = await self._decimals(mint)
        quote_decimals = KNOWN_DECIMALS.get(pair.quote_mint)
        if quote_decimals is None:
            quote_decimals = await self._decimals(pair.quote_mint)
        if decimals is None or quote_decimals is None:
            self.counts["pools_without_decimals"] += 1
            return False
        await self.unwatch(mint)
        pool = PoolMints.of(pair.pair_address, program, mint, pair.quote_mint, decimals, quote_decimals)
        self.pools[pool.pool] = pool
        self.pool_of[mint] = pool.pool
        if program == "meteora_dlmm":
            self.stream.fetch_pools.add(pool.pool)
        await self.stream.watch(pool.pool)
        return True

    async def unwatch(self, mint: str) -> None:
        pool = self.pool_of.pop(mint, None)
        if pool is not None:
            self.pools.pop(pool, None)
            self._last_signature.pop(pool, None)
            self.stream.fetch_pools.discard(pool)
            await self.stream.unwatch(pool)

    async def _decimals(self, mint: str) -> int | None:
        if self.inspector is None:
            return None
        facts = (await self.inspector.inspect([mint], holders=False)).get(mint)
        return None if facts is None or facts.read_error else facts.decimals

    # -- health ------------------------------------------------------------------------------------

    def up(self) -> bool:
        """A connection is up and a notification arrived within the silence timeout: a slot heartbeat
        (``slotNotification``, whether or not anything traded) or a log notification. Answers to our
        own subscribe requests do not count: a silent provider acknowledges and never notifies; the
        first connection counts as a notification, so a new stream is up until it proves silent."""
        now = self.clock.now()
        counts = self.stream.stats.counts
        heard = counts["notifications"] + counts["slot_notifications"]
        connected = any(c.ws is not None for c in self.stream.connections)
        if heard != self._heard:
            self._heard, self._heard_at = heard, now
        elif self._heard_at is None and connected:
            # a fresh stream has the silence timeout for its first notification: polls pricing the
            # pools it just subscribed would mix poll-built and trade-built bars (issue 13 point 6)
            self._heard_at = now
        up = connected and self._heard_at is not None and now - self._heard_at <= self.options.silence_timeout_s
        if up != self._was_up:
            self.counts["resumed" if up else "fallbacks"] += 1
            log.info("stream %s", "up: streamed pools are polled for stats only" if up else
                     "down: every token is polled for prices until it is back")
            self._was_up = up
        return up

    def streaming(self, mint: str) -> bool:
        return mint in self.pool_of and self.up()

    def status(self) -> FeedStatus:
        now = self.clock.now()
        up = self.up()
        recent = sum(1 for t in self._rate if now - t <= 60.0)
        lag = None if self.last_block_time is None else max(0.0, now - self.last_block_time)
        c = self.stream.stats.counts
        return FeedStatus("stream" if up else "polling", len(self.pools), len(self.pool_of) if up else 0,
                          recent / 60.0, lag, c["reconnects"],
                          c["dropped"] + sum(n for why, n in self.rejected.items() if why != "unknown_pool"))

    # -- events -> trades ------------------------------------------------------------------------

    def remember(self, keys: Iterable[tuple[str, int]]) -> None:
        """Trades judged before (the tape a restarted scanner resumed from): a copy is a duplicate."""
        for key in keys:
            self._seen[key] = None
            if len(self._seen) > TRADE_DEDUPE:
                self._seen.popitem(last=False)

    async def next_events(self) -> list[Event]:
        """Wait for decoded events; up to :data:`BATCH` of them."""
        out = [await self.queue.get()]
        while len(out) < BATCH and not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out

    def trades(self, events: Sequence[Event]) -> list[Trade]:
        """The trades of watched pools among ``events``, each once; the rest counted by reason."""
        now = self.clock.now()
        out: list[Trade] = []
        for ev in events:
            if not isinstance(ev, Swap):
                self.counts["pool_events"] += 1
                continue
            if ev.block_time is None:  # no stated time, nor stamped on arrival by the stream: now stands for it
                ev = replace(ev, block_time=int(now))
                self.counts["time_from_arrival"] += 1
            pool = self.pools.get(ev.pool) if ev.pool is not None else None
            got = to_trade(ev, pool, self.sol.quote_usd(pool.quote_mint, now) if pool is not None else None)
            if isinstance(got, str):
                self.rejected[got] += 1
                continue
            if got.key in self._seen:
                self.counts["duplicate_trades"] += 1
                continue
            self._seen[got.key] = None
            if len(self._seen) > TRADE_DEDUPE:
                self._seen.popitem(last=False)
            assert pool is not None
            if self.sol.observe_trade(got, pool.quote_mint):
                self.counts["sol_usd_from_stream"] += 1
            if got.price_usd is None:
                self.rejected["no_usd_price"] += 1
                continue
            self.counts["trades"] += 1
            self._last_signature[got.pool] = got.signature
            self._rate.append(now)
            if self.last_block_time is None or got.block_time > self.last_block_time:
                self.last_block_time = got.block_time
            out.append(got)
        return out

    def discoveries(self, events: Sequence[Event]) -> list[DiscoveredToken]:
        """The tokens of the new pools and graduations among ``events``, each once (see the module
        docstring for which events count); the others counted by kind."""
        out: dict[str, DiscoveredToken] = {}
        for ev in events:
            if not isinstance(ev, PoolEvent):
                continue
            if ev.program == "pumpfun" and ev.event == "CreateEvent":
                self.counts["curve_creations"] += 1  # on a bonding curve: gated when it graduates
                continue
            key = (ev.signature, ev.index)
            if ev.mint is None:
                if ev.program == "raydium_amm_v4" and ev.event == "Init" \
                        and self._budgets["raydium_init"].per_minute > 0:
                    # its initialize2 names pool and mints: fetched, and the named Init comes back here
                    if self._first((f"fetch {ev.signature}", ev.index)):
                        self._request("raydium_init", ev.signature, None)
                    continue
                self.counts["pool_events_without_mint"] += 1
                continue
            if not self._first(key):
                continue
            self.counts["graduations" if ev.kind == "graduated" else "pools_created"] += 1
            out.setdefault(ev.mint, DiscoveredToken(ev.mint, f"chain:{ev.program}", ev.symbol, ev.name))
        return list(out.values())

    def _first(self, key: tuple[str, int]) -> bool:
        """Whether ``key`` (a signature and an event index) is new; remembered from now on."""
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > TRADE_DEDUPE:
            self._seen.popitem(last=False)
        return True

    # -- gaps ------------------------------------------------------------------------------------

    def reconnected(self) -> bool:
        """True once after each reconnect of the stream (the moment to fill the gap it left)."""
        connects = self.stream.stats.counts["connects"]
        fresh = connects > self._connects_seen and self._connects_seen > 0
        self._connects_seen = max(self._connects_seen, connects)
        return fresh

    async def fill_gaps(self, rpc: Any, max_transactions: int) -> list[Trade]:
        """The trades the stream missed while it was away: for each watched pool, the transactions
        since the newest one the stream delivered (``getSignaturesForAddress`` back to it, then
        ``getTransaction`` each, oldest first), at most ``max_transactions`` in all. What is not
        fetched stays unobserved (``gap_unfilled``); the bars keep what the polls saw."""
        from solders.pubkey import Pubkey

        from dexscan.chain.events import decode_transaction
        from dexscan.errors import RpcError

        events: list[Event] = []
        budget = max_transactions
        for pool, last in list(self._last_signature.items()):
            if pool not in self.pools:
                continue
            try:
                rows = (await rpc.get_signatures_for_address(Pubkey.from_string(pool), until=last, limit=100)).value
            except RpcError as exc:
                self.counts["gap_fill_errors"] += 1
                log.warning("gap fill of pool %s: %s", pool, exc)
                continue
            for sig, failed, _ in reversed(rows):
                if failed:
                    continue
                if budget <= 0:
                    self.counts["gap_unfilled"] += 1
                    continue
                budget -= 1
                try:
                    tx = (await rpc.get_transaction(sig)).value
                except RpcError as exc:
                    self.counts["gap_fill_errors"] += 1
                    log.warning("gap fill of pool %s, transaction %s: %s", pool, sig[:12], exc)
                    continue
                self.counts["gap_transactions"] += 1
                decoded = decode_transaction(tx)
                for r in decoded.rejections:
                    self.rejected[f"gap_{r.reason}"] += 1
                events.extend(ev if not isinstance(ev, Swap) or ev.pool is not None else replace(ev, pool=pool)
                              for ev in decoded.events)
        trades = self.trades(events)
        self.counts["gap_trades"] += len(trades)
        return trades

    # -- transactions the logs do not tell enough of: getTransaction, budgeted ---------------------
    # (Meteora DLMM swaps, only in a self-CPI; Raydium v4 Init, whose initialize2 names pool and mints)

    def _fetch_later(self, signature: str, pool: str) -> None:
        """The stream's sink for the notified transactions of DLMM pools."""
        self._request("dlmm", signature, pool)

    def _request(self, kind: str, signature: str, pool: str | None) -> None:
        budget = self._budgets[kind]
        if budget.waiting >= budget.per_minute:  # more than a minute's budget waiting: late anyway
            self.counts[f"{kind}_skipped_budget"] += 1
            return
        budget.waiting += 1
        self._to_fetch.append((kind, signature, pool))
        self._fetch_wake.set()

    async def fetch_loop(self, rpc: Any) -> None:
        """``getTransaction`` of each requested transaction, at most ``dlmm_transactions_per_minute``
        (DLMM pools' swaps: they join the stream's queue) and ``raydium_init_transactions_per_minute``
        (Raydium v4 Inits: the ``Init`` with its pool and mints joins the queue, for the gates), each a
        sliding minute. Over a budget a transaction is skipped and counted (``<kind>_skipped_budget``)."""
        from dexscan.chain.events import decode_transaction
        from dexscan.errors import RpcError

        while True:
            await self._fetch_wake.wait()
            self._fetch_wake.clear()
            while self._to_fetch:
                kind, signature, pool = self._to_fetch.popleft()
                budget = self._budgets[kind]
                budget.waiting -= 1
                if not budget.take(self.clock.now()):
                    self.counts[f"{kind}_skipped_budget"] += 1
                    continue
                try:
                    tx = (await rpc.get_transaction(signature)).value
                except RpcError as exc:
                    self.counts[f"{kind}_fetch_errors"] += 1
                    log.warning("%s transaction %s (pool %s): %s", kind, signature[:12], pool, exc)
                    continue
                if tx is None:  # not (yet) served by that endpoint
                    self.counts[f"{kind}_not_found"] += 1
                    continue
                self.counts[f"{kind}_transactions"] += 1
                decoded = decode_transaction(tx)
                if kind == "raydium_init":
                    self._enqueue(self._raydium_init(decoded))
                    continue
                for r in decoded.rejections:
                    self.rejected[f"dlmm_{r.reason}"] += 1
                self._enqueue(ev for ev in decoded.events if isinstance(ev, Swap) and ev.pool == pool)

    def _raydium_init(self, decoded: Decoded) -> list[Event]:
        """The Raydium v4 ``Init`` of a fetched transaction, with the pool and the token its
        ``initialize2`` names; none (counted why) when the transaction failed, has no initialize2, or
        pairs no known quote."""
        if decoded.failed:
            self.counts["raydium_init_failed_tx"] += 1
            return []
        inits = [ev for ev in decoded.events
                 if isinstance(ev, PoolEvent) and ev.program == "raydium_amm_v4" and ev.event == "Init"]
        named = [ev for ev in inits if ev.pool is not None]
        if not named:
            self.counts["raydium_init_no_initialize2"] += 1
            return []
        found = [ev for ev in named if ev.mint is not None]
        if not found:
            self.counts["raydium_init_no_quote"] += 1
        return list(found)

    def _enqueue(self, events: Iterable[Event]) -> None:
        for ev in events:
            try:
                self.queue.put_nowait(ev)
            except asyncio.QueueFull:
                self.stream.stats.counts["dropped"] += 1

    # -- loops -------------------------------------------------------------------------------------

    async def run(self) -> None:
        await self.stream.run()

    async def sol_usd_loop(self, jupiter: Any) -> None:
        """SOL/USD from Jupiter Price v3 every ``sol_refresh_s`` (one request); failures only wait."""
        from dexscan.errors import SourceError

        while True:
            try:
                quotes = await jupiter.prices([SOL_MINT])
            except SourceError as exc:
                self.counts["sol_usd_errors"] += 1
                log.warning("SOL/USD from Jupiter unavailable: %s", exc)
            else:
                q = quotes.get(SOL_MINT)
                if q is not None:
                    self.sol.observe(self.clock.now(), q.usd_price, "jupiter")
            await self.clock.sleep(self.sol_refresh_s)
