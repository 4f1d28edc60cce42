"""Loopback fakes of Jupiter, DexScreener, GeckoTerminal and Birdeye, serving a ``MarketSim``.

Each provider is its own aiohttp app on its own 127.0.0.1 ephemeral port and speaks the contract
of ``reference/external-apis.md``: paths, parameters, response shapes, numbers-as-strings where the
real API sends strings, its error bodies and its rate limits (sliding windows measured on the same
:class:`~dexscan.clock.Clock` as the simulated market, so a fast ``SimClock`` runs the demo and a
``SimClock(speed=0)`` makes limit tests exact). Fault switches reproduce what goes wrong in the
wild (bursts of 5xx/429, stalls, resets, HTML pages, truncated JSON, one poisoned record, outages)
so the clients' tolerance is tested over real HTTP, not with mocks.

Real behaviours modelled by default (``reference/external-apis.md``):

* DexScreener ``/tokens/v1/{chain}/{addresses}`` answers ONE pair per token, DexScreener's pick of its
  main pair (§3.2); the fake picks the deepest pool where the token is base, any quote, a bonding curve
  only while it has nothing else — so the pick moves when a token migrates. ``/token-pairs/v1`` and
  ``/latest/dex/tokens`` list every pool, including pools where the token is the quote (§3.2).
* A pump.fun bonding curve is a pair with ``dexId`` ``pumpfun`` and ``liquidity: null`` (§3.2–3.3).
* Pools quoted in USD1 report ``liquidity.usd`` (a USD stablecoin) but no ``pairCreatedAt`` (§3.2:
  the pick "may be quoted in USD1 ... and may lack pairCreatedAt"); pools quoted in another token
  report no ``liquidity.usd`` nor ``marketCap`` (§3.3: ``usd`` may be absent).
* GeckoTerminal lists a pool of two simulated tokens in the other base/quote order (§4.2, §7) and
  honours ``token=base|quote|<address>`` on OHLCV (§4.2).
* Cloudflare block pages (HTTP 403, "Error 1020") as the ``cloudflare`` fault (§3.1: over-limit and
  error bodies may be Cloudflare pages); DexScreener's 429 is Cloudflare's 1015 page.

"Another host" for the ``redirect`` fault is a fifth server, :attr:`MarketFakes.elsewhere` (an
:class:`~dexscan.demo.servers.elsewhere.ElsewhereHost`, as the Telegram fake's): its own port, addressed as
``localhost`` (not 127.0.0.1), so it differs from every provider fake in host *and* port. It records every
request it gets, headers and query included (``elsewhere.requests``), and answers 404: a
test sees exactly what a client would have handed to a stranger.

Layout: :mod:`.common` (the request pipeline every provider shares), :mod:`.faults` (fault switches, the
mutations they apply and the oversized/gzip-bomb answer writer the RPC fake shares), :mod:`.providers` (names,
limits, hosts), and one module of routes per provider (:mod:`.jupiter`, :mod:`.dexscreener`,
:mod:`.geckoterminal`, :mod:`.birdeye`: each handler says its path with :func:`.common.serves`), joined in
:class:`MarketFakes`.
"""

from __future__ import annotations

from dexscan.demo.servers.market.birdeye import BirdeyeRoutes
from dexscan.demo.servers.market.common import FakeStats, RequestRecord
from dexscan.demo.servers.market.dexscreener import DexScreenerRoutes
from dexscan.demo.servers.market.faults import (
    FAULT_KINDS,
    GZIP_BOMB_BYTES,
    HUGE_ID,
    LONG_PAIR_ADDRESS,
    MISALIGNED_BY_S,
    OVERSIZED_BYTES,
    FaultKind,
    FaultSwitches,
    gzip_bomb,
    stream_huge_answer,
)
from dexscan.demo.servers.market.geckoterminal import GeckoTerminalRoutes
from dexscan.demo.servers.market.jupiter import JupiterRoutes
from dexscan.demo.servers.market.providers import DEFAULT_LIMITS, PROVIDERS

__all__ = [
    "DEFAULT_LIMITS", "FAULT_KINDS", "GZIP_BOMB_BYTES", "HUGE_ID", "LONG_PAIR_ADDRESS", "MISALIGNED_BY_S",
    "OVERSIZED_BYTES", "PROVIDERS", "FakeStats", "FaultKind", "FaultSwitches", "MarketFakes", "RequestRecord",
    "gzip_bomb", "stream_huge_answer",
]


class MarketFakes(JupiterRoutes, DexScreenerRoutes, GeckoTerminalRoutes, BirdeyeRoutes):
    """The four market-data fakes, started and stopped together (an async context manager)."""
