"""Virtual time: an asyncio event loop whose clock jumps to the next timer when nothing can run.

The demo world and every test that runs the scanner use :class:`VirtualTimeLoop`. Its
:meth:`~VirtualTimeLoop.time` is simulated: it stands still while anything in the process can make
progress, and when nothing can, it jumps straight to the next scheduled timer, in the spirit of
trio's ``MockClock(autojump_threshold=0)`` and of the ``looptime`` pytest plugin (whose "fake
time, real I/O" design this follows). A simulated day then takes as long as its work, and what
happens in it does not depend on how fast or how busy the CPU is: a one-second stall of the process
is one second of waiting, not ten simulated minutes the scanner never saw.

"Nothing can run" means all of:

- no callback is ready and no file descriptor is ready (``select`` with a zero timeout);
- no work handed to a thread is in flight. :meth:`~VirtualTimeLoop.run_in_executor` (and so
  ``asyncio.to_thread`` and ``getaddrinfo``) counts its work automatically; other thread users
  (aiosqlite's connection threads) wrap their calls in :func:`thread_work`, which is a no-op on
  ordinary loops. While such work runs the loop waits for it in real time, as any loop would.

Loopback traffic between the scanner and the in-process fakes is delivered by the kernel within the
sending system call, so a zero-timeout ``select`` sees it; before a jump the loop yields the CPU
once and looks again, for the rare case where the kernel defers that delivery.

With ``speed`` set, the loop is *paced*: a jump of ``dt`` simulated seconds waits ``dt / speed``
real seconds first (still serving any I/O that arrives meanwhile), so the interactive demo runs at
most ``speed`` times faster than real time, and slower, never skipping, when the machine is busy.
Without ``speed`` it runs as fast as the work allows (tests, ``--speed max``).

Time that comes from outside the process (another process holding a file lock, a peer in another
process) does not advance this clock: a test that needs such a peer runs it in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import selectors
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import Executor
from typing import Any, TypeVar

T = TypeVar("T")

#: Real seconds the loop waits at most in one select while thread work is in flight (it is woken at
#: once when the work completes; the bound only keeps a lost wake-up from hanging the loop).
_THREAD_WAIT_S = 0.5
#: Simulated seconds the loop's clock shows when it is created.
START = 0.0


class _JumpingSelector:
    """Wraps the loop's selector: a select that would wait for a timer jumps the clock instead."""

    def __init__(self, inner: selectors.BaseSelector, loop: VirtualTimeLoop) -> None:
        self._inner = inner
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        inner, loop = self._inner, self._loop
        if timeout is not None and timeout <= 0:
            return inner.select(0)
        events = inner.select(0)
        if events:
            return events
        if loop.thread_work_in_flight:
            return inner.select(_THREAD_WAIT_S)  # the thread wakes us through the self-pipe
        if timeout is None:  # nothing scheduled: only the outside world can wake us
            return inner.select(None)
        with contextlib.suppress(AttributeError, OSError):
            os.sched_yield()  # let the kernel finish a deferred loopback delivery, then look again
        events = inner.select(0)
        if events:
            return events
        target = loop.next_timer(timeout)
        if loop.speed is None:
            loop.advance_to(target)
            return []
        wait_s = (target - loop.time()) / loop.speed
        started = time.monotonic()
        events = inner.select(wait_s)
        if events:
            loop.advance_to(min(target, loop.time() + (time.monotonic() - started) * loop.speed))
        else:
            loop.advance_to(target)
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop on virtual time (see the module doc). ``speed``: at most this many
    simulated seconds per real second; ``None``: as fast as the work allows."""

    def __init__(self, speed: float | None = None) -> None:
        super().__init__()
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be positive or None, got {speed!r}")
        self.speed = speed
        self._now = START
        self._thread_work = 0
        self._selector: Any = _JumpingSelector(self._selector, self)
        self.jumps = 0

    # -- the clock -------------------------------------------------------------------------------

    def time(self) -> float:
        return self._now

    def advance_to(self, when: float) -> None:
        if when > self._now:
            self._now = when
            self.jumps += 1

    def next_timer(self, timeout: float) -> float:
        """The loop time of the next timer, given the select timeout the loop computed for it."""
        scheduled: list[asyncio.TimerHandle] = getattr(self, "_scheduled", [])
        limit = self._now + timeout
        if scheduled:
            return min(scheduled[0].when(), limit)
        return limit

    # -- work in other threads -------------------------------------------------------------------

    @property
    def thread_work_in_flight(self) -> bool:
        return self._thread_work > 0

    def hold(self) -> None:
        self._thread_work += 1

    def release(self) -> None:
        self._thread_work -= 1

    def run_in_executor(self, executor: Executor | None, func: Callable[..., T],  # type: ignore[override]
                        *args: Any) -> asyncio.Future[T]:
        future = super().run_in_executor(executor, func, *args)
        self.hold()
        future.add_done_callback(lambda _f: self.release())
        return future


@contextlib.contextmanager
def thread_work() -> Iterator[None]:
    """Around an await whose result another thread computes: on a :class:`VirtualTimeLoop` the
    clock stands still until it is done; on any other loop this does nothing."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if not isinstance(loop, VirtualTimeLoop):
        yield
        return
    loop.hold()
    try:
        yield
    finally:
        loop.release()


async def in_thread_work(awaitable: Awaitable[T]) -> T:
    """``await awaitable`` inside :func:`thread_work`."""
    with thread_work():
        return await awaitable


def run(main: Coroutine[Any, Any, T], *, speed: float | None = None, debug: bool | None = None) -> T:
    """``asyncio.run`` on a :class:`VirtualTimeLoop`."""
    with asyncio.Runner(debug=debug, loop_factory=lambda: VirtualTimeLoop(speed)) as runner:
        return runner.run(main)
