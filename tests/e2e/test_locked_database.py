"""A database another connection keeps locked (issue 15): the scan waits its budget, then stops with
one line that names the file, who may hold it and what to do, and exit code 2.

A short lock costs nothing (tests/e2e/test_faults.py holds one for 750 simulated seconds; the unit
tests in tests/unit/test_store.py count the attempts of the default half hour). Here the lock is never
released: the test holds ``BEGIN EXCLUSIVE`` on its own connection while a real ``dexscan scan --demo``
runs against the file. The demo runs on virtual time, so the writers' pauses pass as fast as the work
allows; only SQLite's own 100 ms per attempt is real. The run is given a budget of
``store.lock_wait_s = 30`` in a user config file (the default's 367 attempts would cost 37 real
seconds of SQLite waits and half an hour of simulated market): that is the setting's path from the
file to the writer, and 30 s still takes the pauses through their doubling to the 5 s cap and the cut
last one; the message's numbers follow from :meth:`LockWait.pauses`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dexscan.store import Store
from dexscan.store.connection import LockWait

pytestmark = pytest.mark.slow

#: Generous: the child imports the whole scanner and runs half an hour of demo on a shared
#: machine; a writer that never gave up would run into ``--duration`` (exit 0) or past this.
CHILD_TIMEOUT_S = 900
#: Real seconds after which the child stops on its own (``--duration``): the hang guard.
CHILD_DURATION_S = 600
#: The writers' budget the run is configured with (``store.lock_wait_s``), in simulated seconds.
LOCK_WAIT_S = 30


async def _create(db: Path) -> None:
    await (await Store.open(db)).close()


def test_a_scan_on_a_database_locked_for_good_stops_with_one_line_and_exit_2(tmp_path: Path) -> None:
    db = tmp_path / "scan.db"
    asyncio.run(_create(db))  # created and migrated: the lock meets the scanner's writes, not its open
    config = tmp_path / "short-wait.toml"
    config.write_text(f"[store]\nlock_wait_s = {LOCK_WAIT_S}\n", encoding="utf-8")
    pauses = list(LockWait(give_up_after_s=LOCK_WAIT_S).pauses())
    # 0.05 s doubling to 3.2 s, then the 5 s cap, and a last pause cut to fill the budget exactly
    assert (pauses[:8], pauses[-1], round(sum(pauses), 6)) == ([0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0], 3.65, 30.0)
    attempts = len(pauses) + 1  # one before each pause, and the last one after them
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        r = subprocess.run(
            [sys.executable, "-m", "dexscan", "--config", str(config), "scan", "--demo", "--json", "--speed", "max",
             "--db", str(db), "--duration", str(CHILD_DURATION_S)],
            env={**os.environ, "DEXSCAN_DATA_DIR": str(tmp_path / "data")}, capture_output=True, text=True,
            timeout=CHILD_TIMEOUT_S, check=False)
    finally:
        holder.close()
    assert r.returncode == 2
    assert r.stderr == (
        f"dexscan: error: database {db} is still locked by another connection after {LOCK_WAIT_S} s "
        f"({attempts} attempts); "
        "the write was not made. Another program holds its write lock: most likely another dexscan process "
        "using the same file (scan, bot, backfill), else a backup or an sqlite3 shell with an open transaction. "
        "Stop it, or point --db (or DEXSCAN_DB) at another file\n")
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
