from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from dexscan.domain import (
    Candle,
    Confidence,
    GateStatus,
    GateVerdict,
    Levels,
    Outcome,
    Reason,
    Signal,
    Timeframe,
)
from dexscan.errors import DatabaseLocked, StoreError
from dexscan.store import Store
from dexscan.store.connection import LockWait
from dexscan.store.schema import SCHEMA_VERSION


def _signal(ts: int = 1_700_000_000) -> Signal:
    return Signal(
        mint="MintA", strategy="ignition", layer="ignition", candle_ts=1_699_996_800, ts=ts, price=1.02,
        reasons=(Reason("rise", 2.0, ">=", 2.0, "%"),), symbol="AAA", pool="PoolA", rise_pct=2.0,
        volume_ratio=3.5, levels=Levels(1.02, 0.87, 1.245, 1.47, 1.77, 0.1, "4h", "atr"),
        confidence=Confidence(0.61), features={"rise_vs_open": 2.0},
    )


async def test_schema_versioned_and_wal(store: Store, tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "test.db")
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"tokens", "pools", "candles", "gate_verdicts", "signals", "outcomes", "alert_outbox",
            "calibrators"} <= tables
    con.close()
    # re-opening migrates nothing and keeps data
    again = await Store.open(tmp_path / "test.db")
    assert await again.migrate() == SCHEMA_VERSION
    await again.close()


async def test_candles_are_idempotent_by_natural_key(store: Store) -> None:
    bars = [Candle(300 * i, 1.0, 1.1, 0.9, 1.05, 10.0 * i) for i in range(5)]
    await store.upsert_candles("P", Timeframe.M5, bars)
    await store.upsert_candles("P", Timeframe.M5, bars)
    assert await store.candle_count("P", Timeframe.M5) == 5
    # a forming bar is rewritten, not duplicated
    await store.upsert_candles("P", Timeframe.M5, [Candle(1200, 1.0, 1.3, 0.9, 1.25, 99.0)])
    got = await store.candles("P", Timeframe.M5)
    assert len(got) == 5 and got[-1] == Candle(1200, 1.0, 1.3, 0.9, 1.25, 99.0)
    assert [c.ts for c in await store.candles("P", Timeframe.M5, 300, 900)] == [300, 600]


async def test_signal_and_outbox_written_once(store: Store) -> None:
    sid, created = await store.save_signal(_signal(), chat_ids=[11, 22], payload="card")
    assert created
    sid2, created2 = await store.save_signal(_signal(ts=1_700_000_100), chat_ids=[11, 22], payload="card")
    assert sid2 == sid and not created2
    assert await store.signal_count() == 1
    rows = await store._all("SELECT chat_id, kind, state FROM alert_outbox ORDER BY chat_id")
    assert [tuple(r) for r in rows] == [(11, "signal", "pending"), (22, "signal", "pending")]
    [(got_id, got, outcome)] = await store.signals()
    assert got_id == sid and got == _signal() and outcome == Outcome("open", 0.0)


async def test_closing_outcome_updates_status_and_queues_alert(store: Store) -> None:
    sid, _ = await store.save_signal(_signal(), chat_ids=[11])
    await store.save_outcome(sid, Outcome("tp1", 1.5, {"tp1": 1_700_003_600}, 1_700_003_600, 1.25, 1.6), 1_700_003_600,
                             chat_ids=[11])
    [(_, _, outcome)] = await store.signals(status="closed")
    assert outcome is not None and outcome.result == "tp1" and outcome.hits == {"tp1": 1_700_003_600}
    kinds = [r[0] for r in await store._all("SELECT kind FROM alert_outbox ORDER BY id")]
    assert kinds == ["signal", "outcome"]


async def test_failed_transaction_leaves_nothing(store: Store) -> None:
    try:
        async with store.transaction():
            await store.db.execute("INSERT INTO kv(key, value) VALUES ('a', '1')")
            raise RuntimeError("killed mid-write")
    except RuntimeError:
        pass
    assert await store.kv_get("a") is None


