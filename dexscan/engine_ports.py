"""The roles the :class:`~dexscan.engine.Engine` works with, as Protocols: what it asks of each
collaborator, and nothing more. :mod:`dexscan.scan_command` wires the real ones (the store, the
HTTP layer and its clients, the RPC pool, the universe, the detector, the chain feed, the local
API); a test may hand the engine anything that plays the role.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from dexscan.domain import Candle, DiscoveredToken, GateVerdict, Outcome, PairSnapshot, Signal, Timeframe

if TYPE_CHECKING:
    from dexscan.chain.events.model import Event
    from dexscan.chain.feed import FeedStatus
    from dexscan.chain.rpc import EndpointState
    from dexscan.chain.trades import Trade
    from dexscan.detector import CandleState
    from dexscan.domain_events import DomainEvent
    from dexscan.market import Tick, TokenMarket
    from dexscan.scoring import MarketContext, Scorer
    from dexscan.sources.http import ProviderStats
    from dexscan.universe import RefreshReport, UniverseStore
    from dexscan.universe_book import MembershipChange


class TrackedToken(Protocol):
    """A token the engine polls (the engine's :class:`~dexscan.engine.TokenView`), as its
    collaborators read and advance it."""

    mint: str
    symbol: str
    pool: str | None  # the main pool: its snapshots (or trades) drive the detector, its bars are stored
    history_done: bool
    last_bar_stored: int


class CandleStore(Protocol):
    """Stored bars (the history loop has its own connection to the same database)."""

    async def candles(self, pool: str, tf: Timeframe, start: int | None = None, end: int | None = None
                      ) -> list[Candle]: ...

    async def upsert_candles(self, pool: str, tf: Timeframe, candles: Iterable[Candle]) -> int: ...


class SignalStore(CandleStore, Protocol):
    """The database behind the pipeline (:class:`dexscan.store.Store`): signals, outcomes and their
    outbox rows, bars, pools, candle states, the trade tape."""

    async def signals(self, since: int | None = None, strategy: str | None = None, status: str | None = None,
                      mint: str | None = None, limit: int | None = None
                      ) -> list[tuple[int, Signal, Outcome | None]]: ...

    async def candle_signals(self, mint: str, h4_ts: int) -> list[tuple[int, Signal]]: ...

    async def save_signal(self, sig: Signal, chat_ids: Sequence[int] = (), payload: str = "",
                          now: int | None = None, kind: str = "signal") -> tuple[int, bool]: ...

    async def save_outcome(self, signal_id: int, outcome: Outcome, now: int, chat_ids: Sequence[int] = (),
                           payload: str = "") -> None: ...

    async def upsert_pool(self, address: str, mint: str, now: int, dex_id: str = "", quote_mint: str = "",
                          quote_symbol: str = "", liquidity_usd: float | None = None,
                          volume_h24_usd: float | None = None, pair_created_at: int | None = None) -> None: ...

    async def save_candle_state(self, mint: str, candle_ts: int, state: str, ignited_at: int | None,
                                confirmed_at: int | None) -> None: ...

    async def latest_verdicts(self, mint: str) -> list[GateVerdict]: ...

    async def save_trades(self, trades: Iterable[Trade]) -> int: ...

    async def prune_trades(self, before: int) -> int: ...

    async def kv_set(self, key: str, value: str) -> None: ...

    async def outbox_rows(self, chat_id: int | None = None, state: str | None = None) -> list[dict[str, Any]]: ...


class SignalDetector(Protocol):
    """The detector (:class:`dexscan.detector.Detector`): per-token books, strategies, scoring."""

    late_trades: int  # trades older than the 5m bar being built: counted, not judged
    rejected_trades: int  # trades with an impossible price or volume

    @property
    def scorer(self) -> Scorer: ...

    def register(self, mint: str, symbol: str = "", pool: str | None = None) -> None: ...

    def drop(self, mint: str) -> None: ...

    def market(self, mint: str) -> TokenMarket | None: ...

    def candle_state(self, mint: str) -> CandleState | None: ...

    def warming_up(self, mint: str) -> int: ...

    def restore_ignition(self, mint: str, candle_ts: int, ignited_at: int, price: float) -> None: ...

    def bootstrap(self, mint: str, tf: Timeframe, candles: Iterable[Candle], symbol: str = "",
                  pool: str | None = None, as_of: int | None = None) -> None: ...

    def on_tick(self, mint: str, tick: Tick, ctx: MarketContext | None = None) -> list[Signal]: ...

    def on_trade(self, mint: str, ts: int, price: float, volume: float, side: str, signer: str | None = None,
                 ctx: MarketContext | None = None) -> list[Signal]: ...

    def advance(self, mint: str, ts: int, ctx: MarketContext | None = None) -> list[Signal]: ...

    def drain_state_changes(self) -> list[CandleState]: ...


class MemberBook(Protocol):
    def members(self) -> list[str]: ...


class ScannedUniverse(Protocol):
    """The gated universe (:class:`dexscan.universe.Universe`): discovery rounds, on-demand rounds,
    the sustained-exit rule on live snapshots, and what it knows of each token's pools."""

    @property
    def store(self) -> UniverseStore | None: ...

    @property
    def book(self) -> MemberBook: ...

    async def load(self, now: int | None = None) -> int: ...

    async def refresh(self, watch: Sequence[str] = (), now: int | None = None, discover: bool = True
                      ) -> RefreshReport: ...

    async def watch_now(self, mints: Sequence[str], now: int | None = None) -> RefreshReport: ...

    async def discovered_now(self, tokens: Sequence[DiscoveredToken], limit: int, now: int | None = None
                             ) -> RefreshReport: ...

    async def check(self, mints: Sequence[str], now: int | None = None) -> dict[str, list[GateVerdict]]: ...

    async def observe(self, pairs: Sequence[PairSnapshot], now: int | None = None) -> list[MembershipChange]: ...

    def pairs(self, mint: str) -> list[PairSnapshot]: ...

    def main_pool(self, mint: str) -> PairSnapshot | None: ...

    def recheck(self, mint: str, now: int) -> None: ...

    def symbol(self, mint: str) -> str: ...


class LivePairs(Protocol):
    """DexScreener's live snapshots (:class:`dexscan.sources.dexscreener.DexScreenerClient`)."""

    async def pairs_for_tokens(self, mints: Sequence[str]) -> list[PairSnapshot]: ...

    async def pairs(self, pair_addresses: Sequence[str]) -> list[PairSnapshot]: ...


class HistoryBars(Protocol):
    """GeckoTerminal's OHLCV (:class:`dexscan.sources.geckoterminal.GeckoTerminalClient`)."""

    async def ohlcv_range(self, pool: str, tf: Timeframe, start: int, end: int,
                          include_empty: bool = True, token: str | None = None) -> list[Candle]: ...


class MarketClients(Protocol):
    """The client bundle (:func:`dexscan.sources.build_clients`)."""

    @property
    def dexscreener(self) -> LivePairs: ...

    @property
    def geckoterminal(self) -> HistoryBars: ...

    @property
    def jupiter(self) -> object: ...  # handed to the chain feed for SOL/USD

    @property
    def birdeye(self) -> object | None: ...  # shown in the status only when configured


class HttpStats(Protocol):
    """The HTTP layer's per-provider counters (:class:`dexscan.sources.http.HttpLayer`)."""

    def stats(self) -> dict[str, ProviderStats]: ...


class RpcEndpoints(Protocol):
    """The RPC pool (:class:`dexscan.chain.rpc.RpcPool`), as the status shows it and the feed's gap
    fill uses it."""

    @property
    def last_endpoint(self) -> str | None: ...

    def state(self) -> list[EndpointState]: ...


class TradeFeed(Protocol):
    """The on-chain trade stream (:class:`dexscan.chain.feed.ChainFeed`)."""

    @property
    def pool_of(self) -> Mapping[str, str]: ...

    @property
    def counts(self) -> Mapping[str, int]: ...

    async def run(self) -> None: ...

    async def sol_usd_loop(self, jupiter: object) -> None: ...

    def remember(self, keys: Iterable[tuple[str, int]]) -> None: ...

    async def watch(self, mint: str, pair: PairSnapshot) -> bool: ...

    async def unwatch(self, mint: str) -> None: ...

    def streaming(self, mint: str) -> bool: ...

    def up(self) -> bool: ...

    def reconnected(self) -> bool: ...

    async def next_events(self) -> list[Event]: ...

    def trades(self, events: Sequence[Event]) -> list[Trade]: ...

    def discoveries(self, events: Sequence[Event]) -> list[DiscoveredToken]: ...

    async def fill_gaps(self, rpc: RpcEndpoints, max_transactions: int) -> list[Trade]: ...

    async def fetch_loop(self, rpc: RpcEndpoints) -> None: ...

    def status(self) -> FeedStatus: ...


class EventSink(Protocol):
    """Where the engine's domain events go: the ``--json``/text writer on stdout
    (:mod:`dexscan.output`)."""

    def write(self, event: DomainEvent) -> None: ...


class EventService(Protocol):
    """The local API (:class:`dexscan.service.Service`): ``/ws`` subscribers and the detection
    latency histogram."""

    def publish_event(self, event: DomainEvent) -> int: ...

    def observe_detection_latency(self, seconds: float) -> None: ...
