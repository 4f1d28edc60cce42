"""The exception hierarchy, one branch per boundary.

Messages name the source, the endpoint or field, and what to do, because users read them in a
terminal at 3 a.m. They never contain secrets: callers pass masked endpoint names.
"""

from __future__ import annotations


class DexscanError(Exception):
    """Base of every error dexscan raises on purpose."""


class ConfigError(DexscanError):
    """Settings are invalid: names the key and the file."""


class InputError(DexscanError):
    """User input (a mint, a command argument) is invalid."""


class StoreError(DexscanError):
    """The database file cannot be opened or written (a full disk, a file size limit, no permission):
    names the file and what to do."""


class DatabaseLocked(StoreError):
    """Another connection held the database file's write lock for longer than a writer waits
    (:class:`dexscan.store.connection.LockWait`): names the file, who may hold it and what to do."""


class SourceError(DexscanError):
    """A market-data provider failed. ``provider`` and ``endpoint`` say which."""

    def __init__(self, provider: str, endpoint: str, message: str) -> None:
        self.provider = provider
        self.endpoint = endpoint
        super().__init__(f"{provider} {endpoint}: {message}")


class RateLimited(SourceError):
    """The provider answered 429 (or its equivalent). ``retry_after`` seconds, when it said."""

    def __init__(self, provider: str, endpoint: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        wait = f"; retry after {retry_after:.1f}s" if retry_after is not None else ""
        super().__init__(provider, endpoint, f"rate limited (HTTP 429){wait}")


class SourceUnavailable(SourceError):
    """Transport failure, timeout, 5xx, or an open circuit breaker."""


class BadPayload(SourceError):
    """A response or one record in it does not match the contract. ``field`` names where."""

    def __init__(self, provider: str, endpoint: str, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(provider, endpoint, f"bad payload at {field}: {problem}")


class RpcError(DexscanError):
    """Base of Solana RPC failures."""


class RpcUnavailable(RpcError):
    """No healthy RPC endpoint could serve the call."""


class RpcBadAnswer(RpcError):
    """An RPC answer that does not match the JSON-RPC contract. ``field`` names where."""

    def __init__(self, method: str, field: str, problem: str) -> None:
        self.method = method
        self.field = field
        self.problem = problem
        super().__init__(f"{method}: bad answer at {field}: {problem}")
