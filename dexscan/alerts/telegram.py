"""Telegram delivery and commands: the outbox sender, the bot's commands, ``dexscan bot``.

Delivery is **at least once, made exactly once by idempotency**. The engine writes an alert to the
``alert_outbox`` table in the same transaction as its signal (or outcome), so a decided alert can
never be lost. :class:`OutboxSender` then delivers rows in id order per chat, one chat never
holding up another, within Telegram's flood limits (1 message/s per chat, 25/s overall, sliding
windows from :class:`~dexscan.budget.Budget`), honouring ``retry_after``, backing off on transient
errors and giving up for good on permanent ones (blocked, chat not found, rejected HTML).

**The crash window.** A row is marked ``sending`` (committed) before the HTTP call and ``sent``
with Telegram's ``message_id`` after it. If the process dies between Telegram accepting the
message and our commit, or the connection drops after the request left, the row is left
``sending``: the message may or may not be in the chat. Resending blindly would duplicate it;
dropping it would lose it. We find out instead, using two facts of the Bot API:

1. message ids come from a counter that only grows: one counter for **all** of a bot's private
   chats and basic groups (shared with the users' own messages; ids in one chat are therefore not
   consecutive when the bot talks in several), one per supergroup or channel. We know the highest
   id we posted in each chat (outbox rows, plus every other message the bot sends there, recorded
   under the same per-chat lock, so at most *one* message per chat is ever unrecorded), and right
   before each send we note the highest id known on that chat's counter (``probe_from``);
2. ``editMessageText`` with the *identical* text and keyboard answers ``400 message is not
   modified`` only if that message exists, is ours and already has exactly that content;
   otherwise it answers ``message to edit not found`` (free id), ``message can't be edited``
   (someone else's message) or ``there is no text in the message to edit`` (a photo).

So a ``sending`` row is resolved by probing, in its own chat, every id above its ``probe_from`` up
to the highest id now known on the counter plus ``probe_window`` (ids another chat took answer
"message to edit not found" in this one and are passed over): "not modified" means the alert is
there, and we record that id; no match means the send never happened, and we send it now. Probing
from "the last id recorded in this chat" instead would miss the alert whenever another chat got
messages in between (the counter is shared), and the alert would be sent twice. The
probe never creates a message, and because sends and their bookkeeping are serialised per chat,
the only unrecorded message of ours it can meet is the alert itself. Limits: a chat the bot has
never posted to or heard from has no anchor id (we resend, once ``getMe`` shows Telegram answers
again, so an outage adds at most one copy); more than ``probe_window`` user messages landing
between our last recorded message and the lost one make us resend (a duplicate is then possible,
a loss never). Outage handling uses the same path: a refused connection is
certainly not sent (back to ``pending``); a reset or a timeout is ambiguous (stays ``sending``).

**Digest.** A storm becomes one message. Rule, per chat: when the sender is about to deliver a
signal alert created at ``T``, it counts the chat's signal alerts created in ``(T - window, T]``
that were or will be shown (every state but ``failed``). If the count is above
``digest_threshold`` (default: more than 5 within 120 s), that alert and every other pending
signal alert of the chat are folded into one digest message: the first row carries the digest
(its payload replaced before sending, so recovery compares the right text) and every member ends
``digested`` with the digest's message id, which outcome updates then reply to.

**One alert per move.** A strategy that joins a move already alerted (same token and 4H candle
within ``scan.move_window_s``, :func:`dexscan.engine.move_members`) has an outbox row of kind
``join`` whose payload is the whole move's card and ``join_of`` the move's earlier signal ids. Rows
of a chat are delivered in id order, so the move's first alert is settled before its joins. A join
*edits* the move's message (the first delivered alert row of those signals in the chat) into the new
card: no second alert. An edit is idempotent (repeating it answers "message is not modified", which
counts as done), so a join row left ``sending`` by a crash is simply edited again: nothing is lost
or doubled. When the move has no delivered message in the chat (its first alert was filtered out,
folded into a digest, or failed) or Telegram refuses the edit (message deleted), the join's card is
*sent* as the move's alert there, through the ordinary send path and its crash recovery. A join
filtered out by the chat (a muted strategy or mint) ends ``failed``/``skipped`` and the message is
left as it was; a later join's card still lists every strategy that fired. Outcome updates of a
joined strategy reply to the move's message. The digest counts moves (``signal`` rows), not joins.

**Per-chat settings** (``/minconf``, ``/strategies``, ``/mute``) are applied at delivery: a
filtered row ends ``failed`` with ``last_error`` starting ``skipped:``; quiet hours (``/quiet``,
in the configured local zone) send silently (``disable_notification``).

**Access.** Only chats in ``telegram.chat_ids`` get alerts or answers; any other chat gets one
refusal (remembered in ``kv``) and nothing else. The bot token travels in Bot API URLs, so every
error text this module logs or stores goes through :func:`scrub`.

Share the store *file*, not the connection: in ``dexscan scan`` give the sender its own
:class:`~dexscan.store.Store` opened on the same path, so its writes never interleave with an
engine transaction on one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import signal as os_signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from html import escape
from typing import Any, Protocol

import aiohttp
from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandObject
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
    TelegramObject,
    Update,
)
from pydantic import ValidationError

from dexscan.alerts.charts import render_chart
from dexscan.alerts.format import (
    LAYER_LABEL,
    RESULT_LABEL,
    AlertMessage,
    CardExtras,
    bot_setup_problem,
    digest_card,
    fmt_clock,
    outcome_card,
    reason_text,
    signal_card,
    utf16_len,
    verdict_lines,
)
from dexscan.budget import Budget
from dexscan.chain.mint import is_address
from dexscan.clock import Clock, RealClock
from dexscan.config import Settings, mask_text, mask_url, url_origin
from dexscan.domain import GateVerdict, Outcome, Signal, Timeframe
from dexscan.errors import ConfigError
from dexscan.fmt import fmt_duration, fmt_price, fmt_usd
from dexscan.logs import setup_logging
from dexscan.scoring import Scorer
from dexscan.status import open_r, stop_in_force
from dexscan.store import Store

log = logging.getLogger(__name__)

StoredSignal = tuple[int, Signal, Outcome | None]

#: Bot API methods that post or change a message in a chat: rate-limited and serialised per chat.
CHAT_METHODS = frozenset({"sendMessage", "sendPhoto", "editMessageText", "editMessageCaption", "sendDocument"})
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
_HELD_CHAT: ContextVar[int | None] = ContextVar("dexscan_telegram_held_chat", default=None)


def scrub(text: str, token: str | None = None) -> str:
    """``text`` with the bot token (and anything shaped like a secret) replaced by ``***``
    (:func:`~dexscan.config.mask_text`, the one masking rule)."""
    return mask_text(text, [token] if token else [])


def describe_error(exc: BaseException) -> str:
    """One line for logs and ``last_error``: the exception type and Telegram's own description."""
    if isinstance(exc, TelegramRetryAfter):
        return f"TelegramRetryAfter: retry after {exc.retry_after}s"
    if isinstance(exc, ClientDecodeError):  # its str() repeats the whole body, which may be 10 MB
        return f"ClientDecodeError: bad answer at {decode_error_field(exc)}: {decode_error_problem(exc)}"
    text = exc.message if isinstance(exc, TelegramAPIError) else str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def decode_error_field(exc: ClientDecodeError) -> str:
    """Where a Bot API answer broke its contract: the first validation error's location
    (``result.0.message.chat.id``), or ``<body>`` when the answer was not JSON at all."""
    original = exc.original
    if isinstance(original, ValidationError) and original.errors():
        return ".".join(str(p) for p in original.errors()[0]["loc"]) or "<body>"
    return "<body>"


def decode_error_problem(exc: ClientDecodeError) -> str:
    original = exc.original
    if isinstance(original, ValidationError) and original.errors():
        return original.errors()[0]["msg"]
    if isinstance(original, RecursionError):
        return "not JSON (nested too deeply)"
    return f"not JSON ({type(original).__name__})"


