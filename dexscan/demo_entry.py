"""The one product module that imports :mod:`dexscan.demo`: it handles ``--demo`` for every command.

The CLI hands a command run with ``--demo`` a :class:`DemoEntry` (a
:class:`~dexscan.demo_mode.DemoLauncher`); the command opens the demo world through it and gets a
:class:`~dexscan.demo_mode.DemoSetup`: settings pointed at the loopback fakes, the simulated clock,
the simulated tokens and the labelled demo mints. Every command gets the same world (the market of
:func:`dexscan.demo.world.demo_sim_config` and the same labelled chain-only mints); only what the
command needs started differs (the Telegram fake, the number of RPC endpoints). The demo's
commands that run the scanner or wait on budgets (``scan``, ``bot``, ``backfill``) run on the
virtual-time loop (:func:`pace`); ``check`` and ``doctor`` measure real latencies on the real loop.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

from dexscan.config import Settings
from dexscan.demo.bot_chat import demo_pace, run_bot_demo
from dexscan.demo.world import DemoWorld, demo_sim_config
from dexscan.demo_mode import DemoSetup, bot_api_journal, demo_resume_at

#: The commands whose ``--demo`` runs on the virtual-time loop.
VIRTUAL_TIME_COMMANDS = frozenset({"scan", "bot", "backfill"})
#: How many simulated tokens ``check --demo`` labels, besides its chain-only demo mints.
LABELLED_TOKENS = 5


def pace(args: argparse.Namespace) -> float | None:
    """The virtual-time pace of ``args.command``'s demo (``None``: unpaced): ``scan --speed``
    (default 60 simulated seconds per real second; ``max``: unpaced), ``bot`` paced on a terminal
    and unpaced from a pipe, ``backfill`` unpaced (time moves only while the client waits for its
    budget, so its run costs no real waiting)."""
    if args.command == "scan":
        from dexscan.scan_command import ScanOptions

        return ScanOptions.from_args(args).pace
    if args.command == "bot":
        return demo_pace()
    return None


class DemoEntry:
    """The demo world for a command (:class:`~dexscan.demo_mode.DemoLauncher`)."""

    @contextlib.asynccontextmanager
    async def _open(self, settings: Settings, *, db: Path | None = None, telegram: bool = False,
                    rpc_endpoints: int = 3, public_rpc: bool = True, history_days: float | None = None,
                    at_history_end: bool = False, chain_history: bool = False
                    ) -> AsyncIterator[tuple[DemoWorld, DemoSetup]]:
        config = demo_sim_config()
        if history_days is not None and history_days > config.history_days:
            config = dataclasses.replace(config, history_days=float(history_days))
        world = DemoWorld(start_at=await demo_resume_at(db) if db is not None else None, telegram=telegram,
                          telegram_journal=bot_api_journal(db) if telegram and db is not None else None,
                          rpc_endpoints=rpc_endpoints, public_rpc=public_rpc, sim_config=config)
        if at_history_end and world.start_at is None:
            world.start_at = float(world.sim.live_start)
        async with world:
            assert world.clock is not None and world.chain is not None and world.market is not None
            tokens = world.sim.tokens
            labels = world.chain.add_demo_mints()
            if chain_history:  # the asked days (and a 4H window of margin), not the whole simulated history
                now = world.clock.now()
                days = history_days if history_days is not None else world.config.history_days
                world.serve_chain_history(max(world.config.start_ts, now - days * 86_400 - 14_400), now)
            labels.update({f"sim {t.symbol}": t.mint for t in tokens[:LABELLED_TOKENS]})
            yield world, DemoSetup(
                settings=world.apply(settings), clock=world.clock, tokens=tuple(t.mint for t in tokens),
                mints=labels, spl_mints=tuple(t.mint for t in tokens if not t.token2022),
                birdeye_api_key=world.market.birdeye_api_key)

    @contextlib.asynccontextmanager
    async def world(self, settings: Settings, *, db: Path | None = None, telegram: bool = False,
                    rpc_endpoints: int = 3, public_rpc: bool = True, history_days: float | None = None,
                    at_history_end: bool = False, chain_history: bool = False) -> AsyncIterator[DemoSetup]:
        async with self._open(settings, db=db, telegram=telegram, rpc_endpoints=rpc_endpoints, public_rpc=public_rpc,
                              history_days=history_days, at_history_end=at_history_end,
                              chain_history=chain_history) as (_, setup):
            yield setup

    async def bot_chat(self, settings: Settings, duration: float | None, db: str | None) -> int:
        return await run_bot_demo(settings, duration, db,
                                  lambda path: self._open(settings, db=path, telegram=True))
