"""What the engine tells the outside world, as typed domain events.

The engine emits these after the store has them (persist first, then show); each consumer
serialises them its own way: the ``--json`` writer and the local API's ``/ws`` stream through
:func:`dexscan.service.event_json` (one wire form, the same bytes on both), the plain-text writer as
one readable line (:class:`dexscan.output.TextLines`). The scanner's status is not an event: the
dashboard, ``/healthz``, ``/metrics`` and Telegram's ``/status`` read
:class:`~dexscan.status.ScannerStatus` when they need it.
"""

from __future__ import annotations

from dataclasses import dataclass

from dexscan.domain import Outcome, Signal


@dataclass(frozen=True, slots=True)
class SignalStored:
    """A new signal, stored with its outbox rows; ``move_ids`` are the signal ids of its move so far
    (the move's first signal first, this one last: :func:`dexscan.signal_ledger.move_members`)."""

    signal_id: int
    signal: Signal
    move_ids: tuple[int, ...]
    move_strategies: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OutcomeChanged:
    """A stored signal's outcome moved (a level hit, a close)."""

    signal_id: int
    signal: Signal
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class PoolMoved:
    """A tracked token's books moved to another main pool (a migration, a deeper pool)."""

    mint: str
    symbol: str
    from_pool: str | None
    to_pool: str
    reason: str
    ts: int
    live_signals: int


DomainEvent = SignalStored | OutcomeChanged | PoolMoved
