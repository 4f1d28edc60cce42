"""Tolerant field extraction, and each client's record parser on payloads written to the contracts."""

from __future__ import annotations

import hashlib
import logging
import math

import pytest
from solders.pubkey import Pubkey

from dexscan.domain import SOL_MINT, USDC_MINT, Candle, PairSnapshot, TxnCounts, Window4
from dexscan.errors import BadPayload
from dexscan.sources.birdeye import parse_ohlcv_item
from dexscan.sources.dexscreener import main_pool, parse_discovered, parse_pair
from dexscan.sources.geckoterminal import parse_ohlcv_row, parse_pool
from dexscan.sources.jupiter import parse_price, parse_token
from dexscan.sources.parse import (
    ParseContext,
    iso_to_epoch,
    lookup,
    opt_bool,
    opt_float,
    opt_int,
    opt_iso_ts,
    opt_ms_ts,
    opt_str,
    parse_entries,
    parse_records,
    req_float,
    req_int,
    req_str,
    to_float,
)

CTX = ParseContext("dexscreener", "/tokens/v1/solana/{mints}")


def addr(tag: str) -> str:
    """A valid Solana address standing for ``tag`` (ids must be base58 32-byte keys to parse)."""
    return str(Pubkey(hashlib.sha256(tag.encode()).digest()))


P, M, M1, X, EP2, EKPQ, OTHER = (addr(t) for t in ("P", "M", "M1", "X", "EP2", "EKpQ", "OTHER"))


def bad(excinfo: pytest.ExceptionInfo[BadPayload]) -> tuple[str, str]:
    return excinfo.value.field, excinfo.value.problem


# -- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    (1, 1.0), (2.5, 2.5), ("0.0007094", 0.0007094), (" 12 ", 12.0), ("1e-9", 1e-9), (-3, -3.0), ("0", 0.0),
])
def test_floats_accept_numbers_and_numeric_strings(raw: object, expected: float) -> None:
    assert req_float({"x": raw}, "x", CTX) == expected


@pytest.mark.parametrize(("raw", "problem"), [
    (True, "expected a number, got a boolean"),
    ("NaN", "expected a finite number, got 'NaN'"),
    ("Infinity", "expected a finite number, got 'Infinity'"),
    (math.inf, "expected a finite number, got inf"),
    ("abc", "expected a number, got 'abc'"),
    ("", "expected a number, got ''"),
    ([1], "expected a number, got a list"),
    ({"usd": 1}, "expected a number, got an object"),
])
def test_floats_reject_everything_else_naming_the_field(raw: object, problem: str) -> None:
    with pytest.raises(BadPayload) as info:
        req_float({"liquidity": {"usd": raw}}, "liquidity.usd", CTX)
    assert bad(info) == ("liquidity.usd", problem)
    assert str(info.value) == f"dexscreener /tokens/v1/solana/{{mints}}: bad payload at liquidity.usd: {problem}"


def test_missing_and_null_are_absent() -> None:
    assert opt_float({}, "priceUsd", CTX) is None
    assert opt_float({"priceUsd": None}, "priceUsd", CTX) is None
    assert opt_float({"liquidity": None}, "liquidity.usd", CTX) is None
    with pytest.raises(BadPayload) as info:
        req_float({"priceUsd": None}, "priceUsd", CTX)
    assert bad(info) == ("priceUsd", "missing")


def test_sign_constraints() -> None:
    assert opt_float({"v": 0}, "v", CTX, non_negative=True) == 0.0
    with pytest.raises(BadPayload) as neg:
        opt_float({"v": "-1"}, "v", CTX, non_negative=True)
    assert bad(neg) == ("v", "expected a non-negative number, got '-1'")
    with pytest.raises(BadPayload) as zero:
        req_float({"usdPrice": 0}, "usdPrice", CTX, positive=True)
    assert bad(zero) == ("usdPrice", "expected a positive number, got 0")


