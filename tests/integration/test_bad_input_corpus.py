"""The bad-input corpus at CI size, plus the exact cases behind each parser fix it led to.

``scripts/corpus_run.py`` runs the full corpus (10,000 mutations per client); here 1,500 per
client go through every production parser, every byte-level mutation of one answer per client
goes through the real HTTP layer, and the bugs the corpus found are pinned as exact cases.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.exceptions import ClientDecodeError
from solana.rpc.core import RPCException
from solders.pubkey import Pubkey
from solders.rpc.errors import NodeUnhealthyMessage

from dexscan.alerts.telegram.transport import UpdatePoller, create_bot, describe_error
from dexscan.chain.answers import decode_largest_accounts, decode_multiple_accounts
from dexscan.chain.rpc import RpcPool
from dexscan.clock import SimClock
from dexscan.domain import USDC_MINT, Candle, Timeframe
from dexscan.errors import BadPayload, RpcBadAnswer, RpcUnavailable
from dexscan.sources import build_clients
from dexscan.sources.birdeye import parse_ohlcv_item
from dexscan.sources.dexscreener import parse_pair
from dexscan.sources.geckoterminal import parse_ohlcv_row
from dexscan.sources.http import HttpLayer
from dexscan.sources.jupiter import parse_token
from dexscan.sources.parse import ParseContext, bar_series, to_float
from dexscan.store import Store
from tests.support.corpus import (
    BODY_KINDS,
    CLIENTS,
    TARGETS,
    TELEGRAM_TOKEN,
    BytesServer,
    Shape,
    StoreCheck,
    corpus_settings,
    mutate,
    nested,
    record_shapes,
    run_corpus,
    run_http_corpus,
)

NOW = 1_760_000_000
CTX = ParseContext("corpus", "/test")
MINT = "So11111111111111111111111111111111111111112"


@pytest.fixture(scope="module")
def shapes() -> list[Shape]:
    return asyncio.run(record_shapes(7))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(tmp_path / "corpus.db")
    try:
        yield store
    finally:
        await store.close()


def _bad(exc: pytest.ExceptionInfo[BadPayload]) -> tuple[str, str]:
    return exc.value.field, exc.value.problem


# ---------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------


def test_recorded_shapes_cover_every_parser(shapes: list[Shape]) -> None:
    assert {s.target for s in shapes} == set(TARGETS)
    assert {s.client for s in shapes} == set(CLIENTS)
    updates = next(s for s in shapes if s.target == "telegram:getUpdates").payload
    assert [u["message"]["text"] for u in updates["result"]][:2] == [
        "/start", "/check So11111111111111111111111111111111111111112"]
    ohlcv = next(s for s in shapes if s.target == "geckoterminal:ohlcv").payload
    assert len(ohlcv["data"]["attributes"]["ohlcv_list"]) == 4  # six rows recorded, trimmed to four
    accounts = next(s for s in shapes if s.target == "rpc:getMultipleAccounts").payload
    assert all(a["data"][1] == "base64" for a in accounts["result"]["value"])


async def test_ci_sized_corpus_has_no_crash_and_names_every_field(shapes: list[Shape], db: Store) -> None:
    tallies = await run_corpus(shapes, 1500, db, seed=7)
    assert set(tallies) == set(CLIENTS)
    for client, t in tallies.items():
        assert t.mutations == 1500, client
        assert (t.crashes, t.fieldless, t.malformed_stored) == (0, 0, 0), (client, t.samples)
        assert t.accepted + sum(t.rejected.values()) == 1500
        assert sum(t.rejected.values()) > 0 and t.accepted > 0, client
        assert t.stored_rows_checked > 0, client
        assert all(field.split(":", 1)[1] for field in t.rejected_fields), client
    # Record-level problems are skipped and counted by field, the rest of the answer kept.
    assert tallies["geckoterminal"].skipped_records["ohlcv:ohlcv_list.high"] > 0
    assert tallies["dexscreener"].skipped_records["tokens:baseToken.address"] > 0
    assert set(tallies["rpc"].rejected) == {"RpcBadAnswer"}
    assert set(tallies["telegram"].rejected) <= {"ClientDecodeError", "TelegramAPIError"}


async def test_corpus_is_deterministic(shapes: list[Shape], tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        store = await Store.open(tmp_path / f"{name}.db")
        try:
            tallies = await run_corpus(shapes, 150, store, seed=11, clients=("birdeye", "rpc"))
        finally:
            await store.close()
        runs.append({c: t.as_json() for c, t in tallies.items()})
    assert runs[0] == runs[1]


async def test_mutated_bytes_through_the_http_layer(shapes: list[Shape], db: Store) -> None:
    kinds = [k for k in BODY_KINDS if k != "ten_mb_records"]  # 10 MB of records is the full run's
    tallies = await run_http_corpus(shapes, db, seed=7, targets_per_client=1, kinds=kinds)
    for client, t in tallies.items():
        assert t.mutations == len(kinds), client
        assert (t.crashes, t.fieldless, t.malformed_stored) == (0, 0, 0), (client, t.samples)
    for client in ("jupiter", "dexscreener", "geckoterminal", "birdeye"):
        t = tallies[client]
        # utf16, bom, NaN/1e999 literals, 10 MB string and 10 MB whitespace parse; the rest do not.
        assert t.accepted == 6, (client, t.as_json())
        assert set(t.rejected) == {"BadPayload"}
        assert {f.split(":")[1] for f in t.rejected_fields} == {"<body>"}
    assert set(tallies["rpc"].rejected) == {"RpcUnavailable"}
    assert tallies["telegram"].rejected == {"ClientDecodeError": len(kinds) - tallies["telegram"].accepted}
    # The offsets UpdatePoller kept: the utf16 and bom bodies, and the NaN and 1e999 ones, whose first
    # update (its update_id the first number) is skipped and counted while the others are answered.
    assert tallies["telegram"].stored_rows_checked == tallies["telegram"].accepted == 4


def test_mutations_never_change_the_recorded_shape() -> None:
    import copy
    import random

    payload = {"a": {"b": [1, 2, "x"]}, "c": {"d": 1.5, "e": None}}
    before = copy.deepcopy(payload)
    rng = random.Random(3)
    changed = 0
    for _ in range(300):
        out, notes = mutate(payload, rng, ops=2)
        assert len(notes) == 2
        changed += out != payload
        if notes[0].split("@")[1].startswith(".a") and notes[1].split("@")[1].startswith(".a"):
            assert out["c"] is payload["c"]  # only containers on a mutated path are copied
    assert payload == before
    assert changed > 250


# ---------------------------------------------------------------------------------------------
# Exact cases: each bug the corpus found, fixed in the parser
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "problem"), [
    (b"[" * 100_000 + b"]" * 100_000, "not JSON: nested too deeply (starts with '[[[["),
    (b"[" + b"1" * 5000 + b"]", "not JSON: integer too long (starts with '[111"),
    (b'[{"id": "\xff\xfe"}]', "not JSON: UnicodeDecodeError (starts with '[{\"id\": \""),
])
async def test_bodies_json_refuses_are_bad_payloads_not_crashes(body: bytes, problem: str) -> None:
    """json.loads raises RecursionError (deep nesting) and a bare ValueError (5,000 digits): both
    escaped the HTTP layer untyped."""
    async with BytesServer() as server:
        settings = corpus_settings(**{"sources.jupiter.base_url": server.url, "http.retries": 0})
        server.body = body
        async with HttpLayer(settings, SimClock(NOW)) as http:
            with pytest.raises(BadPayload) as exc:
                await build_clients(settings, http).jupiter.recent()
            stats = http.stats()["jupiter"]
    assert exc.value.field == "<body>"
    assert exc.value.problem.startswith(problem)
    assert stats.errors == {"not_json": 1}


async def test_a_ten_megabyte_answer_is_parsed() -> None:
    async with BytesServer() as server:
        settings = corpus_settings(**{"sources.geckoterminal.base_url": server.url})
        bar = Timeframe.M5.floor(NOW)
        rows = [[bar - 300 * i, 1.0, 1.5, 0.5, 1.2, 10.0] for i in range(3)]
        server.body = b" " * 10 * 1024 * 1024 + json.dumps({"data": {"attributes": {"ohlcv_list": rows}}}).encode()
        async with HttpLayer(settings, SimClock(NOW)) as http:
            candles = await build_clients(settings, http).geckoterminal.ohlcv("pool", Timeframe.M5)
    assert [c.ts for c in candles] == [bar - 600, bar - 300, bar]


def test_a_number_too_large_for_a_float_is_refused() -> None:
    with pytest.raises(BadPayload) as exc:
        to_float(10**400, "usdPrice", CTX)  # float() raised OverflowError
    assert _bad(exc) == ("usdPrice", "expected a finite number, got " + "1" + "0" * 36 + "...")


@pytest.mark.parametrize(("row", "field", "problem"), [
    ([10**20, 1, 2, 0.5, 1, 1], "ohlcv_list.ts", "integer out of range, got 100000000000000000000"),
    ([NOW, 1, 0.5, 2, 1, 1], "ohlcv_list.high", "high 0.5 is below the bar's open/close/low"),
    ([NOW, 1, 2, 1.5, 1.2, 1], "ohlcv_list.low", "low 1.5 is above the bar's open/close"),
])
def test_gecko_bars_out_of_range_or_not_bracketing_are_refused(row: list[Any], field: str, problem: str) -> None:
    """A 10^20 ts failed inside SQLite (OverflowError); a high below the low was stored."""
    with pytest.raises(BadPayload) as exc:
        parse_ohlcv_row(row, CTX)
    assert _bad(exc) == (field, problem)


def test_gecko_bars_in_milliseconds_are_refused_as_a_series() -> None:
    """Each such bar was refused with a warning of its own (6,000 lines per fetch); now the answer is."""
    bars = [parse_ohlcv_row([(NOW - 300 * i) * 1000, 1, 2, 0.5, 1, 1], CTX) for i in range(3)]
    with pytest.raises(BadPayload) as exc:
        bar_series(bars, 300, "ohlcv_list.ts", CTX)
    assert _bad(exc) == ("ohlcv_list.ts", "3 of 3 bar times are milliseconds or garbage, not epoch seconds "
                                          "(e.g. 1760000000000); the whole answer is refused")


def test_birdeye_bar_with_high_below_low_is_refused() -> None:
    with pytest.raises(BadPayload) as exc:
        parse_ohlcv_item({"unixTime": NOW, "o": 1, "h": 0.9, "l": 1.1, "c": 1, "v": 5}, CTX)
    assert _bad(exc) == ("h", "high 0.9 is below the bar's open/close/low")
    assert parse_ohlcv_item({"unixTime": NOW, "o": 1, "h": 1.5, "l": 0.9, "c": 1.25, "v": 4}, CTX) == Candle(
        NOW, 1.0, 1.5, 0.9, 1.25, 5.0)


@pytest.mark.parametrize(("record", "field", "problem"), [
    ({"id": MINT, "symbol": "\ud800"}, "symbol", "not valid Unicode text (an unpaired surrogate)"),
    ({"id": MINT, "tags": ["ok", "a\udfffb"]}, "tags", "not valid Unicode text (an unpaired surrogate)"),
    ({"id": MINT, "decimals": 10**30}, "decimals", "integer out of range, got 1000000000000000000000000000000"),
    ({"id": MINT, "decimals": 256}, "decimals", "expected decimals from 0 to 255, got 256"),
    ({"id": MINT, "createdAt": 1e300}, "createdAt", "expected a time between 1970 and 9999, got 1e+300"),
    ({"id": MINT, "createdAt": "0001-01-01T00:00:00Z"}, "createdAt",
     "expected a time between 1970 and 9999, got '0001-01-01T00:00:00Z'"),
])
def test_token_fields_the_store_could_not_hold_are_refused(record: dict[str, Any], field: str, problem: str) -> None:
    """A lone surrogate raised UnicodeEncodeError and a 10^30 decimals OverflowError in SQLite."""
    with pytest.raises(BadPayload) as exc:
        parse_token(record, CTX)
    assert _bad(exc) == (field, problem)


def test_pair_created_at_beyond_year_9999_is_refused() -> None:
    pair = {"chainId": "solana", "pairAddress": USDC_MINT, "baseToken": {"address": MINT},
            "quoteToken": {"address": USDC_MINT},
            "pairCreatedAt": 1e300}
    with pytest.raises(BadPayload) as exc:
        parse_pair(pair, CTX, NOW)
    assert _bad(exc) == ("pairCreatedAt", "expected a time between 1970 and 9999, got 1e+300")


def _accounts_answer(**account: Any) -> str:
    entry = {"data": ["AAAA", "base64"], "executable": False, "lamports": 1,
             "owner": "11111111111111111111111111111111", "rentEpoch": 2**64 - 1, "space": 3, **account}
    return json.dumps({"jsonrpc": "2.0", "result": {"context": {"slot": 5}, "value": [None, entry]}, "id": 1})


@pytest.mark.parametrize(("raw", "field", "problem"), [
    (_accounts_answer(owner="not-an-address"), "result.value[1].owner", "not a Solana address: 'not-an-address'"),
    (_accounts_answer(lamports=-1), "result.value[1].lamports", "expected 0 to 2^64-1, got -1"),
    (_accounts_answer(data=["!!", "base64"]), "result.value[1].data", "not valid base64"),
    (_accounts_answer(space=82), "result.value[1].space", "says 82 bytes, data holds 3"),
    (_accounts_answer(executable="false"), "result.value[1].executable", "expected a boolean, got 'false'"),
    ("[" * 100_000, "<body>", "not JSON: nested too deeply"),
    ('{"jsonrpc": "2.0", "result": {"context": {"slot": NaN}, "value": []}, "id": 1}', "result.context.slot",
     "expected an unsigned integer, got nan"),
])
def test_rpc_account_answers_name_the_broken_field(raw: str, field: str, problem: str) -> None:
    """solders said only "data did not match any variant of untagged enum Resp"."""
    with pytest.raises(RpcBadAnswer) as exc:
        decode_multiple_accounts(raw)
    assert (exc.value.method, exc.value.field, exc.value.problem) == ("getMultipleAccounts", field, problem)


def test_rpc_accounts_decode_like_solders() -> None:
    slot, accounts = decode_multiple_accounts(_accounts_answer())
    assert slot == 5 and accounts[0] is None
    acc = accounts[1]
    assert acc is not None
    assert (bytes(acc.data), acc.lamports, str(acc.owner), acc.rent_epoch) == (b"\0\0\0", 1,
                                                                                "11111111111111111111111111111111",
                                                                                2**64 - 1)


@pytest.mark.parametrize(("amount", "problem"), [
    ("-5", "expected a decimal string, got '-5'"),
    ("1e3", "expected a decimal string, got '1e3'"),
    ("١٢", "expected a decimal string, got '١٢'"),
    ("18446744073709551616", "expected at most 2^64-1, got '18446744073709551616'"),
    (12, "expected a decimal string, got 12"),
])
def test_largest_accounts_amounts_must_be_u64_strings(amount: Any, problem: str) -> None:
    """``int(amount)`` turned "-5" into a negative holder balance (and a negative top-10 share)."""
    raw = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"context": {"slot": 1}, "value": [
        {"address": MINT, "amount": amount, "decimals": 6, "uiAmount": 0.0, "uiAmountString": "0"}]}})
    with pytest.raises(RpcBadAnswer) as exc:
        decode_largest_accounts(raw)
    assert (exc.value.field, exc.value.problem) == ("result.value[0].amount", problem)


def test_rpc_error_answers_keep_their_typed_solana_errors() -> None:
    raw = json.dumps({"jsonrpc": "2.0", "id": 1, "error": {"code": -32005, "message": "Node is behind by 9 slots",
                                                           "data": {"numSlotsBehind": 9}}})
    with pytest.raises(RPCException) as exc:
        decode_multiple_accounts(raw)
    assert isinstance(exc.value.args[0], NodeUnhealthyMessage)
    with pytest.raises(RpcBadAnswer) as bad:
        decode_multiple_accounts('{"jsonrpc": "2.0", "id": 1, "error": {"code": "x"}}')
    assert bad.value.field == "error"


async def test_the_pool_fails_over_and_names_the_field() -> None:
    async with BytesServer() as server:
        server.body = _accounts_answer(owner="not-an-address").encode()
        settings = corpus_settings()
        async with RpcPool([server.url], settings.rpc, SimClock(NOW)) as pool:
            with pytest.raises(RpcUnavailable) as exc:
                await pool.get_multiple_accounts([Pubkey.from_string(MINT), Pubkey.from_string(MINT)])
    assert str(exc.value) == (
        f"no RPC endpoint could serve getMultipleAccounts: {server.url}: unreadable answer (RpcBadAnswer: "
        "getMultipleAccounts: bad answer at result.value[1].owner: not a Solana address: 'not-an-address')")


async def test_a_non_utf8_get_updates_answer_is_a_decode_error(db: Store) -> None:
    """aiogram reads the body as strict UTF-8: a UnicodeDecodeError escaped poll_once untyped."""
    async with BytesServer() as server:
        server.body = b'{"ok": true, "result": [{"update_id": 1, "\xff": 2}]}'
        settings = corpus_settings(**{"telegram.base_url": server.url})
        bot = create_bot(settings, db, SimClock(NOW), token=TELEGRAM_TOKEN)
        try:
            with pytest.raises(ClientDecodeError) as exc:
                await UpdatePoller(bot, Dispatcher(), db).poll_once(0)
        finally:
            await bot.session.close()
    assert describe_error(exc.value) == "ClientDecodeError: bad answer at <body>: not JSON (UnicodeDecodeError)"
    assert await db.kv_get(UpdatePoller.OFFSET_KEY) is None


async def test_a_bad_update_is_described_in_one_line_naming_the_field(db: Store) -> None:
    async with BytesServer() as server:
        server.body = json.dumps({"ok": True, "result": [{"update_id": "x" * 5_000_000}]}).encode()
        settings = corpus_settings(**{"telegram.base_url": server.url})
        bot = create_bot(settings, db, SimClock(NOW), token=TELEGRAM_TOKEN)
        try:
            with pytest.raises(ClientDecodeError) as exc:
                await UpdatePoller(bot, Dispatcher(), db).poll_once(0)
        finally:
            await bot.session.close()
    assert describe_error(exc.value) == (
        "ClientDecodeError: bad answer at result.0.update_id: Input should be a valid integer, "
        "unable to parse string as an integer")


async def test_store_check_catches_what_must_not_be_stored(db: Store) -> None:
    """The corpus's own oracle: a bar that does not bracket, a NaN, a negative price are caught."""
    from tests.support.corpus import Malformed

    check = StoreCheck(db, NOW)
    shape = Shape("geckoterminal", "geckoterminal:ohlcv", None, ("pool",))
    assert await check.keep(shape, [Candle(NOW, 1.0, 2.0, 0.5, 1.5, 3.0)]) == 1
    for bar in (Candle(NOW, 1.0, 0.5, 2.0, 1.0, 1.0), Candle(NOW, 1.0, 2.0, 0.5, 1.0, math.nan),
                Candle(NOW, -1.0, 2.0, -2.0, 1.0, 1.0)):
        with pytest.raises(Malformed):
            await check.keep(shape, [bar])
    assert nested(3) == [[[1]]]
