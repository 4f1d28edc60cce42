"""Fault switches of the market fakes, the record/bar mutations they apply (see :class:`FaultSwitches`), and
the oversized / gzip-bomb answer writer every fake uses (:func:`stream_huge_answer`)."""

from __future__ import annotations

import asyncio
import json
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from dexscan.clock import Clock
from dexscan.demo.servers.market.providers import PROVIDERS

FaultKind = Literal["500", "429", "stall", "reset", "html", "truncated", "malformed_record", "down", "cloudflare",
                    "oversized", "gzip_bomb", "bad_ids", "bars_misaligned", "bars_in_ms", "bars_conflicting",
                    "bars_repeated", "redirect", "redirect_same", "key_echo"]
FAULT_KINDS: tuple[str, ...] = ("500", "429", "stall", "reset", "html", "truncated", "malformed_record", "down",
                                "cloudflare", "oversized", "gzip_bomb", "bad_ids", "bars_misaligned", "bars_in_ms",
                                "bars_conflicting", "bars_repeated", "redirect", "redirect_same", "key_echo")
#: ``bars_misaligned``: every bar's time moves this many seconds off the grid (off any minute too).
MISALIGNED_BY_S = 90
_RECORD_FAULTS: dict[str, Callable[[Any], bool]] = {
    "malformed_record": lambda data: _poison_one_record(data),
    "bad_ids": lambda data: _add_bad_id_record(data),
    "bars_misaligned": lambda data: _bad_bars(data, "misaligned"),
    "bars_in_ms": lambda data: _bad_bars(data, "in_ms"),
    "bars_conflicting": lambda data: _bad_bars(data, "conflicting"),
    "bars_repeated": lambda data: _bad_bars(data, "repeated"),
}
#: ``bad_ids``: the id a hostile Jupiter record carries (100 KB) and the pairAddress of a DexScreener one.
HUGE_ID = "So1111111111111111111111111111111111111111" * 2400
LONG_PAIR_ADDRESS = "7" * 5036
#: ``oversized``: a 200 of this many bytes of spaces, streamed (a JSON-valid prefix ``[`` first).
OVERSIZED_BYTES = 64 << 20
#: ``gzip_bomb``: a 200 with ``Content-Encoding: gzip`` inflating to this many bytes (~200 KB on the wire).
GZIP_BOMB_BYTES = 200 * 1000 * 1000
_bomb_cache: dict[int, bytes] = {}


def gzip_bomb(size: int) -> bytes:
    """A gzip member inflating to ``size`` zero bytes (~1/1000 of it compressed), built once per size."""
    cached = _bomb_cache.get(size)
    if cached is None:
        comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        block = bytes(1 << 20)
        parts, left = [], size
        while left > 0:
            parts.append(comp.compress(block[:min(left, len(block))]))
            left -= len(block)
        parts.append(comp.flush())
        cached = _bomb_cache[size] = b"".join(parts)
    return cached


async def stream_huge_answer(request: web.Request, kind: str, size: int, *, opening: bytes,
                             closing: bytes = b"") -> web.StreamResponse:
    """The answer of an ``oversized`` or a ``gzip_bomb`` (``kind``) fault, as every fake sends it.

    ``oversized``: a 200 of exactly ``size`` bytes, ``opening`` (a JSON-valid prefix), spaces, then
    ``closing``, chunked (no length said up front). ``gzip_bomb``: a 200 with ``Content-Encoding: gzip``
    and its ``Content-Length``, inflating to ``size`` zero bytes. A client that hangs up early ends it quietly.
    """
    headers = {"Content-Type": "application/json"}
    body = b""
    if kind == "gzip_bomb":
        body = await asyncio.to_thread(gzip_bomb, size)
        headers["Content-Encoding"] = "gzip"
    resp = web.StreamResponse(status=200, headers=headers)
    if kind == "gzip_bomb":
        resp.content_length = len(body)
    try:
        await resp.prepare(request)
        if kind == "gzip_bomb":
            for i in range(0, len(body), 64 * 1024):
                await resp.write(body[i:i + 64 * 1024])
        else:
            await resp.write(opening)
            block, left = b" " * (256 * 1024), size - len(opening) - len(closing)
            while left > 0:
                await resp.write(block[:min(left, len(block))])
                left -= len(block)
            await resp.write(closing)
        await resp.write_eof()
    except (ConnectionError, asyncio.CancelledError):
        pass
    return resp


@dataclass
class _Fault:
    kind: str
    remaining: int
    seconds: float
    retry_after: float | None
    until: float | None = None


