"""The terminal dashboard: a status panel, three fixed-height signal tables (SPEC §9) and the
latest gate rejections ("why isn't X in my universe"): a fourth section when the terminal has the
lines for it, else the ``r`` key swaps it with CLOSED.

Traders watch this for hours, so it must never jump: every section is rendered into an exact number
of lines (:class:`FixedHeight`), every cell is one line (no wrapping, ellipsis instead), and column
widths are fixed per terminal width rather than sized by content, so a new row with a longer symbol
does not shift every other column. When the terminal is narrow, whole columns are dropped by
priority (reasons first, then TP3, TP2, liquidity, ...) instead of squeezing all of them.

:func:`render` is pure (status and width in, renderable out) so it can be snapshot-tested;
:class:`Dashboard` is the thin shell that puts it on the alternate screen with rich ``Live``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from dexscan.config import Settings
from dexscan.status import ScannerStatus
from dexscan.ui.layout import DEFAULT_TABLE_ROWS
from dexscan.ui.panel import status_panel, status_panel_height
from dexscan.ui.tables import closed_signals_table, live_signals_table, new_signals_table, rejected_table
from dexscan.vtime import VirtualTimeLoop

log = logging.getLogger(__name__)


#: Fewest table rows worth showing (one signal and the "+N more" line); below this the panel shrinks.
MIN_TABLE_ROWS = 2
#: Rows per table below which the sources table gives way to a one-line summary.
_FULL_PANEL_MIN_ROWS = 4


@dataclass(frozen=True, slots=True)
class Layout:
    """How the dashboard uses a terminal: the panel's form and each table's data rows.

    It depends only on the terminal's size, the configured rows and the number of sources, never
    on the signals, so the screen does not jump when a signal arrives.
    """

    compact_panel: bool
    new_rows: int
    live_rows: int
    closed_rows: int
    rejected_rows: int = 0  # a fourth section, REJECTED, when the terminal has lines to spare

    def height(self, status: ScannerStatus) -> int:
        rejected = self.rejected_rows + 2 if self.rejected_rows else 0
        return (status_panel_height(status, self.compact_panel) + self.new_rows + self.live_rows + self.closed_rows
                + 6 + rejected)


def plan_layout(status: ScannerStatus, height: int | None, table_rows: int = DEFAULT_TABLE_ROWS) -> Layout:
    """The layout for a terminal ``height`` lines tall (None: unknown, as tall as needed).

    Degrades by priority: first every table loses rows (``table_rows`` is the most each gets),
    then the sources table becomes one summary line so the three tables keep at least
    ``MIN(4, table_rows)`` rows; every table keeps at least :data:`MIN_TABLE_ROWS`. Lines left
    over go to LIVE first (open trades), then NEW; once all three have ``table_rows``, to a fourth
    section, REJECTED (at least :data:`MIN_TABLE_ROWS` rows, at most ``table_rows``).
    """
    most = max(MIN_TABLE_ROWS, table_rows)
    if height is None:
        return Layout(False, most, most, most)
    compact = False
    per_table = (height - status_panel_height(status)) // 3 - 2
    if per_table < min(most, _FULL_PANEL_MIN_ROWS):
        compact = True
        per_table = (height - status_panel_height(status, compact=True)) // 3 - 2
    per_table = min(most, max(MIN_TABLE_ROWS, per_table))
    spare = height - status_panel_height(status, compact) - 3 * (per_table + 2)
    live = min(most, per_table + max(0, spare))
    spare -= live - per_table
    new = min(most, per_table + max(0, spare))
    layout = Layout(compact, new, live, per_table)
    left = height - layout.height(status) - 2
    if (new, live, per_table) == (most, most, most) and left >= MIN_TABLE_ROWS:
        layout = replace(layout, rejected_rows=min(most, left))
    return layout


def render(
    status: ScannerStatus, width: int, table_rows: int = DEFAULT_TABLE_ROWS, height: int | None = None,
    show_rejected: bool = False, key_hints: bool = False,
) -> RenderableType:
    """The whole dashboard for ``status`` at ``width`` columns (and ``height`` lines, if known).

    Height is ``plan_layout(status, height, table_rows).height(status)`` whatever the signals are:
    without a ``height``, ``status_panel_height(status) + 3 * (table_rows + 2)``. REJECTED is the
    fourth section when the layout has room for it; otherwise ``show_rejected`` puts it in CLOSED's
    place (the ``r`` key; ``key_hints`` names the key in that section's title).
    """
    layout = plan_layout(status, height, table_rows)
    last: list[RenderableType]
    if layout.rejected_rows:
        last = [closed_signals_table(status, width, layout.closed_rows),
                rejected_table(status, width, layout.rejected_rows)]
    elif show_rejected:
        last = [rejected_table(status, width, layout.closed_rows, "r: closed" if key_hints else "")]
    else:
        last = [closed_signals_table(status, width, layout.closed_rows, "r: rejected" if key_hints else "")]
    return Group(
        status_panel(status, width, layout.compact_panel),
        new_signals_table(status, width, layout.new_rows),
        live_signals_table(status, width, layout.live_rows),
        *last,
    )


def dashboard_height(status: ScannerStatus, table_rows: int = DEFAULT_TABLE_ROWS, height: int | None = None) -> int:
    return plan_layout(status, height, table_rows).height(status)


# ---------------------------------------------------------------------------------------------
# The live shell
# ---------------------------------------------------------------------------------------------


class Dashboard:
    """Shows :func:`render` of the latest status full-screen until ``stop`` is set.

    Rendering happens on the event loop (not rich's refresh thread), so ``status_provider`` may read
    engine state without locks. A provider that raises leaves the last good frame on screen (the
    error goes to the log file) rather than tearing the terminal.
    """

    def __init__(
        self,
        status_provider: Callable[[], ScannerStatus],
        *,
        refresh_per_s: float = 2.0,
        table_rows: int = DEFAULT_TABLE_ROWS,
        console: Console | None = None,
        screen: bool = True,
    ) -> None:
        if refresh_per_s <= 0:
            raise ValueError("refresh_per_s must be > 0 (scan.dashboard_refresh_per_s)")
        self.status_provider = status_provider
        self.refresh_per_s = refresh_per_s
        self.table_rows = table_rows
        self.console = console or Console()
        self.screen = screen
        self.show_rejected = False  # REJECTED in CLOSED's place (the ``r`` key)
        self.reads_keys = False
        self._last: RenderableType = Text("starting…")

    @classmethod
    def from_settings(
        cls, settings: Settings, status_provider: Callable[[], ScannerStatus], console: Console | None = None
    ) -> Dashboard:
        """Refresh rate and table height from ``scan.dashboard_refresh_per_s`` and ``scan.table_rows``."""
        return cls(status_provider, refresh_per_s=settings.scan.dashboard_refresh_per_s,
                   table_rows=settings.scan.table_rows, console=console)

    def frame(self) -> RenderableType:
        """The renderable for right now (or the previous one if the status cannot be read)."""
        try:
            size = self.console.size
            self._last = render(self.status_provider(), size.width, self.table_rows, size.height,
                                show_rejected=self.show_rejected, key_hints=self.reads_keys)
        except Exception:
            log.exception("dashboard: could not build the status; keeping the previous frame")
        return self._last

    def on_key(self, key: str) -> bool:
        """A key pressed while the dashboard shows; True when the frame changes (``r``: swap CLOSED
        and REJECTED)."""
        if key.lower() == "r":
            self.show_rejected = not self.show_rejected
            return True
        return False

    async def run(self, stop: asyncio.Event) -> None:
        """Redraws until ``stop`` is set (or the task is cancelled, as Ctrl-C does). Leaving the
        alternate screen would leave the terminal as it was before the run, so the last frame is
        then printed on the normal screen: what the scanner showed when it stopped stays readable."""
        interval = 1.0 / self.refresh_per_s
        # Frames are for a person: ``refresh_per_s`` per *real* second. On the demo's virtual-time
        # loop (dexscan.vtime) the loop's seconds are simulated; paced at ``speed`` they pass
        # ``speed`` times faster, unpaced as fast as the work allows (then only the real-time check
        # below keeps the frame rate).
        loop = asyncio.get_running_loop()
        step = interval * (getattr(loop, "speed", None) or 60.0) if isinstance(loop, VirtualTimeLoop) else interval
        keys = _KeyReader.open() if self.screen and self.console.is_terminal else None
        self.reads_keys = keys is not None
        try:
            with Live(
                self.frame(), console=self.console, screen=self.screen, auto_refresh=False, transient=False,
                redirect_stdout=True, redirect_stderr=True,
            ) as live:
                if keys is not None:
                    def pressed() -> None:
                        if any([self.on_key(k) for k in keys.read()]):
                            live.update(self.frame(), refresh=True)

                    loop.add_reader(keys.fd, pressed)
                drawn = time.monotonic()
                while not stop.is_set():
                    if time.monotonic() - drawn >= interval * 0.9:
                        live.update(self.frame(), refresh=True)
                        drawn = time.monotonic()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=step)
        finally:
            if keys is not None:
                with contextlib.suppress(Exception):
                    loop.remove_reader(keys.fd)
                keys.close()
                self.reads_keys = False
            if self.screen:
                try:
                    self.console.print(self._last)
                except Exception:
                    log.exception("dashboard: could not print the last frame")


class _KeyReader:
    """Single key presses from a terminal on stdin (cbreak mode: no Enter needed, Ctrl-C still
    interrupts), restored as it was on :meth:`close`. None from :meth:`open` without a terminal."""

    def __init__(self, fd: int, saved: Any) -> None:
        self.fd = fd
        self._saved = saved

    @classmethod
    def open(cls) -> _KeyReader | None:
        try:
            import termios
            import tty

            fd = sys.stdin.fileno()
            if not os.isatty(fd):
                return None
            saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        except (ImportError, OSError, ValueError, AttributeError):  # no terminal, or not a POSIX one
            return None
        return cls(fd, saved)

    def read(self) -> str:
        try:
            return os.read(self.fd, 64).decode(errors="ignore")
        except OSError:
            return ""

    def close(self) -> None:
        import termios

        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
