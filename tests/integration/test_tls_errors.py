"""A TLS failure is reported as one, with what to check (issue 17 point 10), not as OpenSSL's errno 1
read as "Operation not permitted".

Two real failures on 127.0.0.1: an ``https://`` URL for a plain HTTP server (the handshake fails),
and a server whose certificate is self-signed (``tls/localhost-cert.pem``, a test-only key pair).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from dexscan.clock import SimClock
from dexscan.config import load_settings
from dexscan.doctor import check_rpc
from dexscan.errors import SourceUnavailable
from dexscan.sources.http import HttpLayer
from dexscan.sources.jupiter import JUPITER

TLS = Path(__file__).parent / "tls"


@pytest.fixture
async def ports() -> AsyncIterator[tuple[int, int]]:
    """(plain HTTP port, TLS port with a self-signed certificate)."""
    async def answer(_request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(TLS / "localhost-cert.pem", TLS / "localhost-key.pem")
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx).start()
    plain, tls = (a[1] for a in runner.addresses)
    try:
        yield plain, tls
    finally:
        await runner.cleanup()


async def _fetch_error(url: str) -> str:
    settings = load_settings(env={}).with_overrides({"sources.jupiter.base_url": url, "http.retries": 0})
    async with HttpLayer(settings, SimClock(1_700_000_000)) as http:
        with pytest.raises(SourceUnavailable) as info:
            await http.get_json(JUPITER, None, "/price/v3")
        assert dict(http.stats()[JUPITER].errors) == {"connection": 1}
    return str(info.value)


async def test_self_signed_certificate_is_a_certificate_error(ports: tuple[int, int]) -> None:
    _, tls = ports
    assert await _fetch_error(f"https://127.0.0.1:{tls}") == (
        f"jupiter /price/v3: connection failed: TLS certificate of 127.0.0.1:{tls} not accepted (self-signed "
        "certificate): check the host name in the URL, the system clock and CA certificates (SSL_CERT_FILE), "
        "or a proxy intercepting TLS")


async def test_https_to_a_plain_http_server_is_a_handshake_error(ports: tuple[int, int]) -> None:
    plain, _ = ports
    assert await _fetch_error(f"https://127.0.0.1:{plain}") == (
        f"jupiter /price/v3: connection failed: TLS handshake with 127.0.0.1:{plain} failed (wrong version "
        "number): the server may not speak TLS there (an https:// URL for an http:// server?), or a proxy "
        "interferes")


async def test_doctor_names_the_tls_failure_of_an_rpc_endpoint(ports: tuple[int, int]) -> None:
    _, tls = ports
    result = await check_rpc(f"https://127.0.0.1:{tls}", 5.0, "rpc 1", load_settings(env={}))
    assert (result.status, result.detail) == ("unreachable", (
        f"TLS certificate of 127.0.0.1:{tls} not accepted (self-signed certificate): check the host name in the "
        "URL, the system clock and CA certificates (SSL_CERT_FILE), or a proxy intercepting TLS"))
    assert "Operation not permitted" not in result.detail
