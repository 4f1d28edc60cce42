"""Start on a full disk (issue 17 point 8): one clear line, exit code 2, no hang.

The disk is made full for real without root: the child process runs under ``RLIMIT_FSIZE`` 0 with
``SIGXFSZ`` ignored, so every write that would grow a file fails with ``EFBIG`` ("File too large"),
as writes fail on a full disk. Before the fix the start printed a raw traceback and then hung (the
failed database connection's worker thread kept the process alive; ``--duration`` was ignored).
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dexscan.errors import StoreError
from dexscan.store import Store

#: Generous: the child imports the whole scanner on a shared machine; a hang would run far past it.
CHILD_TIMEOUT_S = 300


def _no_room() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


@pytest.mark.parametrize("explicit_db", [False, True], ids=["default-db", "db-flag"])
def test_scan_on_a_full_disk_is_one_line_and_exit_2(tmp_path: Path, explicit_db: bool) -> None:
    data = tmp_path / "data"
    db = tmp_path / "scan.db" if explicit_db else data / "demo" / "dexscan-demo.db"
    argv = [sys.executable, "-m", "dexscan", "scan", "--demo", "--json", "--duration", "5",
            *(["--db", str(db)] if explicit_db else [])]
    env = {**os.environ, "DEXSCAN_DATA_DIR": str(data)}
    r = subprocess.run(argv, env=env, preexec_fn=_no_room, capture_output=True, text=True,
                       timeout=CHILD_TIMEOUT_S, check=False)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (
        f"dexscan: error: database {db}: cannot open and write it (disk I/O error); free disk space (or raise "
        "the file size limit), check the permissions, or point --db (or DEXSCAN_DB) at another disk\n")


async def test_a_failed_open_leaves_no_thread_behind(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"not a database, " * 512)
    before = threading.active_count()
    with pytest.raises(StoreError) as info:
        await Store.open(path)
    assert str(info.value) == (
        f"database {path}: not an SQLite database (file is not a database); point --db (or DEXSCAN_DB) at "
        "another file")
    # the connection's worker thread ends: it was told to stop before the error was raised, and may
    # still be returning from its queue (a hung thread would keep the count up for the whole minute)
    for _ in range(600):
        if threading.active_count() <= before:
            break
        await asyncio.sleep(0.1)
    assert threading.active_count() <= before
