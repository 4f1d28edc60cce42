"""Tokens and their pools: what the universe is made of (dexscan/universe.py keeps it)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from dexscan.store.connection import Database, dumps


class Tokens(Database):
    """Rows of ``tokens`` (universe membership, watched) and ``pools`` (liquidity, 24h volume)."""

    async def upsert_token(
        self, mint: str, now: int, symbol: str = "", name: str = "", decimals: int | None = None,
        source: str | None = None,
    ) -> None:
        """Add or refresh a token's row, adding ``source`` to the sources it was seen in (read and
        written in one trip to the connection's thread, under the write lock like every write)."""
        async with self._writing():
            await self._when_unlocked_do(
                lambda: self.db.call(_upsert_token, mint, now, symbol, name, decimals, source))

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


def _upsert_token(conn: sqlite3.Connection, mint: str, now: int, symbol: str, name: str, decimals: int | None,
                  source: str | None) -> None:
    """:meth:`Tokens.upsert_token` on the connection's thread: the sources read, the row written
    (one autocommit statement: it changes nothing when it fails on a lock)."""
    cur = conn.execute("SELECT sources FROM tokens WHERE mint = ?", (mint,))
    try:
        row = cur.fetchone()
    finally:
        cur.close()
    sources = set(json.loads(row[0])) if row else set()
    if source:
        sources.add(source)
    conn.execute(
        """INSERT INTO tokens(mint, symbol, name, decimals, sources, first_seen, last_seen)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(mint) DO UPDATE SET
             symbol = CASE WHEN excluded.symbol != '' THEN excluded.symbol ELSE tokens.symbol END,
             name = CASE WHEN excluded.name != '' THEN excluded.name ELSE tokens.name END,
             decimals = COALESCE(excluded.decimals, tokens.decimals),
             sources = excluded.sources, last_seen = excluded.last_seen""",
        (mint, symbol, name, decimals, dumps(sorted(sources)), now, now),
    ).close()
