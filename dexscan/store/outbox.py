"""The alert outbox and the Telegram message ids the sender needs to deliver it exactly once.

Outbox delivery and the bot's message-id bookkeeping (dexscan/alerts/telegram/outbox.py). Each write is
one statement, so it is atomic even on a connection shared with the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dexscan.store.connection import where
from dexscan.store.kv import KeyValues


def shares_bot_counter(chat_id: int) -> bool:
    """Private chats (positive ids) and basic groups (negative, not ``-100...``) share the bot's one
    message id counter; supergroups and channels count on their own."""
    return chat_id > 0 or -1_000_000_000_000 < chat_id < 0


class Outbox(KeyValues):
    """Rows of ``alert_outbox`` (natural key ``(signal_id, chat_id, kind)``) and the ``telegram:``
    keys of ``kv`` (highest message ids seen per chat, where a crash recovery probe starts)."""

    async def outbox_heads(self) -> list[dict[str, Any]]:
        """Per chat, the oldest undelivered row (``pending`` or ``sending``): delivery is in id order."""
        return [dict(r) for r in await self._all(
            """SELECT o.* FROM alert_outbox o
               JOIN (SELECT chat_id, MIN(id) AS id FROM alert_outbox
                     WHERE state IN ('pending', 'sending') GROUP BY chat_id) h ON o.id = h.id
               ORDER BY o.id"""
        )]

    async def outbox_rows(self, chat_id: int | None = None, state: str | None = None) -> list[dict[str, Any]]:
        filters, params = where(("chat_id = ?", chat_id), ("state = ?", state))
        return [dict(r) for r in await self._all(f"SELECT * FROM alert_outbox WHERE 1=1{filters} ORDER BY id", params)]

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
