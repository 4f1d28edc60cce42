"""``dexscan doctor``: can this machine reach every data source and RPC endpoint, and how well?

One cheap call per source through the real clients (so it exercises the same HTTP layer, headers
and parsing the scanner uses), plus a raw JSON-RPC ``getHealth``/``getSlot`` per RPC endpoint and one
``getTokenLargestAccounts`` of an SPL Token mint, to report the endpoints that refuse that method
(the public mainnet endpoint answers ``-32010``, some providers ``-32601``; ``reference/external-apis.md``
§5.1): such an endpoint is healthy, it just cannot give holder shares. The endpoints' slots are then
compared as the scanner's pool compares them: one more than ``rpc.max_slot_lead`` ahead of the others
is reported unhealthy (the scanner treats it as faulty and does not use it), and a lone endpoint is
flagged as not cross-checked (:mod:`dexscan.chain.mint`: with two or more, a second must agree). Each
check is bounded by ``--timeout``. Every text in the table passes through
:func:`~dexscan.config.mask_text` (a provider's error page may echo a key, an endpoint's error its
URL). A text is masked before it is cut to fit (a cut key would no longer match).
The answer is a table, never a traceback; the exit code is 0
when every check is ok and 1 otherwise, and the last line says which (a script can rely on either).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urljoin

import aiohttp
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from dexscan.budget import BudgetState
from dexscan.clock import Clock, RealClock
from dexscan.config import Settings, mask_text, mask_url, url_secret_parts
from dexscan.demo_mode import DemoLauncher
from dexscan.domain import SOL_MINT
from dexscan.errors import BadPayload, ConfigError, RateLimited, SourceError
from dexscan.sources import birdeye_configured, build_clients
from dexscan.sources.birdeye import BIRDEYE
from dexscan.sources.dexscreener import DEXSCREENER
from dexscan.sources.geckoterminal import GECKOTERMINAL
from dexscan.sources.http import HttpLayer, HttpStatusError, ProviderStats
from dexscan.sources.jupiter import JUPITER
from dexscan.sources.transport import describe_client_error

OK = "ok"
UNREACHABLE = "unreachable"
ERROR = "error"
NOT_CONFIGURED = "not configured"
DISABLED = "disabled"
RATE_LIMITED = "rate limited"
UNHEALTHY = "unhealthy"

_STYLE = {OK: "green", UNREACHABLE: "red", ERROR: "red", RATE_LIMITED: "yellow", UNHEALTHY: "yellow",
          NOT_CONFIGURED: "dim", DISABLED: "dim"}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One row of the doctor's table."""

    name: str
    target: str  # masked URL
    status: str
    detail: str = ""
    latency_ms: float | None = None
    auth: str = "-"
    budget: str = "-"
    refused: tuple[str, ...] = ()  # RPC methods this endpoint refuses (-32010, -32601): not a failure
    slot: int | None = None  # an RPC endpoint's getSlot answer

    @property
    def ok(self) -> bool:
        return self.status == OK


# -- market-data sources -------------------------------------------------------------------


async def check_sources(settings: Settings, limit_s: float, probe_mint: str = SOL_MINT,
                        clock: Clock | None = None) -> list[CheckResult]:
    """Check Jupiter, DexScreener, GeckoTerminal and Birdeye concurrently (no retries)."""
    quick = settings.with_overrides({"http.timeout_s": min(limit_s, 300.0), "http.retries": 0})
    async with HttpLayer(quick, clock or RealClock()) as http:
        clients = build_clients(quick, http)
        src = quick.sources
        jup_auth = "key set" if quick.secrets.jupiter_api_key is not None else "keyless"

        async def jupiter() -> str:
            quotes = await clients.jupiter.prices([probe_mint])
            return f"Price v3 answered ({len(quotes)} price{'s' * (len(quotes) != 1)})"

        async def dexscreener() -> str:
            pairs = await clients.dexscreener.pairs_for_tokens([probe_mint])
            return f"/tokens/v1 answered ({len(pairs)} pair{'s' * (len(pairs) != 1)})"

        async def geckoterminal() -> str:
            pools = await clients.geckoterminal.token_pools(probe_mint)
            return f"token pools answered ({len(pools)} pool{'s' * (len(pools) != 1)})"

        async def birdeye() -> str:
            assert clients.birdeye is not None
            info = await clients.birdeye.token_overview(probe_mint)
            return f"token overview answered ({info.symbol or info.mint[:6]})"

        checks: list[Awaitable[CheckResult]] = [
            _source_check(http, JUPITER, src.jupiter.enabled, jupiter, limit_s, jup_auth),
            _source_check(http, DEXSCREENER, src.dexscreener.enabled, dexscreener, limit_s, "keyless"),
            _source_check(http, GECKOTERMINAL, src.geckoterminal.enabled, geckoterminal, limit_s, "keyless"),
        ]
        if birdeye_configured(quick):
            checks.append(_source_check(http, BIRDEYE, True, birdeye, limit_s, "key accepted"))
        results = list(await asyncio.gather(*checks))
        if not birdeye_configured(quick):
            results.append(CheckResult(
                BIRDEYE, mask_url(http.base_url(BIRDEYE)),
                DISABLED if not src.birdeye.enabled else NOT_CONFIGURED,
                ("optional; set DEXSCAN_BIRDEYE_API_KEY to use it" if src.birdeye.enabled
                 else "sources.birdeye.enabled = false"),
                auth="no key",
            ))
        return results


