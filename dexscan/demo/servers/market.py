"""Loopback fakes of Jupiter, DexScreener, GeckoTerminal and Birdeye, serving a ``MarketSim``.

Each provider is its own aiohttp app on its own 127.0.0.1 ephemeral port and speaks the contract
of ``reference/external-apis.md``: paths, parameters, response shapes, numbers-as-strings where the
real API sends strings, its error bodies and its rate limits (sliding windows measured on the same
:class:`~dexscan.clock.Clock` as the simulated market, so a fast ``SimClock`` runs the demo and a
``SimClock(speed=0)`` makes limit tests exact). Fault switches reproduce what goes wrong in the
wild (bursts of 5xx/429, stalls, resets, HTML pages, truncated JSON, one poisoned record, outages)
so the clients' tolerance is tested over real HTTP, not with mocks.

Real behaviours modelled by default (``reference/external-apis.md``):

* DexScreener ``/tokens/v1/{chain}/{addresses}`` answers ONE pair per token, DexScreener's pick of its
  main pair (§3.2); the fake picks the deepest pool where the token is base, any quote, a bonding curve
  only while it has nothing else — so the pick moves when a token migrates. ``/token-pairs/v1`` and
  ``/latest/dex/tokens`` list every pool, including pools where the token is the quote (§3.2).
* A pump.fun bonding curve is a pair with ``dexId`` ``pumpfun`` and ``liquidity: null`` (§3.2–3.3).
* Pools quoted in USD1 report ``liquidity.usd`` (a USD stablecoin) but no ``pairCreatedAt`` (§3.2:
  the pick "may be quoted in USD1 ... and may lack pairCreatedAt"); pools quoted in another token
  report no ``liquidity.usd`` nor ``marketCap`` (§3.3: ``usd`` may be absent).
* GeckoTerminal lists a pool of two simulated tokens in the other base/quote order (§4.2, §7) and
  honours ``token=base|quote|<address>`` on OHLCV (§4.2).
* Cloudflare block pages (HTTP 403, "Error 1020") as the ``cloudflare`` fault (§3.1: over-limit and
  error bodies may be Cloudflare pages); DexScreener's 429 is Cloudflare's 1015 page.

"Another host" for the ``redirect`` fault is a fifth server, :attr:`MarketFakes.elsewhere_url`: its own
port, addressed as ``localhost`` (not 127.0.0.1), so it differs from every provider fake in host *and*
port. It records every request it gets, headers and query included (:attr:`MarketFakes.elsewhere_requests`),
and answers 404: a test sees exactly what a client would have handed to a stranger.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import socket
import struct
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

from dexscan.clock import Clock
from dexscan.demo.market_sim import (
    SOL_USD,
    MarketSim,
    SimPool,
    SimToken,
    SimTokenInfo,
    WindowStats,
)
from dexscan.domain import BONDING_CURVE_DEXES, SOL_MINT, USD1_MINT, USDC_MINT, Candle, Timeframe

JUPITER = "jupiter"
DEXSCREENER = "dexscreener"
GECKOTERMINAL = "geckoterminal"
BIRDEYE = "birdeye"
PROVIDERS = (JUPITER, DEXSCREENER, GECKOTERMINAL, BIRDEYE)

#: (limit, window seconds) per bucket; the keys a caller may override through ``limits``.
DEFAULT_LIMITS: dict[str, tuple[int, float]] = {
    "jupiter": (30, 60.0),
    "dexscreener.pairs": (300, 60.0),
    "dexscreener.profiles": (60, 60.0),
    "geckoterminal": (30, 60.0),
    "birdeye": (1, 1.0),
}
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
_HOSTS = {"jupiter": "api.jup.ag", "dexscreener": "api.dexscreener.com", "geckoterminal": "api.geckoterminal.com",
          "birdeye": "public-api.birdeye.so"}
GECKO_PREFIX = "/api/v2"

log = logging.getLogger(__name__)

_QUOTES = {
    SOL_MINT: ("Wrapped SOL", "SOL", 9),
    USDC_MINT: ("USD Coin", "USDC", 6),
}
#: Quote tokens that are not Jupiter-listed here but are named in pairs (USD stablecoins: liquidity in USD).
_STABLE_QUOTES = {USD1_MINT: ("World Liberty Financial USD", "USD1", 6)}
_GT_AGGREGATES = {"day": (1,), "hour": (1, 4, 12), "minute": (1, 5, 15)}
_BIRDEYE_TYPES = {"1m": Timeframe.M1, "5m": Timeframe.M5, "15m": Timeframe.M15, "1H": Timeframe.H1,
                  "4H": Timeframe.H4, "12H": Timeframe.H12, "1D": Timeframe.D1}
_BIRDEYE_KNOWN_TYPES = ("1s", "15s", "30s", "1m", "3m", "5m", "15m", "30m", "1H", "2H", "4H", "6H", "8H",
                        "12H", "1D", "3D", "1W", "1M")
_BIRDEYE_FRAMES = {"1m": 60, "5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "4h": 14_400, "8h": 28_800,
                   "24h": 86_400}
_JUP_STATS = {"stats5m": "5m", "stats1h": "1h", "stats6h": "6h", "stats24h": "24h"}
_BASE58 = set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
_HTML_ERROR = (
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>\n"
)
#: Cloudflare's firewall block page (HTTP 403), as the providers behind Cloudflare send it.
_CLOUDFLARE_1020 = (
    "<!DOCTYPE html>\n<html class=\"no-js\" lang=\"en-US\"><head><title>Access denied | {host} used Cloudflare "
    "to restrict access</title></head><body><div id=\"cf-wrapper\"><h1><span>Error</span> <span>1020</span></h1>"
    "<h2>Access denied</h2><p>The site owner may have set restrictions that prevent you from accessing the site."
    "</p><p>Cloudflare Ray ID: <strong>8e1f2a3b4c5d6e7f</strong></p></div></body></html>\n"
)
_DEXSCREENER_429 = (
    "<!DOCTYPE html>\n<html><head><title>Access denied | api.dexscreener.com used Cloudflare to restrict "
    "access</title></head><body><h1>Error 1015</h1><p>You are being rate limited</p></body></html>\n"
)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the fake saw it: clock time, route template, status (0 = connection dropped)."""

    t: float
    route: str
    status: int
    bucket: str


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """A request as the ``elsewhere`` server got it: everything a client sent there."""

    method: str
    path: str
    query: str
    headers: dict[str, str]


@dataclass
class FakeStats:
    """Counters of one provider fake. ``stats()`` hands out copies, so snapshots can be compared."""

    requests: int = 0
    rate_limited: int = 0  # 429 answers, from the limiter or injected
    by_route: dict[str, int] = field(default_factory=dict)
    by_bucket: dict[str, int] = field(default_factory=dict)
    by_status: dict[int, int] = field(default_factory=dict)
    log: list[RequestRecord] = field(default_factory=list)

    def copy(self) -> FakeStats:
        return FakeStats(self.requests, self.rate_limited, dict(self.by_route), dict(self.by_bucket),
                         dict(self.by_status), list(self.log))


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
    another host (:attr:`MarketFakes.elsewhere_url`), as a provider that moved (or a hostile proxy)
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


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Reply:
    status: int = 200
    data: Any = None
    text: str | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class _SlidingWindow:
    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()

    def admit(self, now: float) -> bool:
        self._prune(now)
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True

    def state(self, now: float) -> tuple[int, float]:
        """(requests in the window, time the oldest leaves it)."""
        self._prune(now)
        oldest = self._times[0] if self._times else now
        return len(self._times), oldest + self.window_s