# -- per-chat settings --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """What a chat chose with /minconf, /strategies and /quiet (stored as JSON in ``chat_settings``)."""

    min_confidence_pct: float | None = None
    strategies: tuple[str, ...] | None = None
    quiet: tuple[int, int] | None = None  # minutes after local midnight: [start, end)
    muted_strategies: tuple[str, ...] = ()  # /mute STRATEGY: e.g. one with a negative record

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChatSettings:
        quiet = data.get("quiet")
        strategies = data.get("strategies")
        return cls(
            min_confidence_pct=data.get("min_confidence_pct"),
            strategies=tuple(strategies) if strategies else None,
            quiet=(int(quiet[0]), int(quiet[1])) if quiet else None,
            muted_strategies=tuple(str(x) for x in data.get("muted_strategies") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "min_confidence_pct": self.min_confidence_pct,
            "strategies": list(self.strategies) if self.strategies else None,
            "quiet": list(self.quiet) if self.quiet else None,
            "muted_strategies": list(self.muted_strategies),
        }

    def alerts_for(self, strategy: str) -> bool:
        """Whether this chat gets the strategy's alerts (its /strategies list and /mute STRATEGY)."""
        return strategy not in self.muted_strategies and (self.strategies is None or strategy in self.strategies)

    def is_quiet(self, local: datetime) -> bool:
        if self.quiet is None:
            return False
        start, end = self.quiet
        minute = local.hour * 60 + local.minute
        return start <= minute < end if start < end else minute >= start or minute < end

    def skip_reason(self, signal: Signal) -> str | None:
        """Why this chat does not want the signal, or None."""
        if signal.strategy in self.muted_strategies:
            return f"skipped: strategy {signal.strategy} is muted in this chat"
        if self.strategies is not None and signal.strategy not in self.strategies:
            return f"skipped: strategy {signal.strategy} is filtered out in this chat"
        if self.min_confidence_pct is not None:
            conf = signal.confidence
            score = None if conf is None else (conf.probability if conf.calibrated else conf.raw_score)
            if score is None or score * 100 < self.min_confidence_pct:
                if conf is not None and conf.calibrated:
                    return f"skipped: confidence below the chat's minimum {self.min_confidence_pct:g}%"
                return f"skipped: raw score below the chat's minimum {self.min_confidence_pct / 100:.2f}"
        return None

    def min_confidence_text(self, calibrated: bool) -> str:
        """The chat's minimum in words: a percentage only for calibrated probabilities (SPEC §7);
        while uncalibrated the same number is a minimum *raw score*, which is not a probability."""
        if self.min_confidence_pct is None:
            return "any"
        if calibrated:
            return f"≥ {self.min_confidence_pct:g}% (calibrated probability)"
        return f"raw score ≥ {self.min_confidence_pct / 100:.2f}"

    def describe(self, calibrated: bool = False) -> list[str]:
        """The chat's settings in words; ``calibrated``: the scanner's confidences are calibrated
        probabilities with measured skill (else the minimum is shown as a raw score)."""
        conf = self.min_confidence_text(calibrated)
        if self.min_confidence_pct is not None and not calibrated:
            conf += " (uncalibrated: no skill measured yet, so no percentage)"
        quiet = "off" if self.quiet is None else f"{_hhmm(self.quiet[0])}–{_hhmm(self.quiet[1])} local (silent)"
        return [
            f"Min confidence: {conf}",
            f"Strategies: {', '.join(self.strategies) if self.strategies else 'all'}"
            + (f" (muted: {', '.join(self.muted_strategies)})" if self.muted_strategies else ""),
            f"Quiet hours: {quiet}",
        ]


def parse_quiet(text: str) -> tuple[int, int]:
    """``22-07`` or ``22:30-07:00`` → minutes after midnight; ``ValueError`` says what is wrong."""
    m = re.fullmatch(r"\s*(\d{1,2})(?::(\d{2}))?\s*-\s*(\d{1,2})(?::(\d{2}))?\s*", text)
    if not m:
        raise ValueError("expected HH-HH or HH:MM-HH:MM, e.g. 22-07")
    start = int(m.group(1)) * 60 + int(m.group(2) or 0)
    end = int(m.group(3)) * 60 + int(m.group(4) or 0)
    if not (0 <= start < 1440 and 0 <= end < 1440) or int(m.group(2) or 0) >= 60 or int(m.group(4) or 0) >= 60:
        raise ValueError("hours run 00-23 and minutes 00-59")
    if start == end:
        raise ValueError("start and end are the same time")
    return start, end


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# -- the send discipline: budgets, per-chat serialisation, message-id bookkeeping ---------------


class SendDiscipline(BaseRequestMiddleware):
    """Every message-posting call of the bot passes here (an aiogram request middleware).

    It spends the per-chat and global budgets, serialises calls per chat, and records the id of
    every message the bot posts outside the outbox (command answers), so that at most one message
    per chat (the one in flight) is ever unknown to the crash recovery. The outbox sender takes
    the chat lock itself with :meth:`exclusive` and records its own ids with the row.
    """

    def __init__(self, store: Store, settings: Settings, clock: Clock) -> None:
        tg = settings.telegram
        self.store = store
        self.clock = clock
        self._per_chat = _budget_shape(tg.per_chat_per_s)
        self.global_budget = Budget("telegram", *_budget_shape(tg.global_per_s), clock=clock)
        self._budgets: dict[int, Budget] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def chat_budget(self, chat_id: int) -> Budget:
        if chat_id not in self._budgets:
            self._budgets[chat_id] = Budget(f"telegram:{chat_id}", *self._per_chat, clock=self.clock)
        return self._budgets[chat_id]

    @asynccontextmanager
    async def exclusive(self, chat_id: int) -> AsyncIterator[None]:
        """Hold the chat: nothing else is posted there until the block (and its bookkeeping) ends."""
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        async with lock:
            token = _HELD_CHAT.set(chat_id)
            try:
                yield
            finally:
                _HELD_CHAT.reset(token)

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Any:
        chat_id = getattr(method, "chat_id", None)
        if not isinstance(chat_id, int) or method.__api_method__ not in CHAT_METHODS:
            return await make_request(bot, method)
        if _HELD_CHAT.get() == chat_id:
            return await self._spend_and_call(make_request, bot, method, chat_id)
        async with self.exclusive(chat_id):
            attempt = 1
            while True:
                try:
                    result = await self._spend_and_call(make_request, bot, method, chat_id)
                    break
                except TelegramRetryAfter as exc:
                    if attempt >= 3 or exc.retry_after > 60:
                        raise
                    attempt += 1
                    await self.clock.sleep(exc.retry_after)
            if isinstance(result, Message):
                await self.store.telegram_note_message_id(chat_id, result.message_id)
            return result

    async def _spend_and_call(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
        method: TelegramMethod[TelegramType], chat_id: int,
    ) -> Any:
        await self.chat_budget(chat_id).acquire()
        await self.global_budget.acquire()
        try:
            return await make_request(bot, method)
        except TelegramRetryAfter as exc:
            self.chat_budget(chat_id).penalise(exc.retry_after)
            raise


def _budget_shape(per_s: float) -> tuple[int, float]:
    """(limit, window) for a rate: 25/s → 25 per 1 s; 0.5/s → 1 per 2 s."""
    return (round(per_s), 1.0) if per_s >= 1 else (1, 1.0 / per_s)


class _SameHostSession(AiohttpSession):
    """aiogram's session whose requests never leave ``telegram.base_url``'s origin (scheme, host and
    port): the bot token travels in every Bot API path, so a redirect to another host, which aiohttp
    would follow, would hand it over. Such a redirect fails as a connection error instead."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(api=TelegramAPIServer.from_base(base_url), timeout=timeout)
        self._origin = url_origin(base_url)

    async def create_session(self) -> aiohttp.ClientSession:
        session = await super().create_session()
        session._middlewares = (self._same_host_only,)  # aiohttp's client middlewares (>= 3.12)
        return session

    async def _same_host_only(self, request: aiohttp.ClientRequest,
                              handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
        if url_origin(str(request.url)) != self._origin:
            raise aiohttp.ClientConnectionError(
                f"redirect to another host ({mask_url(str(request.url))}) not followed, so that the bot token "
                "stays with telegram.base_url's host")
        return await handler(request)


def create_bot(settings: Settings, store: Store, clock: Clock | None = None, token: str | None = None) -> Bot:
    """An aiogram Bot on ``telegram.base_url`` (and only there) with the :class:`SendDiscipline` installed."""
    secret = token or (settings.secrets.telegram_token.get_secret_value() if settings.secrets.telegram_token else "")
    if not secret:
        raise ConfigError("telegram: no bot token; set DEXSCAN_TELEGRAM_TOKEN (from @BotFather)")
    session = _SameHostSession(settings.telegram.base_url, settings.http.timeout_s)
    session.middleware(SendDiscipline(store, settings, clock or RealClock()))
    try:
        return Bot(secret, session=session, default=DefaultBotProperties(parse_mode="HTML"))
    except Exception as exc:
        raise ConfigError(f"telegram: the bot token is malformed ({scrub(str(exc), secret)})") from None


def discipline_of(bot: Bot) -> SendDiscipline | None:
    for middleware in bot.session.middleware:
        if isinstance(middleware, SendDiscipline):
            return middleware
    return None


def _markup(message: AlertMessage) -> InlineKeyboardMarkup | None:
    if not message.buttons:
        return None
    return InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=b.text, url=b.url) for b in row] for row in message.buttons
    ])


_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


# -- the outbox sender ----------------------------------------------------------------------------


class _Permanent(Exception):
    """This row can never be delivered (the message says why)."""


class _Retry(Exception):
    """Try again later. ``maybe_sent``: Telegram may have the message (keep the row ``sending``)."""

    def __init__(self, cause: BaseException, maybe_sent: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.maybe_sent = maybe_sent


def _classified(exc: TelegramAPIError, maybe_sent: bool | None = None) -> Exception:
    """A Bot API failure as :class:`_Permanent` or :class:`_Retry`.

    ``maybe_sent=None`` means "decide from the error": a refused connection, a 429, a 401 or any
    4xx answer are certain non-deliveries; a reset, a timeout or a 5xx may hide a delivery.
    """
    if isinstance(exc, TelegramForbiddenError | TelegramBadRequest):
        return _Permanent(f"Telegram refused: {exc.message}")
    if isinstance(exc, TelegramMigrateToChat):
        return _Permanent(f"the group became a supergroup; use chat id {exc.migrate_to_chat_id}")
    if maybe_sent is None:
        if isinstance(exc, TelegramNetworkError):
            maybe_sent = not isinstance(exc.__cause__, aiohttp.ClientConnectorError)
        else:
            maybe_sent = isinstance(exc, TelegramServerError)
    return _Retry(exc, maybe_sent)


class OutboxSender:
    """Delivers ``alert_outbox`` rows to Telegram (see the module docstring for the guarantees)."""

    def __init__(
        self,
        store: Store,
        bot: Bot,
        settings: Settings,
        clock: Clock | None = None,
        *,
        probe_window: int = 5,
        backoff_base_s: float = 2.0,
        backoff_max_s: float = 60.0,
        idle_s: float = 1.0,
        chart_renderer: Callable[..., bytes] = render_chart,
    ) -> None:
        self.store = store
        self.bot = bot
        self.settings = settings
        self.clock: Clock = clock or RealClock()
        self.allowed = frozenset(settings.telegram.chat_ids)
        self.probe_window = probe_window
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.idle_s = idle_s
        self.chart_renderer = chart_renderer
        self.discipline = discipline_of(bot) or self._install_discipline()
        self._wake = asyncio.Event()

    def _install_discipline(self) -> SendDiscipline:
        discipline = SendDiscipline(self.store, self.settings, self.clock)
        self.bot.session.middleware(discipline)
        return discipline

    def wake(self) -> None:
        """New rows were written: look now instead of at the next idle tick."""
        self._wake.set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Deliver until ``stop`` is set; a delivery problem is logged, never raised."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            wait = self.idle_s
            try:
                await self.drain_once(stop)
                heads = await self.store.outbox_heads()
                if heads:
                    soonest = min(int(h["next_attempt_at"]) for h in heads)
                    wait = min(wait, max(0.0, soonest - self.clock.now()))
            except Exception as exc:
                log.error("telegram outbox: delivery pass failed: %s", self._scrub(describe_error(exc)))
            self._wake.clear()
            waiters = [asyncio.ensure_future(self.clock.sleep(max(wait, 0.01))),
                       asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for task in waiters:
                task.cancel()

    async def drain_once(self, stop: asyncio.Event | None = None) -> int:
        """Deliver every row that is due now, chats in parallel; returns the rows settled."""
        settled = 0
        while stop is None or not stop.is_set():
            now = self.clock.now()
            due = [h for h in await self.store.outbox_heads() if h["next_attempt_at"] <= now]
            if not due:
                break
            results = await asyncio.gather(*(self._deliver_head(h) for h in due))
            settled += sum(results)
        return settled

    # -- one row -----------------------------------------------------------------------------

    async def _deliver_head(self, row: dict[str, Any]) -> int:
        """Try the oldest undelivered row of a chat. Returns 1 if it reached a final state."""
        row_id, chat_id = int(row["id"]), int(row["chat_id"])
        message: AlertMessage | None = None
        try:
            if chat_id not in self.allowed:
                raise _Permanent("chat is not in telegram.chat_ids")
            message, signal = await self._message_for(row)
            if row["state"] == "pending" and not message.digest_of:
                reason = await self._skip_reason(row, signal)
                if reason:
                    await self.store.outbox_mark_failed([row_id], reason, int(self.clock.now()))
                    return 1
                if row["kind"] == "signal" and signal is not None:
                    message = await self._maybe_digest(row, message)
            if message.digest_of:
                await self.store.outbox_mark_digested([i for i in message.digest_of if i != row_id])
            if row["kind"] == "join" and await self._join_move(row, message):
                return 1
            await self._send_row(row, message, signal)
            return 1
        except _Permanent as exc:
            reason = self._scrub(str(exc))
            log.warning("telegram: alert %s to chat %s not delivered: %s", row_id, chat_id, reason)
            members = [i for i in message.digest_of if i != row_id] if message else []
            await self.store.outbox_mark_failed([row_id, *members], reason, int(self.clock.now()))
            return 1
        except _Retry as exc:
            await self._retry_later(row, exc.cause, exc.maybe_sent)
            return 0
        except Exception as exc:
            current = [r for r in await self.store.outbox_rows(chat_id=chat_id) if r["id"] == row_id]
            await self._retry_later(row, exc, bool(current) and current[0]["state"] == "sending")
            return 0

    async def _send_row(self, row: dict[str, Any], message: AlertMessage, signal: Signal | None) -> None:
        row_id, chat_id = int(row["id"]), int(row["chat_id"])
        members = [i for i in message.digest_of if i != row_id]
        digest = bool(message.digest_of)
        async with self.discipline.exclusive(chat_id):
            if row["state"] == "sending":
                try:
                    found = await self._probe(chat_id, message, row_id)
                except TelegramAPIError as exc:
                    raise _classified(exc, maybe_sent=True) from None
                if found is not None:
                    log.info("telegram: alert %s was already in chat %s as message %s", row_id, chat_id, found)
                    await self.store.outbox_mark_sent(row_id, found, int(self.clock.now()), members, digest)
                    return
            reply_to = await self._reply_target(row)
            quiet = await self._is_quiet(chat_id)
            await self.store.outbox_note_probe_from(row_id, await self.store.telegram_counter_high(chat_id))
            await self.store.outbox_mark_sending(row_id)
            try:
                sent = await self.bot.send_message(
                    chat_id=chat_id, text=message.text, parse_mode="HTML", reply_markup=_markup(message),
                    link_preview_options=_NO_PREVIEW, disable_notification=quiet or None,
                    reply_parameters=ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
                    if reply_to else None,
                )
            except TelegramAPIError as exc:
                raise _classified(exc) from None
            await self.store.outbox_mark_sent(row_id, sent.message_id, int(self.clock.now()), members, digest)
            if self.settings.telegram.send_charts and row["kind"] == "signal" and signal and not digest:
                await self._send_chart(row_id, chat_id, signal, sent.message_id)

    async def _join_move(self, row: dict[str, Any], message: AlertMessage) -> bool:
        """Edit the move's message into this join's card (module doc, "One alert per move").

        True when done; False when the card must be sent as a message of its own instead: the move
        has no delivered message in this chat, Telegram refused the edit, or an earlier attempt
        already went down the send path (a ``probe_from`` is noted: its recovery must run).
        """
        row_id, chat_id = int(row["id"]), int(row["chat_id"])
        if row["state"] == "sending" and await self.store.outbox_probe_from(row_id) is not None:
            return False
        target = await self.store.outbox_move_message(chat_id, message.join_of)
        if target is None:
            return False
        async with self.discipline.exclusive(chat_id):
            await self.store.outbox_mark_sending(row_id)
            try:
                await self.bot.edit_message_text(
                    chat_id=chat_id, message_id=target, text=message.text, parse_mode="HTML",
                    reply_markup=_markup(message), link_preview_options=_NO_PREVIEW,
                )
            except TelegramBadRequest as exc:
                if "message is not modified" not in exc.message:
                    log.warning("telegram: could not edit move message %s in chat %s (%s); sending alert %s "
                                "as a message of its own", target, chat_id, self._scrub(exc.message), row_id)
                    return False
            except TelegramAPIError as exc:
                raise _classified(exc, maybe_sent=True) from None  # an edit is safe to repeat
            await self.store.outbox_mark_sent(row_id, target, int(self.clock.now()))
        log.info("telegram: alert %s joined move message %s in chat %s", row_id, target, chat_id)
        return True

    async def _probe(self, chat_id: int, message: AlertMessage, row_id: int) -> int | None:
        """The id of our identical message just above the last one recorded, or None (module doc)."""
        last_bot = await self.store.telegram_last_message_id(chat_id)
        last_user = await self.store.telegram_last_user_message_id(chat_id)
        start = await self.store.outbox_probe_from(row_id)  # the counter's high before the send
        if last_bot is None and last_user is None and start is None:
            # Nothing to probe from: the row is resent, but only once Telegram answers again.
            # During an outage that accepts and then drops requests, every failed attempt would
            # otherwise leave one more copy in the chat.
            await self.bot.get_me()
            return None
        if start is not None:
            # One counter for all private chats and basic groups: the lost message took an id above
            # the counter's high when it was sent, and other chats may have taken ids since.
            low = start
            high = max(start, await self.store.telegram_counter_high(chat_id) or 0) + self.probe_window
        else:
            low = last_bot if last_bot is not None else max(0, (last_user or 0) - self.probe_window)
            high = max(last_bot or 0, last_user or 0) + self.probe_window
        for candidate in range(low + 1, high + 1):
            try:
                await self.bot.edit_message_text(
                    chat_id=chat_id, message_id=candidate, text=message.text, parse_mode="HTML",
                    reply_markup=_markup(message), link_preview_options=_NO_PREVIEW,
                )
            except TelegramBadRequest as exc:
                if "message is not modified" in exc.message:
                    return candidate
                continue
            log.warning("telegram: recovery probe rewrote message %s in chat %s (it was ours, unrecorded)",
                        candidate, chat_id)
            return candidate
        return None

    async def _retry_later(self, row: dict[str, Any], exc: BaseException, maybe_sent: bool) -> None:
        row_id, chat_id = int(row["id"]), int(row["chat_id"])
        attempts = int(row["attempts"]) + 1
        error = self._scrub(describe_error(exc))
        if isinstance(exc, TelegramRetryAfter):
            delay = float(exc.retry_after)
        elif isinstance(exc, TelegramUnauthorizedError):
            delay = self.backoff_max_s
            error = "Telegram rejected the bot token (401 Unauthorized); check DEXSCAN_TELEGRAM_TOKEN"
        else:
            delay = self._backoff(row_id, attempts)
        state = "sending" if maybe_sent else "pending"
        log.warning("telegram: alert %s to chat %s: %s; retry in %.0fs (%s)", row_id, chat_id, error, delay,
                    "may have been delivered" if maybe_sent else "not delivered")
        await self.store.outbox_retry_later(row_id, int(self.clock.now() + delay + 0.999), error, state)

    def _backoff(self, row_id: int, attempts: int) -> float:
        base = min(self.backoff_max_s, self.backoff_base_s * 2 ** max(0, attempts - 1))
        return base * (0.8 + 0.4 * random.Random(row_id * 1_000_003 + attempts).random())

    # -- what to send --------------------------------------------------------------------------

    async def _message_for(self, row: dict[str, Any]) -> tuple[AlertMessage, Signal | None]:
        signal = await self.store.signal_by_id(int(row["signal_id"])) if row["signal_id"] is not None else None
        try:
            return AlertMessage.from_payload(row["payload"]), signal
        except ValueError as exc:
            if signal is None:
                raise _Permanent(f"payload unusable and no signal to render from: {exc}") from None
        message = await self._render(row, signal)
        await self.store.outbox_set_payload(int(row["id"]), message.to_payload())
        return message, signal

    async def _render(self, row: dict[str, Any], signal: Signal) -> AlertMessage:
        zone = self.settings.local_zone()
        if row["kind"] == "outcome":
            for sid, _, outcome in await self.store.signals(mint=signal.mint):
                if sid == row["signal_id"] and outcome is not None:
                    return outcome_card(signal, outcome, zone)
            raise _Permanent("outcome row without a stored outcome")
        return signal_card(signal, await card_extras_from_store(self.store, signal, zone))

    async def _skip_reason(self, row: dict[str, Any], signal: Signal | None) -> str | None:
        chat_id = int(row["chat_id"])
        if signal is None:
            return None
        if signal.mint in await self.store.muted_mints(chat_id):
            return "skipped: mint muted in this chat"
        if row["kind"] == "outcome":
            original = await self.store.outbox_signal_alert(int(row["signal_id"]), chat_id)
            if original is not None and original["state"] == "failed":
                return "skipped: the original alert was not delivered to this chat"
            return None
        settings = ChatSettings.from_json(await self.store.chat_settings(chat_id))
        return settings.skip_reason(signal)

    async def _maybe_digest(self, row: dict[str, Any], message: AlertMessage) -> AlertMessage:
        tg = self.settings.telegram
        chat_id, created = int(row["chat_id"]), int(row["created_at"])
        count = await self.store.outbox_alert_count(chat_id, created - int(tg.digest_window_s), created)
        if count <= tg.digest_threshold:
            return message
        members: list[int] = []
        signals: list[Signal] = []
        now = int(self.clock.now())
        for other in await self.store.outbox_pending_signals(chat_id):
            sig = await self.store.signal_by_id(int(other["signal_id"]))
            if sig is None:
                continue
            if other["id"] != row["id"]:
                reason = await self._skip_reason(other, sig)
                if reason:
                    await self.store.outbox_mark_failed([int(other["id"])], reason, now)
                    continue
            members.append(int(other["id"]))
            signals.append(sig)
        digest = replace(digest_card(signals, tg.digest_window_s), digest_of=tuple(members))
        await self.store.outbox_set_payload(int(row["id"]), digest.to_payload())
        log.info("telegram: %d alerts for chat %s folded into one digest", len(members), chat_id)
        return digest

    async def _reply_target(self, row: dict[str, Any]) -> int | None:
        if row["kind"] != "outcome" or row["signal_id"] is None:
            return None
        original = await self.store.outbox_signal_alert(int(row["signal_id"]), int(row["chat_id"]))
        return None if original is None or original["message_id"] is None else int(original["message_id"])

    async def _is_quiet(self, chat_id: int) -> bool:
        settings = ChatSettings.from_json(await self.store.chat_settings(chat_id))
        local = datetime.fromtimestamp(self.clock.now(), UTC).astimezone(self.settings.local_zone())
        return settings.is_quiet(local)

    async def _send_chart(self, row_id: int, chat_id: int, signal: Signal, reply_to: int) -> None:
        """Best effort and at most once: a lost chart is acceptable, a duplicate is not."""
        key = f"telegram:chart:{row_id}"
        if signal.pool is None or await self.store.kv_get(key) is not None:
            return
        c4 = await self.store.candles(signal.pool, Timeframe.H4, signal.ts - 30 * 14400, signal.ts + 1)
        c5 = await self.store.candles(signal.pool, Timeframe.M5, signal.ts - 72 * 300, signal.ts + 1)
        if not c4 and not c5:
            return
        await self.store.kv_set(key, str(int(self.clock.now())))
        try:
            png = await asyncio.to_thread(self.chart_renderer, signal, c4, c5)
            photo = await self.bot.send_photo(
                chat_id=chat_id, photo=BufferedInputFile(png, "chart.png"), disable_notification=True,
                reply_parameters=ReplyParameters(message_id=reply_to, allow_sending_without_reply=True),
            )
            await self.store.telegram_note_message_id(chat_id, photo.message_id)
        except Exception as exc:
            log.warning("telegram: chart for alert %s not sent: %s", row_id, self._scrub(str(exc)))

    def _scrub(self, text: str) -> str:
        return scrub(text, self.bot.token)


async def card_extras_from_store(store: Store, signal: Signal, zone: Any = None) -> CardExtras:
    """What a card shows beyond the signal, from what the store knows about the token."""
    token = await store.token_row(signal.mint)
    pool = next((p for p in await store.pools_of(signal.mint) if p["address"] == signal.pool), None)
    return CardExtras(
        name=str(token["name"]) if token else "",
        volume_h24_usd=pool["volume_h24_usd"] if pool else None,
        pair_created_at=pool["pair_created_at"] if pool else None,
        gates=await store.latest_verdicts(signal.mint),
        local_zone=zone,
    )


# -- commands ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopToken:
    mint: str
    symbol: str
    name: str = ""
    pool: str | None = None
    liquidity_usd: float | None = None
    volume_h24_usd: float | None = None
    price_usd: float | None = None
    change_pct: float | None = None


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """One cell of the scorecard: closed signals of a strategy in a confidence decile."""

    strategy: str
    decile: int | None  # 0-9 (6 = 60-69% or raw score 0.60-0.69); None = not scored
    n: int
    hits: int
    mean_r: float
    calibrated: bool = False  # the decile is of a calibrated probability (else of the raw score)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.n if self.n else 0.0


class BotBackend(Protocol):
    """Where the bot's commands get their answers (the engine provides a live one)."""

    async def status_text(self) -> str: ...

    async def top_tokens(self, limit: int) -> list[TopToken]: ...

    async def recent_signals(self, limit: int, mint: str | None = None) -> list[StoredSignal]: ...

    async def live_signals(self, limit: int) -> list[StoredSignal]: ...

    async def scorecard(self) -> list[ScoreRow]: ...

    async def calibrated(self) -> bool: ...

    @property
    def runs_gates(self) -> bool: ...

    async def check(self, mint: str) -> list[GateVerdict]: ...

    async def why(self, mint: str) -> list[GateVerdict]: ...

    async def watch(self, mint: str) -> str: ...

    async def mute(self, chat_id: int, mint: str) -> None: ...

    async def unmute(self, chat_id: int, mint: str) -> bool: ...

    def strategy_notes(self, strategy: str) -> tuple[str, ...]: ...

    def worth(self) -> Mapping[str, Any]: ...


Checker = Callable[[str], Awaitable[Sequence[GateVerdict]]]


class StoreBackend:
    """Answers every command from the store; ``/check`` shows the stored verdicts while they are
    younger than ``stale_after_s`` (the scanner re-checks its members that often) and runs
    ``checker`` when they are older or missing (without a checker, the stale ones are shown)."""

    def __init__(self, store: Store, checker: Checker | None = None, clock: Clock | None = None,
                 stale_after_s: float = 600.0, scorer: Scorer | None = None) -> None:
        self.store = store
        self.checker = checker
        self.clock: Clock = clock or RealClock()
        self.stale_after_s = stale_after_s
        self.scorer = scorer

    def strategy_notes(self, strategy: str) -> tuple[str, ...]:
        """The strategy's no-skill text and measured record from the scanner's calibrator (none without one)."""
        return () if self.scorer is None else self.scorer.strategy_notes(strategy)

    def worth(self) -> Mapping[str, Any]:
        """Each strategy against the baselines on the calibrator's data (:func:`dexscan.evaluate.strategy_worth`)."""
        cal = None if self.scorer is None else self.scorer.usable()
        return {} if cal is None else cal.worth

    async def status_text(self) -> str:
        universe = await self.store.universe()
        live = await self.store.signals(status="live")
        pending = await self.store.outbox_rows(state="pending")
        latest = await self.store.signals(limit=1)
        last = fmt_clock(latest[-1][1].ts) if latest else "none yet"
        return (
            f"Universe: {len(universe)} tokens\n"
            f"Signals stored: {await self.store.signal_count()} (last: {last})\n"
            f"Live signals: {len(live)}\n"
            f"Alerts waiting: {len(pending)}\n"
            f"(answered from the database; the scanner's live status shows here when it runs)"
        )

    async def top_tokens(self, limit: int) -> list[TopToken]:
        return [
            TopToken(r["mint"], r["symbol"], r["name"], r["pool"], r["liquidity_usd"], r["volume_h24_usd"])
            for r in await self.store.top_tokens(limit)
        ]

    async def recent_signals(self, limit: int, mint: str | None = None) -> list[StoredSignal]:
        return await self._priced(list(reversed(await self.store.signals(mint=mint, limit=limit))))

    async def live_signals(self, limit: int) -> list[StoredSignal]:
        return await self._priced(list(reversed(await self.store.signals(status="live")))[:limit])

    async def _priced(self, rows: list[StoredSignal]) -> list[StoredSignal]:
        """Open trades with the latest price the database knows: the scanner stores an outcome
        only when a level is hit, but it stores every 5m bar of the pool, so the last bar's close
        after the signal is newer than the stored outcome's ``last_price`` (which is None until
        the first hit)."""
        out: list[StoredSignal] = []
        for sid, sig, o in rows:
            if o is not None and o.result == "open" and sig.pool:
                bars = await self.store.candles(sig.pool, Timeframe.M5, start=Timeframe.M5.floor(sig.ts))
                if bars:
                    o = replace(o, last_price=bars[-1].close)
            out.append((sid, sig, o))
        return out

    async def scorecard(self) -> list[ScoreRow]:
        """Closed outcomes by strategy and decile: of the calibrated probability for signals that
        had one, of the raw score for the others (kept apart: a raw score is not a probability)."""
        cells: dict[tuple[str, bool, int | None], list[float]] = {}
        hits: dict[tuple[str, bool, int | None], int] = {}
        for _, sig, o in await self.store.signals():
            if o is None or o.result == "open":
                continue
            conf = sig.confidence
            if conf is None:
                key: tuple[str, bool, int | None] = (sig.strategy, False, None)
            else:
                score = conf.probability if conf.probability is not None else conf.raw_score
                key = (sig.strategy, conf.probability is not None, min(9, int(score * 10)))
            cells.setdefault(key, []).append(o.realized_r)
            hits[key] = hits.get(key, 0) + (o.result in ("tp1", "tp2", "tp3", "breakeven"))
        return [
            ScoreRow(strategy, decile, len(rs), hits[(strategy, cal, decile)], sum(rs) / len(rs), cal)
            for (strategy, cal, decile), rs in sorted(
                cells.items(), key=lambda kv: (kv[0][0], kv[0][1], -1 if kv[0][2] is None else kv[0][2]))
        ]

    async def calibrated(self) -> bool:
        """Whether the scanner's latest scored signal carries a calibrated probability."""
        for _, sig, _o in reversed(await self.store.signals(limit=50)):
            if sig.confidence is not None:
                return sig.confidence.calibrated
        return False

    @property
    def runs_gates(self) -> bool:
        """Whether ``/check`` runs the gates now (with a checker) or shows the stored verdicts."""
        return self.checker is not None

    async def check(self, mint: str) -> list[GateVerdict]:
        stored = await self.store.latest_verdicts(mint)
        if self.checker is None or (stored and not verdicts_stale(stored, self.clock.now(), self.stale_after_s)):
            return stored
        try:
            verdicts = list(await self.checker(mint))
        except Exception as exc:  # the chain or the market did not answer: the stored ones, said stale
            log.warning("telegram: /check %s could not run the gates: %s", mint, describe_error(exc))
            return stored
        if verdicts:
            await self.store.save_verdicts(verdicts)
        return verdicts

    async def why(self, mint: str) -> list[GateVerdict]:
        return await self.store.latest_verdicts(mint)

    async def watch(self, mint: str) -> str:
        await self.store.set_watched(mint, True, int(self.clock.now()))
        return "Added to the watch list: it is checked by the gates at the next discovery cycle."

    async def mute(self, chat_id: int, mint: str) -> None:
        await self.store.mute(chat_id, mint)

    async def unmute(self, chat_id: int, mint: str) -> bool:
        return await self.store.unmute(chat_id, mint)


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
#: The mints each allowed chat added with /watch (a JSON list in ``kv``, at most
#: ``telegram.max_watched_per_chat`` of them).
WATCHED_KEY = "telegram:watched:"


def build_dispatcher(
    backend: BotBackend, store: Store, settings: Settings, clock: Clock | None = None
) -> Dispatcher:
    """The command router behind an allow-list gate.

    The gate is an outer middleware: it runs before any handler, so a chat outside
    ``telegram.chat_ids`` never reaches one. Such a chat gets a single refusal (remembered in ``kv``
    across restarts, the newest :data:`MAX_REFUSED_CHATS` of them; logged with its chat and user id)
    and silence afterwards. ``/watch`` keeps each chat's list (at most
    ``telegram.max_watched_per_chat``); a mint already on it or one over the cap starts no round. Allowed chats also
    have their message ids noted, the user-side anchor of the sender's crash recovery.
    """
    clock = clock or RealClock()
    allowed = frozenset(settings.telegram.chat_ids)
    dp = Dispatcher()
    router = Router(name="dexscan")

    async def access_gate(
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]], event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, Message):
            return None
        chat_id = event.chat.id
        if chat_id in allowed:
            await store.telegram_note_message_id(chat_id, event.message_id, who="user")
            return await handler(event, data)
        user = event.from_user.id if event.from_user else None
        key = f"{REFUSED_KEY}{chat_id}"
        if await store.kv_get(key) is None:
            await store.kv_set(key, str(int(clock.now())))
            await store.kv_keep_newest(REFUSED_KEY, MAX_REFUSED_CHATS)
            log.warning("telegram: refused chat %s (user %s): not in telegram.chat_ids", chat_id, user)
            await event.answer(REFUSAL.format(chat_id=chat_id), parse_mode=None)
        else:
            log.info("telegram: ignored chat %s (user %s): already refused", chat_id, user)
        return None

    dp.message.outer_middleware(access_gate)

    async def reply(message: Message, text: str) -> None:
        await message.answer(_clip(text), parse_mode="HTML", link_preview_options=_NO_PREVIEW)

    async def mint_arg(message: Message, command: CommandObject) -> str | None:
        arg = (command.args or "").strip()
        if not is_address(arg):
            await reply(message, f"Usage: /{escape(command.command)} MINT — a Solana token address "
                                 "(base58, 32 bytes).")
            return None
        return arg

    @router.message(Command("start", "help"))
    async def on_help(message: Message) -> None:
        await reply(message, HELP_TEXT)

    @router.message(Command("status"))
    async def on_status(message: Message) -> None:
        await reply(message, "<b>Status</b>\n" + escape(await backend.status_text()))

    @router.message(Command("top"))
    async def on_top(message: Message) -> None:
        tokens = await backend.top_tokens(10)
        if not tokens:
            await reply(message, "No tokens in the universe yet.")
            return
        lines = ["<b>Top tokens</b> (24h volume)"]
        for i, t in enumerate(tokens, 1):
            extra = f" · {fmt_price(t.price_usd)}" if t.price_usd is not None else ""
            if t.change_pct is not None:
                extra += f" {t.change_pct:+.1f}%"
            symbol = t.symbol or f"{t.mint[:4]}…{t.mint[-4:]}"
            lines.append(
                f"{i}. <b>{escape(symbol)}</b> vol {fmt_usd(t.volume_h24_usd)} · "
                f"liq {fmt_usd(t.liquidity_usd)}{extra}\n<code>{escape(t.mint)}</code>"
            )
        await reply(message, "\n".join(lines))

    @router.message(Command("signals"))
    async def on_signals(message: Message) -> None:
        rows = await backend.recent_signals(10)
        await reply(message, _signal_list("Latest signals", rows, settings) if rows else "No signals yet.")

    @router.message(Command("live"))
    async def on_live(message: Message) -> None:
        rows = await backend.live_signals(10)
        await reply(message, _signal_list("Live signals", rows, settings) if rows else "No live signals.")

    @router.message(Command("stats"))
    async def on_stats(message: Message) -> None:
        await reply(message, render_scorecard(await backend.scorecard(), backend.worth()))

    @router.message(Command("check"))
    async def on_check(message: Message, command: CommandObject) -> None:
        mint = await mint_arg(message, command)
        if mint is None:
            return
        now = clock.now()
        verdicts = await backend.check(mint)
        text = _check_text(mint, verdicts, now)
        stale_after = getattr(backend, "stale_after_s", settings.universe.discovery_interval_s)
        if verdicts and verdicts_stale(verdicts, now, stale_after):
            text += f"\n\nStale: older than {fmt_duration(int(stale_after))}" + (
                ", and the gates could not be run now (the chain or the market did not answer)."
                if backend.runs_gates else
                "; this bot runs without the scanner and cannot run the gates (<code>dexscan check MINT</code> can).")
        await reply(message, text)

    @router.message(Command("why"))
    async def on_why(message: Message, command: CommandObject) -> None:
        mint = await mint_arg(message, command)
        if mint is None:
            return
        token = await store.token_row(mint)
        text = _why_text(mint, await backend.why(mint), bool(token and token["in_universe"]), clock.now())
        recent = await backend.recent_signals(1, mint=mint)
        if recent:
            _, sig, _ = recent[0]
            text += f"\n\nLast signal: {escape(sig.strategy)} at {fmt_clock(sig.ts)}, because\n"
            text += "\n".join(f"• {escape(reason_text(r))}" for r in sig.reasons)
        await reply(message, text)

    @router.message(Command("watch"))
    async def on_watch(message: Message, command: CommandObject) -> None:
        mint = await mint_arg(message, command)
        if mint is None:
            return
        key = f"{WATCHED_KEY}{message.chat.id}"
        watched: list[str] = json.loads(await store.kv_get(key) or "[]")
        cap = settings.telegram.max_watched_per_chat
        if mint in watched:  # nothing new to check: no round, no request
            await reply(message, f"<code>{mint}</code>\nAlready on this chat's watch list.")
            return
        if len(watched) >= cap:
            await reply(message, f"<code>{mint}</code>\nNot added: this chat already watches {cap} mints, the "
                                 "most it may (telegram.max_watched_per_chat in the config).")
            return
        await store.kv_set(key, json.dumps([*watched, mint]))
        await reply(message, f"<code>{mint}</code>\n{escape(await backend.watch(mint))}")

    def enabled_strategies() -> tuple[str, ...]:
        return tuple(dict.fromkeys(settings.strategies.enabled))  # only enabled strategies can alert

    async def mute_strategy(message: Message, name: str, mute: bool) -> None:
        cs = await chat_settings(message.chat.id)
        muted = tuple(n for n in cs.muted_strategies if n != name) + ((name,) if mute else ())
        was = name in cs.muted_strategies
        await store.set_chat_settings(message.chat.id, replace(cs, muted_strategies=muted).to_json())
        if mute:
            await reply(message, f"Muted strategy <b>{escape(name)}</b> in this chat: its alerts are not sent here "
                                 "(it is still scanned and scored). /unmute " + escape(name) + " to undo.")
        else:
            await reply(message, f"{'Unmuted' if was else 'Was not muted:'} strategy <b>{escape(name)}</b>")

    async def mint_or_strategy(message: Message, command: CommandObject) -> tuple[str, str] | None:
        arg = (command.args or "").strip()
        if arg.lower() in enabled_strategies():
            return "strategy", arg.lower()
        if is_address(arg):
            return "mint", arg
        await reply(message, f"Usage: /{escape(command.command)} MINT (a Solana token address) or "
                             f"/{escape(command.command)} STRATEGY (one of: {escape(', '.join(enabled_strategies()))})")
        return None

    @router.message(Command("mute"))
    async def on_mute(message: Message, command: CommandObject) -> None:
        target = await mint_or_strategy(message, command)
        if target is None:
            return
        what, arg = target
        if what == "strategy":
            await mute_strategy(message, arg, True)
            return
        await backend.mute(message.chat.id, arg)
        await reply(message, f"Muted <code>{arg}</code> in this chat. /unmute to undo.")

    @router.message(Command("unmute"))
    async def on_unmute(message: Message, command: CommandObject) -> None:
        target = await mint_or_strategy(message, command)
        if target is None:
            return
        what, arg = target
        if what == "strategy":
            await mute_strategy(message, arg, False)
            return
        done = await backend.unmute(message.chat.id, arg)
        await reply(message, f"{'Unmuted' if done else 'Was not muted:'} <code>{arg}</code>")

    async def chat_settings(chat_id: int) -> ChatSettings:
        return ChatSettings.from_json(await store.chat_settings(chat_id))

    @router.message(Command("settings"))
    async def on_settings(message: Message) -> None:
        cs = await chat_settings(message.chat.id)
        muted = await store.muted_mints(message.chat.id)
        lines = ["<b>Alert settings for this chat</b>", *(escape(x) for x in cs.describe(await backend.calibrated()))]
        lines.append(f"Time zone: {escape(settings.app.timezone)}")
        lines.append(f"Muted: {len(muted)}" + "".join(f"\n<code>{m}</code>" for m in muted))
        await reply(message, "\n".join(lines))

    @router.message(Command("minconf"))
    async def on_minconf(message: Message, command: CommandObject) -> None:
        arg = (command.args or "").strip().rstrip("%")
        cs = await chat_settings(message.chat.id)
        if arg.lower() in ("off", "0"):
            cs = replace(cs, min_confidence_pct=None)
        else:
            try:
                value = float(arg)
            except ValueError:
                value = -1.0
            if not 0 < value <= 100:
                await reply(message, "Usage: /minconf 60 (percent, 1–100) or /minconf off")
                return
            cs = replace(cs, min_confidence_pct=value)
        await store.set_chat_settings(message.chat.id, cs.to_json())
        await reply(message, escape(cs.describe(await backend.calibrated())[0]))

    @router.message(Command("strategies"))
    async def on_strategies(message: Message, command: CommandObject) -> None:
        arg = (command.args or "").strip().lower()
        known = enabled_strategies()
        cs = await chat_settings(message.chat.id)
        if not arg:
            await reply(message, render_strategies(known, cs, backend.strategy_notes))
            return
        if arg == "all":
            cs = replace(cs, strategies=None)
        else:
            names = tuple(n.strip() for n in arg.replace(" ", ",").split(",") if n.strip())
            unknown = [n for n in names if n not in known]
            if not names or unknown:
                await reply(message, "Usage: /strategies " + escape(",".join(known[:2])) + " or /strategies all\n"
                            "Enabled: " + escape(", ".join(known)))
                return
            cs = replace(cs, strategies=names)
        await store.set_chat_settings(message.chat.id, cs.to_json())
        await reply(message, escape(cs.describe()[1]))

    @router.message(Command("quiet"))
    async def on_quiet(message: Message, command: CommandObject) -> None:
        arg = (command.args or "").strip()
        cs = await chat_settings(message.chat.id)
        if arg.lower() == "off":
            cs = replace(cs, quiet=None)
        else:
            try:
                cs = replace(cs, quiet=parse_quiet(arg))
            except ValueError as exc:
                await reply(message, f"Usage: /quiet 22-07 (local time, {escape(settings.app.timezone)}) "
                                     f"or /quiet off — {escape(str(exc))}")
                return
        await store.set_chat_settings(message.chat.id, cs.to_json())
        await reply(message, escape(cs.describe()[2]))

    @router.message()
    async def on_other(message: Message) -> None:
        if message.text and message.text.startswith("/"):
            await reply(message, "Unknown command. /help lists them.")

    dp.include_router(router)
    return dp