async def _source_check(http: HttpLayer, provider: str, enabled: bool, probe: Callable[[], Awaitable[str]],
                        limit_s: float, auth_ok: str) -> CheckResult:
    target = mask_url(http.base_url(provider))
    if not enabled:
        return CheckResult(provider, target, DISABLED, f"sources.{provider}.enabled = false")
    status, detail, auth = OK, "", auth_ok
    try:
        detail = await asyncio.wait_for(probe(), limit_s)
    except TimeoutError:
        status, detail = UNREACHABLE, f"no answer within {limit_s:g}s"
    except HttpStatusError as exc:
        status, detail = ERROR, _reason(exc)
        if exc.status == 401:
            auth = "key rejected"
        elif exc.status == 403:
            auth = "no access (plan or IP)"
    except RateLimited as exc:
        status, detail = RATE_LIMITED, _reason(exc)
    except BadPayload as exc:
        status, detail = ERROR, _reason(exc)
    except SourceError as exc:
        status, detail = UNREACHABLE, _reason(exc).removeprefix("connection failed: ")
    except Exception as exc:  # doctor must explain, never crash with a traceback
        status, detail = ERROR, mask_text(f"{exc.__class__.__name__}: {exc}", http.settings.secret_values())[:160]
    stats = http.stats()[provider]
    if status == UNREACHABLE and auth_ok != "keyless":
        auth = "unknown"
    # Latency is the HTTP layer's measurement: only an answer (of any status) has one.
    return CheckResult(provider, target, status, detail, stats.latency_ewma_ms, auth, _budget_text(stats))


def _reason(exc: SourceError) -> str:
    prefix = f"{exc.provider} {exc.endpoint}: "
    text = str(exc)
    return text[len(prefix):] if text.startswith(prefix) else text


def _budget_text(stats: ProviderStats) -> str:
    def left(b: BudgetState) -> str:
        return f"{b.limit - b.used}/{b.limit}"

    parts = [left(b) if len(stats.budgets) == 1 else f"{b.name.split('.')[-1]} {left(b)}" for b in stats.budgets]
    window = stats.budgets[0].window_s if stats.budgets else 0.0
    text = f"{', '.join(parts)} per {window:g}s"
    if stats.remote_remaining is not None:
        text += f" (provider says {stats.remote_remaining})"
    return text


# -- RPC endpoints -------------------------------------------------------------------------


#: JSON-RPC error codes by which an endpoint refuses a method it does not serve (see dexscan.chain.rpc).
_REFUSAL_CODES = (-32010, -32601)
#: SPL Token mint asked for its largest accounts (wrapped SOL: on every endpoint, Tokenkeg-owned).
HOLDER_PROBE_MINT = SOL_MINT


