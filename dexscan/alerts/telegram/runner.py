"""Telegram running: outbox delivery and commands side by side until stopped, for ``dexscan bot``
(:mod:`.cli`) and inside ``dexscan scan`` (:func:`alongside_scanner`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from dexscan.alerts.telegram.commands import COMMANDS, build_dispatcher
from dexscan.alerts.telegram.outbox import OutboxSender
from dexscan.alerts.telegram.transport import UpdatePoller, create_bot, start_up
from dexscan.backend import LiveBackend, ScannerBackend
from dexscan.clock import Clock, RealClock
from dexscan.config import Settings
from dexscan.store import Store
from dexscan.store.connection import LockWait

if TYPE_CHECKING:
    from dexscan.engine import Engine


async def run_telegram(
    settings: Settings,
    store: Store,
    backend: ScannerBackend,
    stop: asyncio.Event,
    clock: Clock | None = None,
    token: str | None = None,
    poll_timeout_s: int = 25,
    on_sender: Callable[[OutboxSender], None] | None = None,
    *,
    exit_on_rejected_token: bool = True,
) -> None:
    """Outbox delivery and commands until ``stop``, after :func:`~.transport.start_up` (``ConfigError``
    if Telegram rejects the token and ``exit_on_rejected_token``; else Telegram waits for the token,
    see there).

    ``on_sender`` receives the sender once it exists (the engine keeps ``sender.wake`` to have new
    alerts looked at at once rather than at the next idle tick).
    """
    clock = clock or RealClock()
    bot = create_bot(settings, store, clock, token)
    try:
        if not await start_up(bot, settings, stop, clock, COMMANDS, exit_on_rejected_token=exit_on_rejected_token):
            return
        sender = OutboxSender(store, bot, settings, clock)
        if on_sender is not None:
            on_sender(sender)
        poller = UpdatePoller(bot, build_dispatcher(backend, store, settings, clock), store, clock, poll_timeout_s)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sender.run(stop))
            tg.create_task(poller.run(stop))
    finally:
        await bot.session.close()


def alongside_scanner(engine: Engine, db: Path, clock: Clock, stop: asyncio.Event,
                      stack: AsyncExitStack) -> Callable[[], Awaitable[None]]:
    """``dexscan scan``'s Telegram task: outbox delivery and the commands (answered by the running
    scanner, :class:`~dexscan.backend.LiveBackend`), on their own connection to the same database file."""

    async def telegram() -> None:
        sender_store = await Store.open(db, LockWait.of(engine.settings))
        stack.push_async_callback(sender_store.close)

        def keep(sender: OutboxSender) -> None:
            engine.wake_outbox_with(sender.woken_by_writer())

        # A rejected token pauses Telegram with one error line; the scanner keeps running.
        await run_telegram(engine.settings, sender_store, LiveBackend(engine, sender_store, clock), stop,
                           clock, on_sender=keep, exit_on_rejected_token=False)

    telegram.__name__ = "telegram"
    return telegram
