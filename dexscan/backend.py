"""The scanner's answers: one interface that the Telegram commands and the local HTTP API both query.

Like freqtrade's RPC layer, every question a user can ask the scanner (its status, the top tokens,
the signals, the live trades, the scorecard, a mint's gate verdicts, why a mint is or is not in the
universe) and every change a user can make (watch a mint, mute a mint or a strategy, a chat's alert
settings) goes through :class:`ScannerBackend`. The front ends only parse a request and render the
answer: ``dexscan/alerts/telegram/commands.py`` for chats (which also decides who may ask),
``dexscan/service.py`` for ``/signals`` and the ``/ws`` snapshot.

Two implementations:

- :class:`StoreBackend`: everything from the database; ``/check`` runs a checker when the stored
  verdicts are stale (:func:`standalone_backend`: the gates of ``dexscan check``, for ``dexscan bot``);
- :class:`LiveBackend`: the running scanner's (``dexscan scan``): its live status, its gates for
  ``/check``, and a ``/watch`` checked at once in a discovery round.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from dexscan.alerts.chat_settings import ChatSettings
from dexscan.alerts.format import fmt_clock
from dexscan.clock import Clock, RealClock
from dexscan.domain import GateVerdict, Outcome, Signal, Timeframe
from dexscan.status import status_text
from dexscan.store import Store

if TYPE_CHECKING:
    from dexscan.config import Settings
    from dexscan.engine import Engine
    from dexscan.scoring import Scorer

log = logging.getLogger(__name__)

#: A stored signal: its id, the signal and its latest outcome (None before the first).
StoredSignal = tuple[int, Signal, Outcome | None]
#: What adding a mint to a chat's watch list did: added, already on it, or refused (the list is full).
WatchClaim = Literal["added", "already", "full"]
#: The mints each chat added with /watch (a JSON list in ``kv``).
WATCHED_KEY = "telegram:watched:"


@dataclass(frozen=True, slots=True)
class TopToken:
    mint: str
    symbol: str
    name: str = ""
    pool: str | None = None
    liquidity_usd: float | None = None
    volume_h24_usd: float | None = None
    price_usd: float | None = None
    change_pct: float | None = None


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """One cell of the scorecard: closed signals of a strategy in a confidence decile."""

    strategy: str
    decile: int | None  # 0-9 (6 = 60-69% or raw score 0.60-0.69); None = not scored
    n: int
    hits: int
    mean_r: float
    calibrated: bool = False  # the decile is of a calibrated probability (else of the raw score)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.n if self.n else 0.0


@dataclass(frozen=True, slots=True)
class WhyAnswer:
    """Why a mint is or is not in the universe: its latest gate verdicts, its membership, and the
    signal it last fired (None: never)."""

    verdicts: list[GateVerdict]
    in_universe: bool
    last_signal: Signal | None


class ScannerBackend(Protocol):
    """Every question and change the front ends (Telegram commands, the local API) pass to the scanner."""

    #: Stored gate verdicts older than this are stale: ``check`` runs the gates again (when it can).
    stale_after_s: float

    # -- the scanner and its signals

    async def status_text(self) -> str: ...

    async def top_tokens(self, limit: int) -> list[TopToken]: ...

    async def signals(self, since: int | None = None, strategy: str | None = None, status: str | None = None,
                      mint: str | None = None, limit: int | None = None) -> list[StoredSignal]:
        """Stored signals as they are (oldest first, the newest ``limit``), filtered."""
        ...

    async def recent_signals(self, limit: int, mint: str | None = None) -> list[StoredSignal]:
        """The newest signals first, open trades at the latest known price."""
        ...

    async def live_signals(self, limit: int) -> list[StoredSignal]: ...

    async def scorecard(self) -> list[ScoreRow]: ...

    async def calibrated(self) -> bool: ...

    def strategy_notes(self, strategy: str) -> tuple[str, ...]: ...

    def worth(self) -> Mapping[str, Any]: ...

    # -- the gates

    @property
    def runs_gates(self) -> bool: ...

    async def check(self, mint: str) -> list[GateVerdict]: ...

    async def why(self, mint: str) -> WhyAnswer: ...

    async def watch(self, mint: str) -> str: ...

    async def add_to_watch_list(self, chat_id: int, mint: str, cap: int) -> WatchClaim: ...

    # -- a chat's choices

    async def chat_settings(self, chat_id: int) -> ChatSettings: ...

    async def save_chat_settings(self, chat_id: int, settings: ChatSettings) -> None: ...

    async def muted_mints(self, chat_id: int) -> list[str]: ...

    async def mute(self, chat_id: int, mint: str) -> None: ...

    async def unmute(self, chat_id: int, mint: str) -> bool: ...


Checker = Callable[[str], Awaitable[Sequence[GateVerdict]]]


def verdicts_stale(verdicts: Sequence[GateVerdict], now: float, stale_after_s: float) -> bool:
    """Whether the oldest of ``verdicts`` was reached ``stale_after_s`` or more before ``now``."""
    return now - min(v.checked_at for v in verdicts) >= stale_after_s


class StoreBackend:
    """Answers every question from the store; ``check`` shows the stored verdicts while they are
    younger than ``stale_after_s`` (the scanner re-checks its members that often) and runs
    ``checker`` when they are older or missing (without a checker, the stale ones are shown)."""

    def __init__(self, store: Store, checker: Checker | None = None, clock: Clock | None = None,
                 stale_after_s: float = 600.0, scorer: Scorer | None = None) -> None:
        self.store = store
        self.checker = checker
        self.clock: Clock = clock or RealClock()
        self.stale_after_s = stale_after_s
        self.scorer = scorer

    def strategy_notes(self, strategy: str) -> tuple[str, ...]:
        """The strategy's no-skill text and measured record from the scanner's calibrator (none without one)."""
        return () if self.scorer is None else self.scorer.strategy_notes(strategy)

    def worth(self) -> Mapping[str, Any]:
        """Each strategy against the baselines on the calibrator's data (:func:`dexscan.metrics.strategy_worth`)."""
        cal = None if self.scorer is None else self.scorer.usable()
        return {} if cal is None else cal.worth

    async def status_text(self) -> str:
        universe = await self.store.universe()
        live = await self.store.signals(status="live")
        pending = await self.store.outbox_rows(state="pending")
        latest = await self.store.signals(limit=1)
        last = fmt_clock(latest[-1][1].ts) if latest else "none yet"
        return (
            f"Universe: {len(universe)} tokens\n"
            f"Signals stored: {await self.store.signal_count()} (last: {last})\n"
            f"Live signals: {len(live)}\n"
            f"Alerts waiting: {len(pending)}\n"
            f"(answered from the database; the scanner's live status shows here when it runs)"
        )

    async def top_tokens(self, limit: int) -> list[TopToken]:
        return [
            TopToken(r["mint"], r["symbol"], r["name"], r["pool"], r["liquidity_usd"], r["volume_h24_usd"])
            for r in await self.store.top_tokens(limit)
        ]

    async def signals(self, since: int | None = None, strategy: str | None = None, status: str | None = None,
                      mint: str | None = None, limit: int | None = None) -> list[StoredSignal]:
        return await self.store.signals(since=since, strategy=strategy, status=status, mint=mint, limit=limit)

    async def recent_signals(self, limit: int, mint: str | None = None) -> list[StoredSignal]:
        return await self._priced(list(reversed(await self.signals(mint=mint, limit=limit))))

    async def live_signals(self, limit: int) -> list[StoredSignal]:
        return await self._priced(list(reversed(await self.signals(status="live")))[:limit])

    async def _priced(self, rows: list[StoredSignal]) -> list[StoredSignal]:
        """Open trades with the latest price the database knows: the scanner stores an outcome
        only when a level is hit, but it stores every 5m bar of the pool, so the last bar's close
        after the signal is newer than the stored outcome's ``last_price`` (which is None until
        the first hit)."""
        out: list[StoredSignal] = []
        for sid, sig, o in rows:
            if o is not None and o.result == "open" and sig.pool:
                bars = await self.store.candles(sig.pool, Timeframe.M5, start=Timeframe.M5.floor(sig.ts))
                if bars:
                    o = replace(o, last_price=bars[-1].close)
            out.append((sid, sig, o))
        return out

    async def scorecard(self) -> list[ScoreRow]:
        """Closed outcomes by strategy and decile: of the calibrated probability for signals that
        had one, of the raw score for the others (kept apart: a raw score is not a probability)."""
        cells: dict[tuple[str, bool, int | None], list[float]] = {}
        hits: dict[tuple[str, bool, int | None], int] = {}
        for _, sig, o in await self.store.signals():
            if o is None or o.result == "open":
                continue
            conf = sig.confidence
            if conf is None:
                key: tuple[str, bool, int | None] = (sig.strategy, False, None)
            else:
                score = conf.probability if conf.probability is not None else conf.raw_score
                key = (sig.strategy, conf.probability is not None, min(9, int(score * 10)))
            cells.setdefault(key, []).append(o.realized_r)
            hits[key] = hits.get(key, 0) + (o.result in ("tp1", "tp2", "tp3", "breakeven"))
        return [
            ScoreRow(strategy, decile, len(rs), hits[(strategy, cal, decile)], sum(rs) / len(rs), cal)
            for (strategy, cal, decile), rs in sorted(
                cells.items(), key=lambda kv: (kv[0][0], kv[0][1], -1 if kv[0][2] is None else kv[0][2]))
        ]

    async def calibrated(self) -> bool:
        """Whether the scanner's latest scored signal carries a calibrated probability."""
        for _, sig, _o in reversed(await self.store.signals(limit=50)):
            if sig.confidence is not None:
                return sig.confidence.calibrated
        return False

    @property
    def runs_gates(self) -> bool:
        """Whether ``check`` runs the gates now (with a checker) or shows the stored verdicts."""
        return self.checker is not None

    async def check(self, mint: str) -> list[GateVerdict]:
        stored = await self.store.latest_verdicts(mint)
        if self.checker is None or (stored and not verdicts_stale(stored, self.clock.now(), self.stale_after_s)):
            return stored
        try:
            verdicts = list(await self.checker(mint))
        except Exception as exc:  # the chain or the market did not answer: the stored ones, said stale
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            log.warning("check %s: the gates could not be run: %s: %s", mint, type(exc).__name__, first_line)
            return stored
        if verdicts:
            await self.store.save_verdicts(verdicts)
        return verdicts

    async def why(self, mint: str) -> WhyAnswer:
        token = await self.store.token_row(mint)
        recent = await self.recent_signals(1, mint=mint)
        return WhyAnswer(await self.store.latest_verdicts(mint), bool(token and token["in_universe"]),
                         recent[0][1] if recent else None)

    async def watch(self, mint: str) -> str:
        await self.store.set_watched(mint, True, int(self.clock.now()))
        return "Added to the watch list: it is checked by the gates at the next discovery cycle."

    async def add_to_watch_list(self, chat_id: int, mint: str, cap: int) -> WatchClaim:
        """Note ``mint`` on the chat's own watch list (at most ``cap`` mints); a mint already on it,
        or one over the cap, is not added (and must start no round)."""
        key = f"{WATCHED_KEY}{chat_id}"
        watched: list[str] = json.loads(await self.store.kv_get(key) or "[]")
        if mint in watched:
            return "already"
        if len(watched) >= cap:
            return "full"
        await self.store.kv_set(key, json.dumps([*watched, mint]))
        return "added"

    async def chat_settings(self, chat_id: int) -> ChatSettings:
        return ChatSettings.from_json(await self.store.chat_settings(chat_id))

    async def save_chat_settings(self, chat_id: int, settings: ChatSettings) -> None:
        await self.store.set_chat_settings(chat_id, settings.to_json())

    async def muted_mints(self, chat_id: int) -> list[str]:
        return await self.store.muted_mints(chat_id)

    async def mute(self, chat_id: int, mint: str) -> None:
        await self.store.mute(chat_id, mint)

    async def unmute(self, chat_id: int, mint: str) -> bool:
        return await self.store.unmute(chat_id, mint)


