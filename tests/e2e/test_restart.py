"""Kill the scanner (SIGKILL) while a signal is live, start it again on the same database.

Runs the real command line, ``dexscan scan --demo --json --db FILE``, twice on one database: each
run is forked from a warm zygote (:class:`tests.support.fault_harness.Zygote`: one process imports
dexscan and its dependencies once, each child runs ``dexscan.cli.main`` with exactly that argv), so
the test pays Python's start-up once, not per run. The restarted demo resumes the simulated clock
where the first run last recorded it, so it sees the same market again for a little while: the
detector finds some of the same signals again, and the store's natural keys must make them invisible
(not stored twice, not printed twice), while the ladders of the signals that were live keep being
followed to new hits.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.fault_harness import REPO_ROOT, Zygote, read_events

pytestmark = pytest.mark.slow

#: The demo's pace: at most 240 simulated seconds per real second (slower on a busy machine, never
#: skipping: the demo runs on virtual time), so the quarter second between the ignition the kill
#: waits for and the kill (its delay and one look at the output) is at most a simulated minute: the
#: signal is still live when the first run dies.
SPEED = "240"
#: Real seconds between seeing the ignition the kill waits for and the kill.
KILL_DELAY_S = 0.2
#: Real seconds between two looks at a run's output.
LOOK_S = 0.05
#: Tokens whose ignitions (with levels) the first run has shown when it is killed. With several
#: ladders live, the restarted run has only to reach the first move of any of them: in the demo's
#: market the first token's pump peaks just under TP1 and its stop is hit only nine simulated hours
#: later, the second token's ladder moves within about an hour.
LIVE_TOKENS_AT_KILL = 2
#: Real seconds the waits may take at most (they end as soon as what they wait for happened). They are
#: hang guards, not pace: the restarted run goes ``--speed max``, so how much simulated market it sees
#: before a live ladder moves does not depend on how fast or busy the machine is.
FIRST_RUN_LIMIT_S = 600.0
SECOND_RUN_LIMIT_S = 900.0
#: Real seconds the zygote may take to import everything on a busy machine.
ZYGOTE_START_LIMIT_S = 600.0


def _ended(pid: int) -> bool:
    """The forked child has exited (a zombie until the zygote, its parent, reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


class Scanner:
    """One ``dexscan scan --demo --json --db FILE`` child of the zygote; its JSON lines go to a file."""

    def __init__(self, zygote: Zygote, pid: int, out: Path) -> None:
        self.zygote, self.pid, self.out = zygote, pid, out
        self.events: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, zygote: Zygote, db: Path, name: str, speed: str = SPEED) -> Scanner:
        out, err = db.with_name(f"{name}.stdout"), db.with_name(f"{name}.stderr")
        argv = ["scan", "--demo", "--json", "--db", str(db), "--speed", speed]
        return cls(zygote, await zygote.spawn(argv, out, err), out)

    async def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], limit_s: float) -> bool:
        """Look at the output until ``predicate`` holds (True), the run ended or ``limit_s`` passed."""
        deadline = time.monotonic() + limit_s
        while True:
            ended = _ended(self.pid)  # before reading, so that an ended run's last lines are seen
            self.events = read_events(self.out)
            if predicate(self.events):
                return True
            if ended or time.monotonic() > deadline:
                return False
            await asyncio.sleep(LOOK_S)

    async def stop(self, sig: int) -> tuple[int, int | None]:
        """(signal that ended it or 0, exit code or None), after sending ``sig``."""
        os.kill(self.pid, sig)
        ended = await self.zygote.wait(self.pid, limit_s=30.0)
        self.events = read_events(self.out)
        return ended


def _signals(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["signal"] for e in events if e["type"] == "signal"]


def _db_rows(db: Path) -> tuple[list[tuple[Any, ...]], dict[int, tuple[str, str]]]:
    con = sqlite3.connect(db)
    try:
        signals = con.execute(
            "SELECT id, mint, strategy, candle_ts, ts, price, status FROM signals ORDER BY id").fetchall()
        outcomes = {int(r[0]): (str(r[1]), str(r[2]))
                    for r in con.execute("SELECT signal_id, result, hits FROM outcomes")}
    finally:
        con.close()
    return signals, outcomes


async def test_sigkill_then_restart_loses_nothing_repeats_nothing_and_keeps_tracking(tmp_path: Path) -> None:
    db = tmp_path / "restart.db"
    zygote = await Zygote.start({**os.environ, "PYTHONUNBUFFERED": "1"}, REPO_ROOT, limit_s=ZYGOTE_START_LIMIT_S)
    try:
        await _kill_and_restart(zygote, db)
    finally:
        await zygote.close()


async def _kill_and_restart(zygote: Zygote, db: Path) -> None:
    first = await Scanner.start(zygote, db, "first")

    def ignited(events: list[dict[str, Any]]) -> bool:
        mints = {s["mint"] for s in _signals(events) if s["layer"] == "ignition" and s["levels"] is not None}
        return len(mints) >= LIVE_TOKENS_AT_KILL

    assert await first.wait_for(ignited, FIRST_RUN_LIMIT_S), \
        f"no ignition of {LIVE_TOKENS_AT_KILL} tokens within {FIRST_RUN_LIMIT_S:.0f} s"
    await asyncio.sleep(KILL_DELAY_S)
    assert await first.stop(signal.SIGKILL) == (signal.SIGKILL, None)
    printed_first = _signals(first.events)
    rows_first, outcomes_first = _db_rows(db)
    live_first = {r[0] for r in rows_first if r[6] == "live"}
    assert live_first, "the first run was killed while at least one signal was live"
    assert {s["id"] for s in printed_first} <= {r[0] for r in rows_first}  # shown => stored first

    second = await Scanner.start(zygote, db, "second", speed="max")

    def advanced(events: list[dict[str, Any]]) -> bool:
        return any(e["type"] == "outcome" and e["signal_id"] in live_first
                   and (e["outcome"]["result"], json.dumps(e["outcome"]["hits"], sort_keys=True, separators=(",", ":")))
                   != outcomes_first[e["signal_id"]] for e in events)

    moved = await second.wait_for(advanced, SECOND_RUN_LIMIT_S)
    assert await second.stop(signal.SIGTERM) == (0, 0)  # a clean stop on SIGTERM
    rows_second, outcomes_second = _db_rows(db)

    assert moved, "no live signal of the first run got a new hit or result after the restart"
    by_id = {r[0]: r for r in rows_second}
    for r in rows_first:  # nothing stored is lost or rewritten
        assert by_id[r[0]][:6] == r[:6]
    keys = [(r[1], r[2], r[3]) for r in rows_second]
    assert len(keys) == len(set(keys))
    first_keys = {(r[1], r[2], r[3]) for r in rows_first}
    printed_second = _signals(second.events)
    assert not [s for s in printed_second if (s["mint"], s["strategy"], s["candle_ts"]) in first_keys]
    assert {s["id"] for s in printed_second} <= set(by_id)
    assert min((s["id"] for s in printed_second), default=max(by_id) + 1) > max(r[0] for r in rows_first)
    changed = [sid for sid in live_first if outcomes_second[sid] != outcomes_first[sid]]
    assert changed
