"""Clocks. Time is an input (DESIGN §2.2): the core never reads the wall clock itself.

``RealClock`` is used by the live scanner; ``SimClock`` by the demo (running faster than real
time), the tests and replay. Both expose ``now()`` (epoch seconds, float) and ``sleep()``.
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


class SimClock:
    """Simulated time that advances ``speed`` times faster than the wall clock from ``start``.

    With ``speed=0`` time only moves through :meth:`advance`, which suits deterministic tests.
    """

    def __init__(self, start: float, speed: float = 1.0) -> None:
        self._start = float(start)
        self._speed = float(speed)
        self._wall0 = time.monotonic()
        self._offset = 0.0

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        return self._start + self._offset + (time.monotonic() - self._wall0) * self._speed

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        if self._speed <= 0:
            self.advance(seconds)
            await asyncio.sleep(0)
            return
        await asyncio.sleep(seconds / self._speed)