def test_ints() -> None:
    assert req_int({"n": 7}, "n", CTX) == 7
    assert req_int({"n": 7.0}, "n", CTX) == 7
    assert req_int({"n": "7"}, "n", CTX) == 7
    assert req_int({"n": "7.0"}, "n", CTX) == 7
    assert opt_int({}, "n", CTX) is None
    for raw, problem in [(7.5, "expected an integer, got 7.5"), (False, "expected an integer, got a boolean"),
                         ("x", "expected a number, got 'x'")]:
        with pytest.raises(BadPayload) as info:
            req_int({"n": raw}, "n", CTX)
        assert bad(info) == ("n", problem)


def test_strings_and_bools() -> None:
    assert req_str({"a": {"b": "mint"}}, "a.b", CTX) == "mint"
    assert opt_str({"a": None}, "a", CTX) is None
    with pytest.raises(BadPayload) as empty:
        req_str({"a": " "}, "a", CTX)
    assert bad(empty) == ("a", "empty string")
    with pytest.raises(BadPayload) as num:
        req_str({"a": 5}, "a", CTX)
    assert bad(num) == ("a", "expected a string, got 5")
    assert opt_bool({"f": True}, "f", CTX) is True
    assert opt_bool({"f": "false"}, "f", CTX) is False
    with pytest.raises(BadPayload) as b:
        opt_bool({"f": 1}, "f", CTX)
    assert bad(b) == ("f", "expected a boolean, got 1")


def test_a_non_object_on_the_path_is_a_contract_break() -> None:
    with pytest.raises(BadPayload) as info:
        lookup({"liquidity": "n/a"}, "liquidity.usd", CTX)
    assert bad(info) == ("liquidity", "expected an object, got 'n/a'")
    with pytest.raises(BadPayload) as rec:
        lookup(["not", "a", "record"], "pairAddress", CTX)
    assert bad(rec) == ("<record>", "expected an object, got a list")


# -- times ---------------------------------------------------------------------------------


def test_iso_8601_to_epoch_seconds() -> None:
    assert iso_to_epoch("2024-06-07T10:56:42.584Z", "t", CTX) == 1717757802
    assert iso_to_epoch("2024-01-29T17:33:29Z", "t", CTX) == 1706549609
    assert iso_to_epoch("2024-01-29T17:33:29+00:00", "t", CTX) == 1706549609
    assert iso_to_epoch("2024-09-18T17:59:23", "t", CTX) == 1726682363  # Birdeye: naive means UTC
    assert iso_to_epoch("2024-01-29T23:03:29+05:30", "t", CTX) == 1706549609
    assert opt_iso_ts({}, "t", CTX) is None
    with pytest.raises(BadPayload) as info:
        iso_to_epoch("yesterday", "createdAt", CTX)
    assert bad(info) == ("createdAt", "expected an ISO-8601 time, got 'yesterday'")


def test_milliseconds_to_seconds() -> None:
    assert opt_ms_ts({"pairCreatedAt": 1724367939000}, "pairCreatedAt", CTX) == 1724367939
    assert opt_ms_ts({"pairCreatedAt": 1724367939999}, "pairCreatedAt", CTX) == 1724367939
    assert opt_ms_ts({"pairCreatedAt": "1724367939000"}, "pairCreatedAt", CTX) == 1724367939
    assert opt_ms_ts({}, "pairCreatedAt", CTX) is None


# -- record loops --------------------------------------------------------------------------


def test_parse_records_skips_counts_and_logs_bad_records(caplog: pytest.LogCaptureFixture) -> None:
    counted: list[tuple[str, str, str]] = []
    ctx = ParseContext("dexscreener", "/tokens/v1/solana/{mints}", lambda *a: counted.append(a))
    records = [{"p": "1.5"}, {"p": "oops"}, {"p": 2}]
    with caplog.at_level(logging.WARNING, logger="dexscan.sources.parse"):
        out = parse_records(records, lambda r: req_float(r, "p", ctx), ctx)
    assert out == [1.5, 2.0]
    assert counted == [("dexscreener", "/tokens/v1/solana/{mints}", "p")]
    assert [r.getMessage() for r in caplog.records] == [
        "dexscreener /tokens/v1/solana/{mints}: bad payload at p: expected a number, got 'oops' (record 1 skipped)"
    ]


