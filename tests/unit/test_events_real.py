"""The decoders on real mainnet transactions (``../shared/data/onchain/``, next to the repo root).

Each ``*.expected.json`` holds the event fields decoded independently from the raw bytes. Two checks
per event: every field :func:`payload_fields` reads from the payload (log line or self-CPI inner
instruction, as the expected file says) equals the expected value; and the whole input through
the dispatcher (``decode_any`` for transactions, the log walk for log excerpts) yields exactly the
expected trades once each (log and self-CPI copies counted once, foreign programs' events ignored)
with the amounts, pool, mint, side and signer the event states. Skipped when the folder is absent.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dexscan.chain.events import (
    PROGRAM_IDS,
    Decoded,
    PoolEvent,
    Swap,
    TxContext,
    decode_any,
    decode_event_instruction,
    decode_logs,
    payload_fields,
)
from dexscan.chain.events.codec import EVENT_IX_TAG, WSOL_MINT, b58decode, b64decode, side_from_mints

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "onchain"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"no real on-chain data at {DATA}")
EXPECTED = sorted(DATA.glob("*/*.expected.json")) if DATA.is_dir() else []
WITH_EVENTS = [p for p in EXPECTED if any("decoded" in e for e in json.loads(p.read_text())["events"])]


def _raw(expected_path: Path) -> dict[str, Any]:
    return json.loads(expected_path.with_name(expected_path.name.replace(".expected", "")).read_text())


def _logs(raw: dict[str, Any]) -> list[str]:
    if "logMessages" in raw:
        return list(raw["logMessages"])
    tx = raw.get("result", raw)
    return list(tx["meta"]["logMessages"])


def _payload(raw: dict[str, Any], event: dict[str, Any]) -> bytes | str:
    """The event's bytes where the expected file says it is (ray_log: its base64 text)."""
    if event["via"] == "log":
        line = _logs(raw)[event["log_index"]]
        if "ray_log: " in line:
            return line.split("ray_log: ", 1)[1]
        raw_bytes = b64decode(line.removeprefix("Program data: "))
        assert raw_bytes is not None
        return raw_bytes
    where = event["where"]
    m = re.fullmatch(r"inner\[(\d+)\]\[(\d+)\]", where)
    if m:
        tx = raw.get("result", raw)
        group = next(g for g in tx["meta"]["innerInstructions"] if g["index"] == int(m[1]))
        data = group["instructions"][int(m[2])]["data"]
    else:
        m = re.fullmatch(r"ix\[(\d+)\]", where)
        assert m, where
        data = raw["instructions"][int(m[1])]["data"]
    ix = b58decode(data)
    assert ix[:8] == EVENT_IX_TAG
    return ix[8:]


def _expected_summary(program: str, event: str, d: dict[str, Any]) -> tuple[Any, ...]:
    """(kind, program, pool, mint, amount_in, amount_out, side, signer) as the decoder should state it."""
    if program == "pumpfun" and event == "TradeEvent":
        curve = _curve(d["mint"])
        if d["is_buy"]:
            return ("swap", program, curve, d["mint"], d["sol_amount"], d["token_amount"], "buy", d["user"])
        return ("swap", program, curve, d["mint"], d["token_amount"], d["sol_amount"], "sell", d["user"])
    if program == "pumpfun" and event == "CreateEvent":
        return ("pool_created", program, d["bonding_curve"], d["mint"], None, None, None, d["user"])
    if program == "pumpswap" and event == "BuyEvent":
        return ("swap", program, d["pool"], None, d["quote_amount_in"], d["base_amount_out"], "buy", d["user"])
    if program == "pumpswap" and event == "SellEvent":
        return ("swap", program, d["pool"], None, d["base_amount_in"], d["quote_amount_out"], "sell", d["user"])
    if program == "raydium_amm_v4":
        return ("swap", program, "<amm>", None, d["amount_in"], d["out_amount"], None, "?")
    if program == "raydium_clmm":
        a_in, a_out = (d["amount_0"], d["amount_1"]) if d["zero_for_one"] else (d["amount_1"], d["amount_0"])
        return ("swap", program, d["pool_state"], None, a_in, a_out, None, "?")
    if program == "raydium_cpmm":
        side, mint = side_from_mints(d.get("input_mint"), d.get("output_mint"))
        return ("swap", program, d["pool_id"], mint, d["input_amount"], d["output_amount"], side, "?")
    if program == "orca_whirlpool":
        return ("swap", program, d["whirlpool"], None, d["input_amount"], d["output_amount"], None, "?")
    if program == "meteora_dlmm":
        return ("swap", program, d["lb_pair"], None, d["amount_in"], d["amount_out"], None, d["from"])
    raise AssertionError(f"no summary rule for {program}.{event}")


def _curve(mint: str) -> str:
    """The bonding curve as solders (Rust) derives it: an independent check of the pure-Python PDA."""
    from solders.pubkey import Pubkey

    pid = Pubkey.from_string(PROGRAM_IDS["pumpfun"])
    return str(Pubkey.find_program_address([b"bonding-curve", bytes(Pubkey.from_string(mint))], pid)[0])


def test_the_pump_bonding_curve_is_the_account_the_transactions_used() -> None:
    """The derived curve equals the bonding-curve account of the real buy/sell instructions (account 3)
    and the one the real CreateEvent names."""
    for name in ("pumpfun/3tkxRjNDfth6NxXp_vixen_ixtree", "pumpfun/4GtxzHLTW8ZqhhHL_vixen_ixtree"):
        raw = json.loads((DATA / f"{name}.json").read_text())
        (trade,) = _decode_whole(raw).swaps
        ix = raw["instructions"][0]
        assert (ix["accounts"][2], ix["accounts"][3]) == (trade.mint, trade.pool)
    raw = json.loads((DATA / "pumpfun" / "52ar89rghM8EwKZk_chainstack_create.json").read_text())
    create, trade = decode_any(raw).events
    assert isinstance(create, PoolEvent) and isinstance(trade, Swap) and create.pool == trade.pool