def standalone_backend(settings: Settings, store: Store, clock: Clock | None = None,
                       scorer: Scorer | None = None) -> StoreBackend:
    """``dexscan bot``'s answers: from the database, and ``check`` runs the gates itself (the code of
    ``dexscan check``) when the stored verdicts are older than a discovery interval."""
    clock = clock or RealClock()

    async def check(mint: str) -> Sequence[GateVerdict]:
        from dexscan.check import check_mints

        report = await check_mints(settings, [mint], clock)  # StoreBackend.check stores the verdicts
        return report.checks[0].verdicts

    return StoreBackend(store, check, clock, stale_after_s=settings.universe.discovery_interval_s, scorer=scorer)


class LiveBackend(StoreBackend):
    """The running scanner's answers: ``status_text`` from its live status, ``check`` by running its
    gates when the stored verdicts are stale, ``watch`` checked at once in a discovery round."""

    def __init__(self, engine: Engine, store: Store, clock: Clock) -> None:
        super().__init__(store, checker=self._check_now, clock=clock,
                         stale_after_s=engine.settings.universe.discovery_interval_s,
                         scorer=getattr(engine.detector, "scorer", None))
        self.engine = engine

    async def _check_now(self, mint: str) -> Sequence[GateVerdict]:
        verdicts: Mapping[str, Sequence[GateVerdict]] = await self.engine.universe.check([mint])
        return verdicts.get(mint, ())

    async def status_text(self) -> str:
        return status_text(self.engine.status())

    async def watch(self, mint: str) -> str:
        await super().watch(mint)
        self.engine.request_watch(mint)
        return "Added to the watch list and being checked now; it is scanned if it passes every gate."