def render_strategies(known: Sequence[str], cs: ChatSettings, notes: Callable[[str], Sequence[str]]) -> str:
    """The /strategies answer: each enabled strategy, whether it alerts in this chat, and what the
    scanner measured of it (no-skill text, record; a negative record marked ⚠️)."""
    lines = ["<b>Strategies</b>"]
    for name in known:
        state = "alerts here" if cs.alerts_for(name) else (
            "muted here" if name in cs.muted_strategies else "filtered out here")
        said = list(notes(name))
        mark = "⚠️ " if any(n.startswith("negative record") for n in said) else ""
        lines.append(f"\n{mark}<b>{escape(name)}</b>: {state}")
        lines += [f"  {escape(n)}" for n in said]
        if not said:
            lines.append("  no measured record (no calibrator loaded, or none of its signals in the calibrator's data)")
    lines.append("\n/mute STRATEGY or /unmute STRATEGY; /strategies a,b or all to choose the list.")
    return "\n".join(lines)


def render_worth(worth: Mapping[str, Any]) -> list[str]:
    """Each strategy against the baselines measured on the calibrator's data and ladder, with the
    lift (TP1-first points and mean R), a negative expectancy marked ⚠️."""
    strategies = worth.get("strategies") or {}
    if not strategies:
        return []
    baselines = worth.get("baselines") or {}
    lines = ["<b>Measured on history</b> (the calibrator's data, same ladder; lift = strategy − baseline)"]
    for name, b in baselines.items():
        lines.append(f"{escape(name)}: {b.get('closed', 0)} closed · TP1 first {_pct_or_na(b.get('tp1_first_rate'))}"
                     f" · mean {_r_or_na(b.get('mean_r'))}")
    for name, t in sorted(strategies.items()):
        mark = "⚠️ negative expectancy · " if t.get("expectancy") == "negative" else ""
        lines.append(f"{mark}<b>{escape(name)}</b>: {t.get('closed', 0)} closed · TP1 first "
                     f"{_pct_or_na(t.get('tp1_first_rate'))} · mean {_r_or_na(t.get('mean_r'))}")
        for base, lift in (t.get("lift") or {}).items():
            rate = lift.get("tp1_first_rate")
            lines.append(f"  lift vs {escape(base.removeprefix('baseline: '))}: "
                         f"{'n/a' if rate is None else f'{rate * 100:+.1f} pts'} TP1 first, "
                         f"{_r_or_na(lift.get('mean_r'))} mean")
    return lines