def _summary(e: Swap | PoolEvent, signer_known: bool) -> tuple[Any, ...]:
    if isinstance(e, Swap):
        return ("swap", e.program, e.pool, e.mint, e.amount_in, e.amount_out, e.side,
                e.signer if signer_known else "?")
    return (e.kind, e.program, e.pool, e.mint, None, None, None, e.creator)


def _decode_whole(raw: dict[str, Any]) -> Decoded:
    if "kind" not in raw:  # a getTransaction answer (response or result)
        return decode_any(raw)
    out = Decoded()  # fixtures of log lines or of an instruction tree: the same walk, no envelope
    ctx = TxContext(raw.get("signature") or "fixture")
    if raw.get("logMessages"):
        decode_logs(raw["logMessages"], ctx, out, default_program=raw.get("program_id"))
    for ix in raw.get("instructions", []):
        decode_event_instruction(ix["program"], ix["data"], ctx, out)
    return out


def test_the_real_data_is_there_and_covers_every_program() -> None:
    programs = {e["program"] for p in WITH_EVENTS for e in json.loads(p.read_text())["events"] if "decoded" in e}
    assert programs == set(PROGRAM_IDS), programs


@pytest.mark.parametrize("path", WITH_EVENTS, ids=lambda p: f"{p.parent.name}/{p.name.split('.')[0]}")
def test_every_field_equals_the_independent_decoding(path: Path) -> None:
    expected = json.loads(path.read_text())
    raw = _raw(path)
    for event in expected["events"]:
        if "decoded" not in event:
            continue
        got = payload_fields(PROGRAM_IDS[event["program"]], _payload(raw, event))
        assert got is not None, event
        name, fields = got
        assert name.removesuffix("Log") == event["event"].removesuffix("Log")
        if isinstance(_payload(raw, event), bytes):
            assert len(_payload(raw, event)) == event["len"]
        for key, value in event["decoded"].items():
            assert fields.get(key) == value, (path.name, event.get("where", event.get("log_index")), key)


@pytest.mark.parametrize("path", WITH_EVENTS, ids=lambda p: f"{p.parent.name}/{p.name.split('.')[0]}")
def test_the_dispatcher_yields_each_event_once_with_its_summary(path: Path) -> None:
    expected = json.loads(path.read_text())
    raw = _raw(path)
    out = _decode_whole(raw)
    assert not out.rejections, out.rejections
    want = Counter()
    copies: Counter[tuple[Any, ...]] = Counter()
    for e in expected["events"]:
        if "decoded" in e:  # log and self-CPI copies of one event: count the most copies of one kind
            copies[(_expected_summary(e["program"], e["event"], e["decoded"]), e["via"])] += 1
    for (summary, _via), n in copies.items():
        want[summary] = max(want[summary], n)
    amm = _raydium_amm(raw)  # ray_log names no pool; a transaction's swap instruction does (account 1)
    want = Counter({tuple(amm if v == "<amm>" else v for v in k): n for k, n in want.items()})
    got = Counter(_summary(e, signer_known=_summary_signer_known(e)) for e in out.events)
    assert got == want
    if expected.get("signature"):
        assert out.signature == expected["signature"] or "kind" in raw
    if expected.get("slot") is not None:
        assert out.slot == expected["slot"]
        assert all(e.slot == expected["slot"] for e in out.events)
    if expected.get("blockTime") is not None:
        assert all(e.block_time == expected["blockTime"] for e in out.events)


def _raydium_amm(raw: dict[str, Any]) -> str | None:
    """Account 1 of the transaction's top-level Raydium AMM v4 instruction (None for log excerpts)."""
    tx = raw.get("result", raw)
    if "kind" in raw or not isinstance(tx.get("transaction"), dict):
        return None
    keys = tx["transaction"]["message"]["accountKeys"]
    for ix in tx["transaction"]["message"]["instructions"]:
        if "programIdIndex" in ix and keys[ix["programIdIndex"]] == PROGRAM_IDS["raydium_amm_v4"]:
            return str(keys[ix["accounts"][1]])
    return None


def _summary_signer_known(e: Swap | PoolEvent) -> bool:
    """Programs whose event names the trader (the expected summary has it); others say "?"."""
    return e.program in ("pumpfun", "pumpswap", "meteora_dlmm")


def test_the_failed_transaction_records_nothing() -> None:
    """The real Meteora transaction, marked failed as the RPC would: no event, one tx_failed."""
    raw = _raw(DATA / "meteora_dlmm" / "2DfsmTYvMqKwXDBE_vixen.expected.json")
    raw["meta"]["err"] = {"InstructionError": [1, {"Custom": 6003}]}
    out = decode_any(raw)
    assert out.failed and out.events == [] and [r.reason for r in out.rejections] == ["tx_failed"]


def test_a_pump_trade_settles_in_sol() -> None:
    raw = _raw(DATA / "pumpfun" / "22K6ixTV6Hk9mk9d_vixen.expected.json")
    (trade,) = decode_any(raw).swaps
    assert (trade.mint_in, trade.mint_out) == (WSOL_MINT, trade.mint)
    assert trade.block_time == 1759852522  # the event's own timestamp: the gRPC dump has no blockTime
