"""``dexscan bot``: Telegram delivery and commands without the scanner, answered from the database."""

from __future__ import annotations

import asyncio
import contextlib
import signal as os_signal
from typing import Any

from dexscan.alerts.format import bot_setup_problem
from dexscan.alerts.telegram.runner import run_telegram
from dexscan.backend import standalone_backend
from dexscan.config import Settings
from dexscan.demo_mode import DemoLauncher
from dexscan.errors import ConfigError
from dexscan.logs import setup_logging
from dexscan.scoring import Scorer
from dexscan.store import Store
from dexscan.store.connection import LockWait


async def run_bot(settings: Settings, args: Any, demo: DemoLauncher | None = None) -> int:
    """``dexscan bot``: delivery and commands alone; ``--demo`` chats with it on ``demo``'s world."""
    duration = getattr(args, "duration", None)
    if getattr(args, "demo", False):
        if demo is None:
            raise ConfigError("bot --demo: no demo world was handed over (run it as `dexscan bot --demo`)")
        return await demo.bot_chat(settings, duration, getattr(args, "db", None))
    problem = bot_setup_problem(settings)
    token = settings.secrets.telegram_token
    if problem is not None or token is None:
        raise ConfigError(problem or "telegram: no token")
    setup_logging(settings.app.log_level, settings.app.log_format, secrets=settings.secret_values())
    store = await Store.open(getattr(args, "db", None) or settings.db_file(),
                             LockWait.of(settings))
    try:
        stop = _stop_event(duration)
        from dexscan.calibrator_loading import load_calibrator

        scorer = Scorer(settings.scoring, await load_calibrator(settings, store))
        await run_telegram(settings, store, standalone_backend(settings, store, scorer=scorer), stop)
    finally:
        await store.close()
    return 0


def _stop_event(duration: float | None) -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if duration is not None:
        loop.call_later(duration, stop.set)
    for sig in (os_signal.SIGINT, os_signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop
