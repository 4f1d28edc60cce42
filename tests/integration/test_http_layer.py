"""The HTTP layer against tiny aiohttp servers started here: retries, waits, breaker, errors, counters.

Time is a ``SimClock`` with speed 0 shared by client and server, so every wait (Retry-After,
backoff, budget) is exact and costs no real time.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from aiohttp import web

from dexscan.clock import SimClock
from dexscan.config import Settings, load_settings
from dexscan.errors import BadPayload, RateLimited, SourceUnavailable
from dexscan.sources.http import CircuitOpen, HttpLayer, HttpStatusError
from dexscan.sources.jupiter import JUPITER
from dexscan.sources.transport import describe_client_error

T0 = 1_700_000_000.0
ENDPOINT = "/price/v3"


class QuietSimClock(SimClock):
    """A speed-0 ``SimClock`` whose sleeps jump ahead only once every sent request has arrived.

    A plain speed-0 clock lets a sleeping budget jump time forward while earlier requests are still
    on the loopback, so the server would stamp them later than they were sent. Here the server
    stamps every request with the time the client sent it, as on a network without latency.
    """

    def __init__(self, start: float) -> None:
        super().__init__(start)
        self.in_flight: Callable[[], int] = lambda: 0

    async def sleep(self, seconds: float) -> None:
        while self.in_flight() > 0:  # noqa: ASYNC110 - a count across client and server, no event to await
            await asyncio.sleep(0.0005)
        await super().sleep(seconds)


@dataclass
class Reply:
    status: int = 200
    body: str = "{}"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


class ScriptedServer:
    """Answers each request with the next scripted reply (the last one repeats)."""

    def __init__(self, clock: SimClock) -> None:
        self.clock: SimClock = clock
        self.replies: list[Reply] = []
        self.seen: list[Seen] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._never = asyncio.Event()

    def script(self, *replies: Reply) -> None:
        self.replies = list(replies)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.path, dict(request.query), dict(request.headers), self.clock.now()))
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if reply.hang:
            await self._never.wait()
        return web.Response(status=reply.status, body=reply.body.encode(), headers=reply.headers,
                            content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._never.set()
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0)


@pytest.fixture
async def server(clock: SimClock) -> AsyncIterator[ScriptedServer]:
    s = ScriptedServer(clock)
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


def make_settings(server: ScriptedServer, env: dict[str, str] | None = None, **http: object) -> Settings:
    overrides: dict[str, object] = {
        "sources.jupiter.base_url": server.url,
        "sources.birdeye.base_url": server.url,
        "http.breaker_failures": 3,
        "http.breaker_cooldown_s": 30.0,
        "http.retries": 2,
        "http.backoff_base_s": 0.5,
    }
    overrides.update({f"http.{k}": v for k, v in http.items()})
    return load_settings(env=env or {}).with_overrides(overrides)


@pytest.fixture
async def layer(server: ScriptedServer, clock: SimClock) -> AsyncIterator[HttpLayer]:
    async with HttpLayer(make_settings(server), clock, rng=random.Random(1)) as http:
        yield http


async def get(http: HttpLayer) -> object:
    return await http.get_json(JUPITER, None, ENDPOINT, params={"ids": "A,B"})


async def test_ok_answer_is_parsed_and_counted(server: ScriptedServer, layer: HttpLayer) -> None:
    server.script(Reply(body='{"A": {"usdPrice": 1.5}}', headers={"x-ratelimit-remaining": "29"}))
    assert await get(layer) == {"A": {"usdPrice": 1.5}}
    st = layer.stats()[JUPITER]
    assert (st.requests, st.ok, st.rate_limited, st.retries, st.error_total) == (1, 1, 0, 0, 0)
    assert st.remote_remaining == 29
    assert st.latency_ewma_ms is not None and st.latency_p50_ms is not None and st.latency_p99_ms is not None
    assert st.budgets[0].used == 1 and st.budgets[0].limit == 30
    assert st.last_ok_at == T0
    assert server.seen[0].query == {"ids": "A,B"}
    assert server.seen[0].headers["User-Agent"].startswith("dexscan/")


async def test_retry_after_seconds_is_waited_out_then_served(
        server: ScriptedServer, layer: HttpLayer, clock: SimClock) -> None:
    server.script(Reply(429, '{"code":429,"message":"Too many requests"}', {"Retry-After": "2"}),
                  Reply(body="[1]"))
    assert await get(layer) == [1]
    assert clock.now() - T0 == 2.0
    assert [s.at - T0 for s in server.seen] == [0.0, 2.0]
    st = layer.stats()[JUPITER]
    assert (st.requests, st.ok, st.rate_limited, st.retries) == (2, 1, 1, 1)
    assert st.breaker == "closed"


async def test_retry_after_http_date_is_honoured(server: ScriptedServer, layer: HttpLayer, clock: SimClock) -> None:
    when = format_datetime(datetime.fromtimestamp(T0 + 7, UTC), usegmt=True)
    server.script(Reply(429, "slow down", {"Retry-After": when}), Reply(body="{}"))
    assert await get(layer) == {}
    assert [s.at - T0 for s in server.seen] == [0.0, 7.0]


async def test_jupiter_ratelimit_reset_is_absolute_unix_seconds(
        server: ScriptedServer, layer: HttpLayer, clock: SimClock) -> None:
    server.script(Reply(429, '{"code":429}', {"x-ratelimit-reset": str(int(T0) + 5), "x-ratelimit-remaining": "-1"}),
                  Reply(body="{}"))
    assert await get(layer) == {}
    assert [s.at - T0 for s in server.seen] == [0.0, 5.0]
    assert layer.stats()[JUPITER].remote_remaining == -1


async def test_429_pauses_the_whole_bucket_for_other_callers(
        server: ScriptedServer, layer: HttpLayer, clock: SimClock) -> None:
    server.script(Reply(429, "{}", {"Retry-After": "4"}), Reply(body="{}"))
    await get(layer)
    server.script(Reply(body="{}"))
    clock.advance(1.0)
    await get(layer)  # sent right away: the 4 s pause is over since the retry went out at T0+4
    assert [s.at - T0 for s in server.seen] == [0.0, 4.0, 5.0]


async def test_429_without_header_backs_off_exponentially(
        server: ScriptedServer, layer: HttpLayer, clock: SimClock) -> None:
    server.script(Reply(429, "<html>rate limited</html>"), Reply(429, ""), Reply(body="{}"))
    assert await get(layer) == {}
    # The bucket is paused for the backoff cap (0.5 s, then 1 s; at least the 0.6 s budget margin),
    # which bounds the jittered sleep.
    assert [s.at - T0 for s in server.seen] == pytest.approx([0.0, 0.6, 1.6])
    assert layer.stats()[JUPITER].retries == 2


async def test_retry_after_beyond_the_cap_raises_rate_limited(
        server: ScriptedServer, clock: SimClock) -> None:
    server.script(Reply(429, "{}", {"Retry-After": "300"}))
    async with HttpLayer(make_settings(server, max_retry_after_s=60.0), clock) as http:
        with pytest.raises(RateLimited) as info:
            await get(http)
        assert info.value.retry_after == 300.0
        assert str(info.value) == "jupiter /price/v3: rate limited (HTTP 429); retry after 300.0s"
        assert clock.now() == T0 and len(server.seen) == 1
        server.script(Reply(body="{}"))
        await get(http)  # the bucket stays paused until the provider said
        assert server.seen[1].at - T0 == 300.0


async def test_exhausted_429_retries_raise_rate_limited(server: ScriptedServer, layer: HttpLayer) -> None:
    server.script(Reply(429, "{}", {"Retry-After": "1"}))
    with pytest.raises(RateLimited):
        await get(layer)
    st = layer.stats()[JUPITER]
    assert (st.requests, st.rate_limited, st.retries, st.breaker) == (3, 3, 2, "closed")


async def test_500_burst_trips_the_breaker_which_closes_after_cooldown(
        server: ScriptedServer, layer: HttpLayer, clock: SimClock) -> None:
    server.script(Reply(500, '{"error":"boom"}'), Reply(500, "{}"), Reply(503, "{}"), Reply(body='{"ok":true}'))
    with pytest.raises(SourceUnavailable) as first:
        await get(layer)
    assert str(first.value) == "jupiter /price/v3: HTTP 503"
    assert layer.stats()[JUPITER].breaker == "open"

    with pytest.raises(CircuitOpen) as fast:
        await get(layer)
    assert str(fast.value) == "jupiter /price/v3: circuit open, retrying in 30s"
    assert len(server.seen) == 3  # nothing was sent while open

    clock.advance(30.0)
    assert await get(layer) == {"ok": True}  # the half-open trial succeeds and closes it
    st = layer.stats()[JUPITER]
    assert st.breaker == "closed"
    assert st.breaker_opened == 1
    assert dict(st.errors) == {"http_5xx": 3, "circuit_open": 1}
    assert (st.requests, st.ok, st.retries) == (4, 1, 2)


async def test_failed_half_open_trial_reopens(server: ScriptedServer, layer: HttpLayer, clock: SimClock) -> None:
    server.script(Reply(500, "{}"))
    with pytest.raises(SourceUnavailable):
        await get(layer)
    clock.advance(30.0)
    with pytest.raises(SourceUnavailable) as trial:
        await get(layer)
    assert not isinstance(trial.value, CircuitOpen)  # the trial went out, failed, and reopened
    assert layer.stats()[JUPITER].breaker == "open"
    assert len(server.seen) == 4


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("<!DOCTYPE html><html><body>Cloudflare</body></html>", "not JSON: JSONDecodeError (starts with '<!DOCTYPE"),
        ('{"pairs": [{"pairAddress": "x"', "not JSON: JSONDecodeError (starts with '{\"pairs\""),
        ("", "not JSON: JSONDecodeError (empty body)"),
    ],
)
async def test_non_json_body_is_a_bad_payload_and_not_retried(
        server: ScriptedServer, layer: HttpLayer, body: str, problem: str) -> None:
    server.script(Reply(200, body))
    with pytest.raises(BadPayload) as info:
        await get(layer)
    assert info.value.provider == "jupiter" and info.value.endpoint == ENDPOINT
    assert info.value.field == "<body>"
    assert info.value.problem.startswith(problem)
    assert len(server.seen) == 1
    assert dict(layer.stats()[JUPITER].errors) == {"not_json": 1}


async def test_html_error_page_with_5xx_is_retried(server: ScriptedServer, layer: HttpLayer) -> None:
    server.script(Reply(502, "<html>Bad gateway</html>"), Reply(body="{}"))
    assert await get(layer) == {}
    assert dict(layer.stats()[JUPITER].errors) == {"http_5xx": 1}


async def test_4xx_is_not_retried_and_names_the_provider_message(server: ScriptedServer, layer: HttpLayer) -> None:
    server.script(Reply(404, '{"errors": [{"status": "404", "title": "Not Found"}]}'))
    with pytest.raises(HttpStatusError) as info:
        await get(layer)
    assert info.value.status == 404
    assert str(info.value) == "jupiter /price/v3: HTTP 404: Not Found (unknown path, pool or token)"
    st = layer.stats()[JUPITER]
    assert (st.requests, st.retries, st.breaker, dict(st.errors)) == (1, 0, "closed", {"http_4xx": 1})


async def test_timeouts_become_source_unavailable(server: ScriptedServer, clock: SimClock) -> None:
    server.script(Reply(hang=True))
    async with HttpLayer(make_settings(server, timeout_s=0.2, retries=1), clock) as http:
        with pytest.raises(SourceUnavailable) as info:
            await get(http)
        assert str(info.value) == "jupiter /price/v3: timed out after 0.2s"
        st = http.stats()[JUPITER]
        assert (st.requests, st.retries, dict(st.errors)) == (2, 1, {"timeout": 2})


async def test_connection_refused_is_source_unavailable(clock: SimClock) -> None:
    settings = load_settings(env={}).with_overrides({"sources.jupiter.base_url": "http://127.0.0.1:1",
                                                     "http.retries": 0})
    async with HttpLayer(settings, clock) as http:
        with pytest.raises(SourceUnavailable) as info:
            await get(http)
    assert str(info.value) == "jupiter /price/v3: connection failed: cannot connect to 127.0.0.1:1 (Connection refused)"
    assert dict(http.stats()[JUPITER].errors) == {"connection": 1}


async def test_keys_go_in_headers_and_never_into_errors(server: ScriptedServer, clock: SimClock) -> None:
    settings = make_settings(server, env={"DEXSCAN_BIRDEYE_API_KEY": "sekret-key-123"})
    server.script(Reply(401, '{"success": false, "message": "Unauthorized. Authentication required."}'))
    async with HttpLayer(settings, clock) as http:
        with pytest.raises(HttpStatusError) as info:
            await http.get_json("birdeye", None, "/defi/token_overview", params={"address": "M"},
                                headers={"X-API-KEY": "sekret-key-123", "x-chain": "solana"})
    assert server.seen[0].headers["X-API-KEY"] == "sekret-key-123"
    assert "sekret" not in str(info.value)
    assert str(info.value) == ("birdeye /defi/token_overview: HTTP 401: Unauthorized. Authentication required. "
                               "(check the API key in the environment)")


async def test_path_template_is_filled_and_named(server: ScriptedServer, layer: HttpLayer) -> None:
    server.script(Reply(body="[]"))
    await layer.get_json(JUPITER, None, "/tokens/v2/{category}/{interval}",
                         {"category": "toptrending", "interval": "1h"}, params={"limit": 5, "x": True})
    assert server.seen[0].path == "/tokens/v2/toptrending/1h"
    assert server.seen[0].query == {"limit": "5", "x": "true"}


async def test_budget_paces_a_burst_within_the_window(server: ScriptedServer) -> None:
    clock = QuietSimClock(T0)
    server.clock = clock
    server.script(Reply(body="{}"))
    settings = make_settings(server).with_overrides({"sources.jupiter.requests_per_minute": 2})
    async with HttpLayer(settings, clock) as http:
        clock.in_flight = lambda: http.stats()[JUPITER].requests - len(server.seen)
        await asyncio.gather(*(get(http) for _ in range(5)))
        st = http.stats()[JUPITER]
    times = sorted(s.at - T0 for s in server.seen)
    # Two per 60 s window, plus the 0.6 s margin (1% of the window) per wait.
    assert times == pytest.approx([0.0, 0.0, 60.6, 60.6, 121.2])
    assert st.budgets[0].waits == 2  # the 3rd and 5th waited; the 4th fit in beside the 3rd


async def test_bad_records_are_counted_by_field(layer: HttpLayer) -> None:
    layer.count_bad_record(JUPITER, ENDPOINT, "usdPrice")
    layer.count_bad_record(JUPITER, ENDPOINT, "usdPrice")
    layer.count_bad_record(JUPITER, "/tokens/v2/search", "id")
    assert dict(layer.stats()[JUPITER].bad_records) == {"usdPrice": 2, "id": 1}


def test_unknown_provider_or_bucket_is_a_programming_error(clock: SimClock) -> None:
    http = HttpLayer(load_settings(env={}), clock)
    with pytest.raises(ValueError, match="unknown provider 'nope'"):
        http.budget("nope")
    with pytest.raises(ValueError, match="dexscreener has no budget 'x'; it has pairs, profiles"):
        http.budget("dexscreener", "x")


def test_fractional_rates_widen_the_window(clock: SimClock) -> None:
    settings = load_settings(env={}).with_overrides({"sources.birdeye.requests_per_second": 0.5,
                                                     "sources.jupiter.requests_per_minute": 60})
    http = HttpLayer(settings, clock)
    assert (http.budget("birdeye").limit, http.budget("birdeye").window_s) == (1, 2.0)
    assert (http.budget("jupiter").limit, http.budget("jupiter").window_s) == (60, 60.0)
    assert http.budget("dexscreener", "pairs").limit == 300
    assert http.budget("dexscreener", "profiles").limit == 60
    assert http.budget("geckoterminal").limit == 25


def test_describe_client_error_is_short() -> None:
    import aiohttp

    assert describe_client_error(aiohttp.ServerDisconnectedError()) == "server disconnected"
