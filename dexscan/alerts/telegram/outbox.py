"""Delivering the alert outbox to Telegram: delivery, crash recovery, digests, one alert per move.

Delivery is **at least once, made exactly once by idempotency**. The engine writes an alert to the
``alert_outbox`` table in the same transaction as its signal (or outcome), so a decided alert can
never be lost. :class:`OutboxSender` then delivers rows in id order per chat, one chat never
holding up another, within Telegram's flood limits (1 message/s per chat, 25/s overall, sliding
windows: :class:`~.transport.SendDiscipline`), honouring ``retry_after``, backing off on transient
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
within ``scan.move_window_s``, :func:`dexscan.signal_ledger.move_members`) has an outbox row of kind
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

Share the store *file*, not the connection: in ``dexscan scan`` give the sender its own
:class:`~dexscan.store.Store` opened on the same path, so its writes never interleave with an
engine transaction on one connection.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import BufferedInputFile, ReplyParameters

from dexscan.alerts.charts import render_chart
from dexscan.alerts.chat_settings import ChatSettings
from dexscan.alerts.format import AlertMessage, CardExtras, digest_card, outcome_card, signal_card
from dexscan.alerts.telegram.transport import (
    NO_PREVIEW,
    SendDiscipline,
    describe_error,
    discipline_of,
    markup,
    scrub,
)
from dexscan.clock import Clock, RealClock
from dexscan.config import Settings
from dexscan.domain import Signal, Timeframe
from dexscan.store import Store

log = logging.getLogger(__name__)


# -- the outbox sender --------------------------------------------------------------------------


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

    #: How many ids above the highest known one the crash recovery probes (module doc).
    probe_window = 5
    #: Backoff after a transient failure: the base doubles per attempt up to the maximum, ±20% jitter.
    backoff_base_s = 2.0
    backoff_max_s = 60.0
    #: Longest wait between two looks at the outbox when no new row wakes the sender, while another
    #: process writes the rows (``dexscan bot`` next to a scanner).
    idle_s = 1.0
    #: The same inside ``dexscan scan``, whose engine wakes the sender on every row it writes: the
    #: look then only catches a row another process wrote.
    woken_idle_s = 30.0

    def __init__(self, store: Store, bot: Bot, settings: Settings, clock: Clock | None = None,
                 *, chart_renderer: Callable[..., bytes] = render_chart) -> None:
        self.store = store
        self.bot = bot
        self.settings = settings
        self.clock: Clock = clock or RealClock()
        self.allowed = frozenset(settings.telegram.chat_ids)
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

    def woken_by_writer(self) -> Callable[[], None]:
        """:meth:`wake`, for the writer of the rows in this process to call on each row it writes;
        the idle tick is then only a safety net (:attr:`woken_idle_s`)."""
        self.idle_s = self.woken_idle_s
        return self.wake

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Deliver until ``stop`` is set; a delivery problem is logged, never raised."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            wait = self.idle_s
            self._wake.clear()  # before the look: a row written during it wakes the next one
            try:
                _, heads = await self._drain(stop)
                if heads:
                    soonest = min(float(h["next_attempt_at"]) for h in heads)
                    wait = min(wait, max(0.0, soonest - self.clock.now()))
            except Exception as exc:
                log.error("telegram outbox: delivery pass failed: %s", self._scrub(describe_error(exc)))
            waiters = [asyncio.ensure_future(self.clock.sleep(max(wait, 0.01))),
                       asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for task in waiters:
                task.cancel()

    async def drain_once(self, stop: asyncio.Event | None = None) -> int:
        """Deliver every row that is due now, chats in parallel; returns the rows settled."""
        settled, _ = await self._drain(stop)
        return settled

    async def _drain(self, stop: asyncio.Event | None) -> tuple[int, list[dict[str, Any]]]:
        """:meth:`drain_once`, and the chats' heads it read last (none of them due then): one look
        at the outbox per idle tick, not two."""
        settled = 0
        heads: list[dict[str, Any]] = []
        while stop is None or not stop.is_set():
            now = self.clock.now()
            heads = await self.store.outbox_heads()
            due = [h for h in heads if h["next_attempt_at"] <= now]
            if not due:
                break
            results = await asyncio.gather(*(self._deliver_head(h) for h in due))
            settled += sum(results)
        return settled, heads

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
                    chat_id=chat_id, text=message.text, parse_mode="HTML", reply_markup=markup(message),
                    link_preview_options=NO_PREVIEW, disable_notification=quiet or None,
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
                    reply_markup=markup(message), link_preview_options=NO_PREVIEW,
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
                    reply_markup=markup(message), link_preview_options=NO_PREVIEW,
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