def _pct_or_na(v: Any) -> str:
    return "n/a" if v is None else f"{float(v) * 100:.1f}%"


def _r_or_na(v: Any) -> str:
    return "n/a" if v is None else f"{float(v):+.2f}R"


def render_scorecard(rows: Sequence[ScoreRow], worth: Mapping[str, Any] | None = None) -> str:
    """The /stats text: per strategy a total, then one line per band: a calibrated probability
    decile (``conf 60–69%``) or, for uncalibrated signals, a raw-score band (``raw score
    0.60–0.69``), never a percentage for a score without measured skill (SPEC §7); then, with a
    calibrator, each strategy against the baselines on history with its lift (:func:`render_worth`)."""
    history = render_worth(worth or {})
    if not rows:
        empty = "No closed signals yet: the scorecard fills as live signals reach a stop, a target or expire."
        return "\n\n".join([empty, "\n".join(history)]) if history else empty
    lines = ["<b>Scorecard</b> (closed live signals; hit = TP1 before the stop)"]
    if not any(r.calibrated for r in rows):
        lines.append("Uncalibrated: grouped by raw score, which is not a probability.")
    by_strategy: dict[str, list[ScoreRow]] = {}
    for r in rows:
        by_strategy.setdefault(r.strategy, []).append(r)
    for strategy, cells in by_strategy.items():
        n = sum(c.n for c in cells)
        hits = sum(c.hits for c in cells)
        mean_r = sum(c.mean_r * c.n for c in cells) / n if n else 0.0
        lines.append(f"\n<b>{escape(strategy)}</b>: {n} closed · hit {hits / n * 100:.1f}% · mean {mean_r:+.2f}R")
        for c in cells:
            if c.decile is None:
                band = "not scored"
            elif c.calibrated:
                band = f"conf {c.decile * 10}–{c.decile * 10 + 9}%"
            else:
                band = f"raw score {c.decile / 10:.2f}–{c.decile / 10 + 0.09:.2f}"
            lines.append(f"  {band}: {c.n} · hit {c.hit_rate * 100:.1f}% · mean {c.mean_r:+.2f}R")
    if history:
        lines += ["", *history]
    return "\n".join(lines)