class FaultSwitches:
    """Faults to inject into the next requests of a provider, applied first-in first-out.

    ``"500"``/``"429"``: that many error answers (a 429 with ``Retry-After`` when ``retry_after`` is
    given); ``"stall"``: hold that many answers ``seconds`` of *wall* time (client timeouts are wall
    time); ``"reset"``: drop that many connections with a TCP reset; ``"html"``: a 200 carrying an
    HTML error page; ``"truncated"``: a 200 whose JSON is cut in half; ``"malformed_record"``: the
    next list answer carries one record with every field malformed (wrong types, nulls, "NaN"),
    the others intact; ``"down"``: close every connection for ``seconds`` of *clock* time;
    ``"cloudflare"``: that many HTTP 403 Cloudflare block pages ("Error 1020 Access denied", HTML);
    ``"oversized"``: a 200 streaming ``MarketFakes.oversized_bytes`` of (JSON-valid) spaces, chunked;
    ``"gzip_bomb"``: a 200 ``Content-Encoding: gzip`` body inflating to ``MarketFakes.gzip_bomb_bytes``;
    ``"bad_ids"``: the next record answer gains, in its middle, a copy of a record whose ids are not
    addresses (Jupiter ``id`` / price key :data:`HUGE_ID`, DexScreener ``pairAddress``
    :data:`LONG_PAIR_ADDRESS`, GeckoTerminal ``attributes.address``), the others intact;
    ``"redirect"``: that many ``302 Found`` answers whose ``Location`` is the same path and query on
    another host (:attr:`MarketFakes.elsewhere`), as a provider that moved (or a hostile proxy)
    answers, before any key check; ``"redirect_same"``: that many ``307`` answers to the very same URL
    on the same host (the next request is then served as usual); ``"key_echo"``: that many ``401``
    answers in the provider's error shape whose message repeats the ``X-API-KEY`` it was sent
    (``Unauthorized key <key>.``), as some gateways do.

    OHLCV faults (GeckoTerminal ``ohlcv_list``, Birdeye ``items``; other answers pass untouched and
    the fault waits for the next OHLCV answer): ``"bars_misaligned"``: every bar's time moved
    :data:`MISALIGNED_BY_S` seconds off the timeframe's grid; ``"bars_in_ms"``: every bar's time in
    milliseconds; ``"bars_conflicting"``: one bar sent twice, the copy with another close, high and
    volume (still a well-formed bar); ``"bars_repeated"``: every bar sent twice, identical (harmless).
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._queue: dict[str, list[_Fault]] = {p: [] for p in PROVIDERS}
        self._down_until: dict[str, float] = {}

    def inject(self, provider: str, kind: str, count: int = 1, seconds: float = 0.0,
               retry_after: float | None = None) -> None:
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if count < 1 or seconds < 0:
            raise ValueError("count must be >= 1 and seconds >= 0")
        if kind in ("stall", "down") and seconds <= 0:
            raise ValueError(f"fault {kind!r} needs seconds > 0")
        if kind == "down":
            until = self._clock.now() + seconds
            self._down_until[provider] = max(self._down_until.get(provider, 0.0), until)
            return
        self._queue[provider].append(_Fault(kind, count, seconds, retry_after))

    def clear(self, provider: str | None = None) -> None:
        for p in [provider] if provider else list(PROVIDERS):
            self._queue[p].clear()
            self._down_until.pop(p, None)

    def pending(self, provider: str) -> list[tuple[str, int]]:
        """(kind, remaining count) of the faults still queued for ``provider``."""
        return [(f.kind, f.remaining) for f in self._queue[provider]]

    def is_down(self, provider: str, now: float) -> bool:
        until = self._down_until.get(provider)
        if until is None:
            return False
        if now >= until:
            del self._down_until[provider]
            return False
        return True

    def _head(self, provider: str) -> _Fault | None:
        queue = self._queue[provider]
        return queue[0] if queue else None

    def _consume(self, provider: str) -> None:
        queue = self._queue[provider]
        queue[0].remaining -= 1
        if queue[0].remaining <= 0:
            queue.pop(0)
_MALFORMED_BY_TYPE: dict[type, tuple[Any, ...]] = {
    str: (None, 12345, ["x"], {"bad": True}),
    int: ("NaN", None, "abc", {"n": 1}, [1]),
    float: ("NaN", None, "not-a-number", [], "Infinity"),
    bool: ("yes", None, 0),
    list: ("not-a-list", None, {"0": 1}),
    type(None): ("null", 0, "NaN"),
}


def _malformed(value: Any, i: int) -> Any:
    """A wrong value for ``value``: another type, a null or a string like "NaN" (cycling on ``i``)."""
    if isinstance(value, dict):
        return {k: _malformed(v, i + j) for j, (k, v) in enumerate(value.items())}
    options = _MALFORMED_BY_TYPE.get(type(value), (None, "NaN"))
    return options[i % len(options)]


def _add_bad_id_record(data: Any) -> bool:
    """Insert a copy of one record of ``data`` whose address fields are not addresses."""
    found = _middle_record(data)
    if found is None:
        return False
    target, key, record = found
    if isinstance(target, dict):
        target[HUGE_ID] = json.loads(json.dumps(record))
        return True
    if not isinstance(record, dict):
        return False
    bad = json.loads(json.dumps(record))
    if "id" in bad and "attributes" not in bad:
        bad["id"] = HUGE_ID
    if "pairAddress" in bad:
        bad["pairAddress"] = LONG_PAIR_ADDRESS
    if "tokenAddress" in bad:
        bad["tokenAddress"] = HUGE_ID
    if isinstance(bad.get("attributes"), dict) and "address" in bad["attributes"]:
        bad["attributes"]["address"] = LONG_PAIR_ADDRESS
    target.insert(key, bad)
    return True


def _bar_rows(data: Any) -> tuple[list[Any], Callable[[Any], Any]] | None:
    """The bars of an OHLCV answer and how to reach a bar's time field (GeckoTerminal rows, Birdeye items)."""
    body = data.get("data") if isinstance(data, dict) else None
    if not isinstance(body, dict):
        return None
    attributes = body.get("attributes")
    if isinstance(attributes, dict) and isinstance(attributes.get("ohlcv_list"), list):
        return attributes["ohlcv_list"], lambda bar: 0
    items = body.get("items")
    if isinstance(items, list) and items and isinstance(items[0], dict):
        return items, lambda bar: "unix_time" if "unix_time" in bar else "unixTime"
    return None


