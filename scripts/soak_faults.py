"""Soak the scanner under faults for longer than CI can: many SIGKILLs, then hours of fault storms.

    .venv/bin/python scripts/soak_faults.py [--cycles 100] [--storm-hours 3] [--seed 1]

Two parts, each optional:

* **kills** — ``--cycles`` SIGKILL/restart cycles of ``dexscan scan --demo --json --db FILE`` on
  one database (the machinery of ``tests/e2e/test_sigkill_runs.py``, which runs twenty): after
  every kill the database is intact, consistent and a superset of before; at the end every alert
  reached the Bot API fake exactly once, in order.
* **storm** — one in-process scanner on the demo world for ``--storm-hours`` simulated hours while
  a seeded storm flips every fault switch there is, overlapping: DexScreener and Jupiter 500 bursts,
  429 storms (with and without Retry-After), real 10-second stalls, resets, HTML pages, truncated
  JSON, malformed records, outages; RPC endpoints down, lagging (-32005), rate-limited, slow or
  stale for minutes (sometimes all at once); the Bot API refusing, resetting or accepting-then-
  dropping for minutes; the SQLite file locked by another connection for up to 7 s (past the 5 s
  busy timeout). Afterwards: the HTTP layer's counters equal the fakes' own logs kind by kind
  (5xx, 429, dropped connections, bad bodies, bad records), equal ``/metrics``, no budget window
  was exceeded, no signal or member for an unsafe or thin token, every stored ignition is a
  planted one, no key stored twice, every alert delivered once and in order. How many planted
  ignitions were found is reported (a pump that happens entirely inside an outage cannot be seen).

Prints one JSON line; exits 1 if any promise was broken (listed under ``violations``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dexscan import vtime
from tests.support.fault_harness import (
    Result,
    Run,
    assert_alerts_delivered_once_in_order,
    assert_clean_data,
    assert_metrics_match,
    assert_rpc_metrics_match,
    keys,
    run_kill_cycles,
    run_scanner,
)

STORM_PROVIDERS = ("dexscreener", "jupiter")
TELEGRAM_MODES = ("refuse", "reset", "accept_then_reset")
RPC_FAULTS = (("down", 0.0), ("lagging", 400.0), ("rate_limited", 0.0), ("slow", 1.0), ("stale", 1000.0))
STALL_S = 10.0  # real seconds: the client's 15 s timeout lets the answer arrive, late


class Storm:
    """Seeded fault storm over a running scanner; remembers what it injected."""

    def __init__(self, seed: int, hours: float) -> None:
        self.rng = random.Random(seed)
        self.until_s = hours * 3600.0
        self.injected: dict[str, Counter[str]] = {p: Counter() for p in STORM_PROVIDERS}
        self.actions: Counter[str] = Counter()
        self.recoveries: list[tuple[float, str, Any]] = []
        self.locks: list[asyncio.Future[None]] = []

    def market_fault(self, run: Run) -> None:
        provider = self.rng.choice(STORM_PROVIDERS)
        kind = self.rng.choice(("500", "429", "429-retry-after", "reset", "html", "truncated", "malformed_record",
                                "down", "stall"))
        if kind == "down":
            run.inject(provider, "down", seconds=self.rng.uniform(30, 600))
        elif kind == "stall":
            run.inject(provider, "stall", count=1, seconds=STALL_S)
            self.injected[provider]["stall"] += 1
        elif kind == "429-retry-after":
            n = self.rng.randint(1, 5)
            run.inject(provider, "429", count=n, retry_after=float(self.rng.randint(1, 60)))
            self.injected[provider]["429"] += n
        else:
            n = {"500": self.rng.randint(1, 12), "429": self.rng.randint(1, 20), "reset": self.rng.randint(1, 8),
                 "html": self.rng.randint(1, 3), "truncated": self.rng.randint(1, 3), "malformed_record": 1}[kind]
            run.inject(provider, kind, count=n)
            self.injected[provider][kind] += n
        self.actions[f"{provider}:{kind}"] += 1

    async def rpc_fault(self, run: Run) -> None:
        servers = run.world.rpc
        targets = servers if self.rng.random() < 0.15 else [self.rng.choice(servers)]
        fault, value = self.rng.choice(RPC_FAULTS)
        for server in targets:
            await server.inject(fault, value)
            self.recoveries.append((run.since_start() + self.rng.uniform(60, 900), "rpc", server))
        self.actions[f"rpc:{fault}" + (":all" if len(targets) > 1 else "")] += 1

    async def telegram_outage(self, run: Run) -> None:
        assert run.world.telegram is not None
        mode = self.rng.choice(TELEGRAM_MODES)
        await run.world.telegram.set_down(mode)
        self.recoveries.append((run.since_start() + self.rng.uniform(60, 900), "telegram", None))
        self.actions[f"telegram:{mode}"] += 1

    def sqlite_lock(self, run: Run, db: Path) -> None:
        """Another connection holds the write lock for 30-600 simulated seconds (a plain thread: the
        virtual clock does not wait for it, as it would not wait for another process)."""
        hold = self.rng.uniform(30.0, 600.0)
        release = threading.Event()

        def hold_lock() -> None:
            con = sqlite3.connect(db, timeout=60.0, isolation_level=None)
            try:
                con.execute("BEGIN EXCLUSIVE")
                release.wait(600.0)
                con.execute("COMMIT")
            finally:
                con.close()

        holder = threading.Thread(target=hold_lock, daemon=True)
        holder.start()

        async def released() -> None:
            await asyncio.sleep(hold)
            release.set()
            await asyncio.to_thread(holder.join, 30.0)  # the COMMIT: real milliseconds

        self.locks.append(asyncio.ensure_future(released()))
        self.actions["sqlite:locked"] += 1

    async def recover_due(self, run: Run, everything: bool = False) -> None:
        now = run.since_start()
        due = [r for r in self.recoveries if everything or r[0] <= now]
        self.recoveries = [r for r in self.recoveries if r not in due]
        for _, what, server in due:
            if what == "rpc":
                await server.recover()
            elif run.world.telegram is not None:
                await run.world.telegram.set_down(None)

    async def script(self, run: Run, db: Path) -> None:
        assert run.world.telegram is not None
        fake, chat = run.world.telegram, run.world.chat_ids[0]
        await run.until(lambda: len(fake.sent(chat)) == 1, what="the bot answered /start")
        await run.until(lambda: bool(run.members()), what="universe gated")
        t = run.since_start()
        while t < self.until_s:
            t += self.rng.uniform(30, 240)
            await run.at(t)
            await self.recover_due(run)
            pick = self.rng.random()
            if pick < 0.55:
                self.market_fault(run)
            elif pick < 0.75:
                await self.rpc_fault(run)
            elif pick < 0.9:
                await self.telegram_outage(run)
            else:
                self.sqlite_lock(run, db)
        await self.recover_due(run, everything=True)
        await asyncio.gather(*self.locks)
        for provider in STORM_PROVIDERS:  # what was never served is not expected in the counters
            for kind, left in run.pending_faults(provider):
                self.injected[provider][kind] -= left
            assert run.world.market is not None
            run.world.market.faults.clear(provider)
        run.notes["storm_end"] = run.since_start()

        async def settled() -> bool:
            rows = await run.outbox()
            return all(row["state"] in ("sent", "digested") for row in rows)

        await run.until_async(settled, limit_s=120.0, what="every alert delivered after the storm")
        await run.until(lambda: run.engine.status().queue_depths["snapshots"] == 0, what="backlog processed")


def check_storm(r: Result, storm: Storm) -> list[str]:
    """Every promise, each checked on its own so that one report lists all broken ones."""
    violations: list[str] = []

    def check(name: str, fn: Any) -> None:
        try:
            fn()
        except AssertionError as exc:
            violations.append(f"{name}: {exc}")

    def counters_equal_the_fakes() -> None:
        for p in STORM_PROVIDERS:
            st, fake, inj = r.http[p], r.fakes[p], storm.injected[p]
            got = {"requests": st.requests, "5xx": st.errors.get("http_5xx", 0), "429": st.rate_limited,
                   "dropped": st.errors.get("connection", 0),
                   "bad_body": st.errors.get("not_json", 0), "bad_records": sum(st.bad_records.values())}
            want = {"requests": fake.requests, "5xx": inj["500"], "429": inj["429"],
                    "dropped": fake.by_status.get(0, 0), "bad_body": inj["html"] + inj["truncated"],
                    "bad_records": inj["malformed_record"]}
            assert got == want, f"{p}: counted {got}, injected/seen {want}"
            assert fake.by_status.get(500, 0) == inj["500"] and fake.rate_limited == inj["429"], p

    check("counters equal the fakes", counters_equal_the_fakes)
    check("/metrics and budgets", lambda: assert_metrics_match(r))
    check("rpc metrics", lambda: assert_rpc_metrics_match(r))
    check("signals are planted truth", lambda: assert_clean_data(r, after=0, complete=False))
    check("alerts once and in order", lambda: assert_alerts_delivered_once_in_order(r, answers=1))

    def unique_keys() -> None:
        ks = keys(r.signals)
        assert len(ks) == len(set(ks))

    check("no key twice", unique_keys)
    return violations


async def storm_run(work: Path, seed: int, hours: float) -> dict[str, Any]:
    storm = Storm(seed, hours)
    db = work / "storm.db"

    async def user_starts(world: Any) -> None:
        world.telegram.inject_user_message(world.chat_ids[0], "/start")

    t0 = time.perf_counter()
    r = await run_scanner(work, lambda run: storm.script(run, db), telegram=True, db=db,
                          before_start=user_starts, run_limit_s=hours * 3600.0 * 2 + 3600)
    wall = time.perf_counter() - t0
    violations = check_storm(r, storm)
    with sqlite3.connect(db) as con:
        if con.execute("PRAGMA integrity_check").fetchone() != ("ok",):
            violations.append("integrity_check failed")
    expected = r.expected_ignitions(after=0)
    found = r.ignitions() & expected
    return {
        "sim_hours": round((r.ended - r.started) / 3600, 2),
        "wall_s": round(wall, 1),
        "actions": dict(sorted(storm.actions.items())),
        "served_faults": {p: dict(sorted(c.items())) for p, c in storm.injected.items()},
        "http": {p: {"requests": st.requests, "errors": dict(st.errors), "rate_limited": st.rate_limited,
                     "retries": st.retries, "bad_records": sum(st.bad_records.values()),
                     "breaker_opened": st.breaker_opened} for p, st in r.http.items() if p != "birdeye"},
        "rpc": [{"served": ep.served, "requests": ep.requests, "failures": ep.failures,
                 "rate_limited": ep.rate_limited} for ep in r.rpc],
        "signals": len(r.signals),
        "planted_ignitions": len(expected),
        "planted_ignitions_found": len(found),
        "alerts": len(r.outbox),
        "messages_in_chat": len(r.telegram_sent),
        "violations": violations,
    }


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """The kill cycles on an ordinary loop (they wait for real processes), the storm on virtual time."""
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="dexscan-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"seed": args.seed, "work": str(work)}
    violations: list[str] = []
    if args.cycles:
        violations += asyncio.run(kills(args, work, out))
    if args.storm_hours > 0:
        violations += vtime.run(storm(args, work, out))
    out["violations"] = violations
    out["ok"] = not violations
    return out


async def kills(args: argparse.Namespace, work: Path, out: dict[str, Any]) -> list[str]:
    violations: list[str] = []
    if args.cycles:
        kill_dir = work / "kills"
        kill_dir.mkdir(exist_ok=True)
        try:
            rep = await run_kill_cycles(kill_dir, args.cycles, args.seed, max_run_s=args.max_run_s)
        except AssertionError as exc:
            violations.append(f"kills: {exc}")
        else:
            times = sorted(rep.killed_after_s)
            out["kills"] = {"cycles": rep.cycles, "killed_right_after_a_commit": rep.killed_on_event,
                            "kill_after_s": {"min": times[0], "median": times[len(times) // 2], "max": times[-1]},
                            "signals": rep.signals, "outcomes_closed": rep.outcomes_closed, "alerts": rep.alerts,
                            "messages_in_chat": rep.messages_in_chat, "command_answers": rep.command_answers,
                            "sim_hours": rep.sim_hours, "wall_s": rep.wall_s}
    return violations


async def storm(args: argparse.Namespace, work: Path, out: dict[str, Any]) -> list[str]:
    violations: list[str] = []
    if args.storm_hours > 0:
        storm_dir = work / "storm"
        storm_dir.mkdir(exist_ok=True)
        try:
            out["storm"] = await storm_run(storm_dir, args.seed, args.storm_hours)
        except AssertionError as exc:
            violations.append(f"storm: {exc}")
        else:
            violations += out["storm"].pop("violations")
    return violations


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cycles", type=int, default=100, help="SIGKILL/restart cycles (0: skip)")
    p.add_argument("--max-run-s", type=float, default=3.0, help="longest real time before a kill")
    p.add_argument("--storm-hours", type=float, default=3.0, help="simulated hours of fault storm (0: skip)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--work", help="directory for databases and logs (default: a new temporary one)")
    args = p.parse_args()
    for var in ("DEXSCAN_TELEGRAM_TOKEN", "DEXSCAN_BIRDEYE_API_KEY", "DEXSCAN_JUPITER_API_KEY", "DEXSCAN_RPC_URLS",
                "DEXSCAN_DB", "DEXSCAN_SECRETS_FILE"):
        os.environ.pop(var, None)
    os.environ["DEXSCAN_DATA_DIR"] = tempfile.mkdtemp(prefix="dexscan-soak-data-")
    assert threading.active_count() == 1
    result = run_all(args)
    print(json.dumps(result, separators=(",", ":")))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
