"""What each Telegram chat chose: its settings and the tokens it muted."""

from __future__ import annotations

import json
from typing import Any

from dexscan.store.connection import Database, dumps


class Chats(Database):
    """Rows of ``chat_settings`` and ``mutes``."""

    async def chat_settings(self, chat_id: int) -> dict[str, Any]:
        row = await self._one("SELECT settings FROM chat_settings WHERE chat_id = ?", (chat_id,))
        return {} if row is None else dict(json.loads(row["settings"]))

    async def set_chat_settings(self, chat_id: int, settings: dict[str, Any]) -> None:
        await self._write(
            """INSERT INTO chat_settings(chat_id, settings) VALUES (?, ?)
               ON CONFLICT(chat_id) DO UPDATE SET settings = excluded.settings""",
            (chat_id, dumps(settings)),
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
