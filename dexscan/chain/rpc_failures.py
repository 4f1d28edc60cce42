"""What an RPC call's failure means for the pool: fail over (timeout, transport, HTTP 429/5xx, a node
behind, an unreadable or oversized answer), count a refusal of the method (``-32010``, ``-32601``:
the node is up), or give up because the request itself is wrong (``-32602``)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx2
from solana.exceptions import SolanaRpcException
from solana.rpc.core import RPCException
from solana.rpc.jsonrpc import SolanaJsonRpcError
from solders.rpc.errors import (
    InvalidParamsMessage,
    KeyExcludedFromSecondaryIndexMessage,
    MethodNotFoundMessage,
    NodeUnhealthyMessage,
)

from dexscan.chain.endpoint import RpcAnswerTooLarge
from dexscan.sources.transport import retry_after_s

NODE_UNHEALTHY = -32005
INVALID_PARAMS = -32602
KEY_EXCLUDED_FROM_SECONDARY_INDEX = -32010
METHOD_NOT_FOUND = -32601
#: JSON-RPC error codes by which an endpoint refuses a method (or a method for a key) it does not serve.
REFUSAL_CODES = frozenset({KEY_EXCLUDED_FROM_SECONDARY_INDEX, METHOD_NOT_FOUND})


@dataclass(frozen=True, slots=True)
class Failure:
    kind: str  # timeout | transport | http <code> | unhealthy | rpc error | bad response | refused
    message: str
    retry_after: float | None = None
    slots_behind: int | None = None


def classify(exc: BaseException, now: float) -> Failure | None:
    """What went wrong, as a failover decision; ``None`` for errors of the request itself. ``now``
    (the pool's clock) dates a 429's ``Retry-After``."""
    if isinstance(exc, TimeoutError):
        return Failure("timeout", "timed out")
    if isinstance(exc, SolanaRpcException):
        cause = exc.__cause__
        if isinstance(cause, httpx2.HTTPStatusError):
            status = cause.response.status_code
            retry = retry_after_s(cause.response.headers, now)
            return Failure(f"http {status}", f"HTTP {status}", retry_after=retry)
        if isinstance(cause, httpx2.TimeoutException):
            return Failure("timeout", f"timed out ({type(cause).__name__})")
        if isinstance(cause, RpcAnswerTooLarge):
            return Failure("too_large", str(cause))
        return Failure("transport", f"transport error ({type(cause).__name__ if cause else type(exc).__name__})")
    if isinstance(exc, RPCException):
        err = exc.args[0] if exc.args else None
        if isinstance(err, NodeUnhealthyMessage):
            return Failure("unhealthy", f"-32005 {err.message}", slots_behind=err.data.num_slots_behind)
        if isinstance(err, InvalidParamsMessage):
            return None
        if isinstance(err, KeyExcludedFromSecondaryIndexMessage):
            return Failure("refused", f"{KEY_EXCLUDED_FROM_SECONDARY_INDEX} {err.message}")
        if isinstance(err, MethodNotFoundMessage):
            return Failure("refused", f"{METHOD_NOT_FOUND} {err.message}")
        return Failure("rpc error", f"RPC error {getattr(err, 'message', err)}")
    if isinstance(exc, SolanaJsonRpcError):
        if exc.code == NODE_UNHEALTHY:
            behind = exc.data.get("numSlotsBehind") if isinstance(exc.data, dict) else None
            return Failure("unhealthy", f"-32005 {exc.message}", slots_behind=behind)
        if exc.code == INVALID_PARAMS:
            return None
        if exc.code in REFUSAL_CODES:
            return Failure("refused", f"{exc.code} {exc.message}")
        return Failure("rpc error", f"RPC error {exc.code} {exc.message}")
    if isinstance(exc, RpcAnswerTooLarge):
        return Failure("too_large", str(exc))
    if isinstance(exc, httpx2.HTTPError):
        return Failure("transport", f"transport error ({type(exc).__name__})")
    return Failure("bad response", f"unreadable answer ({type(exc).__name__}: {exc})")


def request_error_text(exc: BaseException) -> str:
    if isinstance(exc, RPCException) and exc.args:
        return str(getattr(exc.args[0], "message", exc.args[0]))
    if isinstance(exc, SolanaJsonRpcError):
        return exc.message
    return str(exc)