async def test_latest_verdict_per_gate(store: Store) -> None:
    await store.save_verdicts([
        GateVerdict("M", "mint_authority", GateStatus.FAIL, "mint authority set: X", 100),
        GateVerdict("M", "liquidity", GateStatus.PASS, "liquidity $80,000 >= $50,000", 100),
    ])
    await store.save_verdicts([GateVerdict("M", "mint_authority", GateStatus.PASS, "renounced", 200)])
    got = {v.gate: (v.status, v.checked_at) for v in await store.latest_verdicts("M")}
    assert got == {"liquidity": (GateStatus.PASS, 100), "mint_authority": (GateStatus.PASS, 200)}


async def test_concurrent_tasks_share_one_connection_safely(store: Store) -> None:
    """Many tasks writing at once: no 'transaction within a transaction', nothing lost or joined."""

    async def writer(i: int) -> None:
        bars = [Candle(300 * j, 1.0, 1.1, 0.9, 1.0, float(j)) for j in range(20)]
        await store.upsert_candles(f"P{i}", Timeframe.M5, bars)
        await store.kv_set(f"k{i}", str(i))

    async def doomed() -> None:
        try:
            async with store.transaction():
                await store.db.execute("INSERT INTO kv(key, value) VALUES ('doomed', '1')")
                await asyncio.sleep(0.01)  # other tasks run while this transaction is open
                raise RuntimeError("abort")
        except RuntimeError:
            pass

    await asyncio.gather(doomed(), *(writer(i) for i in range(10)), doomed())
    assert await store.candle_count() == 200
    assert [await store.kv_get(f"k{i}") for i in range(10)] == [str(i) for i in range(10)]
    assert await store.kv_get("doomed") is None


async def test_the_trade_tape_keeps_each_trade_once_in_time_order_and_prunes(store: Store) -> None:
    from dexscan.chain.trades import Trade

    def trade(sig: str, idx: int, ts: int, side: str = "buy", price: float | None = 0.5) -> Trade:
        return Trade(signature=sig, index=idx, pool="Pool", mint="Mint", block_time=ts, side=side,  # type: ignore[arg-type]
                     base_amount=2.0, signer="Signer", program="pumpswap", slot=100 + ts, quote_amount=0.01,
                     price_quote=0.005, price_usd=price)

    batch = [trade("s2", 0, 20), trade("s1", 1, 10, "sell"), trade("s1", 0, 10), trade("s3", 0, 30, price=None)]
    assert await store.save_trades(batch) == 3  # no USD price: not a tape row
    assert await store.save_trades([trade("s1", 0, 10), trade("s4", 0, 40)]) == 1  # s1#0 was there
    assert await store.trades("Pool", 0, 100) == [
        ("s1", 0, 110, 10, "buy", 2.0, 0.01, 0.5, "Signer"), ("s1", 1, 110, 10, "sell", 2.0, 0.01, 0.5, "Signer"),
        ("s2", 0, 120, 20, "buy", 2.0, 0.01, 0.5, "Signer"), ("s4", 0, 140, 40, "buy", 2.0, 0.01, 0.5, "Signer")]
    assert await store.trades("Other", 0, 100) == [] and len(await store.trades("Pool", 10, 20)) == 2
    assert await store.prune_trades(20) == 2
    assert [r[0] for r in await store.trades("Pool", 0, 100)] == ["s2", "s4"]


# -- another connection holds the file's write lock ------------------------------------------------

#: SQLite's own wait per attempt, in real milliseconds: kept tiny so that the 367 attempts of the
#: default half-hour budget take little real time (the pauses between them are virtual).
TEST_BUSY_TIMEOUT_MS = 1


def _hold_write_lock(db: Path) -> sqlite3.Connection:
    """Another connection to the file (as a backup, a ``sqlite3`` shell or a second dexscan would
    be) that takes the write lock and keeps it until ``commit()``."""
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


