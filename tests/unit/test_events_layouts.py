"""Exact hand-built cases for every layout version of every event, bytes made here with
``struct.pack`` from the documented layouts (``reference/onchain/*.md``), and the dispatcher's rules:
invoke-stack attribution, shared discriminators, failed transactions, truncated logs, self-CPI
copies, and every input shape (logsNotification, getTransaction json / jsonParsed / base64)."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest

from dexscan.chain.events import (
    PROGRAM_IDS,
    PoolEvent,
    Swap,
    decode_any,
    decode_notification,
    decode_transaction,
    payload_fields,
)
from dexscan.chain.events import meteora_dlmm as dlmm
from dexscan.chain.events import orca_whirlpool as orca
from dexscan.chain.events import pumpfun as pf
from dexscan.chain.events import pumpswap as ps
from dexscan.chain.events import raydium_clmm as clmm
from dexscan.chain.events import raydium_cpmm as cpmm
from dexscan.chain.events.codec import (
    EVENT_IX_TAG,
    USDC_MINT,
    WSOL_MINT,
    b58decode,
    b58encode,
    b58encode_pure,
    find_program_address,
    on_curve,
)

RAY, PUMP, PSWAP = PROGRAM_IDS["raydium_amm_v4"], PROGRAM_IDS["pumpfun"], PROGRAM_IDS["pumpswap"]
CPMM, CLMM, ORCA, DLMM = (PROGRAM_IDS[n] for n in ("raydium_cpmm", "raydium_clmm", "orca_whirlpool", "meteora_dlmm"))
JUP = "JUP6LkbZbjS1jKKwapdHNy74zcZ3tLUZoi5QNyVTaV4"


def key(n: int) -> bytes:
    return bytes([n]) * 32


def k58(n: int) -> str:
    return b58encode(key(n))


def bstr(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<I", len(raw)) + raw


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def note(logs: list[str], err: Any = None, sig: str = "sig1", slot: int = 77) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "logsNotification", "params": {
        "result": {"context": {"slot": slot}, "value": {"signature": sig, "err": err, "logs": logs}},
        "subscription": 5}}


def wrap(program: str, *lines: str) -> list[str]:
    return [f"Program {program} invoke [1]", *lines, f"Program {program} consumed 100 of 200 compute units",
            f"Program {program} success"]


def data(raw: bytes) -> str:
    return f"Program data: {b64(raw)}"


# -- Raydium AMM v4 ray_log ---------------------------------------------------------------------


def ray_swap(kind: int, a: int, b: int, direction: int, user: int, coin: int, pc: int, c: int) -> str:
    return "Program log: ray_log: " + b64(struct.pack("<B7Q", kind, a, b, direction, user, coin, pc, c))


@pytest.mark.parametrize(("direction", "reserves"), [(1, (2000, 1000)), (2, (1000, 2000))])
def test_ray_log_swap_base_in(direction: int, reserves: tuple[int, int]) -> None:
    out = decode_notification(note(wrap(RAY, ray_swap(3, 500, 10, direction, 900, 1000, 2000, 42))))
    (s,) = out.swaps
    assert (s.program, s.event, s.pool, s.mint, s.amount_in, s.amount_out, s.direction) == (
        "raydium_amm_v4", "SwapBaseIn", None, None, 500, 42, direction)
    assert (s.reserve_in, s.reserve_out) == reserves and s.layout_size == 57
    assert (s.signature, s.slot) == ("sig1", 77)


def test_ray_log_swap_base_out_uses_deduct_in() -> None:
    (s,) = decode_notification(note(wrap(RAY, ray_swap(4, 9999, 300, 2, 1, 5, 6, 123)))).swaps
    assert (s.event, s.amount_in, s.amount_out) == ("SwapBaseOut", 123, 300)


def test_ray_log_init_is_a_new_pool() -> None:
    raw = struct.pack("<BQBBQQQQ32s", 0, 1700000000, 6, 9, 1, 1, 206_900_000_000_000, 79_000_000_000, key(7))
    assert len(raw) == 75
    (e,) = decode_notification(note(wrap(RAY, "Program log: ray_log: " + b64(raw)))).events
    assert isinstance(e, PoolEvent) and e.kind == "pool_created" and e.event == "Init"
    assert (e.base_amount, e.quote_amount) == (79_000_000_000, 206_900_000_000_000)
    assert payload_fields(RAY, b64(raw)) == ("Init", {
        "log_type": 0, "time": 1700000000, "pc_decimals": 6, "coin_decimals": 9, "pc_lot_size": 1,
        "coin_lot_size": 1, "pc_amount": 206_900_000_000_000, "coin_amount": 79_000_000_000, "market": k58(7)})


def test_ray_log_deposit_and_withdraw_are_not_trades() -> None:
    dep = struct.pack("<B6Q2QQQQ", 1, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0) + b"\0" * 16
    wd = struct.pack("<B5Q2Q2Q", 2, 1, 2, 3, 4, 5, 0, 0, 0, 0) + b"\0" * 16
    assert (len(dep), len(wd)) == (105, 89)
    out = decode_notification(note(wrap(RAY, "Program log: ray_log: " + b64(dep), "Program log: ray_log: " + b64(wd))))
    assert out.events == [] and out.rejections == []


@pytest.mark.parametrize(("line", "reason"), [
    ("Program log: ray_log: The input account owner is not the program, input:1, expected:2", "bad_base64"),
    ("Program log: ray_log: " + b64(struct.pack("<B6Q", 3, 1, 2, 1, 4, 5, 6)), "short_payload"),
    ("Program log: ray_log: " + b64(struct.pack("<B7Q", 3, 1, 2, 7, 4, 5, 6, 7)), "bad_field"),
    ("Program log: ray_log: " + b64(b"\x09abc"), "unknown_event"),
])
def test_ray_log_bad_payloads_are_rejections(line: str, reason: str) -> None:
    out = decode_notification(note(wrap(RAY, line)))
    assert out.events == [] and [r.reason for r in out.rejections] == [reason]


def test_ray_log_of_another_program_is_ignored() -> None:
    out = decode_notification(note(wrap(JUP, ray_swap(3, 1, 2, 1, 4, 5, 6, 7))))
    assert out.events == [] and out.rejections == []


# -- pump.fun ------------------------------------------------------------------------------------


CURVE_1 = b58encode(find_program_address((b"bonding-curve", key(1)), b58decode(PUMP))[0])


def test_program_derived_addresses_match_solders() -> None:
    from solders.pubkey import Pubkey

    for seed in (key(1), key(0), bytes(range(32)), b"\xff" * 32):
        want = Pubkey.find_program_address([b"bonding-curve", seed], Pubkey.from_string(PUMP))
        assert find_program_address((b"bonding-curve", seed), b58decode(PUMP), pure=True) == (
            bytes(want[0]), want[1])
        assert find_program_address((b"bonding-curve", seed), b58decode(PUMP)) == (bytes(want[0]), want[1])
    for raw in (key(1), key(9), bytes(range(32)), bytes(range(32, 64))):
        assert on_curve(raw) == Pubkey(raw).is_on_curve()
    for raw in (b"\0" * 32, key(1), bytes(range(32)), b"\0\0\x01" + b"\xff" * 29):  # both base58 encoders
        assert b58decode(b58encode.__wrapped__(raw)) == raw
    # 64 bytes (a signature): solders' encoder once loaded (the derivations above load it), same text
    for raw in (b"\0" * 64, key(1) + key(2), bytes(range(64)), b"\0\0\x01" + b"\xff" * 61, b"\xff" * 64):
        assert b58encode.__wrapped__(raw) == b58encode_pure(raw)
        assert b58decode(b58encode.__wrapped__(raw)) == raw
    assert b58encode.__wrapped__(b"\0" * 63 + b"\x01") == "1" * 63 + "2"


#: TradeEvent versions (IDL commit dates) -> size of a buy (a sell's ix_name is one byte longer)
PUMP_TRADE_VERSIONS = {"2025-04": 129, "2025-05": 225, "2025-08": 258, "2025-10": 265, "2026-01": 266,
                       "2026-05": 266 + 16 + 16 + 4 + 34 + 32 + 24}


def pump_trade(version: str, is_buy: bool = True) -> bytes:
    """TradeEvent as each documented version lays it out."""
    p = pf.TRADE + key(1) + struct.pack("<QQ?", 1_000_000, 35_000_000_000, is_buy) + key(2)
    p += struct.pack("<q4Q", 1_760_000_000, 31_000_000_000, 1_037_000_000_000_000, 1_000_000, 790_000_000_000_000)
    if version == "2025-04":
        return p
    p += key(3) + struct.pack("<QQ", 95, 9_500) + key(4) + struct.pack("<QQ", 5, 500)
    if version == "2025-05":
        return p
    p += struct.pack("<?QQQq", True, 11, 22, 33, 1_759_999_000)
    if version == "2025-08":
        return p
    p += bstr("buy" if is_buy else "sell")
    if version == "2025-10":
        return p
    p += b"\x01"  # mayhem_mode
    if version == "2026-01":
        return p
    p += struct.pack("<QQ", 10, 100)  # 2026-02 cashback
    p += struct.pack("<QQ", 20, 200) + struct.pack("<I", 1) + key(9) + struct.pack("<H", 10_000)  # buyback, holders
    p += key(5) + struct.pack("<QQQ", 1, 2, 3)  # quote_mint, quote amounts
    return p


@pytest.mark.parametrize("version", PUMP_TRADE_VERSIONS)
@pytest.mark.parametrize("is_buy", [True, False])
def test_pump_trade_every_version(version: str, is_buy: bool) -> None:
    raw = pump_trade(version, is_buy)
    size = PUMP_TRADE_VERSIONS[version]
    assert len(raw) == size + (1 if (not is_buy and size > 258) else 0)
    (s,) = decode_notification(note(wrap(PUMP, data(raw)))).swaps
    assert (s.program, s.mint, s.pool, s.signer, s.layout_size) == ("pumpfun", k58(1), CURVE_1, k58(2), len(raw))
    if is_buy:
        assert (s.side, s.amount_in, s.amount_out, s.mint_in, s.mint_out) == (
            "buy", 1_000_000, 35_000_000_000, WSOL_MINT, k58(1))
        assert (s.reserve_in, s.reserve_out) == (31_000_000_000 - 1_000_000, 1_037_000_000_000_000 + 35_000_000_000)
    else:
        assert (s.side, s.amount_in, s.amount_out) == ("sell", 35_000_000_000, 1_000_000)
    assert s.block_time == 1_760_000_000  # a notification has no block time: the event's timestamp
    name, fields = payload_fields(PUMP, raw) or ("", {})
    assert name == "TradeEvent" and fields["virtual_token_reserves"] == 1_037_000_000_000_000
    assert ("fee" in fields) == (size >= 225) and ("last_update_timestamp" in fields) == (size >= 258)
    assert fields.get("ix_name") == (("buy" if is_buy else "sell") if size >= 265 else None)
    assert fields.get("mayhem_mode") == (True if size >= 266 else None)
    assert pf.trade_ix_name(raw) == fields.get("ix_name")
    if version == "2026-05":
        assert fields["shareholders"] == [{"address": k58(9), "share_bps": 10_000}]
        assert fields["real_quote_reserves"] == 3


def test_pump_trade_391_unpublished_variant_trusts_only_the_prefix() -> None:
    """2026-10: ix_name sits 6 bytes later than the IDL says; the trade prefix still decodes."""
    raw = pump_trade("2025-08") + b"\x00" * 6 + bstr("buy") + b"\x07" * (391 - 258 - 6 - 7)
    assert len(raw) == 391
    (s,) = decode_notification(note(wrap(PUMP, data(raw)))).swaps
    assert (s.amount_in, s.amount_out, s.side) == (1_000_000, 35_000_000_000, "buy")
    assert pf.trade_ix_name(raw) is None  # the bytes at 258 are not a short name


def test_pump_trade_too_short_or_bad_bool() -> None:
    short = pump_trade("2025-04")[:128]
    bad = bytearray(pump_trade("2025-04"))
    bad[56] = 2
    out = decode_notification(note(wrap(PUMP, data(short), data(bytes(bad)))))
    assert out.events == [] and [r.reason for r in out.rejections] == ["short_payload", "bad_field"]


def pump_create(newer: bool) -> bytes:
    p = pf.CREATE + bstr("excited") + bstr("EXC") + bstr("https://x/y.json") + key(1) + key(2) + key(3)
    if newer:  # 2025-05: creator, timestamp, reserves, supply
        p += key(4) + struct.pack("<q4Q", 1_750_000_000, 1, 2, 3, 4)
    return p


@pytest.mark.parametrize("newer", [False, True])
def test_pump_create_both_eras(newer: bool) -> None:
    (e,) = decode_notification(note(wrap(PUMP, data(pump_create(newer))))).events
    assert isinstance(e, PoolEvent)
    assert (e.kind, e.pool, e.mint, e.name, e.symbol) == ("pool_created", k58(2), k58(1), "excited", "EXC")
    assert e.creator == (k58(4) if newer else k58(3))
    assert e.block_time == (1_750_000_000 if newer else None)


def test_pump_create_with_a_lying_string_length_is_a_rejection() -> None:
    raw = pf.CREATE + struct.pack("<I", 10_000) + b"abc"
    out = decode_notification(note(wrap(PUMP, data(raw))))
    assert [r.reason for r in out.rejections] == ["short_payload"]


@pytest.mark.parametrize("quote", [None, b"\0" * 32, key(8)])
def test_pump_complete_versions(quote: bytes | None) -> None:
    raw = pf.COMPLETE + key(1) + key(2) + key(3) + struct.pack("<q", 1_760_000_000) + (quote or b"")
    (e,) = decode_notification(note(wrap(PUMP, data(raw)))).events
    assert isinstance(e, PoolEvent) and e.kind == "graduated"
    assert (e.mint, e.pool, e.creator) == (k58(2), k58(3), k58(1))
    assert e.quote_mint == (k58(8) if quote == key(8) else WSOL_MINT)


def test_pump_amm_migration() -> None:
    raw = pf.MIGRATION + key(1) + key(2) + struct.pack("<QQQ", 206_900_000, 84_990_000_000, 15) + key(3)
    raw += struct.pack("<q", 1_760_000_000) + key(6) + b"\0" * 32
    assert len(raw) == 200
    (e,) = decode_notification(note(wrap(PUMP, data(raw)))).events
    assert isinstance(e, PoolEvent)
    assert (e.kind, e.pool, e.mint, e.base_amount, e.quote_amount) == (
        "graduated", k58(6), k58(2), 206_900_000, 84_990_000_000)


# -- PumpSwap ------------------------------------------------------------------------------------


def pswap_trade(buy: bool, size: int) -> bytes:
    p = (ps.BUY if buy else ps.SELL) + struct.pack("<q13Q", 1_746_244_081, 37_368_000_000, 2_050_000_000, 1, 2,
                                                  28_406_490_689_612, 795_711_325_323, 1_048_116_332, 20, 2_096_233,
                                                  5, 524_059, 1_050_212_565, 1_050_736_624)
    p += key(1) + key(2) + key(3) + key(4) + key(5) + key(6)  # pool, user, accounts, fee recipient (+ata)
    if size == 312:
        return p
    p += key(7) + struct.pack("<QQ", 5, 6_604_852)  # coin_creator, bps, fee -> 360
    if size == 360:
        return p
    if not buy:  # SellEvent: cashback, buyback -> 392
        return p + struct.pack("<4Q", 1, 2, 3, 4)
    p += struct.pack("<?QQQq", True, 1, 2, 3, 4)  # -> 393
    if size == 393:
        return p
    return p + struct.pack("<Q", 37_000_000_000) + bstr("buy") + struct.pack("<4Q", 1, 2, 3, 4)  # -> 440


@pytest.mark.parametrize(("buy", "size"), [(True, 312), (True, 360), (True, 393), (True, 440),
                                           (False, 312), (False, 360), (False, 392)])
def test_pumpswap_trade_every_version(buy: bool, size: int) -> None:
    raw = pswap_trade(buy, size)
    assert len(raw) == size
    (s,) = decode_notification(note(wrap(PSWAP, data(raw)))).swaps
    assert (s.program, s.pool, s.mint, s.signer, s.layout_size) == ("pumpswap", k58(1), None, k58(2), size)
    if buy:
        assert (s.side, s.amount_in, s.amount_out) == ("buy", 1_048_116_332, 37_368_000_000)
        assert (s.reserve_in, s.reserve_out) == (795_711_325_323, 28_406_490_689_612)
    else:
        assert (s.side, s.amount_in, s.amount_out) == ("sell", 37_368_000_000, 1_048_116_332)
    _name, fields = payload_fields(PSWAP, raw) or ("", {})
    assert ("coin_creator_fee" in fields) == (size >= 360)
    if buy and size == 440:
        assert fields["ix_name"] == "buy" and fields["buyback_fee"] == 4
    if not buy and size == 392:
        assert fields["buyback_fee"] == 4


def test_pumpswap_trade_below_the_oldest_layout_is_rejected() -> None:
    out = decode_notification(note(wrap(PSWAP, data(pswap_trade(True, 312)[:311]))))
    assert [r.reason for r in out.rejections] == ["short_payload"]


@pytest.mark.parametrize("size", [301, 333, 334])
def test_pumpswap_create_pool_versions(size: int) -> None:
    raw = ps.CREATE_POOL + struct.pack("<qH", 1_750_000_000, 0) + key(1) + key(2) + key(3)
    raw += struct.pack("<BB7QB", 6, 9, 1, 2, 206_900_000_000_000, 84_990_000_000, 4, 5, 6, 255)
    raw += key(4) + key(5) + key(6) + key(7)  # pool, lp_mint, user accounts -> 301
    if size >= 333:
        raw += key(8)
    if size == 334:
        raw += b"\x01"
    assert len(raw) == size
    (e,) = decode_notification(note(wrap(PSWAP, data(raw)))).events
    assert isinstance(e, PoolEvent)
    assert (e.pool, e.mint, e.quote_mint, e.creator, e.base_amount, e.quote_amount) == (
        k58(4), k58(2), k58(3), k58(1), 206_900_000_000_000, 84_990_000_000)


# -- Raydium CPMM / CLMM, Orca, Meteora -------------------------------------------------------------


def cpmm_swap(v2: bool, mint_in: str = WSOL_MINT, mint_out: str = "") -> bytes:
    p = cpmm.SWAP + key(1) + struct.pack("<6Q?", 1_000, 2_000, 300, 400, 0, 0, True)
    if v2:
        p += b58decode(mint_in) + b58decode(mint_out or k58(9)) + struct.pack("<QQ?", 7, 8, False)
    return p


def test_cpmm_swap_89_bytes_has_no_mints() -> None:
    raw = cpmm_swap(False)
    assert len(raw) == 89
    (s,) = decode_notification(note(wrap(CPMM, data(raw)))).swaps
    assert (s.pool, s.amount_in, s.amount_out, s.mint, s.side, s.reserve_in) == (k58(1), 300, 400, None, None, 1_000)


@pytest.mark.parametrize(("mint_in", "mint_out", "side", "mint"), [
    (WSOL_MINT, k58(9), "buy", k58(9)), (k58(9), USDC_MINT, "sell", k58(9)), (USDC_MINT, WSOL_MINT, None, None)])
def test_cpmm_swap_170_bytes_names_mints_and_side(mint_in: str, mint_out: str, side: str | None,
                                                  mint: str | None) -> None:
    raw = cpmm_swap(True, mint_in, mint_out)
    assert len(raw) == 170
    (s,) = decode_notification(note(wrap(CPMM, data(raw)))).swaps
    assert (s.mint_in, s.mint_out, s.side, s.mint) == (mint_in, mint_out, side, mint)


def clmm_swap(zero_for_one: bool, v2: bool) -> bytes:
    p = clmm.SWAP + key(1) + key(2) + key(3) + key(4) + struct.pack("<4Q?", 650, 0, 928, 0, zero_for_one)
    p += (696571172551493720006).to_bytes(16, "little") + (14491376724501).to_bytes(16, "little")
    p += struct.pack("<i", -17880)
    return p + (struct.pack("<QQ", 1, 2) if v2 else b"")


@pytest.mark.parametrize("v2", [False, True])
@pytest.mark.parametrize("zero_for_one", [True, False])
def test_clmm_swap_both_layouts(zero_for_one: bool, v2: bool) -> None:
    raw = clmm_swap(zero_for_one, v2)
    assert len(raw) == (221 if v2 else 205)
    (s,) = decode_notification(note(wrap(CLMM, data(raw)))).swaps
    assert (s.pool, s.signer) == (k58(1), k58(2))
    assert (s.amount_in, s.amount_out) == ((650, 928) if zero_for_one else (928, 650))
    assert clmm.sqrt_price_liquidity_tick(raw) == (696571172551493720006, 14491376724501, -17880)


def test_whirlpool_traded() -> None:
    raw = orca.TRADED + key(1) + b"\x01" + (5).to_bytes(16, "little") + (6).to_bytes(16, "little")
    raw += struct.pack("<6Q", 1_001_000_000, 7_640_760_418_498, 0, 0, 87_087, 13_013)
    assert len(raw) == 121
    (s,) = decode_notification(note(wrap(ORCA, data(raw)))).swaps
    assert (s.pool, s.amount_in, s.amount_out, s.direction) == (k58(1), 1_001_000_000, 7_640_760_418_498, 1)
    assert orca.sqrt_prices(raw) == (5, 6)


def dlmm_swap() -> bytes:
    raw = dlmm.SWAP + key(1) + key(2) + struct.pack("<iiQQ?QQ", -15023, -15022, 116_033_029, 521_092_597, False,
                                                    19_958, 997)
    return raw + (25).to_bytes(16, "little") + struct.pack("<Q", 0)


def tx_json(logs: list[str], inner: list[dict[str, Any]], keys: list[str], err: Any = None,
            parsed: bool = False) -> dict[str, Any]:
    account_keys: list[Any] = [{"pubkey": k, "signer": i == 0, "source": "transaction"} for i, k in enumerate(keys)] \
        if parsed else keys
    return {"jsonrpc": "2.0", "id": 1, "result": {
        "slot": 9, "blockTime": 1_700_000_123, "version": 0,
        "transaction": {"signatures": ["txsig"], "message": {"accountKeys": account_keys, "instructions": []}},
        "meta": {"err": err, "logMessages": logs, "innerInstructions": [{"index": 0, "instructions": inner}],
                 "loadedAddresses": {"writable": [], "readonly": [DLMM]} if not parsed else None}}}


@pytest.mark.parametrize("parsed", [False, True])
def test_dlmm_swap_comes_from_the_self_cpi_inner_instruction(parsed: bool) -> None:
    raw = dlmm_swap()
    assert len(raw) == 137
    ix_data = b58encode(EVENT_IX_TAG + raw)
    keys = [k58(2), k58(1)] + ([DLMM] if parsed else [])  # json: DLMM comes from a lookup table (index 2)
    ix = {"programId": DLMM, "accounts": [], "data": ix_data} if parsed else \
        {"programIdIndex": 2, "accounts": [3], "data": ix_data, "stackHeight": 2}
    out = decode_transaction(tx_json(wrap(DLMM, f"Program {DLMM} invoke [2]", f"Program {DLMM} success"),
                                     [ix], keys, parsed=parsed))
    (s,) = out.swaps
    assert (s.signature, s.slot, s.block_time, s.program, s.pool, s.signer) == (
        "txsig", 9, 1_700_000_123, "meteora_dlmm", k58(1), k58(2))
    assert (s.amount_in, s.amount_out, s.direction) == (116_033_029, 521_092_597, 0)
    # the same swap's logs alone (a logsNotification) carry no event
    assert decode_notification(note(wrap(DLMM))).events == []


# -- the dispatcher ---------------------------------------------------------------------------------


def test_shared_discriminator_goes_to_the_program_on_top_of_the_stack() -> None:
    """A SwapEvent logged by Jupiter (same discriminator as CPMM/CLMM) is not a Raydium trade; the
    CLMM SwapEvent inside the Jupiter route is credited to CLMM, and CPMM's after CLMM returned."""
    logs = [f"Program {JUP} invoke [1]", f"Program {CLMM} invoke [2]", data(clmm_swap(True, False)),
            f"Program {CLMM} success", data(cpmm_swap(False)),  # Jupiter's own SwapEvent: foreign
            f"Program {CPMM} invoke [2]", data(cpmm_swap(False)), f"Program {CPMM} success", f"Program {JUP} success"]
    out = decode_notification(note(logs))
    assert [s.program for s in out.swaps] == ["raydium_clmm", "raydium_cpmm"] and out.rejections == []
    assert [s.index for s in out.swaps] == [0, 1]