def _signal_list(title: str, rows: Sequence[StoredSignal], settings: Settings | None = None) -> str:
    """Signals with where each stands: a closed trade's realized R; an open trade's R now at its
    latest price (:func:`dexscan.status.open_r`, the dashboard's "R now"), its stop in force."""
    breakeven = settings.ladder.breakeven_after_tp1 if settings is not None else True
    lines = [f"<b>{escape(title)}</b>"]
    for _, s, o in rows:
        conf = escape(s.confidence.label()) if s.confidence else "not scored"
        state = ""
        if o is not None and o.result == "open":
            r_now = open_r(s, o)
            stop = stop_in_force(s.levels, o.hits, breakeven)
            state = f" · {escape(RESULT_LABEL['open'])}"
            state += f" {r_now:+.2f}R now" if r_now is not None else " (no price yet)"
            if stop is not None:
                state += f", stop {fmt_price(stop)}"
        elif o is not None:
            state = f" · {escape(RESULT_LABEL.get(o.result, o.result))} {o.realized_r:+.2f}R"
        lines.append(
            f"{LAYER_LABEL.get(s.layer, '⚡').split(' ')[0]} <b>{escape(s.symbol or '?')}</b> {escape(s.strategy)} · "
            f"{fmt_price(s.price)} · {conf} · {fmt_clock(s.ts)}{state}\n<code>{escape(s.mint)}</code>"
        )
    return "\n".join(lines)


