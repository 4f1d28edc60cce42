"""The trade tape (issue 13): on-chain trades of universe pools, kept ``stream.tape_retention_s``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dexscan.store.connection import Database


class Trades(Database):
    """Rows of ``trades``, one per swap event (natural key ``(signature, idx)``)."""

    async def save_trades(self, trades: Iterable[Any]) -> int:
        """Add on-chain trades (:class:`~dexscan.chain.trades.Trade`, USD-priced) to the tape; a trade
        already there (same signature and event index) is left as it is. Returns rows added."""
        rows = [(t.signature, t.index, t.pool, t.mint, t.slot, t.block_time, t.side, t.base_amount,
                 t.quote_amount, t.price_usd, t.signer) for t in trades if t.price_usd is not None]
        if not rows:
            return 0
        return await self._write_many(
            """INSERT OR IGNORE INTO trades(signature, idx, pool, mint, slot, block_time, side, base_amount,
               quote_amount, price_usd, signer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            rows,
        )

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
        """Drop tape rows older than ``before`` (retention; one statement, so all of them or none).
        Returns rows removed."""
        cur = await self._write("DELETE FROM trades WHERE block_time < ?", (before,))
        return int(cur.rowcount or 0)
