"""A loopback Solana RPC WebSocket fake: ``logsSubscribe`` / ``logsNotification`` / ``logsUnsubscribe``,
``slotSubscribe`` / ``slotNotification`` / ``slotUnsubscribe``.

Speaks the real message shapes on 127.0.0.1 (``websockets``):

* ``{"jsonrpc":"2.0","id":N,"method":"logsSubscribe","params":[{"mentions":[PUBKEY]},{"commitment":"confirmed"}]}``
  -> ``{"jsonrpc":"2.0","result":SUB,"id":N}``; more than one pubkey in ``mentions`` is refused as
  the real nodes do (``-32602`` "Invalid params: Only 1 address supported"), and so is a subscription
  over ``max_subscriptions_per_connection`` (providers cap it);
* :meth:`RpcWsFake.publish` sends ``{"jsonrpc":"2.0","method":"logsNotification","params":{"result":
  {"context":{"slot":S},"value":{"signature":...,"err":...,"logs":[...]}},"subscription":SUB}}`` to
  every subscription whose pubkey the transaction mentions;
* ``logsUnsubscribe`` [SUB] -> ``true``;
* ``{"method":"slotSubscribe"}`` -> a subscription id; :meth:`RpcWsFake.publish_slot` sends
  ``{"jsonrpc":"2.0","method":"slotNotification","params":{"result":{"parent":S-1,"root":S-32,
  "slot":S},"subscription":SUB}}`` to every slot subscription (a node sends one per slot, ~2.5/s;
  the demo calls it once per published slice of its clock, with the slot of the slice's end, so a
  quiet market still shows a live chain); ``slotUnsubscribe`` [SUB] -> ``true``.

Fault modes, switchable at run time: :meth:`disconnect_all` (drop every connection), ``silent``
(accept and acknowledge, never notify: neither logs nor slots), ``duplicate`` (every notification twice), ``reorder``
(each notification held back and sent after the next one), ``refuse`` (close new connections at
once), and in the content: ``malformed_base64`` (every ``Program data:`` payload mangled),
``truncate_logs_at`` (logs cut after N lines and ended with ``Log truncated``, as nodes do past
their log limit), ``fail_transactions`` (every notification carries an ``err``). Everything
received is recorded for the tests.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed


@dataclass
class _Client:
    ws: ServerConnection
    subs: dict[int, str] = field(default_factory=dict)  # subscription id -> pubkey
    slot_subs: set[int] = field(default_factory=set)


class RpcWsFake:
    def __init__(self, max_subscriptions_per_connection: int | None = None) -> None:
        self.max_subs = max_subscriptions_per_connection
        self.silent = False
        self.duplicate = False
        self.reorder = False
        self.refuse = False
        self.malformed_base64 = False
        self.truncate_logs_at: int | None = None
        self.fail_transactions = False
        self.clients: list[_Client] = []
        self.methods: Counter[str] = Counter()
        self.subscribed: list[str] = []  # every pubkey subscribed, in order, across connections
        self.connections_total = 0
        self._server: Server | None = None
        self._next_sub = 100
        self._held: list[tuple[_Client, str]] = []
        self.url = ""

    async def start(self, port: int = 0) -> str:
        self._server = await serve(self._handle, "127.0.0.1", port, compression=None)
        sock = next(iter(self._server.sockets))
        self.url = f"ws://127.0.0.1:{sock.getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> RpcWsFake:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def active_subscriptions(self) -> int:
        return sum(len(c.subs) for c in self.clients)

    async def disconnect_all(self) -> None:
        for client in list(self.clients):
            with contextlib.suppress(Exception):
                await client.ws.close(code=1011, reason="fake: disconnect")

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections_total += 1
        if self.refuse:
            await ws.close(code=1013, reason="fake: refused")
            return
        client = _Client(ws)
        self.clients.append(client)
        try:
            async for raw in ws:
                await self._request(client, raw)
        except ConnectionClosed:
            pass
        finally:
            self.clients.remove(client)

    async def _request(self, client: _Client, raw: str | bytes) -> None:
        try:
            req = json.loads(raw)
        except ValueError:
            await self._send(client, {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"},
                                      "id": None})
            return
        rid, method, params = req.get("id"), req.get("method"), req.get("params") or []
        self.methods[str(method)] += 1
        if method == "logsSubscribe":
            flt = params[0] if params else None
            mentions = flt.get("mentions") if isinstance(flt, dict) else None
            if not isinstance(mentions, list) or len(mentions) != 1 or not isinstance(mentions[0], str):
                await self._error(client, rid, -32602, "Invalid params: Only 1 address supported")
                return
            if self.max_subs is not None and len(client.subs) >= self.max_subs:
                await self._error(client, rid, -32602, f"Too many subscriptions (max {self.max_subs})")
                return
            sub = self._next_sub
            self._next_sub += 1
            client.subs[sub] = mentions[0]
            self.subscribed.append(mentions[0])
            await self._send(client, {"jsonrpc": "2.0", "result": sub, "id": rid})
        elif method == "slotSubscribe":
            sub = self._next_sub
            self._next_sub += 1
            client.slot_subs.add(sub)
            await self._send(client, {"jsonrpc": "2.0", "result": sub, "id": rid})
        elif method == "slotUnsubscribe":
            target = params[0] if params else None
            if isinstance(target, int) and target in client.slot_subs:
                client.slot_subs.discard(target)
                await self._send(client, {"jsonrpc": "2.0", "result": True, "id": rid})
            else:
                await self._error(client, rid, -32602, "Invalid subscription id.")
        elif method == "logsUnsubscribe":
            target = params[0] if params else None
            ok = isinstance(target, int) and client.subs.pop(target, None) is not None
            if ok:
                await self._send(client, {"jsonrpc": "2.0", "result": True, "id": rid})
            else:
                await self._error(client, rid, -32602, "Invalid subscription id.")
        else:
            await self._error(client, rid, -32601, "Method not found")

    async def _error(self, client: _Client, rid: Any, code: int, message: str) -> None:
        await self._send(client, {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": rid})

    async def _send(self, client: _Client, msg: dict[str, Any] | str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await client.ws.send(msg if isinstance(msg, str) else json.dumps(msg))

    async def publish(self, signature: str, slot: int, logs: list[str], mentions: Iterable[str],
                      err: Any = None) -> int:
        """Notify every subscription to one of ``mentions``; returns how many messages went out."""
        wanted = set(mentions)
        sent = 0
        if self.silent:
            return 0
        if self.malformed_base64:
            logs = [line[:20] + "!*" + line[20:] if line.startswith("Program data: ") else line for line in logs]
        if self.truncate_logs_at is not None and len(logs) > self.truncate_logs_at:
            logs = [*logs[: self.truncate_logs_at], "Log truncated"]
        if self.fail_transactions and err is None:
            err = {"InstructionError": [0, {"Custom": 6001}]}
        for client in list(self.clients):
            for sub, pk in list(client.subs.items()):
                if pk not in wanted:
                    continue
                text = json.dumps({"jsonrpc": "2.0", "method": "logsNotification", "params": {
                    "result": {"context": {"slot": slot}, "value": {"signature": signature, "err": err,
                                                                      "logs": logs}},
                    "subscription": sub}})
                copies = 2 if self.duplicate else 1
                for _ in range(copies):
                    if self.reorder:
                        self._held.append((client, text))
                        if len(self._held) >= 2:
                            later, earlier = self._held.pop(), self._held.pop()
                            await self._send(later[0], later[1])
                            await self._send(earlier[0], earlier[1])
                            sent += 2
                        continue
                    await self._send(client, text)
                    sent += 1
        return sent

    async def publish_slot(self, slot: int) -> int:
        """Tell every slot subscription the chain reached ``slot``; returns how many messages went out."""
        if self.silent:
            return 0
        sent = 0
        for client in list(self.clients):
            for sub in list(client.slot_subs):
                await self._send(client, json.dumps({"jsonrpc": "2.0", "method": "slotNotification", "params": {
                    "result": {"parent": slot - 1, "root": max(0, slot - 32), "slot": slot}, "subscription": sub}}))
                sent += 1
        return sent

    async def flush(self) -> None:
        """Send anything ``reorder`` is holding back."""
        held, self._held = self._held, []
        for client, text in held:
            await self._send(client, text)

    async def send_raw(self, text: str) -> None:
        """A message as is to every connection (malformed JSON, unknown methods...)."""
        for client in list(self.clients):
            await self._send(client, text)