def test_null_and_empty_lists_are_valid_empty_answers() -> None:
    counted: list[tuple[str, str, str]] = []
    ctx = ParseContext("dexscreener", "/tokens/v1/solana/{mints}", lambda *a: counted.append(a))
    assert parse_records(None, lambda r: r, ctx) == []
    assert parse_records([], lambda r: r, ctx) == []
    assert counted == []
    with pytest.raises(BadPayload) as info:
        parse_records({"pairs": []}, lambda r: r, ctx)
    assert bad(info) == ("<body>", "expected a list, got an object")
    assert counted == [("dexscreener", "/tokens/v1/solana/{mints}", "<body>")]  # a broken answer counts too


def test_parse_entries_keyed_by_id() -> None:
    ctx = ParseContext("jupiter", "/price/v3")
    out = parse_entries({"A": {"usdPrice": 2}, "B": {"usdPrice": "x"}}, lambda k, r: (k, req_float(r, "usdPrice", ctx)),
                        ctx)
    assert out == {"A": ("A", 2.0)}
    assert parse_entries(None, lambda k, r: r, ctx) == {}


def test_to_float_rejects_none() -> None:
    with pytest.raises(BadPayload):
        to_float(None, "x", CTX)


# -- the clients' record parsers, on payloads written to the reference contracts ------------

PAIR = {
    "chainId": "solana", "dexId": "raydium",
    "url": "https://dexscreener.com/solana/ar6ocemerwmm3ojpkpl1b3zqgbeow9arqaawkamdnwwt",
    "pairAddress": "AR6ocEMeRwMM3oJPKpL1B3zqGbEoW9ArQaawKAmdNwwT", "labels": ["CPMM"],
    "baseToken": {"address": "TrnnxPQvYkMtakCYGToFHs1uYMqumpWeE93W9fFpump", "name": "symmetry", "symbol": "sym"},
    "quoteToken": {"address": SOL_MINT, "name": "Wrapped SOL", "symbol": "SOL"},
    "priceNative": "0.000004873", "priceUsd": "0.0007094",
    "txns": {"m5": {"buys": 166, "sells": 105}, "h1": {"buys": 1994, "sells": 1715},
             "h6": {"buys": 215025, "sells": 13551}, "h24": {"buys": 248862, "sells": 15110}},
    "volume": {"h24": 5636909.86, "h6": 5188028.59, "h1": 536959.95, "m5": 36029.97},
    "priceChange": {"m5": -20.24, "h1": 57.67, "h6": 726, "h24": 1075},
    "liquidity": {"usd": 98992.13, "base": 69721458, "quote": 340.171},
    "fdv": 709489, "pairCreatedAt": 1724367939000,
}


def test_dexscreener_pair() -> None:
    p = parse_pair(PAIR, CTX, observed_at=1_724_400_000)
    assert p == PairSnapshot(
        pair_address="AR6ocEMeRwMM3oJPKpL1B3zqGbEoW9ArQaawKAmdNwwT", dex_id="raydium",
        base_mint="TrnnxPQvYkMtakCYGToFHs1uYMqumpWeE93W9fFpump", base_symbol="sym", base_name="symmetry",
        quote_mint=SOL_MINT, quote_symbol="SOL", price_usd=0.0007094, price_native=0.000004873,
        volume=Window4(36029.97, 536959.95, 5188028.59, 5636909.86),
        price_change=Window4(-20.24, 57.67, 726.0, 1075.0),
        txns_m5=TxnCounts(166, 105), txns_h1=TxnCounts(1994, 1715), txns_h24=TxnCounts(248862, 15110),
        liquidity_usd=98992.13, fdv=709489.0, market_cap=None, pair_created_at=1724367939,
        observed_at=1_724_400_000, labels=("CPMM",),
        url="https://dexscreener.com/solana/ar6ocemerwmm3ojpkpl1b3zqgbeow9arqaawkamdnwwt",
    )


