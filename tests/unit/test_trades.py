"""Decoded swaps -> trades (dexscan.chain.trades) on the real mainnet transactions and by hand.

The real transactions (``../shared/data/onchain/``, skipped when absent) say independently of the
decoders which token went into the pool and which came out: the pool vaults' token balances
(``preTokenBalances`` / ``postTokenBalances``) move by exactly the event's amounts. Each trade's
side must agree with those balances, and its amounts and price equal the values worked out by hand
from the ``*.expected.json`` figures (raw amount / 10^decimals, quote per token).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from dexscan.chain.events import Swap, decode_any
from dexscan.chain.trades import PoolMints, SolUsd, Trade, first_mint_rule, to_trade
from dexscan.domain import SOL_MINT, USDC_MINT

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "onchain"
real = pytest.mark.skipif(not DATA.is_dir(), reason=f"no real on-chain data at {DATA}")

# file -> [(tracked token, quote, token decimals, side, token amount, quote amount, price in quote)]
REAL = {
    "meteora_dlmm/2DfsmTYvMqKwXDBE_vixen": [
        (SOL_MINT, USDC_MINT, 9, "buy", 0.521092597, 116.033029, 116.033029 / 0.521092597)],
    "orca_whirlpool/N5qR3DcvdJfwk4kc_vixen": [
        ("AgMqsVtcjZ2sYuDvoaijyzENN3NMqGYnhqhb224pCCNu", USDC_MINT, 6, "buy", 7640760.418498, 1001.0,
         1001.0 / 7640760.418498)],
    "pumpfun/22K6ixTV6Hk9mk9d_vixen": [
        ("4eLCXkNbDw2bvdrZZVn1cXurtL63H4z9ZfbYCY17pump", SOL_MINT, 6, "buy", 4087530.976228, 0.246875,
         0.246875 / 4087530.976228)],
    "pumpfun/33LHUzKfhBvU68kY_chainstack_buy": [
        ("HfJVjBdkhAD2ynVM8PdTSii4ECZdsxNTCx5wpEqUpump", SOL_MINT, 6, "buy", 605426.09572, 0.024080282,
         0.024080282 / 605426.09572),
        ("HfJVjBdkhAD2ynVM8PdTSii4ECZdsxNTCx5wpEqUpump", SOL_MINT, 6, "sell", 605426.09572, 0.024080281,
         0.024080281 / 605426.09572)],
    "pumpswap/4pCgZ28WbXfpq93V_vixen": [
        ("MeU6gTPJkV8J5TwWfUArnmM4sD6X5SYmXotcJtYpump", SOL_MINT, 6, "buy", 1205966.600208, 0.695247549,
         0.695247549 / 1205966.600208)],
    "pumpswap/5gtu6ARVv16QjWi2_vixen": [
        ("CzdpPoGiyWHg62uSziwNswjN2STE4xXDGsVTKZ2BQKGk", SOL_MINT, 6, "sell", 22614.342682, 0.010345038,
         0.010345038 / 22614.342682)],
    "raydium_amm_v4/54MFrVcfzQEnfMCQ_vixen": [
        ("FTScF4TvRPRFKjgVEg9G96CqPrzumLDLmV1Kr7JQzQrg", SOL_MINT, 6, "buy", 12.795559, 0.032508133,
         0.032508133 / 12.795559)],
    "raydium_clmm/nexzRp8Z5abE2pfa_vixen": [
        ("FURb99Ujvu1XcjYiLQgEfotrsAEb871rgLZvyL3fhfKp", SOL_MINT, 6, "buy", 928319.794967, 0.65,
         0.65 / 928319.794967)],
    "raydium_clmm/vRYNRDqsLW7Kk6GH_vixen": [
        (SOL_MINT, USDC_MINT, 9, "buy", 2.092254175, 472.821137, 472.821137 / 2.092254175)],
    "raydium_cpmm/4RoVbE9HB9GSQN1w_vixen": [
        ("68GdL4q2fNAu7acwrHRjCQwtfvPxXQEFkBihzbKfbonk", SOL_MINT, 6, "sell", 218686.363204, 0.069520899,
         0.069520899 / 218686.363204)],
}


def _balance_moves(tx: dict[str, Any]) -> dict[int, str]:
    """Raw balance change -> mint, over every token account of the transaction."""
    meta = tx["meta"]
    pre = {b["accountIndex"]: b for b in meta.get("preTokenBalances") or []}
    post = {b["accountIndex"]: b for b in meta.get("postTokenBalances") or []}
    out: dict[int, str] = {}
    for i in set(pre) | set(post):
        before = int((pre.get(i) or {}).get("uiTokenAmount", {}).get("amount", 0))
        after = int((post.get(i) or {}).get("uiTokenAmount", {}).get("amount", 0))
        out[after - before] = (post.get(i) or pre[i])["mint"]
    return out


@real
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_swaps_become_the_trades_their_balances_show(name: str) -> None:
    raw = json.loads((DATA / f"{name}.json").read_text())
    tx = raw.get("result", raw)
    swaps = decode_any(raw).swaps
    assert len(swaps) == len(REAL[name])
    moves = _balance_moves(tx)
    for swap, (mint, quote, decimals, side, base, quote_amount, price) in zip(swaps, REAL[name], strict=True):
        assert swap.pool is not None
        pool = PoolMints.of(swap.pool, swap.program, mint, quote, decimals)
        swap = dataclasses.replace(swap, block_time=swap.block_time or 1_700_000_000)
        trade = to_trade(swap, pool, 150.0 if quote == SOL_MINT else 1.0)
        assert isinstance(trade, Trade), trade
        assert (trade.side, trade.base_amount, trade.quote_amount, trade.price_quote) == (side, base, quote_amount,
                                                                                          price)
        assert trade.price_usd == price * (150.0 if quote == SOL_MINT else 1.0)
        assert (trade.pool, trade.mint, trade.signature) == (swap.pool, mint, swap.signature)
        # independent check of the side: the pool vault of the token that went in grew by amount_in
        went_in = moves.get(swap.amount_in)
        if went_in is not None:
            assert (went_in == mint) == (side == "sell")
        came_out = moves.get(-swap.amount_out)
        if came_out is not None:
            assert (came_out == mint) == (side == "buy")


@real
def test_a_streamed_sol_usdc_pool_sets_sol_usd() -> None:
    raw = json.loads((DATA / "raydium_clmm/vRYNRDqsLW7Kk6GH_vixen.json").read_text())
    (swap,) = decode_any(raw).swaps
    assert swap.pool is not None
    trade = to_trade(dataclasses.replace(swap, block_time=1000), PoolMints.of(swap.pool, swap.program, SOL_MINT,
                                                                               USDC_MINT, 9), 1.0)
    assert isinstance(trade, Trade)
    sol = SolUsd(max_age_s=60)
    assert sol.observe_trade(trade, USDC_MINT)
    assert (sol.value(1060), sol.value(1061), sol.source) == (472.821137 / 2.092254175, None, "stream")


TOKEN = "4eLCXkNbDw2bvdrZZVn1cXurtL63H4z9ZfbYCY17pump"
POOL = "E2LhpiJdbHx6Fbz2zGAcbbrbMPkn88TpMHP4g236oBZi"


def swap(program: str, amount_in: int, amount_out: int, **kw: Any) -> Swap:
    base = {"signature": "sig", "slot": 5, "block_time": 1_000, "program": program, "event": "E", "index": 0,
            "pool": POOL, "mint": None, "amount_in": amount_in, "amount_out": amount_out}
    return Swap(**{**base, **kw})


@pytest.mark.parametrize(("program", "direction", "first_is_token", "side"), [
    ("raydium_amm_v4", 1, True, "buy"),    # pc (SOL) in, coin (token) out
    ("raydium_amm_v4", 2, True, "sell"),
    ("raydium_amm_v4", 1, False, "sell"),  # a pool listing SOL as coin: pc (the token) went in
    ("raydium_clmm", 1, True, "sell"),     # zero_for_one with the token as token 0
    ("raydium_clmm", 0, True, "buy"),
    ("orca_whirlpool", 1, False, "buy"),   # a_to_b with SOL as A: SOL in
    ("meteora_dlmm", 0, False, "sell"),    # Y (the token) in
])
def test_direction_flags_in_the_pools_own_order(program: str, direction: int, first_is_token: bool, side: str) -> None:
    pool = PoolMints.of(POOL, program, TOKEN, SOL_MINT, 6, first_mint=TOKEN if first_is_token else SOL_MINT)
    base_raw, quote_raw = 2_000_000, 500_000_000  # 2 tokens, 0.5 SOL
    a_in, a_out = (base_raw, quote_raw) if side == "sell" else (quote_raw, base_raw)
    t = to_trade(swap(program, a_in, a_out, direction=direction), pool, 200.0)
    assert isinstance(t, Trade)
    assert (t.side, t.base_amount, t.quote_amount, t.price_quote, t.price_usd, t.volume_usd) == (
        side, 2.0, 0.5, 0.25, 50.0, 100.0)


def test_the_emitting_program_decides_the_order_rule_when_the_listing_named_another() -> None:
    """A Raydium pair listed without its CLMM label is taken for AMM v4 (token first); its CLMM
    event still follows CLMM's byte order (SOL < this token: SOL is token 0)."""
    token = "FURb99Ujvu1XcjYiLQgEfotrsAEb871rgLZvyL3fhfKp"
    pool = PoolMints.of(POOL, "raydium_amm_v4", token, SOL_MINT, 6)
    assert pool.first_mint == token
    t = to_trade(swap("raydium_clmm", 500_000_000, 2_000_000, direction=1), pool, 200.0)  # SOL in
    assert isinstance(t, Trade) and (t.side, t.base_amount, t.quote_amount) == ("buy", 2.0, 0.5)


