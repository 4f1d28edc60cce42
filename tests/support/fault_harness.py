"""One harness for the fault-injection suite: the real scanner on the demo world, faults on cue.

:func:`run_scanner` starts a :class:`~dexscan.demo.world.DemoWorld` (simulated market, market-data
fakes, LiteSVM-backed RPC fakes, optionally the Bot API fake) on the test's virtual-time loop
(:mod:`dexscan.vtime`; the tests using it are marked ``virtual_time``), runs the
real ``dexscan scan`` wiring (:func:`dexscan.scan_command.scan`: store, HTTP layer, RPC pool, universe,
detector, outbox sender, local API) in-process, and runs a *script* beside it: a coroutine that
waits for moments of simulated time (:meth:`Run.at`) or for conditions (:meth:`Run.until`) and flips
the fakes' fault switches. When the script returns, the scanner is stopped the way SIGTERM stops it,
and everything the assertions need (the store's rows, the HTTP layer's and RPC pool's counters, the
``/metrics`` page, the fakes' own logs) is captured while the store and clients are still open.

The assertions of the suite are about data, so :class:`Result` carries data, and the ground truth
comes from the simulator (:meth:`Result.expected_ignitions`, :meth:`Result.unsafe`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from dexscan.config import load_settings
from dexscan.demo.market_sim import PlantedEvent
from dexscan.demo.servers.market import DEFAULT_LIMITS, FakeStats
from dexscan.demo.servers.rpc import RpcServerStats
from dexscan.demo.servers.telegram import SentMessage
from dexscan.demo.world import DemoWorld, demo_sim_config
from dexscan.domain import Outcome, Signal
from dexscan.engine import Engine
from dexscan.scan_command import ScanOptions, preload, scan
from dexscan.sources.http import ProviderStats
from tests.e2e.test_budget import max_in_window

#: Simulated seconds any one scripted run may last before the test fails instead of hanging (on
#: virtual time a deadlock reaches this limit at once).
RUN_LIMIT_S = 12 * 3600.0
#: Simulated seconds between two looks of :meth:`Run.until`.
POLL_S = 0.1
#: The planted ignition the demo world's start is chosen for comes this long after the start.
LEAD_S = 600
#: Simulated seconds between a planted ignition and the latest moment its signal may be stored:
#: the cold refresh interval (120 s) and some slack.
DETECT_S = 150

Script = Callable[["Run"], Awaitable[None]]


@dataclass
class Run:
    """What a script sees while the scanner runs."""

    world: DemoWorld
    engine: Engine
    started: float  # simulated time at the world's start
    stop: asyncio.Event
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def now(self) -> float:
        assert self.world.clock is not None
        return self.world.clock.now()

    def since_start(self) -> float:
        return self.now - self.started

    async def at(self, offset_s: float) -> None:
        """Wait until ``offset_s`` simulated seconds after the world's start."""
        assert self.world.clock is not None
        while (left := offset_s - self.since_start()) > 0:
            await self.world.clock.sleep(left)

    async def until(self, predicate: Callable[[], bool], limit_s: float = 3600.0, what: str = "condition") -> None:
        """Wait (at most ``limit_s`` simulated seconds) until ``predicate()`` holds."""
        deadline = self.now + limit_s
        while not predicate():
            if self.now > deadline:
                raise AssertionError(f"{what}: not reached within {limit_s:g} simulated seconds")
            await asyncio.sleep(POLL_S)

    async def until_async(self, predicate: Callable[[], Awaitable[bool]], limit_s: float = 3600.0,
                          what: str = "condition") -> None:
        deadline = self.now + limit_s
        while not await predicate():
            if self.now > deadline:
                raise AssertionError(f"{what}: not reached within {limit_s:g} simulated seconds")
            await asyncio.sleep(POLL_S)

    def http_stats(self, provider: str) -> ProviderStats:
        stats: dict[str, ProviderStats] = self.engine.http.stats()
        return stats[provider]

    def fake_stats(self, provider: str) -> FakeStats:
        assert self.world.market is not None
        return self.world.market.stats(provider)

    def inject(self, provider: str, kind: str, count: int = 1, seconds: float = 0.0,
               retry_after: float | None = None) -> None:
        assert self.world.market is not None
        self.world.market.faults.inject(provider, kind, count, seconds, retry_after)

    def pending_faults(self, provider: str) -> list[tuple[str, int]]:
        assert self.world.market is not None
        return self.world.market.faults.pending(provider)

    async def verdicts(self) -> list[tuple[str, str, int, str]]:
        """Every stored gate verdict as (mint, gate, checked_at, status)."""
        return await _verdict_rows(self.engine.store)

    async def outbox(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self.engine.store.outbox_rows()
        return rows

    def members(self) -> set[str]:
        return {v.mint for v in self.engine.tokens.values() if v.member}

    def warmed_up(self) -> bool:
        """Universe gated and every member's history bootstrapped."""
        views = [v for v in self.engine.tokens.values() if v.member]
        return bool(views) and all(v.history_done for v in views)


@dataclass
class Result:
    """Everything a run left behind, captured before the store and clients closed."""

    world: DemoWorld
    started: float
    ended: float
    notes: dict[str, Any]
    signals: list[tuple[int, Signal, Outcome | None]]
    outbox: list[dict[str, Any]]
    verdicts: list[tuple[str, str, int, str]]  # (mint, gate, checked_at, status)
    members: set[str]
    warmed_up_all: bool  # every member's history bootstrapped when the run ended
    http: dict[str, ProviderStats]
    rpc: list[Any]  # dexscan.chain.rpc.EndpointState
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    counters: dict[str, int]
    duplicates: int
    fakes: dict[str, FakeStats]
    planted: list[PlantedEvent]
    telegram_sent: list[SentMessage]  # the bot's messages in the demo chat, oldest first
    rpc_fakes: list[RpcServerStats]  # what each RPC fake saw, in endpoint order

    # -- ground truth ---------------------------------------------------------------------------

    def unsafe(self) -> set[str]:
        """Mints the on-chain gates must refuse (mint or freeze authority kept, or a high fee)."""
        return {t.mint for t in self.world.sim.tokens if not t.safe}

    def ineligible(self) -> set[str]:
        return self.unsafe() | {t.mint for t in self.world.sim.tokens if t.kind == "thin"}

    def expected_ignitions(self, after: float, before: float | None = None) -> set[tuple[str, int]]:
        """(mint, 4H candle) of every planted ignition of an eligible token in ``[after, before]``
        (offsets from the start; ``before`` defaults to the end of the run less ``DETECT_S``)."""
        hi = (self.ended - self.started - DETECT_S) if before is None else before
        return {(e.mint, e.candle_ts) for e in self.planted
                if e.eligible and e.kind in ("pump", "fizzle") and after <= e.ignite_ts - self.started <= hi}

    def eligible_ignitions(self) -> set[tuple[str, int]]:
        return {(e.mint, e.candle_ts) for e in self.planted if e.eligible and e.kind in ("pump", "fizzle")}

    def ignitions(self) -> set[tuple[str, int]]:
        return {(s.mint, s.candle_ts) for _, s, _ in self.signals if s.strategy == "ignition"}

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics[(name, tuple(sorted(labels.items())))]

    def peak_over_limit(self) -> dict[str, tuple[int, int]]:
        """Buckets where the fakes saw more requests in one window than the documented limit."""
        over: dict[str, tuple[int, int]] = {}
        for key, (limit, window_s) in DEFAULT_LIMITS.items():
            provider, _, bucket = key.partition(".")
            times = [r.t for r in self.fakes[provider].log if r.bucket == (bucket or "default")]
            peak = max_in_window(times, window_s)
            if peak > limit:
                over[key] = (peak, limit)
        return over


async def _verdict_rows(store: Any) -> list[tuple[str, str, int, str]]:
    rows = await store.db.execute_fetchall(
        "SELECT mint, gate, checked_at, status FROM gate_verdicts ORDER BY checked_at, mint, gate")
    return [(str(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]


def _parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return out


async def run_scanner(
    tmp_path: Path,
    script: Script,
    *,
    telegram: bool = False,
    rpc_endpoints: int = 3,
    overrides: dict[str, Any] | None = None,
    before_start: Callable[[DemoWorld], Awaitable[None]] | None = None,
    db: Path | None = None,
    run_limit_s: float = RUN_LIMIT_S,
) -> Result:
    """Run the scanner on a fresh demo world with ``script`` beside it; return what it left behind.

    ``before_start`` may flip fault switches before the scanner's first request. The script's
    exceptions (failed waits) propagate after the scanner has been stopped.
    """
    opts = ScanOptions(demo=True, dashboard=False, quiet=True, serve="127.0.0.1:0")
    preload(opts, telegram=telegram)
    db = db or tmp_path / "faults.db"
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    captured: dict[str, Any] = {}
    async with DemoWorld(rpc_endpoints=rpc_endpoints, telegram=telegram,
                         sim_config=demo_sim_config()) as world:
        assert world.clock is not None
        started = world.clock.now()
        settings = world.apply(load_settings()).with_overrides(
            {"app.log_file": str(tmp_path / "scan.log"), **(overrides or {})})
        if before_start is not None:
            await before_start(world)
        box: dict[str, Any] = {}
        engine_ready = asyncio.Event()

        def ready(engine: Engine) -> None:
            run = engine.run

            async def run_capturing_stop(stop: asyncio.Event, extra: Any = ()) -> None:
                box["stop"] = stop
                engine_ready.set()
                await run(stop, extra)

            engine.run = run_capturing_stop  # type: ignore[method-assign]
            box["engine"] = engine

        async def stopped(engine: Engine) -> None:
            captured["signals"] = await engine.store.signals()
            captured["outbox"] = await engine.store.outbox_rows()
            captured["verdicts"] = await _verdict_rows(engine.store)
            captured["members"] = {v.mint for v in engine.tokens.values() if v.member}
            captured["warmed_up_all"] = all(v.history_done for v in engine.tokens.values() if v.member)
            captured["http"] = engine.http.stats()
            captured["rpc"] = engine.rpc.state() if engine.rpc is not None else []
            captured["counters"] = dict(engine.status().counters)
            captured["duplicates"] = engine.counters.duplicates
            assert engine.service is not None
            async with aiohttp.ClientSession() as http, http.get(f"{engine.service.url}/metrics") as resp:
                assert resp.status == 200
                captured["metrics"] = _parse_metrics(await resp.text())

        async def drive() -> None:
            await asyncio.wait_for(engine_ready.wait(), 600.0)
            run = Run(world, box["engine"], started, box["stop"])
            box["run"] = run
            try:
                await script(run)
            finally:
                run.stop.set()

        scanner = asyncio.create_task(scan(settings, opts, world.clock, db, mode="demo", ready=ready,
                                           stopped=stopped))
        driver = asyncio.create_task(drive())
        try:
            done, _ = await asyncio.wait({scanner, driver}, timeout=run_limit_s,
                                         return_when=asyncio.FIRST_EXCEPTION)
            if driver not in done:
                if scanner in done:  # the scanner ended on its own: that is the failure
                    driver.cancel()
                    await asyncio.gather(driver, return_exceptions=True)
                    scanner.result()
                    raise AssertionError("the scanner stopped before the script ended")
                raise AssertionError(f"the scripted run did not finish within {run_limit_s:g} simulated seconds")
            assert await asyncio.wait_for(scanner, 600.0) == 0
            driver.result()
        finally:
            for task in (driver, scanner):
                if not task.done():
                    task.cancel()
            await asyncio.gather(driver, scanner, return_exceptions=True)
            root.handlers[:] = handlers
            root.setLevel(level)
        ended = world.clock.now()
        assert world.market is not None
        fakes = {p: world.market.stats(p) for p in ("jupiter", "dexscreener", "geckoterminal", "birdeye")}
        planted = [e for e in world.planted_events(started - 14_400, ended) if started <= e.ignite_ts < ended]
        sent = world.telegram.sent(world.chat_ids[0]) if world.telegram is not None else []
        rpc_fakes = [server.stats for server in world.rpc]
        run = box["run"]
    return Result(world=world, started=started, ended=ended, notes=run.notes, fakes=fakes, planted=planted,
                  telegram_sent=sent, rpc_fakes=rpc_fakes, **captured)


def keys(signals: Iterable[tuple[int, Signal, Outcome | None]]) -> list[tuple[str, str, int]]:
    return [s.key for _, s, _ in signals]


# ---------------------------------------------------------------------------------------------
# Assertions shared by the suite and the soak script
# ---------------------------------------------------------------------------------------------

MARKET = ("jupiter", "dexscreener", "geckoterminal")
#: The gates that read the chain (a failed read makes them unverified, never passed).
CHAIN_GATES = frozenset({"mint_authority", "freeze_authority", "token2022_extensions"})


def assert_clean_data(r: Result, *, after: float, complete: bool = True) -> None:
    """Signals are planted truth, none for an ineligible token, none stored twice; with
    ``complete``, every planted ignition of a gate-passing token from ``after`` on was found."""
    ks = keys(r.signals)
    assert len(ks) == len(set(ks))
    assert r.duplicates == 0
    assert not [s for _, s, _ in r.signals if s.mint in r.ineligible()]
    found = r.ignitions()
    assert found <= r.eligible_ignitions(), found - r.eligible_ignitions()
    assert not r.members & r.ineligible()
    if complete:
        expected = r.expected_ignitions(after=after)
        assert expected, "the run covers at least one planted ignition after the fault"
        assert expected <= found, f"planted ignitions not signalled: {expected - found}"


def assert_metrics_match(r: Result) -> None:
    """``/metrics`` shows the HTTP layer's own numbers; the fakes saw every request we counted."""
    for p in MARKET:
        st = r.http[p]
        assert r.metric("dexscan_source_requests_total", source=p) == st.requests
        assert r.metric("dexscan_source_errors_total", source=p) == st.error_total
        assert r.metric("dexscan_source_rate_limited_total", source=p) == st.rate_limited
        # a request cancelled in flight when the scanner stopped may never have reached the fake
        assert st.requests - st.cancelled <= r.fakes[p].requests <= st.requests, (p, st.requests, st.cancelled)
    bad = sum(sum(st.bad_records.values()) for st in r.http.values())
    assert r.metric("dexscan_bad_payloads_total") == bad
    assert r.peak_over_limit() == {}


def assert_rpc_metrics_match(r: Result) -> None:
    for ep in r.rpc:
        assert r.metric("dexscan_rpc_failures_total", endpoint=ep.name) == ep.failures
        assert r.metric("dexscan_rpc_requests_total", endpoint=ep.name) == ep.requests
        assert r.metric("dexscan_rpc_up", endpoint=ep.name) == (1 if ep.healthy else 0)


def assert_alerts_delivered_once_in_order(r: Result, answers: int) -> None:
    """Each outbox row reached the chat exactly once, in row order; besides them only ``answers``
    command answers, and no second copy of anything.

    A row is ``sent`` as its own message, or ``digested``: folded with others into one digest
    message (the digest's carrier row too), all naming that message's id. A ``join`` row (a
    strategy joining a move already alerted) names the move's message, which it edited, or its own
    message when the move had none in the chat.
    """
    rows = [row for row in r.outbox if row["chat_id"] == r.world.chat_ids[0]]
    assert rows and {row["state"] for row in rows} <= {"sent", "digested"}, [(x["id"], x["state"]) for x in rows]
    signal_rows = [row for row in rows if row["kind"] in ("signal", "join")]
    assert sorted(row["signal_id"] for row in signal_rows) == sorted(sid for sid, _, _ in r.signals)
    by_id = {m.message_id: m for m in r.telegram_sent}
    all_ids = [row["message_id"] for row in rows]
    assert None not in all_ids and set(all_ids) <= set(by_id), "a row names a message not in the chat"
    firsts = {row["message_id"]: row["id"] for row in reversed(rows)}  # the row that posted each message
    posting = [row for row in rows if firsts[row["message_id"]] == row["id"]]
    in_order = [row["message_id"] for row in posting]
    assert in_order == sorted(in_order), "alerts reached the chat out of the order they were decided in"
    sharing = [row for row in rows if firsts[row["message_id"]] != row["id"]]
    assert all(row["state"] == "digested" or row["kind"] == "join" for row in sharing), \
        "two alerts share one message"  # only digest members and joined strategies do
    own = [row["message_id"] for row in posting if row["state"] == "sent"]
    digests = {row["message_id"] for row in rows if row["state"] == "digested"}
    assert len(own) == len(set(own)) and not set(own) & digests, "two alerts share one message"
    assert len(r.telegram_sent) == len(set(in_order)) + answers, "a message more than the alerts: a duplicate"
    texts = [m.text for m in r.telegram_sent]
    assert len(texts) == len(set(texts)), "the same text twice in the chat"
    signals = {sid: sig for sid, sig, _ in r.signals}
    for row in signal_rows:  # an alert sent on its own is that signal's card
        if row["state"] == "sent":
            assert signals[row["signal_id"]].mint in by_id[row["message_id"]].text


# ---------------------------------------------------------------------------------------------
# SIGKILL at random points: `dexscan scan --demo --json --db FILE` forked from a warm zygote
# ---------------------------------------------------------------------------------------------
#
# A kill/restart cycle should cost the scanner's start-up, not Python's: importing dexscan and its
# dependencies takes ~3 s (aiogram alone ~2 s), which twenty cycles cannot afford in CI. So a zygote
# process imports everything once and forks one child per cycle; the child runs exactly what
# ``python -m dexscan scan --demo --json --db FILE --speed S`` runs (``dexscan.cli.main``: the demo
# world and the scanner on one virtual-time loop, paced at S simulated seconds per real second at
# most) with its stdout and stderr in files. The demo's Bot API fake lives in the child and dies
# with it, but keeps the chat's state in its journal next to the database (as the real Telegram
# outlives the scanner); the test reads what reached the chat from that journal.

ZYGOTE_MODULE = "tests.support.fault_harness"
REPO_ROOT = Path(__file__).resolve().parents[2]
#: The kill cycles' pace: at most this many simulated seconds per real second, so a kill after a
#: random real delay lands at a random moment of the first simulated minutes, on any machine.
KILL_SPEED = 300.0
#: Simulated seconds the last run must reach past the first run's start: three planted ignitions
#: of gate-passing tokens (600, 1,800 and 2,400 s after the demo's start) are inside.
FINAL_CLOCK_S = 3600.0


def zygote_main() -> None:
    """Read one JSON command per line on stdin, answer one JSON line on stdout.

    ``{"run": [argv...], "stdout": path, "stderr": path}`` forks a child running
    ``dexscan.cli.main(argv)`` → ``{"pid": n}``; ``{"wait": pid}`` → ``{"pid": n, "signal": s,
    "code": c}`` once it ended (the zygote is its parent; the test only sends it signals).
    """
    import threading as _threading

    import dexscan.cli
    import dexscan.demo.world

    preload(ScanOptions(demo=True, json=True, dashboard=False), telegram=True)
    assert _threading.active_count() == 1, "the zygote must not run threads before forking"
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        cmd = json.loads(line)
        if "run" in cmd:
            pid = os.fork()
            if pid == 0:  # the child: become `dexscan scan ...`
                code = 1
                try:
                    os.setpgid(0, 0)
                    fd_out = os.open(cmd["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                    fd_err = os.open(cmd["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                    os.dup2(fd_out, 1)
                    os.dup2(fd_err, 2)
                    os.close(0)
                    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
                    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
                    code = dexscan.cli.main(cmd["run"])
                except BaseException:
                    import traceback

                    traceback.print_exc()
                finally:
                    with contextlib.suppress(Exception):
                        sys.stdout.flush()
                        sys.stderr.flush()
                    os._exit(code)
            out.write(json.dumps({"pid": pid}) + "\n")
        elif "wait" in cmd:
            _, status = os.waitpid(int(cmd["wait"]), 0)
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            out.write(json.dumps({"pid": cmd["wait"], "signal": sig, "code": code}) + "\n")
        out.flush()


class Zygote:
    """The test's side of :func:`zygote_main` (an asyncio subprocess, so the test's loop keeps
    serving the Bot API fake while it waits)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, env: dict[str, str], cwd: Path, limit_s: float = 60.0) -> Zygote:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", ZYGOTE_MODULE, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env=env, cwd=str(cwd))
        zygote = cls(proc)
        ready = await zygote._read(limit_s)
        assert ready == {"ready": True}, ready
        return zygote

    async def _read(self, limit_s: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), limit_s)
        if not line:
            raise AssertionError("the zygote exited")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def _ask(self, cmd: dict[str, Any], limit_s: float = 60.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        return await self._read(limit_s)

    async def spawn(self, argv: list[str], stdout: Path, stderr: Path) -> int:
        return int((await self._ask({"run": argv, "stdout": str(stdout), "stderr": str(stderr)}))["pid"])

    async def wait(self, pid: int, limit_s: float = 60.0) -> tuple[int, int | None]:
        """(signal that ended it or 0, exit code or None)."""
        answer = await self._ask({"wait": pid}, limit_s)
        return int(answer["signal"]), answer["code"]

    async def close(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 10.0)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@dataclass(frozen=True)
class DbState:
    """What a killed scanner left in its database (read with plain sqlite3 after it died)."""

    integrity: str
    signals: dict[int, tuple[Any, ...]]  # id -> (mint, strategy, candle_ts, ts, price, levels)
    statuses: dict[int, str]
    outcomes: set[int]  # signal ids with an outcome row
    outbox: list[tuple[int, int | None, int, str, str, int | None]]  # id, signal, chat, kind, state, message

    @classmethod
    def read(cls, db: Path) -> DbState:
        if not db.exists():
            return cls("ok", {}, {}, set(), [])
        con = sqlite3.connect(db, timeout=30.0)
        try:
            integrity = str(con.execute("PRAGMA integrity_check").fetchone()[0])
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "signals" not in tables:
                return cls(integrity, {}, {}, set(), [])
            rows = con.execute(
                "SELECT id, mint, strategy, candle_ts, ts, price, levels, status FROM signals").fetchall()
            outcomes = {int(r[0]) for r in con.execute("SELECT signal_id FROM outcomes")}
            outbox = [(int(r[0]), r[1], int(r[2]), str(r[3]), str(r[4]), r[5]) for r in con.execute(
                "SELECT id, signal_id, chat_id, kind, state, message_id FROM alert_outbox ORDER BY id")]
        finally:
            con.close()
        return cls(integrity, {int(r[0]): tuple(r[1:7]) for r in rows}, {int(r[0]): str(r[7]) for r in rows},
                   outcomes, outbox)

    def natural_keys(self) -> list[tuple[str, str, int]]:
        return [(v[0], v[1], v[2]) for v in self.signals.values()]


def check_consistent(state: DbState, chat_id: int) -> None:
    """What every committed state must satisfy, whenever the process died."""
    assert state.integrity == "ok", state.integrity
    ks = state.natural_keys()
    assert len(ks) == len(set(ks)), "a signal stored twice"
    outbox_keys = [(sig, chat, kind) for _, sig, chat, kind, _, _ in state.outbox]
    assert len(outbox_keys) == len(set(outbox_keys)), "an alert queued twice"
    signal_alerts = sorted(sig for _, sig, chat, kind, _, _ in state.outbox
                           if kind in ("signal", "join") and chat == chat_id)
    assert signal_alerts == sorted(state.signals), "each signal is queued for the chat in its own transaction"
    closed = sorted(sid for sid, st in state.statuses.items() if st == "closed")
    outcome_alerts = sorted(sig for _, sig, chat, kind, _, _ in state.outbox if kind == "outcome" and chat == chat_id)
    assert outcome_alerts == closed, "each closed outcome is queued with its close"
    with_levels = {sid for sid, v in state.signals.items() if v[5] is not None}
    assert with_levels <= state.outcomes, "a ladder signal is stored with its open outcome"


def read_events(path: Path) -> list[dict[str, Any]]:
    """The complete JSON lines a child printed (a kill may cut the last one)."""
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.endswith("\n"):
            events.append(json.loads(line))
    return events


@dataclass
class KillReport:
    cycles: int = 0
    killed_after_s: list[float] = field(default_factory=list)
    killed_on_event: int = 0
    signals: int = 0
    outcomes_closed: int = 0
    alerts: int = 0
    messages_in_chat: int = 0
    command_answers: int = 0
    sim_hours: float = 0.0
    wall_s: float = 0.0


async def run_kill_cycles(work: Path, cycles: int, seed: int, *, speed: float = KILL_SPEED,
                          max_run_s: float = 2.0, drain_limit_s: float = 900.0) -> KillReport:
    """``cycles`` times: start the scanner on one database, SIGKILL it at a seeded random moment,
    check what it left; then run it once more until its clock passed ``FINAL_CLOCK_S`` beyond the
    first run's start and every alert is out, stop it with SIGTERM, and check what reached the Bot
    API fake's chat. Raises AssertionError on the first broken promise."""
    import random

    from dexscan.demo.servers.telegram import DEMO_CHAT, FakeTelegram
    from dexscan.demo_mode import bot_api_journal

    rng = random.Random(seed)
    t0 = time.perf_counter()
    db = work / "killed.db"
    journal = bot_api_journal(db)
    report = KillReport()
    env = {**os.environ, "DEXSCAN_DATA_DIR": str(work / "data"), "PYTHONUNBUFFERED": "1"}
    for var in ("DEXSCAN_TELEGRAM_TOKEN", "DEXSCAN_DB", "DEXSCAN_RPC_URLS", "DEXSCAN_SECRETS_FILE"):
        env.pop(var, None)
    argv = ["scan", "--demo", "--json", "--db", str(db), "--speed", f"{speed:g}"]
    user = FakeTelegram(chats=[DEMO_CHAT], journal=journal)
    user.inject_user_message(DEMO_CHAT, "/start")  # a private chat begins with the user
    user.close_journal()
    zygote = await Zygote.start(env, REPO_ROOT, limit_s=600.0)  # imports take long on a busy machine
    try:
        state = DbState.read(db)
        shown: set[tuple[str, str, int]] = set()
        first_clock: float | None = None
        for i in range(cycles):
            out, err = work / f"run{i:03d}.out", work / f"run{i:03d}.err"
            pid = await zygote.spawn(argv, out, err)
            started = time.monotonic()
            on_event = rng.random() < 0.5
            delay = rng.uniform(0.1, max_run_s)
            if on_event:  # die right after a signal or outcome was committed and shown
                seen = len(read_events(out))
                while time.monotonic() - started < max_run_s * 2:
                    if len(read_events(out)) > seen:
                        break
                    await asyncio.sleep(0.005)
                await asyncio.sleep(rng.uniform(0.0, 0.05))
            else:
                await asyncio.sleep(delay)
            report.killed_after_s.append(round(time.monotonic() - started, 3))
            report.killed_on_event += on_event
            os.kill(pid, signal.SIGKILL)
            sig, _ = await zygote.wait(pid)
            assert sig == signal.SIGKILL, f"cycle {i}: the scanner ended before the kill ({sig}); see {err}"
            after = DbState.read(db)
            check_consistent(after, DEMO_CHAT)
            for sid, row in state.signals.items():  # nothing stored is lost or rewritten
                assert after.signals.get(sid) == row, f"cycle {i}: signal {sid} lost or changed"
            printed = [e["signal"] for e in read_events(out) if e["type"] == "signal"]
            for s in printed:
                key = (s["mint"], s["strategy"], s["candle_ts"])
                assert after.signals.get(s["id"], (None,))[:3] == key, f"cycle {i}: shown but not stored: {key}"
                assert key not in shown, f"cycle {i}: {key} shown again after a restart"
                shown.add(key)
            state = after
            report.cycles += 1
            if first_clock is None:
                first_clock = _demo_clock(db)
        # the last run: far enough into the market for several signals, every alert out, a clean stop.
        # Unpaced (--speed max): how fast it gets there depends only on the machine, and
        # ``drain_limit_s`` of real time is a guard against a hang, not a measure of speed.
        out, err = work / "final.out", work / "final.err"
        pid = await zygote.spawn([*argv[:-1], "max"], out, err)
        deadline = time.monotonic() + drain_limit_s
        while True:
            await asyncio.sleep(0.2)
            clock, signals, states = _progress(db)  # the full read (integrity check) comes once, below
            if (first_clock is not None and clock >= first_clock + FINAL_CLOCK_S and signals
                    and states <= {"sent", "digested", "failed"}):
                break
            assert time.monotonic() < deadline, f"alerts still undelivered: {sorted(states)}; see {err}"
        os.kill(pid, signal.SIGTERM)
        sig, code = await zygote.wait(pid)
        assert (sig, code) == (0, 0), f"SIGTERM did not stop the scanner cleanly: {sig} {code}; see {err}"
    finally:
        await zygote.close()
    final = DbState.read(db)
    check_consistent(final, DEMO_CHAT)
    for sid, row in state.signals.items():
        assert final.signals.get(sid) == row
    sent = FakeTelegram(journal=journal).sent(DEMO_CHAT)  # the chat as "Telegram" kept it
    rows = [r for r in final.outbox if r[2] == DEMO_CHAT]
    assert rows and {r[4] for r in rows} <= {"sent", "digested"}, sorted({r[4] for r in rows})
    all_ids = [r[5] for r in rows]  # a digested row names its digest's message, a join its move's
    by_id = {m.message_id: m for m in sent}
    assert None not in all_ids and set(all_ids) <= set(by_id), "an alert row names a message not in the chat"
    firsts = {r[5]: r[0] for r in reversed(rows)}  # the row that posted each message
    in_order = [r[5] for r in rows if firsts[r[5]] == r[0]]
    assert in_order == sorted(in_order), "alerts reached the chat out of order"
    assert all(r[4] == "digested" or r[3] == "join" for r in rows if firsts[r[5]] != r[0]), \
        "two alerts share one message"  # only digest members and joined strategies do
    alert_ids = set(in_order)
    others = [m for m in sent if m.message_id not in alert_ids]
    for m in others:  # only answers to the user's /start are not alerts ...
        assert not any(mint in m.text for mint, _, _ in final.natural_keys()), f"an alert sent twice: {m.text[:80]}"
    for i in alert_ids:  # ... and every alert message is in the chat exactly once
        assert sum(1 for m in sent if m.text == by_id[i].text) == 1, f"alert sent twice: {by_id[i].text[:80]}"
    report.signals = len(final.signals)
    report.outcomes_closed = sum(1 for st in final.statuses.values() if st == "closed")
    report.alerts = len(rows)
    report.messages_in_chat = len(sent)
    report.command_answers = len(others)
    last_clock = _demo_clock(db)
    if first_clock is not None and last_clock is not None:
        report.sim_hours = round((last_clock - first_clock) / 3600, 2)
    report.wall_s = round(time.perf_counter() - t0, 1)
    return report


def _progress(db: Path) -> tuple[float, int, set[str]]:
    """(demo clock or 0, signals stored, alert outbox states) of a running scanner's database: three
    cheap reads, where :meth:`DbState.read` checks the whole file's integrity (0.16 s of CPU on a 24 MB
    database, five times a second while the last run drains, competing with the scanner for the cores)."""
    clock = _demo_clock(db) or 0.0
    con = sqlite3.connect(db, timeout=30.0)
    try:
        (signals,) = con.execute("SELECT count(*) FROM signals").fetchone()
        states = {str(r[0]) for r in con.execute("SELECT DISTINCT state FROM alert_outbox")}
    finally:
        con.close()
    return clock, int(signals), states


def _demo_clock(db: Path) -> float | None:
    if not db.exists():
        return None
    con = sqlite3.connect(db, timeout=30.0)
    try:
        row = con.execute("SELECT value FROM kv WHERE key = 'demo.clock'").fetchone()
    except sqlite3.Error:
        return None
    finally:
        con.close()
    return float(row[0]) if row else None


if __name__ == "__main__":
    zygote_main()
