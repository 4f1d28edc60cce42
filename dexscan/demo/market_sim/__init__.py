"""A seedable simulated Solana DEX market with planted events whose ground truth is exact.

The demo scanner, the loopback fakes of the market-data providers and the backfill/evaluation tests
all read this one model, so a number a test asserts is the number the demo shows. It is pure: no
I/O, no wall clock (every query takes its time as an argument), and deterministic in ``seed``.

How the path is built, and why it makes the ground truth exact:

* Each token has one USD price path shared by all of its pools (perfect arbitrage); pools differ in
  volume share, liquidity and quote. Time is cut into UTC 4H candles. A per-token *anchor chain*
  fixes the log price at every 4H boundary; an ordinary candle's change is fat-tailed (Student t,
  σ 2.5–8% by token), reflected below a +8.9% cap and never under -26%: slow grinds and bleeds
  happen, but no ordinary 4H candle can close +10% above its open. Planted pumps and fizzles set their candle's close
  themselves, and the two candles after a pump fade by 1–15% each.
* Inside a candle, 1-minute bars follow a Brownian bridge between the two anchors, regenerated on
  demand from an RNG seeded by (seed, token, candle): random access, no hidden state, and an LRU
  keeps memory bounded for thousands of tokens.
* 5-minute volume is ``baseline × U(0.7, 1.35)``, the baseline moves at most 7.5% per candle, and
  at most one 5m bar in each aligned group of 12 is empty: an ordinary bar never exceeds ~2.5× the
  mean of the 20 bars before it. On top, 24–80% (by token) of the bars a token could spike on get a
  sell-side volume spike of 2.6–25× (:meth:`MarketSim._add_spikes`): only on a down bar closing in the lower
  half of its range, whose highs and the next bar's stay below +1.5% over the 4H open. So volume
  spikes are common, as in real pools, yet the ignition rule (SPEC §5) can only hold where an
  event was planted, even on a rolling 5-minute window.
* An ignition bar closes +2.6–14.6% over the 4H open on 3.7–80× the exact mean of the 20 bars before
  it (spikes included), in one of three shapes (a ramp, a jump in its first minute, the volume
  arriving late), and the candle before it stays below +1% (highs included). A pump then spikes
  and holds, climbs in steps or grinds to a late peak, and closes +10.5% to +60%; a fizzle fades,
  pops to +9–25% and reverses (past a first target and back), or dumps right after igniting.
* Quiet minutes are real: zero volume and O=H=L=C=previous close, exactly.

Tokens are sized like the gate-passing pools of real GeckoTerminal snapshots (main-pool liquidity
log-normal around $200k, from $75k; a day's volume 0.4–12× the liquidity, at least $160k) and carry made-up names;
thin tokens fail the liquidity gate, the volume gate or both. ``scripts/bench_demo_realism.py``
compares the simulated distributions with the real candles in ``data/``.

Pools change as real ones do (``reference/external-apis.md`` §3.2–3.3): some secondary pools are
quoted in USD1 (a USD stablecoin) and three in another simulated token; and one young token
(``SimConfig.migration``) starts on a pump.fun bonding curve (``SimToken.curve``: DexScreener's
``dexId`` ``pumpfun``, no pool liquidity) and migrates to its PumpSwap main pool one 4H candle into the
live period, at a 4H boundary; its pools open then, and a pump is planted in the candle after the
migration. The curve trades the token's whole volume until the migration and none after it. The
guarantees above hold for it too (its pump's warm-up bars are counted on the new pool).
Layout: :mod:`.model` (config, tokens, pools, planted events, stats), :mod:`.universe` (building the
tokens and pools from the seed, lookups: the state every layer shares), :mod:`.schedule` (planted events),
:mod:`.paths` (anchor chain, minute paths), :mod:`.bars`, :mod:`.queries` (point-in-time stats) and
:mod:`.feeds` (discovery feeds, pool launches, swaps), joined in :class:`MarketSim`.
"""

from __future__ import annotations

from dexscan.demo.market_sim.feeds import DiscoveryFeeds
from dexscan.demo.market_sim.model import (
    BONDING_CURVE_DEX,
    CANDLE_S,
    SOL_USD,
    USDC_USD,
    PlantedEvent,
    PoolStats,
    SimBoost,
    SimConfig,
    SimPool,
    SimSwapStats,
    SimToken,
    SimTokenInfo,
    WindowStats,
)
from dexscan.demo.market_sim.queries import PointQueries

__all__ = [
    "BONDING_CURVE_DEX", "CANDLE_S", "SOL_USD", "USDC_USD", "MarketSim", "PlantedEvent", "PoolStats", "SimBoost",
    "SimConfig", "SimPool", "SimSwapStats", "SimToken", "SimTokenInfo", "WindowStats",
]


class MarketSim(PointQueries, DiscoveryFeeds):
    """The simulated market; see the module docstring for how ground truth is guaranteed."""
