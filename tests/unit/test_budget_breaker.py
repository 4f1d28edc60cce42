from __future__ import annotations

import asyncio

from dexscan.breaker import BreakerState, CircuitBreaker
from dexscan.budget import Budget
from dexscan.clock import SimClock


async def test_budget_never_exceeds_limit_in_any_window() -> None:
    clock = SimClock(start=1000.0)  # time moves only when someone sleeps
    budget = Budget("jupiter", limit=30, window_s=60.0, clock=clock, margin_s=0.0)
    sent: list[float] = []

    async def one() -> None:
        await budget.acquire()
        sent.append(clock.now())

    await asyncio.gather(*(one() for _ in range(200)))
    assert len(sent) == 200
    sent.sort()
    # sliding window check: any 30 consecutive sends + 1 span more than 60 s
    assert all(sent[i + 30] - sent[i] >= 60.0 for i in range(len(sent) - 30))
    assert budget.state().used <= 30


async def test_budget_penalty_blocks_for_retry_after() -> None:
    clock = SimClock(start=0.0)
    budget = Budget("gt", limit=5, window_s=10.0, clock=clock, margin_s=0.0)
    budget.penalise(7.0)
    await budget.acquire()
    assert clock.now() >= 7.0


def test_breaker_opens_half_opens_and_closes() -> None:
    clock = SimClock(start=0.0)
    br = CircuitBreaker(failures=3, cooldown_s=30.0, clock=clock)
    for _ in range(3):
        assert br.allow()
        br.record_failure()
    assert br.state is BreakerState.OPEN and not br.allow()
    clock.advance(30.0)
    assert br.state is BreakerState.HALF_OPEN
    assert br.allow() and not br.allow()  # one trial at a time
    br.record_failure()
    assert br.state is BreakerState.OPEN and br.times_opened == 2
    clock.advance(30.0)
    assert br.allow()
    br.record_success()
    assert br.state is BreakerState.CLOSED and br.allow()
