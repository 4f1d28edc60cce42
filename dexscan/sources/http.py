"""The one HTTP layer every market-data client goes through.

Budgets, retries, the circuit breaker, typed errors and the counters live here and nowhere else,
so that the four provider clients are only URL building and parsing, and so that the dashboard,
``dexscan doctor`` and the Prometheus metrics all read the same numbers.

Order of events for one request: the provider's circuit breaker is asked first (an open breaker
fails fast, without spending budget), then the named budget is awaited (budgets are the plan, a 429
is a fault in the plan), then the request goes out. 429, 5xx, timeouts and connection errors are
retried by tenacity with exponential backoff and full jitter; a ``Retry-After`` header or Jupiter's
``x-ratelimit-reset`` replaces the backoff and also pauses the whole bucket, so concurrent callers
stop too. Every wait goes through the injected :class:`~dexscan.clock.Clock`, so tests and the demo
spend simulated time.

Errors name the provider and the *path template* (``/tokens/v1/solana/{mints}``), never a URL:
URLs can carry keys, and templates aggregate well in metrics. API keys travel in headers only, and
never leave their host: redirects are followed here, not by aiohttp (which would resend a custom
``X-API-KEY`` header anywhere), and only within the same origin (scheme, host and port); a redirect
to another origin is :class:`RedirectRefused`, counted as ``redirect``, with the key unsent. A
provider's error text (which may echo a key) is masked with :func:`~dexscan.config.mask_text`.

Real answers that are not the API's (``reference/external-apis.md`` §3.1, INFERRED there): a
Cloudflare block page (HTTP 403, HTML, "Error 1020 Access denied") is :class:`CloudflareBlocked`, a
:class:`~dexscan.errors.SourceUnavailable` naming Cloudflare, counted as ``blocked`` and by the
breaker; DexScreener's 429 may be a Cloudflare HTML page too (a rate limit like any other).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote, urljoin

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from dexscan.breaker import BreakerState, CircuitBreaker
from dexscan.budget import Budget, BudgetState
from dexscan.clock import Clock, RealClock
from dexscan.config import Settings, mask_text, mask_url, url_origin
from dexscan.errors import BadPayload, RateLimited, SourceUnavailable
from dexscan.sources.bounded import (
    ACCEPT_ENCODING,
    BadEncoding,
    BodyLimitExceeded,
    BodyReader,
    UnsupportedEncoding,
    describe_bytes,
)
from dexscan.sources.parse import ParseContext, valid_addresses
from dexscan.sources.transport import describe_client_error, one_send_per_attempt, retry_after_s

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The bucket a provider with a single budget uses.
DEFAULT_BUCKET = "default"

#: Same-origin redirects followed for one request (aiohttp's own default is 10).
MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_LATENCY_SAMPLES = 256
_EWMA_ALPHA = 0.2
_BODY_SNIPPET = 60

ParamValue = str | int | float | bool


class CircuitOpen(SourceUnavailable):
    """The provider's breaker is open: the call was not sent. ``retry_in`` seconds until a trial."""

    def __init__(self, provider: str, endpoint: str, retry_in: float) -> None:
        self.retry_in = retry_in
        super().__init__(provider, endpoint, f"circuit open, retrying in {retry_in:.0f}s")


