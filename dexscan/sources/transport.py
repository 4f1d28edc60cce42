"""What the wire did, in words the rest of dexscan uses: a transport error described without its
URL (:func:`describe_client_error`), a dropped connection ended as one attempt rather than resent
behind the budgets' back (:func:`one_send_per_attempt`), and how long a rate-limited answer asks us
to wait (:func:`retry_after_s`, for the HTTP layer and the RPC pool alike)."""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import aiohttp

log = logging.getLogger(__name__)


def retry_after_s(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``x-ratelimit-reset`` (unix
    seconds), at ``now``; None when neither says. The one parser for the HTTP layer and the RPC pool.
    ``headers`` is looked up case-insensitively by aiohttp and httpx alike."""
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError, IndexError):
            log.debug("unparseable Retry-After header %r", value)
    reset = headers.get("x-ratelimit-reset")
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            log.debug("unparseable x-ratelimit-reset header %r", reset)
    return None


class ConnectionDropped(aiohttp.ClientError):
    """A connection dropped under a request (reset, server disconnected), raised by
    :func:`one_send_per_attempt` in place of aiohttp's own error. ``cause`` is that error."""

    def __init__(self, cause: aiohttp.ClientError) -> None:
        super().__init__(str(cause))
        self.cause = cause


async def one_send_per_attempt(req: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
                               ) -> aiohttp.ClientResponse:
    """Client middleware: one request on the wire per attempt of ours.

    aiohttp silently sends an idempotent request (a GET) a second time when a kept-alive connection
    drops under it (a :class:`aiohttp.ClientOSError` or :class:`aiohttp.ServerDisconnectedError`
    out of the middlewares; RFC 9112 §9.3.1): a request no budget allowed and no counter saw.
    Raised as :class:`ConnectionDropped` (an :class:`aiohttp.ClientError` aiohttp does not resend
    on), the drop ends the attempt, and our retry, budgeted and counted, takes over. A connection
    that could not be opened (:class:`aiohttp.ClientConnectorError`) is never resent by aiohttp and
    passes unchanged.
    """
    try:
        return await handler(req)
    except aiohttp.ClientConnectorError:
        raise
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
        raise ConnectionDropped(exc) from exc


def describe_client_error(exc: BaseException) -> str:
    """A short, URL-free reason for an aiohttp transport error (shown in logs and by doctor).

    A TLS failure is named as one, with what to check: its ``errno`` is OpenSSL's 1, which
    ``os.strerror`` would turn into a misleading "Operation not permitted".
    """
    if isinstance(exc, ConnectionDropped):
        return describe_client_error(exc.cause)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert = exc.certificate_error
        reason = getattr(cert, "verify_message", None) or _ssl_reason(cert)
        return (f"TLS certificate of {exc.host}:{exc.port} not accepted ({reason}): check the host name in the "
                "URL, the system clock and CA certificates (SSL_CERT_FILE), or a proxy intercepting TLS")
    if isinstance(exc, aiohttp.ClientSSLError):
        return (f"TLS handshake with {exc.host}:{exc.port} failed ({_ssl_reason(exc.os_error)}): the server may "
                "not speak TLS there (an https:// URL for an http:// server?), or a proxy interferes")
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_err = exc.os_error
        if isinstance(os_err, socket.gaierror) or not os_err.errno:
            reason = os_err.strerror or os_err.__class__.__name__
        else:
            reason = os.strerror(os_err.errno)
        return f"cannot connect to {exc.host}:{exc.port} ({reason})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "response body cut off"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"bad response ({exc.status})"
    return exc.__class__.__name__


def _ssl_reason(err: BaseException) -> str:
    """OpenSSL's words without its source location: ``[SSL: X] wrong version number (_ssl.c:1006)``
    becomes ``wrong version number``."""
    text = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
    text = re.sub(r"\s*\(_ssl\.c:\d+\)$", "", re.sub(r"^\[[^\]]*\]\s*", "", text))
    return text or type(err).__name__
