"""One SQLite connection shared by the repositories: opening, migrating, writing, waiting out locks.

One file, WAL mode, schema versioned with ``PRAGMA user_version`` (:mod:`dexscan.store.schema`).
Natural keys everywhere (DESIGN §2.5) so that re-running, restarting or replaying never duplicates
a row: candles ``(pool, timeframe, ts)``, signals ``(mint, strategy, candle_ts)``, outbox
``(signal_id, chat_id, kind)``, gate verdicts ``(mint, gate, checked_at)``. Multi-row writes run in
one transaction, so a killed process leaves either all of a write or none of it. SQL is
parameterised only.

:class:`Database` owns the connection; each table group's repository (``tokens``, ``bars``,
``trades``, ``gates``, ``signals``, ``outbox``, ``chats``, ``kv``) is a subclass adding its queries,
and :class:`dexscan.store.Store` is all of them over the one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

import aiosqlite

from dexscan.errors import DatabaseLocked, StoreError
from dexscan.store.schema import MIGRATIONS, SCHEMA_VERSION, split_sql
from dexscan.vtime import thread_work

if TYPE_CHECKING:
    from dexscan.config import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class LockWait:
    """How long a writer waits for another connection's write lock (a backup, ``sqlite3`` in a shell,
    another dexscan process on the same file) before it gives up with :class:`DatabaseLocked`.

    SQLite itself waits ``busy_timeout_ms`` per attempt, in the connection's thread; then the writer
    pauses in the event loop, where other work goes on (and, on a virtual-time loop, time passes:
    dexscan.vtime): ``first_pause_s``, doubling up to ``max_pause_s``, until the pauses add up to
    ``give_up_after_s``. The default rides out a lock of half an hour (367 attempts: pauses of 0.05 s
    doubling to 3.2 s, then 5 s), so a backup or a short shell session costs nothing; a lock held
    longer is no passing one. The commands take ``give_up_after_s`` from the setting ``store.lock_wait_s``.
    """

    busy_timeout_ms: int = 100
    first_pause_s: float = 0.05
    max_pause_s: float = 5.0
    give_up_after_s: float = 1800.0

    def pauses(self) -> Iterator[float]:
        """The pauses between attempts, in seconds; the last one is cut so that they add up to
        ``give_up_after_s`` (counted in whole milliseconds, so the number of attempts is exact)."""
        left_ms, cap_ms = round(self.give_up_after_s * 1000), round(self.max_pause_s * 1000)
        pause_ms = max(round(self.first_pause_s * 1000), 1)
        while left_ms > 0:
            step = min(pause_ms, cap_ms, left_ms)
            yield step / 1000
            left_ms -= step
            pause_ms = min(pause_ms * 2, cap_ms)

    @classmethod
    def of(cls, settings: Settings) -> LockWait:
        """The wait a command's writers get: ``store.lock_wait_s`` in all, the rest as above."""
        return cls(give_up_after_s=settings.store.lock_wait_s)


def dumps(obj: Any) -> str:
    """Canonical JSON for a column: sorted keys, no spaces (equal values store equal text)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """``" AND cond AND ..."`` and its parameters, for each ``(cond, value)`` whose value is not None
    (an optional filter left out); ``cond`` has one ``?`` for the value."""
    used = [(cond, value) for cond, value in conditions if value is not None]
    return "".join(f" AND {cond}" for cond, _ in used), [value for _, value in used]


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

    # Each call below is one hand-off to the connection's thread (aiosqlite's cursor calls are one
    # each: execute, fetch, close), which is what a query costs the event loop.

    async def fetch_one(self, sql: str, params: Sequence[Any]) -> sqlite3.Row | None:
        """The first row of a query (the cursor closed, so no read stays open)."""
        return await self._execute(self._fetch_one, sql, params)

    def _fetch_one(self, sql: str, params: Sequence[Any]) -> sqlite3.Row | None:
        cur = self._conn.execute(sql, params)
        try:
            row: sqlite3.Row | None = cur.fetchone()
            return row
        finally:
            cur.close()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(sqlite3_connection, *args)`` on the connection's thread: several statements, one trip."""
        result: T = await self._execute(fn, self._conn, *args)
        return result

    async def write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """``executemany`` in its own ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on an error, so a
        failed attempt changed nothing); the rows it changed."""
        return int(await self._execute(self._write_many, sql, rows))

    def _write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            before = conn.total_changes
            conn.executemany(sql, rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return conn.total_changes - before


def _connect(path: str) -> _Connection:
    """``aiosqlite.connect(path, isolation_level=None)`` with :class:`_Connection`."""
    return _Connection(lambda: sqlite3.connect(path, isolation_level=None), iter_chunk_size=64)


def _cannot_open(path: Path, exc: BaseException) -> str:
    """One line for a database that cannot be opened or written, saying what to do."""
    reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) or type(exc).__name__
    if "not a database" in reason:
        return f"database {path}: not an SQLite database ({reason}); point --db (or DEXSCAN_DB) at another file"
    return (f"database {path}: cannot open and write it ({reason}); free disk space (or raise the file size "
            "limit), check the permissions, or point --db (or DEXSCAN_DB) at another disk")