class HttpStatusError(SourceUnavailable):
    """A 4xx other than 429: retrying cannot help (bad request, bad key, plan, unknown path)."""

    def __init__(self, provider: str, endpoint: str, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(provider, endpoint, self.describe(status, detail))

    @staticmethod
    def describe(status: int, detail: str) -> str:
        """The message after ``provider endpoint:``: the status, the provider's own words, a hint."""
        return f"HTTP {status}{': ' + detail if detail else ''}{_hint(status)}"


class CloudflareBlocked(HttpStatusError):
    """Cloudflare's block page instead of the API's answer (HTTP 403, "Error 1020 Access denied"): the
    provider's firewall refuses this IP or client. Not a payload to parse and not worth a retry now."""

    @staticmethod
    def describe(status: int, detail: str) -> str:
        return (f"HTTP {status}: blocked by Cloudflare ({detail}); the provider's firewall refuses this IP or "
                "client: wait, or use another network or proxy")


class RedirectRefused(SourceUnavailable):
    """A redirect not followed: to another origin (scheme, host or port), so that the request's key
    never reaches that host, or one hop too many. Counted as ``redirect``; not retried (it would
    redirect again)."""

    def __init__(self, provider: str, endpoint: str, status: int, message: str) -> None:
        self.status = status
        super().__init__(provider, endpoint, f"HTTP {status} {message}")

    @classmethod
    def cross_origin(cls, provider: str, endpoint: str, status: int, target: str) -> RedirectRefused:
        """``target`` is shown: pass it masked."""
        return cls(provider, endpoint, status,
                   f"redirect to another host ({target}), not followed so that no key leaves the provider's "
                   f"host; if {provider} moved, set sources.{provider}.base_url to the new address")


class ResponseTooLarge(SourceUnavailable):
    """The answer passed a size cap (``http.max_compressed_bytes`` on the wire or ``http.max_body_bytes``
    decompressed); reading stopped there. Counted as ``too_large``; not retried (it would be as big again)."""

    def __init__(self, provider: str, endpoint: str, which: str, limit: int, setting: str) -> None:
        self.which = which
        self.limit = limit
        super().__init__(provider, endpoint,
                         f"answer refused: {which} body larger than {describe_bytes(limit)} ({setting})")


def _cloudflare_block(status: int, body: bytes) -> str | None:
    """``"error 1020: Access denied"`` when ``body`` is a Cloudflare block page answered with 403."""
    if status != 403 or b"cloudflare" not in body[:4096].lower():
        return None
    text = body[:4096].decode("utf-8", "replace")
    code = re.search(r"Error(?:\s|<[^>]{0,40}>)+(\d{4})", text)
    what = re.search(r"<h2[^>]*>([^<]{1,80})</h2>", text)
    parts = [f"error {code.group(1)}" if code else "block page", *([what.group(1).strip()] if what else [])]
    return ": ".join(parts)


def _hint(status: int) -> str:
    if status == 401:
        return " (check the API key in the environment)"
    if status == 403:
        return " (the key or plan has no access to this endpoint, or the IP is blocked)"
    if status == 404:
        return " (unknown path, pool or token)"
    return ""


@dataclass(frozen=True, slots=True)
class ProviderStats:
    """A snapshot of one provider's counters (for the dashboard, doctor and /metrics)."""

    provider: str
    base_url: str  # masked
    requests: int  # HTTP requests actually sent (retries included)
    ok: int  # 2xx answers with a valid JSON body
    rate_limited: int  # 429 answers
    retries: int  # attempts that were retried after a failure
    # failures by kind: timeout, connection, http_5xx, http_4xx, not_json, too_large, redirect, circuit_open
    errors: Mapping[str, int]
    bad_records: Mapping[str, int]  # records skipped, by field
    latency_ewma_ms: float | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    budgets: tuple[BudgetState, ...]
    breaker: str  # closed | open | half-open
    breaker_retry_in_s: float
    breaker_opened: int  # how many times the breaker opened
    last_error: str | None
    last_ok_at: float | None  # clock time of the last good answer
    remote_remaining: int | None  # what the provider says is left (Jupiter x-ratelimit-remaining)
    cancelled: int = 0  # requests abandoned before an answer because their task was cancelled (shutdown)

    @property
    def error_total(self) -> int:
        return sum(self.errors.values())


class _Provider:
    """Mutable per-provider state; only :class:`HttpLayer` touches it."""

    def __init__(self, name: str, base_url: str, budgets: dict[str, Budget], breaker: CircuitBreaker,
                 headers: Mapping[str, str]) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.budgets = budgets
        self.breaker = breaker
        self.headers = dict(headers)
        self.requests = 0
        self.ok = 0
        self.cancelled = 0
        self.rate_limited = 0
        self.retries = 0
        self.errors: Counter[str] = Counter()
        self.bad_records: Counter[str] = Counter()
        self.latencies: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        self.ewma_ms: float | None = None
        self.last_error: str | None = None
        self.last_ok_at: float | None = None
        self.remote_remaining: int | None = None

    def record_latency(self, ms: float) -> None:
        self.latencies.append(ms)
        self.ewma_ms = ms if self.ewma_ms is None else self.ewma_ms + _EWMA_ALPHA * (ms - self.ewma_ms)

    def snapshot(self) -> ProviderStats:
        lat = sorted(self.latencies)
        return ProviderStats(
            provider=self.name,
            base_url=mask_url(self.base_url),
            requests=self.requests,
            cancelled=self.cancelled,
            ok=self.ok,
            rate_limited=self.rate_limited,
            retries=self.retries,
            errors=dict(self.errors),
            bad_records=dict(self.bad_records),
            latency_ewma_ms=self.ewma_ms,
            latency_p50_ms=_percentile(lat, 0.50),
            latency_p99_ms=_percentile(lat, 0.99),
            budgets=tuple(b.state() for b in self.budgets.values()),
            breaker=str(self.breaker.state),
            breaker_retry_in_s=self.breaker.seconds_until_retry(),
            breaker_opened=self.breaker.times_opened,
            last_error=self.last_error,
            last_ok_at=self.last_ok_at,
            remote_remaining=self.remote_remaining,
        )


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[round(q * (len(sorted_values) - 1))]


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """What a source client declares about its provider (``JupiterClient.provider(settings)`` ...):
    its name, base URL, budgets (bucket -> requests per window in seconds) and headers sent on
    every call. :class:`HttpLayer` registers one per source of :func:`dexscan.sources.provider_specs`."""

    name: str
    base_url: str
    budgets: Mapping[str, tuple[float, float]]
    headers: Mapping[str, str] = field(default_factory=dict)


def make_budget(name: str, requests: float, window_s: float, clock: Clock) -> Budget:
    """A budget of ``requests`` per ``window_s``; fewer than one request widens the window instead.

    The provider stamps a request when it *arrives*, we when we send it; the safety margin (1% of
    the window, at least 50 ms) absorbs that much jitter in network latency for <1% of throughput.
    """
    if requests < 1:
        requests, window_s = 1, window_s / requests
    return Budget(name, int(requests), window_s, clock, margin_s=max(0.05, 0.01 * window_s))


class HttpLayer:
    """One aiohttp session, per-provider budgets, retries, breakers and counters.

    Use as ``async with HttpLayer(settings, clock) as http: ...`` (or call :meth:`close`).
    """

    def __init__(self, settings: Settings, clock: Clock | None = None, *, rng: random.Random | None = None,
                 providers: Sequence[ProviderSpec] | None = None) -> None:
        """``providers``: what each source declares; by default every source of
        :func:`dexscan.sources.provider_specs` (the package that holds this module and the clients)."""
        self.settings = settings
        self.clock: Clock = clock or RealClock()
        self._http = settings.http
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None
        self._providers: dict[str, _Provider] = {}
        self._secrets = settings.secret_values()
        if providers is None:
            from dexscan.sources import provider_specs  # the package imports this module first

            providers = provider_specs(settings)
        for spec in providers:
            self.register(spec)

    # -- set-up -----------------------------------------------------------------------------

    def register(self, spec: ProviderSpec) -> None:
        """Add a provider: its base URL, its named budgets (``name`` for the default bucket,
        ``name.bucket`` for others) and the headers sent on every call."""
        if not spec.budgets:
            raise ValueError(f"provider {spec.name} needs at least one budget")
        budgets = {bucket: make_budget(spec.name if bucket == DEFAULT_BUCKET else f"{spec.name}.{bucket}",
                                       requests, window_s, self.clock)
                   for bucket, (requests, window_s) in spec.budgets.items()}
        breaker = CircuitBreaker(self._http.breaker_failures, self._http.breaker_cooldown_s, self.clock)
        self._providers[spec.name] = _Provider(spec.name, str(spec.base_url), budgets, breaker, spec.headers)

    async def __aenter__(self) -> HttpLayer:
        self._ensure_session()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": self._http.user_agent, "Accept": "application/json",
                         "Accept-Encoding": ACCEPT_ENCODING},
                timeout=aiohttp.ClientTimeout(total=self._http.timeout_s),
                # Bodies are inflated by _read_body, chunk by chunk under the size caps, never by aiohttp.
                auto_decompress=False,
                middlewares=(one_send_per_attempt,),
            )
        return self._session

    # -- reading state ----------------------------------------------------------------------

    def stats(self) -> dict[str, ProviderStats]:
        return {name: p.snapshot() for name, p in self._providers.items()}

    def base_url(self, provider: str) -> str:
        return self._provider(provider).base_url

    def budget(self, provider: str, bucket: str = DEFAULT_BUCKET) -> Budget:
        return self._bucket(self._provider(provider), bucket)

    def breaker(self, provider: str) -> CircuitBreaker:
        return self._provider(provider).breaker

    def count_bad_record(self, provider: str, endpoint: str, field: str) -> None:
        """Count one record skipped because ``field`` broke the contract (the caller logs it)."""
        del endpoint  # part of the signature so callers state it; counters aggregate by field
        self._provider(provider).bad_records[field] += 1

    def _provider(self, provider: str) -> _Provider:
        try:
            return self._providers[provider]
        except KeyError:
            raise ValueError(f"unknown provider {provider!r}; registered: {', '.join(self._providers)}") from None

    @staticmethod
    def _bucket(p: _Provider, bucket: str | None) -> Budget:
        if bucket is None:
            return next(iter(p.budgets.values()))
        try:
            return p.budgets[bucket]
        except KeyError:
            raise ValueError(f"{p.name} has no budget {bucket!r}; it has {', '.join(p.budgets)}") from None

    # -- the one request method -------------------------------------------------------------

    async def get_json(
        self,
        provider: str,
        bucket: str | None,
        path_template: str,
        path_args: Mapping[str, str] | None = None,
        *,
        url: str | None = None,
        params: Mapping[str, ParamValue] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """GET ``base_url + path_template.format(**path_args)`` (or ``url``) and return parsed JSON.

        Raises :class:`RateLimited`, :class:`SourceUnavailable` (incl. :class:`CircuitOpen` and
        :class:`HttpStatusError`) or :class:`BadPayload`, each naming provider and template.
        """
        p = self._provider(provider)
        budget = self._bucket(p, bucket)
        endpoint = path_template
        if url is None:
            args = {k: quote(str(v), safe=",") for k, v in (path_args or {}).items()}
            url = p.base_url + path_template.format(**args)
        query = {k: _param(v) for k, v in (params or {}).items()}
        hdrs = {**p.headers, **(headers or {})}

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._http.retries + 1),
            wait=self._wait,
            retry=retry_if_exception(self._retryable),
            sleep=self.clock.sleep,
            before_sleep=lambda rs: self._before_retry(p, endpoint, rs),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(p, budget, endpoint, url, query, hdrs, attempt.retry_state.attempt_number)
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    async def _attempt(self, p: _Provider, budget: Budget, endpoint: str, url: str, params: Mapping[str, str],
                       headers: Mapping[str, str], attempt_no: int) -> Any:
        if p.breaker.state is BreakerState.OPEN:
            raise self._circuit_open(p, endpoint)
        await budget.acquire()
        if not p.breaker.allow():
            raise self._circuit_open(p, endpoint)
        session = self._ensure_session()
        p.requests += 1
        loop = asyncio.get_running_loop()  # its clock: monotonic live, virtual in the tests' loop
        started = loop.time()
        try:
            target: str = url
            query: Mapping[str, str] | None = params
            for _hop in range(MAX_REDIRECTS + 1):
                async with session.get(target, params=query, headers=headers, allow_redirects=False) as resp:
                    status = resp.status
                    resp_headers = resp.headers
                    location = resp_headers.get("Location") if status in _REDIRECT_STATUSES else None
                    if location is None:
                        body = await self._read_body(p, endpoint, resp)
                        break
                    here = str(resp.url)
                next_url = urljoin(here, location)
                if url_origin(next_url) != url_origin(here):
                    raise self._redirected(p, RedirectRefused.cross_origin(p.name, endpoint, status,
                                                                           mask_url(next_url)))
                target, query = next_url, None  # the Location carries its own query
            else:
                raise self._redirected(p, RedirectRefused(
                    p.name, endpoint, status, f"redirect: more than {MAX_REDIRECTS} in a row, not followed"))
        except TimeoutError:
            raise self._failure(p, "timeout", SourceUnavailable(
                p.name, endpoint, f"timed out after {self._http.timeout_s:g}s")) from None
        except aiohttp.ClientError as exc:
            raise self._failure(p, "connection", SourceUnavailable(
                p.name, endpoint, f"connection failed: {describe_client_error(exc)}")) from None
        except asyncio.CancelledError:
            p.cancelled += 1
            if p.breaker.state is not BreakerState.CLOSED:
                p.breaker.record_failure()  # release a half-open trial we can no longer finish
            raise
        p.record_latency((loop.time() - started) * 1000.0)
        remaining = resp_headers.get("x-ratelimit-remaining")
        if remaining is not None:
            with contextlib.suppress(ValueError, OverflowError):
                p.remote_remaining = int(float(remaining))

        if status == 429:
            self._rate_limited(p, budget, endpoint, resp_headers, attempt_no)
        if status >= 500:
            raise self._failure(p, "http_5xx", SourceUnavailable(p.name, endpoint, f"HTTP {status}"))
        block = _cloudflare_block(status, body)
        if block is not None:  # a firewall block: every call fails alike, so the breaker counts it
            raise self._failure(p, "blocked", CloudflareBlocked(p.name, endpoint, status, block))
        if status >= 400 or status < 200:
            p.breaker.record_success()  # the service answered; retrying will not change a 4xx
            p.errors["http_4xx"] += 1
            err = HttpStatusError(p.name, endpoint, status, _error_detail(body, self._secrets))
            p.last_error = str(err)
            raise err
        try:
            data = decode_json(body)
        except ValueError as exc:
            raise self._failure(p, "not_json", BadPayload(
                p.name, endpoint, "<body>", f"not JSON: {exc} ({_snippet(body, self._secrets)})")) from None
        p.breaker.record_success()
        p.ok += 1
        p.last_ok_at = self.clock.now()
        return data

    async def _read_body(self, p: _Provider, endpoint: str, resp: aiohttp.ClientResponse) -> bytes:
        """The body, read incrementally and inflated here; refused as soon as a size cap is passed."""
        max_wire, max_body = self._http.max_compressed_bytes, self._http.max_body_bytes
        try:
            reader = BodyReader(resp.headers.get("Content-Encoding"), max_wire, max_body)
            declared = resp.content_length
            if declared is not None and declared > max_wire:  # said so up front: do not read at all
                raise BodyLimitExceeded("compressed", max_wire)
            async for chunk in resp.content.iter_chunked(64 * 1024):
                reader.feed(chunk)
            return reader.finish()
        except BodyLimitExceeded as exc:
            resp.close()  # drop the connection rather than drain the rest of the body
            setting = "http.max_compressed_bytes" if exc.which == "compressed" else "http.max_body_bytes"
            err = ResponseTooLarge(p.name, endpoint, exc.which, exc.limit, setting)
            log.warning("%s", err)
            raise self._failure(p, "too_large", err) from None
        except (UnsupportedEncoding, BadEncoding) as exc:
            resp.close()
            raise self._failure(p, "not_json", BadPayload(p.name, endpoint, "<body>", str(exc))) from None

    def _rate_limited(self, p: _Provider, budget: Budget, endpoint: str, headers: Mapping[str, str],
                      attempt_no: int) -> NoReturn:
        p.rate_limited += 1
        # A 429 proves the service is up: it must not trip the breaker (nor keep a trial pending).
        p.breaker.record_success()
        retry_after = retry_after_s(headers, self.clock.now())
        budget.penalise(retry_after if retry_after is not None else self._backoff_cap(attempt_no))
        err = RateLimited(p.name, endpoint, retry_after)
        p.last_error = str(err)
        if retry_after is not None and retry_after > self._http.max_retry_after_s:
            log.warning("%s %s: rate limited for %.0fs (more than http.max_retry_after_s=%.0fs); giving up this call",
                        p.name, endpoint, retry_after, self._http.max_retry_after_s)
        raise err

    def _redirected(self, p: _Provider, err: RedirectRefused) -> RedirectRefused:
        """A redirect not followed: counted, logged, and not held against the breaker (the provider
        answered; retrying would be redirected again)."""
        p.breaker.record_success()
        p.errors["redirect"] += 1
        p.last_error = str(err)
        log.warning("%s", err)
        return err

    def _failure(self, p: _Provider, kind: str, err: Exception) -> Exception:
        p.errors[kind] += 1
        p.breaker.record_failure()
        p.last_error = str(err)
        return err

    def _circuit_open(self, p: _Provider, endpoint: str) -> CircuitOpen:
        p.errors["circuit_open"] += 1
        err = CircuitOpen(p.name, endpoint, p.breaker.seconds_until_retry())
        p.last_error = str(err)
        return err

    # -- retry policy -----------------------------------------------------------------------

    def _retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, CircuitOpen | HttpStatusError | BadPayload | ResponseTooLarge | RedirectRefused):
            return False
        if isinstance(exc, RateLimited):
            return exc.retry_after is None or exc.retry_after <= self._http.max_retry_after_s
        if isinstance(exc, SourceUnavailable):
            # When this failure opened the breaker, the real cause is the better error to raise.
            p = self._providers.get(exc.provider)
            return p is None or p.breaker.state is not BreakerState.OPEN
        return False

    def _backoff_cap(self, attempt_no: int) -> float:
        return float(min(self._http.backoff_max_s, self._http.backoff_base_s * 2 ** max(0, attempt_no - 1)))

    def _wait(self, rs: RetryCallState) -> float:
        """Retry-After (or x-ratelimit-reset) when the provider said; else full-jitter backoff."""
        exc = rs.outcome.exception() if rs.outcome is not None else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return max(0.0, exc.retry_after)
        return self._rng.uniform(0.0, self._backoff_cap(rs.attempt_number))

    def _before_retry(self, p: _Provider, endpoint: str, rs: RetryCallState) -> None:
        p.retries += 1
        exc = rs.outcome.exception() if rs.outcome is not None else None
        wait = rs.next_action.sleep if rs.next_action is not None else 0.0
        log.info("%s; retry %d/%d in %.1fs", exc, rs.attempt_number, self._http.retries, wait)