async def check_rpc(url: str, limit_s: float, name: str, settings: Settings,
                    probe_mint: str = HOLDER_PROBE_MINT) -> CheckResult:
    """``getHealth``, ``getSlot`` and ``getTokenLargestAccounts(probe_mint)`` by raw JSON-RPC;
    self-contained so doctor works without the chain layer."""
    target = mask_url(url)
    budget = f"{settings.rpc.requests_per_10s:g} per 10s (configured)"
    secrets = [*settings.secret_values(), *url_secret_parts(url)]  # the endpoint's text may echo its URL
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=limit_s),
            headers={"User-Agent": settings.http.user_agent},
        ) as session:
            started = time.perf_counter()
            health = await _rpc_call(session, url, "getHealth")
            slot = await _rpc_call(session, url, "getSlot")
            latency = (time.perf_counter() - started) * 1000.0 / 2
            refusal = await _refusal(session, url, "getTokenLargestAccounts", [probe_mint], secrets)
    except TimeoutError:
        return CheckResult(name, target, UNREACHABLE, f"no answer within {limit_s:g}s", budget=budget)
    except aiohttp.ClientError as exc:
        return CheckResult(name, target, UNREACHABLE, describe_client_error(exc), budget=budget)
    except _RpcProblem as exc:
        status = RATE_LIMITED if exc.rate_limited else ERROR
        return CheckResult(name, target, status, str(exc), budget=budget)
    slot_value = slot.get("result") if isinstance(slot.get("result"), int) else None
    slot_text = f"slot {slot_value}" if slot_value is not None else "slot unknown"
    refused = ("getTokenLargestAccounts",) if refusal else ()
    refused_text = (f"; refuses getTokenLargestAccounts ({refusal}): holder shares unavailable from it"
                    if refusal else "")
    if health.get("result") == "ok":
        auth = "public" if target == url else "key in URL"
        return CheckResult(name, target, OK, f"healthy, {slot_text}{refused_text}", latency, auth, budget, refused,
                           slot_value)
    err = health.get("error")
    if not isinstance(err, dict):
        err = {}
    message = mask_text(str(err.get("message") or "getHealth did not answer ok"), secrets)[:120]
    return CheckResult(name, target, UNHEALTHY, f"{message}; {slot_text}{refused_text}", latency, "-", budget,
                       refused, slot_value)


def judge_rpc_trust(rpcs: list[CheckResult], max_slot_lead: int) -> list[CheckResult]:
    """The pool's cross-endpoint rules on the doctor's rows: a slot more than ``max_slot_lead`` ahead of
    the consensus (:func:`dexscan.chain.rpc.consensus_slot`) is a fault; a lone endpoint is not cross-checked."""
    from dexscan.chain.rpc import consensus_slot

    slots = [r.slot for r in rpcs if r.ok and r.slot is not None] or [r.slot for r in rpcs if r.slot is not None]
    consensus = consensus_slot(slots)
    judged: list[CheckResult] = []
    for r in rpcs:
        lead = None if r.slot is None or consensus is None else r.slot - consensus
        if lead is not None and lead > max_slot_lead:
            r = replace(r, status=UNHEALTHY, detail=f"slot {lead} ahead of the other endpoints (more than "
                        f"rpc.max_slot_lead = {max_slot_lead}): faulty, not used; {r.detail}")
        judged.append(r)
    if len(judged) == 1:
        judged[0] = replace(judged[0], detail=f"{judged[0].detail}; the only RPC endpoint: its answers are not "
                            "cross-checked (configure a second, independent one)")
    return judged


async def _refusal(session: aiohttp.ClientSession, url: str, method: str, params: list[Any],
                   secrets: list[str]) -> str | None:
    """``"<code> <message>"`` when the endpoint refuses ``method`` (-32010, -32601), else None.

    Any other answer, an error included, says nothing about the method being served or not.
    """
    try:
        answer = await _rpc_call(session, url, method, params)
    except _RpcProblem:
        return None
    err = answer.get("error")
    if isinstance(err, dict) and err.get("code") in _REFUSAL_CODES:
        return f"{err['code']} {mask_text(str(err.get('message') or ''), secrets)[:160]}".strip()
    return None


class _RpcProblem(Exception):
    def __init__(self, message: str, rate_limited: bool = False) -> None:
        self.rate_limited = rate_limited
        super().__init__(message)


