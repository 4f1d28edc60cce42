"""``dexscan backfill``: fetch OHLCV history (5m, 1h, 4h) and store it, resumably and idempotently.

Why it is built this way:

* **Resumable.** Every request covers one page of bars; its bars and the range it covered are
  written right after it returns (``Store.upsert_candles`` + ``Store.add_coverage``). A run that
  is interrupted (Ctrl-C, crash, a provider outage) loses at most the page in flight, and the
  next run asks only for the ranges the coverage table does not hold. A second complete run sends
  no request at all.
* **A stable range.** History ends at the last completed 4H boundary (UTC), so every stored 4H
  candle is final (labels never change) and two runs a few minutes apart want the same range.
* **Within budget.** All requests go through the provider clients and so through the one HTTP
  layer, whose budgets pace them; the run's request count is reported in its summary.
* **Fail soft.** One token's bad data never aborts the run: the token is skipped with a reason.

``--from-files DIR`` imports local CSV/Parquet files instead (:mod:`dexscan.ohlcv_files`);
``--source chain`` builds 1m and 5m bars from the pools' own transactions (:mod:`dexscan.chain.history`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from dexscan.clock import Clock, RealClock
from dexscan.config import Settings
from dexscan.demo_mode import DemoLauncher, demo_db_path
from dexscan.domain import MAIN_QUOTES, Candle, PoolRef, Timeframe
from dexscan.errors import ConfigError, InputError, RateLimited, SourceError
from dexscan.sources import BirdeyeClient, GeckoTerminalClient, HttpLayer, build_clients
from dexscan.sources.birdeye import BIRDEYE
from dexscan.sources.geckoterminal import GECKOTERMINAL
from dexscan.store import Store
from dexscan.store.connection import LockWait

log = logging.getLogger(__name__)

Interval = tuple[int, int]

#: The timeframes a backfill stores, finest first.
HISTORY_TIMEFRAMES: tuple[Timeframe, ...] = (Timeframe.M5, Timeframe.H1, Timeframe.H4)
#: A rate limit that outlasts the HTTP layer's retries: pause this long (a provider window) and try
#: again, at most this many rounds, before the token is skipped.
RATE_LIMIT_PAUSE_S = 60.0
RATE_LIMIT_ROUNDS = 3

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# Coverage bookkeeping
# ---------------------------------------------------------------------------------------------


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping union of half-open ``[start, end)`` intervals (touching ones join)."""
    out: list[Interval] = []
    for s, e in sorted(i for i in intervals if i[1] > i[0]):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def missing_ranges(covered: Iterable[Interval], start: int, end: int) -> list[Interval]:
    """The parts of ``[start, end)`` that ``covered`` does not hold, oldest first."""
    gaps: list[Interval] = []
    cursor = start
    for s, e in merge_intervals(covered):
        if e <= cursor:
            continue
        if s >= end:
            break
        if s > cursor:
            gaps.append((cursor, min(s, end)))
        cursor = max(cursor, e)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append((cursor, end))
    return gaps


def split_range(start: int, end: int, tf: Timeframe, page_bars: int) -> list[Interval]:
    """``[start, end)`` cut into request-sized pieces of at most ``page_bars`` bars each.

    Pieces run newest first: providers page backwards in time (GeckoTerminal's
    ``before_timestamp``), and recent history is what a resumed run needs most.
    """
    step = int(tf) * page_bars
    pieces: list[Interval] = []
    hi = end
    while hi > start:
        lo = max(start, hi - step)
        pieces.append((lo, hi))
        hi = lo
    return pieces


def history_range(now: float, days: float) -> Interval:
    """``[start, end)`` of a backfill: ends at the last completed 4H boundary, ``days`` long."""
    end = Timeframe.H4.floor(int(now))
    start = Timeframe.H4.floor(end - round(days * 86_400))
    return start, end


# ---------------------------------------------------------------------------------------------
# Bar arithmetic shared by file import (gap filling, resampling)
# ---------------------------------------------------------------------------------------------


def fill_gaps(candles: Sequence[Candle], tf: Timeframe) -> list[Candle]:
    """Insert the empty intervals a file skipped: O=H=L=C=previous close, volume 0 (SPEC §4)."""
    out: list[Candle] = []
    for c in candles:
        if out:
            prev = out[-1]
            ts = prev.ts + int(tf)
            while ts < c.ts:
                out.append(Candle(ts, prev.close, prev.close, prev.close, prev.close, 0.0))
                ts += int(tf)
        out.append(c)
    return out


