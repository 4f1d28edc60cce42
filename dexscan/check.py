"""``dexscan check MINT...``: run every gate on some mints and show each verdict with its reason.

The chain is read through the RPC failover pool (:mod:`dexscan.chain`), the market through
DexScreener; both run concurrently. A source that cannot be reached leaves its gates *unverified*
(exit 1), never a crash. ``--demo`` runs the same code against a LiteSVM-backed RPC fake and, when
present, the loopback market fakes, so the command can be tried without the internet.

Exit codes: 0 when every mint passes every gate, 1 when any gate fails or is unverified, 2 on bad
input (raised as :class:`~dexscan.errors.InputError`, which the CLI prints as one line).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from dexscan.chain.mint import MintInspector, address_problem
from dexscan.chain.rpc import EndpointState, RpcPool, describe
from dexscan.clock import Clock, RealClock
from dexscan.config import Settings
from dexscan.demo_mode import DemoLauncher
from dexscan.domain import GateStatus, GateVerdict, MintFacts
from dexscan.errors import ConfigError, InputError
from dexscan.gates import admitted
from dexscan.gates.safety import Top10HoldersGate
from dexscan.store import Store
from dexscan.store.connection import LockWait
from dexscan.store.gates import facts_to_json
from dexscan.universe import DexScreenerSource, Universe

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class MintCheck:
    mint: str
    verdicts: list[GateVerdict]
    facts: MintFacts
    pools: int
    symbol: str | None

    @property
    def admitted(self) -> bool:
        return admitted(self.verdicts)


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Everything one check run learnt: verdicts per mint, which endpoint served, and timings."""

    checks: list[MintCheck]
    rpc: list[EndpointState]
    chain_ms: float
    market_ms: float
    market_note: str  # what DexScreener said, e.g. "3 pools" or "unreachable: ..."
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def all_admitted(self) -> bool:
        return all(c.admitted for c in self.checks)


def validate_mints(texts: Sequence[str]) -> list[str]:
    """Distinct mints in input order, or :class:`InputError` naming the first bad one."""
    mints: list[str] = []
    for raw in texts:
        text = raw.strip()
        problem = address_problem(text)
        if problem is not None:
            raise InputError(f"invalid mint address: {problem}")
        if text not in mints:
            mints.append(text)
    return mints


@dataclass(frozen=True, slots=True)
class _PoolSource:
    """What ``dexscan check`` gives the scanner's :class:`~dexscan.universe.Universe`: DexScreener's
    pool lists (None when disabled), and no discovery feed."""

    dexscreener: DexScreenerSource | None
    jupiter: None = None


async def check_mints(settings: Settings, mints: Sequence[str], clock: Clock | None = None,
                      store: Store | None = None) -> CheckReport:
    """Read chain and market for ``mints`` (already validated) and run every enabled gate.

    Inputs and verdicts come from :meth:`dexscan.universe.Universe.examine` — the scanner's own path:
    each token's pools from DexScreener ``/token-pairs/v1`` (base or quote side, volume summed over
    them, the main pool by :func:`dexscan.domain.main_pool`), its on-chain facts, the same gates. The
    top-10 holders are read even when their gate is off (the table reports them).
    """
    clock = clock or RealClock()
    mints = list(mints)
    async with contextlib.AsyncExitStack() as stack:
        pool = await stack.enter_async_context(RpcPool.from_settings(settings, clock))
        if len(pool.names) > 1:
            await pool.check_health()  # an endpoint with an implausible slot lead is then not used
        inspector = MintInspector(pool, settings, clock, store)
        dexscreener: DexScreenerSource | None = None
        note = "DexScreener disabled (sources.dexscreener.enabled = false)"
        if settings.sources.dexscreener.enabled:
            from dexscan.sources.dexscreener import DexScreenerClient
            from dexscan.sources.http import HttpLayer

            http = await stack.enter_async_context(HttpLayer(settings, clock))
            dexscreener = DexScreenerClient(http, settings)
        universe = Universe(settings, None, _PoolSource(dexscreener), inspector, clock)
        got = await universe.examine(mints, int(clock.now()), holders=True)
        rpc_state = pool.state()
    if got.pools_error is not None:
        note = f"DexScreener unreachable: {got.pools_error}"
    elif got.pools is not None:
        n = len({p.pair_address for pools in got.pools.values() for p in pools})
        note = f"DexScreener: {n} pool{'s' if n != 1 else ''}"
    checks: list[MintCheck] = []
    for m in mints:
        inp = got.inputs[m]
        assert inp.facts is not None
        symbol = next((p.base_symbol for p in inp.pairs if p.base_mint == m and p.base_symbol), None)
        checks.append(MintCheck(m, got.verdicts[m], inp.facts, len(inp.pairs), symbol))
    if store is not None:
        await store.save_verdicts(v for c in checks for v in c.verdicts)
    return CheckReport(checks, rpc_state, got.chain_ms, got.market_ms, note)


# -- output -------------------------------------------------------------------------------------

_STYLE = {GateStatus.PASS: "green", GateStatus.FAIL: "red", GateStatus.UNVERIFIED: "yellow"}


