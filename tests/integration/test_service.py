"""The local API over real HTTP on 127.0.0.1: health, Prometheus metrics, stored signals, live stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from dexscan.backend import StoreBackend
from dexscan.domain import Confidence, Levels, Outcome, Reason, Signal
from dexscan.errors import InputError
from dexscan.service import Service, outcome_event, parse_listen, signal_event
from dexscan.status import RpcEndpointStatus, ScannerStatus, SourceStatus
from dexscan.store import Store

NOW = 1_773_479_525
MINT_A = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
MINT_B = "9Yq4bGxkU1mDkFNaCvW7rT3ZpLeHs5oJtAwe8QiRpump"


def _status(**changes: Any) -> ScannerStatus:
    base: dict[str, Any] = dict(
        now=NOW, universe_size=143, gates_passed=143, gates_failed=402, gates_unverified=3, warming_up=11,
        calibrator_label="uncalibrated",
        sources=[
            SourceStatus("jupiter", True, "ok", 182.0, 12, 0, 1, 19, 30, 60),
            SourceStatus("dexscreener", True, "ok", 96.0, 8911, 0, 2, 211, 300, 60),
            SourceStatus("geckoterminal", False, "circuit open", None, 1877, 3, 40, 24, 25, 60),
        ],
        rpc=[
            RpcEndpointStatus("https://rpc.example/***", True, "closed", 84.0, 0, 5310, 4),
            RpcEndpointStatus("https://api.mainnet-beta.solana.com", False, "open", None, None, 310, 40),
        ],
        active_rpc="https://rpc.example/***",
        queue_depths={"snapshots": 3, "history": 41},
        outbox_backlog=2,
        signals_by_strategy={"ignition": 31, "god_candle": 6},
        counters={"bad_payloads": 5},
    )
    base.update(changes)
    return ScannerStatus(**base)


class Provider:
    def __init__(self) -> None:
        self.status: ScannerStatus = _status()
        self.fail = False

    def __call__(self) -> ScannerStatus:
        if self.fail:
            raise RuntimeError("engine not ready")
        return self.status


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
async def service(store: Store, provider: Provider) -> AsyncIterator[Service]:
    async with Service(StoreBackend(store), provider, "127.0.0.1", 0) as svc:
        yield svc


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _signal(mint: str, strategy: str, ts: int, price: float = 0.000001234) -> Signal:
    risk = price * 0.1
    return Signal(
        mint=mint, strategy=strategy, layer="ignition" if strategy == "ignition" else "strategy",
        candle_ts=ts - ts % 14400, ts=ts, price=price, reasons=(Reason("rise", 2.4, ">=", 2.0, "%"),), symbol="BONK",
        rise_pct=2.4, volume_ratio=3.8,
        levels=Levels(price, price - risk, price + 1.5 * risk, price + 3 * risk, price + 5 * risk, risk / 1.5, "4h",
                      "atr"),
        confidence=Confidence(0.61, None, None), features={"rsi14": 61.5}, liquidity_usd=1_840_000,
    )


# -- /healthz ---------------------------------------------------------------------------------


async def test_healthz_reports_universe_and_each_source(service: Service, http: aiohttp.ClientSession) -> None:
    assert service.url.startswith("http://127.0.0.1:") and service.port > 0
    async with http.get(f"{service.url}/healthz") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body == {
        "status": "ok",
        "universe": 143,
        "sources": {
            "jupiter": {"state": "ok", "healthy": True, "latency_ms": 182.0},
            "dexscreener": {"state": "ok", "healthy": True, "latency_ms": 96.0},
            "geckoterminal": {"state": "circuit open", "healthy": False, "latency_ms": None},
        },
        "active_rpc": "https://rpc.example/***",
        "warming_up": 11,
        "outbox_backlog": 2,
        "calibrator": "uncalibrated",
    }


async def test_healthz_is_503_when_every_source_is_down(
    service: Service, provider: Provider, http: aiohttp.ClientSession
) -> None:
    provider.status = _status(sources=[
        SourceStatus("jupiter", False, "down", None, 12, 0, 9, 0, 30),
        SourceStatus("dexscreener", False, "circuit open", None, 50, 0, 5, 0, 300),
    ])
    async with http.get(f"{service.url}/healthz") as resp:
        assert resp.status == 503
        body = await resp.json()
    assert body["status"] == "down"
    assert body["sources"]["dexscreener"]["state"] == "circuit open"


async def test_healthz_is_503_when_the_status_cannot_be_read(
    service: Service, provider: Provider, http: aiohttp.ClientSession
) -> None:
    provider.fail = True
    async with http.get(f"{service.url}/healthz") as resp:
        assert resp.status == 503
        assert await resp.json() == {"status": "error", "error": "scanner status unavailable"}


# -- /metrics -----------------------------------------------------------------------------------


async def _metrics(service: Service, http: aiohttp.ClientSession) -> list[str]:
    async with http.get(f"{service.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return (await resp.text()).splitlines()


async def test_metrics_exports_the_current_status(service: Service, http: aiohttp.ClientSession) -> None:
    lines = await _metrics(service, http)
    for expected in (
        'dexscan_source_requests_total{source="jupiter"} 12.0',
        'dexscan_source_requests_total{source="dexscreener"} 8911.0',
        'dexscan_source_errors_total{source="geckoterminal"} 40.0',
        'dexscan_source_rate_limited_total{source="geckoterminal"} 3.0',
        'dexscan_source_latency_seconds{source="jupiter"} 0.182',
        'dexscan_source_up{source="geckoterminal"} 0.0',
        'dexscan_source_state{source="geckoterminal",state="circuit open"} 1.0',
        'dexscan_source_budget_used{source="dexscreener"} 211.0',
        'dexscan_source_budget_limit{source="dexscreener"} 300.0',
        'dexscan_rpc_active{endpoint="https://rpc.example/***"} 1.0',
        'dexscan_rpc_failures_total{endpoint="https://api.mainnet-beta.solana.com"} 40.0',
        'dexscan_queue_depth{queue="history"} 41.0',
        'dexscan_queue_depth{queue="snapshots"} 3.0',
        'dexscan_signals_total{strategy="ignition"} 31.0',
        'dexscan_signals_total{strategy="god_candle"} 6.0',
        "dexscan_alert_outbox_backlog 2.0",
        "dexscan_universe_tokens 143.0",
        'dexscan_gate_tokens{result="unverified"} 3.0',
        "dexscan_warming_up_tokens 11.0",
        "dexscan_bad_payloads_total 5.0",
        "dexscan_status_up 1.0",
        "dexscan_ws_clients 0.0",
    ):
        assert expected in lines, expected
    # geckoterminal has no latency yet: no sample rather than a made-up zero
    assert not any(line.startswith('dexscan_source_latency_seconds{source="geckoterminal"}') for line in lines)


async def test_metrics_speak_openmetrics_when_asked(service: Service, http: aiohttp.ClientSession) -> None:
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"}
    async with http.get(f"{service.url}/metrics", headers=headers) as resp:
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
        text = await resp.text()
    assert 'dexscan_source_requests_total{source="jupiter"} 12.0' in text.splitlines()
    assert text.endswith("# EOF\n")


async def test_metrics_are_read_at_scrape_time(
    service: Service, provider: Provider, http: aiohttp.ClientSession
) -> None:
    assert 'dexscan_source_requests_total{source="jupiter"} 12.0' in await _metrics(service, http)
    provider.status = _status(sources=[SourceStatus("jupiter", True, "ok", 150.0, 13, 1, 1, 20, 30, 60)])
    lines = await _metrics(service, http)
    assert 'dexscan_source_requests_total{source="jupiter"} 13.0' in lines
    assert 'dexscan_source_rate_limited_total{source="jupiter"} 1.0' in lines


async def test_metrics_detection_latency_histogram(service: Service, http: aiohttp.ClientSession) -> None:
    service.observe_detection_latency(0.8)
    service.observe_detection_latency(3.0)
    service.observe_detection_latency(float("nan"))  # ignored, never poisons the sum
    lines = await _metrics(service, http)
    assert 'dexscan_detection_latency_seconds_bucket{le="0.5"} 0.0' in lines
    assert 'dexscan_detection_latency_seconds_bucket{le="1.0"} 1.0' in lines
    assert 'dexscan_detection_latency_seconds_bucket{le="5.0"} 2.0' in lines
    assert 'dexscan_detection_latency_seconds_bucket{le="+Inf"} 2.0' in lines
    assert "dexscan_detection_latency_seconds_count 2.0" in lines
    assert "dexscan_detection_latency_seconds_sum 3.8" in lines


async def test_metrics_survive_an_unreadable_status(
    service: Service, provider: Provider, http: aiohttp.ClientSession
) -> None:
    provider.fail = True
    lines = await _metrics(service, http)
    assert "dexscan_status_up 0.0" in lines
    assert not any(line.startswith("dexscan_source_requests_total") for line in lines)


# -- /signals -------------------------------------------------------------------------------------


async def _stored(store: Store) -> list[int]:
    ids = []
    for sig in (
        _signal(MINT_A, "ignition", NOW - 3600),
        _signal(MINT_B, "god_candle", NOW - 1800, price=0.5),
        _signal(MINT_B, "ignition", NOW - 600, price=0.25),
    ):
        sid, created = await store.save_signal(sig)
        assert created
        ids.append(sid)
    await store.save_outcome(ids[0], Outcome("tp1", 1.5, {"tp1": NOW - 3000}, NOW - 2000, 0.0000014, 1.7), NOW)
    return ids


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as resp:
        return resp.status, await resp.json()


async def test_signals_returns_exactly_the_stored_signals(
    service: Service, store: Store, http: aiohttp.ClientSession
) -> None:
    ids = await _stored(store)
    status, body = await _get(http, f"{service.url}/signals")
    assert status == 200
    assert body["count"] == 3
    assert [s["id"] for s in body["signals"]] == ids
    first = body["signals"][0]
    assert first == {
        "id": ids[0],
        "mint": MINT_A,
        "symbol": "BONK",
        "strategy": "ignition",
        "layer": "ignition",
        "candle_ts": (NOW - 3600) - (NOW - 3600) % 14400,
        "ts": NOW - 3600,
        "price": 0.000001234,
        "pool": None,
        "rise_pct": 2.4,
        "volume_ratio": 3.8,
        "liquidity_usd": 1840000.0,
        "levels": {
            "entry": 0.000001234, "sl": 0.000001234 - 0.0000001234, "tp1": 0.000001234 + 1.5 * 0.0000001234,
            "tp2": 0.000001234 + 3 * 0.0000001234, "tp3": 0.000001234 + 5 * 0.0000001234,
            "atr": 0.0000001234 / 1.5, "atr_source": "4h", "sl_mode": "atr", "flags": [],
        },
        "confidence": {"raw_score": 0.61, "probability": None, "calibrator_version": None, "calibrated": False,
                       "label": "uncalibrated (raw 0.61)"},
        "reasons": [{"name": "rise", "value": 2.4, "op": ">=", "threshold": 2.0, "unit": "%",
                     "text": "rise 2.4% >= 2%"}],
        "features": {"rsi14": 61.5},
        "outcome": {"result": "tp1", "realized_r": 1.5, "max_r": 1.7, "hits": {"tp1": NOW - 3000},
                    "closed_at": NOW - 2000, "last_price": 0.0000014},
    }
    assert body["signals"][1]["outcome"] == {"result": "open", "realized_r": 0.0, "max_r": 0.0, "hits": {},
                                             "closed_at": None, "last_price": None}


async def test_signals_filters_by_since_and_strategy(
    service: Service, store: Store, http: aiohttp.ClientSession
) -> None:
    ids = await _stored(store)
    _, body = await _get(http, f"{service.url}/signals?since={NOW - 1800}")
    assert [s["id"] for s in body["signals"]] == ids[1:]
    _, body = await _get(http, f"{service.url}/signals?strategy=ignition")
    assert [s["id"] for s in body["signals"]] == [ids[0], ids[2]]
    _, body = await _get(http, f"{service.url}/signals?strategy=ignition&since={NOW - 1800}")
    assert [s["id"] for s in body["signals"]] == [ids[2]]
    _, body = await _get(http, f"{service.url}/signals?strategy=volume_surge")
    assert body == {"count": 0, "signals": []}
    _, body = await _get(http, f"{service.url}/signals?status=closed")
    assert [s["id"] for s in body["signals"]] == [ids[0]]
    _, body = await _get(http, f"{service.url}/signals?mint={MINT_B}&limit=1")
    assert [s["id"] for s in body["signals"]] == [ids[2]]


@pytest.mark.parametrize(
    ("query", "param", "message"),
    [
        ("since=abc", "since", "expected an integer from 0 to 100000000000, got 'abc'"),
        ("since=-5", "since", "expected an integer from 0 to 100000000000, got '-5'"),
        ("since=1.5", "since", "expected an integer"),
        ("limit=0", "limit", "expected an integer from 1 to 5000, got '0'"),
        ("strategy=drop%20table", "strategy", "expected a strategy name"),
        ("strategy=bogus", "strategy", "expected one of confirmation, god_candle, ignition, volume_surge, got 'bogus'"),
        ("status=open", "status", "expected one of live, closed, untracked, got 'open'"),
        ("mint=0OIl", "mint", "expected a base58 Solana mint address"),
        ("foo=1", "foo", "unknown parameter; allowed: since, strategy, status, mint, limit"),
        ("since=1&since=2", "since", "given more than once"),
    ],
)
async def test_signals_rejects_bad_parameters(
    service: Service, http: aiohttp.ClientSession, query: str, param: str, message: str
) -> None:
    status, body = await _get(http, f"{service.url}/signals?{query}")
    assert status == 400
    assert body["parameter"] == param
    assert body["error"].startswith(f"bad query parameter {param!r}: ")
    assert message in body["error"]


async def test_unknown_path_is_a_json_404(service: Service, http: aiohttp.ClientSession) -> None:
    status, body = await _get(http, f"{service.url}/nope")
    assert (status, body) == (404, {"error": "Not Found", "path": "/nope"})


# -- /ws --------------------------------------------------------------------------------------------


async def _receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), timeout=10)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    data: dict[str, Any] = json.loads(msg.data)
    return data


async def test_ws_streams_published_events_to_every_client(service: Service, http: aiohttp.ClientSession) -> None:
    sig = _signal(MINT_A, "ignition", NOW - 60)
    async with http.ws_connect(f"{service.url}/ws") as ws1, http.ws_connect(f"{service.url}/ws") as ws2:
        for ws in (ws1, ws2):
            assert await _receive(ws) == {"type": "hello", "queue_size": 256, "heartbeat_s": 15.0}
            assert await _receive(ws) == {"type": "snapshot", "ts": NOW, "live": []}
        assert service.publish(signal_event(7, sig)) == 2
        outcome = Outcome("sl", -1.0, {"sl": NOW}, NOW, 0.0000011, 0.2)
        service.publish(outcome_event(7, sig, outcome))
        for ws in (ws1, ws2):
            event = await _receive(ws)
            assert event["type"] == "signal"
            assert (event["signal"]["id"], event["signal"]["mint"], event["signal"]["levels"]["entry"]) == (
                7, MINT_A, 0.000001234)
            assert await _receive(ws) == {
                "type": "outcome", "signal_id": 7, "mint": MINT_A, "strategy": "ignition",
                "candle_ts": sig.candle_ts,
                "outcome": {"result": "sl", "realized_r": -1.0, "max_r": 0.2, "hits": {"sl": NOW},
                            "closed_at": NOW, "last_price": 0.0000011},
            }
        assert 'dexscan_ws_clients 2.0' in await _metrics(service, http)


async def test_ws_slow_client_loses_oldest_events_not_the_engine(
    store: Store, provider: Provider, http: aiohttp.ClientSession
) -> None:
    async with Service(StoreBackend(store), provider, ws_queue_size=2) as svc, http.ws_connect(f"{svc.url}/ws") as ws:
        assert (await _receive(ws))["type"] == "hello"
        assert (await _receive(ws))["type"] == "snapshot"
        for i in range(5):  # no await in between: the client cannot drain anything meanwhile
            svc.publish({"type": "tick", "n": i})
        assert [await _receive(ws), await _receive(ws)] == [{"type": "tick", "n": 3}, {"type": "tick", "n": 4}]
        assert svc.events_dropped == 3
        lines = await _metrics(svc, http)
        assert "dexscan_ws_events_dropped_total 3.0" in lines
        assert "dexscan_ws_events_published_total 5.0" in lines


async def test_ws_clients_are_closed_when_the_service_stops(
    store: Store, provider: Provider, http: aiohttp.ClientSession
) -> None:
    svc = Service(StoreBackend(store), provider)
    await svc.start()
    ws = await http.ws_connect(f"{svc.url}/ws")
    assert (await _receive(ws))["type"] == "hello"
    assert (await _receive(ws))["type"] == "snapshot"
    await svc.close()
    msg = await asyncio.wait_for(ws.receive(), timeout=10)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    await ws.close()
    assert svc.clients == 0


async def test_ws_sends_a_snapshot_of_the_open_trades_on_connect(
    service: Service, store: Store, provider: Provider, http: aiohttp.ClientSession
) -> None:
    from dexscan.status import LiveRow

    ids = await _stored(store)  # ids[0] closed; ids[1] (god_candle) and ids[2] (ignition) open
    live = _signal(MINT_B, "ignition", NOW - 600, price=0.25)
    provider.status = _status(live_signals=[LiveRow.from_signal(live, None, NOW, 0.2875, ids[2])])
    async with http.ws_connect(f"{service.url}/ws") as ws:
        assert (await _receive(ws))["type"] == "hello"
        snap = await _receive(ws)
    assert (snap["type"], snap["ts"]) == ("snapshot", NOW)
    assert [item["id"] for item in snap["live"]] == [ids[2], ids[1]]  # newest first
    assert snap["live"][0]["strategy"] == "ignition" and snap["live"][0]["outcome"]["result"] == "open"
    assert snap["live"][0]["now"] == {"price": 0.2875, "r_now": pytest.approx(1.5), "stop": 0.225, "hits": [],
                                      "max_r": 0.0}
    assert snap["live"][1]["now"] is None  # the scanner's status has no row for it (yet)
    _, body = await _get(http, f"{service.url}/signals?status=live")
    assert [{k: v for k, v in item.items() if k != "now"} for item in snap["live"]] == body["signals"][::-1]


async def test_ws_heartbeat_fills_quiet_stretches(
    store: Store, provider: Provider, http: aiohttp.ClientSession
) -> None:
    async with Service(StoreBackend(store), provider, heartbeat_s=0.2) as svc, http.ws_connect(f"{svc.url}/ws") as ws:
        assert await _receive(ws) == {"type": "hello", "queue_size": 256, "heartbeat_s": 0.2}
        assert (await _receive(ws))["type"] == "snapshot"
        assert await _receive(ws) == {"type": "heartbeat", "ts": NOW, "live": 0}
        svc.publish({"type": "tick", "n": 1})
        assert await _receive(ws) == {"type": "tick", "n": 1}
        provider.status = _status(now=NOW + 30)
        assert await _receive(ws) == {"type": "heartbeat", "ts": NOW + 30, "live": 0}
    with pytest.raises(ValueError, match="heartbeat_s"):
        Service(StoreBackend(store), provider, heartbeat_s=0)


def test_publish_rejects_non_json_events(store: Store, provider: Provider) -> None:
    svc = Service(StoreBackend(store), provider)
    with pytest.raises(TypeError):
        svc.publish({"type": "signal", "when": object()})
    assert svc.events_published == 0


# -- binding ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:8787", ("127.0.0.1", 8787)), (":9000", ("127.0.0.1", 9000)), ("8787", ("127.0.0.1", 8787)),
     ("localhost:1", ("127.0.0.1", 1)), ("[::1]:8787", ("::1", 8787)), ("127.0.0.2:0", ("127.0.0.2", 0))],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("0.0.0.0:8787", "not a loopback address"), ("192.168.1.5:80", "not a loopback address"),
     ("example.com:80", "not an IP address"), ("127.0.0.1:http", "port must be a number"),
     ("127.0.0.1:70000", "port must be a number"), ("", "needs HOST:PORT")],
)
def test_parse_listen_rejects_non_loopback_and_bad_ports(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_listen(text)


def test_service_refuses_a_public_host(store: Store, provider: Provider) -> None:
    with pytest.raises(InputError, match="loopback"):
        Service(StoreBackend(store), provider, "0.0.0.0", 8787)


async def test_port_in_use_is_a_clear_error(service: Service, store: Store, provider: Provider) -> None:
    with pytest.raises(InputError, match=f"127.0.0.1:{service.port}: cannot listen"):
        await Service(StoreBackend(store), provider, port=service.port).start()


# -- /ws: who may connect ---------------------------------------------------------------------------

_UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1.evil.example", "null",
                                    "http://127.0.0.1:1", "http://192.168.1.5:{port}", "file://", "http://[::1"])
async def test_ws_refuses_a_foreign_origin_with_403_and_no_data(
    service: Service, http: aiohttp.ClientSession, origin: str
) -> None:
    origin = origin.format(port=service.port)
    service.publish({"type": "tick", "n": 1})
    async with http.get(f"{service.url}/ws", headers={**_UPGRADE, "Origin": origin}) as resp:
        assert (resp.status, resp.headers["Connection"]) == (403, "close")
        body = await resp.json()
    assert body == {"error": "this stream is for local clients only: a web page from another origin may not read it",
                    "origin": origin}
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(f"{service.url}/ws", origin=origin)
    assert refused.value.status == 403
    assert service.clients == 0
    assert 'dexscan_ws_clients_refused_total{reason="origin"} 2.0' in await _metrics(service, http)


@pytest.mark.parametrize("origin", [None, "http://127.0.0.1:{port}", "http://localhost:{port}",
                                    "HTTP://LOCALHOST:{port}/"])
async def test_ws_accepts_local_clients(service: Service, http: aiohttp.ClientSession, origin: str | None) -> None:
    origin = None if origin is None else origin.format(port=service.port)
    async with http.ws_connect(f"{service.url}/ws", origin=origin) as ws:
        assert (await _receive(ws))["type"] == "hello"
        assert (await _receive(ws))["type"] == "snapshot"
    assert service.ws_refused_origin == 0


async def test_ws_accepts_the_ipv6_loopback_origin(store: Store, provider: Provider,
                                                   http: aiohttp.ClientSession) -> None:
    async with Service(StoreBackend(store), provider, "::1", 0) as svc:
        async with http.ws_connect(f"{svc.url}/ws", origin=f"http://[::1]:{svc.port}") as ws:
            assert (await _receive(ws))["type"] == "hello"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{svc.url}/ws", origin=f"http://[::1]:{svc.port + 1}")
        assert refused.value.status == 403


async def test_ws_client_over_the_cap_gets_503_and_the_others_keep_receiving(
    store: Store, provider: Provider, http: aiohttp.ClientSession
) -> None:
    async with Service(StoreBackend(store), provider, max_ws_clients=3) as svc, contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(http.ws_connect(f"{svc.url}/ws")) for _ in range(3)]
        for ws in clients:
            assert (await _receive(ws))["type"] == "hello"
            assert (await _receive(ws))["type"] == "snapshot"
        for _ in range(2):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"{svc.url}/ws")
            assert refused.value.status == 503
        async with http.get(f"{svc.url}/ws", headers=_UPGRADE) as resp:
            assert (resp.status, resp.headers["Retry-After"], resp.headers["Connection"]) == (503, "30", "close")
            assert await resp.json() == {"error": "too many /ws clients (3 connected); close one or raise "
                                                  "service.max_ws_clients"}
        assert svc.publish({"type": "tick", "n": 1}) == 3
        for ws in clients:
            assert await _receive(ws) == {"type": "tick", "n": 1}
        lines = await _metrics(svc, http)
        assert 'dexscan_ws_clients_refused_total{reason="full"} 3.0' in lines
        assert "dexscan_ws_clients 3.0" in lines
        await clients[0].close()
        for _ in range(100):  # the server notices the close on its next read
            if svc.clients == 2:
                break
            await asyncio.sleep(0.01)
        assert svc.clients == 2
        async with http.ws_connect(f"{svc.url}/ws") as late:  # a freed slot is usable again
            assert (await _receive(late))["type"] == "hello"
    with pytest.raises(ValueError, match="max_ws_clients"):
        Service(StoreBackend(store), provider, max_ws_clients=0)