def resample(candles: Sequence[Candle], src: Timeframe, dst: Timeframe) -> list[Candle]:
    """Aggregate gap-free ``src`` bars into UTC-aligned ``dst`` bars; incomplete windows are dropped.

    A window is complete when it holds all ``dst/src`` source bars, so an edge bar never claims a
    4H open or close it did not see.
    """
    if int(dst) % int(src) != 0 or dst <= src:
        raise ValueError(f"cannot build {dst.label} bars from {src.label} bars")
    need = int(dst) // int(src)
    out: list[Candle] = []
    group: list[Candle] = []
    for c in candles:
        if group and dst.floor(c.ts) != dst.floor(group[0].ts):
            if len(group) == need:
                out.append(_merge_bars(dst.floor(group[0].ts), group))
            group = []
        group.append(c)
    if len(group) == need:
        out.append(_merge_bars(dst.floor(group[0].ts), group))
    return out


def _merge_bars(ts: int, bars: Sequence[Candle]) -> Candle:
    return Candle(
        ts=ts,
        open=bars[0].open,
        high=max(b.high for b in bars),
        low=min(b.low for b in bars),
        close=bars[-1].close,
        volume=float(sum(b.volume for b in bars)),
    )


def validate_bars(candles: Sequence[Candle]) -> str | None:
    """Why a batch of provider bars must not be stored, or None when it is sound."""
    for c in candles:
        if not (c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close)):
            return f"bar at {c.ts}: high {c.high:g} / low {c.low:g} do not bracket open {c.open:g} / close {c.close:g}"
    return None


# ---------------------------------------------------------------------------------------------
# Sources of history
# ---------------------------------------------------------------------------------------------


class HistorySource(Protocol):
    """What a backfill needs from a provider: a token's pools and one pool's bars in a range."""

    name: str
    page_bars: int
    token_level: bool  # bars are per token (the mint is the "pool"), not per pool

    async def pools(self, mint: str) -> list[PoolRef]: ...

    async def bars(self, pool: str, tf: Timeframe, start: int, end: int, token: str | None = None
                   ) -> list[Candle]: ...


class GeckoTerminalHistory:
    """Pool OHLCV with empty intervals included (SPEC §4: gaps are real bars with volume 0)."""

    name = GECKOTERMINAL
    token_level = False

    def __init__(self, client: GeckoTerminalClient, page_bars: int) -> None:
        self._client = client
        self.page_bars = page_bars

    async def pools(self, mint: str) -> list[PoolRef]:
        return await self._client.token_pools(mint)

    async def bars(self, pool: str, tf: Timeframe, start: int, end: int, token: str | None = None
                   ) -> list[Candle]:
        """``token``: the mint the bars chart (``token=<mint>``: GeckoTerminal's base may be the other side)."""
        return await self._client.ohlcv_range(pool, tf, start, end, include_empty=True, token=token)


class BirdeyeHistory:
    """Token-level OHLCV (Birdeye aggregates a token's pools): the mint stands in for the pool."""

    name = BIRDEYE
    page_bars = 5000  # /defi/v3/ohlcv item cap
    token_level = True

    def __init__(self, client: BirdeyeClient) -> None:
        self._client = client

    async def pools(self, mint: str) -> list[PoolRef]:
        return [PoolRef(address=mint, dex_id="birdeye", base_mint=mint, quote_mint="", name="birdeye aggregate")]

    async def bars(self, pool: str, tf: Timeframe, start: int, end: int, token: str | None = None
                   ) -> list[Candle]:
        return await self._client.ohlcv(pool, tf, start, end)


def make_source(name: str, settings: Settings, http: HttpLayer) -> HistorySource:
    clients = build_clients(settings, http)
    if name == BIRDEYE:
        if clients.birdeye is None:
            raise InputError("--source birdeye needs DEXSCAN_BIRDEYE_API_KEY in the environment "
                             "(and sources.birdeye.enabled = true); or use --source geckoterminal")
        return BirdeyeHistory(clients.birdeye)
    if name == GECKOTERMINAL:
        return GeckoTerminalHistory(clients.geckoterminal, settings.sources.geckoterminal.ohlcv_page_limit)
    raise InputError(f"unknown history source {name!r}; use geckoterminal or birdeye")


