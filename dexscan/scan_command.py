"""``dexscan scan``: the command line's options, and the composition root that opens everything
the :class:`~dexscan.engine.Engine` needs (store connections, HTTP layer, RPC pool, mint
inspector, calibrator, detector, universe, chain feed, outputs, local API, Telegram, dashboard),
runs it until stopped (or one cycle), and closes everything.

``--demo`` runs the same scanner on the demo world that the command line hands over
(:class:`~dexscan.demo_mode.DemoLauncher`); without it, a TCP probe (:mod:`dexscan.probe`) first
checks that a market-data source is reachable at all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import math
import signal as os_signal
import sys
import threading
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dexscan.calibrator_loading import calibrator_label, load_calibrator
from dexscan.clock import Clock, RealClock
from dexscan.config import Settings
from dexscan.demo_mode import DemoLauncher, bot_api_journal, demo_db_path
from dexscan.engine import Engine
from dexscan.engine_ports import EventSink
from dexscan.errors import ConfigError, InputError
from dexscan.output import JsonLines, TextLines
from dexscan.probe import unreachable_message, unreachable_sources

if TYPE_CHECKING:
    from dexscan.chain.mint import MintInspector
    from dexscan.store import Store
    from dexscan.universe import DiscoveryClients, Universe

log = logging.getLogger(__name__)

#: The interactive demo's default pace: simulated seconds per real second.
DEMO_SPEED = 60.0


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """What ``dexscan scan`` was asked to do (the command line, validated).

    ``speed``: the demo's pace, simulated seconds per real second at most (``math.inf``: as fast as
    the work allows). ``duration``: stop after this many *real* seconds (the command line's
    ``--duration``). ``run_for``: stop after this many seconds of the scanner's clock (simulated
    seconds in the demo), which is what tests and benchmarks ask for: it does not depend on the
    machine.
    """

    demo: bool = False
    speed: float = DEMO_SPEED
    duration: float | None = None
    run_for: float | None = None
    once: bool = False
    json: bool = False
    serve: str | None = None
    tokens: tuple[str, ...] = ()
    db: str | None = None
    dashboard: bool = True
    quiet: bool = False  # nothing on stdout (benchmarks, in-process tests)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ScanOptions:
        speed = getattr(args, "speed", None)
        as_json = bool(getattr(args, "json", False))
        once = bool(getattr(args, "once", False))
        return cls(
            demo=bool(getattr(args, "demo", False)),
            speed=float(speed) if speed else DEMO_SPEED,
            duration=getattr(args, "duration", None),
            once=once,
            json=as_json,
            serve=getattr(args, "serve", None),
            tokens=tuple(getattr(args, "tokens", None) or ()),
            db=getattr(args, "db", None),
            dashboard=not as_json and not once and sys.stdout.isatty(),
        )

    @property
    def pace(self) -> float | None:
        """The :class:`~dexscan.vtime.VirtualTimeLoop` pace for the demo (``None``: unpaced)."""
        return None if math.isinf(self.speed) else self.speed


def preload(opts: ScanOptions, telegram: bool) -> None:
    """Import every module the run will need now, before a simulated clock starts ticking.

    Some imports take seconds (aiogram ~2 s, matplotlib); done lazily inside the running loop they
    would freeze it, and a demo clock at 60x would skip minutes of market while it waits.
    """
    modules = ["dexscan.detector", "dexscan.chain.rpc", "dexscan.chain.mint", "dexscan.sources", "dexscan.universe",
               "dexscan.store", "dexscan.ladder", "dexscan.market", "dexscan.scoring", "dexscan.alerts.format",
               "dexscan.service", "dexscan.status", "dexscan.logs", "dexscan.chain.feed", "websockets.asyncio.client"]
    if opts.dashboard:
        modules.append("dexscan.ui.dashboard")
    if telegram:
        modules.append("dexscan.alerts.telegram.runner")
    for name in modules:
        importlib.import_module(name)


async def run_scan(settings: Settings, args: argparse.Namespace, demo: DemoLauncher | None = None) -> int:
    """``dexscan scan`` (and ``dexscan`` with no arguments); ``--demo`` runs on ``demo``'s world."""
    opts = ScanOptions.from_args(args)
    if opts.serve:
        from dexscan.service import parse_listen

        parse_listen(opts.serve)
    if opts.tokens:
        from dexscan.chain.mint import address_problem

        for mint in opts.tokens:
            problem = address_problem(mint)
            if problem is not None:
                raise InputError(f"--tokens {mint!r}: not a Solana address ({problem})")
    if opts.demo and demo is None:
        raise ConfigError("scan --demo: no demo world was handed over (run it as `dexscan scan --demo`)")
    db = _db_path(opts, settings)
    if not opts.demo:  # no source answers: say so, and leave no database behind
        problems = await unreachable_sources(settings)
        enabled = sum(1 for s in (settings.sources.jupiter, settings.sources.dexscreener,
                                  settings.sources.geckoterminal) if s.enabled)
        if len(problems) >= enabled:
            print(unreachable_message(problems), file=sys.stderr)
            return 1
    # A database that cannot be written (a full disk) is refused at once, before the seconds of
    # imports below (aiogram alone takes several) and before the demo world starts.
    await _open_and_close(db, settings)
    # One cycle (--once) runs no Telegram task: it needs neither aiogram nor the charts.
    preload(opts, telegram=not opts.once and (opts.demo or (settings.secrets.telegram_token is not None
                                                            and bool(settings.telegram.chat_ids))))
    if opts.demo and demo is not None:  # (without one it was refused above)
        return await _run_demo(settings, opts, demo, db)
    return await scan(settings, opts, RealClock(), db, mode="live")


