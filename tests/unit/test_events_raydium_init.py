"""Raydium AMM v4 ``initialize2``: the new pool and its mints, read from a ``getTransaction`` answer.

Its ``ray_log`` ``InitLog`` (75 bytes) names neither pool nor mint; the instruction that logged it
does (``program/src/instruction.rs``: amm at account 4, coin mint 8, pc mint 9), top-level or invoked
by another program (pump.fun's old Raydium migrations). Hand-built answers with exact bytes; and the
real mainnet Init transactions of ``../shared/data/onchain/raydium_amm_v4`` when there are any.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest

from dexscan.chain.events import PoolEvent, decode_transaction
from dexscan.chain.events.codec import b58encode

RAY = "675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8"
WSOL = "So11111111111111111111111111111111111111112"
TOKEN = "7GCihgDB8fe6KNjn2MYtkzZcRjQy3t9GHdC8uHYmW2hr"
POOL = "HjMAbn1Vo3ydit5H1ijqW1XdknjQHLWpxaYeF7yYfatt"
PAYER = "39azUYFWPz3VHgKCf3VChUwbpURdCHRxjWVowf5jUJjg"
MARKET = "8te8chQGBcAmdWjeWEpaiCt2oRpFTc2JfNaiymYQx6RH"
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "onchain" / "raydium_amm_v4"

#: InitLog: type 0, time, pc_decimals 6, coin_decimals 9, lot sizes 1 and 1, pc 206.9M tokens, coin 79 SOL, market
INIT_LOG = struct.pack("<BQBBQQQQ32s", 0, 1_717_000_000, 6, 9, 1, 1, 206_900_000_000_000, 79_005_359_123,
                       bytes(range(32)))
#: initialize2: tag 1, nonce 254, open_time 0, init_pc_amount, init_coin_amount
INITIALIZE2 = b58encode(struct.pack("<BBQQQ", 1, 254, 0, 206_900_000_000_000, 79_005_359_123))


def _keys() -> list[str]:
    """Account keys: the payer, the program, then 19 more; index 5 the pool, 9 WSOL (coin), 10 the token (pc)."""
    others = [b58encode(bytes([i]) * 32) for i in range(1, 20)]
    keys = [PAYER, RAY, *others]
    keys[5], keys[9], keys[10], keys[18] = POOL, WSOL, TOKEN, MARKET
    return keys


#: initialize2's 21 accounts as indexes into _keys(): amm (4th) -> 5, coin mint (8th) -> 9, pc mint (9th) -> 10
ACCOUNTS = [2, 3, 4, 6, 5, 7, 8, 11, 9, 10, 12, 13, 14, 15, 16, 17, 18, 0, 19, 20, 11]


def _answer(instructions: list[dict[str, object]], inner: list[dict[str, object]], logs: list[str],
            err: object = None) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": 1, "result": {
        "slot": 270_000_000, "blockTime": 1_717_000_001,
        "meta": {"err": err, "innerInstructions": inner, "logMessages": logs, "loadedAddresses":
                 {"writable": [], "readonly": []}},
        "transaction": {"signatures": ["5" * 88], "message": {"accountKeys": _keys(), "instructions": instructions}}}}


def _ray_logs(depth: int) -> list[str]:
    return [f"Program {RAY} invoke [{depth}]",
            "Program log: initialize2: InitializeInstruction2 { nonce: 254, open_time: 0, init_pc_amount: "
            "206900000000000, init_coin_amount: 79005359123 }",
            f"Program log: ray_log: {base64.b64encode(INIT_LOG).decode()}",
            f"Program {RAY} consumed 91234 of 400000 compute units", f"Program {RAY} success"]


def _init(answer: dict[str, object]) -> PoolEvent:
    decoded = decode_transaction(answer)
    assert not decoded.failed and decoded.rejections == []
    (ev,) = decoded.events
    assert isinstance(ev, PoolEvent)
    return ev


def test_a_top_level_initialize2_names_the_pool_and_the_token() -> None:
    ix = {"programIdIndex": 1, "accounts": ACCOUNTS, "data": INITIALIZE2, "stackHeight": None}
    ev = _init(_answer([ix], [], _ray_logs(1)))
    assert (ev.program, ev.event, ev.kind) == ("raydium_amm_v4", "Init", "pool_created")
    assert (ev.pool, ev.mint, ev.quote_mint) == (POOL, TOKEN, WSOL)  # the pc is the token here, the coin WSOL
    assert (ev.base_amount, ev.quote_amount, ev.layout_size) == (79_005_359_123, 206_900_000_000_000, 75)
    assert (ev.signature, ev.slot, ev.block_time) == ("5" * 88, 270_000_000, 1_717_000_001)


def test_an_initialize2_invoked_by_another_program_names_them_too() -> None:
    """pump.fun's migrations called initialize2 from their own program: an inner instruction."""
    migrator = {"programIdIndex": 3, "accounts": [0, 1], "data": "3Bxs4h24hBtQy9rw", "stackHeight": None}
    inner = [{"index": 0, "instructions": [
        {"programIdIndex": 1, "accounts": ACCOUNTS, "data": INITIALIZE2, "stackHeight": 2}]}]
    migrator_id = _keys()[3]
    logs = [f"Program {migrator_id} invoke [1]", *_ray_logs(2), f"Program {migrator_id} success"]
    ev = _init(_answer([migrator], inner, logs))
    assert (ev.pool, ev.mint, ev.quote_mint) == (POOL, TOKEN, WSOL)


def test_without_initialize2_or_a_known_quote_the_init_names_nothing() -> None:
    swap_tagged = {"programIdIndex": 1, "accounts": ACCOUNTS, "data": b58encode(bytes([9]) + bytes(16)),
                   "stackHeight": None}
    ev = _init(_answer([swap_tagged], [], _ray_logs(1)))  # tag 9 is a swap: it names no mints
    assert (ev.pool, ev.mint) == (None, None)
    two_tokens = [*ACCOUNTS]
    two_tokens[8] = 19  # coin mint: not a quote either
    ix = {"programIdIndex": 1, "accounts": two_tokens, "data": INITIALIZE2, "stackHeight": None}
    ev = _init(_answer([ix], [], _ray_logs(1)))
    assert (ev.pool, ev.mint, ev.quote_mint) == (POOL, None, None)
    failed = decode_transaction(_answer([ix], [], _ray_logs(1), err={"InstructionError": [0, {"Custom": 1}]}))
    assert failed.failed and failed.events == []


def _real_inits() -> list[Path]:
    if not DATA.is_dir():
        return []
    return [p for p in sorted(DATA.glob("*.expected.json"))
            if any(e.get("event") == "InitLog" for e in json.loads(p.read_text()).get("events", []))]


@pytest.mark.parametrize("expected_path", _real_inits() or [None])
def test_real_mainnet_initialize2(expected_path: Path | None) -> None:
    if expected_path is None:
        pytest.skip(f"no Raydium v4 Init transaction in {DATA}")
    raw = json.loads(expected_path.with_name(expected_path.name.replace(".expected.json", ".json")).read_text())
    expected = json.loads(expected_path.read_text())
    inits = [e for e in decode_transaction(raw).events if isinstance(e, PoolEvent) and e.event == "Init"]
    assert len(inits) == sum(1 for e in expected["events"] if e.get("event") == "InitLog")
    for ev in inits:
        assert ev.pool is not None and ev.mint is not None