async def _rpc_call(session: aiohttp.ClientSession, url: str, method: str,
                    params: list[Any] | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        request["params"] = params
    # Not followed: the URL (and its key) would go wherever the answer points.
    async with session.post(url, json=request, allow_redirects=False) as resp:
        body = await resp.read()
        status = resp.status
        location = resp.headers.get("Location")
    if 300 <= status < 400:
        where = f" to {mask_url(urljoin(str(resp.url), location))}" if location else ""
        raise _RpcProblem(f"{method}: HTTP {status} redirect{where}, not followed (the URL's key stays with its "
                          "host); configure the endpoint's final URL")
    if status == 429:
        raise _RpcProblem(f"{method}: HTTP 429 (rate limited)", rate_limited=True)
    try:
        data = json.loads(body)
    except ValueError:
        raise _RpcProblem(f"{method}: HTTP {status}, not a JSON-RPC answer") from None
    if not isinstance(data, dict):
        raise _RpcProblem(f"{method}: HTTP {status}, not a JSON-RPC answer")
    if status >= 400 and "error" not in data:
        raise _RpcProblem(f"{method}: HTTP {status}")
    return data


# -- the command ---------------------------------------------------------------------------


async def run_checks(settings: Settings, limit_s: float, *, probe_mint: str = SOL_MINT,
                     clock: Clock | None = None, check_rpc_endpoints: bool = True,
                     holder_probe: str | None = None) -> list[CheckResult]:
    rpc_checks = [
        check_rpc(url, limit_s, f"rpc {i}", settings, holder_probe or HOLDER_PROBE_MINT)
        for i, url in enumerate(settings.rpc_endpoints(), 1)
    ] if check_rpc_endpoints else []
    sources, rpcs = await asyncio.gather(
        check_sources(settings, limit_s, probe_mint, clock),
        asyncio.gather(*rpc_checks),
    )
    secrets = settings.secret_values()
    return [replace(r, detail=mask_text(r.detail, secrets), target=mask_text(r.target, secrets))
            for r in (*sources, *judge_rpc_trust(list(rpcs), settings.rpc.max_slot_lead))]


def render(results: list[CheckResult], console: Console, title: str) -> None:
    """One row per check: status and its short reason first, then latency, auth and budget."""
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("source", overflow="fold", ratio=2)
    table.add_column("status", overflow="fold", ratio=4)
    table.add_column("latency", justify="right", no_wrap=True)
    table.add_column("auth", no_wrap=True)
    table.add_column("budget left", overflow="fold", ratio=2)
    for r in results:
        style = _STYLE.get(r.status, "")
        status = f"[{style}]{r.status}[/]" if style else r.status
        table.add_row(
            f"{r.name}\n[dim]{r.target}[/]",
            f"{status}: {r.detail}" if r.detail else status,
            f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "-",
            r.auth,
            r.budget,
        )
    console.print(table)
    console.print(summary(results))


def summary(results: list[CheckResult]) -> str:
    """The last line: how many checks are ok, and the exit code when not all of them are."""
    ok = sum(r.ok for r in results)
    if ok == len(results):
        return f"{ok} of {len(results)} checks ok."
    return f"{ok} of {len(results)} checks ok: not every check passed (exit code 1)."


async def run_doctor(settings: Settings, args: argparse.Namespace, demo: DemoLauncher | None = None) -> int:
    timeout = float(getattr(args, "timeout", None) or 5.0)
    console = Console(width=None if sys.stdout.isatty() else 160)
    if getattr(args, "demo", False):
        if demo is None:
            raise ConfigError("doctor --demo: no demo world was handed over (run it as `dexscan doctor --demo`)")
        # the demo world's loopback fakes, two RPC endpoints; the Birdeye fake's own key is
        # configured so that the optional source is checked too
        async with demo.world(settings, rpc_endpoints=2) as world:
            secrets = world.settings.secrets.model_copy(update={"birdeye_api_key": SecretStr(world.birdeye_api_key)})
            results = await run_checks(world.settings.model_copy(update={"secrets": secrets}), timeout,
                                       probe_mint=world.tokens[0], clock=world.clock,
                                       holder_probe=world.spl_mints[0] if world.spl_mints else world.tokens[0])
        render(results, console, "dexscan doctor --demo (the built-in loopback fakes)")
        return 0 if all(r.ok for r in results) else 1
    results = await run_checks(settings, timeout)
    render(results, console, "dexscan doctor")
    return 0 if all(r.ok for r in results) else 1
