"""SIGKILL during streaming, then restart: no trade counted twice in a bar, no alert lost or repeated.

``dexscan scan --demo --json --db FILE`` (on the chain stream, as the demo runs by default) is
killed with SIGKILL a few times at seeded moments once its tape holds trades, restarted on the same
database each time (the demo resumes its clock where the killed run last recorded it, so the
restarted stream sends some of the same swaps again), and finally run unpaced past an hour of the
market until every alert is out, then stopped with SIGTERM.

Then every stored 5m bar of a streamed pool, from the pool's first bootstrap on, has exactly the
volume of the distinct trades (signature + event index) the tape holds for it, summed in the order
they were judged: a trade counted twice, or one the restart lost from the bar it was forming,
would show. The exception is a bar that closed while the process was dead: the restart fetches it
from the history provider, whose bar holds at least the streamed trades. Every planted ignition of
a gate-passing token in the covered time is signalled, and each signal reached the Bot API fake's
chat exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import time
from collections import defaultdict
from pathlib import Path

import pytest

from dexscan.demo.market_sim import MarketSim
from dexscan.demo.world import demo_sim_config
from dexscan.market import M5
from tests.support.fault_harness import (
    DETECT_S,
    REPO_ROOT,
    DbState,
    Zygote,
    _demo_clock,
    _progress,
    check_consistent,
)

pytestmark = pytest.mark.slow

KILLS = 4
SEED = 20_261_203
SPEED = 300.0
FINAL_CLOCK_S = 3600.0


def _stored_m5(db: Path) -> tuple[set[tuple[str, int]], dict[str, int]]:
    """The stored 5m bars (pool, ts) and each token's count of bootstrap notes, between two runs."""
    from dexscan.tape import BOOTSTRAP_KEY

    if not db.exists():
        return set(), {}
    con = sqlite3.connect(db, timeout=30.0)
    try:
        bars = {(str(p), int(ts)) for p, ts in con.execute("SELECT pool, ts FROM candles WHERE timeframe = ?", (M5,))}
        notes = {str(k)[len(BOOTSTRAP_KEY):]: len(json.loads(v))
                 for k, v in con.execute("SELECT key, value FROM kv WHERE key LIKE 'tape:bootstrap:%'")}
        return bars, notes
    finally:
        con.close()