def test_pumpswap_pool_with_sol_as_its_base() -> None:
    """A PumpSwap 'buy' takes the pool's quote in; when the pool's base is SOL, that is the token."""
    pool = PoolMints.of(POOL, "pumpswap", TOKEN, SOL_MINT, 6, first_mint=SOL_MINT)
    t = to_trade(swap("pumpswap", 3_000_000, 1_000_000_000, side="buy"), pool, None)
    assert isinstance(t, Trade)
    assert (t.side, t.base_amount, t.quote_amount, t.price_quote, t.price_usd) == ("sell", 3.0, 1.0, 1 / 3, None)


def test_rejections_are_named() -> None:
    pool = PoolMints.of(POOL, "raydium_cpmm", TOKEN, SOL_MINT, 6)
    assert to_trade(swap("raydium_cpmm", 1, 1, direction=1), pool, 1.0) == "no_direction"  # 89-byte layout
    assert to_trade(swap("raydium_cpmm", 1, 1, mint_in=USDC_MINT, mint_out=TOKEN), pool, 1.0) == "mint_mismatch"
    assert to_trade(swap("raydium_cpmm", 0, 5, mint_in=SOL_MINT, mint_out=TOKEN), pool, 1.0) == "zero_amount"
    assert to_trade(swap("raydium_cpmm", 1, 5, mint_in=SOL_MINT, mint_out=TOKEN), None, 1.0) == "unknown_pool"
    assert to_trade(swap("raydium_cpmm", 1, 5, pool="other", mint_in=SOL_MINT, mint_out=TOKEN), pool,
                    1.0) == "unknown_pool"
    assert to_trade(swap("raydium_cpmm", 1, 5, block_time=None, mint_in=SOL_MINT, mint_out=TOKEN), pool,
                    1.0) == "no_time"
    assert to_trade(swap("pumpfun", 1, 5, side="buy", mint="other"), pool, 1.0) == "mint_mismatch"


