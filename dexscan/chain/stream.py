"""The Solana RPC WebSocket client: ``logsSubscribe`` per watched pubkey, decoded events out.

:class:`LogStream` keeps one ``logsSubscribe`` (``{"mentions": [pubkey]}``, commitment
``confirmed``) per watched pubkey — a DEX program, or a pool whose logs cannot name it (Raydium
AMM v4's ``ray_log``: the pool is then taken from the subscription) — spread over as many
connections as the provider's subscriptions-per-connection limit needs. Each connection:

* connects to the first configured WebSocket endpoint (derived from the HTTP RPC URLs, http->ws,
  https->wss, unless set explicitly) and, when that fails, goes silent or drops, reconnects with
  jittered exponential backoff to the *next* endpoint (fail-over), resubscribing everything;
* also keeps a ``slotSubscribe`` (the heartbeat: a ``slotNotification`` per slot, ~2.5/s, whether or
  not anything trades), so "no message for ``silence_timeout_s``" means a dead stream (providers stall
  without closing), never a quiet market; a provider that refuses ``slotSubscribe`` is counted
  (``slot_subscribe_errors``) and silence then falls back to meaning "no notification";
* decodes every ``logsNotification`` with :mod:`dexscan.chain.events` (pure; never raises), drops
  failed transactions, delivers each transaction once (the same signature arrives once per
  subscription it mentions, and providers repeat notifications), counts out-of-order slots;
* hands the transactions of pools whose swaps never reach the logs (Meteora DLMM) to ``on_fetch``,
  for a ``getTransaction``;
* stamps events whose input states no time (a ``logsNotification`` has none; only pump.fun's and
  PumpSwap's events carry their own timestamp) with their arrival time, read from ``now`` as the
  message is received: a consumer that falls behind (a locked database) must not date a backlog of
  trades to the moment it catches up.

Events go to a callback and/or an ``asyncio.Queue`` (a full queue drops and counts). Everything is
counted in :attr:`LogStream.stats` (messages, decoded, rejected by reason, reconnects,
resubscribes, ...). Timers use the loop's clock, so tests run it on virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from dexscan.chain.events import PROGRAMS, Decoded, Event, Swap, decode_notification

if TYPE_CHECKING:
    from dexscan.config import Settings

log = logging.getLogger(__name__)

EventSink = Callable[[Event], None]
#: (signature, pool): a notification of a pool whose swaps only ``getTransaction`` shows (Meteora DLMM)
FetchSink = Callable[[str, str], None]


def ws_url_for(http_url: str) -> str:
    """The WebSocket URL of an HTTP RPC endpoint: same host, path and query (API keys ride along),
    ``http`` -> ``ws``, ``https`` -> ``wss``; ws/wss URLs are returned as they are."""
    parts = urlsplit(http_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"not an http(s)/ws(s) URL: {parts.scheme}://{parts.hostname or ''}")
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, ""))


def ws_endpoints(http_urls: Iterable[str], explicit: Iterable[str] = ()) -> list[str]:
    """The endpoints to use, in priority order: the explicit ones if any, else one per HTTP URL."""
    chosen = [ws_url_for(u) for u in explicit] or [ws_url_for(u) for u in http_urls]
    return list(dict.fromkeys(chosen))


@dataclass(frozen=True, slots=True)
class StreamOptions:
    max_subscriptions_per_connection: int = 100
    silence_timeout_s: float = 30.0
    reconnect_base_s: float = 0.5
    reconnect_max_s: float = 30.0
    open_timeout_s: float = 10.0
    commitment: str = "confirmed"
    dedupe_window: int = 20_000  # signatures remembered for duplicate detection
    max_message_bytes: int = 4 * 1024 * 1024
    slot_heartbeat: bool = True  # slotSubscribe on every connection: silence means a dead stream


@dataclass
class StreamStats:
    """Every count the stream keeps; :meth:`as_dict` for status pages and metrics."""

    counts: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)  # decoder rejections and bad messages, by reason
    last_slot: int | None = None  # newest slot of a logsNotification
    heartbeat_slot: int | None = None  # newest slot of a slotNotification

    def as_dict(self) -> dict[str, Any]:
        return {**{k: self.counts[k] for k in sorted(self.counts)}, "rejected": dict(sorted(self.rejected.items())),
                "last_slot": self.last_slot, "heartbeat_slot": self.heartbeat_slot}


def from_settings(settings: Settings) -> tuple[list[str], StreamOptions]:
    """The WebSocket endpoints (``[stream] ws_endpoints``, else the twins of the RPC endpoints,
    secret ones from ``DEXSCAN_RPC_URLS`` first) and the options of ``[stream]``."""
    st = settings.stream
    endpoints = ws_endpoints(settings.rpc_endpoints(), st.ws_endpoints)
    return endpoints, StreamOptions(
        max_subscriptions_per_connection=st.max_subscriptions_per_connection,
        silence_timeout_s=st.silence_timeout_s, reconnect_base_s=st.reconnect_base_s,
        reconnect_max_s=st.reconnect_max_s)


class _Silent(Exception):
    """No message within the silence timeout."""


class _Connection:
    """One WebSocket connection and the subscriptions it carries."""

    def __init__(self, stream: LogStream, number: int) -> None:
        self.stream = stream
        self.number = number
        self.mentions: list[str] = []
        self.endpoint_index = 0
        self.ws: Any = None
        self.sub_to_mention: dict[int, str] = {}
        self.mention_to_sub: dict[str, int] = {}
        self.pending: dict[int, tuple[str, str]] = {}  # request id -> (method, pubkey)
        self.task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.stale: list[int] = []  # subscriptions acknowledged after their pubkey was unwatched
        self.slot_sub: int | None = None  # the heartbeat's subscription id

    @property
    def endpoint(self) -> str:
        eps = self.stream.endpoints
        return eps[self.endpoint_index % len(eps)]

    async def run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

        s, opts, stats = self.stream, self.stream.options, self.stream.stats.counts
        attempt = 0
        first = True
        while not s.stopping:
            url = self.endpoint
            if not first:
                stats["reconnects"] += 1
            first = False
            healthy = False
            try:
                host = urlsplit(url).hostname or ""
                async with connect(url, open_timeout=opts.open_timeout_s, max_size=opts.max_message_bytes,
                                   close_timeout=1.0, ping_interval=20.0, ping_timeout=20.0, compression=None,
                                   proxy=None if host in ("127.0.0.1", "localhost", "::1") else True) as ws:
                    self.ws = ws
                    stats["connects"] += 1
                    self.sub_to_mention.clear()
                    self.mention_to_sub.clear()
                    self.pending.clear()
                    self.slot_sub = None
                    if opts.slot_heartbeat:
                        await self.subscribe_slots()
                    for pk in list(self.mentions):
                        await self.subscribe(pk, resubscribe=not s.fresh(pk))
                    self.connected.set()
                    while not s.stopping:
                        try:
                            raw = await asyncio.wait_for(ws.recv(), opts.silence_timeout_s)
                        except TimeoutError:
                            raise _Silent from None
                        if not healthy:
                            healthy, attempt = True, 0
                        s.handle(raw, self)
                        while self.stale:
                            await self._drop(self.stale.pop())
            except _Silent:
                stats["silent_timeouts"] += 1
                log.warning("stream %s: no message for %.0f s; reconnecting elsewhere", _safe(url),
                            opts.silence_timeout_s)
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI, WebSocketException) as exc:
                stats["disconnects" if healthy else "connect_errors"] += 1
                log.warning("stream %s: %s", _safe(url), type(exc).__name__)
            finally:
                self.ws = None
                self.connected.clear()
            if s.stopping:
                break
            if len(s.endpoints) > 1:  # fail over: the next endpoint in priority order
                self.endpoint_index += 1
                stats["failovers"] += 1
            delay = min(opts.reconnect_max_s, opts.reconnect_base_s * 2 ** min(attempt, 20))
            attempt += 1
            await asyncio.sleep(delay * (0.5 + 0.5 * s.rng.random()))  # jitter: 50-100% of the step

    async def subscribe_slots(self) -> None:
        if self.ws is None:
            return
        rid = self.stream.next_id()
        self.pending[rid] = ("slotSubscribe", "")
        self.stream.stats.counts["slot_subscribes"] += 1
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": "slotSubscribe"}))

    async def subscribe(self, pubkey: str, resubscribe: bool = False) -> None:
        if self.ws is None:
            return
        rid = self.stream.next_id()
        self.pending[rid] = ("logsSubscribe", pubkey)
        self.stream.stats.counts["resubscribes" if resubscribe else "subscribes"] += 1
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": "logsSubscribe", "params": [
            {"mentions": [pubkey]}, {"commitment": self.stream.options.commitment}]}))

    async def unsubscribe(self, pubkey: str) -> None:
        sub = self.mention_to_sub.pop(pubkey, None)
        if sub is None or self.ws is None:
            return
        self.sub_to_mention.pop(sub, None)
        await self._drop(sub, pubkey)

    async def _drop(self, sub: int, pubkey: str = "") -> None:
        if self.ws is None:
            return
        rid = self.stream.next_id()
        self.pending[rid] = ("logsUnsubscribe", pubkey)
        self.stream.stats.counts["unsubscribes"] += 1
        with contextlib.suppress(Exception):
            await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": "logsUnsubscribe",
                                           "params": [sub]}))


def _safe(url: str) -> str:
    """An endpoint for logs: scheme and host only (paths and queries may hold API keys)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


