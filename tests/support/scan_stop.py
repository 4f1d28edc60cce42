"""Stop a test's scanner run as soon as what the test waits for has happened.

An e2e test gives :func:`dexscan.scan_command.scan` an upper bound (``run_for``) and a ``stop`` event;
:class:`StopWhen` (handed to ``scan`` as ``ready``) looks at the running engine every ``every_s``
seconds of the scanner's clock and sets ``stop`` once ``done(engine)`` holds, so the simulated
hours after the awaited signal are not run. The test still asserts everything it asserted before,
from the store, after the run: stopping early only skips time that the assertions do not look at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from dexscan.engine import Engine


class StopWhen:
    """``ready`` hook for :func:`~dexscan.scan_command.scan`: sets ``stop`` once ``done(engine)`` holds.

    ``stopped_at`` is the engine clock's time when it did (``None``: the run ended on its ``run_for``).
    """

    def __init__(self, done: Callable[[Engine], bool], every_s: float) -> None:
        if every_s <= 0:
            raise ValueError("every_s must be > 0")
        self.done = done
        self.every_s = every_s
        self.stop = asyncio.Event()
        self.stopped_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    def __call__(self, engine: Engine) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch(engine))

    async def _watch(self, engine: Engine) -> None:
        while not self.stop.is_set():  # set by ``run_for`` too
            if self.done(engine):
                self.stopped_at = engine.clock.now()
                self.stop.set()
                return
            await asyncio.sleep(self.every_s)
