"""``dexscan backfill``: local files, and the real GeckoTerminal client against the loopback fake."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from dexscan.backfill import (
    HISTORY_TIMEFRAMES,
    backfill,
    merge_intervals,
    missing_ranges,
    run_backfill,
    split_range,
)
from dexscan.clock import SimClock
from dexscan.config import Settings, load_settings
from dexscan.demo.market_sim import MarketSim, SimConfig
from dexscan.demo.servers.market import MarketFakes
from dexscan.domain import MAIN_QUOTES, Candle, Timeframe
from dexscan.errors import InputError
from dexscan.ohlcv_files import derive_timeframes, read_ohlcv_file
from dexscan.store import Store

T0 = 1_754_870_400  # 2025-08-11 00:00 UTC
H1, H4 = 3600, 4 * 3600


def _args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"days": None, "tokens": None, "from_files": None, "source": None, "demo": False,
                               "db": None}
    base.update(kw)
    return argparse.Namespace(**base)


def test_missing_ranges_and_pages() -> None:
    assert missing_ranges([], 0, 100) == [(0, 100)]
    assert missing_ranges([(0, 30), (30, 50), (70, 80)], 0, 100) == [(50, 70), (80, 100)]
    assert missing_ranges([(-10, 200)], 0, 100) == []
    assert missing_ranges([(10, 20)], 0, 100) == [(0, 10), (20, 100)]
    assert split_range(0, 2500 * 300, Timeframe.M5, 1000) == [
        (1500 * 300, 2500 * 300), (500 * 300, 1500 * 300), (0, 500 * 300)]


def _write(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


def test_hourly_csv_fills_gaps_and_derives_utc_aligned_4h(tmp_path: Path) -> None:
    # 02:00 .. 10:00 with 05:00 missing (no trades): the 04-08 window is complete after gap filling.
    rows = ["datetime,symbol,open,high,low,close,volume"]
    for h, (o, hi, lo, c) in {2: (1, 1.1, 0.9, 1.05), 3: (1.05, 1.2, 1.0, 1.1), 4: (1.1, 1.3, 1.1, 1.25),
                              6: (1.25, 1.4, 1.2, 1.3), 7: (1.3, 1.35, 1.0, 1.2), 8: (1.2, 1.2, 1.1, 1.15),
                              9: (1.15, 1.2, 1.1, 1.2), 10: (1.2, 1.3, 1.2, 1.3)}.items():
        rows.append(f"2025-08-11 {h:02d}:00:00,WIF,{o},{hi},{lo},{c},{100 * h}")
    path = _write(tmp_path / "POOLwif.csv", "\n".join(rows))
    [series] = read_ohlcv_file(path)
    assert (series.pool, series.symbol, series.tf) == ("POOLwif", "WIF", Timeframe.H1)
    assert len(series.candles) == 9
    assert series.candles[3] == Candle(T0 + 5 * H1, 1.25, 1.25, 1.25, 1.25, 0.0)

    derived = derive_timeframes([series])
    assert derived[Timeframe.H4] == [Candle(T0 + H4, 1.1, 1.4, 1.0, 1.2, 400 + 0 + 600 + 700)]
    assert Timeframe.M5 not in derived


@pytest.mark.parametrize(("text", "message"), [
    ("timestamp,open,high,low,close\n1754870400,1,1,1,1",
     "bad.csv: missing column(s): volume; found: timestamp, open, high, low, close"),
    ("timestamp,open,high,low,close,volume\n1754870400,1,1,1,1,5\n1754874000,1,1,1,abc,5",
     "bad.csv: row 2 (line 3): column 'close': 'abc' is not a positive number"),
    ("timestamp,open,high,low,close,volume\n1754870400,1,1,1,1,5\n1754874000,1,0.5,1,1,5",
     "bad.csv: row 2 (line 3): column 'high/low': high 0.5 / low 1 do not bracket open 1 and close 1"),
    ("timestamp,open,high,low,close,volume\n1754870400,1,1,1,1,5\n1754872200,1,1,1,1,5",
     "bad.csv: row 2 (line 3): column 'timestamp': bars are 1800s apart, not a known timeframe "
     "(1m, 5m, 15m, 1h, 4h, 12h, 1d)"),
    ("timestamp,open,high,low,close,volume\n1754870400000,1,1,1,1,5\n1754870400000,1,1,1,1,5",
     "bad.csv: row 2 (line 3): column 'timestamp': duplicate bar at 1754870400 for pool bad"),
    ("datetime,open,high,low,close,volume\n2025-08-11 00:00,1,1,1,1,5\nyesterday,1,1,1,1,5",
     "bad.csv: row 2 (line 3): column 'datetime': 'yesterday' is not a date-time (e.g. 2025-08-11 04:00:00, "
     "read as UTC)"),
    ("timestamp,open,high,low,close,volume\n1754870460,1,1,1,1,5\n1754874060,1,1,1,1,5",
     "bad.csv: row 1 (line 2): column 'timestamp': 1754870460 is not on a UTC 1h boundary"),
])
def test_bad_files_fail_with_one_line_naming_file_row_and_column(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError) as exc:
        read_ohlcv_file(_write(tmp_path / "bad.csv", text))
    assert str(exc.value) == message


async def test_from_files_skips_a_bad_file_and_imports_the_rest(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    rows = "\n".join(f"{T0 + i * H1},1,1.1,0.9,1.0,{i}" for i in range(8))
    _write(files / "good.csv", "timestamp,open,high,low,close,volume\n" + rows)
    _write(files / "broken.csv", "timestamp,open\n1,2")
    db = tmp_path / "x.db"
    code = await run_backfill(load_settings(), _args(from_files=str(files), db=str(db)))
    assert code == 1
    store = await Store.open(db)
    try:
        assert await store.candle_count("good", Timeframe.H1) == 8
        assert await store.candles("good", Timeframe.H4) == [Candle(T0, 1, 1.1, 0.9, 1.0, 6.0),
                                                            Candle(T0 + H4, 1, 1.1, 0.9, 1.0, 22.0)]
        assert await store.coverage("good", Timeframe.H4) == [(T0, T0 + 2 * H4)]
        assert await store.pools_of("good") != []
    finally:
        await store.close()
    (files / "good.csv").unlink()
    with pytest.raises(InputError) as exc:
        await run_backfill(load_settings(), _args(from_files=str(files), db=str(db)))
    assert str(exc.value) == (f"--from-files {files}: no file could be imported; first problem: broken.csv: "
                              "missing column(s): high, low, close, volume; found: timestamp, open")


# ---------------------------------------------------------------------------------------------
# Against the loopback GeckoTerminal fake, through the real client, on a shared SimClock
# ---------------------------------------------------------------------------------------------

N_TOKENS, DAYS = 20, 30
#: per token: token → pools (1) + 5m pages (8640 bars / 1000 → 9) + 1h (1) + 4h (1)
REQUESTS_PER_TOKEN = 1 + 9 + 1 + 1


@pytest.fixture(scope="module")
def sim() -> MarketSim:
    return MarketSim(SimConfig(seed=7, n_tokens=N_TOKENS, history_days=DAYS))


@asynccontextmanager
async def _market(sim: MarketSim) -> AsyncIterator[tuple[MarketFakes, SimClock, Settings]]:
    clock = SimClock(sim.live_start)
    async with MarketFakes(sim, clock) as fakes:
        yield fakes, clock, load_settings().with_overrides(fakes.settings_overrides())


async def _expected_requests(store: Store, mints: list[str], start: int, end: int) -> int:
    """What a resumed run must fetch: pool look-ups it lacks plus the pages coverage lacks."""
    total = 0
    for mint in mints:
        pools = await store.pools_of(mint)
        if not pools:
            total += REQUESTS_PER_TOKEN
            continue
        # the backfill's own rule (pick_main_pool): a token/token pool GeckoTerminal lists with this
        # token as base may be deeper than its SOL/USDC pool, but is not its main pool
        main = min(pools, key=lambda p: (p["quote_mint"] not in MAIN_QUOTES, -(p["liquidity_usd"] or 0),
                                         p["address"]))["address"]
        for tf in HISTORY_TIMEFRAMES:
            gaps = missing_ranges(await store.coverage(main, tf), start, end)
            total += sum(len(split_range(lo, hi, tf, 1000)) for lo, hi in gaps)
    return total


async def test_backfill_20_tokens_30_days_then_nothing_then_resume(sim: MarketSim, tmp_path: Path) -> None:
    mints = [t.mint for t in sim.tokens]
    start, end = sim.live_start - DAYS * 86_400, sim.live_start
    async with _market(sim) as (fakes, clock, settings):
        store = await Store.open(tmp_path / "full.db")
        try:
            first = await backfill(settings, store, clock, mints, DAYS, "geckoterminal")
            assert (first.start, first.end) == (start, end)
            assert first.requests == fakes.stats("geckoterminal").requests == N_TOKENS * REQUESTS_PER_TOKEN
            assert first.skipped == []
            assert first.clock_s >= (first.requests - 25) / 25 * 60  # the 25/min budget, in simulated time
            # the token still on its pump.fun bonding curve at `end` (SimConfig.migration) is filled from
            # its curve: GeckoTerminal lists no other pool of it yet
            filled = {tok.mint: tok.curve.address if tok.curve is not None and (tok.migrated_at or 0) >= end
                      else tok.main_pool.address for tok in sim.tokens}
            truth = {(filled[tok.mint], tf): sim.bars(filled[tok.mint], tf, start, end)
                     for tok in sim.tokens for tf in HISTORY_TIMEFRAMES}
            for (pool, tf), bars in truth.items():
                # the fake sends volumes to 6 decimals
                assert await store.candles(pool, tf) == [replace(b, volume=round(b.volume, 6)) for b in bars]
                assert merge_intervals(await store.coverage(pool, tf)) == [(start, end)]
            assert first.bars_written == sum(len(b) for b in truth.values()) == 172_727

            clock.advance(60)  # a later run: the provider's per-IP window has moved on
            again = await backfill(settings, store, clock, mints, DAYS, "geckoterminal")
            assert (again.requests, again.bars_written) == (0, 0)
            assert fakes.stats("geckoterminal").requests == first.requests
        finally:
            await store.close()

        cut_after = 100
        clock.advance(60)
        store = await Store.open(tmp_path / "resumed.db")
        try:
            before = fakes.stats("geckoterminal").requests
            task = asyncio.create_task(backfill(settings, store, clock, mints, DAYS, "geckoterminal"))
            while fakes.stats("geckoterminal").requests - before < cut_after:  # noqa: ASYNC110 - the fake has no event
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            sent_before_cancel = fakes.stats("geckoterminal").requests - before
            assert sent_before_cancel == cut_after
            rest = await _expected_requests(store, mints, start, end)
            assert 0 < rest < N_TOKENS * REQUESTS_PER_TOKEN
            clock.advance(60)
            resumed = await backfill(settings, store, clock, mints, DAYS, "geckoterminal")
            assert resumed.requests == rest
            # At most the one request in flight at the cancel is fetched twice.
            assert cut_after + rest in (N_TOKENS * REQUESTS_PER_TOKEN, N_TOKENS * REQUESTS_PER_TOKEN + 1)
            for (pool, tf), bars in truth.items():
                assert await store.candle_count(pool, tf) == len(bars)
            assert (await backfill(settings, store, clock, mints, DAYS, "geckoterminal")).requests == 0
        finally:
            await store.close()


async def test_one_tokens_bad_data_is_skipped_with_a_reason(sim: MarketSim, tmp_path: Path) -> None:
    mints = [t.mint for t in sim.tokens[:3]]
    unknown = "So11111111111111111111111111111111111111113"
    async with _market(sim) as (_, clock, settings):
        store = await Store.open(tmp_path / "x.db")
        try:
            summary = await backfill(settings, store, clock, [mints[0], unknown, *mints[1:]], 2, "geckoterminal")
        finally:
            await store.close()
    assert [t.mint for t in summary.tokens if t.skipped is None] == mints
    [bad] = summary.skipped
    assert bad.mint == unknown
    assert bad.skipped == ("geckoterminal /networks/solana/tokens/{mint}/pools: HTTP 404: Not Found "
                           "(unknown path, pool or token)")


async def test_birdeye_source_stores_token_level_bars_under_the_mint(sim: MarketSim, tmp_path: Path) -> None:
    toks = sim.tokens[:2]
    start, end = sim.live_start - 3 * 86_400, sim.live_start
    async with _market(sim) as (fakes, clock, _):
        settings = load_settings(env={"DEXSCAN_BIRDEYE_API_KEY": fakes.birdeye_api_key}).with_overrides(
            fakes.settings_overrides())
        store = await Store.open(tmp_path / "be.db")
        try:
            summary = await backfill(settings, store, clock, [t.mint for t in toks], 3, "birdeye")
            assert summary.skipped == []
            assert summary.requests == fakes.stats("birdeye").requests == 2 * 3  # one page per timeframe
            for tok in toks:
                assert [p["address"] for p in await store.pools_of(tok.mint)] == [tok.mint]
                got = await store.candles(tok.mint, Timeframe.H4)
                want = sim.bars(tok.main_pool.address, Timeframe.H4, start, end, include_empty=False)
                assert [(c.ts, c.open, c.close) for c in got] == [(c.ts, c.open, c.close) for c in want]
            clock.advance(60)
            assert (await backfill(settings, store, clock, [t.mint for t in toks], 3, "birdeye")).requests == 0
        finally:
            await store.close()


async def test_birdeye_without_a_key_is_a_clear_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        await run_backfill(load_settings(), _args(tokens=["So11111111111111111111111111111111111111112"],
                                                  source="birdeye", db=str(tmp_path / "x.db")))
    assert str(exc.value) == ("--source birdeye needs DEXSCAN_BIRDEYE_API_KEY in the environment "
                              "(and sources.birdeye.enabled = true); or use --source geckoterminal")


async def test_a_rate_limit_outlasting_the_retries_is_waited_out_not_skipped(sim: MarketSim, tmp_path: Path) -> None:
    tok = sim.tokens[0]
    async with _market(sim) as (fakes, clock, settings):
        attempts = settings.http.retries + 1
        fakes.faults.inject("geckoterminal", "429", count=attempts)  # every attempt of the first call
        store = await Store.open(tmp_path / "x.db")
        try:
            t0 = clock.now()
            summary = await backfill(settings, store, clock, [tok.mint], 1, "geckoterminal")
        finally:
            await store.close()
        assert summary.skipped == []
        assert fakes.stats("geckoterminal").rate_limited == attempts
        assert summary.requests == attempts + 4  # the 429s, then pools + one page of 5m, 1h and 4h
        assert clock.now() - t0 >= 60.0  # paused a whole window (simulated) before trying again
