"""One harness for the fault-injection suite: the real scanner on the demo world, faults on cue.

:func:`run_scanner` starts a :class:`~dexscan.demo.world.DemoWorld` (simulated market, market-data
fakes, LiteSVM-backed RPC fakes, optionally the Bot API fake) on a fast :class:`SimClock`, runs the
real ``dexscan scan`` wiring (:func:`dexscan.engine.scan`: store, HTTP layer, RPC pool, universe,
detector, outbox sender, local API) in-process, and runs a *script* beside it: a coroutine that
waits for moments of simulated time (:meth:`Run.at`) or for conditions (:meth:`Run.until`) and flips
the fakes' fault switches. When the script returns, the scanner is stopped the way SIGTERM stops it,
and everything the assertions need (the store's rows, the HTTP layer's and RPC pool's counters, the
``/metrics`` page, the fakes' own logs) is captured while the store and clients are still open.

The assertions of the suite are about data, so :class:`Result` carries data, and the ground truth
comes from the simulator (:meth:`Result.expected_ignitions`, :meth:`Result.unsafe`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from dexscan.config import load_settings
from dexscan.demo.market_sim import PlantedEvent
from dexscan.demo.servers.market import DEFAULT_LIMITS, FakeStats
from dexscan.demo.servers.rpc import RpcServerStats
from dexscan.demo.servers.telegram import SentMessage
from dexscan.demo.world import DemoWorld, demo_sim_config
from dexscan.domain import Outcome, Signal
from dexscan.engine import Engine, ScanOptions, preload, scan
from dexscan.sources.http import ProviderStats
from tests.e2e.test_budget import max_in_window

#: Simulated seconds per real second. The demo world starts its clock 600 simulated seconds before
#: the first planted ignition of a gate-passing pump: one real second at this speed.
SPEED = 600.0
#: Real seconds any one scripted run may take before the test fails instead of hanging.
RUN_LIMIT_S = 60.0
#: The planted ignition the demo world's start is chosen for comes this long after the start.
LEAD_S = 600
#: Simulated seconds between a planted ignition and the latest moment its signal may be stored:
#: the cold refresh interval (120 s) and some slack.
DETECT_S = 150

Script = Callable[["Run"], Awaitable[None]]


@dataclass
class Run:
    """What a script sees while the scanner runs."""

    world: DemoWorld
    engine: Engine
    started: float  # simulated time at the world's start
    stop: asyncio.Event
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def now(self) -> float:
        assert self.world.clock is not None
        return self.world.clock.now()

    def since_start(self) -> float:
        return self.now - self.started

    async def at(self, offset_s: float) -> None:
        """Wait until ``offset_s`` simulated seconds after the world's start."""
        assert self.world.clock is not None
        while (left := offset_s - self.since_start()) > 0:
            await self.world.clock.sleep(left)

    async def until(self, predicate: Callable[[], bool], limit_s: float = 30.0, what: str = "condition") -> None:
        """Wait (real time, at most ``limit_s``) until ``predicate()`` holds."""
        deadline = time.monotonic() + limit_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not reached within {limit_s:g} real seconds")
            await asyncio.sleep(0.01)

    async def until_async(self, predicate: Callable[[], Awaitable[bool]], limit_s: float = 30.0,
                          what: str = "condition") -> None:
        deadline = time.monotonic() + limit_s
        while not await predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not reached within {limit_s:g} real seconds")
            await asyncio.sleep(0.02)

    def http_stats(self, provider: str) -> ProviderStats:
        stats: dict[str, ProviderStats] = self.engine.http.stats()
        return stats[provider]

    def fake_stats(self, provider: str) -> FakeStats:
        assert self.world.market is not None
        return self.world.market.stats(provider)

    def inject(self, provider: str, kind: str, count: int = 1, seconds: float = 0.0,
               retry_after: float | None = None) -> None:
        assert self.world.market is not None
        self.world.market.faults.inject(provider, kind, count, seconds, retry_after)

    def pending_faults(self, provider: str) -> list[tuple[str, int]]:
        assert self.world.market is not None
        return self.world.market.faults.pending(provider)

    async def verdicts(self) -> list[tuple[str, str, int, str]]:
        """Every stored gate verdict as (mint, gate, checked_at, status)."""
        return await _verdict_rows(self.engine.store)

    async def outbox(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self.engine.store.outbox_rows()
        return rows

    def members(self) -> set[str]:
        return {v.mint for v in self.engine.tokens.values() if v.member}

    def warmed_up(self) -> bool:
        """Universe gated and every member's history bootstrapped."""
        views = [v for v in self.engine.tokens.values() if v.member]
        return bool(views) and all(v.history_done for v in views)


@dataclass
class Result:
    """Everything a run left behind, captured before the store and clients closed."""

    world: DemoWorld
    started: float
    ended: float
    notes: dict[str, Any]
    signals: list[tuple[int, Signal, Outcome | None]]
    outbox: list[dict[str, Any]]
    verdicts: list[tuple[str, str, int, str]]  # (mint, gate, checked_at, status)
    members: set[str]
    warmed_up_all: bool  # every member's history bootstrapped when the run ended
    http: dict[str, ProviderStats]
    rpc: list[Any]  # dexscan.chain.rpc.EndpointState
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    counters: dict[str, int]
    duplicates: int
    fakes: dict[str, FakeStats]
    planted: list[PlantedEvent]
    telegram_sent: list[SentMessage]  # the bot's messages in the demo chat, oldest first
    rpc_fakes: list[RpcServerStats]  # what each RPC fake saw, in endpoint order

    # -- ground truth ---------------------------------------------------------------------------

    def unsafe(self) -> set[str]:
        """Mints the on-chain gates must refuse (mint or freeze authority kept, or a high fee)."""
        return {t.mint for t in self.world.sim.tokens if not t.safe}

    def ineligible(self) -> set[str]:
        return self.unsafe() | {t.mint for t in self.world.sim.tokens if t.kind == "thin"}

    def expected_ignitions(self, after: float, before: float | None = None) -> set[tuple[str, int]]:
        """(mint, 4H candle) of every planted ignition of an eligible token in ``[after, before]``
        (offsets from the start; ``before`` defaults to the end of the run less ``DETECT_S``)."""
        hi = (self.ended - self.started - DETECT_S) if before is None else before
        return {(e.mint, e.candle_ts) for e in self.planted
                if e.eligible and e.kind in ("pump", "fizzle") and after <= e.ignite_ts - self.started <= hi}

    def eligible_ignitions(self) -> set[tuple[str, int]]:
        return {(e.mint, e.candle_ts) for e in self.planted if e.eligible and e.kind in ("pump", "fizzle")}

    def ignitions(self) -> set[tuple[str, int]]:
        return {(s.mint, s.candle_ts) for _, s, _ in self.signals if s.strategy == "ignition"}

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics[(name, tuple(sorted(labels.items())))]

    def peak_over_limit(self) -> dict[str, tuple[int, int]]:
        """Buckets where the fakes saw more requests in one window than the documented limit."""
        over: dict[str, tuple[int, int]] = {}
        for key, (limit, window_s) in DEFAULT_LIMITS.items():
            provider, _, bucket = key.partition(".")
            times = [r.t for r in self.fakes[provider].log if r.bucket == (bucket or "default")]
            peak = max_in_window(times, window_s)
            if peak > limit:
                over[key] = (peak, limit)
        return over


async def _verdict_rows(store: Any) -> list[tuple[str, str, int, str]]:
    rows = await store.db.execute_fetchall(
        "SELECT mint, gate, checked_at, status FROM gate_verdicts ORDER BY checked_at, mint, gate")
    return [(str(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]


def _parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return out


async def run_scanner(
    tmp_path: Path,
    script: Script,
    *,
    speed: float = SPEED,
    telegram: bool = False,
    rpc_endpoints: int = 3,
    overrides: dict[str, Any] | None = None,
    before_start: Callable[[DemoWorld], Awaitable[None]] | None = None,
    db: Path | None = None,
    run_limit_s: float = RUN_LIMIT_S,
) -> Result:
    """Run the scanner on a fresh demo world with ``script`` beside it; return what it left behind.

    ``before_start`` may flip fault switches before the scanner's first request. The script's
    exceptions (failed waits) propagate after the scanner has been stopped.
    """
    opts = ScanOptions(demo=True, speed=speed, dashboard=False, quiet=True, serve="127.0.0.1:0")
    preload(opts, telegram=telegram)
    db = db or tmp_path / "faults.db"
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    captured: dict[str, Any] = {}
    async with DemoWorld(speed=speed, rpc_endpoints=rpc_endpoints, telegram=telegram,
                         sim_config=demo_sim_config()) as world:
        assert world.clock is not None
        started = world.clock.now()
        settings = world.apply(load_settings()).with_overrides(
            {"app.log_file": str(tmp_path / "scan.log"), **(overrides or {})})
        if before_start is not None:
            await before_start(world)
        box: dict[str, Any] = {}
        engine_ready = asyncio.Event()

        def ready(engine: Engine) -> None:
            run = engine.run

            async def run_capturing_stop(stop: asyncio.Event, extra: Any = ()) -> None:
                box["stop"] = stop
                engine_ready.set()
                await run(stop, extra)

            engine.run = run_capturing_stop  # type: ignore[method-assign]
            box["engine"] = engine

        async def stopped(engine: Engine) -> None:
            captured["signals"] = await engine.store.signals()
            captured["outbox"] = await engine.store.outbox_rows()
            captured["verdicts"] = await _verdict_rows(engine.store)
            captured["members"] = {v.mint for v in engine.tokens.values() if v.member}
            captured["warmed_up_all"] = all(v.history_done for v in engine.tokens.values() if v.member)
            captured["http"] = engine.http.stats()
            captured["rpc"] = engine.rpc.state() if engine.rpc is not None else []
            captured["counters"] = dict(engine.status().counters)
            captured["duplicates"] = engine.counters.duplicates
            assert engine.service is not None
            async with aiohttp.ClientSession() as http, http.get(f"{engine.service.url}/metrics") as resp:
                assert resp.status == 200
                captured["metrics"] = _parse_metrics(await resp.text())

        async def drive() -> None:
            await asyncio.wait_for(engine_ready.wait(), 30.0)
            run = Run(world, box["engine"], started, box["stop"])
            box["run"] = run
            try:
                await script(run)
            finally:
                run.stop.set()

        scanner = asyncio.create_task(scan(settings, opts, world.clock, db, mode="demo", ready=ready,
                                           stopped=stopped))
        driver = asyncio.create_task(drive())
        try:
            done, _ = await asyncio.wait({scanner, driver}, timeout=run_limit_s,
                                         return_when=asyncio.FIRST_EXCEPTION)
            if driver not in done:
                if scanner in done:  # the scanner ended on its own: that is the failure
                    driver.cancel()
                    await asyncio.gather(driver, return_exceptions=True)
                    scanner.result()
                    raise AssertionError("the scanner stopped before the script ended")
                raise AssertionError(f"the scripted run did not finish within {run_limit_s:g} real seconds")
            assert await asyncio.wait_for(scanner, 30.0) == 0
            driver.result()
        finally:
            for task in (driver, scanner):
                if not task.done():
                    task.cancel()
            await asyncio.gather(driver, scanner, return_exceptions=True)
            root.handlers[:] = handlers
            root.setLevel(level)
        ended = world.clock.now()
        assert world.market is not None
        fakes = {p: world.market.stats(p) for p in ("jupiter", "dexscreener", "geckoterminal", "birdeye")}
        planted = [e for e in world.planted_events(started - 14_400, ended) if started <= e.ignite_ts < ended]
        sent = world.telegram.sent(world.chat_ids[0]) if world.telegram is not None else []
        rpc_fakes = [server.stats for server in world.rpc]
        run = box["run"]
    return Result(world=world, started=started, ended=ended, notes=run.notes, fakes=fakes, planted=planted,
                  telegram_sent=sent, rpc_fakes=rpc_fakes, **captured)


def keys(signals: Iterable[tuple[int, Signal, Outcome | None]]) -> list[tuple[str, str, int]]:
    return [s.key for _, s, _ in signals]
