"""SQLite persistence: one file, one connection per :class:`Store`, a repository per table group.

``connection`` owns the connection (open, migrate, one writer at a time, waiting out another
connection's lock within a budget, then :class:`~dexscan.errors.DatabaseLocked`); ``schema`` holds
the migrations. Each other module is the repository of one table group, a subclass of
:class:`~dexscan.store.connection.Database`; :class:`Store` is all of them over the one connection,
so callers write ``store.save_signal(...)`` whichever repository the method lives in.
"""

from __future__ import annotations

from dexscan.store.bars import Bars
from dexscan.store.chats import Chats
from dexscan.store.gates import Gates
from dexscan.store.outbox import Outbox
from dexscan.store.signals import Signals
from dexscan.store.tokens import Tokens
from dexscan.store.trades import Trades


class Store(Tokens, Bars, Trades, Gates, Signals, Outbox, Chats):
    """Async access to the SQLite file. Open with ``await Store.open(path)``; close with ``close()``.

    Repositories: :class:`~dexscan.store.tokens.Tokens` (tokens, pools),
    :class:`~dexscan.store.bars.Bars` (candles, history coverage), :class:`~dexscan.store.trades.Trades`
    (the trade tape), :class:`~dexscan.store.gates.Gates` (gate verdicts, mint facts),
    :class:`~dexscan.store.signals.Signals` (signals, outcomes, candle states, calibrators),
    :class:`~dexscan.store.outbox.Outbox` (alert outbox, Telegram message ids, and through it
    :class:`~dexscan.store.kv.KeyValues`), :class:`~dexscan.store.chats.Chats` (chat settings, mutes).
    """


__all__ = ["Store"]