async def _run_demo(settings: Settings, opts: ScanOptions, demo: DemoLauncher, db: Path) -> int:
    async with demo.world(settings, db=db, telegram=True) as world:
        run = world.settings
        if not opts.db and not settings.app.log_file:
            run = run.with_overrides({"app.log_file": str(db.with_suffix(".log"))})
        return await scan(run, opts, world.clock, db, mode="demo")


async def scan(settings: Settings, opts: ScanOptions, clock: Clock, db: Path, mode: str = "live",
               ready: Callable[[Engine], None] | None = None,
               stopped: Callable[[Engine], Awaitable[None]] | None = None,
               stop: asyncio.Event | None = None) -> int:
    """Open everything the engine needs, run it until stopped (or one cycle), close everything.

    ``ready`` sees the engine before it starts; ``stopped`` runs after it stopped while the store,
    the clients and the local API are still open (tests and benchmarks inspect the run there).
    ``stop``, when given, stops the run too (``dexscan bot --demo`` sets it when its chat ends).
    """
    from dexscan.chain.mint import MintInspector
    from dexscan.chain.rpc import RpcPool
    from dexscan.detector import Detector
    from dexscan.logs import setup_logging
    from dexscan.sources import HttpLayer, build_clients
    from dexscan.store import Store
    from dexscan.store.connection import LockWait

    # The database first: one it cannot write (a full disk) is a one-line StoreError (exit 2) before
    # the log file is made, and a failed open leaves no thread behind (issue 17 point 8).
    await _open_and_close(db, settings)
    lock_wait = LockWait.of(settings)
    log_file = settings.log_path() if settings.app.log_file else db.with_suffix(".log")
    setup_logging(settings.app.log_level, settings.app.log_format, file=log_file, secrets=settings.secret_values())
    log.info("dexscan scan (%s) starting; database %s", mode, db)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = _install_stop_signals(loop, stop)
    timer = loop.call_later(opts.run_for, stop.set) if opts.run_for else None
    wall_timer = _stop_after_real_seconds(loop, stop, opts.duration) if opts.duration else None
    try:
        async with AsyncExitStack() as stack:
            stores = []
            for _ in range(4):
                s = await Store.open(db, lock_wait)
                stack.push_async_callback(s.close)
                stores.append(s)
            store, history_store, universe_store, side_store = stores
            http = await stack.enter_async_context(HttpLayer(settings, clock))
            clients = build_clients(settings, http)
            rpc = RpcPool.from_settings(settings, clock)
            stack.push_async_callback(rpc.close)
            rpc.start()
            inspector = MintInspector(rpc, settings, clock, universe_store)
            calibrator = await load_calibrator(settings, store)
            detector = Detector(settings, calibrator)
            universe = build_universe(settings, universe_store, clients, inspector, clock)
            json_out: EventSink | None = None
            if opts.json:
                json_out = JsonLines(sys.stdout)
            elif not opts.dashboard and not opts.quiet:
                json_out = TextLines(sys.stdout)
            from dexscan.chain.feed import ChainFeed

            engine = Engine(settings, store, clock, http=http, clients=clients, universe=universe,
                            detector=detector, rpc=rpc, history_store=history_store, mode=mode,
                            json_out=json_out, tokens=opts.tokens,
                            calibrator_label=calibrator_label(calibrator, settings),
                            feed=None if opts.once else ChainFeed.from_settings(settings, clock, inspector))
            if opts.serve:
                from dexscan.backend import LiveBackend
                from dexscan.service import Service, parse_listen

                host, port = parse_listen(opts.serve)
                engine.service = await stack.enter_async_context(
                    Service(LiveBackend(engine, side_store, clock), engine.status, host, port,
                            max_ws_clients=settings.service.max_ws_clients))
            extra: list[Callable[[], Awaitable[None]]] = []
            if engine.telegram_enabled and not opts.once:
                from dexscan.alerts.telegram.runner import alongside_scanner

                extra.append(alongside_scanner(engine, db, clock, stop, stack))
            if opts.dashboard:
                from dexscan.ui.dashboard import Dashboard

                dashboard = Dashboard.from_settings(settings, engine.status)
                extra.append(lambda: dashboard.run(stop))
            if ready is not None:
                ready(engine)
            if opts.once:
                await engine.run_once()
                print(engine.summary(), file=sys.stderr)
            else:
                await engine.run(stop, extra)
            log.info("dexscan scan stopped: %d new signal(s), %d outcome(s) closed",
                     sum(engine.counters.signals.values()), engine.counters.outcomes_closed)
            if opts.dashboard:  # the dashboard is gone: what the run did, and where to look
                print(f"{engine.summary()}\ndatabase {db} · log {log_file}", flush=True)
            if stopped is not None:
                await stopped(engine)
    finally:
        if timer is not None:
            timer.cancel()
        if wall_timer is not None:
            wall_timer.cancel()
        for sig in installed:
            loop.remove_signal_handler(sig)
    return 0