def _tape_rows(db: Path) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(db, timeout=30.0)
    try:
        return int(con.execute("SELECT COUNT(*) FROM trades").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        con.close()


async def test_sigkill_while_streaming_counts_each_trade_once_and_alerts_once(tmp_path: Path) -> None:
    from dexscan.demo.servers.telegram import DEMO_CHAT, FakeTelegram
    from dexscan.demo_mode import bot_api_journal
    from dexscan.tape import BOOTSTRAP_KEY, BootstrapNote

    rng = random.Random(SEED)
    db = tmp_path / "killed.db"
    journal = bot_api_journal(db)
    env = {**os.environ, "DEXSCAN_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    for var in ("DEXSCAN_TELEGRAM_TOKEN", "DEXSCAN_DB", "DEXSCAN_RPC_URLS", "DEXSCAN_SECRETS_FILE"):
        env.pop(var, None)
    argv = ["scan", "--demo", "--json", "--db", str(db), "--speed", f"{SPEED:g}"]
    user = FakeTelegram(chats=[DEMO_CHAT], journal=journal)
    user.inject_user_message(DEMO_CHAT, "/start")
    user.close_journal()
    zygote = await Zygote.start(env, REPO_ROOT, limit_s=600.0)  # imports take long on a busy machine
    first_clock: float | None = None
    kills_with_tape = 0
    between_runs: list[tuple[set[tuple[str, int]], dict[str, int]]] = []  # before each restart
    try:
        for i in range(KILLS):
            out, err = tmp_path / f"run{i}.out", tmp_path / f"run{i}.err"
            if i:
                between_runs.append(_stored_m5(db))
            before = _tape_rows(db)
            pid = await zygote.spawn(argv, out, err)
            deadline = time.monotonic() + 120.0
            while time.monotonic() < deadline:  # until it streams: the tape grows
                await asyncio.sleep(0.05)
                if _tape_rows(db) > before:
                    break
            kills_with_tape += _tape_rows(db) > before
            await asyncio.sleep(rng.uniform(0.0, 1.5))
            os.kill(pid, signal.SIGKILL)
            sig, _ = await zygote.wait(pid)
            assert sig == signal.SIGKILL, f"run {i} ended before the kill ({sig}); see {err}"
            check_consistent(DbState.read(db), DEMO_CHAT)
            if first_clock is None:
                first_clock = _demo_clock(db)
        out, err = tmp_path / "final.out", tmp_path / "final.err"
        between_runs.append(_stored_m5(db))
        pid = await zygote.spawn([*argv[:-1], "max"], out, err)
        deadline = time.monotonic() + 1200.0
        while True:  # three cheap reads; the whole file's integrity is checked once at the end
            await asyncio.sleep(0.2)
            clock, signals, states = _progress(db)
            if (first_clock is not None and clock >= first_clock + FINAL_CLOCK_S and signals
                    and states <= {"sent", "digested", "failed"}):
                break
            assert time.monotonic() < deadline, f"alerts still undelivered; see {err}"
        os.kill(pid, signal.SIGTERM)
        assert await zygote.wait(pid) == (0, 0)
    finally:
        await zygote.close()
    assert kills_with_tape == KILLS  # every kill landed while trades were streaming in
    final = DbState.read(db)
    check_consistent(final, DEMO_CHAT)

    con = sqlite3.connect(db)
    try:
        notes = {k[len(BOOTSTRAP_KEY):]: [BootstrapNote.from_json(n) for n in json.loads(v)]
                 for k, v in con.execute("SELECT key, value FROM kv WHERE key LIKE 'tape:bootstrap:%'")}
        tape = con.execute("SELECT pool, block_time, base_amount, price_usd FROM trades ORDER BY rowid").fetchall()
        by_bar: dict[tuple[str, int], float] = defaultdict(float)
        for pool, block_time, base, price in tape:
            by_bar[(pool, block_time - block_time % M5)] += base * price  # as the bar summed them
        streamed = {pool for pool, _, _, _ in tape}  # unstreamable pools are priced by polls
        first_bar: dict[str, int] = {}
        for ns in notes.values():
            for n in ns:
                if n.pool in streamed:
                    first_bar[n.pool] = min(first_bar.get(n.pool, n.bars_end), n.bars_end)
        bars = [(pool, ts, volume) for pool, ts, volume in con.execute(
            "SELECT pool, ts, volume FROM candles WHERE timeframe = ? ORDER BY pool, ts", (M5,))
            if pool in first_bar and ts >= first_bar[pool]]
    finally:
        con.close()
    assert len(tape) > 500 and len(notes) >= 5
    assert sum(len(n) for n in notes.values()) > len(notes)  # restarts bootstrapped tokens again
    # A restart whose clock is past the bar the killed run was forming fetches that bar (closed
    # while the process was dead) from the history provider, as it fetches every bar missing from
    # the store: the provider's bar holds every trade of its 5 minutes, the tape only the streamed
    # ones. Those are the bars a restart's bootstrap ended after that were not stored before it.
    fetched: set[tuple[str, int]] = set()
    ends = [*between_runs[1:], (set(), {m: len(ns) for m, ns in notes.items()})]
    for (stored, count_before), (_, count_after) in zip(between_runs, ends, strict=True):
        for mint, ns in notes.items():
            for n in ns[count_before.get(mint, 0):count_after.get(mint, 0)]:
                fetched |= {(pool, ts) for pool, ts, _ in bars
                            if pool == n.pool and ts < n.bars_end and (pool, ts) not in stored}
    wrong = [(pool, ts, volume, by_bar.get((pool, ts), 0.0)) for pool, ts, volume in bars
             if (pool, ts) not in fetched and volume != by_bar.get((pool, ts), 0.0)]
    assert wrong == [], (len(wrong), len(bars), wrong[:10])
    short = [(pool, ts, volume, by_bar[(pool, ts)]) for pool, ts, volume in bars
             if (pool, ts) in fetched and volume < by_bar.get((pool, ts), 0.0) - 1e-6]  # 6-decimal volumes
    assert short == [], short[:10]
    traded = [(pool, ts) for pool, ts, _ in bars if (pool, ts) in by_bar and (pool, ts) not in fetched]
    assert len(traded) >= 50  # bars checked exactly

    assert first_clock is not None
    last_clock = _demo_clock(db)
    assert last_clock is not None
    sim = MarketSim(demo_sim_config())
    planted = {(e.mint, e.candle_ts) for e in sim.planted_events(int(first_clock) - 14_400, int(last_clock))
               if e.eligible and e.kind in ("pump", "fizzle") and first_clock <= e.ignite_ts <= last_clock - DETECT_S}
    ignitions = {(k[0], k[2]) for k in final.natural_keys() if k[1] == "ignition"}
    assert planted and planted <= ignitions, planted - ignitions
    sent = FakeTelegram(journal=journal).sent(DEMO_CHAT)
    rows = [r for r in final.outbox if r[2] == DEMO_CHAT and r[3] in ("signal", "join")]
    assert sorted(r[1] for r in rows) == sorted(final.signals)  # each signal queued once
    texts = [m.text for m in sent]
    assert len(texts) == len(set(texts)), "an alert reached the chat twice"
    by_id = {m.message_id: m for m in sent}
    for r in rows:  # and each one is in the chat
        assert r[5] in by_id, r
