"""A local Solana JSON-RPC server whose accounts are made by the real token programs.

:class:`RpcFakeServer` serves one :class:`~dexscan.demo.servers.fake_chain.FakeChain` (a LiteSVM world
whose mints are made by real transactions) over HTTP on 127.0.0.1 (several servers may
share a chain, as several RPC providers share mainnet) with the real answer and error shapes:
``getHealth``, ``getSlot``, ``getVersion``, ``getAccountInfo`` and ``getMultipleAccounts`` (base64
and jsonParsed), ``getTokenLargestAccounts``, and for the DEX transactions the demo streamed
(:class:`~dexscan.demo.servers.fake_chain.TxArchive`) ``getSignaturesForAddress`` (see the history contract below) and
``getTransaction`` (json encoding with inner instructions, where a Meteora DLMM swap's event is, and
the top-level instructions when recorded, a Raydium v4 ``initialize2`` with its accounts; ``null``
for an unknown signature); ``-32005`` "Node is behind by N slots" with ``data.numSlotsBehind``, the
rpcpool HTTP 429 body, ``-32602`` "Too many inputs provided; max 100", ``-32602`` "Invalid param:
WrongSize", ``value: null`` for missing accounts. Faults are injected at run time: ``down``
(connection refused; open connections closed), ``slow``, ``lagging``, ``stale``, ``rate_limited``,
``oversized``, ``gzip_bomb``, and two lying endpoints: ``slot_lead`` (every slot it tells,
``getSlot`` and every answer's ``context.slot``, is N above the chain's, while ``getHealth`` says
ok) and ``lie_renounced`` (every mint account it serves, base64 and jsonParsed, has its mint and
freeze authority cut to none; the bytes are otherwise the chain's). It also enforces the public
mainnet limits (100 requests and 40 per method per 10 s by default) with HTTP 429, so tests can
prove dexscan never causes one.

Real behaviours modelled (``reference/external-apis.md`` §5):

* ``public_like``: like ``api.mainnet-beta.solana.com``, ``getTokenLargestAccounts`` of an SPL Token
  (Tokenkeg…) mint is refused with ``-32010`` "TokenkegQ… excluded from account secondary indexes;
  this RPC method unavailable for key" (§5.1); Token-2022 mints are served. The demo's first endpoint
  (``"rpc-1"``, :data:`PUBLIC_LIKE_NAMES`) plays the public endpoint by default.
* ``disabled_methods``: methods a provider switched off answer ``-32601`` "Method not found" (§5.1).

The transaction history contract (:class:`~dexscan.demo.servers.fake_chain.TxArchive`), as mainnet nodes answer it:

* ``getSignaturesForAddress(address, {before, until, limit})``: rows ``{signature, slot, err, memo,
  blockTime, confirmationStatus}``, **newest first** (by slot, then signature), starting after
  ``before`` (excluded; an unknown ``before`` gives ``[]``), stopping at ``until`` (excluded), at most
  ``limit`` (1..1000, default 1000; else ``-32602`` "Invalid limit; max 1000"). A failed transaction
  is listed like the others with ``err`` non-null (``{"InstructionError": [0, {"Custom": 6001}]}``,
  a slippage failure), and its ``getTransaction`` has the same ``meta.err``, ``meta.status.Err`` and
  logs ending in ``failed: custom program error: 0x1771``; its logs still carry the event the
  program wrote before failing, which a reader must not count.
* History: an archive may be given a ``history_loader`` (the demo world's, for ``backfill --source
  chain``): it is called once per address, at the first ``getSignaturesForAddress`` of it, and
  records that address's older transactions (the simulated swaps of a pool since the start of the
  simulated history); they are kept whatever ``keep`` says.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from solders.account import Account
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID

from dexscan.chain.mint import (
    ACCOUNT_LEN,
    TOKEN_PROGRAMS,
    account_kind,
    b58decode,
    mint_facts_from_account,
    parse_extensions,
)
from dexscan.clock import Clock, RealClock
from dexscan.demo.servers.fake_chain import U64_MAX, FakeChain
from dexscan.demo.servers.market import stream_huge_answer

API_VERSION = "2.2.14"
RPCPOOL_METHOD_LIMIT = "Too many requests for a specific RPC call, contact your app developer or support@rpcpool.com."
RPCPOOL_IP_LIMIT = "Too many requests from your IP, contact your app developer or support@rpcpool.com."
MAX_KEYS = 100
#: Server names that play the public mainnet endpoint unless told otherwise (the demo's first RPC).
PUBLIC_LIKE_NAMES = frozenset({"rpc-1"})
KEY_EXCLUDED_FROM_SECONDARY_INDEX = -32010
METHOD_NOT_FOUND = -32601


# -- JSON rendering --------------------------------------------------------------------------------


def _ui_amount(amount: int, decimals: int) -> dict[str, Any]:
    ui = amount / 10**decimals
    text = f"{amount / 10**decimals:.{decimals}f}".rstrip("0").rstrip(".") if decimals else str(amount)
    return {"amount": str(amount), "decimals": decimals, "uiAmount": ui, "uiAmountString": text}


def _extensions_json(data: bytes) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for e in parse_extensions(data):
        entry: dict[str, Any] = {"extension": e.name}
        if e.state and e.name != "unparseableExtension":
            entry["state"] = dict(e.state)
        out.append(entry)
    return out


class _Rpc:
    """Answers JSON-RPC calls from a chain; the HTTP and fault layer lives in RpcFakeServer."""

    def __init__(self, chain: FakeChain) -> None:
        self.chain = chain

    def context(self, slot: int) -> dict[str, Any]:
        return {"slot": slot, "apiVersion": API_VERSION}

    def parsed(self, address: str, acc: Account) -> dict[str, Any] | None:
        owner = str(acc.owner)
        data = bytes(acc.data)
        kind = account_kind(owner, data)
        program = TOKEN_PROGRAMS.get(owner)
        if program is None:
            return None
        if kind == "mint":
            f = mint_facts_from_account(address, acc, 0)
            if not f.is_mint:
                return None
            info: dict[str, Any] = {"mintAuthority": f.mint_authority, "supply": str(f.supply),
                                    "decimals": f.decimals, "isInitialized": True,
                                    "freezeAuthority": f.freeze_authority}
            if len(data) > ACCOUNT_LEN:
                info["extensions"] = _extensions_json(data)
            return {"program": program, "parsed": {"type": "mint", "info": info}, "space": len(data)}
        if kind == "token-account":
            mint = str(Pubkey.from_bytes(data[0:32]))
            mint_acc = self.chain.account(mint)
            decimals = mint_facts_from_account(mint, mint_acc, 0).decimals or 0
            amount = struct.unpack_from("<Q", data, 64)[0]
            state = {0: "uninitialized", 1: "initialized", 2: "frozen"}.get(data[108], "uninitialized")
            info = {"isNative": data[109] == 1, "mint": mint, "owner": str(Pubkey.from_bytes(data[32:64])),
                    "state": state, "tokenAmount": _ui_amount(amount, decimals)}
            if len(data) > ACCOUNT_LEN:
                info["extensions"] = _extensions_json(data)
            return {"program": program, "parsed": {"type": "account", "info": info}, "space": len(data)}
        return None

    def account_json(self, address: str, acc: Account | None, encoding: str,
                     data_slice: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if acc is None:
            return None
        data = bytes(acc.data)
        body: Any = None
        if encoding == "jsonParsed":
            body = self.parsed(address, acc)
        if body is None:
            if data_slice:
                off = int(data_slice.get("offset", 0))
                data = data[off:off + int(data_slice.get("length", len(data)))]
            body = [base64.b64encode(data).decode(), "base64"]
        return {"data": body, "executable": acc.executable, "lamports": acc.lamports, "owner": str(acc.owner),
                "rentEpoch": U64_MAX, "space": len(bytes(acc.data))}


class RpcParamError(Exception):
    def __init__(self, message: str, code: int = -32602) -> None:
        super().__init__(message)
        self.code = code


def _pubkey_param(value: Any) -> str:
    if not isinstance(value, str):
        raise RpcParamError("Invalid params: expected a base58 pubkey string")
    try:
        raw = b58decode(value)
    except ValueError:
        raise RpcParamError("Invalid param: Invalid") from None
    if len(raw) != 32:
        raise RpcParamError("Invalid param: WrongSize")
    return value


def _config(params: list[Any], index: int) -> dict[str, Any]:
    cfg = params[index] if len(params) > index and isinstance(params[index], dict) else {}
    return cfg


def _encoding(cfg: Mapping[str, Any]) -> str:
    enc = str(cfg.get("encoding", "base64"))
    if enc not in ("base64", "jsonParsed"):
        raise RpcParamError(f"Invalid params: this fake serves base64 and jsonParsed, not {enc!r}")
    return enc


@dataclass
class RpcServerStats:
    """What the server saw: JSON-RPC requests by method, and how many it answered with HTTP 429."""

    requests: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    http_requests: int = 0

    @property
    def total(self) -> int:
        return sum(self.requests.values())


FAULTS = ("down", "slow", "lagging", "stale", "rate_limited", "oversized", "gzip_bomb", "slot_lead", "lie_renounced")


class RpcFakeServer:
    """Async context manager: ``async with RpcFakeServer(chain) as srv: srv.url``."""

    def __init__(self, chain: FakeChain, name: str = "rpc", clock: Clock | None = None,
                 limits: tuple[int, int] = (100, 40), public_like: bool | None = None,
                 disabled_methods: Sequence[str] = ()) -> None:
        self.chain = chain
        self.name = name
        #: Refuse ``getTokenLargestAccounts`` of SPL Token mints with -32010, as the public endpoint does.
        self.public_like = name in PUBLIC_LIKE_NAMES if public_like is None else public_like
        #: Methods answered with -32601 "Method not found" (disabled by this provider).
        self.disabled_methods = frozenset(disabled_methods)
        self._clock = clock or RealClock()
        self._limit_total, self._limit_method = limits
        self._rpc = _Rpc(chain)
        self.stats = RpcServerStats()
        self._faults: dict[str, float] = {}
        self._sent: deque[float] = deque()
        self._sent_by_method: dict[str, deque[float]] = {}
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError(f"{self.name}: server not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def faults(self) -> set[str]:
        return set(self._faults)

    async def __aenter__(self) -> RpcFakeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        if not self._port:
            self._port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def inject(self, fault: str, value: float = 0.0) -> None:
        """Start a fault: ``down``; ``slow`` (value = delay in s); ``lagging`` (value = slots behind:
        ``-32005`` for everything but ``getSlot``); ``stale`` (value = slots behind, yet ``getHealth``
        says ok, as a node behind a careless load balancer); ``rate_limited`` (every request gets the
        rpcpool HTTP 429); ``oversized`` (value = bytes: every answer is that many bytes, streamed);
        ``gzip_bomb`` (value = bytes: every answer is ``Content-Encoding: gzip`` inflating to that many);
        ``slot_lead`` (value = slots: every slot told is that far above the chain's, ``getHealth`` still
        ok); ``lie_renounced`` (mint accounts are served with mint and freeze authority none)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        self._faults[fault] = value
        if fault == "down":
            await self.close()

    async def recover(self, fault: str | None = None) -> None:
        """End one fault, or all of them; a server that was down listens again on the same port."""
        was_down = "down" in self._faults
        if fault is None:
            self._faults.clear()
        else:
            self._faults.pop(fault, None)
        if was_down and "down" not in self._faults and self._runner is None:
            await self.start()

    # -- HTTP ------------------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="behind" if "lagging" in self._faults else "ok")

    def _over_limit(self, methods: Sequence[str]) -> str | None:
        now = self._clock.now()
        horizon = now - 10.0
        while self._sent and self._sent[0] <= horizon:
            self._sent.popleft()
        if len(self._sent) >= self._limit_total:
            return RPCPOOL_IP_LIMIT
        for m in methods:
            q = self._sent_by_method.setdefault(m, deque())
            while q and q[0] <= horizon:
                q.popleft()
            if len(q) >= self._limit_method:
                return RPCPOOL_METHOD_LIMIT
        self._sent.append(now)
        for m in methods:
            self._sent_by_method[m].append(now)
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.stats.http_requests += 1
        raw = await request.read()
        for kind in ("oversized", "gzip_bomb"):
            if kind in self._faults:
                return await stream_huge_answer(request, kind, int(self._faults[kind]), opening=b"{")
        try:
            body = json.loads(raw)
        except ValueError:
            return web.json_response({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"},
                                      "id": None})
        calls = body if isinstance(body, list) else [body]
        methods = [c.get("method", "") if isinstance(c, dict) else "" for c in calls]
        for m in methods:
            self.stats.requests[str(m)] += 1
        if "slow" in self._faults:
            await asyncio.sleep(self._faults["slow"])
        limited = (RPCPOOL_METHOD_LIMIT if "rate_limited" in self._faults
                   else self._over_limit([str(m) for m in methods]))
        if limited is not None:
            self.stats.rate_limited += 1
            first_id = calls[0].get("id", 1) if calls and isinstance(calls[0], dict) else 1
            return web.json_response({"jsonrpc": "2.0", "error": {"code": 429, "message": limited}, "id": first_id},
                                     status=429)
        answers = [self._answer(c) for c in calls]
        return web.json_response(answers if isinstance(body, list) else answers[0])

    def _answer(self, call: Any) -> dict[str, Any]:
        if not isinstance(call, dict) or not isinstance(call.get("method"), str):
            return {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid request"}, "id": None}
        rid = call.get("id")
        method = call["method"]
        params = call.get("params") or []
        if not isinstance(params, list):
            params = [params]
        behind = int(self._faults.get("lagging", 0)) if "lagging" in self._faults else None
        if behind is not None and method != "getSlot":
            return {"jsonrpc": "2.0", "id": rid, "error": {
                "code": -32005, "message": f"Node is behind by {behind} slots", "data": {"numSlotsBehind": behind}}}
        if method in self.disabled_methods:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": METHOD_NOT_FOUND, "message": "Method not found"}}
        try:
            result = self._dispatch(method, params, behind or int(self._faults.get("stale", 0)))
        except RpcParamError as exc:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": exc.code, "message": str(exc)}}
        return {"jsonrpc": "2.0", "result": result, "id": rid}

    def _account(self, address: str) -> Account | None:
        """The chain's account, or under ``lie_renounced`` a mint's with both authorities cut to none."""
        acc = self.chain.account(address)
        if acc is None or "lie_renounced" not in self._faults:
            return acc
        if account_kind(str(acc.owner), bytes(acc.data)) != "mint":
            return acc
        data = bytearray(bytes(acc.data))
        data[0:36] = bytes(36)  # COption<Pubkey> mint_authority: tag 0, key zeroed
        data[46:82] = bytes(36)  # COption<Pubkey> freeze_authority
        return Account(acc.lamports, bytes(data), acc.owner, acc.executable, acc.rent_epoch)

    def _dispatch(self, method: str, params: list[Any], behind: int) -> Any:
        slot = self.chain.slot - behind + int(self._faults.get("slot_lead", 0))
        if method == "getHealth":
            return "ok"
        if method == "getSlot":
            return slot
        if method == "getVersion":
            return {"solana-core": API_VERSION, "feature-set": 3294202862}
        if method == "getAccountInfo":
            if not params:
                raise RpcParamError("Invalid params: missing pubkey")
            address = _pubkey_param(params[0])
            cfg = _config(params, 1)
            value = self._rpc.account_json(address, self._account(address), _encoding(cfg), cfg.get("dataSlice"))
            return {"context": self._rpc.context(slot), "value": value}
        if method == "getMultipleAccounts":
            keys = params[0] if params and isinstance(params[0], list) else None
            if keys is None:
                raise RpcParamError("Invalid params: expected an array of pubkeys")
            if len(keys) > MAX_KEYS:
                raise RpcParamError(f"Too many inputs provided; max {MAX_KEYS}")
            cfg = _config(params, 1)
            enc = _encoding(cfg)
            addresses = [_pubkey_param(k) for k in keys]
            values = [self._rpc.account_json(a, self._account(a), enc, cfg.get("dataSlice")) for a in addresses]
            return {"context": self._rpc.context(slot), "value": values}
        if method == "getTokenLargestAccounts":
            if not params:
                raise RpcParamError("Invalid params: missing mint")
            mint = _pubkey_param(params[0])
            acc = self.chain.account(mint)
            if acc is None:
                raise RpcParamError("Invalid param: could not find mint")
            if str(acc.owner) not in TOKEN_PROGRAMS:
                raise RpcParamError("Invalid param: not a Token mint")
            if self.public_like and str(acc.owner) == str(TOKEN_PROGRAM_ID):
                raise RpcParamError(f"{TOKEN_PROGRAM_ID} excluded from account secondary indexes; "
                                    "this RPC method unavailable for key", code=KEY_EXCLUDED_FROM_SECONDARY_INDEX)
            facts = mint_facts_from_account(mint, acc, 0)
            if not facts.is_mint:
                raise RpcParamError("Invalid param: Token mint could not be unpacked")
            decimals = facts.decimals or 0
            rows = [{"address": a, **_ui_amount(amount, decimals)} for a, amount in self.chain.largest_accounts(mint)]
            return {"context": self._rpc.context(slot), "value": rows}
        if method == "getSignaturesForAddress":
            if not params:
                raise RpcParamError("Invalid params: missing address")
            address = _pubkey_param(params[0])
            cfg = _config(params, 1)
            limit = cfg.get("limit") or 1000
            if not isinstance(limit, int) or not 1 <= limit <= 1000:
                raise RpcParamError("Invalid limit; max 1000")
            until, before = cfg.get("until"), cfg.get("before")
            return self.chain.archive.signatures_page(address, before if isinstance(before, str) else None,
                                                      until if isinstance(until, str) else None, limit)
        if method == "getTransaction":
            if not params or not isinstance(params[0], str):
                raise RpcParamError("Invalid params: missing signature")
            return self.chain.archive.by_signature.get(params[0])
        raise RpcParamError("Method not found", code=-32601)