def test_young_pair_without_optional_blocks() -> None:
    young = {"chainId": "solana", "dexId": "pumpswap", "pairAddress": P,
             "baseToken": {"address": M}, "quoteToken": {"address": SOL_MINT}, "priceNative": "1"}
    p = parse_pair(young, CTX, observed_at=5)
    assert p is not None
    assert (p.price_usd, p.liquidity_usd, p.market_cap, p.pair_created_at) == (None, None, None, None)
    assert (p.volume, p.txns_m5, p.base_symbol) == (Window4(), TxnCounts(), "")
    search = ParseContext("dexscreener", "/latest/dex/search")
    assert parse_pair({**young, "chainId": "ethereum"}, search, 5) is None  # a search finds every chain's pairs
    with pytest.raises(BadPayload) as other:
        parse_pair({**young, "chainId": "ethereum"}, CTX, 5)  # but a Solana endpoint answers Solana pairs
    assert bad(other) == ("chainId", "expected 'solana' from a Solana endpoint, got 'ethereum'")
    with pytest.raises(BadPayload) as missing:
        parse_pair({k: v for k, v in young.items() if k != "chainId"}, search, 5)
    assert bad(missing)[0] == "chainId"


def pair(address: str, base: str, quote: str, liq: float | None) -> PairSnapshot:
    raw = {"chainId": "solana", "pairAddress": address, "dexId": "x", "baseToken": {"address": base},
           "quoteToken": {"address": quote}, "liquidity": {"usd": liq}}
    p = parse_pair(raw, CTX, 0)
    assert p is not None
    return p


def test_main_pool_is_the_deepest_main_quote_pool_with_the_token_as_base() -> None:
    pools = [
        pair(addr("A"), M, SOL_MINT, 60_000.0),
        pair(addr("B"), M, USDC_MINT, 90_000.0),
        pair(addr("C"), M, OTHER, 500_000.0),  # not a main quote
        pair(addr("D"), SOL_MINT, M, 900_000.0),  # the token is the quote here
        pair(addr("E"), M, SOL_MINT, None),
    ]
    chosen = main_pool(pools, M)
    assert chosen is not None and chosen.pair_address == addr("B")
    only_unknown = main_pool([pools[4]], M)
    assert only_unknown is not None and only_unknown.pair_address == addr("E")
    assert main_pool(pools, "nope") is None


def test_dexscreener_profile_only_for_solana() -> None:
    prof = {"url": "u", "chainId": "solana", "tokenAddress": M1, "icon": "i"}
    tok = parse_discovered(prof, CTX, "dexscreener:profiles")
    assert tok is not None and (tok.mint, tok.source) == (M1, "dexscreener:profiles")
    assert parse_discovered({**prof, "chainId": "base"}, CTX, "x") is None


JUP = {
    "id": "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN", "name": "Jupiter", "symbol": "JUP", "decimals": 6,
    "tokenProgram": "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", "createdAt": "2024-06-07T10:56:42.584Z",
    "firstPool": {"id": "2pspvjWWaf3dNgt3jsgSzFCNvMGPb7t8FrEYvLGjvcCe", "createdAt": "2024-01-29T17:33:29Z"},
    "holderCount": 857254,
    "audit": {"mintAuthorityDisabled": True, "freezeAuthorityDisabled": True, "topHoldersPercentage": 15.45,
              "devMints": 1},
    "organicScore": 97.98, "organicScoreLabel": "high", "isVerified": True, "tags": ["community", "strict", "verified"],
    "fdv": 971593450.82, "mcap": 459171256.10, "usdPrice": 0.1415, "liquidity": 2992387.89,
    "stats24h": {"priceChange": -8.27, "buyVolume": 1821969.64, "sellVolume": 2016195.15, "numBuys": 33979,
                 "numSells": 31608, "numTraders": 5174},
}


def test_jupiter_token() -> None:
    ctx = ParseContext("jupiter", "/tokens/v2/search")
    t = parse_token(JUP, ctx)
    assert (t.mint, t.symbol, t.decimals, t.usd_price, t.holder_count) == (JUP["id"], "JUP", 6, 0.1415, 857254)
    assert (t.created_at, t.first_pool, t.first_pool_created_at) == (
        1717757802, "2pspvjWWaf3dNgt3jsgSzFCNvMGPb7t8FrEYvLGjvcCe", 1706549609)
    assert t.audit is not None
    assert (t.audit.mint_authority_disabled, t.audit.top_holders_pct, t.audit.is_sus) == (True, 15.45, False)
    assert t.stats24h is not None and t.stats24h.num_traders == 5174 and t.stats24h.price_change_pct == -8.27
    assert t.stats5m is None and t.tags == ("community", "strict", "verified")
    sus = parse_token({"id": X, "audit": {"isSus": True}}, ctx)
    assert sus.audit is not None and sus.audit.is_sus is True and sus.symbol == ""


