"""A failover pool of Solana JSON-RPC endpoints over solana-py's ``AsyncClient``.

Why a pool: public RPC nodes fall behind, rate-limit and die, and a safety gate that cannot read the
chain leaves a token *unverified*. So every call goes to the best endpoint that is healthy, has budget
left and whose circuit breaker is closed, and moves on to the next one **within the same call** on a
timeout, a transport error, HTTP 429/5xx or a ``-32005`` "node is behind" answer.

* Health: :meth:`RpcPool.check_health` sends ``getHealth`` (raw JSON-RPC, to read ``-32005`` and
  ``numSlotsBehind``; solana-py has no ``get_health``) and ``getSlot`` to every endpoint. An endpoint
  that answers ``-32005`` or lags the best slot by more than ``rpc.max_slot_lag`` is unhealthy and
  is used only when nothing healthy is left. :meth:`run_health_checks` repeats it every
  ``rpc.health_interval_s`` (the engine runs it in its task group; :meth:`start` spawns it).
* Slot lead: an endpoint whose slot is more than ``rpc.max_slot_lead`` ahead of the pool's consensus
  (the lower median of the slots of the endpoints whose ``getHealth`` said ok) is *faulty*: no real
  node runs that far ahead of its peers, so the slot is a lie or a broken node's. It is marked
  unhealthy ("slot N ahead of the others"), counted (``errors["slot_lead"]``), logged once, serves
  no call until a health check finds its slot plausible again, and is left out of the best slot, so it
  cannot make the honest endpoints look lagging. The lower median means that of two endpoints far
  apart the one ahead is the suspect: an old answer can only miss a renounce, never invent one.
* Ranking: healthy endpoints with budget room first; among them the *fast group* (latency EWMA
  within 1.5x + 20 ms of the fastest) in configured priority order, then the slower ones by latency.
  Treating near-equal latencies as a tie keeps the user's order and avoids flapping.
* Budgets (:class:`~dexscan.budget.Budget`, built like every provider's by
  :func:`~dexscan.sources.http.make_budget`, whose margin absorbs latency jitter): per endpoint
  ``rpc.requests_per_10s`` and, per method, ``rpc.method_requests_per_10s`` — the public mainnet
  limits (100 and 40 per 10 s), so dexscan never causes a 429; a 429 that happens anyway
  penalises that endpoint's budget.
* Breakers (:class:`~dexscan.breaker.CircuitBreaker`): open after ``rpc.breaker_failures``
  consecutive failures, half-open after ``rpc.breaker_cooldown_s`` for one trial call.
* Hedged reads (``rpc.hedged_reads``): the call goes to the two best endpoints at once and the first
  answer wins.
* Refused methods: an endpoint may refuse a method it does not serve, e.g. the public mainnet endpoint
  answers ``getTokenLargestAccounts`` of SPL Token mints with ``-32010`` "... excluded from account
  secondary indexes; this RPC method unavailable for key" and several providers disable methods
  (``-32601`` method not found) — ``reference/external-apis.md`` §5.1. That is an *answer*, not an
  endpoint failure: the breaker counts it as the node being up (like ``-32602``), the call moves on
  to the next endpoint, endpoints that refused the method are ranked last for it, and when every
  endpoint refused, :class:`RpcMethodRefused` names them. :meth:`RpcPool.refusals` lists who refused
  what (``dexscan doctor``, ``dexscan check``).

URLs may carry API keys: only :func:`~dexscan.config.mask_url` names ever leave this module.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import httpx2
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solana.rpc.jsonrpc import JsonRpcRequest, SolanaJsonRpcError
from solders.account import Account
from solders.pubkey import Pubkey
from solders.rpc.errors import (
    InvalidParamsMessage,
    KeyExcludedFromSecondaryIndexMessage,
    MethodNotFoundMessage,
    NodeUnhealthyMessage,
)

from dexscan.breaker import BreakerState, CircuitBreaker
from dexscan.budget import Budget
from dexscan.chain.answers import (
    decode_largest_accounts,
    decode_multiple_accounts,
    decode_signatures,
    decode_transaction_answer,
)
from dexscan.clock import Clock, RealClock
from dexscan.config import RpcSettings, Settings, mask_text, mask_url, url_secret_parts
from dexscan.errors import ConfigError, RpcError, RpcUnavailable
from dexscan.sources.bounded import (
    ACCEPT_ENCODING,
    BadEncoding,
    BodyLimitExceeded,
    BodyReader,
    UnsupportedEncoding,
    describe_bytes,
)
from dexscan.sources.http import make_budget
from dexscan.status import RpcEndpointStatus

log = logging.getLogger(__name__)

T = TypeVar("T")

NODE_UNHEALTHY = -32005
INVALID_PARAMS = -32602
KEY_EXCLUDED_FROM_SECONDARY_INDEX = -32010
METHOD_NOT_FOUND = -32601
#: JSON-RPC error codes by which an endpoint refuses a method (or a method for a key) it does not serve.
REFUSAL_CODES = frozenset({KEY_EXCLUDED_FROM_SECONDARY_INDEX, METHOD_NOT_FOUND})
#: Most keys one ``getMultipleAccounts`` accepts (the RPC answers -32602 above it).
MAX_MULTIPLE_ACCOUNTS = 100
_WINDOW_S = 10.0
_EWMA_ALPHA = 0.3
_FAST_RATIO = 1.5
_FAST_SLACK_MS = 20.0
_ROOM_POLL_S = 0.1


class RpcRequestError(RpcError):
    """The request itself is wrong (JSON-RPC -32602 and the like): another endpoint would refuse it too."""


class RpcMethodRefused(RpcError):
    """Every endpoint tried refused the method (``-32010``, ``-32601``): nothing is wrong with them.

    ``refused`` maps each refusing endpoint (masked name) to its answer.
    """

    def __init__(self, method: str, refused: dict[str, str]) -> None:
        self.method = method
        self.refused = dict(refused)
        names = ", ".join(self.refused)
        first = next(iter(self.refused.values()), "")
        super().__init__(f"{method} unavailable from {names} ({first})")

    @property
    def endpoints(self) -> list[str]:
        return list(self.refused)


@dataclass(frozen=True, slots=True)
class Served(Generic[T]):
    """An answer and which endpoint (masked) gave it, after how many attempts, how fast."""

    value: T
    endpoint: str
    elapsed_ms: float
    attempts: int


@dataclass(frozen=True, slots=True)
class EndpointState:
    """One endpoint of the pool as the dashboard and metrics show it. ``name`` is masked."""

    name: str
    healthy: bool
    breaker: str  # "closed" | "open" | "half-open"
    latency_ms: float | None  # EWMA of successful calls and probes
    slot: int | None
    lag: int | None  # slots behind the best endpoint at the last health check
    requests: int
    failures: int
    rate_limited: int
    served: int  # calls this endpoint answered
    budget_used: int  # requests in the current 10 s window
    budget_limit: int
    method_budget_peak: float  # highest per-method utilisation (0–1) in the current window
    last_error: str | None
    refused: tuple[str, ...] = ()  # methods this endpoint refused (-32010, -32601): not failures
    errors: tuple[tuple[str, int], ...] = ()  # failures by kind (timeout, transport, too_large, ...), sorted
    slot_lead: int | None = None  # slots ahead of the others' consensus when that made it faulty

    @property
    def faulty(self) -> bool:
        """Caught with an implausible slot lead: it serves no call until a health check clears it."""
        return self.slot_lead is not None

    def as_status(self) -> RpcEndpointStatus:
        return RpcEndpointStatus(self.name, self.healthy, self.breaker, self.latency_ms, self.lag,
                                 self.requests, self.failures)


@dataclass(frozen=True, slots=True)
class _Failure:
    kind: str  # timeout | transport | http <code> | unhealthy | rpc error | bad response | refused
    message: str
    retry_after: float | None = None
    slots_behind: int | None = None


@dataclass(slots=True)
class _Missed:
    """An attempt (or a hedged pair) that gave no value: failures, and refusals of the method."""

    errors: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


class RpcAnswerTooLarge(httpx2.TransportError):
    """An RPC answer passed ``rpc.max_compressed_bytes`` on the wire or ``rpc.max_body_bytes`` decoded;
    reading stopped at the cap. A transport error to solana-py; :func:`classify` names it ``too_large``."""

    def __init__(self, which: str, limit: int, request: httpx2.Request) -> None:
        self.which = which
        self.limit = limit
        setting = "rpc.max_compressed_bytes" if which == "compressed" else "rpc.max_body_bytes"
        super().__init__(f"answer refused: {which} body larger than {describe_bytes(limit)} ({setting})",
                         request=request)


class _BoundedTransport(httpx2.AsyncBaseTransport):
    """Wraps httpx2's transport: the body is read chunk by chunk and inflated here under the caps,
    so no answer (an oversized one or a gzip bomb) is held or inflated past them."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, max_compressed: int, max_decoded: int) -> None:
        self._inner = inner
        self._max_compressed = max_compressed
        self._max_decoded = max_decoded

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        resp = await self._inner.handle_async_request(request)
        try:
            reader = BodyReader(resp.headers.get("content-encoding"), self._max_compressed, self._max_decoded)
            declared = resp.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self._max_compressed:
                raise BodyLimitExceeded("compressed", self._max_compressed)
            async for chunk in resp.aiter_raw():
                reader.feed(chunk)
            body = reader.finish()
        except BodyLimitExceeded as exc:
            raise RpcAnswerTooLarge(exc.which, exc.limit, request) from None
        except (UnsupportedEncoding, BadEncoding) as exc:
            raise httpx2.DecodingError(str(exc), request=request) from None
        finally:
            await resp.aclose()
        headers = [(k, v) for k, v in resp.headers.multi_items()
                   if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
        return httpx2.Response(resp.status_code, headers=headers, content=body, request=request,
                               extensions=resp.extensions)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _bound_session(client: AsyncClient, settings: RpcSettings) -> None:
    """Give ``client`` an httpx2 session whose every transport (proxies from the environment too)
    reads answers under the size caps and asks only for codings the reader decodes."""
    session = httpx2.AsyncClient(timeout=httpx2.Timeout(settings.timeout_s),
                                 headers={"Accept-Encoding": ACCEPT_ENCODING})
    caps = (settings.max_compressed_bytes, settings.max_body_bytes)
    session._transport = _BoundedTransport(session._transport, *caps)
    session._mounts = {k: None if v is None else _BoundedTransport(v, *caps) for k, v in session._mounts.items()}
    client._provider.session = session


class _AttemptFailed(Exception):
    def __init__(self, failure: _Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class _Endpoint:
    def __init__(self, url: str, name: str, index: int, settings: RpcSettings, clock: Clock) -> None:
        self.url = url
        self.name = name
        self.index = index
        self._settings = settings
        self._clock = clock
        self.client = AsyncClient(url, commitment=Confirmed, timeout=settings.timeout_s, max_transport_retries=0)
        _bound_session(self.client, settings)
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s, clock)
        self.budget = make_budget(f"rpc {name}", settings.requests_per_10s, _WINDOW_S, clock)
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
            b = make_budget(f"rpc {self.name} {method}", self._settings.method_requests_per_10s, _WINDOW_S,
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

    def state(self) -> EndpointState:
        b = self.budget.state()
        peak = max((mb.state().utilisation for mb in self.method_budgets.values()), default=0.0)
        return EndpointState(
            name=self.name, healthy=self.healthy, breaker=self.breaker.state.value, latency_ms=self.latency_ms,
            slot=self.slot, lag=self.lag, requests=self.requests, failures=self.failures,
            rate_limited=self.rate_limited, served=self.served, budget_used=b.used, budget_limit=b.limit,
            method_budget_peak=peak, last_error=self.last_error, refused=tuple(sorted(self.refused)),
            errors=tuple(sorted(self.errors.items())), slot_lead=self.slot_lead,
        )


def _now() -> float:
    """The running event loop's clock: monotonic time live, virtual time in the tests' loop, so
    latencies (and the ranking built on them) are deterministic where the loop's time is."""
    return asyncio.get_running_loop().time()


def _masked_names(urls: Sequence[str]) -> list[str]:
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


def classify(exc: BaseException) -> _Failure | None:
    """What went wrong, as a failover decision; ``None`` for errors of the request itself."""
    if isinstance(exc, TimeoutError):
        return _Failure("timeout", "timed out")
    if isinstance(exc, SolanaRpcException):
        cause = exc.__cause__
        if isinstance(cause, httpx2.HTTPStatusError):
            status = cause.response.status_code
            retry = _retry_after(cause.response.headers.get("retry-after"))
            return _Failure(f"http {status}", f"HTTP {status}", retry_after=retry)
        if isinstance(cause, httpx2.TimeoutException):
            return _Failure("timeout", f"timed out ({type(cause).__name__})")
        if isinstance(cause, RpcAnswerTooLarge):
            return _Failure("too_large", str(cause))
        return _Failure("transport", f"transport error ({type(cause).__name__ if cause else type(exc).__name__})")
    if isinstance(exc, RPCException):
        err = exc.args[0] if exc.args else None
        if isinstance(err, NodeUnhealthyMessage):
            return _Failure("unhealthy", f"-32005 {err.message}", slots_behind=err.data.num_slots_behind)
        if isinstance(err, InvalidParamsMessage):
            return None
        if isinstance(err, KeyExcludedFromSecondaryIndexMessage):
            return _Failure("refused", f"{KEY_EXCLUDED_FROM_SECONDARY_INDEX} {err.message}")
        if isinstance(err, MethodNotFoundMessage):
            return _Failure("refused", f"{METHOD_NOT_FOUND} {err.message}")
        return _Failure("rpc error", f"RPC error {getattr(err, 'message', err)}")
    if isinstance(exc, SolanaJsonRpcError):
        if exc.code == NODE_UNHEALTHY:
            behind = exc.data.get("numSlotsBehind") if isinstance(exc.data, dict) else None
            return _Failure("unhealthy", f"-32005 {exc.message}", slots_behind=behind)
        if exc.code == INVALID_PARAMS:
            return None
        if exc.code in REFUSAL_CODES:
            return _Failure("refused", f"{exc.code} {exc.message}")
        return _Failure("rpc error", f"RPC error {exc.code} {exc.message}")
    if isinstance(exc, RpcAnswerTooLarge):
        return _Failure("too_large", str(exc))
    if isinstance(exc, httpx2.HTTPError):
        return _Failure("transport", f"transport error ({type(exc).__name__})")
    return _Failure("bad response", f"unreadable answer ({type(exc).__name__}: {exc})")


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _request_error_text(exc: BaseException) -> str:
    if isinstance(exc, RPCException) and exc.args:
        return str(getattr(exc.args[0], "message", exc.args[0]))
    if isinstance(exc, SolanaJsonRpcError):
        return exc.message
    return str(exc)


class RpcPool:
    """Failover pool; use ``async with RpcPool(...) as pool`` or call :meth:`close`."""

    def __init__(self, endpoints: Sequence[str], settings: RpcSettings, clock: Clock | None = None) -> None:
        if not endpoints:
            raise ConfigError(
                "rpc.endpoints: no Solana RPC endpoint configured (set rpc.endpoints or DEXSCAN_RPC_URLS)")
        self._settings = settings
        self._clock = clock or RealClock()
        names = _masked_names(endpoints)
        self._eps = [_Endpoint(url, name, i, settings, self._clock)
                     for i, (url, name) in enumerate(zip(endpoints, names, strict=True))]
        self._health_task: asyncio.Task[None] | None = None
        self.last_endpoint: str | None = None
        #: An endpoint's error text may echo its URL and key: every one kept or logged is masked.
        self._secrets = [part for url in endpoints for part in url_secret_parts(url)]

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> RpcPool:
        """Endpoints from ``settings.rpc_endpoints()``: secret ``DEXSCAN_RPC_URLS`` first, then the file's."""
        return cls(settings.rpc_endpoints(), settings.rpc, clock)

    async def __aenter__(self) -> RpcPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
            await asyncio.gather(self._health_task, return_exceptions=True)
            self._health_task = None
        for ep in self._eps:
            await ep.client.close()

    # -- state -----------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return [ep.name for ep in self._eps]

    def state(self) -> list[EndpointState]:
        return [ep.state() for ep in self._eps]

    def refusals(self) -> dict[str, dict[str, str]]:
        """Endpoint (masked) -> method -> its last refusal, for every endpoint that refused a method."""
        return {ep.name: dict(ep.refused) for ep in self._eps if ep.refused}

    # -- health ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Run :meth:`run_health_checks` in the background until :meth:`close`."""
        if self._health_task is None:
            self._health_task = asyncio.create_task(self.run_health_checks(), name="rpc-health")

    async def run_health_checks(self) -> None:
        """Probe every ``rpc.health_interval_s`` until cancelled; a failed round never ends the loop."""
        while True:
            try:
                await self.check_health()
            except Exception:
                log.exception("RPC health check round failed; retrying next interval")
            await self._clock.sleep(self._settings.health_interval_s)

    async def check_health(self) -> list[EndpointState]:
        """Probe every endpoint (``getHealth`` + ``getSlot``), mark an implausible slot lead as a fault,
        then judge slot lag against the best slot of the endpoints that are not faulty."""
        await asyncio.gather(*(self._probe(ep) for ep in self._eps))
        reporting = [ep for ep in self._eps if ep.slot is not None and ep.unhealthy_reason != "unreachable"]
        vouching = [ep.slot for ep in reporting if ep.healthy and ep.slot is not None] or [
            ep.slot for ep in reporting if ep.slot is not None]
        consensus = consensus_slot(vouching)
        for ep in reporting:  # an endpoint that did not answer keeps its verdict until it tells a slot again
            self._judge_lead(ep, None if consensus is None or ep.slot is None else ep.slot - consensus)
        best = max((ep.slot for ep in reporting if ep.slot is not None and ep.slot_lead is None), default=None)
        for ep in reporting:
            if ep.slot is None or best is None or ep.slot_lead is not None:
                continue
            ep.lag = best - ep.slot
            if ep.unhealthy_reason is None and ep.lag > self._settings.max_slot_lag:
                ep.mark_unhealthy(f"{ep.lag} slots behind")
        return self.state()

    def _judge_lead(self, ep: _Endpoint, lead: int | None) -> None:
        """Mark (count, log once) or clear a slot lead beyond ``rpc.max_slot_lead``."""
        if lead is not None and lead > self._settings.max_slot_lead:
            if ep.slot_lead is None:
                log.warning("rpc %s reports slot %d, %d slots ahead of the other endpoints (more than "
                            "rpc.max_slot_lead = %d): treated as faulty, not used until its slot is plausible",
                            ep.name, ep.slot, lead, self._settings.max_slot_lead)
            ep.slot_lead = lead
            ep.lag = None
            ep.errors["slot_lead"] += 1
            ep.mark_unhealthy(f"slot {lead} ahead of the others")
            return
        if ep.slot_lead is not None:
            log.info("rpc %s: slot no longer ahead of the other endpoints; used again", ep.name)
            ep.slot_lead = None
            if ep.unhealthy_reason is not None and ep.unhealthy_reason.endswith("ahead of the others"):
                ep.mark_healthy()

    def _mask(self, text: str) -> str:
        return mask_text(text, self._secrets)

    def _classify(self, exc: BaseException) -> _Failure | None:
        """:func:`classify`, its text masked."""
        failure = classify(exc)
        return None if failure is None else replace(failure, message=self._mask(failure.message))

    async def _probe(self, ep: _Endpoint) -> None:
        try:
            await ep.spend("getHealth")
            started = _now()
            async with asyncio.timeout(self._settings.timeout_s):
                health = await ep.client.send_rpc_request(JsonRpcRequest(method="getHealth"), str)
            ep.observe_latency((_now() - started) * 1000)
            await ep.spend("getSlot")
            async with asyncio.timeout(self._settings.timeout_s):
                slot = (await ep.client.get_slot()).value
        except Exception as exc:
            failure = self._classify(exc) or _Failure("rpc error", self._mask(_request_error_text(exc)))
            ep.last_error = failure.message
            if failure.kind == "unhealthy":
                ep.mark_unhealthy("node unhealthy")
                ep.lag = failure.slots_behind
                await self._slot_of_unhealthy(ep)
                return
            ep.failures += 1
            ep.errors[failure.kind] += 1
            ep.breaker.record_failure()
            ep.mark_unhealthy("unreachable")
            ep.slot = None
            ep.lag = None
            return
        ep.slot = slot
        if health == "ok":
            ep.mark_healthy()
        else:
            ep.mark_unhealthy(f"getHealth answered {health!r}")
        if ep.breaker.state is BreakerState.HALF_OPEN:
            ep.breaker.record_success()

    async def _slot_of_unhealthy(self, ep: _Endpoint) -> None:
        """A node that says it is behind may still tell its slot; it makes the lag visible."""
        try:
            await ep.spend("getSlot")
            async with asyncio.timeout(self._settings.timeout_s):
                ep.slot = (await ep.client.get_slot()).value
        except Exception:
            ep.slot = None

    # -- calls -----------------------------------------------------------------------------------

    def _ranked(self, method: str, exclude: set[int]) -> list[_Endpoint]:
        usable = [ep for ep in self._eps if ep.index not in exclude and ep.slot_lead is None
                  and ep.breaker.state is not BreakerState.OPEN]
        healthy = [ep for ep in usable if ep.healthy]
        with_room = [ep for ep in healthy if ep.has_room(method)]
        without_room = [ep for ep in healthy if not ep.has_room(method)]
        unhealthy = [ep for ep in usable if not ep.healthy]
        ranked = [*self._by_speed(with_room), *self._by_speed(without_room), *unhealthy]
        return [*(ep for ep in ranked if method not in ep.refused), *(ep for ep in ranked if method in ep.refused)]

    @staticmethod
    def _by_speed(eps: list[_Endpoint]) -> list[_Endpoint]:
        known = [ep.latency_ms for ep in eps if ep.latency_ms is not None]
        if not known:
            return eps
        limit = min(known) * _FAST_RATIO + _FAST_SLACK_MS
        fast = [ep for ep in eps if ep.latency_ms is None or ep.latency_ms <= limit]
        slow = sorted((ep for ep in eps if ep not in fast), key=lambda ep: ep.latency_ms or 0.0)
        return [*fast, *slow]

    def _pick(self, method: str, exclude: set[int], count: int) -> list[_Endpoint]:
        picked: list[_Endpoint] = []
        for ep in self._ranked(method, exclude):
            if len(picked) == count:
                break
            if picked and ep.breaker.state is not BreakerState.CLOSED:
                continue  # a hedge partner must never hold a half-open trial it may have cancelled
            if ep.breaker.allow():
                picked.append(ep)
        return picked

    async def call(self, method: str, fn: Callable[[AsyncClient], Awaitable[T]],
                   exclude: Collection[str] = ()) -> Served[T]:
        """``fn(client)`` on the best endpoint not named in ``exclude``, failing over until one answers.

        Raises :class:`RpcRequestError` when the request itself is invalid, and
        :class:`~dexscan.errors.RpcUnavailable` when every endpoint failed or none may be tried.
        """
        started = _now()
        tried: set[int] = {ep.index for ep in self._eps if ep.name in exclude}
        errors: list[str] = []
        refused: dict[str, str] = {}
        attempts = 0
        while True:
            hedge = 2 if self._settings.hedged_reads and not tried else 1
            eps = self._pick(method, tried, hedge)
            if not eps:
                if refused and not errors:
                    raise RpcMethodRefused(method, refused)
                faulty = [f"{ep.name}: not used ({ep.unhealthy_reason})" for ep in self._eps
                          if ep.index not in tried and ep.slot_lead is not None]
                detail = "; ".join([*errors, *(f"{n}: refused ({m})" for n, m in refused.items()), *faulty]
                                   ) or "every endpoint's circuit breaker is open"
                raise RpcUnavailable(f"no RPC endpoint could serve {method}: {detail}")
            tried.update(ep.index for ep in eps)
            attempts += len(eps)
            result = await (self._hedged(method, fn, eps) if len(eps) > 1 else self._attempt(eps[0], method, fn))
            if isinstance(result, _Missed):
                errors.extend(result.errors)
                refused.update(result.refused)
                continue
            ep, value = result
            self.last_endpoint = ep.name
            return Served(value, ep.name, (_now() - started) * 1000, attempts)

    async def _attempt(self, ep: _Endpoint, method: str,
                       fn: Callable[[AsyncClient], Awaitable[T]]) -> tuple[_Endpoint, T] | _Missed:
        await ep.spend(method)
        started = _now()
        try:
            async with asyncio.timeout(self._settings.timeout_s):
                value = await fn(ep.client)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure = self._classify(exc)
            if failure is None:
                ep.breaker.record_success()
                reason = self._mask(_request_error_text(exc))
                raise RpcRequestError(f"{method} refused by {ep.name}: {reason}") from None
            if failure.kind == "refused":
                ep.breaker.record_success()  # the node is up and answered: it does not serve this method
                ep.refused[method] = failure.message
                ep.refusals[method] += 1
                log.debug("rpc %s refused by %s (%s)", method, ep.name, failure.message)
                return _Missed(refused={ep.name: failure.message})
            self._record_failure(ep, failure)
            log.info("rpc %s on %s failed (%s); trying the next endpoint", method, ep.name, failure.message)
            return _Missed(errors=[f"{ep.name}: {failure.message}"])
        ep.observe_latency((_now() - started) * 1000)
        ep.breaker.record_success()
        ep.served += 1
        if ep.unhealthy_reason in ("node unhealthy", "unreachable"):
            ep.mark_healthy()  # it just answered; a slot-lag verdict waits for the next health check
        return ep, value

    async def _hedged(self, method: str, fn: Callable[[AsyncClient], Awaitable[T]],
                      eps: list[_Endpoint]) -> tuple[_Endpoint, T] | _Missed:
        pending = {asyncio.create_task(self._attempt(ep, method, fn)) for ep in eps}
        missed = _Missed()
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    result = task.result()
                    if isinstance(result, _Missed):
                        missed.errors.extend(result.errors)
                        missed.refused.update(result.refused)
                    else:
                        return result
            return missed
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _record_failure(self, ep: _Endpoint, failure: _Failure) -> None:
        ep.failures += 1
        ep.errors[failure.kind] += 1
        ep.last_error = failure.message
        ep.breaker.record_failure()
        if failure.kind == "http 429":
            ep.rate_limited += 1
            ep.budget.penalise(failure.retry_after if failure.retry_after is not None else _WINDOW_S)
        elif failure.kind == "unhealthy":
            ep.mark_unhealthy("node unhealthy")
            if failure.slots_behind is not None:
                ep.lag = failure.slots_behind

    # -- typed reads -----------------------------------------------------------------------------

    async def get_multiple_accounts(self, pubkeys: Sequence[Pubkey], exclude: Collection[str] = ()
                                    ) -> Served[tuple[int, list[Account | None]]]:
        """Raw (base64) accounts in request order, ``None`` where none exists; at most 100 keys.
        ``exclude``: endpoint names not to ask (a second opinion must come from another endpoint)."""
        if len(pubkeys) > MAX_MULTIPLE_ACCOUNTS:
            raise ValueError(f"getMultipleAccounts takes at most {MAX_MULTIPLE_ACCOUNTS} keys, got {len(pubkeys)}")
        keys = list(pubkeys)

        async def fn(client: AsyncClient) -> tuple[int, list[Account | None]]:
            body = client._get_multiple_accounts_body(keys, None, "base64", None)
            return decode_multiple_accounts(await client._provider.make_request_unparsed(body))

        return await self.call("getMultipleAccounts", fn, exclude)

    async def get_token_largest_accounts(self, mint: Pubkey) -> Served[list[tuple[str, int]]]:
        """The (up to 20) largest token accounts of ``mint`` as (token account, raw amount)."""

        async def fn(client: AsyncClient) -> list[tuple[str, int]]:
            body = client._get_token_largest_accounts_body(mint, None)
            return decode_largest_accounts(await client._provider.make_request_unparsed(body))

        return await self.call("getTokenLargestAccounts", fn)

    async def get_slot(self) -> Served[int]:
        async def fn(client: AsyncClient) -> int:
            return (await client.get_slot()).value

        return await self.call("getSlot", fn)

    def note_disagreement(self, first: str, second: str, mints: int, example: str) -> None:
        """Two endpoints gave different safety facts for ``mints`` mints: count it on both, log it once."""
        for ep in self._eps:
            if ep.name in (first, second):
                ep.errors["disagreement"] += mints
        log.warning("rpc %s and %s disagree on %d mint%s (%s); %s unverified until they agree",
                    first, second, mints, "" if mints == 1 else "s", example, "it stays" if mints == 1 else "they stay")

    async def get_signatures_for_address(self, address: Pubkey, until: str | None = None,
                                         limit: int = 100) -> Served[list[tuple[str, bool]]]:
        """``(signature, failed)`` of the confirmed transactions mentioning ``address``, newest first,
        back to ``until`` (excluded), at most ``limit`` (1,000 at most)."""
        from solana.rpc.commitment import Confirmed
        from solders.signature import Signature

        stop = Signature.from_string(until) if until is not None else None

        async def fn(client: AsyncClient) -> list[tuple[str, bool]]:
            body = client._get_signatures_for_address_body(address, None, stop, min(limit, 1000), Confirmed)
            return decode_signatures(await client._provider.make_request_unparsed(body))

        return await self.call("getSignaturesForAddress", fn)

    async def get_transaction(self, signature: str) -> Served[Mapping[str, Any] | None]:
        """A confirmed transaction (json encoding, up to version 0) as its JSON ``result``; None if unknown."""
        from solana.rpc.commitment import Confirmed
        from solders.signature import Signature

        sig = Signature.from_string(signature)

        async def fn(client: AsyncClient) -> Mapping[str, Any] | None:
            body = client._get_transaction_body(sig, "json", Confirmed, 0)
            return decode_transaction_answer(await client._provider.make_request_unparsed(body))

        return await self.call("getTransaction", fn)


def consensus_slot(slots: Sequence[int]) -> int | None:
    """The slot the endpoints agree on: the lower median, so one endpoint far ahead (or, of two, the
    one ahead) never sets it."""
    return statistics.median_low(slots) if slots else None


def describe(states: Sequence[EndpointState]) -> list[dict[str, Any]]:
    """Endpoint states as plain dicts (for ``--json`` output and logs)."""
    return [
        {"name": s.name, "healthy": s.healthy, "breaker": s.breaker,
         "latency_ms": None if s.latency_ms is None else round(s.latency_ms, 1), "slot": s.slot, "lag": s.lag,
         "requests": s.requests, "failures": s.failures, "rate_limited": s.rate_limited, "served": s.served,
         "budget_used": s.budget_used, "budget_limit": s.budget_limit, "refused": list(s.refused),
         "slot_lead": s.slot_lead, "errors": dict(s.errors)}
        for s in states
    ]
