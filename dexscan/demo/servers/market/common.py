"""What the four market fakes share: the request pipeline (rate limits, faults, error shapes), the
route declaration (:func:`serves`), counters, and small formatting helpers."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import socket
import struct
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FunctionType, TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web

from dexscan.clock import Clock
from dexscan.demo.market_sim import (
    MarketSim,
    SimToken,
)
from dexscan.demo.servers.elsewhere import ElsewhereHost
from dexscan.demo.servers.market.faults import (
    _RECORD_FAULTS,
    GZIP_BOMB_BYTES,
    OVERSIZED_BYTES,
    FaultSwitches,
    stream_huge_answer,
)
from dexscan.demo.servers.market.providers import (
    _HOSTS,
    BIRDEYE,
    DEFAULT_LIMITS,
    DEXSCREENER,
    GECKO_PREFIX,
    GECKOTERMINAL,
    JUPITER,
    PROVIDERS,
)
from dexscan.domain import SOL_MINT, USD1_MINT, USDC_MINT

log = logging.getLogger(__name__)
_QUOTES = {
    SOL_MINT: ("Wrapped SOL", "SOL", 9),
    USDC_MINT: ("USD Coin", "USDC", 6),
}
#: Quote tokens that are not Jupiter-listed here but are named in pairs (USD stablecoins: liquidity in USD).
_STABLE_QUOTES = {USD1_MINT: ("World Liberty Financial USD", "USD1", 6)}
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
_HandlerMethod = TypeVar("_HandlerMethod", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class _Route:
    provider: str
    path: str  # the route template, as counted in ``FakeStats.by_route``
    bucket: str  # the rate-limit bucket: "default", or DexScreener's "pairs" / "profiles"


_ROUTE_OF: dict[Callable[..., Any], _Route] = {}


def serves(provider: str, path: str, bucket: str = "default") -> Callable[[_HandlerMethod], _HandlerMethod]:
    """Marks a method of a provider's routes mixin as the handler of ``GET path`` on that provider's fake
    (called with the request and the clock's now; returns the JSON answer, or a ``_Reply``)."""
    def register(method: _HandlerMethod) -> _HandlerMethod:
        _ROUTE_OF[method] = _Route(provider, path, bucket)
        return method
    return register


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


class MarketFakesBase:
    """The fakes' state and request pipeline; each provider's routes are a mixin over it."""

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
        #: "Another host" for the ``redirect`` fault (see the module docstring).
        self.elsewhere = ElsewhereHost({"error": "not found"})

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._runners:
            return
        routes = self._routes()
        for provider in PROVIDERS:
            app = web.Application()
            for route, name in routes[provider]:
                self._add(app, route, getattr(self, name))
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
        await self.elsewhere.start()

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()
        await self.elsewhere.stop()

    def stats(self, provider: str) -> FakeStats:
        if provider not in self._stats:
            raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
        return self._stats[provider].copy()

    def settings_overrides(self) -> dict[str, object]:
        """Dotted keys for ``Settings.with_overrides`` pointing every market client at these fakes."""
        return {f"sources.{p}.base_url": url for p, url in self.urls.items()}

    def _routes(self) -> dict[str, list[tuple[_Route, str]]]:
        """The :func:`serves` handlers of this class and its mixins (route and method name) by provider,
        in the order they are defined."""
        routes: dict[str, list[tuple[_Route, str]]] = {p: [] for p in PROVIDERS}
        for cls in reversed(type(self).__mro__):
            for name, member in vars(cls).items():
                if isinstance(member, FunctionType) and member in _ROUTE_OF:
                    route = _ROUTE_OF[member]
                    routes[route.provider].append((route, name))
        return routes

    def _add(self, app: web.Application, route: _Route, fn: Handler) -> None:
        prefix = GECKO_PREFIX if route.provider == GECKOTERMINAL else ""

        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._serve(route.provider, route.bucket, route.path, fn, request)

        app.router.add_get(prefix + route.path, handler)

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
            target = request.rel_url if head.kind == "redirect_same" else f"{self.elsewhere.url}{request.rel_url}"
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
            size = self.gzip_bomb_bytes if head.kind == "gzip_bomb" else self.oversized_bytes
            return await stream_huge_answer(request, head.kind, size, opening=b"[", closing=b"]")

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

    def _token_ref(self, mint: str) -> dict[str, str]:
        if mint in _QUOTES or mint in _STABLE_QUOTES:
            name, symbol, _ = _QUOTES.get(mint) or _STABLE_QUOTES[mint]
            return {"address": mint, "name": name, "symbol": symbol}
        tok = self.sim.token(mint)
        return {"address": mint, "name": tok.name, "symbol": tok.symbol}

    @staticmethod
    def _young(tok: SimToken, now: float) -> bool:
        return now - tok.listed_at < 2 * 86_400
