"""``dexscan bot --demo``: talk to the real bot in the console, against the Bot API fake.

The demo world (:class:`~dexscan.demo.world.DemoWorld`: simulated market, LiteSVM chain, every
loopback fake) runs the **real** scanner, and with it the real bot: the same
:func:`~dexscan.alerts.telegram.runner.run_telegram` as in production, polling the Telegram fake with
``getUpdates`` and answering from the running scanner. What you type becomes a user message in the
demo chat (``DEMO_CHAT``) of the fake; every message the bot sends there (answers and alerts) is
printed as the chat would show it: the plain text of the message, a photo as ``[chart image]``,
and its buttons listed.

Two ways to drive it:

* a terminal: a chat at the demo's pace (60 simulated seconds per real second); alerts arrive
  between your commands as the simulated market moves;
* a pipe (``printf '/help\\n/top\\n' | dexscan bot --demo``): each line is sent once the bot has
  answered the previous one, and the run ends (exit 0) after the answer to the last line. The
  loop is then unpaced, so a transcript depends on the input only, not on the machine.

Either way the chat opens once the scanner is warm (its first signal, or 30 simulated minutes),
so ``/top`` and ``/signals`` have something to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import IO, Any

from dexscan.config import Settings
from dexscan.demo.world import DemoWorld
from dexscan.demo_mode import DemoSetup

#: The demo chat's pace on a terminal: simulated seconds per real second (``scan --demo``'s default).
INTERACTIVE_SPEED = 60.0
#: Simulated seconds the chat waits, at most, for the scanner's first signal before it opens anyway.
WARM_UP_S = 1800.0
#: Simulated seconds the chat waits for the bot to take a message before saying it got no answer.
ANSWER_TIMEOUT_S = 120.0
#: Leaves the chat (as does end of input).
QUIT_WORDS = frozenset({"/quit", "/exit", "quit", "exit"})

BOT = "bot › "
YOU = "you › "
INDENT = " " * len(BOT)


def demo_pace(stdin: IO[str] | None = None) -> float | None:
    """The virtual-time pace for ``bot --demo``: paced on a terminal, unpaced for a pipe."""
    stream = stdin if stdin is not None else sys.stdin
    try:
        return INTERACTIVE_SPEED if stream.isatty() else None
    except (AttributeError, ValueError):
        return None


def message_lines(text: str, photo: bool, buttons: Sequence[Sequence[tuple[str, str]]]) -> list[str]:
    """One bot message as console lines: ``bot › `` then its text (indented), ``[chart image]``
    for a photo, and one ``buttons:`` line per keyboard row."""
    body = text.split("\n") if text else []
    if photo:
        body.insert(0, "[chart image]")
    for row in buttons:
        body.append("buttons: " + " ".join(f"[{label}]" for label, _url in row))
    body = body or [""]
    return [BOT + body[0], *(INDENT + line if line else "" for line in body[1:])]


class ConsoleChat:
    """Prints what the bot sends to ``chat_id`` and sends what the user types, one line at a time."""

    def __init__(self, fake: Any, chat_id: int, out: IO[str], echo: bool) -> None:
        self.fake = fake
        self.chat_id = chat_id
        self.out = out
        self.echo = echo  # a pipe: print each command as "you › ..." so the transcript reads as a chat

    def print(self, *lines: str) -> None:
        self.out.write("".join(line + "\n" for line in lines))
        self.out.flush()

    def show(self, msg: Any) -> None:
        """The Bot API fake's ``on_accept`` hook: a message the bot just sent."""
        if msg.chat_id == self.chat_id:
            self.print(*message_lines(msg.text, msg.photo is not None, msg.buttons))

    async def say(self, text: str) -> bool:
        """Send ``text`` as the user and wait until the bot has handled it (its answers are printed
        as they arrive); False when it took no message within :data:`ANSWER_TIMEOUT_S`."""
        if self.echo:
            self.print(YOU + text)
        self.fake.inject_user_message(self.chat_id, text)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ANSWER_TIMEOUT_S
        while self.fake.pending_updates():  # confirmed (offset past it) only once handled
            if loop.time() >= deadline:
                self.print(BOT + "(no answer: the bot did not take the message; see the log)")
                return False
            await asyncio.sleep(0.2)
        return True


