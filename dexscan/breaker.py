"""A circuit breaker per provider or endpoint.

After ``failures`` consecutive failures the breaker opens and calls fail fast (no traffic to a dead
service, no long timeouts stacking up). After ``cooldown_s`` it half-opens and lets one trial call
through: a success closes it, a failure opens it again for another cool-down.
"""

from __future__ import annotations

from enum import StrEnum

from dexscan.clock import Clock, RealClock


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    def __init__(self, failures: int, cooldown_s: float, clock: Clock | None = None) -> None:
        self.threshold = max(1, failures)
        self.cooldown_s = cooldown_s
        self._clock = clock or RealClock()
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False
        self.times_opened = 0

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock.now() - self._opened_at >= self.cooldown_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one trial at a time."""
        st = self.state
        if st is BreakerState.CLOSED:
            return True
        if st is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def seconds_until_retry(self) -> float:
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown_s - self._clock.now())

    def record_success(self) -> None:
        self._consecutive = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._consecutive += 1
        was_trial = self._trial_in_flight
        self._trial_in_flight = False
        if was_trial or self._consecutive >= self.threshold:
            if self._opened_at is None or was_trial:
                self.times_opened += 1
            self._opened_at = self._clock.now()
