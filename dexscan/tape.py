"""The trade tape: what a streamed token's detector was fed, so that it can be fed again, exactly.

The live scanner judges every on-chain trade of a universe pool (:meth:`Detector.on_trade`) and
adds each one a 5m bar took (not late, not refused) to the tape (``store.trades``, in the order it
was judged: the table's rowid), so a bar's volume is the sum of its trades on the tape. Besides the
trades, a detector is fed at two more moments, which this module records and replays:

* **Bootstrap** (the engine's history step): the token's stored 5m bars, then the tape's trades
  of the same pool after the last of those bars (:func:`resume`). After a restart (kill -9
  included) this rebuilds the 5m bar that was forming when the process died, so no judged trade is
  lost from a bar and none is counted twice (each trade is on the tape once, keyed by signature and
  event index, and fed once). The moment is noted (:class:`BootstrapNote`, in ``kv``) with the
  bars' range and the newest tape row it saw.
* **4H closes nobody traded through**: the engine tells every token the time
  ``scan.hot_refresh_s`` after a 4H boundary (:meth:`Detector.advance`); a trade after the
  boundary but before that moment has closed the candle already, and then the call changes nothing.

:func:`replay_tape` feeds the same inputs in the same order to a fresh detector and returns the
signals the live session produced (same keys, timestamps, prices, ladders, scores). What it cannot
see: polled prices. A streamed token is fed by polls only while the stream is down (a new stream
counts as up until it proves silent); its tape then has a hole and its signals from then on may
differ. Tokens whose pool never streamed (unstreamable pools) are not replayed: their stored 5m
bars only enter the market breadth, as the live scanner's books of them did. The market breadth
also assumes every token with a stored 5m bar at a 4H boundary was a universe member then.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dexscan.chain.trades import TradeFacts
from dexscan.domain import Candle, Signal, Timeframe
from dexscan.engine_ports import SignalDetector
from dexscan.market import M5
from dexscan.scoring import MarketContext, fresh_m5, market_breadth

#: ``kv`` key prefix of a token's bootstrap notes (a JSON list, oldest first).
BOOTSTRAP_KEY = "tape:bootstrap:"

_TAPE_COLUMNS = "rowid, signature, idx, pool, mint, block_time, side, base_amount, price_usd, signer"


@dataclass(frozen=True, slots=True)
class TapeTrade(TradeFacts):
    """One row of the tape, as the detector was given it: a trade a bar took, always priced in USD."""

    rowid: int
    price_usd: float

    @property
    def volume_usd(self) -> float:
        return self.base_amount * self.price_usd  # as Trade.volume_usd computes it


@dataclass(frozen=True, slots=True)
class BootstrapNote:
    """A bootstrap of ``mint`` on ``pool``: stored bars ``[start, bars_end)`` and tape rows ``<= rowid``."""

    pool: str
    start: int
    bars_end: int  # end of the last bar loaded (the tape resumes here)
    rowid: int  # the newest tape row at that moment (0: empty tape)
    at: int  # the clock time of the bootstrap
    symbol: str = ""  # the symbol the token's signals carry

    def to_json(self) -> list[Any]:
        return [self.pool, self.start, self.bars_end, self.rowid, self.at, self.symbol]

    @classmethod
    def from_json(cls, row: Sequence[Any]) -> BootstrapNote:
        return cls(str(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]), str(row[5]))


def _row(r: Sequence[Any]) -> TapeTrade:
    return TapeTrade(rowid=int(r[0]), signature=str(r[1]), index=int(r[2]), pool=str(r[3]), mint=str(r[4]),
                     block_time=int(r[5]), side=r[6], base_amount=float(r[7]), price_usd=float(r[8]),
                     signer=None if r[9] is None else str(r[9]))


async def _query(store: Any, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    async with store.db.execute(sql, params) as cur:
        return list(await cur.fetchall())


async def tape_of(store: Any, pool: str, since: int, upto_rowid: int | None = None) -> list[TapeTrade]:
    """Tape rows of ``pool`` with ``block_time >= since`` (and rowid <= ``upto_rowid``), in judged order."""
    sql = f"SELECT {_TAPE_COLUMNS} FROM trades WHERE pool = ? AND block_time >= ?"
    params: list[Any] = [pool, since]
    if upto_rowid is not None:
        sql += " AND rowid <= ?"
        params.append(upto_rowid)
    return [_row(r) for r in await _query(store, sql + " ORDER BY rowid", params)]


async def whole_tape(store: Any) -> list[TapeTrade]:
    """Every row of the tape, in the order the live scanner judged them."""
    return [_row(r) for r in await _query(store, f"SELECT {_TAPE_COLUMNS} FROM trades ORDER BY rowid")]


async def newest_rowid(store: Any) -> int:
    rows = await _query(store, "SELECT COALESCE(MAX(rowid), 0) FROM trades")
    return int(rows[0][0])


async def bootstrap_notes(store: Any) -> dict[str, list[BootstrapNote]]:
    """Every token's bootstrap notes, oldest first."""
    rows = await _query(store, "SELECT key, value FROM kv WHERE key >= ? AND key < ?",
                        (BOOTSTRAP_KEY, BOOTSTRAP_KEY[:-1] + chr(ord(BOOTSTRAP_KEY[-1]) + 1)))
    return {str(k)[len(BOOTSTRAP_KEY):]: [BootstrapNote.from_json(n) for n in json.loads(v)] for k, v in rows}