def test_first_mint_rule() -> None:
    # byte order for the programs that enforce it (the real pools above: SOL < USDC, AgMq... < USDC)
    assert first_mint_rule("raydium_clmm", USDC_MINT, SOL_MINT) == SOL_MINT
    assert first_mint_rule("orca_whirlpool", "AgMqsVtcjZ2sYuDvoaijyzENN3NMqGYnhqhb224pCCNu",
                           USDC_MINT) == "AgMqsVtcjZ2sYuDvoaijyzENN3NMqGYnhqhb224pCCNu"
    assert first_mint_rule("raydium_amm_v4", TOKEN, SOL_MINT) == TOKEN  # coin = the launched token
    with pytest.raises(ValueError, match="decimals of quote"):
        PoolMints.of(POOL, "raydium_amm_v4", TOKEN, "otherquote", 6)


def test_sol_usd_newest_wins_and_goes_stale() -> None:
    sol = SolUsd(max_age_s=300)
    assert sol.quote_usd(SOL_MINT, 0) is None and sol.quote_usd(USDC_MINT, 0) == 1.0
    sol.observe(100, 150.0, "jupiter")
    sol.observe(90, 140.0, "stream")  # older: ignored
    sol.observe(110, float("nan"), "stream")
    assert (sol.quote_usd(SOL_MINT, 400), sol.source, sol.quote_usd(SOL_MINT, 401)) == (150.0, "jupiter", None)
    assert sol.quote_usd(TOKEN, 100) is None