def verdicts_stale(verdicts: Sequence[GateVerdict], now: float, stale_after_s: float) -> bool:
    """Whether the oldest of ``verdicts`` was reached ``stale_after_s`` or more before ``now``."""
    return now - min(v.checked_at for v in verdicts) >= stale_after_s


def _ago(now: float, at: int) -> str:
    return "just now" if now - at < 60 else f"{fmt_duration(int(now) - at)} ago"


def _check_text(mint: str, verdicts: Sequence[GateVerdict], now: float) -> str:
    """``/check``: every gate's verdict, each with its age (``checked 4m ago``)."""
    head = f"<b>Gate check</b> <code>{escape(mint)}</code>"
    if not verdicts:
        return head + "\nNo gate verdicts for this mint: it has not been checked yet."
    return "\n".join([head, *(f"{line} · checked {_ago(now, v.checked_at)}"
                               for line, v in zip(verdict_lines(verdicts), verdicts, strict=True))])


def _why_text(mint: str, verdicts: Sequence[GateVerdict], in_universe: bool, now: float) -> str:
    """``/why``: whether the mint is in the universe, and the gates that keep it out (not every gate:
    that is ``/check``)."""
    head = f"<b>Why</b> <code>{escape(mint)}</code>"
    if not verdicts:
        return (head + "\nNot in the universe: it has never been checked by the gates "
                "(discovery has not found it; /watch MINT adds it).")
    when = f"checked {fmt_clock(max(v.checked_at for v in verdicts))}, {_ago(now, max(v.checked_at for v in verdicts))}"
    blocking = [v for v in verdicts if not v.passed]
    if not blocking:
        state = "In the universe" if in_universe else "Not in the universe yet"
        return "\n".join([head, f"{state}: it passes every gate ({when})."])
    state = ("In the universe for now (a market gate must fail for a while before it leaves)" if in_universe
             else "Not in the universe")
    n = len(blocking)
    return "\n".join([head, f"{state}: {n} gate{'s' if n != 1 else ''} did not pass ({when}):",
                       *verdict_lines(blocking)])


