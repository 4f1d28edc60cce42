"""The demo world: the simulated market, every loopback fake, one simulated clock.

``dexscan scan --demo`` runs the **real** scanner (real clients, HTTP layer, RPC pool, store, alert
outbox) against this world; only the base URLs differ. The tests build the same world in-process.

Where the clock starts matters for a demo that must show something within a minute: the simulator
plants three events in every 4H candle of its live period (pumps, fizzles, rugs; some on tokens
that fail the gates), and :func:`choose_start` positions the clock a few simulated minutes before
the planted ignition of a *gate-passing* pump (on a pool with the history for an ATR ladder) with
the most other events in the hour around it, so
the first signal arrives after about ``lead_s`` simulated seconds (10 real seconds at speed 60). A
restarted demo on the same database resumes where the last run stopped (``start_at``), because the
simulated market is a pure function of its seed and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import SecretStr

from dexscan.chain.events.codec import b58encode
from dexscan.clock import LoopClock
from dexscan.config import Settings
from dexscan.demo.chain_swaps import (
    DLMM_EVENT_AUTHORITY,
    SLOT_EPOCH,
    SLOT_S,
    SimPoolLaunch,
    dlmm_inner_instructions,
    dlmm_swap_event,
    launch_logs,
    raydium_init_transaction,
    swap_logs,
    swap_program,
)
from dexscan.demo.market_sim import CANDLE_S, SOL_USD, USDC_USD, MarketSim, PlantedEvent, SimConfig
from dexscan.demo.servers.fake_chain import FakeChain
from dexscan.demo.servers.market import MarketFakes
from dexscan.demo.servers.rpc import RpcFakeServer
from dexscan.demo.servers.rpc_ws import RpcWsFake
from dexscan.demo.servers.telegram import DEMO_CHAT, FakeTelegram
from dexscan.domain import SOL_MINT, USD1_MINT, USDC_MINT

#: The largest amount a u64 field of an event can state (pool launch reserves are capped at it).
U64_MAX = 2**64 - 1
#: Simulated seconds between the clock's start and the first planted ignition: enough for the
#: first discovery, the gates and the history of the universe (about 2 simulated minutes at 40 tokens).
DEFAULT_LEAD_S = 600
#: The hour after the start in which other planted events count toward choosing it.
_SHOWCASE_S = 3600
#: History a showcase pump's pool needs before its ignition for the alert to carry an ATR ladder
#: (15 completed 1H candles, SPEC §6), plus an hour of margin.
LADDER_HISTORY_S = 16 * 3600


#: Simulated seconds between two publications of the chain stream: each carries the swaps whose block
#: time fell in the slice before it (the stream's latency is at most this, as a node's is a few slots).
STREAM_SLICE_S = 2.0
#: ``archive_history``: one failed attempt (slippage) before every this-many-th historical swap.
FAILED_EVERY = 7
#: USD value and decimals of the quotes the simulated main pools use.
_QUOTE_USD = {SOL_MINT: (SOL_USD, 9), USDC_MINT: (USDC_USD, 6), USD1_MINT: (USDC_USD, 6)}


#: The demo's market: 60 tokens (33 pass the gates; the others fail them for every reason:
#: liquidity, volume, both, mint or freeze authority, a transfer fee, a rug), five planted events per
#: live 4H candle (one is always a gate-passing pump), so the first simulated hour already shows
#: pumps, fizzles and unsafe tokens being ignored. ``scripts/bench_demo_realism.py --cpu-seconds 40
#: --cpu-tokens 60,100`` measured 0.12 and 0.16 CPU seconds per real second on the 2-core test box,
#: but at 100 the 20-SIGKILL run (tests/e2e/test_sigkill_runs.py) missed its 300 s drain on a busy box.
DEMO_TOKENS = 60
DEMO_EVENTS_PER_CANDLE = 5


def demo_sim_config(seed: int = 7, n_tokens: int = DEMO_TOKENS) -> SimConfig:
    """The simulated market ``dexscan scan --demo`` runs on (``n_tokens`` to measure other sizes)."""
    return SimConfig(seed=seed, n_tokens=n_tokens, live_events_per_candle=DEMO_EVENTS_PER_CANDLE)


def choose_start(events: Sequence[PlantedEvent], live_start: int, lead_s: float = DEFAULT_LEAD_S,
                 pool_open: Mapping[str, int] | None = None) -> float:
    """A clock start ``lead_s`` before the ignition of an eligible pump, where the most happens.

    Candidates are the eligible live pumps (with ``pool_open``, pool -> first bar: only those whose
    pool traded ``LADDER_HISTORY_S`` before the ignition, so the first alert carries levels; a
    token that just migrated to its pool does not); each scores the number of distinct event kinds (pump,
    fizzle, rug, pump of an unsafe token) planted in the following hour, then how soon its 4H
    candle closes (the confirmation), then the number of events; the earliest best candidate wins.
    Without an eligible pump: the live start.
    """
    pumps = [e for e in events if e.live and e.eligible and e.kind == "pump"
             and (pool_open is None or pool_open[e.pool] <= e.ignite_ts - LADDER_HISTORY_S)]
    if not pumps:
        return float(live_start)

    def score(p: PlantedEvent) -> tuple[int, int, int, int]:
        start = p.ignite_ts - lead_s
        window = [e for e in events if start <= e.ignite_ts < start + _SHOWCASE_S]
        kinds = {e.kind if e.eligible else f"unsafe-{e.kind}" for e in window}
        confirm_in_h = int((p.candle_ts + CANDLE_S - start) // 3600)
        return (len(kinds), -confirm_in_h, len(window), -p.ignite_ts)

    best = max(pumps, key=score)
    return float(max(live_start, best.ignite_ts - lead_s))


class DemoWorld:
    """Async context manager: ``async with DemoWorld(seed, n_tokens) as world: world.apply(settings)``.

    Starts a :class:`MarketSim`, a :class:`LoopClock` (simulated epoch time following the running
    loop's clock, which is virtual on a :class:`~dexscan.vtime.VirtualTimeLoop`; starting at
    ``start_at`` or at :func:`choose_start`), the market-data fakes, a LiteSVM chain
    holding every simulated mint behind ``rpc_endpoints`` RPC servers (the first, ``rpc-1``, plays
    the public endpoint unless ``public_rpc`` is false: see :mod:`dexscan.demo.servers.rpc`), the Telegram fake when
    ``telegram`` is true (keeping its state in ``telegram_journal`` when given), and with ``stream``
    (the default) the chain stream: an :class:`RpcWsFake` to which every ``STREAM_SLICE_S`` the
    swaps of each subscribed pool (:meth:`MarketSim.swaps`) are published, encoded with the real
    event layouts (:mod:`dexscan.demo.chain_swaps`), so the scanner prices its tokens from the chain,
    followed by a ``slotNotification`` of the slice's last slot (the heartbeat of a live chain).
    """

    def __init__(
        self,
        seed: int = 7,
        n_tokens: int = 40,
        *,
        start_at: float | None = None,
        lead_s: float = DEFAULT_LEAD_S,
        rpc_endpoints: int = 3,
        telegram: bool = False,
        chat_ids: Sequence[int] = (DEMO_CHAT,),
        telegram_journal: str | Path | None = None,
        limits: dict[str, tuple[int, float]] | None = None,
        sim_config: SimConfig | None = None,
        stream: bool = True,
        public_rpc: bool = True,
    ) -> None:
        if rpc_endpoints < 1:
            raise ValueError("rpc_endpoints must be at least 1")
        self.config = sim_config or SimConfig(seed=seed, n_tokens=n_tokens)
        self.start_at = start_at
        self.lead_s = lead_s
        self.n_rpc = rpc_endpoints
        self.public_rpc = public_rpc
        self.telegram_enabled = telegram
        self.chat_ids = tuple(chat_ids)
        self.telegram_journal = telegram_journal
        self.limits = limits
        self.sim = MarketSim(self.config)
        self.clock: LoopClock | None = None
        self.chain: FakeChain | None = None
        self.market: MarketFakes | None = None
        self.rpc: list[RpcFakeServer] = []
        self.telegram: FakeTelegram | None = None
        self.stream_enabled = stream
        self.chain_ws: RpcWsFake | None = None
        self.swaps_published = 0
        self.launches_published: list[SimPoolLaunch] = []
        self._streamer: asyncio.Task[None] | None = None
        self._streamed_pools: set[str] = set()

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> DemoWorld:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        self.chain = await asyncio.to_thread(FakeChain.from_sim, self.sim)
        start = self.start_at if self.start_at is not None else self.default_start()
        self.clock = LoopClock(start)
        self.market = MarketFakes(self.sim, self.clock, self.limits)
        await self.market.start()
        for i in range(self.n_rpc):
            server = RpcFakeServer(self.chain, f"rpc-{i + 1}", self.clock,
                                   public_like=None if self.public_rpc else False)
            await server.start()
            self.rpc.append(server)
        if self.telegram_enabled:
            self.telegram = FakeTelegram(clock=self.clock, chats=self.chat_ids, journal=self.telegram_journal)
            await self.telegram.start()
        if self.stream_enabled:
            self.chain_ws = RpcWsFake()
            await self.chain_ws.start()
            self._streamer = asyncio.create_task(self._stream_swaps(), name="demo-chain-stream")

    async def stop(self) -> None:
        if self._streamer is not None:
            self._streamer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._streamer
            self._streamer = None
        if self.chain_ws is not None:
            await self.chain_ws.stop()
            self.chain_ws = None
        if self.telegram is not None:
            await self.telegram.stop()
            self.telegram = None
        for server in self.rpc:
            await server.close()
        self.rpc = []
        if self.market is not None:
            await self.market.stop()
            self.market = None

    # -- what the scanner needs -----------------------------------------------------------------

    def default_start(self) -> float:
        events = self.sim.planted_events(self.sim.live_start, self.sim.live_end)
        pool_open = {e.pool: self.sim.pool(e.pool).bars_from for e in events}
        return choose_start(events, self.sim.live_start, self.lead_s, pool_open)

    def settings_overrides(self) -> dict[str, Any]:
        """Dotted keys pointing every client of the real scanner at this world's servers."""
        if self.market is None:
            raise RuntimeError("DemoWorld is not started")
        overrides: dict[str, Any] = dict(self.market.settings_overrides())
        overrides["rpc.endpoints"] = [s.url for s in self.rpc]
        if self.chain_ws is not None:
            overrides["stream.ws_endpoints"] = [self.chain_ws.url]
        else:
            overrides["stream.enabled"] = False
        if self.telegram is not None:
            overrides["telegram.base_url"] = self.telegram.base_url
            overrides["telegram.chat_ids"] = list(self.chat_ids)
        return overrides

    def apply(self, settings: Settings) -> Settings:
        """``settings`` pointed at this world; secrets replaced by the fakes' (no real key leaks in)."""
        demo = settings.with_overrides(self.settings_overrides())
        secrets = demo.secrets.model_copy(update={
            "telegram_token": SecretStr(self.telegram.token) if self.telegram is not None else None,
            "birdeye_api_key": None,
            "jupiter_api_key": None,
            "rpc_urls": [],
        })
        return demo.model_copy(update={"secrets": secrets})

    def planted_events(self, start: float | None = None, end: float | None = None) -> list[PlantedEvent]:
        """Ground truth of the events planted in ``[start, end)`` (default: the whole live period)."""
        lo = int(start) if start is not None else self.sim.live_start
        hi = int(end) if end is not None else self.sim.live_end
        return self.sim.planted_events(lo, hi)

    # -- the chain stream -----------------------------------------------------------------------

    async def _stream_swaps(self) -> None:
        """Every ``STREAM_SLICE_S``: the swaps of every subscribed pool in the slice just ended, in
        block-time order, as ``logsNotification`` s encoded with the pools' real event layouts."""
        assert self.clock is not None and self.chain_ws is not None
        t = self.clock.now()
        t -= t % STREAM_SLICE_S
        while True:
            end = t + STREAM_SLICE_S
            await self.clock.sleep(end - self.clock.now())
            await self.publish_launches(t, end)
            await self.publish_swaps(t, end)
            await self.chain_ws.publish_slot(int((end - SLOT_EPOCH) / SLOT_S))  # the heartbeat
            t = end

    def launch(self, pool: str, at: float, curve: str | None = None) -> SimPoolLaunch:
        """The opening of the simulated ``pool`` at ``at`` as the chain states it (a graduation from
        ``curve`` when given): its initial liquidity split half and half, in raw units."""
        sim = self.sim
        p = sim.pool(pool)
        tok = sim.token(p.base_mint)
        quote_usd, quote_decimals = _QUOTE_USD.get(p.quote_mint, (SOL_USD, 9))
        price = sim.token_price(tok.mint, max(at, tok.listed_at)) or tok.initial_price
        half = p.liquidity_usd / 2

        def raw(amount: float) -> int:  # a u64 on chain: a simulated price far below any real one is capped
            return min(U64_MAX, max(1, round(amount)))

        return SimPoolLaunch(int(at), "graduated" if curve is not None else "pool_created", pool, tok.mint,
                             p.quote_mint, curve, tok.dev, raw(half / price * 10 ** tok.decimals),
                             raw(half / quote_usd * 10 ** quote_decimals), tok.decimals, quote_decimals)

    async def publish_launch(self, launch: SimPoolLaunch) -> int:
        """Publish one pool launch (its transaction's logs) to the subscriptions it mentions."""
        assert self.chain_ws is not None
        logs, mentions = launch_logs(launch)
        if self.chain is not None:
            self.chain.archive.record(launch.signature, launch.slot, launch.ts, logs, mentions)
        self.launches_published.append(launch)
        return await self.chain_ws.publish(launch.signature, launch.slot, logs, mentions)

    async def publish_raydium_init(self, launch: SimPoolLaunch) -> int:
        """Publish a Raydium AMM v4 pool's creation: its logs (the ``ray_log`` ``Init``, naming no pool
        nor mint) to the subscriptions it mentions, its ``initialize2`` to the archive, where
        ``getTransaction`` finds it. The simulator opens no v4 pool (its Raydium pools are CPMM and CLMM):
        tests publish one."""
        assert self.chain_ws is not None
        logs, keys, instructions = raydium_init_transaction(launch)
        if self.chain is not None:
            self.chain.archive.record(launch.signature, launch.slot, launch.ts, logs, keys, (), instructions)
        self.launches_published.append(launch)
        return await self.chain_ws.publish(launch.signature, launch.slot, logs, keys)

    async def publish_launches(self, start: float, end: float) -> int:
        """The PumpSwap pools that open in ``[start, end)`` (graduations from a bonding curve among
        them), as their creation transactions: the scanner discovers them from the stream."""
        if self.chain_ws is None:
            return 0
        sent = 0
        for pool, curve in self.sim.pool_launches(start, end):
            if pool.dex_id == "pumpswap":  # the other DEXes' pool creations are not decoded
                sent += await self.publish_launch(self.launch(pool.address, pool.created_at,
                                                              None if curve is None else curve.address))
        return sent

    def encoded_swaps(self, pool: str, start: float, end: float
                      ) -> list[tuple[float, str, int, list[str], str, str, str, list[dict[str, object]]]]:
        """The swaps of ``pool`` in ``[start, end)`` as the chain states them: (block time, signature,
        slot, logs, pool, signer, program, DLMM inner instructions); none for a pool the stream
        cannot carry or quoted in something else than SOL/USDC/USD1."""
        sim = self.sim
        p = sim.pool(pool)
        quote = _QUOTE_USD.get(p.quote_mint)
        if quote is None:
            return []
        swaps = sim.swaps(pool, start, end)
        if not swaps:  # most pools in most stream slices
            return []
        tok = sim.token(p.base_mint)
        program = swap_program(p.dex_id, p.labels)
        out = []
        for swap in swaps:
            logs = swap_logs(p.dex_id, p.labels, swap, tok.mint, p.quote_mint, tok.decimals, quote[0], quote[1])
            if logs is not None:
                inner = [] if p.dex_id != "meteora" else dlmm_inner_instructions(
                    dlmm_swap_event(swap, tok.mint, p.quote_mint, tok.decimals, quote[0], quote[1]))
                out.append((swap.ts, swap.signature, swap.slot, logs, pool, swap.signer, program, inner))
        return out

    def archive_history(self, pool: str, start: float, end: float, failed_every: int = FAILED_EVERY) -> int:
        """Archive the swaps of ``pool`` in ``[start, end)`` for the RPC fake's history methods
        (``backfill --source chain``), and before every ``failed_every``-th one a failed attempt of
        the same swap (same logs, ``err`` set: it must not count); how many swaps were archived."""
        if self.chain is None or not self.sim.has_pool(pool):
            return 0
        archive = self.chain.archive
        swaps = self.encoded_swaps(pool, start, end)
        for i, (ts, sig, slot, logs, pool_, signer, program, inner) in enumerate(swaps):
            accounts = [signer, pool_, program, DLMM_EVENT_AUTHORITY] if inner else [signer, pool_]
            if failed_every > 0 and i % failed_every == 0:
                failed_sig = b58encode(hashlib.sha256(b"failed:" + sig.encode()).digest() * 2)
                archive.record_history(failed_sig, slot, int(ts), logs, accounts, inner, failed=True)
            archive.record_history(sig, slot, int(ts), logs, accounts, inner)
        return len(swaps)

    def serve_chain_history(self, start: float, end: float) -> None:
        """Let the RPC fake answer ``getSignaturesForAddress`` / ``getTransaction`` for every pool's
        swaps of ``[start, end)`` (archived at the pool's first lookup, :meth:`archive_history`)."""
        assert self.chain is not None, "DemoWorld is not started"

        def load(address: str) -> None:
            self.archive_history(address, start, end)

        self.chain.archive.history_loader = load

    async def publish_swaps(self, start: float, end: float) -> int:
        """Publish the swaps of ``[start, end)`` of the pools someone subscribed to (and archive those
        of every pool ever subscribed, for the RPC fake's gap-fill methods); how many were archived."""
        ws = self.chain_ws
        if ws is None:
            return 0
        sim = self.sim
        self._streamed_pools |= {pk for client in ws.clients for pk in client.subs.values()}
        batch = []
        for pool in sorted(self._streamed_pools):  # once subscribed, archived even while nobody listens
            if sim.has_pool(pool) and sim.pool_open(pool, start):
                batch += self.encoded_swaps(pool, start, end)
        batch.sort(key=lambda b: (b[0], b[1]))
        for ts, sig, slot, logs, pool, signer, program, inner in batch:
            if self.chain is not None:  # for getSignaturesForAddress / getTransaction (gap fills, DLMM swaps)
                accounts = [signer, pool, program, DLMM_EVENT_AUTHORITY] if inner else [signer, pool]
                self.chain.archive.record(sig, slot, int(ts), logs, accounts, inner)
            await ws.publish(sig, slot, logs, [pool, program])
        self.swaps_published += len(batch)
        return len(batch)