async def _open_and_close(db: Path, settings: Settings) -> None:
    """Open (creating and migrating) the database and close it again: :class:`StoreError` in one line
    when it cannot be written."""
    from dexscan.store import Store
    from dexscan.store.connection import LockWait

    await (await Store.open(db, LockWait.of(settings))).close()


def _db_path(opts: ScanOptions, settings: Settings) -> Path:
    """``--db``, else the demo's own file (started afresh each run) or the configured database."""
    if opts.db:
        return Path(opts.db).expanduser()
    if opts.demo:
        db = demo_db_path(settings)
        _remove_db(db)
        return db
    return settings.db_file()


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    bot_api_journal(path).unlink(missing_ok=True)


def _stop_after_real_seconds(loop: asyncio.AbstractEventLoop, stop: asyncio.Event, seconds: float) -> threading.Timer:
    """``--duration``: real seconds, whatever the loop's clock is (the demo's runs on virtual time)."""
    timer = threading.Timer(seconds, loop.call_soon_threadsafe, (stop.set,))
    timer.daemon = True
    timer.start()
    return timer


def _install_stop_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> list[int]:
    """SIGINT/SIGTERM set ``stop`` once; a second signal gets the default (immediate) behaviour."""
    installed: list[int] = []

    def handler(signum: int) -> None:
        log.info("signal %d received: stopping", signum)
        stop.set()
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(signum)

    for signum in (os_signal.SIGINT, os_signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, handler, signum)
        except (NotImplementedError, RuntimeError):
            continue
        installed.append(signum)
    return installed


def build_universe(settings: Settings, store: Store, clients: DiscoveryClients, inspector: MintInspector,
                   clock: Clock) -> Universe:
    from dexscan.universe import Universe

    return Universe(settings, store, clients, inspector, clock)