def _top10_line(f: MintFacts, settings: Settings) -> str:
    share = "unknown" if f.top10_share_pct is None else f"{f.top10_share_pct:.1f}%"
    if f.top10_share_pct is None and f.holders_unavailable:
        share = f"unknown ({f.holders_unavailable})"
    top10 = settings.gates.params_for(Top10HoldersGate.Params)
    mode = f"gate <= {top10.max_top10_pct:.1f}%" if Top10HoldersGate.enabled(top10) else "reported only; gate off"
    return f"top-10 holders {share} (pool vaults and bonding curves excluded; {mode})"


def _vouched_text(f: MintFacts, endpoints: int) -> str:
    """Who vouched for the mint's facts: the confirming endpoint, or that one endpoint's word stood alone."""
    if len(f.vouched_by) > 1:
        return f", confirmed by {', '.join(f.vouched_by[1:])}"
    if f.is_mint and f.vouched_by and endpoints == 1:
        return (" (only RPC endpoint: its answer is not cross-checked; configure a second, independent "
                "endpoint)")
    return ""


def render(report: CheckReport, settings: Settings, console: Console) -> None:
    for c in report.checks:
        outcome = ("[green]ADMITTED[/]" if c.admitted else
                   "[red]REJECTED[/]" if any(v.status is GateStatus.FAIL for v in c.verdicts) else
                   "[yellow]UNVERIFIED[/]")
        title = f"{c.symbol + '  ' if c.symbol else ''}{c.mint}  {outcome}"
        table = Table(title=title, title_justify="left")
        table.add_column("gate", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("reason", overflow="fold")
        for v in c.verdicts:
            table.add_row(v.gate, f"[{_STYLE[v.status]}]{v.status.value}[/]", v.reason)
        console.print(table)
        f = c.facts
        served = f.endpoint or "no endpoint"
        slot = f" at slot {f.slot}" if f.slot is not None else ""
        console.print(f"  chain: {served}{slot}{_vouched_text(f, len(report.rpc))}; {_top10_line(f, settings)}")
    console.print(f"chain read in {report.chain_ms:.0f} ms; market read in {report.market_ms:.0f} ms "
                  f"({report.market_note})")
    for s in report.rpc:
        latency = f"latency {s.latency_ms:.0f} ms" if s.latency_ms is not None else "no answer"
        failed = f"{s.failures} failed ({s.last_error})" if s.failures else "0 failed"
        refused = f", refuses {', '.join(s.refused)}" if s.refused else ""
        faulty = f", FAULTY: slot {s.slot_lead} ahead of the others, not used" if s.faulty else ""
        disputes = dict(s.errors).get("disagreement", 0)
        disagreed = (f", disagreed with another endpoint on {disputes} mint{'s' if disputes != 1 else ''}"
                     if disputes else "")
        console.print(f"  rpc {s.name}: {s.served} served, {failed}, breaker {s.breaker}, {latency}{refused}"
                      f"{faulty}{disagreed}")
    passed = sum(c.admitted for c in report.checks)
    console.print(f"{passed} of {len(report.checks)} mint{'s' if len(report.checks) != 1 else ''} passed every gate.")


def as_json(report: CheckReport) -> dict[str, Any]:
    return {
        "mints": [
            {"mint": c.mint, "symbol": c.symbol, "admitted": c.admitted, "pools": c.pools,
             "verdicts": [{"gate": v.gate, "status": v.status.value, "reason": v.reason, "checked_at": v.checked_at,
                           "details": dict(v.details)} for v in c.verdicts],
             "facts": json.loads(facts_to_json(c.facts))}
            for c in report.checks
        ],
        "all_admitted": report.all_admitted,
        "timings_ms": {"chain": round(report.chain_ms, 1), "market": round(report.market_ms, 1)},
        "market": report.market_note,
        "rpc": describe(report.rpc),
        **report.extra,
    }


# -- command --------------------------------------------------------------------------------------


async def run_check(settings: Settings, args: argparse.Namespace, demo: DemoLauncher | None = None) -> int:
    mints = validate_mints(args.mints)
    console = Console(width=None if sys.stdout.isatty() else 140)
    db = getattr(args, "db", None)
    async with contextlib.AsyncExitStack() as stack:
        store = await Store.open(db, LockWait.of(settings)) if db else None
        if store is not None:
            stack.push_async_callback(store.close)
        if getattr(args, "demo", False):  # the demo world; one RPC endpoint, a private one (holders shown)
            if demo is None:
                raise ConfigError("check --demo: no demo world was handed over (run it as `dexscan check --demo`)")
            world = await stack.enter_async_context(demo.world(settings, rpc_endpoints=1, public_rpc=False))
            report = await check_mints(world.settings, mints, world.clock, store)
            report.extra["demo_mints"] = dict(world.mints)
            shown = world.settings
        else:
            report = await check_mints(settings, mints, RealClock(), store)
            shown = settings
    if getattr(args, "json", False):
        print(json.dumps(as_json(report), indent=2))
    else:
        render(report, shown, console)
        if "demo_mints" in report.extra:
            console.print("demo mints: " + ", ".join(f"{k} {v}" for k, v in report.extra["demo_mints"].items()))
    return 0 if report.all_admitted else 1