def decode_json(body: bytes | str) -> Any:
    """``json.loads`` whose every refusal is a ``ValueError`` naming the reason in a word or three.

    ``json.loads`` also raises ``RecursionError`` (nesting deeper than the interpreter's stack: a
    100,000-level ``[[[...`` body) and a bare ``ValueError`` for an integer of over 4,300 digits;
    neither is a ``JSONDecodeError``, and either would otherwise escape as a crash.
    """
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(exc.__class__.__name__) from None
    except ValueError:
        raise ValueError("integer too long") from None


def _param(v: ParamValue) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _snippet(body: bytes, secrets: Sequence[str] = ()) -> str:
    """The start of ``body``, masked *before* it is cut (a cut key would no longer match)."""
    if not body:
        return "empty body"
    text = mask_text(body[:_BODY_SNIPPET * 4].decode("utf-8", errors="replace"), secrets)[:_BODY_SNIPPET]
    text = " ".join(text.split())
    return f"starts with {text!r}" + (f", {len(body)} bytes" if len(body) > _BODY_SNIPPET else "")


def _error_detail(body: bytes, secrets: Sequence[str] = ()) -> str:
    """The provider's own error message (Jupiter ``error``, Birdeye ``message``, GT ``errors[].title``),
    masked (it may echo the key) before it is cut to 200 characters."""
    try:
        data = decode_json(body)
    except ValueError:
        return _snippet(body, secrets) if body else ""
    if isinstance(data, dict):
        for key in ("message", "error", "title"):
            if isinstance(data.get(key), str):
                return mask_text(str(data[key]), secrets)[:200]
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            title = errors[0].get("title") or errors[0].get("detail")
            if isinstance(title, str):
                return mask_text(title, secrets)[:200]
    return ""


def batches(items: Sequence[str], size: int) -> list[list[str]]:
    """``items`` without duplicates (first occurrence kept), cut into lists of at most ``size``."""
    unique = list(dict.fromkeys(items))
    return [unique[i:i + size] for i in range(0, len(unique), size)]


async def gather_batches(fetch: Callable[[list[str]], Awaitable[list[T]]], groups: Sequence[list[str]]) -> list[T]:
    """Run one call per batch concurrently (the budget paces them) and concatenate in batch order.

    Every batch runs to completion; if any failed, the first failure is raised (typed, as the HTTP
    layer raised it) rather than handing back a silently partial answer.
    """
    results = await asyncio.gather(*(fetch(g) for g in groups), return_exceptions=True)
    out: list[T] = []
    for r in results:
        if isinstance(r, BaseException):
            raise r
        out.extend(r)
    return out


async def by_address_batches(addresses: Sequence[str], size: int, ctx: ParseContext, field: str,
                             fetch: Callable[[str], Awaitable[list[T]]],
                             address_of: Callable[[T], str] | None = None) -> list[T]:
    """A lookup that takes up to ``size`` comma-joined addresses a call (Jupiter search and prices,
    DexScreener tokens and pairs): the Solana addresses among ``addresses`` (each other one dropped,
    counted under ``field`` and logged), each once, in batches fetched concurrently
    (:func:`gather_batches`). With ``address_of``, of each answer only the records whose address is
    one of that batch's are kept (a search also answers tokens that merely match)."""

    async def one(batch: list[str]) -> list[T]:
        found = await fetch(",".join(batch))
        if address_of is None:
            return found
        wanted = set(batch)
        return [item for item in found if address_of(item) in wanted]

    return await gather_batches(one, batches(valid_addresses(addresses, ctx, field), size))
