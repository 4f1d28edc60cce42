"""A loopback fake of the Telegram Bot API, for the tests and ``dexscan bot --demo``.

It speaks the real contract (``POST /bot<token>/<method>``, the ``{"ok": ...}`` envelope, HTTP
status mirroring ``error_code``, form/multipart/JSON parameters) and reproduces the behaviours the
bot has to survive (external-apis §6, §7.1):

* 401 ``Unauthorized`` for a wrong token, 404 for an unknown method;
* flood control: more than ``per_chat_per_s`` messages per second to one chat, sustained beyond a
  small burst, gets ``429 Too Many Requests: retry after N`` with ``parameters.retry_after``; a 429
  can also be forced (:meth:`FakeTelegram.force_429`);
* HTML parse mode parsed the way Telegram does it: unknown or unclosed tags and a bare ``<`` are
  ``400 can't parse entities``; ``&lt; &gt; &amp; &quot;`` and numeric references are decoded; the
  4,096-character limit applies to the *parsed* text in UTF-16 code units;
* ``400 chat not found``, ``403 bot was blocked by the user`` (switchable per chat);
* message ids as Telegram gives them (external-apis §6): **one counter per bot for all private chats
  and basic groups** (so ids in one chat are increasing but not consecutive when the bot talks in
  several), a counter of its own per supergroup or channel (ids ``-100…``); the user's messages
  take ids from the same counters;
  ``editMessageText`` answers ``message is not modified`` when the text, entities and keyboard are
  identical, ``message to edit not found`` for a free id, ``message can't be edited`` for someone
  else's message, ``there is no text in the message to edit`` for a photo — the semantics the
  sender's crash recovery relies on;
* ``getUpdates`` long polling honouring ``offset``, ``limit`` and ``timeout``; a second concurrent
  poll ends the first with ``409 Conflict``;
* an outage switch: connections refused, reset, or accepted-then-reset (the message is stored but
  the client never hears back — the ambiguous case);
* a broken gateway in front of the API (:meth:`FakeTelegram.fail_with_html`): the next calls of a
  method get an HTML error page (``502 Bad Gateway`` by default) that echoes the request URL, bot
  token included, as a proxy's error page does — not the Bot API's JSON envelope;
* a redirect to another host (:meth:`FakeTelegram.redirect_elsewhere`): the next calls of a method
  get ``307 Temporary Redirect`` to the same path (bot token included) on a second server, ``localhost``
  on another port (:attr:`FakeTelegram.elsewhere`, an :class:`~dexscan.demo.servers.elsewhere.ElsewhereHost`),
  which records whatever reaches it (``elsewhere.requests``);
* a poison update (:meth:`FakeTelegram.inject_poison_update`): an update whose ``update_id`` is fine
  but whose message breaks the contract (wrong types, a chat that is not an object), queued like any
  other update, so ``getUpdates`` serves it until an offset past it confirms it.

* **state that outlives the client**: with ``journal`` set, every accepted message, edit, user
  message and confirmed update offset is appended to that file before the answer leaves, and a new
  fake on the same file starts where the last one stopped, as Telegram does when the scanner (and
  the demo's in-process fake with it) is killed. ``dexscan scan --demo`` keeps one next to its
  database; the SIGKILL tests read it to see what reached the chat.

Rate limiting and the long-poll wait read the event loop's and the injected
:class:`~dexscan.clock.Clock`'s time, so on a virtual-time loop (:mod:`dexscan.vtime`) they are
simulated seconds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from dexscan.clock import Clock, RealClock
from dexscan.demo.servers.elsewhere import ElsewhereHost
from dexscan.demo.servers.telegram_html import HtmlParseError, parse_telegram_html, utf16_len

DownMode = Literal["refuse", "reset", "accept_then_reset"]

#: Methods that post or change a message, and so count against flood control.
_MESSAGE_METHODS = frozenset({"sendmessage", "sendphoto", "editmessagetext"})


MAX_TEXT = 4096
MAX_CAPTION = 1024
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


Buttons = tuple[tuple[tuple[str, str], ...], ...]


@dataclass
class SentMessage:
    """A message as the chat shows it. ``text`` is what the user reads (the caption for a photo)."""

    chat_id: int
    message_id: int
    text: str
    html: str
    entities: list[dict[str, Any]]
    reply_to: int | None
    buttons: Buttons
    photo: bytes | None
    disable_notification: bool
    date: int
    from_bot: bool = True
    edits: int = 0
    markup: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RequestRecord:
    method: str
    chat_id: int | None
    status: int
    at: float
    description: str = ""


@dataclass
class _Chat:
    chat_id: int
    counter: list[int]  # [next message id]: shared by all private chats and basic groups of the bot
    messages: dict[int, SentMessage] = field(default_factory=dict)
    blocked: bool = False
    tokens: float = 0.0
    refilled_at: float | None = None
    chat_type: str = "private"


class _ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


class FakeTelegram:
    """The Bot API on 127.0.0.1 (ephemeral port). Use as ``async with FakeTelegram(...) as fake``."""

    def __init__(
        self,
        token: str = "123456789:TEST-token_for_the_fake_bot_api",
        clock: Clock | None = None,
        *,
        chats: Sequence[int] = (),
        bot_username: str = "dexscan_test_bot",
        per_chat_per_s: float = 1.0,
        per_chat_burst: int = 3,
        global_per_s: float = 30.0,
        first_message_id: int = 1,
        journal: str | Path | None = None,
    ) -> None:
        self.token = token
        self.clock: Clock = clock or RealClock()
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.per_chat_per_s = per_chat_per_s
        self.per_chat_burst = per_chat_burst
        self.global_per_s = global_per_s
        self.first_message_id = first_message_id
        self.requests: list[RequestRecord] = []
        #: Called with each message right after it is stored (before the response leaves).
        self.on_accept: Callable[[SentMessage], None] | None = None
        self._chats: dict[int, _Chat] = {}
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._updates_changed = asyncio.Event()
        self._poller: asyncio.Future[None] | None = None
        self._forced: list[tuple[int | None, int]] = []
        self._html_errors: dict[str, list[int]] = {}  # method (lower case) -> statuses of the next answers
        self._redirects: dict[str, int] = {}  # method (lower case) -> how many of its next calls are redirected
        #: "Another host" for :meth:`redirect_elsewhere` (a server on ``localhost``, another port).
        self.elsewhere = ElsewhereHost({"ok": False, "error_code": 404, "description": "Not Found"})
        self._global_tokens = global_per_s
        self._global_refilled: float | None = None
        self._down: DownMode | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port = 0
        self._shared_counter = [first_message_id]
        self.journal = Path(journal) if journal is not None else None
        self._journal_fd: int | None = None
        if self.journal is not None:
            self._replay(self.journal)
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            self._journal_fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        for chat in chats:
            self.add_chat(chat)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> str:
        app = web.Application(middlewares=[self._outage_middleware], client_max_size=20 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await self._site.start()
        server: Any = self._site._server
        self.port = int(server.sockets[0].getsockname()[1])
        await self.elsewhere.start()
        return self.base_url

    async def stop(self) -> None:
        if self._poller is not None and not self._poller.done():
            self._poller.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.elsewhere.stop()
        self.close_journal()

    def close_journal(self) -> None:
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None

    # -- the journal: Telegram's state outlives the client ----------------------------------

    def _record(self, entry: dict[str, Any]) -> None:
        """Append one line, in one write, before the answer leaves (a kill leaves it whole or absent)."""
        if self._journal_fd is not None:
            os.write(self._journal_fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())

    def _record_message(self, msg: SentMessage) -> None:
        if self._journal_fd is None:
            return
        data = asdict(msg)
        data["photo"] = None if msg.photo is None else base64.b64encode(msg.photo).decode()
        del data["buttons"]  # derived from markup
        self._record({"t": "msg", "msg": data})

    def _replay(self, path: Path) -> None:
        if not path.exists():
            return
        for line in path.read_bytes().split(b"\n"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a cut last line: that write never finished, so it never happened
            if entry.get("t") == "msg":
                data = dict(entry["msg"])
                photo = data.pop("photo")
                msg = SentMessage(**data, buttons=_buttons(data.get("markup")),
                                  photo=None if photo is None else base64.b64decode(photo))
                self.add_chat(msg.chat_id)
                chat = self._chats[msg.chat_id]
                chat.messages[msg.message_id] = msg
                chat.counter[0] = max(chat.counter[0], msg.message_id + 1)
            elif entry.get("t") == "update":
                update = entry["update"]
                self._updates.append(update)
                self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
            elif entry.get("t") == "offset":
                offset = int(entry["offset"])
                self._updates = [u for u in self._updates if u["update_id"] >= offset]

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- switches for tests ------------------------------------------------------------------

    def add_chat(self, chat_id: int) -> None:
        """Private chats (positive ids) and basic groups share the bot's id counter; supergroups and
        channels (``-100…`` ids) count on their own."""
        if chat_id not in self._chats:
            if chat_id > 0:
                kind, counter = "private", self._shared_counter
            elif str(chat_id).startswith("-100"):
                kind, counter = "supergroup", [self.first_message_id]
            else:
                kind, counter = "group", self._shared_counter
            self._chats[chat_id] = _Chat(chat_id, counter, tokens=float(self.per_chat_burst), chat_type=kind)

    def block(self, chat_id: int, blocked: bool = True) -> None:
        """The user blocks (or unblocks) the bot: sends to the chat get 403."""
        self.add_chat(chat_id)
        self._chats[chat_id].blocked = blocked

    def force_429(self, retry_after: int, times: int = 1, chat_id: int | None = None) -> None:
        """The next ``times`` message requests (to ``chat_id``, or any chat) get a 429."""
        self._forced.extend([(chat_id, retry_after)] * times)

    def fail_with_html(self, method: str = "getMe", times: int = 1, status: int = 502) -> None:
        """The next ``times`` calls of ``method`` get an HTML ``status`` page echoing the request URL."""
        self._html_errors.setdefault(method.lower(), []).extend([status] * times)

    def redirect_elsewhere(self, method: str = "getMe", times: int = 1) -> None:
        """The next ``times`` calls of ``method`` get a 307 to the same path on :attr:`elsewhere`."""
        self._redirects[method.lower()] = self._redirects.get(method.lower(), 0) + times

    async def set_down(self, mode: DownMode | None) -> None:
        """``refuse``: nothing listens; ``reset``: connections drop before a request is read;
        ``accept_then_reset``: the request is fully processed, then the connection drops."""
        previous, self._down = self._down, mode
        if mode == "refuse" and previous != "refuse" and self._site is not None:
            await self._site.stop()
        elif mode != "refuse" and previous == "refuse" and self._runner is not None:
            self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            await self._site.start()

    # -- the user's side ---------------------------------------------------------------------

    def inject_user_message(
        self, chat_id: int, text: str, user: Mapping[str, Any] | None = None, *, date: int | None = None
    ) -> int:
        """A user writes ``text`` in ``chat_id``; the bot sees it through getUpdates. Returns its id."""
        self.add_chat(chat_id)
        chat = self._chats[chat_id]
        mid = chat.counter[0]
        chat.counter[0] += 1
        now = int(self.clock.now()) if date is None else date
        chat.messages[mid] = SentMessage(
            chat_id, mid, text, html.escape(text, quote=False), [], None, (), None, False, now, from_bot=False
        )
        self._record_message(chat.messages[mid])
        sender = dict(user) if user else {"id": abs(chat_id), "is_bot": False, "first_name": "User"}
        message: dict[str, Any] = {
            "message_id": mid, "from": sender, "chat": self._chat_json(chat), "date": now, "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]
        update = {"update_id": self._next_update_id, "message": message}
        self._updates.append(update)
        self._record({"t": "update", "update": update})
        self._next_update_id += 1
        self._updates_changed.set()
        return mid

    def inject_poison_update(self) -> int:
        """Queue an update with a valid ``update_id`` and a malformed message; returns its id."""
        update_id = self._next_update_id
        update = {"update_id": update_id,
                  "message": {"message_id": "not-a-number", "date": "yesterday", "chat": "not-an-object",
                              "text": ["/status"]}}
        self._updates.append(update)
        self._record({"t": "update", "update": update})
        self._next_update_id += 1
        self._updates_changed.set()
        return update_id

    def sent(self, chat_id: int) -> list[SentMessage]:
        """The bot's messages in ``chat_id`` as they stand now, oldest first."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        return [m for _, m in sorted(chat.messages.items()) if m.from_bot]

    def pending_updates(self) -> int:
        return len(self._updates)

    # -- HTTP --------------------------------------------------------------------------------

    @web.middleware
    async def _outage_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if self._down in ("refuse", "reset"):
            _drop(request)
        response: web.StreamResponse = await handler(request)
        if self._down == "accept_then_reset":
            _drop(request)
        return response

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"].lower()
        chat_id: int | None = None
        if self._redirects.get(method, 0) > 0:
            self._redirects[method] -= 1
            self.requests.append(RequestRecord(method, None, 307, self.clock.now(), "redirect"))
            return web.Response(status=307, headers={"Location": f"{self.elsewhere.url}{request.path}"})
        html_errors = self._html_errors.get(method)
        if html_errors:
            status = html_errors.pop(0)
            self.requests.append(RequestRecord(method, None, status, self.clock.now(), "html error page"))
            page = (f"<html><head><title>{status} Bad Gateway</title></head><body><h1>{status} Bad Gateway</h1>"
                    f"<p>The upstream server failed for {request.method} {request.url}</p><hr>nginx</body></html>")
            return web.Response(status=status, text=page, content_type="text/html")
        try:
            if request.match_info["token"] != self.token:
                raise _ApiError(401, "Unauthorized")
            params = await _read_params(request)
            chat_id = _chat_param(params)
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                raise _ApiError(404, "Not Found")
            result = await handler(params)
        except _ApiError as err:
            self.requests.append(RequestRecord(method, chat_id, err.code, self.clock.now(), err.description))
            body: dict[str, Any] = {"ok": False, "error_code": err.code, "description": err.description}
            if err.retry_after is not None:
                body["parameters"] = {"retry_after": err.retry_after}
            return web.json_response(body, status=err.code)
        self.requests.append(RequestRecord(method, chat_id, 200, self.clock.now()))
        return web.json_response({"ok": True, "result": result})

    # -- methods -----------------------------------------------------------------------------

    async def _m_getme(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.bot_id, "is_bot": True, "first_name": "dexscan", "username": self.bot_username,
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False,
        }

    async def _m_deletewebhook(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_setmycommands(self, params: dict[str, Any]) -> bool:
        commands = _json_param(params, "commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: parameter \"commands\" is required")
        return True

    async def _m_answercallbackquery(self, params: dict[str, Any]) -> bool:
        if not params.get("callback_query_id"):
            raise _ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        return True

    async def _m_sendmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._target_chat(params)
        text, plain, entities = self._message_text(params)
        return self._store(chat, params, plain, text, entities, None)

    async def _m_sendphoto(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._target_chat(params)
        photo = params.get("photo")
        if isinstance(photo, str) and photo.startswith("attach://"):
            photo = params.get(photo[len("attach://"):])
        if isinstance(photo, web.FileField):
            data = photo.file.read()
        elif isinstance(photo, bytes | bytearray):
            data = bytes(photo)
        else:
            raise _ApiError(400, "Bad Request: there is no photo in the request")
        if not data:
            raise _ApiError(400, "Bad Request: file must be non-empty")
        caption = str(params.get("caption", ""))
        plain, entities = self._parse(caption, params.get("parse_mode"))
        if utf16_len(plain) > MAX_CAPTION:
            raise _ApiError(400, "Bad Request: message caption is too long")
        return self._store(chat, params, plain, caption, entities, data)

    async def _m_editmessagetext(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._target_chat(params)
        try:
            mid = int(params.get("message_id", ""))
        except ValueError:
            raise _ApiError(400, "Bad Request: message identifier is not specified") from None
        msg = chat.messages.get(mid)
        if msg is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        if not msg.from_bot:
            raise _ApiError(400, "Bad Request: message can't be edited")
        if msg.photo is not None:
            raise _ApiError(400, "Bad Request: there is no text in the message to edit")
        text, plain, entities = self._message_text(params)
        markup = _markup(params)
        if plain == msg.text and entities == msg.entities and markup == msg.markup:
            raise _ApiError(400, NOT_MODIFIED)
        msg.text, msg.html, msg.entities, msg.markup = plain, text, entities, markup
        msg.buttons = _buttons(markup)
        msg.edits += 1
        self._record_message(msg)
        return self._message_json(chat, msg)

    async def _m_getupdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = _int_param(params, "offset", 0)
        limit = max(1, min(100, _int_param(params, "limit", 100)))
        timeout = max(0.0, float(params.get("timeout", 0) or 0))
        if self._poller is not None and not self._poller.done():
            self._poller.set_exception(
                _ApiError(409, "Conflict: terminated by other getUpdates request; "
                               "make sure that only one bot instance is running")
            )
        if offset > 0:
            if any(u["update_id"] < offset for u in self._updates):
                self._record({"t": "offset", "offset": offset})
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        if not self._updates and timeout > 0:
            self._updates_changed.clear()
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._poller = waiter
            wake = asyncio.ensure_future(self._updates_changed.wait())
            wake.add_done_callback(lambda _: None if waiter.done() else waiter.set_result(None))
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(waiter), timeout)
                failure = waiter.exception() if waiter.done() else None
                if failure is not None:
                    raise failure
            finally:
                wake.cancel()
                if self._poller is waiter:
                    self._poller = None
        return self._updates[:limit]

    # -- helpers -----------------------------------------------------------------------------

    def _target_chat(self, params: dict[str, Any]) -> _Chat:
        chat_id = _chat_param(params)
        chat = self._chats.get(chat_id) if chat_id is not None else None
        if chat is None:
            raise _ApiError(400, "Bad Request: chat not found")
        if chat.blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        self._flood_control(chat)
        return chat

    def _flood_control(self, chat: _Chat) -> None:
        for i, (target, retry_after) in enumerate(self._forced):
            if target is None or target == chat.chat_id:
                del self._forced[i]
                raise _ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        now = self.clock.now()
        if chat.refilled_at is not None:
            chat.tokens = min(float(self.per_chat_burst), chat.tokens + (now - chat.refilled_at) * self.per_chat_per_s)
        chat.refilled_at = now
        if self._global_refilled is not None:
            self._global_tokens = min(
                self.global_per_s, self._global_tokens + (now - self._global_refilled) * self.global_per_s
            )
        self._global_refilled = now
        if chat.tokens < 1.0:
            wait = max(1, math.ceil((1.0 - chat.tokens) / self.per_chat_per_s))
            raise _ApiError(429, f"Too Many Requests: retry after {wait}", wait)
        if self._global_tokens < 1.0:
            raise _ApiError(429, "Too Many Requests: retry after 1", 1)
        chat.tokens -= 1.0
        self._global_tokens -= 1.0

    def _message_text(self, params: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
        """A message's ``text`` as sent, as shown (plain) and its entities; refused when it shows
        nothing or is longer than Telegram allows."""
        text = str(params.get("text", ""))
        plain, entities = self._parse(text, params.get("parse_mode"))
        if not plain.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if utf16_len(plain) > MAX_TEXT:
            raise _ApiError(400, "Bad Request: message is too long")
        return text, plain, entities

    def _parse(self, text: str, parse_mode: Any) -> tuple[str, list[dict[str, Any]]]:
        if str(parse_mode or "").upper() != "HTML":
            return text, []
        try:
            return parse_telegram_html(text)
        except HtmlParseError as exc:
            raise _ApiError(400, f"Bad Request: can't parse entities: {exc}") from None

    def _store(
        self, chat: _Chat, params: dict[str, Any], plain: str, source: str, entities: list[dict[str, Any]],
        photo: bytes | None,
    ) -> dict[str, Any]:
        reply_to: int | None = None
        reply = _json_param(params, "reply_parameters")
        if isinstance(reply, dict) and "message_id" in reply:
            reply_to = int(reply["message_id"])
            if reply_to not in chat.messages:
                if not reply.get("allow_sending_without_reply"):
                    raise _ApiError(400, "Bad Request: message to be replied not found")
                reply_to = None
        elif params.get("reply_to_message_id"):
            reply_to = int(params["reply_to_message_id"])
        markup = _markup(params)
        mid = chat.counter[0]
        chat.counter[0] += 1
        msg = SentMessage(
            chat.chat_id, mid, plain, source, entities, reply_to, _buttons(markup), photo,
            _truthy(params.get("disable_notification")), int(self.clock.now()), markup=markup,
        )
        chat.messages[mid] = msg
        self._record_message(msg)
        if self.on_accept is not None:
            self.on_accept(msg)
        return self._message_json(chat, msg)

    def _chat_json(self, chat: _Chat) -> dict[str, Any]:
        if chat.chat_type == "private":
            return {"id": chat.chat_id, "type": "private", "first_name": "User"}
        return {"id": chat.chat_id, "type": chat.chat_type, "title": "Group"}

    def _message_json(self, chat: _Chat, msg: SentMessage) -> dict[str, Any]:
        out: dict[str, Any] = {
            "message_id": msg.message_id,
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "dexscan", "username": self.bot_username},
            "chat": self._chat_json(chat),
            "date": msg.date,
        }
        if msg.photo is not None:
            out["photo"] = [{
                "file_id": f"photo-{chat.chat_id}-{msg.message_id}", "file_unique_id": f"u{msg.message_id}",
                "width": 1200, "height": 800, "file_size": len(msg.photo),
            }]
            if msg.text:
                out["caption"] = msg.text
                out["caption_entities"] = msg.entities
        else:
            out["text"] = msg.text
            if msg.entities:
                out["entities"] = msg.entities
        if msg.markup:
            out["reply_markup"] = msg.markup
        if msg.edits:
            out["edit_date"] = int(self.clock.now())
        if msg.reply_to is not None and msg.reply_to in chat.messages:
            target = chat.messages[msg.reply_to]
            out["reply_to_message"] = {
                "message_id": target.message_id, "chat": self._chat_json(chat), "date": target.date,
                "text": target.text,
            }
        return out


def _drop(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()
    raise web.HTTPServiceUnavailable()


async def _read_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.body_exists:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _ApiError(400, "Bad Request: can't parse JSON") from None
            if isinstance(body, dict):
                params.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                params[key] = value
    return params


def _chat_param(params: Mapping[str, Any]) -> int | None:
    raw = params.get("chat_id")
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def _int_param(params: Mapping[str, Any], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise _ApiError(400, f"Bad Request: invalid {name}") from None


def _json_param(params: Mapping[str, Any], name: str) -> Any:
    raw = params.get(name)
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            raise _ApiError(400, f"Bad Request: can't parse {name} JSON object") from None
    return raw


def _markup(params: Mapping[str, Any]) -> dict[str, Any] | None:
    markup = _json_param(params, "reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard", []):
        for button in row:
            url = button.get("url")
            if url is not None and not str(url).startswith(("http://", "https://", "tg://")):
                raise _ApiError(400, f"Bad Request: inline keyboard button URL '{url}' is invalid")
    return markup


def _buttons(markup: Mapping[str, Any] | None) -> Buttons:
    if not markup:
        return ()
    return tuple(
        tuple((str(b.get("text", "")), str(b.get("url", ""))) for b in row)
        for row in markup.get("inline_keyboard", [])
    )


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("true", "1")


# -- the demo chat of `dexscan bot --demo` and `dexscan scan --demo` ------------------------------

DEMO_CHAT = 1001
