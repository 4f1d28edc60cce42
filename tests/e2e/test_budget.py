"""Ten simulated minutes with a 2,000-token universe: no provider is ever asked for more than its budget.

The fakes enforce the documented limits themselves (a request over the limit gets a 429) and log
every request with its simulated time. The test re-checks every sliding window from those logs, so
a limit the fakes might compute generously would still be caught, and requires zero 429s: dexscan
plans within budgets instead of discovering them. The refresh intervals the scheduler achieved for
hot and cold tokens are printed (``-s``) and recorded as test properties.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dexscan.config import load_settings
from dexscan.demo.servers.market import DEFAULT_LIMITS
from dexscan.demo.world import DemoWorld
from dexscan.engine import Engine
from dexscan.scan_command import ScanOptions, preload, scan

pytestmark = [pytest.mark.slow, pytest.mark.virtual_time]

N_TOKENS = 2000
SIM_S = 600.0


def max_in_window(times: list[float], window_s: float) -> int:
    """The most requests inside any window of ``window_s`` seconds ending at a request."""
    ts = sorted(times)
    best = 0
    for i, t in enumerate(ts):
        first = bisect_right(ts, t - window_s)
        best = max(best, i + 1 - first)
    return best


def test_max_in_window_counts_the_half_open_window() -> None:
    assert max_in_window([0.0, 30.0, 59.9, 60.0, 61.0], 60.0) == 4  # (1, 61]: 30, 59.9, 60, 61
    assert max_in_window([], 60.0) == 0
    assert max_in_window([0.0, 60.0, 120.0], 60.0) == 1


async def test_ten_minutes_of_2000_tokens_within_every_budget(tmp_path: Path,
                                                             record_property: Callable[[str, Any], None]) -> None:
    stats: dict[str, Any] = {}

    async def inspect(engine: Engine) -> None:
        sched = engine.scheduler.stats(engine.clock.now())
        stats["scheduler"] = sched
        stats["tokens"] = len(engine.tokens)
        stats["members"] = sum(1 for v in engine.tokens.values() if v.member)
        stats["history_done"] = sum(1 for v in engine.tokens.values() if v.history_done)

    preload(ScanOptions(dashboard=False, quiet=True), telegram=False)
    async with DemoWorld(seed=3, n_tokens=N_TOKENS, rpc_endpoints=3) as world:
        assert world.clock is not None and world.market is not None
        settings = world.apply(load_settings()).with_overrides({"app.log_file": str(tmp_path / "scan.log")})
        mints = tuple(t.mint for t in world.sim.tokens)
        opts = ScanOptions(demo=True, run_for=SIM_S, dashboard=False, quiet=True, tokens=mints)
        started = world.clock.now()
        assert await scan(settings, opts, world.clock, tmp_path / "budget.db", mode="demo", stopped=inspect) == 0
        elapsed = world.clock.now() - started
        logs = {p: world.market.stats(p) for p in ("jupiter", "dexscreener", "geckoterminal", "birdeye")}
        rpc = [(s.name, s.stats.total, s.stats.rate_limited) for s in world.rpc]

    assert elapsed >= SIM_S
    peaks: dict[str, tuple[int, int]] = {}
    for key, (limit, window_s) in DEFAULT_LIMITS.items():
        provider, _, bucket = key.partition(".")
        times = [r.t for r in logs[provider].log if (r.bucket if bucket else "default") == (bucket or "default")]
        peaks[key] = (max_in_window(times, window_s), limit)
        assert peaks[key][0] <= limit, f"{key}: {peaks[key][0]} requests in one {window_s:g} s window > {limit}"
    for provider, st in logs.items():
        assert st.rate_limited == 0, f"{provider} answered {st.rate_limited} 429s"
    for name, total, limited in rpc:
        assert limited == 0, f"RPC {name} answered {limited} 429s out of {total}"
    assert logs["dexscreener"].requests > 0 and sum(t for _, t, _ in rpc) > 0

    sched = stats["scheduler"]
    assert stats["members"] > 0 and sched.cold_intervals.samples > 0
    report = {
        "tokens_polled": stats["tokens"],
        "universe": stats["members"],
        "history_bootstrapped": stats["history_done"],
        "hot_tokens": sched.hot,
        "cold_tokens": sched.cold,
        "hot_interval_s": {"p50": sched.hot_intervals.p50, "p95": sched.hot_intervals.p95,
                           "max": sched.hot_intervals.max, "samples": sched.hot_intervals.samples},
        "cold_interval_s": {"p50": sched.cold_intervals.p50, "p95": sched.cold_intervals.p95,
                            "max": sched.cold_intervals.max, "samples": sched.cold_intervals.samples},
        "peak_requests_per_window": {k: {"peak": p, "limit": lim} for k, (p, lim) in peaks.items()},
        "requests": {p: st.requests for p, st in logs.items()},
        "rpc_requests": {name: total for name, total, _ in rpc},
    }
    print("refresh/budget report:", json.dumps(report, default=float))
    for k, v in report.items():
        record_property(k, json.dumps(v, default=float))
