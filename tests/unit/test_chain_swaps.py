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
    assert swap_logs("meteora", ("DLMM",), swap, MINT, SOL_MINT, 6, 150.0, 9) is None
    assert swap_logs("pumpfun", (), swap, MINT, SOL_MINT, 6, 150.0, 9) is None


def test_a_minute_bar_splits_into_swaps_that_carry_its_volume_and_path() -> None:
    bar = Candle(1_700_000_040, 1.0, 1.2, 0.9, 1.1, 600.0)
    swaps = minute_swaps(POOL, bar, trade_size_usd=150.0)
    assert [(s.price_usd, s.side) for s in swaps] == [(1.0, "buy"), (0.9, "sell"), (1.2, "buy"), (1.1, "sell")]
    assert abs(sum(s.volume_usd for s in swaps) - 600.0) < 1e-9
    assert [s.ts for s in swaps] == [1_700_000_040 + 1 + 58 * (i + 0.5) / 4 for i in range(4)]
    assert swaps == minute_swaps(POOL, bar, trade_size_usd=150.0)  # deterministic
    assert minute_swaps(POOL, Candle(0, 1.0, 1.0, 1.0, 1.0, 0.0), 10.0) == []
    assert len(minute_swaps(POOL, bar, trade_size_usd=1.0)) == 6  # capped
