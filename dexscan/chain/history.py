"""``dexscan backfill --source chain``: a pool's 1m and 5m bars built from its own transactions.

For when no OHLCV provider is reachable. Per token: its main pool (the stored pools, else
DexScreener's list, by :func:`dexscan.domain.main_pool`), then

1. ``getSignaturesForAddress(pool, before=…, limit=1000)``, paged newest first back to the start
   of the wanted range; failed transactions (``err`` non-null) are skipped and counted;
2. ``getTransaction`` of each (json, up to version 0), oldest first, through the RPC pool and its
   budgets (the run's pace is the endpoints' ``getTransaction`` budget: one request per swap);
3. the swaps of the pool decoded (:func:`dexscan.chain.events.decode_transaction`) and turned into
   trades (:func:`dexscan.chain.trades.to_trade`), which fill a :class:`dexscan.trade_bars.TradeBook`:
   the live scanner's 1m bars from trades (gaps are empty bars at the previous close); the 5m bars
   are those 1m bars aggregated (:func:`dexscan.backfill.resample`: a 5m window before the first
   traded minute is not claimed).

USD: bars are in USD like every stored bar. A USD-stablecoin quote is worth 1 USD; a SOL quote is
converted at **the SOL/USD price of the run's start** (Jupiter Price v3, one request): historical
SOL/USD is not read, so the bars' USD levels carry SOL's move since then (their shape, in SOL, is
exact). A pool quoted in anything else is skipped.

Resumable and idempotent: the range is cut at 4H boundaries; after each 4H window's transactions
its bars and coverage are stored (``upsert_candles`` + ``add_coverage``), so an interrupted run
loses at most one window, a rerun fetches only what coverage lacks, and a rerun over the same
span stores the same bars (a resumed window opens at the stored previous 1m close).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.progress import Progress

from dexscan.backfill import BackfillSummary, TokenReport, backfill_each_token, missing_ranges, resample
from dexscan.chain.events import Swap, decode_transaction
from dexscan.chain.trades import KNOWN_DECIMALS, PoolMints, SolUsd, Trade, to_trade
from dexscan.domain import SOL_MINT, USD_STABLECOINS, Candle, Timeframe, main_pool
from dexscan.errors import ConfigError, InputError, RpcError, SourceError
from dexscan.market import M1
from dexscan.trade_bars import TradeBook

if TYPE_CHECKING:
    from dexscan.chain.rpc import RpcPool
    from dexscan.clock import Clock
    from dexscan.config import Settings
    from dexscan.store import Store

log = logging.getLogger(__name__)

CHAIN = "chain"
#: ``getSignaturesForAddress`` page size (the node's maximum).
SIGNATURE_PAGE = 1000
#: The bars a chain backfill stores.
CHAIN_TIMEFRAMES: tuple[Timeframe, ...] = (Timeframe.M1, Timeframe.M5)
#: Bars are stored (with their coverage) after each window of this length.
WINDOW_S = int(Timeframe.H4)
NO_RPC = ("backfill --source chain needs a Solana RPC endpoint: set DEXSCAN_RPC_URLS (or rpc.endpoints in "
          "the config file); a free keyed provider tier works; or try `dexscan backfill --demo --source chain`")


@dataclass
class ChainCounts:
    """What the chain said, per token."""

    signatures: int = 0
    failed: int = 0
    transactions: int = 0
    not_found: int = 0
    trades: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


def describe_counts(counts: Iterable[ChainCounts]) -> str:
    """One line of what the chain said over a run (transactions, failed ones skipped, trades)."""
    c = ChainCounts()
    for one in counts:
        c.signatures += one.signatures
        c.failed += one.failed
        c.transactions += one.transactions
        c.not_found += one.not_found
        c.trades += one.trades
        c.rejected.update(one.rejected)
    rejected = ", ".join(f"{why} {n}" for why, n in sorted(c.rejected.items()))
    return (f"chain: {c.signatures} transactions listed, {c.failed} failed (skipped), {c.transactions} fetched"
            f"{f', {c.not_found} not found' if c.not_found else ''}, {c.trades} swaps of the pools"
            f"{f'; not used: {rejected}' if rejected else ''}")


def bars_of_window(book: TradeBook, lo: int, hi: int) -> tuple[list[Candle], list[Candle]]:
    """The completed 1m bars of ``[lo, hi)`` in ``book`` (minutes after its last trade flat at the
    last close, as gaps are) and the 5m bars they make up."""
    book.close_until(hi)
    last = book.m1.last
    if last is not None and last.ts < hi - M1:
        book.m1.push(Candle(hi - M1, last.close, last.close, last.close, last.close, 0.0))
    m1 = [c for c in book.m1.bars if lo <= c.ts < hi]
    return m1, resample(m1, Timeframe.M1, Timeframe.M5)


class ChainBackfill:
    """One run: tokens' main pools, their swaps in ``[start, end)``, bars stored window by window."""

    def __init__(self, store: Store, rpc: RpcPool, settings: Settings, clock: Clock, dexscreener: Any = None,
                 jupiter: Any = None, progress: Progress | None = None) -> None:
        from dexscan.chain.mint import MintInspector

        self.store = store
        self.rpc = rpc
        self.clock = clock
        self.dexscreener = dexscreener
        self.jupiter = jupiter
        self.progress = progress
        self.inspector = MintInspector(rpc, settings, clock, store)
        self.sol = SolUsd(max_age_s=float("inf"))
        self.counts: dict[str, ChainCounts] = {}

    def _requests(self) -> int:
        return sum(s.requests for s in self.rpc.state())

    async def run(self, mints: Sequence[str], start: int, end: int, summary: BackfillSummary) -> BackfillSummary:
        summary.source, summary.start, summary.end = CHAIN, start, end
        await backfill_each_token(mints, summary, lambda report, _overall: self._token(report, start, end),
                                  self._requests, self.progress, skip_on=(SourceError, RpcError), logger=log,
                                  what="backfill --source chain")
        return summary

    async def _main_pool(self, mint: str) -> tuple[str, str] | None:
        """(pool, quote mint) of the token's main pool: stored, else DexScreener's (then stored)."""
        from dexscan.backfill import pick_main_pool
        from dexscan.domain import PoolRef

        known = await self.store.pools_of(mint)
        refs = [PoolRef(address=p["address"], dex_id=p["dex_id"], base_mint=mint, quote_mint=p["quote_mint"],
                        name="", reserve_usd=p["liquidity_usd"]) for p in known]
        main = pick_main_pool(refs)
        if main is not None:
            return main.address, main.quote_mint
        if self.dexscreener is None:
            return None
        pairs = await self.dexscreener.token_pairs(mint)
        pair = main_pool(pairs, mint)
        if pair is None:
            return None
        now = int(self.clock.now())
        await self.store.upsert_token(mint, now, symbol=pair.base_symbol or "", source=f"backfill:{CHAIN}")
        await self.store.upsert_pool(pair.pair_address, mint, now, dex_id=pair.dex_id, quote_mint=pair.quote_mint,
                                     liquidity_usd=pair.liquidity_usd)
        return pair.pair_address, pair.quote_mint

    async def _quote_usd(self, quote_mint: str) -> float | None:
        if quote_mint == SOL_MINT and self.sol.price is None and self.jupiter is not None:
            quotes = await self.jupiter.prices([SOL_MINT])
            q = quotes.get(SOL_MINT)
            if q is not None:
                self.sol.observe(self.clock.now(), q.usd_price, "jupiter")
        return self.sol.quote_usd(quote_mint, self.clock.now())

    async def _token(self, report: TokenReport, start: int, end: int) -> None:
        found = await self._main_pool(report.mint)
        row = await self.store.token_row(report.mint)
        report.symbol = str(row["symbol"]) if row and row["symbol"] else ""
        if found is None:
            report.skipped = "no main pool (SOL or USD-stablecoin quoted) found for it"
            return
        pool, quote_mint = found
        report.pool = pool
        if quote_mint not in USD_STABLECOINS and quote_mint != SOL_MINT:
            report.skipped = f"its main pool is quoted in {quote_mint}: only SOL and USD stablecoins convert to USD"
            return
        lo_hi = [r for tf in CHAIN_TIMEFRAMES for r in missing_ranges(await self.store.coverage(pool, tf), start, end)]
        if not lo_hi:
            return
        lo, hi = min(r[0] for r in lo_hi), max(r[1] for r in lo_hi)
        quote_usd = await self._quote_usd(quote_mint)
        if quote_usd is None:
            report.skipped = "SOL/USD unavailable (Jupiter Price v3 did not answer): bars cannot be priced in USD"
            return
        facts = (await self.inspector.inspect([report.mint], holders=False)).get(report.mint)
        if facts is None or facts.read_error or facts.decimals is None:
            report.skipped = f"the mint account could not be read ({facts.read_error if facts else 'no answer'})"
            return
        pool_mints = PoolMints.of(pool, "", report.mint, quote_mint, facts.decimals, KNOWN_DECIMALS[quote_mint])
        counts = self.counts.setdefault(report.mint, ChainCounts())
        signatures = await self._signatures(pool, lo, hi, counts, report.symbol or report.mint[:10])
        windows = [(w, min(w + WINDOW_S, hi)) for w in range(lo, hi, WINDOW_S)]
        report.pieces_total = len(windows)
        book = TradeBook(m1_capacity=2 * WINDOW_S // M1 + 2)
        before = await self.store.candles(pool, Timeframe.M1, lo - M1, lo)
        if before:  # a resumed range opens at the stored close, as one run would have
            book.m1.push(before[-1])
        task = None
        if self.progress is not None:
            task = self.progress.add_task(f"{report.symbol or report.mint[:10]} tx", total=len(signatures))
        try:
            pending = iter(signatures)
            nxt = next(pending, None)
            for w_lo, w_hi in windows:
                while nxt is not None and nxt[1] < w_hi:
                    for trade in await self._trades(nxt[0], pool_mints, quote_usd, counts):
                        assert trade.price_usd is not None and trade.volume_usd is not None
                        book.add(trade.block_time, trade.price_usd, trade.volume_usd, trade.side, trade.signer)
                    if self.progress is not None and task is not None:
                        self.progress.advance(task)
                    nxt = next(pending, None)
                m1, m5 = bars_of_window(book, w_lo, w_hi)
                report.bars += await self.store.upsert_candles(pool, Timeframe.M1, m1)
                report.bars += await self.store.upsert_candles(pool, Timeframe.M5, m5)
                for tf in CHAIN_TIMEFRAMES:
                    await self.store.add_coverage(pool, tf, w_lo, w_hi)
                report.pieces_done += 1
        finally:
            if self.progress is not None and task is not None:
                self.progress.remove_task(task)

    async def _signatures(self, pool: str, lo: int, hi: int, counts: ChainCounts, label: str) -> list[tuple[str, int]]:
        """(signature, block time) of the pool's successful transactions in ``[lo, hi)``, oldest first."""
        from solders.pubkey import Pubkey

        address = Pubkey.from_string(pool)
        out: list[tuple[str, int]] = []
        before: str | None = None
        task = self.progress.add_task(f"{label} sigs", total=None) if self.progress is not None else None
        try:
            while True:
                rows = (await self.rpc.get_signatures_for_address(address, limit=SIGNATURE_PAGE, before=before)).value
                done = len(rows) < SIGNATURE_PAGE
                for r in rows:
                    if r.block_time is not None and r.block_time < lo:
                        done = True
                        break
                    if r.block_time is None or r.block_time >= hi:
                        continue
                    counts.signatures += 1
                    if r.failed:
                        counts.failed += 1
                        continue
                    out.append((r.signature, r.block_time))
                if self.progress is not None and task is not None:
                    self.progress.update(task, completed=counts.signatures)
                if done or not rows:
                    break
                before = rows[-1].signature
        finally:
            if self.progress is not None and task is not None:
                self.progress.remove_task(task)
        out.reverse()
        return out

    async def _trades(self, signature: str, pool: PoolMints, quote_usd: float, counts: ChainCounts) -> list[Trade]:
        tx = (await self.rpc.get_transaction(signature)).value
        if tx is None:
            counts.not_found += 1
            return []
        counts.transactions += 1
        decoded = decode_transaction(tx)
        for r in decoded.rejections:
            counts.rejected[r.reason] += 1
        out: list[Trade] = []
        for ev in decoded.events:
            if not isinstance(ev, Swap) or (ev.pool is not None and ev.pool != pool.pool):
                continue
            got = to_trade(ev if ev.pool is not None else _with_pool(ev, pool.pool), pool, quote_usd)
            if isinstance(got, str):
                counts.rejected[got] += 1
                continue
            counts.trades += 1
            out.append(got)
        return out


def _with_pool(swap: Swap, pool: str) -> Swap:
    from dataclasses import replace

    return replace(swap, pool=pool)


async def chain_backfill(settings: Settings, store: Store, clock: Clock, mints: Sequence[str], start: int, end: int,
                         progress: Progress | None, summary: BackfillSummary) -> tuple[BackfillSummary, ChainBackfill]:
    """Backfill ``mints`` over ``[start, end)`` from the chain (see the module docstring)."""
    from dexscan.chain.rpc import RpcPool
    from dexscan.sources import HttpLayer
    from dexscan.sources.dexscreener import DexScreenerClient
    from dexscan.sources.jupiter import JupiterClient

    try:
        rpc = RpcPool.from_settings(settings, clock)
    except ConfigError as exc:
        raise InputError(NO_RPC) from exc
    async with rpc, HttpLayer(settings, clock) as http:
        dexscreener = DexScreenerClient(http, settings) if settings.sources.dexscreener.enabled else None
        runner = ChainBackfill(store, rpc, settings, clock, dexscreener, JupiterClient(http, settings), progress)
        try:
            await runner.run(mints, start, end, summary)
        finally:
            log.info("backfill --source chain: %s", describe_counts(runner.counts.values()))
        return summary, runner
