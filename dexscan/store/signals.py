"""Signals, their outcomes, the detector's candle state machine and the calibrators that score them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import aiosqlite

from dexscan.domain import Confidence, Levels, Outcome, Reason, Signal, Timeframe
from dexscan.store.connection import Database, dumps, where


def levels_to_json(levels: Levels | None) -> str | None:
    return None if levels is None else dumps(asdict(levels))


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


class Signals(Database):
    """Rows of ``signals`` (natural key ``(mint, strategy, candle_ts)``), ``outcomes``,
    ``candle_states`` and ``calibrators``. A new signal's alerts and a closing outcome's alert are
    queued in ``alert_outbox`` in the same transaction (delivery: :mod:`dexscan.store.outbox`)."""

    async def save_signal(
        self, sig: Signal, chat_ids: Sequence[int] = (), payload: str = "", now: int | None = None,
        kind: str = "signal",
    ) -> tuple[int, bool]:
        """Store a signal and its alert outbox rows in one transaction.

        Returns ``(signal_id, created)``; a signal already stored (same natural key) is left as it
        is and gets no new alerts, which is what makes replays and restarts duplicate-free.
        ``kind`` is ``signal`` for a new move's alert, ``join`` for a strategy joining a move already
        alerted (the sender edits the move's message; dexscan/alerts/telegram/outbox.py).
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
                    dumps([asdict(r) for r in sig.reasons]), dumps(dict(sig.features)),
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
                (signal_id, outcome.result, outcome.realized_r, outcome.max_r, dumps(dict(outcome.hits)),
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
        filters, params = where(("s.ts >= ?", since), ("s.strategy = ?", strategy), ("s.status = ?", status),
                                ("s.mint = ?", mint))
        sql = f"""SELECT s.*, o.result, o.realized_r, o.max_r, o.hits, o.closed_at, o.last_price
                  FROM signals s LEFT JOIN outcomes o ON o.signal_id = s.id WHERE 1=1{filters}"""
        if limit is None:
            sql += " ORDER BY s.ts, s.id"
        else:  # the newest ``limit``, still oldest first
            sql = f"SELECT * FROM ({sql} ORDER BY s.ts DESC, s.id DESC LIMIT ?) ORDER BY ts, id"
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
