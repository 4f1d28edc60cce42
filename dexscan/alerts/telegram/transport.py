"""The Telegram Bot API transport: the session, sending within the flood limits, ``getUpdates``
polling, and start-up.

- :func:`create_bot`: an aiogram ``Bot`` whose requests never leave ``telegram.base_url``'s origin
  (the token travels in every Bot API path, so a redirect to another host is refused), with the
  :class:`SendDiscipline` installed: every message-posting call spends the per-chat and global
  budgets (1 message/s per chat, 25/s overall, sliding windows from :class:`~dexscan.budget.Budget`),
  is serialised per chat, waits out a short ``retry_after``, and has its message id recorded (the
  anchor of the outbox's crash recovery, :mod:`.outbox`).
- :class:`UpdatePoller`: long polling, the offset kept in ``kv``; one malformed update is skipped,
  never the batch; chats are answered side by side.
- :func:`start_up`: ``getMe`` with backoff until Telegram answers (a rejected token ends ``dexscan
  bot`` or pauses Telegram inside ``scan``), then the command menu.

The bot token travels in Bot API URLs, so every error text logged or stored goes through :func:`scrub`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import aiohttp
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramConflictError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
)
from pydantic import ValidationError

from dexscan.alerts.format import AlertMessage
from dexscan.budget import Budget
from dexscan.clock import Clock, RealClock, sleep_unless
from dexscan.config import Settings, mask_text, mask_url, url_origin
from dexscan.errors import ConfigError
from dexscan.store import Store

log = logging.getLogger(__name__)

#: Bot API methods that post or change a message in a chat: rate-limited and serialised per chat.
CHAT_METHODS = frozenset({"sendMessage", "sendPhoto", "editMessageText", "editMessageCaption", "sendDocument"})
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


def markup(message: AlertMessage) -> InlineKeyboardMarkup | None:
    if not message.buttons:
        return None
    return InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=b.text, url=b.url) for b in row] for row in message.buttons
    ])


NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


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
            if await sleep_unless(self.clock, wait, stop):
                return
            delay = min(delay * 2, 60.0)


# -- start-up -----------------------------------------------------------------------------------


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


async def start_up(bot: Bot, settings: Settings, stop: asyncio.Event, clock: Clock,
                   menu: Sequence[tuple[str, str]] = (), *, exit_on_rejected_token: bool = True) -> bool:
    """``getMe`` until Telegram answers, then drop any webhook and set the command menu (``menu``:
    (command, description) pairs).

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
        if await sleep_unless(clock, wait, stop):
            return False
    else:
        return False
    try:
        await bot.delete_webhook(drop_pending_updates=False)
        await bot.set_my_commands([BotCommand(command=c, description=d) for c, d in menu])
    except _START_FAILURES as exc:
        log.warning("telegram: start-up call failed (%s); continuing", scrub(describe_error(exc), bot.token))
    return True
