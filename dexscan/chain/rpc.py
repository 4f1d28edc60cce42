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

This module is the pool (ranking, failover, hedging, health rounds, typed reads); one endpoint (client
under the size caps, budgets, breaker, latency) is :mod:`dexscan.chain.endpoint`, and what a failure
means (fail over, refusal, bad request; a 429's ``Retry-After`` read by sources.transport's parser) is
:mod:`dexscan.chain.rpc_failures`.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.jsonrpc import JsonRpcRequest
from solders.account import Account
from solders.pubkey import Pubkey

from dexscan.breaker import BreakerState
from dexscan.chain.answers import (
    SignatureRow,
    decode_largest_accounts,
    decode_multiple_accounts,
    decode_signatures,
    decode_transaction_answer,
)
from dexscan.chain.endpoint import WINDOW_S, Endpoint, masked_names
from dexscan.chain.rpc_failures import Failure, classify, request_error_text
from dexscan.clock import Clock, RealClock
from dexscan.config import RpcSettings, Settings, mask_text, url_secret_parts
from dexscan.errors import ConfigError, RpcError, RpcUnavailable
from dexscan.status import RpcEndpointStatus

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Most keys one ``getMultipleAccounts`` accepts (the RPC answers -32602 above it).
MAX_MULTIPLE_ACCOUNTS = 100
_FAST_RATIO = 1.5
_FAST_SLACK_MS = 20.0


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



@dataclass(slots=True)
class _Missed:
    """An attempt (or a hedged pair) that gave no value: failures, and refusals of the method."""

    errors: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def _now() -> float:
    """The running event loop's clock: monotonic time live, virtual time in the tests' loop, so
    latencies (and the ranking built on them) are deterministic where the loop's time is."""
    return asyncio.get_running_loop().time()


class RpcPool:
    """Failover pool; use ``async with RpcPool(...) as pool`` or call :meth:`close`."""

    def __init__(self, endpoints: Sequence[str], settings: RpcSettings, clock: Clock | None = None) -> None:
        if not endpoints:
            raise ConfigError(
                "rpc.endpoints: no Solana RPC endpoint configured (set rpc.endpoints or DEXSCAN_RPC_URLS)")
        self._settings = settings
        self._clock = clock or RealClock()
        names = masked_names(endpoints)
        self._eps = [Endpoint(url, name, i, settings, self._clock)
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
        return [self._state_of(ep) for ep in self._eps]

    @staticmethod
    def _state_of(ep: Endpoint) -> EndpointState:
        b = ep.budget.state()
        peak = max((mb.state().utilisation for mb in ep.method_budgets.values()), default=0.0)
        return EndpointState(
            name=ep.name, healthy=ep.healthy, breaker=ep.breaker.state.value, latency_ms=ep.latency_ms,
            slot=ep.slot, lag=ep.lag, requests=ep.requests, failures=ep.failures,
            rate_limited=ep.rate_limited, served=ep.served, budget_used=b.used, budget_limit=b.limit,
            method_budget_peak=peak, last_error=ep.last_error, refused=tuple(sorted(ep.refused)),
            errors=tuple(sorted(ep.errors.items())), slot_lead=ep.slot_lead,
        )


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

    def _judge_lead(self, ep: Endpoint, lead: int | None) -> None:
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

    def _classify(self, exc: BaseException) -> Failure | None:
        """:func:`classify`, its text masked."""
        failure = classify(exc, self._clock.now())
        return None if failure is None else replace(failure, message=self._mask(failure.message))

    async def _probe(self, ep: Endpoint) -> None:
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
            failure = self._classify(exc) or Failure("rpc error", self._mask(request_error_text(exc)))
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

    async def _slot_of_unhealthy(self, ep: Endpoint) -> None:
        """A node that says it is behind may still tell its slot; it makes the lag visible."""
        try:
            await ep.spend("getSlot")
            async with asyncio.timeout(self._settings.timeout_s):
                ep.slot = (await ep.client.get_slot()).value
        except Exception:
            ep.slot = None

    # -- calls -----------------------------------------------------------------------------------

    def _ranked(self, method: str, exclude: set[int]) -> list[Endpoint]:
        usable = [ep for ep in self._eps if ep.index not in exclude and ep.slot_lead is None
                  and ep.breaker.state is not BreakerState.OPEN]
        healthy = [ep for ep in usable if ep.healthy]
        with_room = [ep for ep in healthy if ep.has_room(method)]
        without_room = [ep for ep in healthy if not ep.has_room(method)]
        unhealthy = [ep for ep in usable if not ep.healthy]
        ranked = [*self._by_speed(with_room), *self._by_speed(without_room), *unhealthy]
        return [*(ep for ep in ranked if method not in ep.refused), *(ep for ep in ranked if method in ep.refused)]

    @staticmethod
    def _by_speed(eps: list[Endpoint]) -> list[Endpoint]:
        known = [ep.latency_ms for ep in eps if ep.latency_ms is not None]
        if not known:
            return eps
        limit = min(known) * _FAST_RATIO + _FAST_SLACK_MS
        fast = [ep for ep in eps if ep.latency_ms is None or ep.latency_ms <= limit]
        slow = sorted((ep for ep in eps if ep not in fast), key=lambda ep: ep.latency_ms or 0.0)
        return [*fast, *slow]

    def _pick(self, method: str, exclude: set[int], count: int) -> list[Endpoint]:
        picked: list[Endpoint] = []
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

    async def _attempt(self, ep: Endpoint, method: str,
                       fn: Callable[[AsyncClient], Awaitable[T]]) -> tuple[Endpoint, T] | _Missed:
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
                reason = self._mask(request_error_text(exc))
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
                      eps: list[Endpoint]) -> tuple[Endpoint, T] | _Missed:
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

    def _record_failure(self, ep: Endpoint, failure: Failure) -> None:
        ep.failures += 1
        ep.errors[failure.kind] += 1
        ep.last_error = failure.message
        ep.breaker.record_failure()
        if failure.kind == "http 429":
            ep.rate_limited += 1
            ep.budget.penalise(failure.retry_after if failure.retry_after is not None else WINDOW_S)
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

    async def get_signatures_for_address(self, address: Pubkey, until: str | None = None, limit: int = 100,
                                         before: str | None = None) -> Served[list[SignatureRow]]:
        """The confirmed transactions mentioning ``address`` (signature, failed, block time), newest
        first: older than ``before`` (excluded; default the newest), back to ``until`` (excluded), at
        most ``limit`` (1,000 at most)."""
        from solders.signature import Signature

        stop = Signature.from_string(until) if until is not None else None
        start = Signature.from_string(before) if before is not None else None

        async def fn(client: AsyncClient) -> list[SignatureRow]:
            body = client._get_signatures_for_address_body(address, start, stop, min(limit, 1000), Confirmed)
            return decode_signatures(await client._provider.make_request_unparsed(body))

        return await self.call("getSignaturesForAddress", fn)

    async def get_transaction(self, signature: str) -> Served[Mapping[str, Any] | None]:
        """A confirmed transaction (json encoding, up to version 0) as its JSON ``result``; None if unknown."""
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