@pytest.mark.virtual_time
async def test_a_write_waits_out_a_short_lock(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    store = await Store.open(db, LockWait(busy_timeout_ms=TEST_BUSY_TIMEOUT_MS))
    loop = asyncio.get_running_loop()
    holder = _hold_write_lock(db)
    try:
        loop.call_later(10.0, holder.commit)  # the lock goes after 10 s
        started = loop.time()
        await store.kv_set("k", "v")
        # the attempt after the pauses 0.05 + 0.1 + 0.2 + 0.4 + 0.8 + 1.6 + 3.2 + 5 s found it gone
        assert round(loop.time() - started, 6) == 11.35
        assert await store.kv_get("k") == "v"
    finally:
        holder.close()
        await store.close()


@pytest.mark.virtual_time
async def test_a_lock_held_past_the_budget_ends_in_database_locked(tmp_path: Path) -> None:
    """The default budget (half an hour of pauses, 367 attempts), then one error naming the file,
    who may hold it and what to do; the write was not made, and the store works once the lock goes."""
    db = tmp_path / "locked.db"
    store = await Store.open(db, LockWait(busy_timeout_ms=TEST_BUSY_TIMEOUT_MS))
    loop = asyncio.get_running_loop()
    holder = _hold_write_lock(db)
    try:
        started = loop.time()
        with pytest.raises(DatabaseLocked) as info:
            async with store.transaction():  # BEGIN IMMEDIATE is the statement that waits
                await store.db.execute("INSERT INTO kv(key, value) VALUES ('lost', '1')")
        assert round(loop.time() - started, 6) == 1800.0
        assert str(info.value) == (
            f"database {db} is still locked by another connection after 1800 s (367 attempts); the write was "
            "not made. Another program holds its write lock: most likely another dexscan process using the "
            "same file (scan, bot, backfill), else a backup or an sqlite3 shell with an open transaction. "
            "Stop it, or point --db (or DEXSCAN_DB) at another file")
        assert isinstance(info.value, StoreError)  # the command line prints it as one line, exit 2
        holder.commit()
        await store.kv_set("after", "1")
        assert (await store.kv_get("lost"), await store.kv_get("after")) == (None, "1")
    finally:
        holder.close()
        await store.close()


async def test_upsert_token_adds_each_source_once_and_keeps_known_fields(store: Store) -> None:
    await store.upsert_token("M", 100, symbol="AAA", name="Alpha", decimals=6, source="jupiter:recent")
    await store.upsert_token("M", 200, source="dexscreener:profiles")
    await store.upsert_token("M", 300, symbol="AAB", source="jupiter:recent")
    row = await store.token_row("M")
    assert row is not None
    assert (row["symbol"], row["name"], row["decimals"], row["sources"], row["first_seen"], row["last_seen"]) == (
        "AAB", "Alpha", 6, '["dexscreener:profiles","jupiter:recent"]', 100, 300)


@pytest.mark.virtual_time
async def test_one_trip_writes_wait_out_a_short_lock_like_the_others(tmp_path: Path) -> None:
    """save_trades (BEGIN IMMEDIATE + executemany + COMMIT in one trip) and upsert_token (read and
    write in one trip) pause and try again as every write does; nothing is half written."""
    from dexscan.chain.trades import Trade

    db = tmp_path / "locked.db"
    store = await Store.open(db, LockWait(busy_timeout_ms=TEST_BUSY_TIMEOUT_MS))
    loop = asyncio.get_running_loop()
    trades = [Trade(signature=f"s{i}", index=0, pool="Pool", mint="Mint", block_time=10 + i, side="buy",
                    base_amount=2.0, signer="Signer", program="pumpswap", slot=100 + i, quote_amount=0.01,
                    price_quote=0.005, price_usd=0.5) for i in range(3)]
    holder = _hold_write_lock(db)
    try:
        loop.call_later(10.0, holder.commit)
        started = loop.time()
        assert await store.save_trades(trades) == 3
        assert round(loop.time() - started, 6) == 11.35  # the same pauses as test_a_write_waits_out_a_short_lock
        holder.execute("BEGIN EXCLUSIVE")
        loop.call_later(1.0, holder.commit)
        started = loop.time()
        await store.upsert_token("Mint", 7, symbol="TOK", source="chain")
        assert round(loop.time() - started, 6) == 1.55  # 0.05 + 0.1 + 0.2 + 0.4 + 0.8
        row = await store.token_row("Mint")
        assert row is not None and (row["symbol"], row["sources"]) == ("TOK", '["chain"]')
        assert [r[0] for r in await store.trades("Pool", 0, 100)] == ["s0", "s1", "s2"]
    finally:
        holder.close()
        await store.close()