async def note_bootstrap(store: Any, mint: str, note: BootstrapNote) -> None:
    key = BOOTSTRAP_KEY + mint
    old = await store.kv_get(key)
    notes = json.loads(old) if old else []
    notes.append(note.to_json())
    await store.kv_set(key, json.dumps(notes))


def feed(detector: SignalDetector, t: TapeTrade) -> list[Signal]:
    """One tape trade through the detector, as the live scanner judges a streamed trade."""
    return detector.on_trade(t.mint, t.block_time, t.price_usd, t.volume_usd, t.side, t.signer)


async def resume(store: Any, detector: SignalDetector, mint: str, pool: str, bars: Sequence[Candle], start: int,
                 end: int, at: int, symbol: str = "") -> tuple[list[Signal], list[TapeTrade]]:
    """The live bootstrap of a streamed token: ``bars`` (stored and fetched, ``[start, end)``), then
    the tape's trades of ``pool`` after the last bar, noted for :func:`replay_tape`. Returns the
    signals those trades caused (already stored ones are dropped by the store) and the trades."""
    bars_end = bars[-1].ts + M5 if bars else end
    rowid = await newest_rowid(store)
    detector.bootstrap(mint, Timeframe.M5, bars, pool=pool, as_of=at)
    rows = await tape_of(store, pool, bars_end, rowid) if rowid else []
    signals = [s for t in rows if t.mint == mint for s in feed(detector, t)]
    await note_bootstrap(store, mint, BootstrapNote(pool, start, bars_end, rowid, at, symbol))
    return signals, rows


@dataclass
class TapeReplay:
    """What :func:`replay_tape` produced."""

    signals: list[Signal]
    trades: int  # tape rows fed
    tokens: int
    bootstraps: int
    advances: int  # 4H closes told by time (no trade came first)
    skipped: dict[str, int] = field(default_factory=dict)  # rows not fed, by reason


