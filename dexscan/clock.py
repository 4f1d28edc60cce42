"""Clocks. Time is an input (DESIGN §2.2): the core never reads the wall clock itself.

- ``RealClock``: the live scanner (epoch seconds of the wall clock).
- ``LoopClock``: simulated epoch seconds that follow the running event loop's clock from a chosen
  start. On a :class:`~dexscan.vtime.VirtualTimeLoop` (the demo world and every test that runs
  the scanner) that is virtual time: it moves only when nothing in the process can run, so what
  happens in a simulated hour does not depend on the machine. On an ordinary loop it is real time.
- ``SimClock``: time that moves only through :meth:`SimClock.advance` and :meth:`SimClock.sleep`
  (unit tests, the history replay).

Each exposes ``now()`` (epoch seconds, float) and ``sleep()``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class LoopClock:
    """Epoch seconds ``start`` + the event loop's time since this clock was made (``+ advance()``).

    Made inside a running loop (or given one); ``sleep`` is the loop's own ``asyncio.sleep``.
    """

    def __init__(self, start: float, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._start = float(start)
        self._t0 = self._loop.time()

    def now(self) -> float:
        return self._start + (self._loop.time() - self._t0)

    def advance(self, seconds: float) -> None:
        """Move this clock's reading forward (not the loop's): for positioning a run's start."""
        self._start += seconds

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class SimClock:
    """Simulated time that moves only through :meth:`advance` and :meth:`sleep` (which advances by
    the requested time and yields once): deterministic unit tests and replays."""

    def __init__(self, start: float) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)
        await asyncio.sleep(0)


async def sleep_unless(clock: Clock, seconds: float, event: asyncio.Event) -> bool:
    """Sleep ``seconds`` of ``clock`` time unless ``event`` is set first; True when it was."""
    sleeper = asyncio.ensure_future(clock.sleep(max(seconds, 0.0)))
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        waiter.cancel()
    return event.is_set()


async def sleep_or_wake(clock: Clock, seconds: float, wake: asyncio.Event | None = None) -> None:
    """Sleep ``seconds`` of ``clock`` time, or until ``wake`` is set (then clear it)."""
    if wake is None:
        await clock.sleep(seconds)
        return
    if not wake.is_set():
        await sleep_unless(clock, seconds, wake)
    wake.clear()
