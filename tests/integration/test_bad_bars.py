"""OHLCV answers whose bars are off the timeframe's grid, in milliseconds, or contradict each other are
refused whole, with one counted warning and nothing stored (issue 17 point 4); exact repeats of a bar
are merged. GeckoTerminal and Birdeye, through the real clients and ``dexscan backfill``, against the
loopback market fakes' ``bars_*`` faults."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from dexscan.backfill import backfill
from dexscan.clock import SimClock
from dexscan.config import Settings, load_settings
from dexscan.demo.market_sim import MarketSim, SimConfig
from dexscan.demo.servers.market import MISALIGNED_BY_S, MarketFakes
from dexscan.domain import Timeframe
from dexscan.errors import BadPayload
from dexscan.sources.birdeye import BIRDEYE
from dexscan.sources.geckoterminal import GECKOTERMINAL
from dexscan.store import Store
from tests.integration.test_clients import market

M5 = 300
BAD_BAR_FAULTS = ("bars_misaligned", "bars_in_ms", "bars_conflicting")


@pytest.fixture(scope="module")
def sim() -> MarketSim:
    return MarketSim(SimConfig(seed=7, n_tokens=6, history_days=3))


@asynccontextmanager
async def _market(sim: MarketSim) -> AsyncIterator[tuple[MarketFakes, SimClock, Settings]]:
    clock = SimClock(sim.live_start)
    async with MarketFakes(sim, clock) as fakes:
        settings = load_settings(env={"DEXSCAN_BIRDEYE_API_KEY": fakes.birdeye_api_key}).with_overrides(
            fakes.settings_overrides())
        yield fakes, clock, settings


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_geckoterminal_bad_bars_are_refused_whole_with_one_counted_error(
    sim: MarketSim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with market(sim) as env:
        pool = sim.tokens[0].main_pool.address
        clean = await env.clients.geckoterminal.ohlcv(pool, Timeframe.M5, limit=100)
        assert len(clean) == 100 and all(c.ts % M5 == 0 for c in clean)
        first = clean[-1].ts  # GeckoTerminal sends the newest bar first
        problems = {
            "bars_misaligned": f"100 of 100 bars do not start on the 300 s grid (e.g. {first + MISALIGNED_BY_S}, "
                               f"{MISALIGNED_BY_S} s past a bar start); the whole answer is refused",
            "bars_in_ms": f"100 of 100 bar times are milliseconds or garbage, not epoch seconds (e.g. "
                          f"{first * 1000}); the whole answer is refused",
        }
        for fault in BAD_BAR_FAULTS:
            caplog.clear()
            env.fakes.faults.inject(GECKOTERMINAL, fault)
            with pytest.raises(BadPayload) as refused:
                await env.clients.geckoterminal.ohlcv(pool, Timeframe.M5, limit=100)
            assert env.fakes.faults.pending(GECKOTERMINAL) == []
            assert refused.value.field == "ohlcv_list.ts"
            if fault in problems:
                assert refused.value.problem == problems[fault]
            else:
                assert refused.value.problem.startswith("two different bars at ")
            assert _warnings(caplog) == []  # no line per bar: the caller logs the one refusal
        assert env.http.stats()[GECKOTERMINAL].bad_records == {"ohlcv_list.ts": 3}

        env.fakes.faults.inject(GECKOTERMINAL, "bars_repeated")
        assert await env.clients.geckoterminal.ohlcv(pool, Timeframe.M5, limit=100) == clean
        assert env.fakes.faults.pending(GECKOTERMINAL) == []
        assert env.http.stats()[GECKOTERMINAL].bad_records == {"ohlcv_list.ts": 3}


@pytest.mark.parametrize("source", [GECKOTERMINAL, BIRDEYE])
@pytest.mark.parametrize("fault", BAD_BAR_FAULTS)
async def test_backfill_stores_no_bar_of_a_bad_answer_and_warns_once(
    sim: MarketSim, tmp_path: Path, caplog: pytest.LogCaptureFixture, source: str, fault: str
) -> None:
    caplog.set_level(logging.INFO)
    tok = sim.tokens[0]
    async with _market(sim) as (fakes, clock, settings):
        fakes.faults.inject(source, fault, count=50)  # every OHLCV answer of the run is spoiled
        store = await Store.open(tmp_path / "bad.db")
        try:
            summary = await backfill(settings, store, clock, [tok.mint], 2, source)
            rows = (await store.db.execute_fetchall("SELECT COUNT(*) FROM candles"))[0][0]
            coverage = (await store.db.execute_fetchall("SELECT COUNT(*) FROM history_coverage"))[0][0]
        finally:
            await store.close()
    assert (rows, coverage, summary.bars_written) == (0, 0, 0)
    [report] = summary.skipped
    field = "ohlcv_list.ts" if source == GECKOTERMINAL else "items.unix_time"
    assert report.skipped is not None and f"bad payload at {field}: " in report.skipped
    assert fakes.faults.pending(source) == [(fault, 49)]  # one answer refused; the token stopped there
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and warnings[0].startswith(f"backfill: {tok.mint} skipped: ")


@pytest.mark.parametrize("source", [GECKOTERMINAL, BIRDEYE])
async def test_exact_repeats_of_bars_are_merged_and_stored_once(
    sim: MarketSim, tmp_path: Path, caplog: pytest.LogCaptureFixture, source: str
) -> None:
    caplog.set_level(logging.INFO)
    tok = sim.tokens[0]
    stored: dict[str, list[tuple[int, float, float, float]]] = {}
    for fault in (None, "bars_repeated"):
        async with _market(sim) as (fakes, clock, settings):
            if fault is not None:
                fakes.faults.inject(source, fault, count=50)
            store = await Store.open(tmp_path / f"{fault}.db")
            try:
                summary = await backfill(settings, store, clock, [tok.mint], 2, source)
                pool = tok.mint if source == BIRDEYE else summary.tokens[0].pool
                assert pool is not None
                bars = await store.candles(pool, Timeframe.M5)
                stored[str(fault)] = [(c.ts, c.open, c.close, c.volume) for c in bars]
            finally:
                await store.close()
        assert summary.skipped == []
    start, end = sim.live_start - 2 * 86_400, sim.live_start
    # GeckoTerminal includes empty intervals; Birdeye's token-level series skips them
    expected = 2 * 288 if source == GECKOTERMINAL else len(
        sim.bars(tok.main_pool.address, Timeframe.M5, start, end, include_empty=False))
    assert len(stored["None"]) == expected
    assert stored["bars_repeated"] == stored["None"]
    assert _warnings(caplog) == []