Handler = Callable[[web.Request, float], _Reply | Any]


class MarketFakes:
    """The four market-data fakes, started and stopped together (an async context manager)."""

    def __init__(self, sim: MarketSim, clock: Clock, limits: dict[str, tuple[int, float]] | None = None,
                 birdeye_api_key: str = "demo-birdeye-key") -> None:
        unknown = set(limits or {}) - set(DEFAULT_LIMITS)
        if unknown:
            raise ValueError(f"unknown rate-limit keys {sorted(unknown)}; expected {sorted(DEFAULT_LIMITS)}")
        self.sim = sim
        self.clock = clock
        self.birdeye_api_key = birdeye_api_key
        self.faults = FaultSwitches(clock)
        self.oversized_bytes = OVERSIZED_BYTES
        self.gzip_bomb_bytes = GZIP_BOMB_BYTES
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self._windows = {key: _SlidingWindow(int(n), float(w)) for key, (n, w) in self.limits.items()}
        self._stats = {p: FakeStats() for p in PROVIDERS}
        #: Recorded DexScreener ``Pair`` records served as they are for a mint, next to the simulated
        #: market: by ``/token-pairs/v1`` and ``/latest/dex/tokens`` (all of them) and ``/tokens/v1`` (the
        #: pick among them, same rule as :meth:`ds_pick`). For tests that need exact real-world answers.
        self.fixture_pairs: dict[str, list[dict[str, Any]]] = {}
        self._runners: list[web.AppRunner] = []
        self.urls: dict[str, str] = {}
        #: "Another host" for the ``redirect`` fault, and what it was sent (see the module docstring).
        self.elsewhere_url = ""
        self.elsewhere_requests: list[SeenRequest] = []

    async def __aenter__(self) -> MarketFakes:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._runners:
            return
        builders: dict[str, Callable[[web.Application], None]] = {
            JUPITER: self._jupiter_routes, DEXSCREENER: self._dexscreener_routes,
            GECKOTERMINAL: self._gecko_routes, BIRDEYE: self._birdeye_routes,
        }
        for provider, build in builders.items():
            app = web.Application()
            build(app)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
            await runner.setup()
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            await web.SockSite(runner, sock).start()
            self._runners.append(runner)
            base = f"http://127.0.0.1:{port}"
            self.urls[provider] = base + GECKO_PREFIX if provider == GECKOTERMINAL else base
        elsewhere = web.Application()
        elsewhere.router.add_route("*", "/{tail:.*}", self._elsewhere)
        runner = web.AppRunner(elsewhere, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        self._runners.append(runner)
        self.elsewhere_url = f"http://localhost:{port}"

    async def _elsewhere(self, request: web.Request) -> web.Response:
        self.elsewhere_requests.append(SeenRequest(request.method, request.path, request.query_string,
                                                   dict(request.headers)))
        return web.json_response({"error": "not found"}, status=404)

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()

    def stats(self, provider: str) -> FakeStats:
        if provider not in self._stats:
            raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
        return self._stats[provider].copy()

    def settings_overrides(self) -> dict[str, object]:
        """Dotted keys for ``Settings.with_overrides`` pointing every market client at these fakes."""
        return {f"sources.{p}.base_url": url for p, url in self.urls.items()}

    # ------------------------------------------------------------------ request pipeline

    def _add(self, app: web.Application, provider: str, bucket: str, route: str, fn: Handler) -> None:
        prefix = GECKO_PREFIX if provider == GECKOTERMINAL else ""

        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._serve(provider, bucket, route, fn, request)

        app.router.add_get(prefix + route, handler)

    async def _serve(self, provider: str, bucket: str, route: str, fn: Handler,
                     request: web.Request) -> web.StreamResponse:
        now = self.clock.now()
        stats = self._stats[provider]
        stats.requests += 1
        stats.by_route[route] = stats.by_route.get(route, 0) + 1
        stats.by_bucket[bucket] = stats.by_bucket.get(bucket, 0) + 1
        window_key = provider if bucket == "default" else f"{provider}.{bucket}"
        window = self._windows[window_key]

        if self.faults.is_down(provider, now):
            return self._drop(request, stats, now, route, bucket, reset=False)
        head = self.faults._head(provider)
        if head is not None and head.kind == "reset":
            self.faults._consume(provider)
            return self._drop(request, stats, now, route, bucket, reset=True)
        if head is not None and head.kind in ("redirect", "redirect_same"):
            self.faults._consume(provider)
            target = request.rel_url if head.kind == "redirect_same" else f"{self.elsewhere_url}{request.rel_url}"
            reply = _Reply(302 if head.kind == "redirect" else 307, text="", content_type="text/plain",
                           headers={"Location": str(target)})
            return self._respond(provider, stats, now, route, bucket, reply, window)
        if head is not None and head.kind == "key_echo":
            self.faults._consume(provider)
            reply = self._error(provider, 401, f"Unauthorized key {request.headers.get('X-API-KEY', '')}.")
            return self._respond(provider, stats, now, route, bucket, reply, window)
        if provider == BIRDEYE and request.headers.get("X-API-KEY") != self.birdeye_api_key:
            reply = _Reply(401, {"success": False, "message": "Unauthorized. Authentication required."})
            return self._respond(provider, stats, now, route, bucket, reply, window)
        if head is not None and head.kind == "cloudflare":
            self.faults._consume(provider)
            reply = _Reply(403, text=_CLOUDFLARE_1020.format(host=_HOSTS[provider]), content_type="text/html")
            return self._respond(provider, stats, now, route, bucket, reply, window)
        if head is not None and head.kind in ("500", "429"):
            self.faults._consume(provider)
            reply = self._error(provider, int(head.kind), "injected fault")
            if head.kind == "429" and head.retry_after is not None:
                reply.headers["Retry-After"] = _number(head.retry_after)
            return self._respond(provider, stats, now, route, bucket, reply, window)
        if not window.admit(now):
            return self._respond(provider, stats, now, route, bucket, self._error(provider, 429, ""), window)
        if head is not None and head.kind in ("oversized", "gzip_bomb"):
            self.faults._consume(provider)
            self._record(stats, now, route, bucket, 200)
            return await self._huge(request, head.kind)

        try:
            result = fn(request, now)
            reply = result if isinstance(result, _Reply) else _Reply(data=result)
        except _HttpError as err:
            reply = self._error(provider, err.status, err.message)
        except Exception:  # a bug in the fake: answer like a broken server, keep serving, say why
            log.exception("%s fake failed on %s", provider, route)
            reply = self._error(provider, 500, "")

        head = self.faults._head(provider)
        if head is not None and reply.status == 200:
            if head.kind == "stall":
                self.faults._consume(provider)
                await asyncio.sleep(head.seconds)
            elif head.kind == "html":
                self.faults._consume(provider)
                reply = _Reply(200, text=_HTML_ERROR, content_type="text/html", headers=reply.headers)
            elif head.kind == "truncated":
                self.faults._consume(provider)
                body = json.dumps(reply.data, separators=(",", ":"))
                reply = _Reply(200, text=body[: max(1, len(body) // 2)], headers=reply.headers)
            elif head.kind in _RECORD_FAULTS and _RECORD_FAULTS[head.kind](reply.data):
                self.faults._consume(provider)
        return self._respond(provider, stats, now, route, bucket, reply, window)

    async def _huge(self, request: web.Request, kind: str) -> web.StreamResponse:
        """Stream an oversized body or a gzip bomb; a client that hangs up early ends it quietly."""
        if kind == "gzip_bomb":
            body = await asyncio.to_thread(gzip_bomb, self.gzip_bomb_bytes)
            headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
            size = len(body)
        else:
            body, headers, size = b"", {"Content-Type": "application/json"}, self.oversized_bytes
        resp = web.StreamResponse(status=200, headers=headers)
        if kind == "gzip_bomb":
            resp.content_length = size  # the oversized body is chunked: no length said up front
        try:
            await resp.prepare(request)
            if kind == "gzip_bomb":
                for i in range(0, len(body), 64 * 1024):
                    await resp.write(body[i:i + 64 * 1024])
            else:
                await resp.write(b"[")
                block, left = b" " * (256 * 1024), size - 2
                while left > 0:
                    await resp.write(block[:min(left, len(block))])
                    left -= len(block)
                await resp.write(b"]")
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            pass
        return resp

    def _drop(self, request: web.Request, stats: FakeStats, now: float, route: str, bucket: str, *,
              reset: bool) -> web.StreamResponse:
        self._record(stats, now, route, bucket, 0)
        transport = request.transport
        if transport is not None:
            if reset:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        return web.Response(status=503)

    def _record(self, stats: FakeStats, now: float, route: str, bucket: str, status: int) -> None:
        stats.by_status[status] = stats.by_status.get(status, 0) + 1
        if status == 429:
            stats.rate_limited += 1
        stats.log.append(RequestRecord(now, route, status, bucket))

    def _respond(self, provider: str, stats: FakeStats, now: float, route: str, bucket: str, reply: _Reply,
                 window: _SlidingWindow) -> web.StreamResponse:
        self._record(stats, now, route, bucket, reply.status)
        headers = dict(reply.headers)
        if provider == JUPITER:
            headers["x-api-gateway-request-id"] = uuid.uuid4().hex
            if reply.status in (200, 429):
                used, reset_at = window.state(now)
                headers["x-ratelimit-remaining"] = str(window.limit - used)
                headers["x-ratelimit-current"] = str(used)
                headers["x-ratelimit-reset"] = str(math.ceil(reset_at))
        if reply.text is not None:
            return web.Response(status=reply.status, text=reply.text, content_type=reply.content_type,
                                headers=headers)
        try:
            body = json.dumps(reply.data, separators=(",", ":"), allow_nan=False)
        except ValueError:
            log.exception("%s fake built a non-JSON answer on %s", provider, route)
            return web.Response(status=500, text="fake error: answer not JSON", headers=headers)
        return web.Response(status=reply.status, text=body, content_type="application/json", headers=headers)

    def _error(self, provider: str, status: int, message: str) -> _Reply:
        """An error answer in the provider's own shape."""
        if provider == JUPITER:
            if status == 429:
                return _Reply(429, {"code": 429, "message": "[API Gateway] Too many requests"})
            return _Reply(status, {"error": message or "Internal Server Error"})
        if provider == DEXSCREENER:
            if status == 429:
                return _Reply(429, text=_DEXSCREENER_429, content_type="text/html")
            if status >= 500:
                return _Reply(status, text="Internal Server Error", content_type="text/plain")
            return _Reply(status, {"schemaVersion": "1.0.0", "error": message})
        if provider == GECKOTERMINAL:
            if status == 429:
                limit = self.limits["geckoterminal"][0]
                return _Reply(429, {"errors": [{"status": "429", "title": "Too Many Requests"}], "limit": limit})
            title = message or ("Internal Server Error" if status >= 500 else "Bad Request")
            return _Reply(status, {"errors": [{"status": str(status), "title": title}]})
        if status == 429:
            return _Reply(429, {"success": False, "message": "Too many requests"})
        return _Reply(status, {"success": False, "message": message or "Internal server error"})

    # ------------------------------------------------------------------ Jupiter

    def _jupiter_routes(self, app: web.Application) -> None:
        for route, fn in (
            ("/tokens/v2/search", self._jup_search),
            ("/tokens/v2/tag", self._jup_tag),
            ("/tokens/v2/recent", self._jup_recent),
            ("/tokens/v2/{category}/{interval}", self._jup_top),
            ("/price/v3", self._jup_price),
        ):
            self._add(app, JUPITER, "default", route, fn)

    def _jup_search(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        query = request.query.get("query", "").strip()
        if not query:
            raise _HttpError(400, "query is required")
        parts = [q.strip() for q in query.split(",") if q.strip()]
        if len(parts) > 1 or _looks_like_address(parts[0]):
            if len(parts) > 100:
                raise _HttpError(400, f"too many mints in query: {len(parts)} (at most 100)")
            out = []
            for mint in dict.fromkeys(parts):
                record = self._mint_information(mint, now)
                if record is not None:
                    out.append(record)
            return out
        found = [t for t in self.sim.find(query) if self.sim.listed(t.mint, now)][:20]
        return [r for t in found if (r := self._mint_information(t.mint, now)) is not None]

    def _jup_tag(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        tag = request.query.get("query", "")
        if tag not in ("verified", "lst", "stocks"):
            raise _HttpError(400, "query must be one of verified, lst, stocks")
        if tag != "verified":
            return []
        out = [_static_mint_information(m, now) for m in _QUOTES]
        for tok in self.sim.tokens:
            if self.sim.is_verified(tok.mint, now):
                info = self.sim.token_info(tok.mint, now)
                assert info is not None
                out.append(self._jup_record(tok, info, now))
        return out

    def _jup_recent(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        return [r for m in self.sim.recent(now) if (r := self._mint_information(m, now)) is not None]

    def _jup_top(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        category = request.match_info["category"]
        interval = request.match_info["interval"]
        if category not in ("toporganicscore", "toptraded", "toptrending"):
            raise _HttpError(400, f"unknown category {category!r}")
        if interval not in ("5m", "1h", "6h", "24h"):
            raise _HttpError(400, f"unknown interval {interval!r}")
        limit = _int_param(request, "limit", 50)
        if not 1 <= limit <= 100:
            raise _HttpError(400, "limit must be between 1 and 100")
        mints = self.sim.discovery(category, interval, now, limit)  # type: ignore[arg-type]
        return [r for m in mints if (r := self._mint_information(m, now)) is not None]

    def _jup_price(self, request: web.Request, now: float) -> dict[str, Any]:
        ids = [i.strip() for i in request.query.get("ids", "").split(",") if i.strip()]
        if not ids:
            raise _HttpError(400, "ids is required")
        if len(ids) > 50:
            raise _HttpError(400, f"too many ids: {len(ids)} (at most 50)")
        out: dict[str, Any] = {}
        for mint in dict.fromkeys(ids):
            if mint in _QUOTES:
                price = self.sim.token_price(mint, now)
                out[mint] = {"usdPrice": price, "blockId": _slot(now), "decimals": _QUOTES[mint][2],
                             "priceChange24h": 0.0, "createdAt": "2024-06-05T08:55:25.527Z",
                             "liquidity": 500_000_000.0}
                continue
            if not self.sim.has_token(mint) or not self.sim.listed(mint, now):
                continue
            tok = self.sim.token(mint)
            info = self.sim.token_info(mint, now)
            assert info is not None
            out[mint] = {
                "createdAt": _iso(tok.main_pool.created_at), "liquidity": round(info.liquidity_usd, 2),
                "usdPrice": info.usd_price, "blockId": _slot(now), "decimals": tok.decimals,
                "priceChange24h": _round(info.price_change_24h, 4),
            }
        return out

    def _mint_information(self, mint: str, now: float) -> dict[str, Any] | None:
        if mint in _QUOTES:
            return _static_mint_information(mint, now)
        if not self.sim.has_token(mint):
            return None
        info = self.sim.token_info(mint, now)
        if info is None:
            return None
        return self._jup_record(self.sim.token(mint), info, now)

    def _jup_record(self, tok: SimToken, info: SimTokenInfo, now: float) -> dict[str, Any]:
        main, first = tok.main_pool, tok.first_pool
        record: dict[str, Any] = {
            "id": tok.mint, "name": tok.name, "symbol": tok.symbol, "decimals": tok.decimals,
            "tokenProgram": tok.token_program, "createdAt": _iso(first.created_at - 900), "dev": tok.dev,
            "circSupply": tok.circ_supply, "totalSupply": tok.total_supply,
            "firstPool": {"id": first.address, "createdAt": _iso(first.created_at)},
            "holderCount": info.holder_count, "organicScore": round(info.organic_score, 2),
            "organicScoreLabel": info.organic_score_label, "fdv": round(info.fdv, 2), "mcap": round(info.mcap, 2),
            "usdPrice": info.usd_price, "priceBlockId": _slot(now), "liquidity": round(info.liquidity_usd, 2),
            "updatedAt": _iso(now),
        }
        if tok.mint_authority:
            record["mintAuthority"] = tok.dev
        if tok.freeze_authority:
            record["freezeAuthority"] = tok.dev
        if main.dex_id == "pumpswap" or tok.curve is not None:
            record["launchpad"] = "pump.fun"
        if tok.migrated_at is not None and now >= tok.migrated_at:
            record["graduatedPool"], record["graduatedAt"] = main.address, _iso(tok.migrated_at)
        blocks = ("stats5m", "stats1h") if info.young else tuple(_JUP_STATS)
        for key in blocks:
            s = info.stats[_JUP_STATS[key]]
            record[key] = {
                "priceChange": _round(s.price_change, 4), "holderChange": _round(s.holder_change, 4),
                "liquidityChange": _round(s.liquidity_change, 4), "volumeChange": _round(s.volume_change, 4),
                "buyVolume": round(s.buy_volume, 2), "sellVolume": round(s.sell_volume, 2),
                "buyOrganicVolume": round(s.buy_volume * tok.organic_score / 100, 2),
                "sellOrganicVolume": round(s.sell_volume * tok.organic_score / 100, 2),
                "numBuys": s.num_buys, "numSells": s.num_sells, "numTraders": s.num_traders,
                "numOrganicBuyers": s.num_organic_buyers, "numNetBuyers": s.num_net_buyers,
            }
        if not info.young:
            slug = tok.symbol.lower()
            record.update({
                "icon": f"https://static.dexscan.invalid/icons/{tok.mint}.png",
                "twitter": f"https://x.com/{slug}", "website": f"https://{slug}.example",
                "isVerified": info.is_verified, "tags": list(info.tags),
            })
            audit: dict[str, Any] = {
                "mintAuthorityDisabled": info.mint_authority_disabled,
                "freezeAuthorityDisabled": info.freeze_authority_disabled,
                "topHoldersPercentage": round(info.top_holders_pct, 2),
                "devBalancePercentage": info.dev_balance_pct, "devMints": 1,
            }
            if info.is_sus:
                audit["isSus"] = True
            record["audit"] = audit
        return record

    # ------------------------------------------------------------------ DexScreener

    def _dexscreener_routes(self, app: web.Application) -> None:
        for route, bucket, fn in (
            ("/latest/dex/tokens/{addresses}", "pairs", self._ds_latest_tokens),
            ("/tokens/v1/{chain}/{addresses}", "pairs", self._ds_tokens_v1),
            ("/token-pairs/v1/{chain}/{address}", "pairs", self._ds_token_pairs),
            ("/latest/dex/pairs/{chain}/{pairs}", "pairs", self._ds_pairs),
            ("/latest/dex/search", "pairs", self._ds_search),
            ("/token-profiles/latest/v1", "profiles", self._ds_profiles),
            ("/token-boosts/latest/v1", "profiles", self._ds_boosts_latest),
            ("/token-boosts/top/v1", "profiles", self._ds_boosts_top),
        ):
            self._add(app, DEXSCREENER, bucket, route, fn)

    def _ds_addresses(self, raw: str) -> list[str]:
        addrs = list(dict.fromkeys(a.strip() for a in raw.split(",") if a.strip()))
        if len(addrs) > 30:
            raise _HttpError(400, f"too many addresses: {len(addrs)} (at most 30)")
        return addrs

    def _ds_pairs_of_tokens(self, mints: Iterable[str], now: float) -> list[dict[str, Any]]:
        boosted = self._boosted(now)
        seen: set[str] = set()
        out = []
        for mint in mints:
            for record in self.fixture_pairs.get(mint, ()):
                if record["pairAddress"] not in seen:
                    seen.add(record["pairAddress"])
                    out.append(record)
            for pool in self.sim.pools_with(mint):
                if pool.address not in seen and self.sim.pool_open(pool.address, now):
                    seen.add(pool.address)
                    pair = self._ds_pair(pool, now, boosted)
                    if pair is not None:
                        out.append(pair)
        return out

    def _ds_latest_tokens(self, request: web.Request, now: float) -> dict[str, Any]:
        pairs = self._ds_pairs_of_tokens(self._ds_addresses(request.match_info["addresses"]), now)
        return {"schemaVersion": "1.0.0", "pairs": pairs or None}

    def _ds_tokens_v1(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        """One pair per token: DexScreener's pick of its main pair (``reference/external-apis.md`` §3.2)."""
        addrs = self._ds_addresses(request.match_info["addresses"])
        if request.match_info["chain"] != "solana":
            return []
        boosted = self._boosted(now)
        out = []
        for mint in addrs:
            if mint in self.fixture_pairs:
                record = _fixture_pick(self.fixture_pairs[mint], mint)
                if record is not None:
                    out.append(record)
                continue
            pick = self.ds_pick(mint, now)
            pair = None if pick is None else self._ds_pair(pick, now, boosted)
            if pair is not None:
                out.append(pair)
        return out

    def ds_pick(self, mint: str, now: float) -> SimPool | None:
        """The fake's model of DexScreener's pick: the deepest open pool with the token as base, any
        quote; a bonding curve only while the token has no other pool."""
        own = [p for p in self.sim.pools_with(mint) if p.base_mint == mint and self.sim.pool_open(p.address, now)]
        best: tuple[bool, float, str] | None = None
        picked: SimPool | None = None
        for p in own:
            st = self.sim.pair_stats(p.address, now)
            if st is None:
                continue
            key = (p.dex_id not in BONDING_CURVE_DEXES, st.liquidity_usd, p.address)
            if best is None or key > best:
                best, picked = key, p
        return picked

    def _ds_token_pairs(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        if request.match_info["chain"] != "solana":
            return []
        return self._ds_pairs_of_tokens([request.match_info["address"]], now)

    def _ds_pairs(self, request: web.Request, now: float) -> dict[str, Any]:
        addrs = self._ds_addresses(request.match_info["pairs"])
        out = []
        if request.match_info["chain"] == "solana":
            boosted = self._boosted(now)
            for a in addrs:
                if self.sim.has_pool(a) and self.sim.pool_open(a, now):
                    pair = self._ds_pair(self.sim.pool(a), now, boosted)
                    if pair is not None:
                        out.append(pair)
        return {"schemaVersion": "1.0.0", "pairs": out or None, "pair": out[0] if out else None}

    def _ds_search(self, request: web.Request, now: float) -> dict[str, Any]:
        query = request.query.get("q", "").strip()
        if not query:
            raise _HttpError(400, "q is required")
        mints = [t.mint for t in self.sim.find(query)]
        return {"schemaVersion": "1.0.0", "pairs": self._ds_pairs_of_tokens(mints, now)[:30]}

    def _ds_profile(self, mint: str) -> dict[str, Any]:
        tok = self.sim.token(mint)
        slug = tok.symbol.lower()
        return {
            "url": f"https://dexscreener.com/solana/{mint.lower()}", "chainId": "solana", "tokenAddress": mint,
            "icon": f"https://dd.dexscreener.com/ds-data/tokens/solana/{mint}.png",
            "header": f"https://dd.dexscreener.com/ds-data/tokens/solana/{mint}/header.png",
            "description": f"{tok.name} — community token on Solana",
            "links": [{"type": "twitter", "url": f"https://x.com/{slug}"},
                      {"label": "Website", "url": f"https://{slug}.example"}],
        }

    def _ds_profiles(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        return [self._ds_profile(m) for m in self.sim.profiles(now)]

    def _ds_boosts(self, now: float, top: bool) -> list[dict[str, Any]]:
        return [{**self._ds_profile(b.mint), "amount": b.amount, "totalAmount": b.total_amount}
                for b in self.sim.boosts(now, top=top)]

    def _ds_boosts_latest(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        return self._ds_boosts(now, top=False)

    def _ds_boosts_top(self, request: web.Request, now: float) -> list[dict[str, Any]]:
        return self._ds_boosts(now, top=True)

    def _boosted(self, now: float) -> dict[str, int]:
        return {b.mint: 1 + int(b.total_amount // 100) for b in self.sim.boosts(now, limit=10**9)}

    def _token_ref(self, mint: str) -> dict[str, str]:
        if mint in _QUOTES or mint in _STABLE_QUOTES:
            name, symbol, _ = _QUOTES.get(mint) or _STABLE_QUOTES[mint]
            return {"address": mint, "name": name, "symbol": symbol}
        tok = self.sim.token(mint)
        return {"address": mint, "name": tok.name, "symbol": tok.symbol}

    def _ds_pair(self, pool: SimPool, now: float, boosted: dict[str, int]) -> dict[str, Any] | None:
        st = self.sim.pair_stats(pool.address, now)
        if st is None:
            return None
        tok = self.sim.token(pool.base_mint)
        exotic = pool.quote_mint not in _QUOTES and pool.quote_mint not in _STABLE_QUOTES
        curve = pool.dex_id in BONDING_CURVE_DEXES
        pair: dict[str, Any] = {
            "chainId": "solana", "dexId": pool.dex_id,
            "url": f"https://dexscreener.com/solana/{pool.address.lower()}", "pairAddress": pool.address,
        }
        if pool.labels:
            pair["labels"] = list(pool.labels)
        pair.update({
            "baseToken": self._token_ref(pool.base_mint), "quoteToken": self._token_ref(pool.quote_mint),
            "priceNative": _plain(st.price_native), "priceUsd": _plain(st.price_usd),
            "txns": {k: {"buys": v.buys, "sells": v.sells} for k, v in st.txns.items()},
            "volume": {k: round(getattr(st.volume, k), 2) for k in ("h24", "h6", "h1", "m5")},
            "priceChange": {k: round(v, 2) for k in ("m5", "h1", "h6", "h24")
                            if (v := getattr(st.price_change, k)) is not None},
        })
        liquidity: dict[str, float] = {"base": round(st.liquidity_base, 2), "quote": round(st.liquidity_quote, 6)}
        if not exotic:
            liquidity = {"usd": round(st.liquidity_usd, 2), **liquidity}
        pair["liquidity"] = None if curve else liquidity  # a bonding curve has no pool liquidity
        pair["fdv"] = round(st.fdv)
        if not exotic:
            pair["marketCap"] = round(st.market_cap)
        if pool.quote_mint not in _STABLE_QUOTES:  # USD1 pairs come without it
            pair["pairCreatedAt"] = pool.created_at * 1000
        if not self._young(tok, now):
            slug = tok.symbol.lower()
            pair["info"] = {
                "imageUrl": f"https://dd.dexscreener.com/ds-data/tokens/solana/{tok.mint}.png",
                "websites": [{"label": "Website", "url": f"https://{slug}.example"}],
                "socials": [{"type": "twitter", "url": f"https://x.com/{slug}"}],
            }
        if tok.mint in boosted:
            pair["boosts"] = {"active": boosted[tok.mint]}
        return pair

    @staticmethod
    def _young(tok: SimToken, now: float) -> bool:
        return now - tok.listed_at < 2 * 86_400

    # ------------------------------------------------------------------ GeckoTerminal

    def _gecko_routes(self, app: web.Application) -> None:
        for route, fn in (
            ("/networks/{network}/pools/{pool}/ohlcv/{timeframe}", self._gt_ohlcv),
            ("/networks/{network}/tokens/{token}/pools", self._gt_token_pools),
            ("/networks/{network}/pools/{pool}", self._gt_pool),
        ):
            self._add(app, GECKOTERMINAL, "default", route, fn)

    def _gt_network(self, request: web.Request) -> None:
        if request.match_info["network"] != "solana":
            raise _HttpError(404, "Not Found")

    def _gt_ohlcv(self, request: web.Request, now: float) -> dict[str, Any]:
        self._gt_network(request)
        address = request.match_info["pool"]
        timeframe = request.match_info["timeframe"]
        if timeframe not in _GT_AGGREGATES:
            raise _HttpError(400, f"timeframe must be one of day, hour, minute (got {timeframe!r})")
        aggregate = _int_param(request, "aggregate", 1)
        if aggregate not in _GT_AGGREGATES[timeframe]:
            raise _HttpError(400, f"aggregate {aggregate} is not allowed for {timeframe}")
        limit = min(1000, max(1, _int_param(request, "limit", 100)))
        currency = request.query.get("currency", "usd")
        if currency not in ("usd", "token"):
            raise _HttpError(400, "currency must be usd or token")
        if not self.sim.has_pool(address):
            raise _HttpError(404, "Not Found")
        pool = self.sim.pool(address)
        gt_base, gt_quote = self._gt_order(pool)
        token_param = request.query.get("token", "base")
        wanted = {"base": gt_base, "quote": gt_quote}.get(token_param, token_param)
        if wanted not in (gt_base, gt_quote):
            raise _HttpError(400, "token must be base, quote or the address of one of the pool's tokens")
        empty = request.query.get("include_empty_intervals", "false").lower() == "true"
        tf = Timeframe({"day": 86_400, "hour": 3600, "minute": 60}[timeframe] * aggregate)
        tfs = int(tf)
        before = request.query.get("before_timestamp")
        end, forming = now, True
        if before is not None:
            try:
                before_ts = int(float(before))
            except ValueError:
                raise _HttpError(400, "before_timestamp must be a unix timestamp") from None
            ceil_before = -(-before_ts // tfs) * tfs
            if ceil_before <= now:
                end, forming = ceil_before, False
        rows = self._newest_bars(pool, tf, end, forming, empty, limit)
        if wanted != pool.base_mint:
            rows = self._other_side_bars(pool, wanted, tf, rows, end, forming)
        if currency == "token":
            other = gt_quote if wanted == gt_base else gt_base
            rows = [replace(b, open=b.open / q, high=b.high / q, low=b.low / q, close=b.close / q)
                    for b in rows if (q := self.sim.token_price(other, b.ts + tfs)) is not None]
        base, quote = self._token_ref(gt_base), self._token_ref(gt_quote)
        return {
            "data": {"id": str(uuid.uuid4()), "type": "ohlcv_request_response",
                     "attributes": {"ohlcv_list": [[b.ts, b.open, b.high, b.low, b.close, round(b.volume, 6)]
                                                   for b in reversed(rows)]}},
            "meta": {"base": {**base, "coingecko_coin_id": None}, "quote": {**quote, "coingecko_coin_id": None}},
        }

    def _newest_bars(self, pool: SimPool, tf: Timeframe, end: float, forming: bool, empty: bool,
                     limit: int) -> list[Candle]:
        """The newest ``limit`` bars ending at ``end``, widening the span when empty ones are skipped."""
        tfs = int(tf)
        span = limit
        while True:
            start = int(end) - int(end) % tfs - span * tfs
            bars = self.sim.bars(pool.address, tf, start, end, include_forming=forming, include_empty=empty)
            if len(bars) >= limit or start <= pool.bars_from:
                return bars[-limit:]
            span *= 2

    def _quote_usd(self, pool: SimPool, t: float) -> float | None:
        return self.sim.token_price(pool.quote_mint, t)

    def _gt_order(self, pool: SimPool) -> tuple[str, str]:
        """GeckoTerminal's (base, quote) of a pool. A pool of two simulated tokens is listed the other
        way round from DexScreener: providers disagree on the order of token/token pools
        (``reference/external-apis.md`` §4.2/§7), which is why OHLCV is asked with ``token=<mint>``."""
        if self.sim.has_token(pool.quote_mint):
            return pool.quote_mint, pool.base_mint
        return pool.base_mint, pool.quote_mint

    def _other_side_bars(self, pool: SimPool, mint: str, tf: Timeframe, rows: list[Candle], end: float,
                         forming: bool) -> list[Candle]:
        """The pool's bars priced in its *quote* token (USD): that token's price path, this pool's volume."""
        if not rows:
            return []
        if not self.sim.has_token(mint):  # SOL, USDC: fixed prices
            price = self.sim.token_price(mint, rows[0].ts)
            assert price is not None
            return [Candle(b.ts, price, price, price, price, b.volume) for b in rows]
        own = {b.ts: b for b in self.sim.bars(self.sim.token(mint).main_pool.address, tf, rows[0].ts, end,
                                              include_forming=forming, include_empty=True)}
        return [replace(own[b.ts], volume=b.volume) for b in rows if b.ts in own]

    def _gt_token_pools(self, request: web.Request, now: float) -> dict[str, Any]:
        self._gt_network(request)
        mint = request.match_info["token"]
        if not self.sim.has_token(mint):
            raise _HttpError(404, "Not Found")
        page = _int_param(request, "page", 1)
        if not 1 <= page <= 10:
            raise _HttpError(400, "page must be between 1 and 10")
        pools = [p for p in self.sim.pools_with(mint) if self.sim.pool_open(p.address, now)]
        pools.sort(key=lambda p: -p.liquidity_usd)
        chunk = pools[(page - 1) * 20: page * 20]
        resources = [r for p in chunk if (r := self._gt_pool_resource(p, now)) is not None]
        out: dict[str, Any] = {"data": resources}
        include = {x.strip() for x in request.query.get("include", "").split(",") if x.strip()}
        if include:
            out["included"] = self._gt_included(chunk, include)
        return out

    def _gt_pool(self, request: web.Request, now: float) -> dict[str, Any]:
        self._gt_network(request)
        address = request.match_info["pool"]
        if not self.sim.has_pool(address) or not self.sim.pool_open(address, now):
            raise _HttpError(404, "Not Found")
        pool = self.sim.pool(address)
        resource = self._gt_pool_resource(pool, now)
        if resource is None:
            raise _HttpError(404, "Not Found")
        out: dict[str, Any] = {"data": resource}
        include = {x.strip() for x in request.query.get("include", "").split(",") if x.strip()}
        if include:
            out["included"] = self._gt_included([pool], include)
        return out

    def _gt_included(self, pools: list[SimPool], include: set[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for pool in pools:
            wanted = []
            gt_base, gt_quote = self._gt_order(pool)
            if "base_token" in include:
                wanted.append(("token", gt_base))
            if "quote_token" in include:
                wanted.append(("token", gt_quote))
            if "dex" in include:
                wanted.append(("dex", _gt_dex(pool)))
            for kind, ident in wanted:
                key = f"{kind}:{ident}"
                if key in seen:
                    continue
                seen.add(key)
                if kind == "dex":
                    out.append({"id": ident, "type": "dex", "attributes": {"name": ident.replace("-", " ").title()}})
                    continue
                ref = self._token_ref(ident)
                known = _QUOTES.get(ident) or _STABLE_QUOTES.get(ident)
                decimals = known[2] if known else self.sim.token(ident).decimals
                out.append({"id": f"solana_{ident}", "type": "token", "attributes": {
                    "address": ident, "name": ref["name"], "symbol": ref["symbol"], "decimals": decimals,
                    "image_url": f"https://static.dexscan.invalid/icons/{ident}.png", "coingecko_coin_id": None}})
        return out

    def _gt_pool_resource(self, pool: SimPool, now: float) -> dict[str, Any] | None:
        st = self.sim.pair_stats(pool.address, now)
        quote_usd = self._quote_usd(pool, now)
        if st is None or quote_usd is None:
            return None
        tok = self.sim.token(pool.base_mint)
        gt_base, gt_quote = self._gt_order(pool)
        base_ref, quote_ref = self._token_ref(gt_base), self._token_ref(gt_quote)
        base_usd, quote_usd = st.price_usd, quote_usd
        base_in_quote = st.price_native
        if gt_base != pool.base_mint:  # listed the other way round
            base_usd, quote_usd, base_in_quote = quote_usd, base_usd, 1 / base_in_quote
        windows = {k: self.sim.pool_window(pool.address, now, s)
                   for k, s in (("m5", 300), ("m15", 900), ("m30", 1800), ("h1", 3600), ("h6", 21_600),
                                ("h24", 86_400))}
        changes = {k: _plain(w.price_change, 4) if w and w.price_change is not None else None
                   for k, w in windows.items()}
        transactions = {k: _gt_txns(w) for k, w in windows.items() if k != "h6"}
        verified = tok.safe and not self._young(tok, now)
        return {
            "id": f"solana_{pool.address}", "type": "pool",
            "attributes": {
                "address": pool.address, "name": f"{base_ref['symbol']} / {quote_ref['symbol']}",
                "base_token_price_usd": _plain(base_usd), "base_token_price_native_currency":
                    _plain(base_usd / SOL_USD),
                "quote_token_price_usd": _plain(quote_usd),
                "quote_token_price_native_currency": _plain(quote_usd / SOL_USD),
                "base_token_price_quote_token": _plain(base_in_quote),
                "quote_token_price_base_token": _plain(1 / base_in_quote),
                "pool_created_at": _iso(pool.created_at), "reserve_in_usd": _plain(st.liquidity_usd, 10),
                "fdv_usd": _plain(st.fdv, 10), "market_cap_usd": _plain(st.market_cap, 10) if verified else None,
                "price_change_percentage": changes, "transactions": transactions,
                "volume_usd": {k: _plain(getattr(st.volume, k), 10) for k in ("m5", "h1", "h6", "h24")},
            },
            "relationships": {
                "base_token": {"data": {"id": f"solana_{base_ref['address']}", "type": "token"}},
                "quote_token": {"data": {"id": f"solana_{quote_ref['address']}", "type": "token"}},
                "dex": {"data": {"id": _gt_dex(pool), "type": "dex"}},
            },
        }

    # ------------------------------------------------------------------ Birdeye

    def _birdeye_routes(self, app: web.Application) -> None:
        for route, fn in (
            ("/defi/ohlcv", self._be_ohlcv_v1),
            ("/defi/v3/ohlcv", self._be_ohlcv_v3),
            ("/defi/token_overview", self._be_overview),
            ("/defi/token_security", self._be_security),
        ):
            self._add(app, BIRDEYE, "default", route, fn)

    def _be_address(self, request: web.Request) -> str:
        address = request.query.get("address", "").strip()
        if not address:
            raise _HttpError(400, "Invalid request parameters or payload.")
        if not _looks_like_address(address):
            raise _HttpError(400, "address is invalid format")
        return address

    def _be_candles(self, request: web.Request, now: float, max_records: int,
                    padding: bool) -> tuple[str, str, str, list[Candle], float]:
        """(address, type, currency, bars of the token's main pool, that pool's volume share)."""
        address = self._be_address(request)
        type_ = request.query.get("type", "")
        if type_ not in _BIRDEYE_KNOWN_TYPES:
            raise _HttpError(400, "type is invalid")
        if type_ not in _BIRDEYE_TYPES:
            raise _HttpError(400, f"type {type_} is not served by the dexscan fake")
        currency = request.query.get("currency", "usd")
        if currency not in ("usd", "native"):
            raise _HttpError(400, "currency must be usd or native")
        mode = request.query.get("mode", "range")
        if mode not in ("range", "count"):
            raise _HttpError(400, "mode must be range or count")
        time_from = _opt_int_param(request, "time_from")
        time_to = _opt_int_param(request, "time_to")
        if mode == "count":
            count = min(max_records, max(1, _int_param(request, "count_limit", max_records)))
            if (time_from is None) == (time_to is None):
                raise _HttpError(400, "mode=count needs exactly one of time_from and time_to")
        else:
            count = max_records
            if time_from is None or time_to is None or time_from > time_to:
                raise _HttpError(400, "time_from and time_to are required, time_from <= time_to")
        if not self.sim.has_token(address) or not self.sim.listed(address, now):
            return address, type_, currency, [], 1.0
        main = self.sim.token(address).main_pool
        tfs = int(_BIRDEYE_TYPES[type_])
        if time_from is not None:
            lo = max(time_from, main.bars_from - main.bars_from % tfs)
            hi = lo + (count + 1) * tfs if time_to is None else min(time_to + tfs, lo + (count + 1) * tfs)
        else:
            assert time_to is not None
            hi = time_to + tfs
            lo = max(0, hi - (count + 1) * tfs)
        forming = hi > now
        bars = self.sim.bars(main.address, _BIRDEYE_TYPES[type_], lo, min(hi, now), include_forming=forming,
                             include_empty=padding)
        bars = [b for b in bars if time_to is None or b.ts <= time_to]
        bars = bars[-count:] if time_from is None else bars[:count]
        return address, type_, currency, bars, main.volume_share

    def _be_scale(self, currency: str, bars: list[Candle], share: float) -> list[tuple[Candle, float, float]]:
        """(bar, price divisor, USD volume of the token across pools) for each bar."""
        div = SOL_USD if currency == "native" else 1.0
        return [(b, div, b.volume / share) for b in bars]

    def _be_ohlcv_v1(self, request: web.Request, now: float) -> dict[str, Any]:
        address, type_, currency, bars, share = self._be_candles(request, now, 1000, padding=True)
        items = [{"o": b.open / d, "h": b.high / d, "l": b.low / d, "c": b.close / d, "v": round(v / b.close, 6),
                  "unixTime": b.ts, "address": address, "type": type_, "currency": currency}
                 for b, d, v in self._be_scale(currency, bars, share)]
        return {"success": True, "data": {"isScaledUiToken": False, "items": items}}

    def _be_ohlcv_v3(self, request: web.Request, now: float) -> dict[str, Any]:
        padding = request.query.get("padding", "false").lower() == "true"
        address, type_, currency, bars, share = self._be_candles(request, now, 5000, padding=padding)
        items = [{"o": b.open / d, "h": b.high / d, "l": b.low / d, "c": b.close / d, "v": round(v / b.close, 6),
                  "v_usd": round(v, 6), "unix_time": b.ts, "address": address, "type": type_, "currency": currency}
                 for b, d, v in self._be_scale(currency, bars, share)]
        return {"success": True, "data": {"is_scaled_ui_token": False, "items": items}}

    def _be_overview(self, request: web.Request, now: float) -> dict[str, Any]:
        address = self._be_address(request)
        if not self.sim.has_token(address) or not self.sim.listed(address, now):
            return {"success": True, "data": {}}
        tok = self.sim.token(address)
        info = self.sim.token_info(address, now)
        assert info is not None
        slug = tok.symbol.lower()
        data: dict[str, Any] = {
            "address": address, "decimals": tok.decimals, "symbol": tok.symbol, "name": tok.name,
            "marketCap": round(info.mcap, 2), "fdv": round(info.fdv, 2),
            "extensions": {"coingeckoId": None, "website": f"https://{slug}.example",
                           "twitter": f"https://x.com/{slug}", "description": f"{tok.name} on Solana"},
            "logoURI": f"https://static.dexscan.invalid/icons/{address}.png",
            "liquidity": round(info.liquidity_usd, 2), "lastTradeUnixTime": int(now),
            "lastTradeHumanTime": _iso(now)[:-5], "price": info.usd_price,
            "totalSupply": tok.total_supply, "circulatingSupply": tok.circ_supply,
            "holder": info.holder_count, "numberMarkets": len(self.sim.pools_with(address)),
            "isScaledUiToken": False, "multiplier": None,
        }
        for frame, seconds in _BIRDEYE_FRAMES.items():
            w = self.sim.token_window(address, now, seconds)
            prev = self.sim.token_window(address, now - seconds, seconds)
            assert w is not None
            past = self.sim.token_price(address, now - seconds)
            trades = w.txns.buys + w.txns.sells
            buy_share = w.txns.buys / trades if trades else 0.5
            prev_vol = prev.volume if prev is not None else 0.0
            data.update({
                f"history{frame}Price": past, f"priceChange{frame}Percent": _round(w.price_change, 4),
                f"uniqueWallet{frame}": int(trades * 0.6), f"trade{frame}": trades,
                f"buy{frame}": w.txns.buys, f"sell{frame}": w.txns.sells,
                f"v{frame}": round(w.volume / info.usd_price, 4), f"v{frame}USD": round(w.volume, 2),
                f"vHistory{frame}USD": round(prev_vol, 2),
                f"v{frame}ChangePercent": round((w.volume / prev_vol - 1) * 100, 4) if prev_vol > 0 else None,
                f"vBuy{frame}USD": round(w.volume * buy_share, 2),
                f"vSell{frame}USD": round(w.volume * (1 - buy_share), 2),
            })
        return {"success": True, "data": data}

    def _be_security(self, request: web.Request, now: float) -> dict[str, Any]:
        address = self._be_address(request)
        if not self.sim.has_token(address):
            return {"success": True, "data": {}}
        tok = self.sim.token(address)
        created = tok.main_pool.created_at - 900
        top10 = tok.top_holders_pct / 100
        return {"success": True, "data": {
            "creatorAddress": tok.dev, "creatorOwnerAddress": None, "ownerAddress": None,
            "ownerOfOwnerAddress": None, "creationTx": None, "creationTime": created, "creationSlot": None,
            "mintTx": None, "mintTime": created, "mintSlot": None, "creatorBalance": 0, "ownerBalance": None,
            "ownerPercentage": None, "creatorPercentage": 0, "metaplexUpdateAuthority": tok.dev,
            "metaplexOwnerUpdateAuthority": None, "metaplexUpdateAuthorityBalance": 0,
            "metaplexUpdateAuthorityPercent": 0, "mutableMetadata": not tok.safe,
            "top10HolderBalance": top10 * tok.total_supply, "top10HolderPercent": top10,
            "top10UserBalance": top10 * tok.total_supply, "top10UserPercent": top10, "isTrueToken": None,
            "fakeToken": None, "totalSupply": tok.total_supply, "preMarketHolder": [], "lockInfo": None,
            "freezeable": tok.freeze_authority or None, "freezeAuthority": tok.dev if tok.freeze_authority else None,
            "transferFeeEnable": tok.transfer_fee_bps is not None or None,
            "transferFeeData": ({"transferFeeConfigAuthority": tok.dev, "withdrawWithheldAuthority": tok.dev,
                                 "newerTransferFee": {"transferFeeBasisPoints": tok.transfer_fee_bps,
                                                      "maximumFee": 10**18}}
                                if tok.transfer_fee_bps is not None else None),
            "isToken2022": tok.token2022, "nonTransferable": None, "jupStrictList": tok.safe and tok.kind == "normal",
        }}


# ------------------------------------------------------------------ helpers


def _fixture_pick(records: list[dict[str, Any]], mint: str) -> dict[str, Any] | None:
    """:meth:`MarketFakes.ds_pick`'s rule over recorded pairs: deepest with the token as base, a
    bonding curve last."""
    own = [r for r in records if (r.get("baseToken") or {}).get("address") == mint]
    if not own:
        return None
    return max(own, key=lambda r: (r.get("dexId") not in BONDING_CURVE_DEXES,
                                   float(((r.get("liquidity") or {}).get("usd")) or -1.0), r["pairAddress"]))


def _static_mint_information(mint: str, now: float) -> dict[str, Any]:
    name, symbol, decimals = _QUOTES[mint]
    return {
        "id": mint, "name": name, "symbol": symbol, "decimals": decimals,
        "tokenProgram": "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", "organicScore": 99.0,
        "organicScoreLabel": "high", "isVerified": True, "tags": ["verified", "community", "strict"],
        "usdPrice": SOL_USD if mint == SOL_MINT else 1.0, "liquidity": 500_000_000.0,
        "audit": {"mintAuthorityDisabled": True, "freezeAuthorityDisabled": mint == SOL_MINT},
        "updatedAt": _iso(now),
    }


def _gt_dex(pool: SimPool) -> str:
    if pool.dex_id == "raydium" and "CLMM" in pool.labels:
        return "raydium-clmm"
    return pool.dex_id


def _gt_txns(w: WindowStats | None) -> dict[str, int]:
    if w is None:
        return {"buys": 0, "sells": 0, "buyers": 0, "sellers": 0}
    return {"buys": w.txns.buys, "sells": w.txns.sells, "buyers": int(w.txns.buys * 0.7),
            "sellers": int(w.txns.sells * 0.7)}


def _iso(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _slot(t: float) -> int:
    """A plausible Solana slot for clock time ``t`` (400 ms slots)."""
    return 380_000_000 + int((t - 1_767_225_600) / 0.4)


def _plain(x: float, digits: int = 8) -> str:
    """A decimal string without exponent (how DexScreener/GeckoTerminal print numbers)."""
    if x == 0 or not math.isfinite(x):
        return "0"
    places = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _looks_like_address(text: str) -> bool:
    return 32 <= len(text) <= 44 and set(text) <= _BASE58


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise _HttpError(400, f"{name} must be an integer") from None


def _opt_int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(float(raw))
    except ValueError:
        raise _HttpError(400, f"{name} must be a unix timestamp") from None


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
    target = _record_collection(data)
    if target is None:
        return False
    if isinstance(target, dict):
        key = list(target)[len(target) // 2]
        target[HUGE_ID] = json.loads(json.dumps(target[key]))
        return True
    i = len(target) // 2
    record = target[i]
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
    target.insert(i, bad)
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
    target = _record_collection(data)
    if target is None:
        return False
    if isinstance(target, dict):
        key = list(target)[len(target) // 2]
        target[key] = _malformed(target[key], 0)
        return True
    i = len(target) // 2
    record = target[i]
    if isinstance(record, list):
        target[i] = [_MALFORMED_BY_TYPE[float][j % 5] if j else "NaN" for j in range(len(record))]
    else:
        target[i] = _malformed(record, 0)
    return True


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
