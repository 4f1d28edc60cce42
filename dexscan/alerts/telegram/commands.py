"""The bot's commands: who may ask (:class:`AuthorizedOnly`), and one handler per command.

**Access**, in one place. Only chats in ``telegram.chat_ids`` get answers (and alerts, see
:mod:`.outbox`). :class:`AuthorizedOnly` is an outer middleware of the dispatcher: it runs before
any handler, so a chat outside the list never reaches one. Such a chat gets a single refusal
(remembered in ``kv`` across restarts, the newest :data:`MAX_REFUSED_CHATS` of them; logged with its
chat and user id) and silence afterwards. Allowed chats have their message ids noted: the user-side
anchor of the outbox's crash recovery.

**Handlers** (:class:`CommandHandlers`) parse a command's argument, ask the scanner through
:class:`~dexscan.backend.ScannerBackend` (the interface the local HTTP API queries too) and send what
:mod:`.answers` renders; they never touch the database themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from html import escape
from typing import Any

from aiogram import Dispatcher, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message, TelegramObject

from dexscan.alerts.chat_settings import parse_quiet
from dexscan.alerts.telegram.answers import (
    check_text,
    clip,
    render_scorecard,
    render_strategies,
    signal_list,
    stale_note,
    top_text,
    why_text,
)
from dexscan.alerts.telegram.transport import NO_PREVIEW
from dexscan.backend import ScannerBackend, verdicts_stale
from dexscan.chain.mint import is_address
from dexscan.clock import Clock, RealClock
from dexscan.config import Settings
from dexscan.store import Store

log = logging.getLogger(__name__)

COMMANDS: tuple[tuple[str, str], ...] = (
    ("help", "what this bot does and its commands"),
    ("status", "scanner status"),
    ("top", "top tokens in the universe"),
    ("signals", "latest signals"),
    ("live", "signals being tracked"),
    ("stats", "hit rate and mean R by strategy and confidence"),
    ("check", "the safety gates' verdicts on a mint and their age, re-run when stale: /check MINT"),
    ("why", "why a mint is or is not in the universe, and why its last signal fired: /why MINT"),
    ("watch", "add a mint to the universe candidates: /watch MINT"),
    ("mute", "stop alerts for a mint or a strategy in this chat: /mute MINT or /mute STRATEGY"),
    ("unmute", "alerts for a mint or a strategy again: /unmute MINT or /unmute STRATEGY"),
    ("settings", "this chat's alert settings"),
    ("minconf", "minimum confidence for alerts: /minconf 60 or off"),
    ("strategies", "each strategy's measured record and whether it alerts here; "
                   "/strategies ignition,confirmation or all"),
    ("quiet", "silent alerts at night: /quiet 22-07 or off"),
)
HELP_TEXT = (
    "<b>dexscan</b> finds early pumps in Solana DEX tokens, behind on-chain safety gates.\n"
    "Alerts come here with entry, stop, TP1–TP3 and a confidence; updates reply to them.\n\n"
    + "\n".join(f"/{name} — {escape(text)}" for name, text in COMMANDS)
)
REFUSAL = (
    "This is a private dexscan bot. Your chat id is {chat_id}; its operator can allow it by "
    "adding it to telegram.chat_ids."
)
#: Refused chats remembered (one ``kv`` row each, so each gets one refusal only); beyond this the
#: longest-remembered are forgotten, so a flood of strangers cannot grow the database. A forgotten
#: stranger who writes again is refused once more.
MAX_REFUSED_CHATS = 1000
REFUSED_KEY = "telegram:refused:"

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class AuthorizedOnly:
    """The dispatcher's outer middleware: allowed chats reach the handlers, others one refusal (module doc).

    Its ``kv`` rows and message ids are the bot's own bookkeeping, not the scanner's: they are the
    only writes of this module, and they go to the bot's store directly.
    """

    def __init__(self, store: Store, settings: Settings, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.allowed = frozenset(settings.telegram.chat_ids)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Message):
            return None
        chat_id = event.chat.id
        if chat_id in self.allowed:
            await self.store.telegram_note_message_id(chat_id, event.message_id, who="user")
            return await handler(event, data)
        user = event.from_user.id if event.from_user else None
        key = f"{REFUSED_KEY}{chat_id}"
        if await self.store.kv_get(key) is None:
            await self.store.kv_set(key, str(int(self.clock.now())))
            await self.store.kv_keep_newest(REFUSED_KEY, MAX_REFUSED_CHATS)
            log.warning("telegram: refused chat %s (user %s): not in telegram.chat_ids", chat_id, user)
            await event.answer(REFUSAL.format(chat_id=chat_id), parse_mode=None)
        else:
            log.info("telegram: ignored chat %s (user %s): already refused", chat_id, user)
        return None


class CommandHandlers:
    """One method per command, each answering through the backend. ``/watch`` keeps each chat's
    list (at most ``telegram.max_watched_per_chat``); a mint already on it or one over the cap starts
    no round."""

    def __init__(self, backend: ScannerBackend, settings: Settings, clock: Clock) -> None:
        self.backend = backend
        self.settings = settings
        self.clock = clock

    def register(self, router: Router) -> None:
        router.message(Command("start", "help"))(self.on_help)
        router.message(Command("status"))(self.on_status)
        router.message(Command("top"))(self.on_top)
        router.message(Command("signals"))(self.on_signals)
        router.message(Command("live"))(self.on_live)
        router.message(Command("stats"))(self.on_stats)
        router.message(Command("check"))(self.on_check)
        router.message(Command("why"))(self.on_why)
        router.message(Command("watch"))(self.on_watch)
        router.message(Command("mute", "unmute"))(self.on_mute)
        router.message(Command("settings"))(self.on_settings)
        router.message(Command("minconf"))(self.on_minconf)
        router.message(Command("strategies"))(self.on_strategies)
        router.message(Command("quiet"))(self.on_quiet)
        router.message()(self.on_other)

    # -- helpers

    @staticmethod
    async def reply(message: Message, text: str) -> None:
        await message.answer(clip(text), parse_mode="HTML", link_preview_options=NO_PREVIEW)

    async def mint_arg(self, message: Message, command: CommandObject) -> str | None:
        arg = (command.args or "").strip()
        if not is_address(arg):
            await self.reply(message, f"Usage: /{escape(command.command)} MINT — a Solana token address "
                                      "(base58, 32 bytes).")
            return None
        return arg

    def enabled_strategies(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.settings.strategies.enabled))  # only enabled strategies can alert

    # -- what the scanner knows

    async def on_help(self, message: Message) -> None:
        await self.reply(message, HELP_TEXT)

    async def on_status(self, message: Message) -> None:
        await self.reply(message, "<b>Status</b>\n" + escape(await self.backend.status_text()))

    async def on_top(self, message: Message) -> None:
        await self.reply(message, top_text(await self.backend.top_tokens(10)))

    async def on_signals(self, message: Message) -> None:
        rows = await self.backend.recent_signals(10)
        await self.reply(message, signal_list("Latest signals", rows, self.settings) if rows else "No signals yet.")

    async def on_live(self, message: Message) -> None:
        rows = await self.backend.live_signals(10)
        await self.reply(message, signal_list("Live signals", rows, self.settings) if rows else "No live signals.")

    async def on_stats(self, message: Message) -> None:
        await self.reply(message, render_scorecard(await self.backend.scorecard(), self.backend.worth()))

    async def on_check(self, message: Message, command: CommandObject) -> None:
        mint = await self.mint_arg(message, command)
        if mint is None:
            return
        now = self.clock.now()
        verdicts = await self.backend.check(mint)
        text = check_text(mint, verdicts, now)
        stale_after = self.backend.stale_after_s
        if verdicts and verdicts_stale(verdicts, now, stale_after):
            text += stale_note(stale_after, self.backend.runs_gates)
        await self.reply(message, text)

    async def on_why(self, message: Message, command: CommandObject) -> None:
        mint = await self.mint_arg(message, command)
        if mint is None:
            return
        await self.reply(message, why_text(mint, await self.backend.why(mint), self.clock.now()))

    # -- what a chat changes

    async def on_watch(self, message: Message, command: CommandObject) -> None:
        mint = await self.mint_arg(message, command)
        if mint is None:
            return
        cap = self.settings.telegram.max_watched_per_chat
        claim = await self.backend.add_to_watch_list(message.chat.id, mint, cap)
        if claim == "already":  # nothing new to check: no round, no request
            await self.reply(message, f"<code>{mint}</code>\nAlready on this chat's watch list.")
        elif claim == "full":
            await self.reply(message, f"<code>{mint}</code>\nNot added: this chat already watches {cap} mints, the "
                                      "most it may (telegram.max_watched_per_chat in the config).")
        else:
            await self.reply(message, f"<code>{mint}</code>\n{escape(await self.backend.watch(mint))}")

    async def on_mute(self, message: Message, command: CommandObject) -> None:
        """``/mute`` and ``/unmute``, of a mint or of a strategy."""
        mute = command.command == "mute"
        arg = (command.args or "").strip()
        if arg.lower() in self.enabled_strategies():
            await self.mute_strategy(message, arg.lower(), mute)
        elif not is_address(arg):
            await self.reply(message, f"Usage: /{escape(command.command)} MINT (a Solana token address) or "
                                      f"/{escape(command.command)} STRATEGY (one of: "
                                      f"{escape(', '.join(self.enabled_strategies()))})")
        elif mute:
            await self.backend.mute(message.chat.id, arg)
            await self.reply(message, f"Muted <code>{arg}</code> in this chat. /unmute to undo.")
        else:
            done = await self.backend.unmute(message.chat.id, arg)
            await self.reply(message, f"{'Unmuted' if done else 'Was not muted:'} <code>{arg}</code>")

    async def mute_strategy(self, message: Message, name: str, mute: bool) -> None:
        cs = await self.backend.chat_settings(message.chat.id)
        muted = tuple(n for n in cs.muted_strategies if n != name) + ((name,) if mute else ())
        was = name in cs.muted_strategies
        await self.backend.save_chat_settings(message.chat.id, replace(cs, muted_strategies=muted))
        if mute:
            await self.reply(message, f"Muted strategy <b>{escape(name)}</b> in this chat: its alerts are not sent "
                                      "here (it is still scanned and scored). /unmute " + escape(name) + " to undo.")
        else:
            await self.reply(message, f"{'Unmuted' if was else 'Was not muted:'} strategy <b>{escape(name)}</b>")

    async def on_settings(self, message: Message) -> None:
        cs = await self.backend.chat_settings(message.chat.id)
        muted = await self.backend.muted_mints(message.chat.id)
        lines = ["<b>Alert settings for this chat</b>",
                 *(escape(x) for x in cs.describe(await self.backend.calibrated()))]
        lines.append(f"Time zone: {escape(self.settings.app.timezone)}")
        lines.append(f"Muted: {len(muted)}" + "".join(f"\n<code>{m}</code>" for m in muted))
        await self.reply(message, "\n".join(lines))

    async def on_minconf(self, message: Message, command: CommandObject) -> None:
        arg = (command.args or "").strip().rstrip("%")
        cs = await self.backend.chat_settings(message.chat.id)
        if arg.lower() in ("off", "0"):
            cs = replace(cs, min_confidence_pct=None)
        else:
            try:
                value = float(arg)
            except ValueError:
                value = -1.0
            if not 0 < value <= 100:
                await self.reply(message, "Usage: /minconf 60 (percent, 1–100) or /minconf off")
                return
            cs = replace(cs, min_confidence_pct=value)
        await self.backend.save_chat_settings(message.chat.id, cs)
        await self.reply(message, escape(cs.describe(await self.backend.calibrated())[0]))

    async def on_strategies(self, message: Message, command: CommandObject) -> None:
        arg = (command.args or "").strip().lower()
        known = self.enabled_strategies()
        cs = await self.backend.chat_settings(message.chat.id)
        if not arg:
            await self.reply(message, render_strategies(known, cs, self.backend.strategy_notes))
            return
        if arg == "all":
            cs = replace(cs, strategies=None)
        else:
            names = tuple(n.strip() for n in arg.replace(" ", ",").split(",") if n.strip())
            unknown = [n for n in names if n not in known]
            if not names or unknown:
                await self.reply(message, "Usage: /strategies " + escape(",".join(known[:2])) + " or /strategies all\n"
                                 "Enabled: " + escape(", ".join(known)))
                return
            cs = replace(cs, strategies=names)
        await self.backend.save_chat_settings(message.chat.id, cs)
        await self.reply(message, escape(cs.describe()[1]))

    async def on_quiet(self, message: Message, command: CommandObject) -> None:
        arg = (command.args or "").strip()
        cs = await self.backend.chat_settings(message.chat.id)
        if arg.lower() == "off":
            cs = replace(cs, quiet=None)
        else:
            try:
                cs = replace(cs, quiet=parse_quiet(arg))
            except ValueError as exc:
                await self.reply(message, f"Usage: /quiet 22-07 (local time, {escape(self.settings.app.timezone)}) "
                                          f"or /quiet off — {escape(str(exc))}")
                return
        await self.backend.save_chat_settings(message.chat.id, cs)
        await self.reply(message, escape(cs.describe()[2]))

    async def on_other(self, message: Message) -> None:
        if message.text and message.text.startswith("/"):
            await self.reply(message, "Unknown command. /help lists them.")


def build_dispatcher(
    backend: ScannerBackend, store: Store, settings: Settings, clock: Clock | None = None
) -> Dispatcher:
    """The command handlers behind :class:`AuthorizedOnly` (``store``: the bot's own bookkeeping)."""
    clock = clock or RealClock()
    dp = Dispatcher()
    dp.message.outer_middleware(AuthorizedOnly(store, settings, clock))
    router = Router(name="dexscan")
    CommandHandlers(backend, settings, clock).register(router)
    dp.include_router(router)
    return dp