def test_a_failed_program_pops_the_stack() -> None:
    logs = [f"Program {JUP} invoke [1]", f"Program {CLMM} invoke [2]",
            f"Program {CLMM} failed: custom program error: 0x1", data(cpmm_swap(False))]
    assert decode_notification(note(logs)).events == []


def test_failed_transactions_record_nothing() -> None:
    out = decode_notification(note(wrap(PUMP, data(pump_trade("2025-08"))), err={"InstructionError": [0, "Custom"]}))
    assert out.failed and out.events == [] and [r.reason for r in out.rejections] == ["tx_failed"]
    out = decode_transaction(tx_json(wrap(PUMP, data(pump_trade("2025-08"))), [], [k58(2)], err={"x": 1}))
    assert out.failed and out.events == []


def test_truncated_logs_decode_what_is_complete_and_count_the_rest() -> None:
    logs = [*wrap(PSWAP, data(pswap_trade(True, 393)))[:-1], f"Program {PUMP} invoke [1]", "Log truncated"]
    out = decode_notification(note(logs))
    assert len(out.swaps) == 1 and out.truncated and [r.reason for r in out.rejections] == ["log_truncated"]


def test_self_cpi_copies_count_once_and_fill_in_truncated_logs() -> None:
    a, b = pump_trade("2025-08", True), pump_trade("2025-08", False)
    inner = [{"programIdIndex": 1, "accounts": [], "data": b58encode(EVENT_IX_TAG + a)},
             {"programIdIndex": 1, "accounts": [], "data": b58encode(EVENT_IX_TAG + b)},
             {"programIdIndex": 1, "accounts": [], "data": b58encode(b"\x66\x06\x3d\x12\x01\xda\xeb\xea" + b"x" * 16)}]
    full = decode_transaction(tx_json(wrap(PUMP, data(a), data(b)), inner, [k58(2), PUMP]))
    assert [s.side for s in full.swaps] == ["buy", "sell"]
    cut = decode_transaction(tx_json([f"Program {PUMP} invoke [1]", data(a), "Log truncated"], inner, [k58(2), PUMP]))
    assert [s.side for s in cut.swaps] == ["buy", "sell"] and cut.truncated


