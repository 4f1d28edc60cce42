"""Kill the scanner (SIGKILL) while a signal is live, start it again on the same database.

Runs the real command line, ``dexscan scan --demo --json --db FILE``, as a subprocess twice. The
restarted demo resumes the simulated clock where the first run last recorded it, so it sees the same
market again for a little while: the detector finds some of the same signals again, and the store's
natural keys must make them invisible (not stored twice, not printed twice), while the ladders of the
signals that were live keep being followed to new hits.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

#: The demo's pace: at most 120 simulated seconds per real second (slower on a busy machine, never
#: skipping: the demo runs on virtual time), so the half second between the first ignition and the
#: kill is at most a simulated minute: the signal is still live when the first run dies.
SPEED = "120"
#: Real seconds the waits may take at most (they end as soon as what they wait for happened). They are
#: hang guards, not pace: the restarted run goes ``--speed max``, so how much simulated market it sees
#: before a live ladder moves does not depend on how fast or busy the machine is.
FIRST_RUN_LIMIT_S = 600.0
SECOND_RUN_LIMIT_S = 900.0


class Scanner:
    """One ``dexscan scan`` subprocess whose JSON lines are collected by a reader thread."""

    def __init__(self, db: Path, log: Path, speed: str = SPEED) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "dexscan", "scan", "--demo", "--json", "--db", str(db), "--speed", speed]
        self.log = log.open("w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.events.append(json.loads(line))
                self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], limit_s: float) -> bool:
        deadline = time.monotonic() + limit_s
        with self._cond:
            while not predicate(self.events):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return predicate(self.events)
                self._cond.wait(min(left, 0.5))
        return True

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=30)
        self._reader.join(timeout=10)
        self.log.close()
        return rc


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


def test_sigkill_then_restart_loses_nothing_repeats_nothing_and_keeps_tracking(tmp_path: Path) -> None:
    db = tmp_path / "restart.db"

    first = Scanner(db, tmp_path / "first.stderr")
    def ignited(events: list[dict[str, Any]]) -> bool:
        return any(s["layer"] == "ignition" and s["levels"] is not None for s in _signals(events))

    assert first.wait_for(ignited, FIRST_RUN_LIMIT_S), f"no ignition within {FIRST_RUN_LIMIT_S:.0f} s"
    time.sleep(0.5)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    printed_first = _signals(first.events)
    rows_first, outcomes_first = _db_rows(db)
    live_first = {r[0] for r in rows_first if r[6] == "live"}
    assert live_first, "the first run was killed while at least one signal was live"
    assert {s["id"] for s in printed_first} <= {r[0] for r in rows_first}  # shown => stored first

    second = Scanner(db, tmp_path / "second.stderr", speed="max")

    def advanced(events: list[dict[str, Any]]) -> bool:
        return any(e["type"] == "outcome" and e["signal_id"] in live_first
                   and (e["outcome"]["result"], json.dumps(e["outcome"]["hits"], sort_keys=True, separators=(",", ":")))
                   != outcomes_first[e["signal_id"]] for e in events)

    moved = second.wait_for(advanced, SECOND_RUN_LIMIT_S)
    assert second.stop(signal.SIGTERM) == 0  # a clean stop on SIGTERM
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