class LogStream:
    """Subscriptions to the logs of watched pubkeys over one or more WebSocket endpoints."""

    def __init__(self, endpoints: Sequence[str], mentions: Iterable[str] = (), *, on_event: EventSink | None = None,
                 queue: asyncio.Queue[Event] | None = None, options: StreamOptions | None = None,
                 rng: random.Random | None = None, now: Callable[[], float] | None = None,
                 on_fetch: FetchSink | None = None) -> None:
        if not endpoints:
            raise ValueError("LogStream needs at least one WebSocket endpoint")
        self.endpoints = list(endpoints)
        self.options = options or StreamOptions()
        self.on_event = on_event
        self.queue = queue
        self.rng = rng or random.Random()
        self.now = now  # arrival times of events that state none (None: left unstated)
        self.on_fetch = on_fetch
        #: watched pools whose swap events reach no log line (Meteora DLMM: a self-CPI): each of their
        #: transactions goes to ``on_fetch`` for a ``getTransaction``
        self.fetch_pools: set[str] = set()
        self.stats = StreamStats()
        self.stopping = False
        self.connections: list[_Connection] = []
        self._watched: dict[str, _Connection] = {}
        self._subscribed_once: set[str] = set()
        #: signatures delivered: True once a pool's subscription delivered it, False while only a program's
        self._seen: OrderedDict[str, bool] = OrderedDict()
        self._ids = 0
        self._running = False
        self._stop_event = asyncio.Event()
        for pk in dict.fromkeys(mentions):
            self._place(pk)

    # -- what is watched -------------------------------------------------------------------------

    @property
    def watched(self) -> list[str]:
        return list(self._watched)

    def _place(self, pubkey: str) -> _Connection:
        limit = self.options.max_subscriptions_per_connection
        conn = next((c for c in self.connections if len(c.mentions) < limit), None)
        if conn is None:
            conn = _Connection(self, len(self.connections))
            self.connections.append(conn)
            if self._running:
                conn.task = asyncio.create_task(conn.run(), name=f"logstream-{conn.number}")
        conn.mentions.append(pubkey)
        self._watched[pubkey] = conn
        return conn

    async def watch(self, pubkey: str) -> None:
        """Start (or keep) a subscription to ``pubkey``'s logs."""
        if pubkey in self._watched:
            return
        conn = self._place(pubkey)
        await conn.subscribe(pubkey)

    async def unwatch(self, pubkey: str) -> None:
        conn = self._watched.pop(pubkey, None)
        if conn is None:
            return
        conn.mentions.remove(pubkey)
        await conn.unsubscribe(pubkey)

    def fresh(self, pubkey: str) -> bool:
        """True the first time ``pubkey`` is subscribed (later ones count as resubscribes)."""
        if pubkey in self._subscribed_once:
            return False
        self._subscribed_once.add(pubkey)
        return True

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    # -- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run every connection until :meth:`stop` (an unexpected error in a connection ends it)."""
        self._running = True
        for conn in self.connections:
            if conn.task is None:
                conn.task = asyncio.create_task(conn.run(), name=f"logstream-{conn.number}")
        stop_waiter = asyncio.ensure_future(self._stop_event.wait())
        try:
            while not self.stopping:
                tasks = [c.task for c in self.connections if c.task is not None]
                done, _ = await asyncio.wait([*tasks, stop_waiter], return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    if t is not stop_waiter and not t.cancelled() and t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
        finally:
            stop_waiter.cancel()
            await self.stop()

    async def stop(self) -> None:
        self.stopping = True
        self._stop_event.set()
        for conn in self.connections:
            if conn.ws is not None:
                with contextlib.suppress(Exception):
                    await conn.ws.close()
        tasks = [c.task for c in self.connections if c.task is not None and c.task is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def status(self) -> list[dict[str, Any]]:
        """Per connection: endpoint (scheme and host only), connected, subscriptions (for dashboards)."""
        return [{"connection": c.number, "endpoint": _safe(c.endpoint), "connected": c.ws is not None,
                 "watched": len(c.mentions), "subscribed": len(c.sub_to_mention)} for c in self.connections]

    async def wait_connected(self) -> None:
        """Until every connection is up and has sent its subscriptions."""
        for conn in list(self.connections):
            await conn.connected.wait()

    # -- messages --------------------------------------------------------------------------------

    def handle(self, raw: str | bytes, conn: _Connection) -> None:
        """One message from ``conn``'s socket (never raises on bad input: counts it)."""
        c = self.stats.counts
        c["messages"] += 1
        try:
            msg = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self.stats.rejected["not_json"] += 1
            return
        if not isinstance(msg, dict):
            self.stats.rejected["not_an_object"] += 1
            return
        method = msg.get("method")
        if method == "logsNotification":
            self._notification(msg, conn)
        elif method == "slotNotification":
            self._slot(msg, conn)
        elif "id" in msg:
            self._answer(msg, conn)
        else:
            self.stats.rejected["unknown_message"] += 1

    def _answer(self, msg: dict[str, Any], conn: _Connection) -> None:
        rid = msg.get("id")
        req = conn.pending.pop(rid, None) if isinstance(rid, int) else None
        if req is None:
            self.stats.rejected["unexpected_answer"] += 1
            return
        method, pubkey = req
        if msg.get("error") is not None:
            self.stats.counts[{"logsSubscribe": "subscribe_errors", "slotSubscribe": "slot_subscribe_errors"}.get(
                method, "unsubscribe_errors")] += 1
            err = msg["error"]
            log.warning("stream: %s %s refused: %s", method, pubkey[:8],
                        err.get("message") if isinstance(err, dict) else err)
            return
        sub = msg.get("result")
        if method == "slotSubscribe" and isinstance(sub, int) and not isinstance(sub, bool):
            conn.slot_sub = sub
            return
        if method == "logsSubscribe" and isinstance(sub, int) and not isinstance(sub, bool):
            if pubkey in conn.mentions:
                conn.sub_to_mention[sub] = pubkey
                conn.mention_to_sub[pubkey] = sub
            else:  # unwatched while the subscription was on its way: drop it
                conn.stale.append(sub)
            self.stats.counts["subscriptions_active"] = sum(len(x.sub_to_mention) for x in self.connections)

    def _slot(self, msg: dict[str, Any], conn: _Connection) -> None:
        """A heartbeat: ``{"params": {"result": {"parent", "root", "slot"}, "subscription"}}``."""
        params = msg.get("params")
        result = params.get("result") if isinstance(params, dict) else None
        slot = result.get("slot") if isinstance(result, dict) else None
        if not isinstance(slot, int) or isinstance(slot, bool) or conn.slot_sub is None \
                or params.get("subscription") != conn.slot_sub:  # type: ignore[union-attr]
            self.stats.rejected["bad_slot_notification"] += 1
            return
        self.stats.counts["slot_notifications"] += 1
        if self.stats.heartbeat_slot is None or slot > self.stats.heartbeat_slot:
            self.stats.heartbeat_slot = slot

    def _notification(self, msg: dict[str, Any], conn: _Connection) -> None:
        c = self.stats.counts
        c["notifications"] += 1
        params = msg.get("params")
        sub = params.get("subscription") if isinstance(params, dict) else None
        mention = conn.sub_to_mention.get(sub) if isinstance(sub, int) else None
        if mention is None:
            c["unknown_subscription"] += 1
        out = decode_notification(msg)
        via_program = mention is not None and mention in PROGRAMS
        rest_only = False  # a pool's copy of a transaction a program subscription delivered first
        if out.signature is not None:
            prior = self._seen.get(out.signature)
            if prior is True or (prior is False and via_program):
                c["duplicates"] += 1
                return
            # the program's copy could not name a Raydium v4 swap's pool nor ask for a DLMM fetch: the
            # pool's copy does just that
            rest_only = prior is False
            self._seen[out.signature] = not via_program
            if len(self._seen) > self.options.dedupe_window:
                self._seen.popitem(last=False)
        if rest_only:  # a copy all the same: counted as one
            c["duplicates"] += 1
            self._pool_part(out, mention)
            return
        for r in out.rejections:
            self.stats.rejected[r.reason] += 1
        if out.truncated:
            c["truncated_logs"] += 1
        if out.failed:
            c["failed_transactions"] += 1
            return
        if out.slot is not None:
            last = self.stats.last_slot
            if last is not None and out.slot < last:
                c["out_of_order"] += 1
            else:
                self.stats.last_slot = out.slot
        if mention is not None and mention in self.fetch_pools and self.on_fetch is not None and out.signature:
            c["fetch_requests"] += 1
            self.on_fetch(out.signature, mention)
        if not out.events:
            c["notifications_without_events"] += 1
        # ray_log names no pool: the subscription does, when it is a pool's and the transaction has one
        # Raydium v4 swap; a route through several v4 pools cannot say which ray_log is whose.
        fill = self._ray_pool(out, mention)
        arrived = None if self.now is None else int(self.now())
        for ev in out.events:
            if fill is not None and isinstance(ev, Swap) and ev.pool is None and ev.program == "raydium_amm_v4":
                ev = dataclasses.replace(ev, pool=fill)
            elif via_program and isinstance(ev, Swap) and ev.pool is None and ev.program == "raydium_amm_v4":
                c["raydium_left_to_pool"] += 1  # its pool's subscription (if any) delivers it with the pool
                continue
            if ev.block_time is None and arrived is not None:
                ev = dataclasses.replace(ev, block_time=arrived)
                c["time_from_arrival"] += 1
            c["decoded"] += 1
            c["swaps" if isinstance(ev, Swap) else "pool_events"] += 1
            self._deliver(ev)

    def _ray_pool(self, out: Decoded, mention: str | None) -> str | None:
        """The pool of the transaction's Raydium v4 swap: the subscription's pubkey when it is a pool's
        and the transaction has one v4 swap (a route through several cannot say which ray_log is whose)."""
        if mention is None or mention in PROGRAMS:
            return None
        ray_swaps = sum(1 for ev in out.events if isinstance(ev, Swap) and ev.program == "raydium_amm_v4")
        if ray_swaps > 1:
            self.stats.counts["raydium_pool_ambiguous"] += ray_swaps
        return mention if ray_swaps == 1 else None

    def _pool_part(self, out: Decoded, mention: str | None) -> None:
        """A pool subscription's copy of a transaction already delivered by a program subscription:
        only what the pool's copy adds (the Raydium v4 swap's pool, the DLMM fetch)."""
        if out.failed or mention is None:
            return
        if mention in self.fetch_pools and self.on_fetch is not None and out.signature:
            self.stats.counts["fetch_requests"] += 1
            self.on_fetch(out.signature, mention)
        fill = self._ray_pool(out, mention)
        if fill is None:
            return
        arrived = None if self.now is None else int(self.now())
        for ev in out.events:
            if isinstance(ev, Swap) and ev.pool is None and ev.program == "raydium_amm_v4":
                ev = dataclasses.replace(ev, pool=fill, block_time=ev.block_time if ev.block_time is not None
                                         else arrived)
                self.stats.counts["decoded"] += 1
                self.stats.counts["swaps"] += 1
                self._deliver(ev)

    def _deliver(self, ev: Event) -> None:
        if self.on_event is not None:
            try:
                self.on_event(ev)
            except Exception:  # a consumer's bug must not kill the stream
                self.stats.counts["callback_errors"] += 1
                log.exception("stream: event callback failed")
        if self.queue is not None:
            try:
                self.queue.put_nowait(ev)
            except asyncio.QueueFull:
                self.stats.counts["dropped"] += 1
