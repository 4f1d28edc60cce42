"""The key/value table: small facts that need no table of their own (cursors, markers, counters)."""

from __future__ import annotations

from dexscan.store.connection import Database


class KeyValues(Database):
    """Rows of ``kv``: text values by text key."""

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
