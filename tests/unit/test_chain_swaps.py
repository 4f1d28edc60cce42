"""The demo's swaps encoded with the real layouts decode back to the trades they stand for.

Each simulated swap goes through the same path as a mainnet one: log lines -> ``logsNotification``
-> :func:`decode_notification` -> :func:`to_trade` with the pool's mints as the scanner knows them
(quote in SOL at 150 USD, or USDC); the trade's side, amounts and prices are the raw amounts the
encoder wrote, with decimals applied.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from dexscan.chain.events import decode_notification
from dexscan.chain.trades import PoolMints, Trade, to_trade
from dexscan.demo.chain_swaps import SimSwap, minute_swaps, raw_amounts, swap_logs
from dexscan.domain import SOL_MINT, USDC_MINT, Candle

MINT = "FURb99Ujvu1XcjYiLQgEfotrsAEb871rgLZvyL3fhfKp"  # > SOL, < USDC by bytes
POOL = "94KAY4LgDHjFggk4hL1QQZ4fMdfvQDsbdRk35iq1HJ9T"
PROGRAMS = {("raydium", ("CPMM",)): "raydium_cpmm", ("raydium", ("CLMM",)): "raydium_clmm",
            ("orca", ()): "orca_whirlpool", ("pumpswap", ()): "pumpswap"}


def note(logs: list[str], sig: str = "sig", slot: int = 9) -> dict[str, object]:
    return {"jsonrpc": "2.0", "method": "logsNotification", "params": {"result": {
        "context": {"slot": slot}, "value": {"signature": sig, "err": None, "logs": logs}}, "subscription": 1}}


@pytest.mark.parametrize(("dex", "labels"), sorted(PROGRAMS))
@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize(("quote", "quote_usd", "qd"), [(SOL_MINT, 150.0, 9), (USDC_MINT, 1.0, 6)])
def test_every_encoded_swap_decodes_to_its_trade(dex: str, labels: tuple[str, ...], side: str, quote: str,
                                                 quote_usd: float, qd: int) -> None:
    swap = SimSwap(POOL, 1_700_000_010.5, side, 0.0004, 120.0, "Wa11et1111111111111111111111111111111111111",
                   "sig")
    logs = swap_logs(dex, labels, swap, MINT, quote, 6, quote_usd, qd)
    assert logs is not None
    out = decode_notification(note(logs))
    assert out.rejections == []
    (ev,) = out.swaps
    base_raw, quote_raw = raw_amounts(swap, 6, quote_usd, qd)
    assert (base_raw, quote_raw) == (300_000_000_000, round(120.0 / quote_usd * 10**qd))
    pool = PoolMints.of(POOL, PROGRAMS[(dex, labels)], MINT, quote, 6)
    trade = to_trade(replace(ev, block_time=1_700_000_010), pool, quote_usd)
    assert isinstance(trade, Trade)
    price = (quote_raw / 10**qd) / 300_000.0
    assert (trade.side, trade.base_amount, trade.quote_amount, trade.price_quote) == (side, 300_000.0,
                                                                                      quote_raw / 10**qd, price)
    assert trade.price_usd == price * quote_usd and abs(trade.price_usd - 0.0004) < 1e-15


def test_unstreamable_pools_are_not_encoded() -> None:
    swap = SimSwap(POOL, 1.0, "buy", 1.0, 1.0, POOL, "sig")
    assert swap_logs("pumpfun", (), swap, MINT, SOL_MINT, 6, 150.0, 9) is None


def test_a_dlmm_swap_has_no_event_in_its_logs_and_its_swap_in_the_self_cpi() -> None:
    """Meteora DLMM (issue 13 point 2): the logs decode to nothing, the getTransaction inner
    instruction to the trade the simulator made."""
    from dexscan.chain.events import decode_transaction
    from dexscan.demo.chain_swaps import DLMM_EVENT_AUTHORITY, dlmm_inner_instructions, dlmm_swap_event, swap_program

    swap = SimSwap(POOL, 1_700_000_001.0, "sell", 0.002, 300.0, POOL, "sig")
    logs = swap_logs("meteora", ("DLMM",), swap, MINT, SOL_MINT, 6, 150.0, 9)
    assert logs is not None and decode_notification(note(logs)).events == []
    program = swap_program("meteora", ("DLMM",))
    tx = {"slot": 9, "blockTime": 1_700_000_001, "meta": {"err": None, "logMessages": logs, "innerInstructions":
          dlmm_inner_instructions(dlmm_swap_event(swap, MINT, SOL_MINT, 6, 150.0, 9))},
          "transaction": {"signatures": ["sig"], "message": {"accountKeys": [POOL, POOL, program,
                                                                             DLMM_EVENT_AUTHORITY]}}}
    (ev,) = decode_transaction(tx).swaps
    got = to_trade(ev, PoolMints.of(POOL, "meteora_dlmm", MINT, SOL_MINT, 6), 150.0)
    assert isinstance(got, Trade) and (got.side, got.block_time, got.program) == ("sell", 1_700_000_001,
                                                                                  "meteora_dlmm")
    assert got.price_usd == pytest.approx(0.002, rel=1e-6) and got.volume_usd == pytest.approx(300.0, rel=1e-6)


def test_a_minute_bar_splits_into_swaps_that_carry_its_volume_and_path() -> None:
    bar = Candle(1_700_000_040, 1.0, 1.2, 0.9, 1.1, 600.0)
    swaps = minute_swaps(POOL, bar, trade_size_usd=150.0)
    assert [(s.price_usd, s.side) for s in swaps] == [(1.0, "buy"), (0.9, "sell"), (1.2, "buy"), (1.1, "sell")]
    assert abs(sum(s.volume_usd for s in swaps) - 600.0) < 1e-9
    assert [s.ts for s in swaps] == [1_700_000_040 + 1 + 58 * (i + 0.5) / 4 for i in range(4)]
    assert swaps == minute_swaps(POOL, bar, trade_size_usd=150.0)  # deterministic
    assert minute_swaps(POOL, Candle(0, 1.0, 1.0, 1.0, 1.0, 0.0), 10.0) == []
    assert len(minute_swaps(POOL, bar, trade_size_usd=1.0)) == 6  # capped


CURVE = "3nMBoGrDGhMpTrj8wNpk5CKdWjpdESy2oEkoiu9NBQJZ"
DEV = "9uyDy9VDBw4K7xoSkhmCAm8NAFCwu4pkF6JeHUCtVKcX"


@pytest.mark.parametrize("kind", ["graduated", "pool_created"])
def test_pool_launches_decode_to_the_pool_events_discovery_reads(kind: str) -> None:
    from dexscan.chain.events import PROGRAM_IDS, PoolEvent
    from dexscan.chain.feed import ChainFeed
    from dexscan.chain.stream import StreamOptions
    from dexscan.clock import SimClock
    from dexscan.demo.chain_swaps import SimPoolLaunch, launch_logs
    from dexscan.domain import DiscoveredToken

    launch = SimPoolLaunch(1_700_000_000, kind, POOL, MINT, SOL_MINT, CURVE if kind == "graduated" else None, DEV,
                           206_900_000_000_000, 79_005_359_057, 6, 9)
    logs, mentions = launch_logs(launch)
    out = decode_notification(note(logs, launch.signature, launch.slot))
    assert out.rejections == [] and all(isinstance(e, PoolEvent) for e in out.events)
    got = [(e.program, e.event, e.kind, e.pool, e.mint, e.quote_mint, e.base_amount, e.quote_amount, e.block_time,
            e.layout_size) for e in out.events if isinstance(e, PoolEvent)]
    create = ("pumpswap", "CreatePoolEvent", "pool_created", POOL, MINT, SOL_MINT, 206_900_000_000_000,
              79_005_359_057, 1_700_000_000, 334)
    if kind == "graduated":
        assert got == [create, ("pumpfun", "CompletePumpAmmMigrationEvent", "graduated", POOL, MINT, SOL_MINT,
                                206_900_000_000_000, 79_005_359_057, 1_700_000_000, 200)]
        assert set(mentions) == {DEV, POOL, MINT, CURVE, PROGRAM_IDS["pumpswap"], PROGRAM_IDS["pumpfun"]}
    else:
        assert got == [create]
        assert PROGRAM_IDS["pumpfun"] not in mentions and PROGRAM_IDS["pumpswap"] in mentions

    feed = ChainFeed(["ws://127.0.0.1:1"], StreamOptions(), SimClock(1_700_000_000.0), discovery_programs=["pumpfun"])
    assert feed.stream.watched == [PROGRAM_IDS["pumpfun"]]
    assert feed.discoveries(out.events) == [DiscoveredToken(MINT, f"chain:{out.events[0].program}")]
    assert feed.discoveries(out.events) == []  # the same transaction again (another subscription): once
    assert feed.counts["graduations"] == (1 if kind == "graduated" else 0) and feed.counts["pools_created"] == 1