async def replay_tape(detector: SignalDetector, store: Any, hot_refresh_s: float, until: int | None = None,
                      on_signal: Callable[[Signal], None] | None = None) -> TapeReplay:
    """Feed a recorded streamed session to ``detector`` exactly as the live scanner fed it.

    Per token: each bootstrap (its bars read back from the store, then the tape rows it resumed
    from), then its tape rows in judged order up to its next bootstrap; before the first trade at
    or after ``boundary + hot_refresh_s`` of each 4H boundary it crossed, :meth:`Detector.advance`
    to the boundary (with the market breadth of the replayed tokens then). Signals are kept once
    per natural key (the store keeps the first), in the order they were found. ``until`` is when
    the session stopped (its last housekeeping; default: the newest trade's block time).
    """
    tape = await whole_tape(store)
    streamed_pools = {t.pool for t in tape}
    # a token whose pool never streamed a trade was priced by polls (an unstreamable pool): its
    # bars are the stored ones, and only the market breadth reads them
    notes = {mint: kept for mint, ns in (await bootstrap_notes(store)).items()
             if (kept := [n for n in ns if n.pool in streamed_pools])}
    events: list[tuple[int, int, str, Any]] = []  # (rowid position, order, mint, payload)
    for mint, ns in notes.items():
        events.extend((note.rowid, 1, mint, note) for note in ns)  # after the rows it saw
    for t in tape:
        events.append((t.rowid, 0, t.mint, t))
    events.sort(key=lambda e: (e[0], e[1]))
    h4 = int(Timeframe.H4)
    out: list[Signal] = []
    keys: set[tuple[str, str, int]] = set()
    skipped: dict[str, int] = {}
    pool_of: dict[str, str] = {}
    fed = advances = 0

    def keep(signals: Iterable[Signal]) -> None:
        for s in signals:
            if s.key not in keys:
                keys.add(s.key)
                out.append(s)
                if on_signal is not None:
                    on_signal(s)

    async def breadth(edge: int) -> float | None:
        """The engine's breadth at ``edge``: the replayed tokens' books, and the stored 5m bars that
        ended there of the pools the session priced by polls."""
        markets = (detector.market(mint) for mint in pool_of)
        bars: list[Any] = [fresh_m5(m.last5_by(edge) if m is not None else None, edge) for m in markets]
        polled = await _query(store, "SELECT pool, open, close FROM candles WHERE timeframe = ? AND ts = ?",
                              (int(Timeframe.M5), edge - M5))
        bars += [Candle(edge - M5, float(o), float(o), float(o), float(c), 0.0) for p, o, c in polled
                 if p not in streamed_pools]
        return market_breadth(bars)

    boundary: int | None = None  # the next 4H boundary the engine's housekeeping tells every token

    async def tell_time(upto: float) -> None:
        """The 4H closes told to every bootstrapped token (one breadth for all) before ``upto``."""
        nonlocal boundary, advances
        while boundary is not None and boundary + hot_refresh_s <= upto:
            ctx = MarketContext(market_breadth=await breadth(boundary))
            for mint in pool_of:
                advances += 1
                keep(detector.advance(mint, boundary, ctx))
            boundary += h4

    for _, kind, mint, payload in events:
        if kind == 1:
            n: BootstrapNote = payload
            if boundary is None:  # the engine's first look at the time: the boundary after it is the first
                boundary = n.at - n.at % h4 + h4
            detector.drop(mint)
            detector.register(mint, n.symbol, n.pool)
            bars = await store.candles(n.pool, Timeframe.M5, n.start, n.bars_end)
            detector.bootstrap(mint, Timeframe.M5, bars, pool=n.pool, as_of=n.at)
            pool_of[mint] = n.pool
            rows = await tape_of(store, n.pool, n.bars_end, n.rowid) if n.rowid else []
            for t in rows:
                if t.mint == mint:
                    keep(feed(detector, t))
            continue
        t = payload
        if pool_of.get(mint) != t.pool:
            skipped["before_bootstrap"] = skipped.get("before_bootstrap", 0) + 1
            continue
        await tell_time(t.block_time)
        fed += 1
        keep(feed(detector, t))
    end = max([t.block_time for t in tape[-1:]] + ([until] if until is not None else []), default=None)
    if end is not None:  # the 4H closes told after the last trade, while the session ran
        await tell_time(end)
    return TapeReplay(out, fed, len(pool_of), sum(len(v) for v in notes.values()), advances, skipped)
