"""The trade tape: a bootstrap resumes the forming bar from the tape, and a replay repeats the live feed."""

from __future__ import annotations

from dexscan.chain.trades import Trade
from dexscan.config import load_settings
from dexscan.detector import Detector
from dexscan.domain import Candle, Timeframe
from dexscan.store import Store
from dexscan.tape import BootstrapNote, bootstrap_notes, replay_tape, resume, tape_of, whole_tape

POOL = "Pool111111111111111111111111111111111111111"
MINT = "Mint111111111111111111111111111111111111111"
T0 = 1_769_846_400  # a 4H boundary


def _trade(sig: str, idx: int, ts: int, base: float, price: float, side: str = "buy") -> Trade:
    return Trade(signature=sig, index=idx, pool=POOL, mint=MINT, block_time=ts, side=side,  # type: ignore[arg-type]
                 base_amount=base, signer="Signer1", program="raydium_amm_v4", slot=1,
                 quote_amount=base * price / 200.0, price_quote=price / 200.0, price_usd=price)


def _bars(n: int, start: int) -> list[Candle]:
    return [Candle(start + 300 * i, 1.0, 1.01, 0.99, 1.0, 1000.0) for i in range(n)]


async def test_resume_rebuilds_the_forming_bar_from_the_tape_once(store: Store) -> None:
    settings = load_settings()
    bars = _bars(30, T0 - 30 * 300)  # stored bars end at T0
    taped = [_trade("a", 0, T0 + 10, 100.0, 1.02), _trade("a", 1, T0 + 10, 50.0, 1.03),
             _trade("b", 0, T0 + 200, 10.0, 1.01), _trade("c", 0, T0 + 320, 7.0, 1.05)]
    assert await store.save_trades(taped) == 4
    assert await store.save_trades(taped[:2]) == 0  # a trade is on the tape once
    det = Detector(settings)
    signals, rows = await resume(store, det, MINT, POOL, bars, T0 - 1000 * 300, T0, T0 + 330, "TOK")
    assert [(r.signature, r.index) for r in rows] == [("a", 0), ("a", 1), ("b", 0), ("c", 0)]
    market = det.market(MINT)
    assert market is not None
    done = market.last5
    assert done is not None and done.ts == T0  # the bar the previous run was forming, completed
    assert done.volume == 100.0 * 1.02 + 50.0 * 1.03 + 10.0 * 1.01  # each trade once, in judged order
    assert (done.open, done.high, done.low, done.close) == (1.0, 1.03, 1.0, 1.01)  # opens at the last close
    assert market.live is not None and market.live.ts == T0 + 300 and market.live.traded == 7.0 * 1.05
    assert signals == []
    assert await bootstrap_notes(store) == {MINT: [BootstrapNote(POOL, T0 - 1000 * 300, T0, 4, T0 + 330, "TOK")]}


async def test_replay_feeds_the_tape_as_the_live_detector_was_fed(store: Store) -> None:
    settings = load_settings()
    bars = _bars(30, T0 - 30 * 300)
    await store.upsert_candles(POOL, Timeframe.M5, bars)
    live = Detector(settings)
    await resume(store, live, MINT, POOL, bars, T0 - 30 * 300, T0, T0, "TOK")
    trades = [_trade(f"s{i}", 0, T0 + 20 * i, 10.0 + i, 1.0 + 0.002 * i) for i in range(60)]
    found = []
    for t in trades:  # the engine: judge, then tape what a bar took
        found += live.on_trade(t.mint, t.block_time, t.price_usd, t.volume_usd, t.side, t.signer)
    await store.save_trades(trades)
    assert [t.key for t in await whole_tape(store)] == [t.key for t in trades]
    assert len(await tape_of(store, POOL, T0 + 600)) == 30

    again = Detector(settings)
    session = await replay_tape(again, store, settings.scan.hot_refresh_s)
    assert (session.trades, session.tokens, session.bootstraps, session.skipped) == (60, 1, 1, {})
    assert [s.key for s in session.signals] == [s.key for s in found]
    assert session.signals == found
    a, b = live.market(MINT), again.market(MINT)
    assert a is not None and b is not None
    assert list(a.m5) == list(b.m5) and a.live is not None and b.live is not None
    assert (a.live.ts, a.live.traded, a.live.close) == (b.live.ts, b.live.traded, b.live.close)
