"""SIGKILL at seeded random moments, twenty times on one database, then a clean run to the end.

Each cycle starts ``dexscan scan --demo --json --db FILE`` (forked from a warm zygote, see
:mod:`tests.support.fault_harness`), lets it run for a random time or until just after it committed and
printed a signal or outcome, and kills it with SIGKILL. The restarted demo resumes the simulated
clock where the killed one last recorded it, so it replays a little of the same market: the detector
finds some signals again, and the store's natural keys must keep them from being stored or shown
twice. After every kill the database must be intact and consistent (each signal with its alert and
open outcome, each close with its alert: they were written in one transaction), and a superset of
what was there before. Finally a run delivers every queued alert and stops on SIGTERM: every alert
must have reached the Bot API fake (which outlives the scanner, as Telegram does) exactly once, in
order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fault_harness import run_kill_cycles

pytestmark = pytest.mark.slow

CYCLES = 20
SEED = 20_260_201


async def test_twenty_sigkills_lose_nothing_repeat_nothing_and_every_alert_arrives_once(tmp_path: Path) -> None:
    report = await run_kill_cycles(tmp_path, CYCLES, SEED)

    assert report.cycles == CYCLES
    assert report.killed_on_event >= 5  # several kills landed right after a commit was shown
    assert report.signals >= 3 and report.alerts >= report.signals
    print("sigkill report:", report)