def test_base64_transaction_gives_its_signature_and_logs() -> None:
    sig = bytes(range(64))
    blob = b64(b"\x01" + sig + b"\x80rest-of-message")
    answer = {"slot": 5, "blockTime": None, "transaction": [blob, "base64"],
              "meta": {"err": None, "logMessages": wrap(ORCA, data(orca.TRADED + key(1) + b"\0" * 113))}}
    out = decode_any(answer)
    assert out.signature == b58encode(sig) and len(out.swaps) == 1


@pytest.mark.parametrize(("obj", "reason"), [
    ([], "unknown_shape"), ("x", "unknown_shape"), ({"foo": 1}, "unknown_shape"),
    ({"jsonrpc": "2.0", "result": None, "id": 1}, "tx_not_found"),
    ({"jsonrpc": "2.0", "error": {"code": -32602, "message": "bad"}, "id": 1}, "rpc_error"),
    ({"jsonrpc": "2.0", "result": 123, "id": 1}, "rpc_answer"),
    ({"jsonrpc": "2.0", "result": [1], "id": 1}, "not_a_transaction"),
    ({"method": "logsNotification", "params": None}, "not_a_notification"),
    ({"method": "logsNotification", "params": {"result": {"value": {"logs": []}}}}, "missing_field"),
    ({"method": "logsNotification", "params": {"result": {"value": {"signature": "s", "err": None, "logs": 5}}}},
     "bad_logs"),
])
def test_unusable_inputs_are_typed_rejections(obj: Any, reason: str) -> None:
    out = decode_any(obj)
    assert out.events == [] and [r.reason for r in out.rejections] == [reason]


