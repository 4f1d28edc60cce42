"""An RPC 429 is read with the HTTP layer's one Retry-After parser: seconds and HTTP dates alike."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import httpx2
import pytest
from solana.exceptions import SolanaRpcException

from dexscan.chain.rpc_failures import classify

NOW = 1_773_479_525.0


def _rate_limited(headers: dict[str, str]) -> SolanaRpcException:
    """What solana-py raises for an HTTP 429: its ``raise_for_status`` error as the cause."""
    request = httpx2.Request("POST", "https://rpc.example")
    response = httpx2.Response(429, headers=headers, request=request)
    cause = httpx2.HTTPStatusError("429", request=request, response=response)
    try:  # as solana-py's handle_exceptions decorator raises it: (exc, func, self, request body)
        raise SolanaRpcException(cause, _rate_limited, None, "getSlot") from cause
    except SolanaRpcException as exc:
        return exc


@pytest.mark.parametrize(("headers", "wait"), [
    ({"Retry-After": "7"}, 7.0),
    ({"retry-after": format_datetime(datetime.fromtimestamp(NOW + 30, UTC), usegmt=True)}, 30.0),
    ({"x-ratelimit-reset": str(int(NOW) + 12)}, 12.0),
    ({"Retry-After": "soon"}, None),
    ({}, None),
])
def test_an_rpc_429_waits_what_its_headers_say(headers: dict[str, str], wait: float | None) -> None:
    failure = classify(_rate_limited(headers), NOW)
    assert failure is not None
    assert (failure.kind, failure.message) == ("http 429", "HTTP 429")
    assert failure.retry_after == (None if wait is None else pytest.approx(wait))
