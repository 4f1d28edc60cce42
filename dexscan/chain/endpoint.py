"""One endpoint of the RPC pool (:mod:`dexscan.chain.rpc`): its solana-py client, whose httpx2 session
reads every answer under ``rpc.max_compressed_bytes`` / ``rpc.max_body_bytes``, its budgets (per
endpoint and per method, taken at the same instant), its breaker, latency EWMA and health marks.

URLs may carry API keys: an endpoint is named by its masked URL (:func:`masked_names`)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

import httpx2
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed

from dexscan.breaker import CircuitBreaker
from dexscan.budget import Budget
from dexscan.clock import Clock
from dexscan.config import RpcSettings, mask_url
from dexscan.sources import bounded
from dexscan.sources.http import make_budget

#: The window of the endpoint and method budgets (the public mainnet limits are per 10 s).
WINDOW_S = 10.0
_EWMA_ALPHA = 0.3
_ROOM_POLL_S = 0.1


class RpcAnswerTooLarge(httpx2.TransportError):
    """An RPC answer passed ``rpc.max_compressed_bytes`` on the wire or ``rpc.max_body_bytes`` decoded;
    reading stopped at the cap. A transport error to solana-py; :func:`~dexscan.chain.rpc_failures.classify` names it
    ``too_large``."""

    def __init__(self, which: str, limit: int, request: httpx2.Request) -> None:
        self.which = which
        self.limit = limit
        setting = "rpc.max_compressed_bytes" if which == "compressed" else "rpc.max_body_bytes"
        super().__init__(f"answer refused: {which} body larger than {bounded.describe_bytes(limit)} ({setting})",
                         request=request)


class BoundedTransport(httpx2.AsyncBaseTransport):
    """Wraps httpx2's transport: the body is read chunk by chunk and inflated here under the caps,
    so no answer (an oversized one or a gzip bomb) is held or inflated past them."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, max_compressed: int, max_decoded: int) -> None:
        self._inner = inner
        self._max_compressed = max_compressed
        self._max_decoded = max_decoded

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        resp = await self._inner.handle_async_request(request)
        try:
            reader = bounded.BodyReader(resp.headers.get("content-encoding"), self._max_compressed, self._max_decoded)
            declared = resp.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self._max_compressed:
                raise bounded.BodyLimitExceeded("compressed", self._max_compressed)
            async for chunk in resp.aiter_raw():
                reader.feed(chunk)
            body = reader.finish()
        except bounded.BodyLimitExceeded as exc:
            raise RpcAnswerTooLarge(exc.which, exc.limit, request) from None
        except (bounded.UnsupportedEncoding, bounded.BadEncoding) as exc:
            raise httpx2.DecodingError(str(exc), request=request) from None
        finally:
            await resp.aclose()
        headers = [(k, v) for k, v in resp.headers.multi_items()
                   if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
        return httpx2.Response(resp.status_code, headers=headers, content=body, request=request,
                               extensions=resp.extensions)

    async def aclose(self) -> None:
        await self._inner.aclose()


def bound_session(client: AsyncClient, settings: RpcSettings) -> None:
    """Give ``client`` an httpx2 session whose every transport (proxies from the environment too)
    reads answers under the size caps and asks only for codings the reader decodes."""
    session = httpx2.AsyncClient(timeout=httpx2.Timeout(settings.timeout_s),
                                 headers={"Accept-Encoding": bounded.ACCEPT_ENCODING})
    caps = (settings.max_compressed_bytes, settings.max_body_bytes)
    session._transport = BoundedTransport(session._transport, *caps)
    session._mounts = {k: None if v is None else BoundedTransport(v, *caps) for k, v in session._mounts.items()}
    client._provider.session = session


class Endpoint:
    """One RPC endpoint: its client (answers read under the size caps), budgets, breaker, latency and
    the health marks the pool's checks set."""

    def __init__(self, url: str, name: str, index: int, settings: RpcSettings, clock: Clock) -> None:
        self.url = url
        self.name = name
        self.index = index
        self._settings = settings
        self._clock = clock
        self.client = AsyncClient(url, commitment=Confirmed, timeout=settings.timeout_s, max_transport_retries=0)
        bound_session(self.client, settings)
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s, clock)
        self.budget = make_budget(f"rpc {name}", settings.requests_per_10s, WINDOW_S, clock)
        self.method_budgets: dict[str, Budget] = {}
        self._spend_lock = asyncio.Lock()
        self.latency_ms: float | None = None
        self.slot: int | None = None
        self.lag: int | None = None
        self.healthy = True
        self.unhealthy_reason: str | None = None
        self.requests = 0
        self.failures = 0
        self.errors: Counter[str] = Counter()  # failures by kind: timeout, transport, too_large, http 429, ...
        self.rate_limited = 0
        self.served = 0
        self.last_error: str | None = None
        self.refused: dict[str, str] = {}  # method -> the endpoint's last refusal
        self.refusals: Counter[str] = Counter()  # method -> refusals
        #: Slots ahead of the pool's consensus at the last health check, when more than ``rpc.max_slot_lead``.
        self.slot_lead: int | None = None

    def method_budget(self, method: str) -> Budget:
        b = self.method_budgets.get(method)
        if b is None:
            b = make_budget(f"rpc {self.name} {method}", self._settings.method_requests_per_10s, WINDOW_S,
                            self._clock)
            self.method_budgets[method] = b
        return b

    def has_room(self, method: str) -> bool:
        total, per_method = self.budget.state(), self.method_budget(method).state()
        return total.used < total.limit and per_method.used < per_method.limit

    async def spend(self, method: str) -> None:
        """Take one request from both budgets at the same instant.

        Waiting for room in both *before* taking from either matters: a request stamped in the
        method budget and then held back by the endpoint budget would reach the server later than
        its stamp says, and could be the 41st in the server's window.
        """
        async with self._spend_lock:
            while not self.has_room(method):
                await self._clock.sleep(_ROOM_POLL_S)
            await self.method_budget(method).acquire()
            await self.budget.acquire()
        self.requests += 1

    def observe_latency(self, ms: float) -> None:
        self.latency_ms = ms if self.latency_ms is None else _EWMA_ALPHA * ms + (1 - _EWMA_ALPHA) * self.latency_ms

    def mark_unhealthy(self, reason: str) -> None:
        self.healthy = False
        self.unhealthy_reason = reason

    def mark_healthy(self) -> None:
        self.healthy = True
        self.unhealthy_reason = None


def masked_names(urls: Sequence[str]) -> list[str]:
    """Masked URLs, made unique (two keyed URLs on one host would otherwise look the same)."""
    names: list[str] = []
    for url in urls:
        base = mask_url(url)
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base} #{n}"
        names.append(name)
    return names