def test_jupiter_price_entry() -> None:
    ctx = ParseContext("jupiter", "/price/v3")
    q = parse_price(SOL_MINT, {"createdAt": "2024-06-05T08:55:25.527Z", "liquidity": 621679197.67,
                               "usdPrice": 147.48, "blockId": 348004023, "decimals": 9, "priceChange24h": 1.29}, ctx)
    assert (q.usd_price, q.decimals, q.block_id, q.price_change_24h_pct, q.liquidity_usd) == (
        147.48, 9, 348004023, 1.29, 621679197.67)
    with pytest.raises(BadPayload) as info:
        parse_price(SOL_MINT, {"usdPrice": 0}, ctx)
    assert bad(info) == ("usdPrice", "expected a positive number, got 0")


def test_geckoterminal_ohlcv_row_and_pool() -> None:
    ctx = ParseContext("geckoterminal", "/networks/solana/pools/{pool}/ohlcv/{timeframe}")
    assert parse_ohlcv_row([1756569600, 2.238038e-05, 5.562128e-05, 2.238038e-05, 4.629060e-05, 8473.3325], ctx) == \
        Candle(1756569600, 2.238038e-05, 5.562128e-05, 2.238038e-05, 4.629060e-05, 8473.3325)
    with pytest.raises(BadPayload) as short:
        parse_ohlcv_row([1756569600, 1.0], ctx)
    assert bad(short) == ("ohlcv_list", "expected 6 values per row, got 2")
    with pytest.raises(BadPayload) as neg:
        parse_ohlcv_row([1756569600, 1.0, 1.0, 1.0, 1.0, -5], ctx)
    assert bad(neg) == ("ohlcv_list.volume", "expected a non-negative number, got -5")
    pool = {"id": f"solana_{EP2}", "type": "pool",
            "attributes": {"address": EP2, "name": "$WIF / SOL", "reserve_in_usd": "1234567.8",
                           "pool_created_at": "2023-12-01T10:00:00Z", "volume_usd": {"h24": "41413570.131944"}},
            "relationships": {"base_token": {"data": {"id": f"solana_{EKPQ}", "type": "token"}},
                              "quote_token": {"data": {"id": f"solana_{SOL_MINT}", "type": "token"}},
                              "dex": {"data": {"id": "raydium", "type": "dex"}}}}
    ref = parse_pool(pool, ctx)
    assert (ref.address, ref.dex_id, ref.base_mint, ref.quote_mint, ref.reserve_usd, ref.volume_h24_usd,
            ref.created_at) == (EP2, "raydium", EKPQ, SOL_MINT, 1234567.8, 41413570.131944, 1701424800)


def test_birdeye_v1_and_v3_items() -> None:
    ctx = ParseContext("birdeye", "/defi/ohlcv")
    v1 = {"o": 128.2732, "h": 128.6281, "l": 127.9120, "c": 128.0, "v": 100.0, "unixTime": 1726670700,
          "address": SOL_MINT, "type": "15m", "currency": "usd"}
    v3 = {"o": 128.2732, "h": 128.6281, "l": 127.9120, "c": 128.0, "v": 100.0, "v_usd": 7506048,
          "unix_time": 1726670700, "address": SOL_MINT, "type": "15m", "currency": "usd"}
    assert parse_ohlcv_item(v1, ctx) == Candle(1726670700, 128.2732, 128.6281, 127.9120, 128.0, 12800.0)
    assert parse_ohlcv_item(v3, ctx) == Candle(1726670700, 128.2732, 128.6281, 127.9120, 128.0, 7506048.0)
    with pytest.raises(BadPayload) as info:
        parse_ohlcv_item({"o": 1, "h": 1, "l": 1, "c": 1, "v": 1}, ctx)
    assert bad(info) == ("unix_time", "missing (neither unix_time nor unixTime)")
