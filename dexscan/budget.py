"""Request budgets: never send more than a provider allows in any window.

Providers enforce *sliding* windows (Jupiter: 30 requests in any 60 s). A leaky bucket such as
aiolimiter's lets a full burst through and then keeps dripping, which can put up to twice the limit
into one window; so a budget here keeps the send times of its last ``limit`` requests and waits
until the oldest leaves the window. It is exact, O(1) per request, and reads time from a
:class:`~dexscan.clock.Clock`, so simulated runs spend simulated time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from dexscan.clock import Clock, RealClock


@dataclass(frozen=True, slots=True)
class BudgetState:
    name: str
    limit: int
    window_s: float
    used: int  # requests sent in the current window
    waits: int  # how many acquisitions had to wait for room

    @property
    def utilisation(self) -> float:
        return self.used / self.limit if self.limit else 0.0


class Budget:
    """At most ``limit`` acquisitions in any ``window_s`` seconds (plus a small safety margin)."""

    def __init__(
        self,
        name: str,
        limit: float,
        window_s: float,
        clock: Clock | None = None,
        margin_s: float = 0.05,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError(f"budget {name}: limit must be >= 1 and window > 0")
        self.name = name
        self.limit = int(limit)
        self.window_s = float(window_s)
        self._clock = clock or RealClock()
        self._margin = margin_s
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()
        self.waits = 0

    def _expire(self, now: float) -> None:
        horizon = now - self.window_s - self._margin
        while self._sent and self._sent[0] <= horizon:
            self._sent.popleft()

    async def acquire(self) -> None:
        """Wait until one more request fits in the window, then record it as sent."""
        async with self._lock:
            waited = False
            while True:
                now = self._clock.now()
                self._expire(now)
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    if waited:
                        self.waits += 1
                    return
                waited = True
                await self._clock.sleep(self._sent[0] + self.window_s + self._margin - now)

    def penalise(self, seconds: float) -> None:
        """Fill the window so nothing is sent for ``seconds`` (after a 429 told us to wait)."""
        now = self._clock.now()
        until = now + seconds - self.window_s - self._margin
        self._sent = deque([max(until, now - self.window_s)] * self.limit)

    def state(self) -> BudgetState:
        self._expire(self._clock.now())
        return BudgetState(self.name, self.limit, self.window_s, len(self._sent), self.waits)