def pick_main_pool(pools: Sequence[PoolRef]) -> PoolRef | None:
    """The token's main pool (SPEC §3): the deepest pool quoted in SOL/USDC/USDT, else the deepest."""
    if not pools:
        return None
    return min(pools, key=lambda p: (p.quote_mint not in MAIN_QUOTES, -(p.reserve_usd or 0.0), p.address))


# ---------------------------------------------------------------------------------------------
# The backfill run
# ---------------------------------------------------------------------------------------------


@dataclass
class TokenReport:
    mint: str
    symbol: str = ""
    pool: str | None = None
    requests: int = 0
    bars: int = 0
    pieces_total: int = 0
    pieces_done: int = 0
    skipped: str | None = None


@dataclass
class BackfillSummary:
    """What one run did. ``clock_s`` is time on the run's clock: simulated time on a SimClock, i.e.
    how long the same requests take within the real provider's budget."""

    source: str
    start: int
    end: int
    tokens: list[TokenReport] = field(default_factory=list)
    requests: int = 0
    bars_written: int = 0
    wall_s: float = 0.0
    clock_s: float = 0.0
    files: list[str] = field(default_factory=list)
    file_errors: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> list[TokenReport]:
        return [t for t in self.tokens if t.skipped]

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source, "start": self.start, "end": self.end, "tokens": len(self.tokens),
            "skipped": {t.mint: t.skipped for t in self.skipped}, "requests": self.requests,
            "bars_written": self.bars_written, "wall_s": round(self.wall_s, 3), "clock_s": round(self.clock_s, 3),
        }


async def backfill_each_token(
    mints: Sequence[str], summary: BackfillSummary, token_step: Callable[[TokenReport, TaskID | None], Awaitable[None]],
    request_count: Callable[[], int], progress: Progress | None, *, skip_on: tuple[type[Exception], ...],
    logger: logging.Logger, what: str,
) -> None:
    """The run of every backfill over its tokens, one :class:`TokenReport` each, added to ``summary`` as
    it starts (a caller cancelled midway still reports what was stored).

    ``token_step(report, overall)`` backfills one token (``overall``: the "all tokens" progress task,
    which it may advance within the token). An error of ``skip_on`` skips the token with the error as
    its reason (logged as ``"<what>: <mint> skipped: <error>"``) and the run goes on. A token's requests
    and bars, and the run's requests (``request_count`` before and after), are counted even when it
    fails or the run is cancelled.
    """
    req0 = request_count()
    overall = progress.add_task("all tokens", total=len(mints)) if progress is not None else None
    try:
        for done, mint in enumerate(mints, 1):
            report = TokenReport(mint)
            summary.tokens.append(report)
            r0 = request_count()
            try:
                await token_step(report, overall)
            except skip_on as exc:
                report.skipped = str(exc)
                logger.warning("%s: %s skipped: %s", what, mint, exc)
            finally:
                report.requests = request_count() - r0
                summary.bars_written += report.bars
            if progress is not None and overall is not None:
                progress.update(overall, completed=done)
    finally:
        summary.requests = request_count() - req0


