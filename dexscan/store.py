"""SQLite persistence: one file, WAL mode, schema versioned with ``PRAGMA user_version``.

Natural keys everywhere (DESIGN §2.5) so that re-running, restarting or replaying never duplicates
a row: candles ``(pool, timeframe, ts)``, signals ``(mint, strategy, candle_ts)``, outbox
``(signal_id, chat_id, kind)``, gate verdicts ``(mint, gate, checked_at)``. Multi-row writes run in
one transaction, so a killed process leaves either all of a write or none of it. SQL is
parameterised only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiosqlite

from dexscan.domain import (
    Candle,
    Confidence,
    GateStatus,
    GateVerdict,
    Levels,
    MintExtension,
    MintFacts,
    Outcome,
    Reason,
    Signal,
    Timeframe,
)
from dexscan.errors import StoreError
from dexscan.vtime import thread_work

#: Each entry upgrades the schema by one version. Append only; never edit a released migration.
MIGRATIONS: list[str] = [
    # v1
    """
    CREATE TABLE tokens (
        mint TEXT PRIMARY KEY,
        symbol TEXT NOT NULL DEFAULT '',
        name TEXT NOT NULL DEFAULT '',
        decimals INTEGER,
        sources TEXT NOT NULL DEFAULT '[]',
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        in_universe INTEGER NOT NULL DEFAULT 0,
        universe_since INTEGER,
        failing_since INTEGER,
        watched INTEGER NOT NULL DEFAULT 0,
        main_pool TEXT
    );
    CREATE TABLE pools (
        address TEXT PRIMARY KEY,
        mint TEXT NOT NULL,
        dex_id TEXT NOT NULL DEFAULT '',
        quote_mint TEXT NOT NULL DEFAULT '',
        quote_symbol TEXT NOT NULL DEFAULT '',
        liquidity_usd REAL,
        volume_h24_usd REAL,
        pair_created_at INTEGER,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX pools_by_mint ON pools(mint);
    CREATE TABLE candles (
        pool TEXT NOT NULL,
        timeframe INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL,
        volume REAL NOT NULL,
        PRIMARY KEY (pool, timeframe, ts)
    ) WITHOUT ROWID;
    CREATE TABLE history_coverage (
        pool TEXT NOT NULL,
        timeframe INTEGER NOT NULL,
        start_ts INTEGER NOT NULL,
        end_ts INTEGER NOT NULL,
        PRIMARY KEY (pool, timeframe, start_ts)
    );
    CREATE TABLE gate_verdicts (
        mint TEXT NOT NULL,
        gate TEXT NOT NULL,
        checked_at INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pass', 'fail', 'unverified')),
        reason TEXT NOT NULL,
        details TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (mint, gate, checked_at)
    );
    CREATE TABLE mint_facts (
        mint TEXT PRIMARY KEY,
        checked_at INTEGER NOT NULL,
        facts TEXT NOT NULL
    );
    CREATE TABLE signals (
        id INTEGER PRIMARY KEY,
        mint TEXT NOT NULL,
        strategy TEXT NOT NULL,
        candle_ts INTEGER NOT NULL,
        layer TEXT NOT NULL,
        ts INTEGER NOT NULL,
        symbol TEXT NOT NULL DEFAULT '',
        pool TEXT,
        price REAL NOT NULL,
        rise_pct REAL,
        volume_ratio REAL,
        liquidity_usd REAL,
        levels TEXT,
        reasons TEXT NOT NULL,
        features TEXT NOT NULL DEFAULT '{}',
        raw_score REAL,
        confidence REAL,
        calibrator_version TEXT,
        status TEXT NOT NULL DEFAULT 'live' CHECK (status IN ('live', 'closed', 'untracked')),
        UNIQUE (mint, strategy, candle_ts)
    );
    CREATE INDEX signals_by_ts ON signals(ts);
    CREATE INDEX signals_by_status ON signals(status);
    CREATE TABLE outcomes (
        signal_id INTEGER PRIMARY KEY REFERENCES signals(id),
        result TEXT NOT NULL,
        realized_r REAL NOT NULL,
        max_r REAL NOT NULL DEFAULT 0,
        hits TEXT NOT NULL DEFAULT '{}',
        closed_at INTEGER,
        last_price REAL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE candle_states (
        mint TEXT NOT NULL,
        candle_ts INTEGER NOT NULL,
        state TEXT NOT NULL,
        ignited_at INTEGER,
        confirmed_at INTEGER,
        PRIMARY KEY (mint, candle_ts)
    );
    CREATE TABLE alert_outbox (
        id INTEGER PRIMARY KEY,
        signal_id INTEGER REFERENCES signals(id),
        chat_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'digested')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL DEFAULT 0,
        message_id INTEGER,
        last_error TEXT,
        sent_at INTEGER,
        UNIQUE (signal_id, chat_id, kind)
    );
    CREATE INDEX outbox_pending ON alert_outbox(state, chat_id, id);
    CREATE TABLE calibrators (
        version TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        artifact TEXT NOT NULL
    );
    CREATE TABLE chat_settings (
        chat_id INTEGER PRIMARY KEY,
        settings TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE mutes (
        chat_id INTEGER NOT NULL,
        mint TEXT NOT NULL,
        PRIMARY KEY (chat_id, mint)
    );
    CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # v2: the trade tape (issue 13): on-chain trades of universe pools, kept stream.tape_retention_s
    """
    CREATE TABLE trades (
        signature TEXT NOT NULL,
        idx INTEGER NOT NULL,
        pool TEXT NOT NULL,
        mint TEXT NOT NULL,
        slot INTEGER,
        block_time INTEGER NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
        base_amount REAL NOT NULL,
        quote_amount REAL NOT NULL,
        price_usd REAL NOT NULL,
        signer TEXT,
        PRIMARY KEY (signature, idx)
    );
    CREATE INDEX trades_pool_time ON trades(pool, block_time);
    CREATE INDEX trades_time ON trades(block_time);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

log = logging.getLogger(__name__)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def levels_to_json(levels: Levels | None) -> str | None:
    return None if levels is None else _dumps(asdict(levels))


def levels_from_json(text: str | None) -> Levels | None:
    if not text:
        return None
    d = json.loads(text)
    d["flags"] = tuple(d.get("flags", ()))
    return Levels(**d)


def signal_from_row(row: aiosqlite.Row) -> Signal:
    conf = None
    if row["raw_score"] is not None:
        conf = Confidence(row["raw_score"], row["confidence"], row["calibrator_version"])
    return Signal(
        mint=row["mint"],
        strategy=row["strategy"],
        layer=row["layer"],
        candle_ts=row["candle_ts"],
        ts=row["ts"],
        price=row["price"],
        reasons=tuple(Reason(**r) for r in json.loads(row["reasons"])),
        symbol=row["symbol"],
        pool=row["pool"],
        rise_pct=row["rise_pct"],
        volume_ratio=row["volume_ratio"],
        levels=levels_from_json(row["levels"]),
        confidence=conf,
        features=json.loads(row["features"]),
        liquidity_usd=row["liquidity_usd"],
    )


def outcome_from_row(row: aiosqlite.Row) -> Outcome:
    return Outcome(
        result=row["result"],
        realized_r=row["realized_r"],
        hits=json.loads(row["hits"]),
        closed_at=row["closed_at"],
        last_price=row["last_price"],
        max_r=row["max_r"],
    )


def facts_to_json(f: MintFacts) -> str:
    d = asdict(f)
    d["extensions"] = [{"name": e.name, "state": dict(e.state)} for e in f.extensions]
    return _dumps(d)


def facts_from_json(text: str) -> MintFacts:
    d = json.loads(text)
    d["extensions"] = tuple(MintExtension(e["name"], e["state"]) for e in d.get("extensions", []))
    d["vouched_by"] = tuple(d.get("vouched_by") or ())
    return MintFacts(**d)


#: Milliseconds SQLite itself waits for another connection's write lock (in aiosqlite's thread)
#: before :meth:`Store._when_unlocked` takes over and waits in the event loop, where other work
#: goes on (and, on a virtual-time loop, time passes: dexscan.vtime).
BUSY_TIMEOUT_MS = 100
#: Seconds between two attempts of a writer that found the file locked: doubling up to this.
LOCK_RETRY_MAX_S = 5.0


class _Connection(aiosqlite.Connection):
    """aiosqlite's connection, telling a virtual-time event loop while its thread works
    (:func:`dexscan.vtime.thread_work`: the loop's clock then waits for the database)."""

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with thread_work():
            return await super()._execute(fn, *args, **kwargs)

    async def _connect(self) -> aiosqlite.Connection:
        with thread_work():
            return await super()._connect()

    async def close(self) -> None:
        with thread_work():  # also waits for the thread to stop, outside ``_execute``
            await super().close()


def _connect(path: str) -> aiosqlite.Connection:
    """``aiosqlite.connect(path, isolation_level=None)`` with :class:`_Connection`."""
    return _Connection(lambda: sqlite3.connect(path, isolation_level=None), iter_chunk_size=64)


def _cannot_open(path: Path, exc: BaseException) -> str:
    """One line for a database that cannot be opened or written, saying what to do."""
    reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) or type(exc).__name__
    if "not a database" in reason:
        return f"database {path}: not an SQLite database ({reason}); point --db (or DEXSCAN_DB) at another file"
    return (f"database {path}: cannot open and write it ({reason}); free disk space (or raise the file size "
            "limit), check the permissions, or point --db (or DEXSCAN_DB) at another disk")


def shares_bot_counter(chat_id: int) -> bool:
    """Private chats (positive ids) and basic groups (negative, not ``-100...``) share the bot's one
    message id counter; supergroups and channels count on their own."""
    return chat_id > 0 or -1_000_000_000_000 < chat_id < 0


class Store:
    """Async access to the SQLite file. Open with ``await Store.open(path)``; close with ``close()``."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self.db = db
        self.path = path
        self._write_lock = asyncio.Lock()
        self._writer: asyncio.Task[Any] | None = None

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        """Open (creating if needed) and migrate the database; :class:`StoreError` in one line when the
        file cannot be opened or written (a full disk, say). A failed open leaves no connection
        behind: its worker thread would otherwise keep the process alive after the error."""
        p = Path(path)
        try:
            if str(p) != ":memory:":
                p.parent.mkdir(parents=True, exist_ok=True)
            db = await _connect(str(p))
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(_cannot_open(p, exc)) from None
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            store = cls(db, p)
            await store.migrate()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await db.close()
            if isinstance(exc, sqlite3.Error | OSError):
                raise StoreError(_cannot_open(p, exc)) from None
            raise
        return store

    async def close(self) -> None:
        await self.db.close()

    async def migrate(self) -> int:
        async with self.db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"database {self.path} has schema v{version}, newer than this dexscan (v{SCHEMA_VERSION}); "
                "upgrade dexscan or point DEXSCAN_DB at another file"
            )
        for v in range(version, SCHEMA_VERSION):
            async with self.transaction():
                for stmt in _split_sql(MIGRATIONS[v]):
                    await self.db.execute(stmt)
                await self.db.execute(f"PRAGMA user_version = {v + 1}")
        return SCHEMA_VERSION

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        """Exclusive use of the connection for one task's writes.

        Several tasks share this connection. Without this, a second task's ``BEGIN`` fails inside
        the first one's transaction, and a lone write from another task would silently join (and
        could roll back with) someone else's transaction. Re-entrant for the task holding it.
        """
        task = asyncio.current_task()
        if task is not None and self._writer is task:
            yield
            return
        async with self._write_lock:
            self._writer = task
            try:
                yield
            finally:
                self._writer = None

    async def _write(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Cursor:
        """One write statement, committed on its own (autocommit), never inside another task's transaction."""
        async with self._writing():
            return await self._when_unlocked(sql, params)

    async def _when_unlocked(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Cursor:
        """Run a statement that takes the write lock, for as long as another process holds it.

        SQLite waits ``BUSY_TIMEOUT_MS`` in its thread; a longer lock (a backup, ``sqlite3`` in a
        shell, another dexscan) ends in "database is locked", and a writer that gave up would lose
        what it was writing. So the writer waits here, in the event loop (doubling pauses up to
        ``LOCK_RETRY_MAX_S``), and tries again: the failed statement changed nothing (it is a
        ``BEGIN IMMEDIATE`` or an autocommit statement), so trying again is safe.
        """
        attempts = 0
        while True:
            try:
                return await self.db.execute(sql, params)
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise
                attempts += 1
                if attempts & (attempts - 1) == 0:  # 1, 2, 4, 8, ...: a few lines, not one per attempt
                    log.warning("database %s is locked by another connection (%s); still waiting (attempt %d)",
                                self.path, exc, attempts)
                await asyncio.sleep(min(0.05 * 2 ** (attempts - 1), LOCK_RETRY_MAX_S))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """All statements inside commit together or not at all (BEGIN IMMEDIATE: writers queue)."""
        async with self._writing():
            await self._when_unlocked("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            else:
                await self.db.execute("COMMIT")

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self.db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self.db.execute(sql, params) as cur:
            return await cur.fetchone()

    # -- key/value ---------------------------------------------------------------------------

    async def kv_get(self, key: str) -> str | None:
        row = await self._one("SELECT value FROM kv WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    async def kv_set(self, key: str, value: str) -> None:
        await self._write(
            "INSERT INTO kv(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def kv_keep_newest(self, prefix: str, keep: int) -> int:
        """Keep the ``keep`` newest rows whose key starts with ``prefix`` (their values are epoch
        seconds; ties broken by key), delete the others; returns how many were deleted."""
        if not prefix:
            raise ValueError("kv_keep_newest needs a non-empty prefix")
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # keys with the prefix sort in [prefix, end)
        cur = await self._write(
            """DELETE FROM kv WHERE key IN (
                 SELECT key FROM kv WHERE key >= ? AND key < ?
                 ORDER BY CAST(value AS INTEGER) DESC, key DESC LIMIT -1 OFFSET ?)""",
            (prefix, end, max(keep, 0)),
        )
        return max(cur.rowcount, 0)

    # -- tokens and pools --------------------------------------------------------------------

    async def upsert_token(
        self, mint: str, now: int, symbol: str = "", name: str = "", decimals: int | None = None,
        source: str | None = None,
    ) -> None:
        row = await self._one("SELECT sources FROM tokens WHERE mint = ?", (mint,))
        sources = set(json.loads(row["sources"])) if row else set()
        if source:
            sources.add(source)
        await self._write(
            """INSERT INTO tokens(mint, symbol, name, decimals, sources, first_seen, last_seen)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(mint) DO UPDATE SET
                 symbol = CASE WHEN excluded.symbol != '' THEN excluded.symbol ELSE tokens.symbol END,
                 name = CASE WHEN excluded.name != '' THEN excluded.name ELSE tokens.name END,
                 decimals = COALESCE(excluded.decimals, tokens.decimals),
                 sources = excluded.sources, last_seen = excluded.last_seen""",
            (mint, symbol, name, decimals, _dumps(sorted(sources)), now, now),
        )

    async def set_universe_membership(
        self, mint: str, in_universe: bool, now: int, failing_since: int | None, main_pool: str | None = None
    ) -> None:
        await self._write(
            """UPDATE tokens SET in_universe = ?, failing_since = ?,
                 universe_since = CASE WHEN ? = 1 THEN COALESCE(universe_since, ?) ELSE NULL END,
                 main_pool = COALESCE(?, main_pool)
               WHERE mint = ?""",
            (int(in_universe), failing_since, int(in_universe), now, main_pool, mint),
        )

    async def set_watched(self, mint: str, watched: bool, now: int) -> None:
        await self.upsert_token(mint, now, source="user:watch" if watched else None)
        await self._write("UPDATE tokens SET watched = ? WHERE mint = ?", (int(watched), mint))

    async def token_row(self, mint: str) -> dict[str, Any] | None:
        row = await self._one("SELECT * FROM tokens WHERE mint = ?", (mint,))
        return None if row is None else dict(row)

    async def universe(self) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._all("SELECT * FROM tokens WHERE in_universe = 1 ORDER BY mint")]

    async def watched_mints(self) -> list[str]:
        return [r["mint"] for r in await self._all("SELECT mint FROM tokens WHERE watched = 1 ORDER BY mint")]

    async def upsert_pool(
        self, address: str, mint: str, now: int, dex_id: str = "", quote_mint: str = "",
        quote_symbol: str = "", liquidity_usd: float | None = None, volume_h24_usd: float | None = None,
        pair_created_at: int | None = None,
    ) -> None:
        await self._write(
            """INSERT INTO pools(address, mint, dex_id, quote_mint, quote_symbol, liquidity_usd,
                                 volume_h24_usd, pair_created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(address) DO UPDATE SET
                 liquidity_usd = excluded.liquidity_usd, volume_h24_usd = excluded.volume_h24_usd,
                 dex_id = excluded.dex_id, quote_mint = excluded.quote_mint,
                 quote_symbol = excluded.quote_symbol,
                 pair_created_at = COALESCE(excluded.pair_created_at, pools.pair_created_at),
                 updated_at = excluded.updated_at""",
            (address, mint, dex_id, quote_mint, quote_symbol, liquidity_usd, volume_h24_usd,
             pair_created_at, now),
        )

    async def pools_of(self, mint: str) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._all("SELECT * FROM pools WHERE mint = ? ORDER BY address", (mint,))]

    async def pool_row(self, address: str) -> dict[str, Any] | None:
        row = await self._one("SELECT * FROM pools WHERE address = ?", (address,))
        return None if row is None else dict(row)

    # -- candles -----------------------------------------------------------------------------

    async def upsert_candles(self, pool: str, tf: Timeframe, candles: Iterable[Candle]) -> int:
        """Insert or replace bars (a forming bar is rewritten as it grows). Returns rows written."""
        rows = [(pool, int(tf), c.ts, c.open, c.high, c.low, c.close, c.volume) for c in candles]
        if not rows:
            return 0
        async with self.transaction():
            await self.db.executemany(
                """INSERT INTO candles(pool, timeframe, ts, open, high, low, close, volume)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(pool, timeframe, ts) DO UPDATE SET open = excluded.open,
                     high = excluded.high, low = excluded.low, close = excluded.close,
                     volume = excluded.volume""",
                rows,
            )
        return len(rows)

    async def save_trades(self, trades: Iterable[Any]) -> int:
        """Add on-chain trades (:class:`~dexscan.chain.trades.Trade`, USD-priced) to the tape; a trade
        already there (same signature and event index) is left as it is. Returns rows added."""
        rows = [(t.signature, t.index, t.pool, t.mint, t.slot, t.block_time, t.side, t.base_amount,
                 t.quote_amount, t.price_usd, t.signer) for t in trades if t.price_usd is not None]
        if not rows:
            return 0
        async with self.transaction():
            before = self.db.total_changes
            await self.db.executemany(
                """INSERT OR IGNORE INTO trades(signature, idx, pool, mint, slot, block_time, side, base_amount,
                   quote_amount, price_usd, signer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                rows,
            )
            return int(self.db.total_changes - before)

    async def trades(self, pool: str, start: int, end: int) -> list[tuple[Any, ...]]:
        """The tape of ``pool`` with ``start <= block_time < end``, oldest first: (signature, idx, slot,
        block_time, side, base_amount, quote_amount, price_usd, signer)."""
        rows = await self._all(
            """SELECT signature, idx, slot, block_time, side, base_amount, quote_amount, price_usd, signer
               FROM trades WHERE pool = ? AND block_time >= ? AND block_time < ?
               ORDER BY block_time, slot, signature, idx""",
            (pool, start, end),
        )
        return [tuple(r) for r in rows]

    async def prune_trades(self, before: int) -> int:
        """Drop tape rows older than ``before`` (retention). Returns rows removed."""
        async with self.transaction():
            cur = await self.db.execute("DELETE FROM trades WHERE block_time < ?", (before,))
            return int(cur.rowcount or 0)

    async def candles(
        self, pool: str, tf: Timeframe, start: int | None = None, end: int | None = None
    ) -> list[Candle]:
        """Bars with ``start <= ts < end``, oldest first."""
        rows = await self._all(
            """SELECT ts, open, high, low, close, volume FROM candles
               WHERE pool = ? AND timeframe = ? AND ts >= ? AND ts < ? ORDER BY ts""",
            (pool, int(tf), start if start is not None else -(2**62), end if end is not None else 2**62),
        )
        return [Candle(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    async def candle_count(self, pool: str | None = None, tf: Timeframe | None = None) -> int:
        sql, params = "SELECT COUNT(*) FROM candles WHERE 1=1", list[Any]()
        if pool is not None:
            sql += " AND pool = ?"
            params.append(pool)
        if tf is not None:
            sql += " AND timeframe = ?"
            params.append(int(tf))
        row = await self._one(sql, params)
        return int(row[0]) if row else 0

    async def candle_spans(self) -> list[dict[str, Any]]:
        """Per stored (pool, timeframe): ``n`` bars, ``first``/``last`` ts and the pool's ``mint``
        (None when the pool is unknown), for evaluation to find what history exists."""
        return [dict(r) for r in await self._all(
            """SELECT c.pool AS pool, c.timeframe AS timeframe, COUNT(*) AS n, MIN(c.ts) AS first,
                      MAX(c.ts) AS last, p.mint AS mint
               FROM candles c LEFT JOIN pools p ON p.address = c.pool
               GROUP BY c.pool, c.timeframe ORDER BY c.pool, c.timeframe"""
        )]

    async def add_coverage(self, pool: str, tf: Timeframe, start_ts: int, end_ts: int) -> None:
        await self._write(
            """INSERT INTO history_coverage(pool, timeframe, start_ts, end_ts) VALUES (?, ?, ?, ?)
               ON CONFLICT(pool, timeframe, start_ts) DO UPDATE SET end_ts = MAX(end_ts, excluded.end_ts)""",
            (pool, int(tf), start_ts, end_ts),
        )

    async def coverage(self, pool: str, tf: Timeframe) -> list[tuple[int, int]]:
        rows = await self._all(
            "SELECT start_ts, end_ts FROM history_coverage WHERE pool = ? AND timeframe = ? ORDER BY start_ts",
            (pool, int(tf)),
        )
        return [(int(r[0]), int(r[1])) for r in rows]

    # -- gates -------------------------------------------------------------------------------

    async def save_verdicts(self, verdicts: Iterable[GateVerdict]) -> None:
        rows = [
            (v.mint, v.gate, v.checked_at, v.status.value, v.reason, _dumps(dict(v.details)))
            for v in verdicts
        ]
        async with self.transaction():
            await self.db.executemany(
                """INSERT OR REPLACE INTO gate_verdicts(mint, gate, checked_at, status, reason, details)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                rows,
            )

    async def latest_verdicts(self, mint: str) -> list[GateVerdict]:
        rows = await self._all(
            """SELECT v.* FROM gate_verdicts v
               JOIN (SELECT gate, MAX(checked_at) AS at FROM gate_verdicts WHERE mint = ? GROUP BY gate) m
                 ON v.gate = m.gate AND v.checked_at = m.at
               WHERE v.mint = ? ORDER BY v.gate""",
            (mint, mint),
        )
        return [
            GateVerdict(r["mint"], r["gate"], GateStatus(r["status"]), r["reason"], r["checked_at"],
                        json.loads(r["details"]))
            for r in rows
        ]

    async def save_mint_facts(self, facts: MintFacts) -> None:
        await self._write(
            """INSERT INTO mint_facts(mint, checked_at, facts) VALUES (?, ?, ?)
               ON CONFLICT(mint) DO UPDATE SET checked_at = excluded.checked_at, facts = excluded.facts""",
            (facts.mint, facts.checked_at, facts_to_json(facts)),
        )

    async def mint_facts(self, mint: str) -> MintFacts | None:
        row = await self._one("SELECT facts FROM mint_facts WHERE mint = ?", (mint,))
        return None if row is None else facts_from_json(row["facts"])

    # -- signals, outcomes, outbox -----------------------------------------------------------

    async def save_signal(
        self, sig: Signal, chat_ids: Sequence[int] = (), payload: str = "", now: int | None = None,
        kind: str = "signal",
    ) -> tuple[int, bool]:
        """Store a signal and its alert outbox rows in one transaction.

        Returns ``(signal_id, created)``; a signal already stored (same natural key) is left as it
        is and gets no new alerts, which is what makes replays and restarts duplicate-free.
        ``kind`` is ``signal`` for a new move's alert, ``join`` for a strategy joining a move already
        alerted (the sender edits the move's message; dexscan/alerts/telegram.py).
        """
        if kind not in ("signal", "join"):
            raise ValueError(f"outbox kind for a signal is 'signal' or 'join', not {kind!r}")
        conf = sig.confidence
        async with self.transaction():
            cur = await self.db.execute(
                """INSERT INTO signals(mint, strategy, candle_ts, layer, ts, symbol, pool, price, rise_pct,
                     volume_ratio, liquidity_usd, levels, reasons, features, raw_score, confidence,
                     calibrator_version, status)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(mint, strategy, candle_ts) DO NOTHING""",
                (
                    sig.mint, sig.strategy, sig.candle_ts, sig.layer, sig.ts, sig.symbol, sig.pool, sig.price,
                    sig.rise_pct, sig.volume_ratio, sig.liquidity_usd, levels_to_json(sig.levels),
                    _dumps([asdict(r) for r in sig.reasons]), _dumps(dict(sig.features)),
                    conf.raw_score if conf else None, conf.probability if conf else None,
                    conf.calibrator_version if conf else None,
                    "live" if sig.levels is not None else "untracked",
                ),
            )
            created = cur.rowcount == 1
            row = await self._one(
                "SELECT id FROM signals WHERE mint = ? AND strategy = ? AND candle_ts = ?", sig.key
            )
            assert row is not None
            sid = int(row["id"])
            if created:
                if sig.levels is not None:
                    await self.db.execute(
                        """INSERT INTO outcomes(signal_id, result, realized_r, updated_at)
                           VALUES (?, 'open', 0, ?)""",
                        (sid, sig.ts),
                    )
                for chat in chat_ids:
                    await self.db.execute(
                        """INSERT OR IGNORE INTO alert_outbox(signal_id, chat_id, kind, payload, created_at)
                           VALUES (?, ?, ?, ?, ?)""",
                        (sid, chat, kind, payload, now if now is not None else sig.ts),
                    )
        return sid, created

    async def save_outcome(
        self, signal_id: int, outcome: Outcome, now: int, chat_ids: Sequence[int] = (), payload: str = ""
    ) -> None:
        """Record the latest outcome; a closing outcome also queues its alert (same transaction)."""
        async with self.transaction():
            await self.db.execute(
                """INSERT INTO outcomes(signal_id, result, realized_r, max_r, hits, closed_at, last_price,
                                        updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(signal_id) DO UPDATE SET result = excluded.result,
                     realized_r = excluded.realized_r, max_r = excluded.max_r, hits = excluded.hits,
                     closed_at = excluded.closed_at, last_price = excluded.last_price,
                     updated_at = excluded.updated_at""",
                (signal_id, outcome.result, outcome.realized_r, outcome.max_r, _dumps(dict(outcome.hits)),
                 outcome.closed_at, outcome.last_price, now),
            )
            if outcome.closed:
                await self.db.execute("UPDATE signals SET status = 'closed' WHERE id = ?", (signal_id,))
                for chat in chat_ids:
                    await self.db.execute(
                        """INSERT OR IGNORE INTO alert_outbox(signal_id, chat_id, kind, payload, created_at)
                           VALUES (?, ?, 'outcome', ?, ?)""",
                        (signal_id, chat, payload, now),
                    )

    async def signal_by_id(self, signal_id: int) -> Signal | None:
        row = await self._one("SELECT * FROM signals WHERE id = ?", (signal_id,))
        return None if row is None else signal_from_row(row)

    async def signals(
        self, since: int | None = None, strategy: str | None = None, status: str | None = None,
        mint: str | None = None, limit: int | None = None,
    ) -> list[tuple[int, Signal, Outcome | None]]:
        """Signals (oldest first) with their latest outcome, filtered."""
        sql = """SELECT s.*, o.result, o.realized_r, o.max_r, o.hits, o.closed_at, o.last_price
                 FROM signals s LEFT JOIN outcomes o ON o.signal_id = s.id WHERE 1=1"""
        params: list[Any] = []
        if since is not None:
            sql += " AND s.ts >= ?"
            params.append(since)
        if strategy is not None:
            sql += " AND s.strategy = ?"
            params.append(strategy)
        if status is not None:
            sql += " AND s.status = ?"
            params.append(status)
        if mint is not None:
            sql += " AND s.mint = ?"
            params.append(mint)
        sql += " ORDER BY s.ts, s.id"
        if limit is not None:
            sql = f"SELECT * FROM ({sql.replace(' ORDER BY s.ts, s.id', ' ORDER BY s.ts DESC, s.id DESC')}" \
                  f" LIMIT ?) ORDER BY ts, id"
            params.append(limit)
        rows = await self._all(sql, params)
        out = []
        for r in rows:
            outcome = outcome_from_row(r) if r["result"] is not None else None
            out.append((int(r["id"]), signal_from_row(r), outcome))
        return out

    async def candle_signals(self, mint: str, h4_ts: int) -> list[tuple[int, Signal]]:
        """The signals stored for one token whose candle lies in the 4H candle starting at ``h4_ts``
        (a 4H strategy's candle, or a 5m strategy's bar inside it), in the order they fired (moves
        are cut from these)."""
        rows = await self._all(
            "SELECT * FROM signals WHERE mint = ? AND candle_ts >= ? AND candle_ts < ? ORDER BY ts, id",
            (mint, h4_ts, h4_ts + int(Timeframe.H4)),
        )
        return [(int(r["id"]), signal_from_row(r)) for r in rows]

    async def signal_count(self) -> int:
        row = await self._one("SELECT COUNT(*) FROM signals")
        return int(row[0]) if row else 0

    # -- candle state machine ----------------------------------------------------------------

    async def save_candle_state(
        self, mint: str, candle_ts: int, state: str, ignited_at: int | None, confirmed_at: int | None
    ) -> None:
        await self._write(
            """INSERT INTO candle_states(mint, candle_ts, state, ignited_at, confirmed_at)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(mint, candle_ts) DO UPDATE SET state = excluded.state,
                 ignited_at = COALESCE(candle_states.ignited_at, excluded.ignited_at),
                 confirmed_at = COALESCE(candle_states.confirmed_at, excluded.confirmed_at)""",
            (mint, candle_ts, state, ignited_at, confirmed_at),
        )

    async def candle_states(self, since: int) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._all(
            "SELECT * FROM candle_states WHERE candle_ts >= ? ORDER BY candle_ts, mint", (since,)
        )]

    # -- calibrators -------------------------------------------------------------------------

    async def save_calibrator(self, version: str, created_at: int, artifact_json: str) -> None:
        await self._write(
            "INSERT OR REPLACE INTO calibrators(version, created_at, artifact) VALUES (?, ?, ?)",
            (version, created_at, artifact_json),
        )

    async def latest_calibrator(self) -> str | None:
        row = await self._one("SELECT artifact FROM calibrators ORDER BY created_at DESC, version DESC LIMIT 1")
        return None if row is None else str(row["artifact"])

    # -- telegram ----------------------------------------------------------------------------
    # Outbox delivery, per-chat settings and the bot's queries (dexscan/alerts/telegram.py).
    # Each write is one statement, so it is atomic even on a connection shared with the engine.

    async def outbox_heads(self) -> list[dict[str, Any]]:
        """Per chat, the oldest undelivered row (``pending`` or ``sending``): delivery is in id order."""
        return [dict(r) for r in await self._all(
            """SELECT o.* FROM alert_outbox o
               JOIN (SELECT chat_id, MIN(id) AS id FROM alert_outbox
                     WHERE state IN ('pending', 'sending') GROUP BY chat_id) h ON o.id = h.id
               ORDER BY o.id"""
        )]

    async def outbox_rows(self, chat_id: int | None = None, state: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM alert_outbox WHERE 1=1", list[Any]()
        if chat_id is not None:
            sql += " AND chat_id = ?"
            params.append(chat_id)
        if state is not None:
            sql += " AND state = ?"
            params.append(state)
        return [dict(r) for r in await self._all(sql + " ORDER BY id", params)]

    async def outbox_mark_sending(self, row_id: int) -> None:
        await self._write(
            "UPDATE alert_outbox SET state = 'sending', attempts = attempts + 1 WHERE id = ?", (row_id,)
        )

    async def outbox_retry_later(self, row_id: int, next_attempt_at: int, error: str, state: str = "pending") -> None:
        """Back off: ``pending`` when the send surely did not happen, ``sending`` when it may have."""
        await self._write(
            "UPDATE alert_outbox SET state = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
            (state, next_attempt_at, error, row_id),
        )

    async def outbox_mark_sent(
        self, row_id: int, message_id: int, now: int, members: Sequence[int] = (), digest: bool = False
    ) -> None:
        """Delivered as ``message_id``. A digest marks itself and its ``members`` ``digested``."""
        state = "digested" if digest or members else "sent"
        ids = [row_id, *members]
        await self._write(
            f"""UPDATE alert_outbox SET state = ?, message_id = ?, sent_at = ?, last_error = NULL
                WHERE id IN ({",".join("?" * len(ids))})""",
            (state, message_id, now, *ids),
        )

    async def outbox_mark_failed(self, row_ids: Sequence[int], error: str, now: int) -> None:
        """Not delivered, for good (``error`` says why; filtered rows say ``skipped: ...``)."""
        if not row_ids:
            return
        await self._write(
            f"""UPDATE alert_outbox SET state = 'failed', last_error = ?, sent_at = ?
                WHERE id IN ({",".join("?" * len(row_ids))})""",
            (error, now, *row_ids),
        )

    async def outbox_set_payload(self, row_id: int, payload: str) -> None:
        await self._write("UPDATE alert_outbox SET payload = ? WHERE id = ?", (payload, row_id))

    async def outbox_mark_digested(self, row_ids: Sequence[int]) -> None:
        """Folded into a digest that is about to be sent (its message id is recorded once it is)."""
        if not row_ids:
            return
        await self._write(
            f"""UPDATE alert_outbox SET state = 'digested'
                WHERE state = 'pending' AND id IN ({",".join("?" * len(row_ids))})""",
            tuple(row_ids),
        )

    async def outbox_signal_alert(self, signal_id: int, chat_id: int) -> dict[str, Any] | None:
        """The chat's alert row for a signal, its own or the one joining a move (an outcome update
        replies to its message)."""
        row = await self._one(
            "SELECT * FROM alert_outbox WHERE signal_id = ? AND chat_id = ? AND kind IN ('signal', 'join')",
            (signal_id, chat_id),
        )
        return None if row is None else dict(row)

    async def outbox_move_message(self, chat_id: int, signal_ids: Sequence[int]) -> int | None:
        """The message that shows a move in a chat: the first delivered (``sent``) alert row of
        any of the move's ``signal_ids``, or None when none was delivered there."""
        if not signal_ids:
            return None
        row = await self._one(
            f"""SELECT message_id FROM alert_outbox WHERE chat_id = ? AND kind IN ('signal', 'join')
                AND state = 'sent' AND message_id IS NOT NULL
                AND signal_id IN ({",".join("?" * len(signal_ids))}) ORDER BY id LIMIT 1""",
            (chat_id, *signal_ids),
        )
        return None if row is None else int(row[0])

    async def outbox_pending_signals(self, chat_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._all(
            "SELECT * FROM alert_outbox WHERE chat_id = ? AND kind = 'signal' AND state = 'pending' ORDER BY id",
            (chat_id,),
        )]

    async def outbox_alert_count(self, chat_id: int, after: int, until: int) -> int:
        """Signal alerts for a chat created in ``(after, until]`` that were or will be shown."""
        row = await self._one(
            """SELECT COUNT(*) FROM alert_outbox WHERE chat_id = ? AND kind = 'signal'
               AND state != 'failed' AND created_at > ? AND created_at <= ?""",
            (chat_id, after, until),
        )
        return int(row[0]) if row else 0

    async def telegram_last_message_id(self, chat_id: int) -> int | None:
        """Highest message id the bot knows it posted in the chat (outbox rows and other replies)."""
        row = await self._one(
            """SELECT MAX(m) FROM (
                 SELECT MAX(message_id) AS m FROM alert_outbox WHERE chat_id = ?
                 UNION ALL SELECT CAST(value AS INTEGER) FROM kv WHERE key = ?)""",
            (chat_id, f"telegram:last_mid:{chat_id}"),
        )
        return None if row is None or row[0] is None else int(row[0])

    async def telegram_note_message_id(self, chat_id: int, message_id: int, who: str = "bot") -> None:
        """Remember the highest message id seen in a chat, from the bot (``bot``) or its users (``user``)."""
        key = f"telegram:last_mid:{chat_id}" if who == "bot" else f"telegram:last_user_mid:{chat_id}"
        await self._write(
            """INSERT INTO kv(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE
               SET value = CAST(MAX(CAST(kv.value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)""",
            (key, str(message_id)),
        )

    async def telegram_counter_high(self, chat_id: int) -> int | None:
        """The highest message id known on ``chat_id``'s id counter: Telegram numbers the messages of
        all of a bot's private chats and basic groups with one counter (external-apis section 6), so
        for those it is the highest id recorded in any of them, the bot's or a user's; a supergroup
        or channel (``-100...``) has a counter of its own."""
        if not shares_bot_counter(chat_id):
            bot, user = await self.telegram_last_message_id(chat_id), await self.telegram_last_user_message_id(chat_id)
            known = [v for v in (bot, user) if v is not None]
            return max(known) if known else None
        row = await self._one(
            "SELECT MAX(message_id) FROM alert_outbox WHERE chat_id > 0 OR (chat_id < 0 AND chat_id > ?)",
            (-1_000_000_000_000,))
        known = [int(row[0])] if row is not None and row[0] is not None else []
        for key, value in await self._all("SELECT key, value FROM kv WHERE key LIKE 'telegram:last_mid:%' "
                                          "OR key LIKE 'telegram:last_user_mid:%'"):
            if shares_bot_counter(int(str(key).rsplit(":", 1)[1])):
                known.append(int(value))
        return max(known) if known else None

    async def outbox_note_probe_from(self, row_id: int, message_id: int | None) -> None:
        """Before a send: the highest id on the chat's counter, where a crash recovery probe starts."""
        await self.kv_set(f"telegram:probe_from:{row_id}", "" if message_id is None else str(message_id))

    async def outbox_probe_from(self, row_id: int) -> int | None:
        value = await self.kv_get(f"telegram:probe_from:{row_id}")
        return int(value) if value else None

    async def telegram_last_user_message_id(self, chat_id: int) -> int | None:
        value = await self.kv_get(f"telegram:last_user_mid:{chat_id}")
        return None if value is None else int(value)

    async def chat_settings(self, chat_id: int) -> dict[str, Any]:
        row = await self._one("SELECT settings FROM chat_settings WHERE chat_id = ?", (chat_id,))
        return {} if row is None else dict(json.loads(row["settings"]))

    async def set_chat_settings(self, chat_id: int, settings: dict[str, Any]) -> None:
        await self._write(
            """INSERT INTO chat_settings(chat_id, settings) VALUES (?, ?)
               ON CONFLICT(chat_id) DO UPDATE SET settings = excluded.settings""",
            (chat_id, _dumps(settings)),
        )

    async def mute(self, chat_id: int, mint: str) -> None:
        await self._write("INSERT OR IGNORE INTO mutes(chat_id, mint) VALUES (?, ?)", (chat_id, mint))

    async def unmute(self, chat_id: int, mint: str) -> bool:
        cur = await self._write("DELETE FROM mutes WHERE chat_id = ? AND mint = ?", (chat_id, mint))
        return cur.rowcount > 0

    async def muted_mints(self, chat_id: int) -> list[str]:
        return [r["mint"] for r in await self._all(
            "SELECT mint FROM mutes WHERE chat_id = ? ORDER BY mint", (chat_id,)
        )]

    async def scorecard(self) -> list[dict[str, Any]]:
        """Closed live outcomes by strategy and confidence decile: count, TP1-first hits, mean R.

        The decile is of the calibrated probability, or of the raw score while uncalibrated
        (``decile`` NULL = not scored). A hit is TP1 reached before the stop: ``tp1``-``tp3``, or
        ``breakeven`` (TP1, then stopped at entry).
        """
        return [dict(r) for r in await self._all(
            """SELECT s.strategy AS strategy,
                      MIN(9, CAST(COALESCE(s.confidence, s.raw_score) * 10 AS INTEGER)) AS decile,
                      COUNT(*) AS n,
                      SUM(o.result IN ('tp1', 'tp2', 'tp3', 'breakeven')) AS hits,
                      AVG(o.realized_r) AS mean_r
               FROM signals s JOIN outcomes o ON o.signal_id = s.id
               WHERE o.result != 'open'
               GROUP BY s.strategy, decile ORDER BY s.strategy, decile"""
        )]

    async def top_tokens(self, limit: int = 10) -> list[dict[str, Any]]:
        """Universe tokens by 24h volume, highest first (unknown volume last).

        Liquidity and volume come from whichever is newer: the main pool's row in ``pools``
        (written by backfill) or the latest ``liquidity`` and ``volume_24h`` gate verdicts (the
        scanner stores every gate round, with the numbers it judged in their details). A token
        stored without a symbol gets the one its latest signal carries.
        """
        return [dict(r) for r in await self._all(
            """SELECT mint, symbol, name, pool, liquidity_usd, volume_h24_usd FROM (
                 SELECT t.mint,
                        COALESCE(NULLIF(t.symbol, ''),
                                 (SELECT s.symbol FROM signals s WHERE s.mint = t.mint AND s.symbol != ''
                                  ORDER BY s.ts DESC, s.id DESC LIMIT 1), '') AS symbol,
                        t.name,
                        COALESCE(t.main_pool, json_extract(lv.details, '$.pair')) AS pool,
                        CASE WHEN p.address IS NOT NULL AND p.updated_at >= COALESCE(lv.checked_at, 0)
                             THEN p.liquidity_usd ELSE json_extract(lv.details, '$.liquidity_usd') END
                          AS liquidity_usd,
                        CASE WHEN p.address IS NOT NULL AND p.updated_at >= COALESCE(vv.checked_at, 0)
                             THEN p.volume_h24_usd ELSE json_extract(vv.details, '$.volume_24h_usd') END
                          AS volume_h24_usd
                 FROM tokens t
                 LEFT JOIN pools p ON p.address = t.main_pool
                 LEFT JOIN gate_verdicts lv ON lv.mint = t.mint AND lv.gate = 'liquidity' AND lv.checked_at =
                   (SELECT MAX(checked_at) FROM gate_verdicts WHERE mint = t.mint AND gate = 'liquidity')
                 LEFT JOIN gate_verdicts vv ON vv.mint = t.mint AND vv.gate = 'volume_24h' AND vv.checked_at =
                   (SELECT MAX(checked_at) FROM gate_verdicts WHERE mint = t.mint AND gate = 'volume_24h')
                 WHERE t.in_universe = 1)
               ORDER BY volume_h24_usd IS NULL, volume_h24_usd DESC, mint LIMIT ?""",
            (limit,),
        )]


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