def _bad_bars(data: Any, how: str) -> bool:
    """Spoil the bars of an OHLCV answer (see :class:`FaultInjector`); False for any other answer."""
    found = _bar_rows(data)
    if found is None or not found[0]:
        return False
    bars, ts_key = found
    if how in ("misaligned", "in_ms"):
        for bar in bars:
            key = ts_key(bar)
            bar[key] = bar[key] + MISALIGNED_BY_S if how == "misaligned" else bar[key] * 1000
    elif how == "repeated":
        bars[:] = [copy for bar in bars for copy in (bar, json.loads(json.dumps(bar)))]
    else:
        i = len(bars) // 2
        twin = json.loads(json.dumps(bars[i]))
        if isinstance(twin, list):  # [ts, open, high, low, close, volume]
            twin[4], twin[2], twin[5] = twin[2] * 1.5, twin[2] * 1.5, twin[5] * 3 + 1
        else:
            twin["c"], twin["h"] = twin["h"] * 1.5, twin["h"] * 1.5
            for volume in ("v", "v_usd"):
                if volume in twin:
                    twin[volume] = twin[volume] * 3 + 1
        bars.insert(i + 1, twin)
    return True


def _poison_one_record(data: Any) -> bool:
    """Replace one record of the first list answer in ``data`` with a fully malformed one."""
    found = _middle_record(data)
    if found is None:
        return False
    target, key, record = found
    if isinstance(record, list):  # a bar row
        target[key] = [_MALFORMED_BY_TYPE[float][j % 5] if j else "NaN" for j in range(len(record))]
    else:
        target[key] = _malformed(record, 0)
    return True


def _middle_record(data: Any) -> tuple[list[Any] | dict[str, Any], Any, Any] | None:
    """(the records of an answer, the index or key of the middle one, that record), or None without records."""
    target = _record_collection(data)
    if target is None:
        return None
    key: Any = list(target)[len(target) // 2] if isinstance(target, dict) else len(target) // 2
    return target, key, target[key]


def _record_collection(data: Any) -> list[Any] | dict[str, Any] | None:
    """The records of an answer: the first non-empty list (breadth first), or a dict of records."""
    queue: deque[Any] = deque([data])
    while queue:
        node = queue.popleft()
        if isinstance(node, list) and node and isinstance(node[0], dict | list):
            return node
        if isinstance(node, dict):
            queue.extend(v for v in node.values() if isinstance(v, dict | list))
    if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        return data
    return None
