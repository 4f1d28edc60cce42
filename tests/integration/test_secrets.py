"""No secret leaves its host or reaches an output (issue 17 point 5).

A redirect to another host (the market fake's ``redirect`` fault: a second server, ``localhost`` on
another port, that records every request) is not followed, so the Birdeye key never reaches it; a
same-origin redirect is followed with the key. Log records are masked in their message, exception
text and traceback; ``dexscan doctor`` masks every error text it shows.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from rich.console import Console

from dexscan.config import load_settings, mask_text, url_secret_parts
from dexscan.demo.market_sim import MarketSim, SimConfig
from dexscan.doctor import check_rpc, render, run_checks
from dexscan.domain import SOL_MINT
from dexscan.logs import setup_logging
from dexscan.sources.birdeye import BIRDEYE
from dexscan.sources.http import RedirectRefused
from dexscan.sources.jupiter import JUPITER
from tests.integration.test_clients import market

BIRDEYE_KEY = "be-key-4f1c2a9e7b3d"
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
RPC_URL_KEY = "7c1e5b2d-9a4f-4e8b-b6d1-3f2a8c9e0d17"


@pytest.fixture(scope="module")
def sim() -> MarketSim:
    return MarketSim(SimConfig(seed=7, n_tokens=20))


# -- redirects ----------------------------------------------------------------------------------


async def test_cross_host_redirect_is_refused_and_the_key_never_reaches_the_other_host(sim: MarketSim) -> None:
    async with market(sim, birdeye_key=BIRDEYE_KEY) as env:
        env.fakes.birdeye_api_key = BIRDEYE_KEY
        assert env.clients.birdeye is not None
        env.fakes.faults.inject(BIRDEYE, "redirect")
        mint = env.sim.tokens[0].mint
        with pytest.raises(RedirectRefused) as info:
            await env.clients.birdeye.token_overview(mint)
        port = env.fakes.elsewhere.url.rsplit(":", 1)[1]
        assert str(info.value) == (
            f"birdeye /defi/token_overview: HTTP 302 redirect to another host (http://localhost:{port}/***), not "
            "followed so that no key leaves the provider's host; if birdeye moved, set sources.birdeye.base_url "
            "to the new address")
        assert env.fakes.elsewhere.requests == []  # not one byte went to the other host
        stats = env.http.stats()[BIRDEYE]
        assert stats.errors == {"redirect": 1}
        assert (stats.requests, stats.retries, stats.breaker) == (1, 0, "closed")
        assert env.fakes.stats(BIRDEYE).by_status == {302: 1}
        overview = await env.clients.birdeye.token_overview(mint)  # the next answer is served as usual
        assert overview.mint == mint


async def test_same_origin_redirect_is_followed_with_the_key(sim: MarketSim) -> None:
    async with market(sim, birdeye_key=BIRDEYE_KEY) as env:
        env.fakes.birdeye_api_key = BIRDEYE_KEY
        assert env.clients.birdeye is not None
        env.fakes.faults.inject(BIRDEYE, "redirect_same")
        mint = env.sim.tokens[0].mint
        overview = await env.clients.birdeye.token_overview(mint)
        assert overview.mint == mint
        assert env.fakes.stats(BIRDEYE).by_status == {307: 1, 200: 1}  # the 200 needed the key: it was sent
        assert env.http.stats()[BIRDEYE].errors == {}


async def test_redirect_loop_is_cut_after_five_hops(sim: MarketSim) -> None:
    async with market(sim) as env:
        env.fakes.faults.inject(JUPITER, "redirect_same", count=10)
        with pytest.raises(RedirectRefused, match=r"^jupiter /price/v3: HTTP 307 redirect: more than 5 in a row"):
            await env.clients.jupiter.prices([SOL_MINT])
        assert env.fakes.stats(JUPITER).by_status == {307: 6}
        assert env.http.stats()[JUPITER].errors == {"redirect": 1}


# -- the one masking rule -----------------------------------------------------------------------


def test_mask_text_masks_values_and_secret_shapes() -> None:
    rpc = f"https://mainnet.example-rpc.com/?api-key={RPC_URL_KEY}"
    secrets = [BIRDEYE_KEY, *url_secret_parts(rpc)]
    text = (f"GET {rpc} failed; key {BIRDEYE_KEY}; X-API-KEY: {BIRDEYE_KEY}x; POST /bot{BOT_TOKEN}/getMe; "
            f"https://other.example/v1?token=abcdef123&x=1; Authorization: Bearer eyJhbGciOi; "
            f"https://user:hunter22@db.example/; just {RPC_URL_KEY}")
    assert mask_text(text, secrets) == (
        "GET *** failed; key ***; X-API-KEY: ***; POST /bot***/getMe; https://other.example/v1?token=***&x=1; "
        "Authorization: ***; https://***@db.example/; just ***")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    for h in saved[0]:
        root.addHandler(h)
    root.setLevel(saved[1])


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.usefixtures("restore_logging")
def test_log_filter_masks_exception_text_and_traceback(tmp_path: Path, fmt: str) -> None:
    settings = load_settings(env={"DEXSCAN_TELEGRAM_TOKEN": BOT_TOKEN, "DEXSCAN_BIRDEYE_API_KEY": BIRDEYE_KEY})
    log_file = tmp_path / "dexscan.log"
    setup_logging("INFO", fmt, file=log_file, secrets=settings.secret_values())
    page = (f"<html><body>502 Bad Gateway: POST https://api.telegram.org/bot{BOT_TOKEN}/getMe "
            f"(X-API-KEY {BIRDEYE_KEY})</body></html>")
    try:
        raise RuntimeError(page)
    except RuntimeError:
        logging.getLogger("dexscan.test").exception("telegram: start-up failed: %s", page)
    logging.getLogger("dexscan.test").error("again", exc_info=RuntimeError(page), stack_info=True)
    for h in logging.getLogger().handlers:
        h.flush()
    written = log_file.read_text(encoding="utf-8")
    assert BOT_TOKEN not in written and BIRDEYE_KEY not in written
    assert BOT_TOKEN.split(":")[1] not in written
    assert written.count("RuntimeError: <html>") == 2  # the tracebacks are there, masked
    if fmt == "json":
        records = [json.loads(line) for line in written.splitlines()]
        assert [r["msg"].startswith("telegram: start-up failed: <html>") for r in records] == [True, False]
        assert all("bot***/getMe" in r["exc"] for r in records)
    else:
        assert "POST https://api.telegram.org/bot***/getMe (X-API-KEY ***)" in written


async def test_doctor_masks_echoed_keys_and_rpc_urls(sim: MarketSim) -> None:
    """A Birdeye 401 page echoing the key and an RPC endpoint whose error echoes its URL with the key."""
    async def rpc(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"jsonrpc": "2.0", "id": body["id"], "error": {
            "code": -32000, "message": f"invalid api key for {request.url} ({request.query['api-key']})"}})

    app = web.Application()
    app.router.add_post("/", rpc)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rpc_url = f"http://127.0.0.1:{port}/?api-key={RPC_URL_KEY}"
    try:
        async with market(sim, birdeye_key=BIRDEYE_KEY) as env:
            env.fakes.birdeye_api_key = BIRDEYE_KEY
            env.fakes.faults.inject(BIRDEYE, "key_echo")  # a 401 that repeats the key it was sent
            settings = load_settings(env={"DEXSCAN_BIRDEYE_API_KEY": BIRDEYE_KEY, "DEXSCAN_RPC_URLS": rpc_url,
                                          "DEXSCAN_TELEGRAM_TOKEN": BOT_TOKEN}).with_overrides(
                {**env.fakes.settings_overrides(), "rpc.endpoints": []})
            results = await run_checks(settings, 5.0, probe_mint=env.sim.tokens[0].mint, clock=env.clock)
    finally:
        await runner.cleanup()
    out = io.StringIO()
    render(results, Console(file=out, width=400), "dexscan doctor")
    shown = out.getvalue()
    birdeye = next(r for r in results if r.name == BIRDEYE)
    rpc_row = next(r for r in results if r.name == "rpc 1")
    assert birdeye.detail == "HTTP 401: Unauthorized key ***. (check the API key in the environment)"
    assert rpc_row.target == f"http://127.0.0.1:{port}/***"
    assert rpc_row.detail.startswith("invalid api key for *** (***)")
    assert BIRDEYE_KEY not in shown and RPC_URL_KEY not in shown and BOT_TOKEN not in shown
    assert "Unauthorized key ***" in shown


async def test_doctor_does_not_follow_an_rpc_redirect() -> None:
    seen: list[str] = []

    async def moved(request: web.Request) -> web.Response:
        return web.Response(status=308, headers={"Location": f"http://localhost:{port}/elsewhere?{request.query_string}"})

    async def elsewhere(request: web.Request) -> web.Response:
        seen.append(request.query_string)
        return web.json_response({"jsonrpc": "2.0", "id": 1, "result": "ok"})

    app = web.Application()
    app.router.add_post("/", moved)
    app.router.add_post("/elsewhere", elsewhere)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        settings = load_settings(env={})
        result = await check_rpc(f"http://127.0.0.1:{port}/?api-key={RPC_URL_KEY}", 5.0, "rpc 1", settings)
    finally:
        await runner.cleanup()
    assert seen == []
    assert (result.status, result.detail) == ("error", (
        f"getHealth: HTTP 308 redirect to http://localhost:{port}/***, not followed (the URL's key stays with its "
        "host); configure the endpoint's final URL"))