def _clip(text: str, limit: int = 4000) -> str:
    """Cut an answer at a line boundary so no tag or entity is split."""
    if utf16_len(text) <= limit:
        return text
    out: list[str] = []
    lines = text.split("\n")
    for line in lines:
        if utf16_len("\n".join([*out, line, "…"])) > limit:
            break
        out.append(line)
    return "\n".join([*out, "…"])


# -- polling ----------------------------------------------------------------------------------


class _RawGetUpdates(GetUpdates):
    """``getUpdates`` answering plain JSON objects, so that each update is validated on its own and
    one malformed update cannot make the whole batch (and every later one) unreadable."""

    __returning__ = list[Any]


class UpdatePoller:
    """Long polling with ``getUpdates``; the offset is kept in ``kv`` so a restart resumes.

    A batch is confirmed (offset saved) once all of it was handled: a crash mid-batch answers
    those commands again rather than never. An update that does not match the Bot API contract is
    skipped (the offset moves past it), counted in ``skipped_updates`` and logged once, naming the
    field, never its content; the updates around it are answered. Only an answer whose updates carry
    no readable ``update_id`` at all cannot be moved past: that is a :class:`ClientDecodeError`.
    A rejected token (401) is logged once and asked about again every ``rejected_retry_s``.
    """

    OFFSET_KEY = "telegram:update_offset"

    def __init__(self, bot: Bot, dispatcher: Dispatcher, store: Store, clock: Clock | None = None,
                 timeout_s: int = 25, rejected_retry_s: float | None = None) -> None:
        self.bot = bot
        self.dispatcher = dispatcher
        self.store = store
        self.clock: Clock = clock or RealClock()
        self.timeout_s = timeout_s
        self.rejected_retry_s = REJECTED_TOKEN_RETRY_S if rejected_retry_s is None else rejected_retry_s
        self.skipped_updates = 0

    async def poll_once(self, timeout_s: int = 0) -> int:
        """Fetch and handle one batch of updates; returns how many were handled (skipped ones are not)."""
        stored = await self.store.kv_get(self.OFFSET_KEY)
        offset = int(stored) if stored else None
        try:
            raw: list[Any] = await self.bot(
                _RawGetUpdates(offset=offset, timeout=timeout_s, allowed_updates=["message"]),
                request_timeout=int(self.bot.session.timeout + timeout_s),
            )
        except UnicodeDecodeError as exc:  # aiogram reads the body as strict UTF-8 text
            raise ClientDecodeError("getUpdates answer is not UTF-8 text", exc, "<body>") from exc
        updates, next_offset = self._validated(raw)
        lanes: dict[int | None, list[Update]] = {}
        for update in updates:
            chat = update.message.chat.id if update.message else None
            lanes.setdefault(chat, []).append(update)
        await asyncio.gather(*(self._handle_lane(lane) for lane in lanes.values()))
        if next_offset is not None:
            await self.store.kv_set(self.OFFSET_KEY, str(next_offset))
        return len(updates)

    def _validated(self, raw: list[Any]) -> tuple[list[Update], int | None]:
        """The well-formed updates, and the offset past every update with a readable id."""
        good: list[Update] = []
        ids: list[int] = []
        bad: list[tuple[str, str, str]] = []  # (update id, field, problem)
        for item in raw:
            try:
                update = Update.model_validate(item, context={"bot": self.bot})
            except ValidationError as exc:
                update_id = item.get("update_id") if isinstance(item, dict) else None
                if isinstance(update_id, int) and not isinstance(update_id, bool):
                    ids.append(update_id)
                    which = str(update_id)
                else:
                    which = "without a readable update_id"
                err = exc.errors()[0]
                field = ".".join(str(p) for p in err["loc"])[:80] or "<update>"
                bad.append((which, scrub(field, self.bot.token), err["msg"]))
                continue
            ids.append(update.update_id)
            good.append(update)
        if raw and not ids:  # not one id to move past: the whole answer is unreadable, and raised as such
            try:
                Response[list[Update]].model_validate({"ok": True, "result": raw}, context={"bot": self.bot})
            except ValidationError as exc:
                raise ClientDecodeError("Failed to deserialize object", exc, raw) from None
        for which, field, problem in bad:
            self.skipped_updates += 1
            log.warning("telegram: update %s skipped: bad field %s (%s); %d skipped so far",
                        which, field, problem, self.skipped_updates)
        return good, (max(ids) + 1 if ids else None)

    async def _handle_lane(self, updates: list[Update]) -> None:
        """One chat's updates in order; chats run side by side, so one busy chat delays no other."""
        for update in updates:
            try:
                await self.dispatcher.feed_update(self.bot, update)
            except Exception as exc:
                log.error("telegram: update %s failed: %s", update.update_id,
                          scrub(describe_error(exc), self.bot.token))

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        delay = 1.0
        rejected = False
        while not stop.is_set():
            poll = asyncio.ensure_future(self.poll_once(self.timeout_s))
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({poll, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not poll.done():
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await poll
                return
            exc = poll.exception()
            if exc is None:
                delay = 1.0
                if rejected:
                    log.info("telegram: the bot token is accepted again; polling resumes")
                rejected = False
                continue
            wait = delay
            if isinstance(exc, TelegramUnauthorizedError):
                if not rejected:
                    log.error("telegram: the bot token was rejected (401 Unauthorized); check DEXSCAN_TELEGRAM_TOKEN; "
                              "asking again every %s", _duration(self.rejected_retry_s))
                rejected, wait = True, self.rejected_retry_s
            elif isinstance(exc, TelegramConflictError):
                log.error("telegram: another process polls this bot (409); run only one dexscan bot per token")
            else:
                log.warning("telegram: getUpdates failed: %s", scrub(describe_error(exc), self.bot.token))
            if await _stopped_within(stop, self.clock, wait):
                return
            delay = min(delay * 2, 60.0)


# -- running it -------------------------------------------------------------------------------


#: How long, after Telegram rejected the token (401), until it is asked again (inside ``scan``,
#: where Telegram pauses and the scanner keeps running; ``dexscan bot`` exits instead).
REJECTED_TOKEN_RETRY_S = 900.0
#: Longest wait between two start-up attempts while Telegram is unreachable or answers garbage.
START_BACKOFF_MAX_S = 60.0
REJECTED_TOKEN = "telegram: the bot token was rejected (401 Unauthorized); check DEXSCAN_TELEGRAM_TOKEN"
#: What a start-up call can fail with, short of a rejected token: Telegram unreachable, a 5xx, a
#: 429, an answer that is not the Bot API's (an HTML 502 page: ClientDecodeError), not UTF-8 text.
_START_FAILURES = (TelegramAPIError, ClientDecodeError, UnicodeDecodeError)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g}s"


async def _stopped_within(stop: asyncio.Event, clock: Clock, seconds: float) -> bool:
    """Sleep ``seconds`` of clock time unless ``stop`` is set first; True when it was."""
    sleeper = asyncio.ensure_future(clock.sleep(max(seconds, 0.0)))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        stopper.cancel()
    return stop.is_set()


async def start_up(bot: Bot, settings: Settings, stop: asyncio.Event, clock: Clock, *,
                   exit_on_rejected_token: bool = True) -> bool:
    """``getMe`` until Telegram answers, then drop any webhook and set the command menu.

    A failure (unreachable, 5xx, an HTML error page, a 429) is one warning line and a retry with
    exponential backoff up to :data:`START_BACKOFF_MAX_S` (or Telegram's ``retry_after``). A rejected
    token raises :class:`ConfigError` when ``exit_on_rejected_token`` (``dexscan bot``), else it is one
    error line and ``getMe`` again every :data:`REJECTED_TOKEN_RETRY_S`, silently (``scan``: the scanner
    keeps running, alerts wait in the outbox). Returns False when ``stop`` was set first.
    """
    delay = 1.0
    rejected = False
    while not stop.is_set():
        try:
            me = await bot.get_me()
        except TelegramUnauthorizedError:
            if exit_on_rejected_token:
                raise ConfigError(REJECTED_TOKEN) from None
            if not rejected:
                log.error("%s; Telegram is paused for this run (alerts wait in the outbox, the scanner keeps "
                          "running); asking again every %s", REJECTED_TOKEN, _duration(REJECTED_TOKEN_RETRY_S))
            rejected, wait = True, REJECTED_TOKEN_RETRY_S
        except _START_FAILURES as exc:
            wait = float(exc.retry_after) if isinstance(exc, TelegramRetryAfter) else delay
            delay = min(delay * 2, START_BACKOFF_MAX_S)
            log.warning("telegram: getMe failed (%s); retrying in %s", scrub(describe_error(exc), bot.token),
                        _duration(wait))
        else:
            if rejected:
                log.info("telegram: the bot token is accepted again")
            log.info("telegram: bot @%s up; alerts for %d chat(s)", me.username, len(settings.telegram.chat_ids))
            break
        if await _stopped_within(stop, clock, wait):
            return False
    else:
        return False
    try:
        await bot.delete_webhook(drop_pending_updates=False)
        await bot.set_my_commands([BotCommand(command=c, description=d) for c, d in COMMANDS])
    except _START_FAILURES as exc:
        log.warning("telegram: start-up call failed (%s); continuing", scrub(describe_error(exc), bot.token))
    return True


async def run_telegram(
    settings: Settings,
    store: Store,
    backend: BotBackend,
    stop: asyncio.Event,
    clock: Clock | None = None,
    token: str | None = None,
    poll_timeout_s: int = 25,
    on_sender: Callable[[OutboxSender], None] | None = None,
    *,
    exit_on_rejected_token: bool = True,
) -> None:
    """Outbox delivery and commands until ``stop``, after :func:`start_up` (``ConfigError`` if Telegram
    rejects the token and ``exit_on_rejected_token``; else Telegram waits for the token, see there).

    ``on_sender`` receives the sender once it exists (the engine keeps ``sender.wake`` to have new
    alerts looked at at once rather than at the next idle tick).
    """
    clock = clock or RealClock()
    bot = create_bot(settings, store, clock, token)
    try:
        if not await start_up(bot, settings, stop, clock, exit_on_rejected_token=exit_on_rejected_token):
            return
        sender = OutboxSender(store, bot, settings, clock)
        if on_sender is not None:
            on_sender(sender)
        poller = UpdatePoller(bot, build_dispatcher(backend, store, settings, clock), store, clock, poll_timeout_s)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sender.run(stop))
            tg.create_task(poller.run(stop))
    finally:
        await bot.session.close()