class LineReader:
    """Lines from a file descriptor on the event loop (a terminal or a pipe), ``None`` at the end."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._buffer = b""
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd, self._readable)

    def close(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.fd)
            self._loop = None

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            if self._buffer:
                self.lines.put_nowait(self._buffer.decode(errors="replace"))
                self._buffer = b""
            self.lines.put_nowait(None)
            self.close()
            return
        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\n")
        for raw in complete:
            self.lines.put_nowait(raw.decode(errors="replace").rstrip("\r"))


async def _warm(engine: Any, clock: Any) -> None:
    """Until the scanner's first signal, or :data:`WARM_UP_S` of its clock with a universe."""
    started = clock.now()
    while not sum(engine.counters.signals.values()):
        if clock.now() - started >= WARM_UP_S and engine.status().universe_size:
            return
        await asyncio.sleep(5.0)


async def converse(chat: ConsoleChat, engine_ready: asyncio.Future[Any], clock: Any, fd: int,
                   stop: asyncio.Event, interactive: bool) -> None:
    """Warm up, then relay the input's lines to the bot until it ends (or ``/quit``); sets ``stop``."""
    try:
        engine = await engine_ready
        chat.print("demo: warming up: discovering tokens, running the gates, loading history "
                   "(about 10 minutes of market time)")
        await _warm(engine, clock)
        st = engine.status()
        first = engine.stored[0].signal if engine.stored else None
        chat.print(f"demo: ready: {st.universe_size} tokens in the universe"
                   + (f", first signal on {first.symbol or first.mint}" if first is not None else "") + ".")
        chat.print(f"You are chat {chat.chat_id}, allowed to use the bot. Type a command: /help lists them; "
                   "/check, /why and /watch take a mint from /top or /signals. "
                   + ("Ctrl-D or /quit leaves." if interactive else ""))
        reader = LineReader(fd)
        reader.start()
        try:
            while (line := await reader.lines.get()) is not None:
                text = line.strip()
                if not text:
                    continue
                if text.lower() in QUIT_WORDS:
                    break
                await chat.say(text)
        finally:
            reader.close()
    finally:
        stop.set()


def _db_path(db: str | None, tmp: str) -> Path:
    """``--db``, else a database in ``tmp`` (the chat's, deleted with it)."""
    return Path(db).expanduser() if db else Path(tmp) / "bot-demo.db"


async def run_bot_demo(settings: Settings, duration: float | None, db: str | None,
                       open_world: Callable[[Path], AbstractAsyncContextManager[tuple[DemoWorld, DemoSetup]]],
                       fd: int | None = None, out: IO[str] | None = None) -> int:
    """``dexscan bot --demo``: the scanner and the bot on the demo world, and a console chat with
    the bot (see the module doc). Runs on the virtual-time loop the CLI starts (:func:`demo_pace`).

    ``open_world(db)`` starts the demo world with its Telegram fake, for a run on ``db``
    (:meth:`dexscan.demo_entry.DemoEntry.bot_chat` hands it over)."""
    from dexscan.demo.servers.telegram import DEMO_CHAT
    from dexscan.scan_command import ScanOptions, preload, scan

    fd = sys.stdin.fileno() if fd is None else fd
    out = out or sys.stdout
    interactive = os.isatty(fd)
    opts = ScanOptions(demo=True, duration=duration, dashboard=False, quiet=True)
    preload(opts, telegram=True)
    stop = asyncio.Event()
    with tempfile.TemporaryDirectory(prefix="dexscan-bot-demo-") as tmp:
        path = _db_path(db, tmp)
        async with open_world(path) as (world, setup):
            assert world.telegram is not None
            demo = setup.settings
            if not settings.app.log_file:
                demo = demo.with_overrides({"app.log_file": str(path.with_suffix(".log"))})
            chat = ConsoleChat(world.telegram, DEMO_CHAT, out, echo=not interactive)
            world.telegram.on_accept = chat.show
            chat.print(f"demo: the real scanner and bot on a simulated market ({world.config.n_tokens} tokens); "
                       f"the bot polls a local fake of the Telegram Bot API ({world.telegram.base_url}). "
                       "Nothing leaves this machine.")
            ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            talk = asyncio.ensure_future(converse(chat, ready, setup.clock, fd, stop, interactive))

            def started(engine: Any) -> None:
                if not ready.done():
                    ready.set_result(engine)

            try:
                code = await scan(demo, opts, setup.clock, path, mode="demo", ready=started, stop=stop)
            finally:
                talk.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await talk
            chat.print(f"demo: chat ended; database {path}, log {demo.log_path()}." if db else
                       "demo: chat ended; its database and log were temporary (--db FILE keeps them).")
    return code