def _still_locked(path: Path, waited_s: float, attempts: int) -> str:
    """One line for a write that gave up on a lock, saying who may hold it and what to do."""
    return (f"database {path} is still locked by another connection after {waited_s:.0f} s ({attempts} attempts); "
            "the write was not made. Another program holds its write lock: most likely another dexscan process "
            "using the same file (scan, bot, backfill), else a backup or an sqlite3 shell with an open "
            "transaction. Stop it, or point --db (or DEXSCAN_DB) at another file")


class Database:
    """The connection and how it is used: open with ``await cls.open(path)``; close with ``close()``.

    Several tasks share the connection: writes go one task at a time (:meth:`_writing`), and a write
    that finds the file locked by another connection waits it out (:meth:`_when_unlocked`).
    """

    def __init__(self, db: _Connection, path: Path, lock_wait: LockWait = LockWait()) -> None:
        self.db = db
        self.path = path
        self.lock_wait = lock_wait
        self._write_lock = asyncio.Lock()
        self._writer: asyncio.Task[Any] | None = None

    @classmethod
    async def open(cls, path: str | Path, lock_wait: LockWait = LockWait()) -> Self:
        """Open (creating if needed) and migrate the database; :class:`StoreError` in one line when the
        file cannot be opened or written (a full disk, say). A failed open leaves no connection
        behind: its worker thread would otherwise keep the process alive after the error."""
        p = Path(path)
        try:
            if str(p) != ":memory:":
                p.parent.mkdir(parents=True, exist_ok=True)
            db = _connect(str(p))
            await db  # starts its thread and opens the file
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(_cannot_open(p, exc)) from None
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute(f"PRAGMA busy_timeout={int(lock_wait.busy_timeout_ms)}")
            store = cls(db, p, lock_wait)
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
                for stmt in split_sql(MIGRATIONS[v]):
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

    async def _write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """One statement over many rows, all committed together or none (one transaction, one trip to
        the connection's thread), waiting out another connection's lock like every write; the rows
        it changed."""
        async with self._writing():
            return await self._when_unlocked_do(lambda: self.db.write_many(sql, rows))

    async def _when_unlocked(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Cursor:
        """Run a statement that takes the write lock, waiting while another connection holds it (see
        :meth:`_when_unlocked_do`)."""
        return await self._when_unlocked_do(lambda: self.db.execute(sql, params))

    async def _when_unlocked_do(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run a statement that takes the write lock, waiting while another connection holds it.

        SQLite waits ``busy_timeout_ms`` in its thread; a longer lock ends in "database is locked",
        and a writer that gave up at once would lose what it was writing. So the writer pauses here,
        in the event loop, and tries again, as :class:`LockWait` says: the failed statement changed
        nothing (it is a ``BEGIN IMMEDIATE`` or an autocommit statement), so trying again is safe.
        When the lock outlasts the budget, :class:`DatabaseLocked` says who may hold it.
        """
        loop = asyncio.get_running_loop()
        started, pauses = loop.time(), self.lock_wait.pauses()
        attempts = 0
        while True:
            try:
                return await attempt()
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise
                attempts += 1
                pause = next(pauses, None)
                if pause is None:
                    raise DatabaseLocked(_still_locked(self.path, loop.time() - started, attempts)) from None
                if attempts & (attempts - 1) == 0:  # 1, 2, 4, 8, ...: a few lines, not one per attempt
                    log.warning("database %s is locked by another connection (%s); still waiting (attempt %d)",
                                self.path, exc, attempts)
                await asyncio.sleep(pause)

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
        """The rows of a query (one trip to the connection's thread)."""
        return list(await self.db.execute_fetchall(sql, params))

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        """The first row of a query, or None (one trip to the connection's thread)."""
        return await self.db.fetch_one(sql, params)