def test_bad_base64_and_unknown_events_of_known_programs() -> None:
    logs = wrap(PUMP, "Program data: !!!notbase64", data(b"\x01\x02\x03"), data(b"\xff" * 40))
    out = decode_notification(note(logs))
    assert [r.reason for r in out.rejections] == ["bad_base64", "short_payload", "other_event"]
    assert all(r.program == "pumpfun" for r in out.rejections)


def test_events_are_frozen() -> None:
    (s,) = decode_notification(note(wrap(CPMM, data(cpmm_swap(False))))).swaps
    assert isinstance(s, Swap)
    with pytest.raises(AttributeError):
        s.amount_in = 1  # type: ignore[misc]
    assert s.to_json()["amount_in"] == 300


def _ray_ix(tag: int, accounts: list[int], program_index: int) -> dict[str, Any]:
    return {"programIdIndex": program_index, "accounts": accounts, "data": b58encode(bytes([tag]) + b"\0" * 16)}


def test_ray_log_in_a_transaction_gets_its_pool_from_the_instruction() -> None:
    """A route through two v4 pools, each swap an inner instruction of the router: each ray_log gets
    the amm (account 1) of the instruction that logged it, counted from the invoke lines."""
    keys = [k58(2), JUP, RAY, k58(40), k58(41), "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"]
    logs = ["Program ComputeBudget111111111111111111111111111111 invoke [1]",
            "Program ComputeBudget111111111111111111111111111111 success",
            f"Program {JUP} invoke [1]",
            f"Program {RAY} invoke [2]", ray_swap(3, 100, 1, 1, 100, 10, 20, 7),
            "Program TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA invoke [3]",
            "Program TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA success", f"Program {RAY} success",
            f"Program {RAY} invoke [2]", ray_swap(4, 50, 60, 2, 1, 30, 40, 55), f"Program {RAY} success",
            f"Program {JUP} success"]
    inner = [_ray_ix(9, [5, 3], 2), {"programIdIndex": 5, "accounts": [0], "data": "3Bxs"}, _ray_ix(11, [5, 4], 2)]
    tx = tx_json(logs, inner, keys)
    tx["result"]["meta"]["innerInstructions"][0]["index"] = 1
    tx["result"]["transaction"]["message"]["instructions"] = [
        {"programIdIndex": 5, "accounts": [], "data": ""}, {"programIdIndex": 1, "accounts": [], "data": ""}]
    tx["result"]["meta"]["loadedAddresses"] = {"writable": [], "readonly": []}
    out = decode_transaction(tx)
    assert [(s.event, s.pool, s.amount_in) for s in out.swaps] == [("SwapBaseIn", k58(40), 100),
                                                                  ("SwapBaseOut", k58(41), 55)]


def test_raydium_initialize2_names_pool_and_mints() -> None:
    init = struct.pack("<BQBBQQQQ32s", 0, 1, 6, 9, 1, 1, 10**15, 79 * 10**9, key(7))
    keys = [k58(2), RAY] + [k58(50 + i) for i in range(7)] + [WSOL_MINT, k58(60)] + [k58(70 + i) for i in range(12)]
    accounts = [2, 3, 4, 5, 6, 7, 8, 9, 9, 10, *range(11, 21)]  # 4: the amm; 8: coin (WSOL); 9: pc (the token)
    tx = tx_json(wrap(RAY, "Program log: ray_log: " + b64(init)), [], keys)
    tx["result"]["transaction"]["message"]["instructions"] = [
        {"programIdIndex": 1, "accounts": accounts, "data": b58encode(bytes([1]) + b"\0" * 25)}]
    (e,) = decode_transaction(tx).events
    assert isinstance(e, PoolEvent)
    assert (e.kind, e.pool, e.mint, e.quote_mint) == ("pool_created", keys[accounts[4]], k58(60), WSOL_MINT)