async def run_bot(settings: Settings, args: Any) -> int:
    """``dexscan bot``: delivery and commands alone; ``--demo`` runs against the local fake."""
    duration = getattr(args, "duration", None)
    if getattr(args, "demo", False):
        return await _run_demo(settings, duration, getattr(args, "db", None))
    problem = bot_setup_problem(settings)
    token = settings.secrets.telegram_token
    if problem is not None or token is None:
        raise ConfigError(problem or "telegram: no token")
    setup_logging(settings.app.log_level, settings.app.log_format, secrets=settings.secret_values())
    store = await Store.open(getattr(args, "db", None) or settings.db_file())
    try:
        stop = _stop_event(duration)
        from dexscan.engine import load_calibrator

        scorer = Scorer(settings.scoring, await load_calibrator(settings, store))
        await run_telegram(settings, store, standalone_backend(settings, store, scorer=scorer), stop)
    finally:
        await store.close()
    return 0


def standalone_backend(settings: Settings, store: Store, clock: Clock | None = None,
                       scorer: Scorer | None = None) -> StoreBackend:
    """The standalone bot's answers: from the database, and ``/check`` runs the gates itself (the
    code of ``dexscan check``) when the stored verdicts are older than a discovery interval."""
    clock = clock or RealClock()

    async def check(mint: str) -> Sequence[GateVerdict]:
        from dexscan.check import check_mints

        report = await check_mints(settings, [mint], clock)  # StoreBackend.check stores the verdicts
        return report.checks[0].verdicts

    return StoreBackend(store, check, clock, stale_after_s=settings.universe.discovery_interval_s, scorer=scorer)


async def _run_demo(settings: Settings, duration: float | None, db: str | None) -> int:
    """``--demo``: a console chat with this bot, polling the Bot API fake, while the demo world runs
    the scanner (:mod:`dexscan.demo.bot_chat`)."""
    from dexscan.demo.bot_chat import run_bot_demo

    return await run_bot_demo(settings, duration, db)


def _stop_event(duration: float | None) -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if duration is not None:
        loop.call_later(duration, stop.set)
    for sig in (os_signal.SIGINT, os_signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop
