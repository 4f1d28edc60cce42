"""The optional local API (``dexscan scan --serve 127.0.0.1:PORT``): health, metrics, signals, a live stream.

- ``GET /healthz``  200 ``{"status": "ok", "universe": N, "sources": {...}}``; 503 when every source
  is down (a scanner without data is not healthy) or the status cannot be read.
- ``GET /metrics``  Prometheus text (OpenMetrics when the scraper asks for it). A custom collector
  reads the current :class:`ScannerStatus` at scrape time, so the numbers are never stale copies;
  the only state kept here is the detection latency histogram (the engine calls
  :meth:`Service.observe_detection_latency`) and the stream's own counters.
- ``GET /signals``  stored signals with levels, confidence and latest outcome, filtered by
  ``since`` (epoch s), ``strategy`` (a registered strategy), ``status`` (live, closed, untracked),
  ``mint``, ``limit``; bad parameters get a 400 JSON error that says what was expected.
- ``GET /ws``  WebSocket: on connect a ``hello``, then a ``snapshot`` of the open trades (each as
  ``/signals`` shows it, plus where it stands now: price, R now, stop in force); then every event
  given to :meth:`Service.publish` as one JSON text message, and a ``heartbeat`` (the scanner's
  time and the number of open trades) whenever nothing was sent for ``heartbeat_s`` seconds of the
  loop's clock (the scanner's clock: real time live, simulated time in the demo). Each client has a
  bounded queue; when a client is too slow, its oldest queued events are dropped (and counted), so
  a stalled reader never slows the engine. Events that arrive while the snapshot is read follow it,
  so an event may repeat what the snapshot already shows.

  Only a local client may connect: a handshake without an ``Origin`` header (a CLI client, a
  script) or with the loopback origin of this very service (``http://127.0.0.1:PORT``,
  ``http://localhost:PORT``, ``http://[::1]:PORT``) is accepted; any other origin (a web page the
  user happens to have open, ``null``) gets a 403 JSON error before the upgrade, so a browser tab
  can never read the stream. At most ``max_ws_clients`` (config ``service.max_ws_clients``,
  default 64) clients are connected at once; one more gets a 503 JSON error, counted in
  ``dexscan_ws_clients_refused_total``, and the connected ones are not disturbed (a flood of
  clients must not use up the process's file descriptors, which the scanner needs for its own
  connections).

It binds to loopback only: nothing here is authenticated, so it must not face a network.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import math
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from dexscan.backend import ScannerBackend
from dexscan.domain import Outcome, Signal
from dexscan.domain_events import DomainEvent, OutcomeChanged, SignalStored
from dexscan.errors import InputError
from dexscan.plugins import STRATEGIES
from dexscan.status import SOURCE_DOWN_STATES, RpcEndpointStatus, ScannerStatus, SourceStatus

log = logging.getLogger(__name__)

#: Seconds from the market event (bar or snapshot time) to the signal leaving the pipeline.
DETECTION_LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0)
DEFAULT_WS_QUEUE = 256
#: Concurrent /ws clients (``service.max_ws_clients``); one more is refused with a 503.
DEFAULT_MAX_WS_CLIENTS = 64
#: Seconds (of the loop's clock) without anything sent after which a /ws client gets a heartbeat.
DEFAULT_WS_HEARTBEAT_S = 15.0
DEFAULT_SIGNALS_LIMIT = 500
MAX_SIGNALS_LIMIT = 5000

_STRATEGY_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_MINT_RE = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{32,44}$")
_SIGNAL_STATUSES = ("live", "closed", "untracked")
_SIGNALS_PARAMS = ("since", "strategy", "status", "mint", "limit")
_METRIC_NAME_RE = re.compile(r"[^a-zA-Z0-9_]")


# ---------------------------------------------------------------------------------------------
# Listening address
# ---------------------------------------------------------------------------------------------


def _check_loopback(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError as exc:
        raise InputError(f"--serve host {host!r} is not an IP address; use 127.0.0.1") from exc
    if not addr.is_loopback:
        raise InputError(
            f"--serve host {host} is not a loopback address; the local API has no authentication, "
            "so it only listens on 127.0.0.1 (or ::1)"
        )
    return host


def _is_loopback_name(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8787"``, ``"[::1]:8787"``, ``":8787"`` or ``"8787"`` → (loopback host, port).

    Raises :class:`InputError` for anything else, including non-loopback hosts.
    """
    raw = text.strip()
    if not raw:
        raise InputError("--serve needs HOST:PORT, e.g. 127.0.0.1:8787")
    if raw.startswith("["):
        host, sep, port_text = raw[1:].partition("]:")
        if not sep:
            raise InputError(f"--serve {text!r}: expected [IPv6]:PORT, e.g. [::1]:8787")
    elif ":" in raw:
        host, _, port_text = raw.rpartition(":")
    else:
        host, port_text = "", raw
    host = host or "127.0.0.1"
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise InputError(f"--serve {text!r}: port must be a number from 0 to 65535 (HOST:PORT, e.g. 127.0.0.1:8787)")
    return _check_loopback(host), int(port_text)


# ---------------------------------------------------------------------------------------------
# JSON shapes
# ---------------------------------------------------------------------------------------------


def _finite(x: float | None) -> float | None:
    return x if x is None or math.isfinite(x) else None


def _jsonable(obj: Any) -> Any:
    """NaN and infinities are not JSON; they become null rather than an invalid document."""
    if isinstance(obj, float):
        return _finite(obj)
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def outcome_to_json(outcome: Outcome | None) -> dict[str, Any] | None:
    if outcome is None:
        return None
    return _jsonable({
        "result": outcome.result,
        "realized_r": outcome.realized_r,
        "max_r": outcome.max_r,
        "hits": dict(outcome.hits),
        "closed_at": outcome.closed_at,
        "last_price": outcome.last_price,
    })


def signal_to_json(signal_id: int | None, signal: Signal, outcome: Outcome | None = None) -> dict[str, Any]:
    """The public JSON form of a signal (``/signals`` items and ``/ws`` events), with its latest outcome."""
    conf = signal.confidence
    data: dict[str, Any] = {
        "id": signal_id,
        "mint": signal.mint,
        "symbol": signal.symbol,
        "strategy": signal.strategy,
        "layer": signal.layer,
        "candle_ts": signal.candle_ts,
        "ts": signal.ts,
        "price": signal.price,
        "pool": signal.pool,
        "rise_pct": signal.rise_pct,
        "volume_ratio": signal.volume_ratio,
        "liquidity_usd": signal.liquidity_usd,
        "levels": None if signal.levels is None else {**asdict(signal.levels), "flags": list(signal.levels.flags)},
        "confidence": None if conf is None else {
            "raw_score": conf.raw_score,
            "probability": conf.probability,
            "calibrator_version": conf.calibrator_version,
            "calibrated": conf.calibrated,
            "label": conf.label(),
        },
        "reasons": [{**asdict(r), "text": str(r)} for r in signal.reasons],
        "features": dict(signal.features),
        "outcome": outcome_to_json(outcome),
    }
    return _jsonable(data)


def signal_event(signal_id: int | None, signal: Signal, outcome: Outcome | None = None) -> dict[str, Any]:
    """``{"type": "signal", "signal": {...}}`` — what the engine publishes for a new signal."""
    return {"type": "signal", "signal": signal_to_json(signal_id, signal, outcome)}


def outcome_event(signal_id: int | None, signal: Signal, outcome: Outcome) -> dict[str, Any]:
    """``{"type": "outcome", ...}`` — what the engine publishes when a signal's outcome changes."""
    return {
        "type": "outcome",
        "signal_id": signal_id,
        "mint": signal.mint,
        "strategy": signal.strategy,
        "candle_ts": signal.candle_ts,
        "outcome": outcome_to_json(outcome),
    }


def event_json(event: DomainEvent) -> dict[str, Any]:
    """The wire form of a domain event: the same object on ``--json`` lines and on ``/ws``."""
    if isinstance(event, SignalStored):
        data = signal_event(event.signal_id, event.signal, None)
        data["move"] = {"id": event.move_ids[0], "strategies": list(event.move_strategies),
                        "signal_ids": list(event.move_ids)}
        return data
    if isinstance(event, OutcomeChanged):
        return outcome_event(event.signal_id, event.signal, event.outcome)
    return {"type": "pool", "mint": event.mint, "symbol": event.symbol, "from": event.from_pool,
            "to": event.to_pool, "reason": event.reason, "ts": event.ts, "live_signals": event.live_signals}


class _BadParam(Exception):
    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem
        super().__init__(f"bad query parameter {name!r}: {problem}")


@dataclass(frozen=True, slots=True)
class SignalsQuery:
    since: int | None = None
    strategy: str | None = None
    status: str | None = None
    mint: str | None = None
    limit: int = DEFAULT_SIGNALS_LIMIT


def parse_signals_query(params: Iterable[tuple[str, str]]) -> SignalsQuery:
    """Validates ``/signals`` query parameters; unknown or repeated ones are errors, not ignored."""
    seen: dict[str, str] = {}
    for name, value in params:
        if name not in _SIGNALS_PARAMS:
            raise _BadParam(name, f"unknown parameter; allowed: {', '.join(_SIGNALS_PARAMS)}")
        if name in seen:
            raise _BadParam(name, "given more than once")
        seen[name] = value

    def integer(name: str, lo: int, hi: int) -> int | None:
        if name not in seen:
            return None
        text = seen[name].strip()
        if not re.fullmatch(r"\d{1,12}", text) or not lo <= int(text) <= hi:
            raise _BadParam(name, f"expected an integer from {lo} to {hi}, got {seen[name]!r}")
        return int(text)

    since = integer("since", 0, 10**11)
    limit = integer("limit", 1, MAX_SIGNALS_LIMIT)
    strategy = seen.get("strategy")
    if strategy is not None and not _STRATEGY_RE.fullmatch(strategy):
        raise _BadParam("strategy", f"expected a strategy name (letters, digits, _ . -), got {strategy!r}")
    if strategy is not None and strategy not in STRATEGIES:
        raise _BadParam("strategy", f"expected one of {', '.join(sorted(STRATEGIES))}, got {strategy!r}")
    status = seen.get("status")
    if status is not None and status not in _SIGNAL_STATUSES:
        raise _BadParam("status", f"expected one of {', '.join(_SIGNAL_STATUSES)}, got {status!r}")
    mint = seen.get("mint")
    if mint is not None and not _MINT_RE.fullmatch(mint):
        raise _BadParam("mint", f"expected a base58 Solana mint address, got {mint!r}")
    return SignalsQuery(since, strategy, status, mint, DEFAULT_SIGNALS_LIMIT if limit is None else limit)


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


class _StatusCollector(Collector):
    """Turns the scanner's current status into Prometheus samples at each scrape."""

    def __init__(self, service: Service) -> None:
        self._service = service

    def describe(self) -> Iterable[Metric]:
        return []  # do not call the status provider at registration time

    def collect(self) -> Iterable[Metric]:
        svc = self._service
        ws_clients = GaugeMetricFamily("dexscan_ws_clients", "Connected /ws clients")
        ws_clients.add_metric([], len(svc._clients))
        published = CounterMetricFamily("dexscan_ws_events_published", "Events published to /ws")
        published.add_metric([], svc.events_published)
        dropped = CounterMetricFamily("dexscan_ws_events_dropped", "Events dropped for slow /ws clients")
        dropped.add_metric([], svc.events_dropped)
        refused = CounterMetricFamily("dexscan_ws_clients_refused",
                                      "/ws handshakes refused (foreign origin or too many clients)", labels=["reason"])
        refused.add_metric(["origin"], svc.ws_refused_origin)
        refused.add_metric(["full"], svc.ws_refused_full)
        yield from (ws_clients, published, dropped, refused)
        up = GaugeMetricFamily("dexscan_status_up", "1 when the scanner status could be read at this scrape")
        try:
            st = svc.status_provider()
        except Exception:
            log.exception("metrics: the scanner status could not be read")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _status_metrics(st)


_Row = TypeVar("_Row", SourceStatus, RpcEndpointStatus)


def _per_row(label: str, rows: Sequence[_Row],
             specs: Sequence[tuple[type[GaugeMetricFamily | CounterMetricFamily], str, str,
                                   Callable[[_Row], float | None]]]) -> Iterable[Metric]:
    """One metric family per spec (kind, name, help, value), labelled ``label`` = each row's name;
    a row whose value is ``None`` (not known) has no sample."""
    for kind, name, doc, value in specs:
        family = kind(name, doc, labels=[label])
        for row in rows:
            v = value(row)
            if v is not None:
                family.add_metric([row.name], v)
        yield family


def _status_metrics(st: ScannerStatus) -> Iterable[Metric]:
    def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
        g = GaugeMetricFamily(name, doc)
        g.add_metric([], value)
        return g

    sources = st.sources
    yield from _per_row("source", sources, [
        (GaugeMetricFamily, "dexscan_source_up", "1 when the provider serves data (ok or degraded)",
         lambda s: 0 if s.state in SOURCE_DOWN_STATES else 1),
    ])
    s_state = GaugeMetricFamily("dexscan_source_state", "1 for the provider's current state",
                                labels=["source", "state"])
    for s in sources:
        s_state.add_metric([s.name, s.state], 1)
    yield s_state
    yield from _per_row("source", sources, [
        (CounterMetricFamily, "dexscan_source_requests", "Requests sent to the provider", lambda s: s.requests),
        (CounterMetricFamily, "dexscan_source_errors", "Failed requests and bad payloads", lambda s: s.errors),
        (CounterMetricFamily, "dexscan_source_rate_limited", "HTTP 429 answers", lambda s: s.rate_limited),
        (GaugeMetricFamily, "dexscan_source_latency_seconds", "Recent typical latency",
         lambda s: None if s.latency_ms is None else s.latency_ms / 1000),
        (GaugeMetricFamily, "dexscan_source_budget_used", "Requests spent in the budget window",
         lambda s: s.budget_used),
        (GaugeMetricFamily, "dexscan_source_budget_limit", "Requests allowed per budget window",
         lambda s: s.budget_limit),
    ])
    yield from _per_row("endpoint", st.rpc, [
        (GaugeMetricFamily, "dexscan_rpc_up", "1 when the RPC endpoint is healthy", lambda e: 1 if e.healthy else 0),
        (GaugeMetricFamily, "dexscan_rpc_active", "1 for the endpoint currently preferred",
         lambda e: 1 if e.name == st.active_rpc else 0),
        (CounterMetricFamily, "dexscan_rpc_requests", "RPC calls sent to the endpoint", lambda e: e.requests),
        (CounterMetricFamily, "dexscan_rpc_failures", "RPC calls that failed", lambda e: e.failures),
        (GaugeMetricFamily, "dexscan_rpc_latency_seconds", "Recent typical RPC latency",
         lambda e: None if e.latency_ms is None else e.latency_ms / 1000),
        (GaugeMetricFamily, "dexscan_rpc_slot_lag", "Slots behind the best endpoint", lambda e: e.slot_lag),
    ])

    yield gauge("dexscan_universe_tokens", "Tokens in the universe (all gates passed)", st.universe_size)
    gates = GaugeMetricFamily("dexscan_gate_tokens", "Tokens by gate result in the last discovery cycle",
                              labels=["result"])
    gates.add_metric(["passed"], st.gates_passed)
    gates.add_metric(["failed"], st.gates_failed)
    gates.add_metric(["unverified"], st.gates_unverified)
    yield gates
    yield gauge("dexscan_warming_up_tokens", "Universe tokens with too few 5m bars to detect yet", st.warming_up)
    queues = GaugeMetricFamily("dexscan_queue_depth", "Items waiting in each pipeline queue", labels=["queue"])
    for name, depth in sorted(st.queue_depths.items()):
        queues.add_metric([name], depth)
    yield queues
    yield gauge("dexscan_alert_outbox_backlog", "Alerts waiting to be delivered", st.outbox_backlog)
    by_strategy = CounterMetricFamily("dexscan_signals", "Signals emitted since start", labels=["strategy"])
    for name, count in sorted(st.signals_by_strategy.items()):
        by_strategy.add_metric([name], count)
    yield by_strategy
    yield gauge("dexscan_live_signals", "Signals being tracked", len(st.live_signals))
    for name, count in sorted(st.counters.items()):
        metric = _METRIC_NAME_RE.sub("_", name).strip("_").lower()
        if metric:
            c = CounterMetricFamily(f"dexscan_{metric}", f"Scanner counter {name!r}")
            c.add_metric([], count)
            yield c


# ---------------------------------------------------------------------------------------------
# The service
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Client:
    ws: web.WebSocketResponse
    queue: asyncio.Queue[str]
    dropped: int = 0
    sender: asyncio.Task[None] | None = field(default=None)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _closing(resp: web.Response) -> web.Response:
    """A refusal that also frees the connection (and its file descriptor) instead of keeping it alive."""
    resp.force_close()
    return resp


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """404/405 and friends as JSON, like every other answer of this API."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response({"error": exc.reason, "path": request.path}, status=exc.status)


class Service:
    """The local API. ``async with Service(backend, provider, port=0) as svc: svc.url`` → a running server.

    ``/signals`` and the ``/ws`` snapshot ask ``backend`` (:class:`~dexscan.backend.ScannerBackend`, the
    interface the Telegram commands ask too); health, metrics and heartbeats read ``status_provider``.

    ``publish`` and ``observe_detection_latency`` are plain (non-async) calls meant for the engine's
    event loop; neither ever waits on a client.
    """

    def __init__(
        self,
        backend: ScannerBackend,
        status_provider: Callable[[], ScannerStatus],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ws_queue_size: int = DEFAULT_WS_QUEUE,
        heartbeat_s: float = DEFAULT_WS_HEARTBEAT_S,
        max_ws_clients: int = DEFAULT_MAX_WS_CLIENTS,
    ) -> None:
        if ws_queue_size < 1:
            raise ValueError("ws_queue_size must be >= 1")
        if max_ws_clients < 1:
            raise ValueError("max_ws_clients must be >= 1")
        if not heartbeat_s > 0:
            raise ValueError("heartbeat_s must be > 0")
        self.heartbeat_s = heartbeat_s
        self.backend = backend
        self.status_provider = status_provider
        self.host = _check_loopback(host)
        self.port = port
        self.ws_queue_size = ws_queue_size
        self.max_ws_clients = max_ws_clients
        self.events_published = 0
        self.events_dropped = 0
        self.ws_refused_origin = 0
        self.ws_refused_full = 0
        self._clients: set[_Client] = set()
        self._ws_slots = 0  # handshakes admitted and not yet finished (counted before any await)
        self.registry = CollectorRegistry(auto_describe=True)
        self._latency = Histogram(
            "dexscan_detection_latency_seconds",
            "Seconds from the market event to the signal leaving the pipeline",
            buckets=DETECTION_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StatusCollector(self))
        self._runner: web.AppRunner | None = None
        self.app = web.Application(middlewares=[_json_errors])
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/signals", self._signals)
        self.app.router.add_get("/ws", self._ws)
        self.app.on_shutdown.append(self._close_clients)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise InputError(f"--serve {self.host}:{self.port}: cannot listen ({exc.strerror}); "
                             "pick another port or stop what uses it") from exc
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        log.info("local API listening on %s", self.url)

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Service:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- engine-facing -----------------------------------------------------------------------

    def observe_detection_latency(self, seconds: float) -> None:
        if math.isfinite(seconds) and seconds >= 0:
            self._latency.observe(seconds)

    def publish(self, event: Mapping[str, Any]) -> int:
        """Queues ``event`` (JSON-serialisable) for every connected client; returns how many.

        A client whose queue is full loses its oldest queued event, counted in
        ``dexscan_ws_events_dropped_total``. Raises TypeError at once for a non-serialisable event.
        """
        data = json.dumps(_jsonable(event), separators=(",", ":"), allow_nan=False)
        self.events_published += 1
        for client in self._clients:
            self._enqueue(client, data)
        return len(self._clients)

    def publish_event(self, event: DomainEvent) -> int:
        """Queues a domain event (:func:`event_json`) for every connected client; returns how many."""
        return self.publish(event_json(event))

    def _enqueue(self, client: _Client, data: str) -> None:
        if client.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                client.queue.get_nowait()
                client.dropped += 1
                self.events_dropped += 1
        client.queue.put_nowait(data)

    @property
    def clients(self) -> int:
        return len(self._clients)

    # -- handlers ----------------------------------------------------------------------------

    def _status(self) -> ScannerStatus | None:
        try:
            return self.status_provider()
        except Exception:
            log.exception("healthz: the scanner status could not be read")
            return None

    async def _healthz(self, request: web.Request) -> web.Response:
        st = self._status()
        if st is None:
            return web.json_response({"status": "error", "error": "scanner status unavailable"}, status=503)
        sources = {
            s.name: {"state": s.state, "healthy": s.healthy, "latency_ms": _finite(s.latency_ms)} for s in st.sources
        }
        down = st.all_sources_down
        body = {
            "status": "down" if down else "ok",
            "universe": st.universe_size,
            "sources": sources,
            "active_rpc": st.active_rpc,
            "warming_up": st.warming_up,
            "outbox_backlog": st.outbox_backlog,
            "calibrator": st.calibrator_label,
        }
        return web.json_response(body, status=503 if down else 200)

    async def _metrics(self, request: web.Request) -> web.Response:
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encode(self.registry), headers={"Content-Type": content_type})

    async def _signals(self, request: web.Request) -> web.Response:
        try:
            q = parse_signals_query(request.query.items())
        except _BadParam as exc:
            return web.json_response({"error": str(exc), "parameter": exc.name}, status=400)
        rows = await self.backend.signals(since=q.since, strategy=q.strategy, status=q.status, mint=q.mint,
                                          limit=q.limit)
        items = [signal_to_json(sid, sig, outcome) for sid, sig, outcome in rows]
        return web.json_response({"count": len(items), "signals": items},
                                 dumps=lambda o: json.dumps(o, allow_nan=False))

    def origin_allowed(self, origin: str | None) -> bool:
        """No ``Origin`` (not a browser) or this service's own loopback origin; nothing else."""
        if origin is None:
            return True
        try:
            parts = urlsplit(origin.strip())
            port = parts.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or parts.path not in ("", "/") or parts.query or parts.username:
            return False
        if port is None:
            port = 443 if parts.scheme == "https" else 80
        return _is_loopback_name(parts.hostname or "") and port == self.port

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and not self.origin_allowed(origin):
            self.ws_refused_origin += 1
            log.warning("ws: refused a client from origin %r: only local clients may read the stream", origin[:200])
            return _closing(web.json_response(
                {"error": "this stream is for local clients only: a web page from another origin may not read it",
                 "origin": origin[:200]}, status=403))
        if self._ws_slots >= self.max_ws_clients:
            self.ws_refused_full += 1
            log.warning("ws: refused a client: %d clients connected (service.max_ws_clients)", self.max_ws_clients)
            return _closing(web.json_response(
                {"error": f"too many /ws clients ({self.max_ws_clients} connected); close one or raise "
                          "service.max_ws_clients"}, status=503, headers={"Retry-After": "30"}))
        self._ws_slots += 1
        try:
            return await self._serve_ws(request)
        finally:
            self._ws_slots -= 1

    async def _serve_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0)
        await ws.prepare(request)
        client = _Client(ws, asyncio.Queue(maxsize=self.ws_queue_size))
        self._clients.add(client)  # from here on events queue up behind the snapshot
        try:
            await ws.send_str(json.dumps({"type": "hello", "queue_size": self.ws_queue_size,
                                          "heartbeat_s": self.heartbeat_s}))
            await ws.send_str(json.dumps(_jsonable(await self.snapshot()), allow_nan=False))
        except (ConnectionError, RuntimeError):
            self._clients.discard(client)
            return ws
        client.sender = asyncio.create_task(self._send_loop(client))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._clients.discard(client)
            client.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await client.sender
        return ws

    async def snapshot(self) -> dict[str, Any]:
        """``{"type": "snapshot", "ts": now, "live": [...]}``: every open trade as ``/signals``
        shows it, with ``now`` (price, R now, stop in force, hits) from the scanner's status rows,
        the same numbers as the dashboard's LIVE table."""
        st = self._status()
        rows = {r.signal_id: r for r in st.live_signals} if st is not None else {}
        live = []
        for sid, sig, outcome in reversed(await self.backend.signals(status="live")):
            item = signal_to_json(sid, sig, outcome)
            row = rows.get(sid)
            item["now"] = None if row is None else _jsonable({
                "price": row.price, "r_now": row.r_now, "stop": row.stop, "hits": list(row.hits),
                "max_r": row.max_r,
            })
            live.append(item)
        return {"type": "snapshot", "ts": None if st is None else st.now, "live": live}

    def _heartbeat(self) -> str:
        st = self._status()
        return json.dumps(_jsonable({
            "type": "heartbeat",
            "ts": None if st is None else st.now,
            "live": None if st is None else len(st.live_signals),
        }), allow_nan=False)

    async def _send_loop(self, client: _Client) -> None:
        while True:
            try:
                data = await asyncio.wait_for(client.queue.get(), timeout=self.heartbeat_s)
            except TimeoutError:
                data = self._heartbeat()
            try:
                await client.ws.send_str(data)
            except (ConnectionError, RuntimeError):
                log.debug("ws: client went away while sending")
                await client.ws.close()
                return

    async def _close_clients(self, app: web.Application) -> None:
        for client in list(self._clients):
            await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"dexscan is shutting down")
