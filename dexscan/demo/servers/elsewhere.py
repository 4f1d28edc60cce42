""""Another host" for the redirect faults of the HTTP fakes (market data, Telegram).

A fake that redirects a client elsewhere points it at an :class:`ElsewhereHost`: a server on its own
port, addressed as ``localhost`` (not 127.0.0.1), so it differs from every fake in host *and* port. It
records every request it gets, headers and query included (:attr:`ElsewhereHost.requests`), and answers
404 with the body its fake gives it: a test sees exactly what a client would have handed to a stranger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """A request as the other host got it: everything a client sent there."""

    method: str
    path: str
    query: str
    headers: dict[str, str]


class ElsewhereHost:
    """The other host: ``await start()`` gives its URL, ``requests`` what reached it, ``stop()`` ends it."""

    def __init__(self, not_found: Mapping[str, Any]) -> None:
        self.not_found = dict(not_found)
        self.url = ""
        self.requests: list[SeenRequest] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        if self._runner is None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._answer)
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
            self.url = f"http://localhost:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _answer(self, request: web.Request) -> web.Response:
        self.requests.append(SeenRequest(request.method, request.path, request.query_string, dict(request.headers)))
        return web.json_response(self.not_found, status=404)