class Backfiller:
    """Fetches the missing ranges of each token's main pool, one page per request, and records
    coverage after every page (what makes an interrupted run resumable)."""

    def __init__(
        self, store: Store, source: HistorySource, clock: Clock, request_count: Callable[[], int],
        timeframes: Sequence[Timeframe] = HISTORY_TIMEFRAMES, progress: Progress | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.clock = clock
        self._requests = request_count
        self.timeframes = tuple(timeframes)
        self.progress = progress

    async def run(self, mints: Sequence[str], start: int, end: int,
                  summary: BackfillSummary | None = None) -> BackfillSummary:
        """Backfill ``mints`` over ``[start, end)``, filling ``summary`` as it goes (so a caller
        that is cancelled midway can still report what was stored)."""
        summary = summary if summary is not None else BackfillSummary(self.source.name, start, end)
        summary.source, summary.start, summary.end = self.source.name, start, end
        wall0, clock0 = time.perf_counter(), self.clock.now()
        try:
            await backfill_each_token(
                mints, summary, partial(self._token, start=start, end=end), self._requests, self.progress,
                skip_on=(SourceError,), logger=log, what="backfill")
        finally:
            summary.wall_s = time.perf_counter() - wall0
            summary.clock_s = self.clock.now() - clock0
        return summary

    async def _patiently(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, waiting out a rate limit the HTTP layer's retries could not absorb.

        A batch job shares the provider's per-IP budget with anything else on the machine (a
        running scanner, a previous run a moment ago): a 429 that outlasts the quick retries means
        "wait a window", not "skip the token".
        """
        for round_ in range(RATE_LIMIT_ROUNDS):
            try:
                return await call()
            except RateLimited as exc:
                if round_ == RATE_LIMIT_ROUNDS - 1:
                    raise
                wait = exc.retry_after if exc.retry_after is not None else RATE_LIMIT_PAUSE_S
                log.warning("backfill: %s; pausing %.0f s before trying again", exc, wait)
                await self.clock.sleep(wait)
        raise AssertionError("unreachable")

    async def _pools(self, mint: str) -> list[PoolRef]:
        known = [] if self.source.token_level else await self.store.pools_of(mint)
        if known:
            return [PoolRef(address=p["address"], dex_id=p["dex_id"], base_mint=mint, quote_mint=p["quote_mint"],
                            name="", reserve_usd=p["liquidity_usd"], volume_h24_usd=p["volume_h24_usd"])
                    for p in known]
        pools = [p for p in await self._patiently(partial(self.source.pools, mint)) if p.base_mint == mint]
        now = int(self.clock.now())
        symbol = _symbol_from_pool_name(pools[0].name) if pools else ""
        await self.store.upsert_token(mint, now, symbol=symbol, source=f"backfill:{self.source.name}")
        for p in pools:
            await self.store.upsert_pool(p.address, mint, now, dex_id=p.dex_id, quote_mint=p.quote_mint,
                                         liquidity_usd=p.reserve_usd, volume_h24_usd=p.volume_h24_usd,
                                         pair_created_at=p.created_at)
        return pools

    async def _token(self, report: TokenReport, overall: TaskID | None, *, start: int, end: int) -> None:
        pools = await self._pools(report.mint)
        row = await self.store.token_row(report.mint)
        report.symbol = str(row["symbol"]) if row else ""
        main = pick_main_pool(pools)
        if main is None:
            report.skipped = f"no pools found on {self.source.name}"
            return
        report.pool = main.address
        plan: list[tuple[Timeframe, Interval]] = []
        for tf in self.timeframes:
            covered = await self.store.coverage(main.address, tf)
            for lo, hi in missing_ranges(covered, start, end):
                plan += [(tf, piece) for piece in split_range(lo, hi, tf, self.source.page_bars)]
        report.pieces_total = len(plan)
        task = None
        if self.progress is not None and plan:
            task = self.progress.add_task(report.symbol or report.mint[:10], total=len(plan))
        try:
            for tf, (lo, hi) in plan:
                bars = await self._patiently(partial(self.source.bars, main.address, tf, lo, hi, token=report.mint))
                problem = validate_bars(bars)
                if problem is not None:
                    report.skipped = f"bad data from {self.source.name} for pool {main.address} {tf.label}: {problem}"
                    return
                report.bars += await self.store.upsert_candles(main.address, tf, bars)
                await self.store.add_coverage(main.address, tf, lo, hi)
                report.pieces_done += 1
                if self.progress is not None and task is not None:
                    self.progress.advance(task)
                    if overall is not None:
                        self.progress.advance(overall, 1 / len(plan))
        finally:
            if self.progress is not None and task is not None:
                self.progress.remove_task(task)


def _symbol_from_pool_name(name: str) -> str:
    base = name.split("/")[0].strip()
    return base.removeprefix("$") if base and " " not in base else ""


def make_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(), TextColumn("ETA"),
        TimeRemainingColumn(), console=console, disable=not console.is_terminal, transient=False,
    )


async def import_files(store: Store, directory: Path, now: int,
                       timeframes: Sequence[Timeframe] = HISTORY_TIMEFRAMES) -> BackfillSummary:
    """Import every CSV/Parquet file of ``directory``; a bad file is reported and skipped.

    A pool the store already knows keeps its token; otherwise the pool id stands in for the mint
    (a file names no mint) and the ``symbol`` column, when present, names the token.
    """
    from dexscan.ohlcv_files import ImportedSeries, derive_timeframes, find_ohlcv_files, read_ohlcv_file

    wall0 = time.perf_counter()
    summary = BackfillSummary("files", 0, 0)
    spans: list[Interval] = []
    for path in find_ohlcv_files(directory):
        try:
            series = await asyncio.to_thread(read_ohlcv_file, path)
        except InputError as exc:
            summary.file_errors.append(str(exc))
            log.warning("backfill --from-files: %s", exc)
            continue
        summary.files.append(path.name)
        by_pool: dict[str, list[ImportedSeries]] = {}
        for s in series:
            by_pool.setdefault(s.pool, []).append(s)
        for pool, group in by_pool.items():
            symbol = next((s.symbol for s in group if s.symbol), "")
            existing = await store.pool_row(pool)
            mint = str(existing["mint"]) if existing else pool
            await store.upsert_token(mint, now, symbol=symbol, source=f"file:{path.name}")
            if existing is None:
                await store.upsert_pool(pool, mint, now, dex_id="file")
            report = TokenReport(mint, symbol, pool)
            for tf, bars in derive_timeframes(group).items():
                if tf not in timeframes or not bars:
                    continue
                report.bars += await store.upsert_candles(pool, tf, bars)
                await store.add_coverage(pool, tf, bars[0].ts, bars[-1].ts + int(tf))
                spans.append((bars[0].ts, bars[-1].ts + int(tf)))
            summary.tokens.append(report)
            summary.bars_written += report.bars
    if spans:
        summary.start, summary.end = min(s for s, _ in spans), max(e for _, e in spans)
    summary.wall_s = time.perf_counter() - wall0
    if not summary.files:
        raise InputError(f"--from-files {directory}: no file could be imported; first problem: "
                         f"{summary.file_errors[0]}")
    return summary


def print_summary(summary: BackfillSummary, console: Console, db_path: Path) -> None:
    table = Table(title=f"backfill from {summary.source}", title_justify="left")
    for col in ("token", "pool", "bars written", "requests", "status"):
        table.add_column(col, justify="right" if col in ("bars written", "requests") else "left")
    for t in summary.tokens:
        status = f"skipped: {t.skipped}" if t.skipped else (
            "complete" if t.pieces_done == t.pieces_total else f"{t.pieces_done}/{t.pieces_total} pages")
        table.add_row(t.symbol or t.mint[:12], (t.pool or "–")[:12], str(t.bars), str(t.requests), status)
    console.print(table)
    if summary.end > summary.start:
        console.print(f"range {_utc(summary.start)} → {_utc(summary.end)} UTC")
    clock_note = ""
    if abs(summary.clock_s - summary.wall_s) > 1.0:
        clock_note = f" ({summary.clock_s / 60:.1f} min of simulated time: the real provider's budget)"
    console.print(f"{len(summary.tokens)} tokens, {len(summary.skipped)} skipped, {summary.bars_written} bars "
                  f"written, {summary.requests} requests, {summary.wall_s:.1f} s{clock_note} → {db_path}")
    for err in summary.file_errors:
        console.print(f"[red]skipped file[/red] {err}")


def _utc(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


def _db_path(settings: Settings, args: argparse.Namespace, demo: bool) -> Path:
    if getattr(args, "db", None):
        return Path(args.db).expanduser()
    return demo_db_path(settings) if demo else settings.db_file()


def _from_files_dir(args: argparse.Namespace) -> Path | None:
    return Path(args.from_files).expanduser() if getattr(args, "from_files", None) else None


async def _universe_mints(store: Store) -> list[str]:
    mints = [r["mint"] for r in await store.universe()]
    for m in await store.watched_mints():
        if m not in mints:
            mints.append(m)
    return mints


async def backfill(
    settings: Settings, store: Store, clock: Clock, mints: Sequence[str], days: float, source_name: str,
    console: Console | None = None, summary: BackfillSummary | None = None,
) -> BackfillSummary:
    """Backfill ``mints`` for ``days`` through the real clients (one HTTP layer on ``clock``)."""
    timeframes = [Timeframe.from_label(t) for t in settings.backfill.timeframes]
    start, end = history_range(clock.now(), days)
    console = console or Console(stderr=True)
    async with HttpLayer(settings, clock) as http:
        source = make_source(source_name, settings, http)
        with make_progress(console) as progress:
            runner = Backfiller(store, source, clock, lambda: http.stats()[source.name].requests, timeframes, progress)
            return await runner.run(mints, start, end, summary)


async def backfill_from_chain(settings: Settings, store: Store, clock: Clock, mints: Sequence[str], days: float,
                              console: Console | None = None, summary: BackfillSummary | None = None
                              ) -> BackfillSummary:
    """``--source chain``: 1m and 5m bars from the pools' transactions (:mod:`dexscan.chain.history`)."""
    from dexscan.chain.history import CHAIN, chain_backfill, describe_counts

    start, end = history_range(clock.now(), days)
    summary = summary if summary is not None else BackfillSummary(CHAIN, start, end)
    wall0, clock0 = time.perf_counter(), clock.now()
    console = console or Console(stderr=True)
    try:
        with make_progress(console) as progress:
            summary, runner = await chain_backfill(settings, store, clock, mints, start, end, progress, summary)
        console.print(describe_counts(runner.counts.values()))
    finally:
        summary.wall_s = time.perf_counter() - wall0
        summary.clock_s = clock.now() - clock0
    return summary


async def _demo_backfill(settings: Settings, store: Store, demo: DemoLauncher, tokens: Sequence[str] | None,
                         days: float, console: Console, summary: BackfillSummary,
                         source_name: str = GECKOTERMINAL) -> BackfillSummary:
    """Backfill the demo world's simulated market (its history up to the live period) through the
    real GeckoTerminal client and the loopback fake.

    The demo world's clock follows the loop's, which the CLI makes a virtual-time loop for
    ``backfill --demo``: simulated time moves only while the client waits for its budget, so the
    run costs no real waiting and its ``clock_s`` is the time the same requests take against the
    real GeckoTerminal within its documented budget.
    """
    chain = source_name == "chain"
    async with demo.world(settings, history_days=days, at_history_end=True, chain_history=chain) as world:
        mints = list(tokens or world.tokens)
        if chain:
            return await backfill_from_chain(world.settings, store, world.clock, mints, days, console, summary)
        return await backfill(world.settings, store, world.clock, mints, days, GECKOTERMINAL, console, summary)


async def run_backfill(settings: Settings, args: argparse.Namespace, demo: DemoLauncher | None = None) -> int:
    """``dexscan backfill``: exit 0 when every token is complete, 1 when some were skipped."""
    days = float(getattr(args, "days", None) or settings.backfill.days)
    source_name = getattr(args, "source", None) or settings.backfill.source
    use_demo = bool(getattr(args, "demo", False))
    if use_demo and demo is None:
        raise ConfigError("backfill --demo: no demo world was handed over (run it as `dexscan backfill --demo`)")
    db_path = _db_path(settings, args, use_demo)
    from_files = _from_files_dir(args)
    console = Console()
    partial = BackfillSummary(source_name, 0, 0)
    store = await Store.open(db_path, LockWait.of(settings))
    try:
        if from_files is not None:
            summary = await import_files(store, from_files, int(time.time()),
                                         [Timeframe.from_label(t) for t in settings.backfill.timeframes])
        elif use_demo:
            assert demo is not None
            summary = await _demo_backfill(settings, store, demo, args.tokens, days, console, partial,
                                           source_name if source_name == "chain" else GECKOTERMINAL)
        else:
            mints = list(args.tokens or await _universe_mints(store))
            if not mints:
                raise InputError("no tokens to backfill: pass --tokens MINT..., run `dexscan scan` first to build "
                                 "the universe, or try `dexscan backfill --demo`")
            if source_name == "chain":
                summary = await backfill_from_chain(settings, store, RealClock(), mints, days, summary=partial)
            else:
                summary = await backfill(settings, store, RealClock(), mints, days, source_name, summary=partial)
    except (asyncio.CancelledError, KeyboardInterrupt):
        console.print(f"interrupted after {partial.requests} requests; {partial.bars_written} bars of "
                      f"{len(partial.tokens)} token(s) are stored. Run the same command again: it fetches only "
                      "what is missing.")
        raise
    finally:
        await store.close()
    print_summary(summary, console, db_path)
    if use_demo and not getattr(args, "db", None):
        console.print(f"evaluate it with: dexscan evaluate --db {db_path}")
    return 1 if summary.skipped or summary.file_errors else 0
