"""The bad-input corpus: real payload shapes, recorded from the loopback fakes, mutated on purpose.

Why: SPEC §10 promises that no provider answer can crash the scanner or put garbage in the
database. Unit tests show that for the cases someone thought of; this corpus shows it for tens of
thousands of cases nobody wrote by hand. It works in three steps:

1. **Record** (:func:`record_shapes`): ask the fakes (market, RPC, Telegram) over HTTP for every
   answer a client parses — Jupiter search/top/recent/price, DexScreener tokens/pairs/profiles/
   boosts, GeckoTerminal OHLCV/pools, Birdeye OHLCV v1/v3/overview/security, Solana
   ``getMultipleAccounts``/``getTokenLargestAccounts``, Telegram ``getUpdates`` — and keep the JSON.
   The fakes speak the real contracts, so these are real shapes.
2. **Mutate** (:func:`mutate`): deterministic, seeded. Drop keys, nulls, wrong types, huge numbers,
   negative prices, NaN/Infinity (as strings and as values), lone surrogates (what a ``\\ud800``
   escape decodes to), long strings, deep nesting, emptied and swapped containers, renamed keys;
   for Solana accounts also the raw bytes (flips, truncations, forged Token-2022 TLV entries).
   :func:`body_mutations` does the same to the *bytes* of an answer: non-UTF-8, truncated, 10 MB,
   100,000 levels of nesting, HTML, NaN literals, 5,000-digit integers.
3. **Feed** (:func:`run_corpus`): each mutation goes through the production code — the real
   client object (its HTTP layer stubbed to hand back the mutated JSON), or the real HTTP layer
   and client against a tiny server serving the mutated bytes (:func:`run_http_corpus`). Every
   outcome is classified: accepted, rejected with a typed error (which must name the field), or a
   crash (anything else). Whatever was accepted is written through the real store paths
   (``upsert_token``, ``upsert_pool``, ``upsert_candles``, ``save_mint_facts``, ``kv_set``), read
   back, and checked: finite numbers, positive prices, ``high >= low``, times from 1970 to 9999,
   non-empty mints.

:func:`config_cases` and :func:`cli_cases` give config files and command lines the same treatment
(:func:`run_cli_case` runs one through ``dexscan.cli.main`` in-process).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import math
import random
import re
import struct
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
from aiogram import Bot, Dispatcher
from aiogram.exceptions import ClientDecodeError, TelegramAPIError
from aiogram.methods import GetUpdates
from aiohttp import web
from solana.rpc.core import RPCException
from solders.pubkey import Pubkey

from dexscan.alerts.telegram.transport import UpdatePoller, create_bot, decode_error_field
from dexscan.chain.answers import decode_largest_accounts, decode_multiple_accounts
from dexscan.chain.mint import MINT_LEN, TOKEN_2022_PROGRAM, TOKEN_PROGRAM, mint_facts_from_account
from dexscan.chain.rpc import RpcPool
from dexscan.clock import Clock, SimClock
from dexscan.config import Settings, load_settings
from dexscan.demo.market_sim import MarketSim, SimConfig
from dexscan.demo.servers.fake_chain import FakeChain
from dexscan.demo.servers.market import MarketFakes
from dexscan.demo.servers.rpc import RpcFakeServer
from dexscan.demo.servers.telegram import FakeTelegram
from dexscan.domain import Candle, DiscoveredToken, MintFacts, PairSnapshot, PoolRef, PriceQuote, Timeframe, TokenInfo
from dexscan.errors import BadPayload, DexscanError, RpcBadAnswer
from dexscan.sources.birdeye import BirdeyeClient, BirdeyeSecurity
from dexscan.sources.dexscreener import DexScreenerClient
from dexscan.sources.geckoterminal import GeckoTerminalClient
from dexscan.sources.http import HttpLayer
from dexscan.sources.jupiter import JupiterClient
from dexscan.sources.parse import MAX_EPOCH_S
from dexscan.store import Store

CLIENTS = ("jupiter", "dexscreener", "geckoterminal", "birdeye", "rpc", "telegram")
TELEGRAM_TOKEN = "123456789:TEST-token_for_the_fake_bot_api"
BIRDEYE_KEY = "corpus-birdeye-key"
#: Records kept per list when recording: the shape matters, not the length.
RECORDS_PER_LIST = 4
_U64_MAX = 2**64 - 1
_SAMPLES = 5
#: "10 MB bodies" of the issue.
TEN_MB = 10 * 1024 * 1024

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# 1. Recording real shapes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shape:
    """One recorded answer: which client parses it, through which target, and what was asked."""

    client: str
    target: str  # a key of TARGETS
    payload: Any
    keys: tuple[str, ...] = ()  # the mints, pairs or pool the request named


def _trim(obj: Any, n: int = RECORDS_PER_LIST) -> Any:
    """Lists of records cut to ``n`` (lists of scalars, like an OHLCV row, are kept whole)."""
    if isinstance(obj, dict):
        return {k: _trim(v, n) for k, v in obj.items()}
    if isinstance(obj, list):
        items = obj[:n] if any(isinstance(v, dict | list) for v in obj) else obj
        return [_trim(v, n) for v in items]
    return obj


def _groups(items: Sequence[str], size: int, count: int) -> list[list[str]]:
    return [list(items[i:i + size]) for i in range(0, min(len(items), size * count), size) if items[i:i + size]]


async def record_shapes(seed: int = 7) -> list[Shape]:
    """Real answers of every parsed endpoint, fetched over HTTP from the fakes of a seeded market."""
    sim = MarketSim(SimConfig(seed=seed, n_tokens=12))
    now = sim.live_start + 1830
    clock = SimClock(now)
    generous = {"jupiter": (100_000, 60.0), "dexscreener.pairs": (100_000, 60.0),
                "dexscreener.profiles": (100_000, 60.0), "geckoterminal": (100_000, 60.0),
                "birdeye": (100_000, 1.0)}
    shapes: list[Shape] = []
    listed = [t for t in sim.tokens if sim.listed(t.mint, now)]
    mints = [t.mint for t in listed]
    pools = [t.main_pool.address for t in listed]
    async with MarketFakes(sim, clock, limits=generous, birdeye_api_key=BIRDEYE_KEY) as fakes, \
            aiohttp.ClientSession() as http:

        async def get(provider: str, path: str, params: dict[str, Any] | None = None) -> Any:
            headers = {"X-API-KEY": BIRDEYE_KEY, "x-chain": "solana"} if provider == "birdeye" else {}
            async with http.get(fakes.urls[provider] + path, params=params, headers=headers) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"recording {provider} {path}: HTTP {resp.status} {body[:200]!r}")
                return _trim(json.loads(body))

        def add(client: str, target: str, payload: Any, keys: Sequence[str] = ()) -> None:
            shapes.append(Shape(client, target, payload, tuple(keys)))

        for group in _groups(mints, 3, 2):
            add("jupiter", "jupiter:search", await get("jupiter", "/tokens/v2/search",
                                                        {"query": ",".join(group)}), group)
            add("jupiter", "jupiter:price", await get("jupiter", "/price/v3", {"ids": ",".join(group)}), group)
            add("dexscreener", "dexscreener:tokens",
                await get("dexscreener", "/tokens/v1/solana/" + ",".join(group)), group)
        add("jupiter", "jupiter:top", await get("jupiter", "/tokens/v2/toptrending/1h", {"limit": 4}))
        add("jupiter", "jupiter:recent", await get("jupiter", "/tokens/v2/recent"))
        for group in _groups(pools, 3, 2):
            add("dexscreener", "dexscreener:pairs",
                await get("dexscreener", "/latest/dex/pairs/solana/" + ",".join(group)), group)
        add("dexscreener", "dexscreener:profiles", await get("dexscreener", "/token-profiles/latest/v1"))
        add("dexscreener", "dexscreener:boosts", await get("dexscreener", "/token-boosts/latest/v1"))
        for tok in listed[:3]:
            pool = tok.main_pool.address
            add("geckoterminal", "geckoterminal:ohlcv", await get(
                "geckoterminal", f"/networks/solana/pools/{pool}/ohlcv/minute",
                {"aggregate": 5, "limit": 6, "currency": "usd", "token": "base"}), [pool])
            add("geckoterminal", "geckoterminal:pools", await get(
                "geckoterminal", f"/networks/solana/tokens/{tok.mint}/pools",
                {"include": "base_token,quote_token,dex"}), [tok.mint])
            window = {"address": tok.mint, "type": "5m", "currency": "usd", "time_from": now - 1800,
                      "time_to": now}
            add("birdeye", "birdeye:ohlcv_v1", await get("birdeye", "/defi/ohlcv", window), [tok.mint])
            add("birdeye", "birdeye:ohlcv_v3", await get("birdeye", "/defi/v3/ohlcv", window), [tok.mint])
            add("birdeye", "birdeye:overview", await get("birdeye", "/defi/token_overview",
                                                          {"address": tok.mint}), [tok.mint])
            add("birdeye", "birdeye:security", await get("birdeye", "/defi/token_security",
                                                          {"address": tok.mint}), [tok.mint])
    shapes += await _record_rpc(sim)
    shapes += await _record_telegram(clock)
    return shapes


async def _record_rpc(sim: MarketSim) -> list[Shape]:
    chain = FakeChain.from_sim(sim)
    demo = list(chain.add_demo_mints().values())
    wallet = chain.create_wallet(b"dexscan-corpus:wallet")
    absent = str(Pubkey.from_bytes(bytes(range(1, 33))))
    sim_mints = [t.mint for t in sim.tokens]
    key_groups = [*_groups(demo, 3, 2), *_groups(sim_mints, 3, 2), [wallet, absent, demo[0]]]
    shapes: list[Shape] = []
    async with RpcFakeServer(chain, limits=(100_000, 100_000)) as server, aiohttp.ClientSession() as http:

        async def call(method: str, params: list[Any]) -> Any:
            body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
            async with http.post(server.url, json=body) as resp:
                data = await resp.json()
                if resp.status != 200 or "result" not in data:
                    raise RuntimeError(f"recording {method}: HTTP {resp.status} {str(data)[:200]}")
                return data

        for keys in key_groups:
            shapes.append(Shape("rpc", "rpc:getMultipleAccounts", await call(
                "getMultipleAccounts", [keys, {"encoding": "base64", "commitment": "confirmed"}]), tuple(keys)))
        for mint in [*demo[:2], *sim_mints[:2]]:
            shapes.append(Shape("rpc", "rpc:getTokenLargestAccounts", _trim(await call(
                "getTokenLargestAccounts", [mint, {"commitment": "confirmed"}])), (mint,)))
    return shapes


async def _record_telegram(clock: Clock) -> list[Shape]:
    async with FakeTelegram(TELEGRAM_TOKEN, clock) as fake, aiohttp.ClientSession() as http:
        fake.inject_user_message(1001, "/start")
        fake.inject_user_message(1001, "/check So11111111111111111111111111111111111111112")
        fake.inject_user_message(-1002003, "hello", {"id": 42, "is_bot": False, "first_name": "Ana",
                                                     "last_name": "B", "username": "ana", "language_code": "en"})
        fake.inject_user_message(1001, "/mute")
        async with http.post(f"{fake.base_url}/bot{TELEGRAM_TOKEN}/getUpdates",
                             json={"offset": 0, "timeout": 0}) as resp:
            data = await resp.json()
        if resp.status != 200 or not data.get("ok"):
            raise RuntimeError(f"recording getUpdates: HTTP {resp.status} {str(data)[:200]}")
        return [Shape("telegram", "telegram:getUpdates", data)]


# ---------------------------------------------------------------------------------------------
# 2. Mutating JSON values
# ---------------------------------------------------------------------------------------------

JsonPath = tuple[str | int, ...]

_WRONG_TYPES: tuple[Any, ...] = ("", " ", "abc", "12abc", "0x1f", True, False, [], {}, [1, "a"], {"k": "v"},
                                 0, -1, 1.5, "null", "true")
_HUGE: tuple[Any, ...] = (10**30, -(10**30), 10**400, 2**64, 2**63, 2**63 - 1, 1e308, -1e308,
                          1.7976931348623157e308, "1" * 50, "9" * 400, "1e400", 5e-324, "1e-400")
_NAN: tuple[Any, ...] = ("NaN", "nan", "Infinity", "-Infinity", "inf", "-inf", "1e999", " NaN ",
                         math.nan, math.inf, -math.inf)
_TEXT: tuple[str, ...] = ("\ud800", "a\udfffb", "\x00", "\u202eabc", "\U0001f600" * 3, "é", "\ufffd", "\n\r\t",
                          "<script>", "' OR 1=1 --", "\u0000\u0001\u001f")
_OPS = ("drop", "null", "type", "huge", "negative", "nan", "stringify", "text", "long", "deep", "swap",
        "empty", "duplicate", "rename", "ms", "zero")


def _paths(root: Any) -> list[JsonPath]:
    """Every path in ``root`` (containers and leaves), iteratively: mutated values may be deep."""
    out: list[JsonPath] = []
    stack: list[tuple[JsonPath, Any]] = [((), root)]
    while stack:
        path, node = stack.pop()
        out.append(path)
        if isinstance(node, dict):
            stack.extend(((*path, k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend(((*path, i), v) for i, v in enumerate(node))
    return out


def _get(root: Any, path: JsonPath) -> Any:
    node = root
    for step in path:
        node = node[step]
    return node


def _replace(root: Any, path: JsonPath, make: Callable[[Any], Any], *, delete: bool = False) -> Any:
    """A copy of ``root`` with the value at ``path`` replaced (or deleted); only containers on the
    path are copied, so mutating a large payload costs what its depth costs."""
    if not path:
        return make(root)
    chain = [root]
    for step in path[:-1]:
        chain.append(chain[-1][step])
    parent = chain[-1]
    copy: Any = dict(parent) if isinstance(parent, dict) else list(parent)
    leaf = path[-1]
    if delete:
        del copy[leaf]
    else:
        copy[leaf] = make(parent[leaf])
    for container, step in zip(reversed(chain[:-1]), reversed(path[:-1]), strict=True):
        outer: Any = dict(container) if isinstance(container, dict) else list(container)
        outer[step] = copy
        copy = outer
    return copy


def nested(depth: int, leaf: Any = 1, kind: str = "list") -> Any:
    """``depth`` levels of ``[[...]]`` (or ``{"a": {...}}``) around ``leaf``, built without recursion."""
    node = leaf
    for _ in range(depth):
        node = [node] if kind == "list" else {"a": node}
    return node


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _numeric_text(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        float(v)
    except ValueError:
        return False
    return True


def _apply(op: str, value: Any, rng: random.Random) -> Any:
    """A new value for one op (``drop`` and ``rename`` are done by the caller)."""
    if op == "null":
        return None
    if op == "type":
        return rng.choice(_WRONG_TYPES)
    if op == "huge":
        return rng.choice(_HUGE)
    if op == "negative":
        if _is_number(value):
            return -abs(value) - rng.choice((0, 1, 0.5))
        if _numeric_text(value):
            return "-" + str(value).lstrip("-")
        return -rng.choice((1, 1.5, 10**12))
    if op == "nan":
        return rng.choice(_NAN)
    if op == "stringify":
        return json.dumps(value) if not isinstance(value, str) else rng.choice(([value], {"v": value}))
    if op == "text":
        return rng.choice(_TEXT) + (value if isinstance(value, str) and rng.random() < 0.5 else "")
    if op == "long":
        return rng.choice("A1é") * rng.choice((1_000, 20_000, 200_000))
    if op == "deep":
        return nested(rng.randint(20, 400), rng.choice((1, "x", None)), rng.choice(("list", "dict")))
    if op == "swap":
        if isinstance(value, dict):
            return list(value.values())
        if isinstance(value, list):
            return {str(i): v for i, v in enumerate(value)}
        return [value]
    if op == "empty":
        if isinstance(value, dict):
            return {}
        if isinstance(value, list):
            return []
        return rng.choice(("", [], {}))
    if op == "duplicate":
        if isinstance(value, list) and value:
            return (value * rng.randint(2, 6))[:300]
        return [value, value]
    if op == "ms":
        if (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, float) and math.isfinite(value)):
            return value * 1000
        return rng.choice((253_402_300_800, -1, 10**15))
    if op == "zero":
        return rng.choice((0, 0.0, -0.0, "0", "0.0", "-0"))
    raise ValueError(f"unknown op {op!r}")


def _rename(key: str, rng: random.Random) -> str:
    camel_to_snake = re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()
    return rng.choice((key.upper(), camel_to_snake, key + "_", key[:-1] or "x", " " + key))


def mutate(payload: Any, rng: random.Random, ops: int | None = None) -> tuple[Any, list[str]]:
    """``payload`` with 1–3 (or ``ops``) random mutations, and a description of each."""
    count = ops if ops is not None else rng.choices((1, 2, 3), weights=(6, 3, 1))[0]
    notes: list[str] = []
    for _ in range(count):
        paths = _paths(payload)
        path = rng.choice(paths)
        op = rng.choice(_OPS)
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path) or "<root>"
        if op in ("drop", "rename") and not path:
            op = "type"
        if op == "drop":
            payload = _replace(payload, path, lambda v: v, delete=True)
        elif op == "rename":
            parent = _get(payload, path[:-1])
            if isinstance(parent, dict) and isinstance(path[-1], str):
                old_key, new_key = path[-1], _rename(path[-1], rng)

                def renamed(d: dict[str, Any], old: str = old_key, new: str = new_key) -> dict[str, Any]:
                    return {(new if key == old else key): v for key, v in d.items()}

                payload = _replace(payload, path[:-1], renamed)
            else:
                payload = _replace(payload, path, lambda v: v, delete=True)
        else:
            payload = _replace(payload, path, lambda v: _apply(op, v, rng))  # noqa: B023 (called at once)
        notes.append(f"{op}@{where}")
    return payload, notes


# -- raw Solana account bytes -------------------------------------------------------------------

_OWNERS = (TOKEN_PROGRAM, TOKEN_2022_PROGRAM, "11111111111111111111111111111111",
           "675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8", "not-an-address", "", "1" * 44, "So1111O")


def _mutate_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    buf = bytearray(data)
    kind = rng.choice(("flip", "truncate", "extend", "type_byte", "tlv", "zero", "init_flag", "option_tag"))
    if kind == "flip" and buf:
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif kind == "truncate":
        buf = buf[:rng.choice((0, 1, 36, 44, 81, MINT_LEN, 83, 164, 165, 166, 169, max(0, len(buf) - 1)))]
    elif kind == "extend":
        buf += bytes(rng.randrange(256) for _ in range(rng.choice((1, 83, 84, 200, 1000))))
    elif kind == "type_byte":
        if len(buf) <= 165:
            buf += bytes(166 - len(buf))
        buf[165] = rng.choice((0, 1, 2, 3, 255))
    elif kind == "tlv":
        if len(buf) < 170:
            buf += bytes(170 - len(buf))
        buf[165] = 1
        off = rng.randrange(166, len(buf) - 3)
        struct.pack_into("<HH", buf, off, rng.choice((1, 3, 9, 12, 14, 18, 19, 25, 26, 28, 0xFFFF)),
                         rng.choice((0, 1, 8, 32, 64, 108, 0xFFFF)))
    elif kind == "zero":
        buf = bytearray(len(buf))
    elif kind == "init_flag" and len(buf) > 45:
        buf[45] = rng.choice((0, 2, 255))
    elif kind == "option_tag" and len(buf) > 50:
        for off in (0, 46):
            struct.pack_into("<I", buf, off, rng.choice((0, 1, 2, 0xFFFFFFFF)))
    return bytes(buf), kind


def mutate_account_data(payload: Any, rng: random.Random) -> tuple[Any, list[str]]:
    """A ``getMultipleAccounts`` answer with one account's bytes (or owner) mutated."""
    value = payload.get("result", {}).get("value") if isinstance(payload, dict) else None
    if not isinstance(value, list):
        return mutate(payload, rng)
    slots = [i for i, v in enumerate(value) if isinstance(v, dict) and isinstance(v.get("data"), list)]
    if not slots:
        return mutate(payload, rng)
    i = rng.choice(slots)
    acc = dict(value[i])
    if rng.random() < 0.2:
        acc["owner"] = rng.choice(_OWNERS)
        note = f"owner@result.value[{i}]"
    else:
        raw, kind = _mutate_bytes(base64.b64decode(acc["data"][0]), rng)
        acc["data"] = [base64.b64encode(raw).decode(), "base64"]
        if rng.random() < 0.85:
            acc["space"] = len(raw)
        note = f"bytes:{kind}@result.value[{i}]"
    return _replace(payload, ("result", "value", i), lambda _: acc), [note]


# ---------------------------------------------------------------------------------------------
# 3. Feeding mutations through the clients
# ---------------------------------------------------------------------------------------------


class _StubHttp:
    """Stands in for :class:`HttpLayer`: every request answers with the payload under test."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.answer: Any = None
        self.skipped: Counter[str] = Counter()

    async def get_json(self, provider: str, bucket: str | None, path_template: str,
                       path_args: Any = None, **kwargs: Any) -> Any:
        return self.answer

    def count_bad_record(self, provider: str, endpoint: str, field: str) -> None:
        self.skipped[field] += 1


@dataclass
class Parsers:
    """The production parsers of every client, over one HTTP layer (stubbed or real)."""

    jupiter: JupiterClient
    dexscreener: DexScreenerClient
    geckoterminal: GeckoTerminalClient
    birdeye: BirdeyeClient
    bot: Bot
    now: int

    @classmethod
    def over(cls, http: Any, settings: Settings, bot: Bot, now: int) -> Parsers:
        layer = cast(HttpLayer, http)
        return cls(JupiterClient(layer, settings), DexScreenerClient(layer, settings),
                   GeckoTerminalClient(layer, settings), BirdeyeClient(layer, settings), bot, now)


def corpus_settings(**overrides: Any) -> Settings:
    """Defaults plus a Birdeye key (so the Birdeye client exists) and ``overrides``."""
    settings = load_settings(env={"DEXSCAN_BIRDEYE_API_KEY": BIRDEYE_KEY})
    return settings.with_overrides(overrides) if overrides else settings


Target = Callable[[Parsers, Shape, Any], Awaitable[list[Any]]]


async def _telegram_updates(p: Parsers, shape: Shape, payload: Any) -> list[Any]:
    response = p.bot.session.check_response(p.bot, GetUpdates(offset=None, timeout=0), 200, json.dumps(payload))
    return list(response.result or [])


async def _rpc_accounts(p: Parsers, shape: Shape, payload: Any) -> list[Any]:
    slot, accounts = decode_multiple_accounts(json.dumps(payload))
    if len(accounts) != len(shape.keys):  # the inspector keeps none of such an answer (read_error)
        raise RpcBadAnswer("getMultipleAccounts", "result.value",
                           f"{len(accounts)} accounts for {len(shape.keys)} keys")
    return [mint_facts_from_account(m, acc, p.now, slot, "corpus") for m, acc in zip(shape.keys, accounts,
                                                                                      strict=True)]


async def _rpc_largest(p: Parsers, shape: Shape, payload: Any) -> list[Any]:
    return list(decode_largest_accounts(json.dumps(payload)))


#: Which production call parses each recorded shape.
TARGETS: dict[str, Target] = {
    "jupiter:search": lambda p, s, _: p.jupiter.search(s.keys),
    "jupiter:top": lambda p, s, _: p.jupiter.top("toptrending", "1h", 4),
    "jupiter:recent": lambda p, s, _: p.jupiter.recent(),
    "jupiter:price": lambda p, s, _: _values(p.jupiter.prices(s.keys)),
    "dexscreener:tokens": lambda p, s, _: p.dexscreener.pairs_for_tokens(s.keys),
    "dexscreener:pairs": lambda p, s, _: p.dexscreener.pairs(s.keys),
    "dexscreener:profiles": lambda p, s, _: p.dexscreener.latest_profiles(),
    "dexscreener:boosts": lambda p, s, _: p.dexscreener.latest_boosts(),
    "geckoterminal:ohlcv": lambda p, s, _: p.geckoterminal.ohlcv(s.keys[0], Timeframe.M5),
    "geckoterminal:pools": lambda p, s, _: p.geckoterminal.token_pools(s.keys[0]),
    "birdeye:ohlcv_v1": lambda p, s, _: p.birdeye.ohlcv(s.keys[0], Timeframe.M5, 0, MAX_EPOCH_S, version=1),
    "birdeye:ohlcv_v3": lambda p, s, _: p.birdeye.ohlcv(s.keys[0], Timeframe.M5, 0, MAX_EPOCH_S, version=3),
    "birdeye:overview": lambda p, s, _: _one(p.birdeye.token_overview(s.keys[0])),
    "birdeye:security": lambda p, s, _: _one(p.birdeye.token_security(s.keys[0])),
    "rpc:getMultipleAccounts": _rpc_accounts,
    "rpc:getTokenLargestAccounts": _rpc_largest,
    "telegram:getUpdates": _telegram_updates,
}


async def _values(call: Awaitable[dict[str, PriceQuote]]) -> list[Any]:
    return list((await call).values())


async def _one(call: Awaitable[Any]) -> list[Any]:
    return [await call]


# -- classification ----------------------------------------------------------------------------


def typed_rejection(exc: BaseException) -> tuple[str, str] | None:
    """``(error type, field)`` when ``exc`` is a typed refusal of bad input; ``None`` for a crash.
    An empty field means the error did not say where (also a failure)."""
    if isinstance(exc, BadPayload | RpcBadAnswer):
        return type(exc).__name__, exc.field
    if isinstance(exc, RPCException):
        return "RPCException", "error"
    if isinstance(exc, ClientDecodeError):
        return "ClientDecodeError", decode_error_field(exc)
    if isinstance(exc, TelegramAPIError):
        return type(exc).__name__, "ok"
    if isinstance(exc, DexscanError):
        match = re.search(r"bad (?:answer|payload) at (\S+?):", str(exc))
        return type(exc).__name__, getattr(exc, "field", None) or (match.group(1) if match else "")
    return None


@dataclass
class Tally:
    """What happened to one client's mutations."""

    mutations: int = 0
    accepted: int = 0  # answers that parsed (bad records inside may have been skipped)
    objects: int = 0  # domain objects the accepted answers produced
    rejected: Counter[str] = field(default_factory=Counter)  # by error type
    rejected_fields: Counter[str] = field(default_factory=Counter)
    skipped_records: Counter[str] = field(default_factory=Counter)  # by field
    stored_rows_checked: int = 0
    crashes: int = 0
    fieldless: int = 0  # typed rejections that did not name a field
    malformed_stored: int = 0  # rows that broke an invariant after storing (must be 0)
    samples: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.samples) < _SAMPLES:
            self.samples.append(text[:600])

    @property
    def failures(self) -> int:
        return self.crashes + self.fieldless + self.malformed_stored

    def as_json(self, top_fields: int = 12) -> dict[str, Any]:
        return {
            "mutations": self.mutations, "accepted": self.accepted, "objects": self.objects,
            "rejected": sum(self.rejected.values()), "rejected_by_type": dict(sorted(self.rejected.items())),
            "rejected_by_field": dict(self.rejected_fields.most_common(top_fields)),
            "records_skipped": sum(self.skipped_records.values()),
            "records_skipped_by_field": dict(self.skipped_records.most_common(top_fields)),
            "stored_rows_checked": self.stored_rows_checked, "crashes": self.crashes,
            "fieldless_rejections": self.fieldless, "malformed_stored": self.malformed_stored,
            **({"samples": self.samples} if self.samples else {}),
        }


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    return f" at {Path(last.filename).name}:{last.lineno}" if last else ""


# -- invariants of what is stored ---------------------------------------------------------------


class Malformed(Exception):
    """Something malformed was accepted: a stored row or domain object breaks an invariant."""


def _finite(obj: Any, where: str) -> None:
    """Every float in a (nested) domain object is finite; every int fits SQLite."""
    if is_dataclass(obj) and not isinstance(obj, type):
        for f in fields(obj):
            _finite(getattr(obj, f.name), f"{where}.{f.name}")
    elif isinstance(obj, tuple | list):
        for i, v in enumerate(obj):
            _finite(v, f"{where}[{i}]")
    elif isinstance(obj, float) and not math.isfinite(obj):
        raise Malformed(f"{where} = {obj!r}")
    elif isinstance(obj, int) and not isinstance(obj, bool) and not -(2**63) <= obj < 2**64:
        raise Malformed(f"{where} = {obj!r} does not fit 64 bits")
    elif isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            raise Malformed(f"{where} is not UTF-8 encodable") from None


def _check(ok: bool, problem: str) -> None:
    if not ok:
        raise Malformed(problem)


def _nonneg(v: float | None, where: str) -> None:
    _check(v is None or (math.isfinite(v) and v >= 0), f"{where} = {v!r}, expected a non-negative number")


def _epoch(v: int | None, where: str) -> None:
    _check(v is None or 0 <= v <= MAX_EPOCH_S, f"{where} = {v!r}, expected a time from 1970 to 9999")


def _mint_text(v: Any, where: str) -> None:
    _check(isinstance(v, str) and bool(v.strip()), f"{where} = {v!r}, expected a non-empty address")


def candle_problem(c: Candle) -> str | None:
    """Why a bar must not be in the store, or None."""
    values = (c.open, c.high, c.low, c.close, c.volume)
    if not all(isinstance(v, float | int) and math.isfinite(v) for v in values):
        return f"bar at {c.ts}: a value is not finite"
    if min(c.open, c.high, c.low, c.close) <= 0 or c.volume < 0:
        return f"bar at {c.ts}: non-positive price or negative volume"
    if c.high < c.low or c.low > min(c.open, c.close) or c.high < max(c.open, c.close):
        return f"bar at {c.ts}: high {c.high} / low {c.low} do not bracket open {c.open} / close {c.close}"
    if not 0 <= c.ts <= MAX_EPOCH_S:
        return f"bar ts {c.ts} out of range"
    return None


@dataclass(frozen=True, slots=True)
class StoredOffset:
    """The getUpdates offset ``UpdatePoller`` stored after handling a batch (checked like a row)."""

    value: str | None


class StoreCheck:
    """Writes accepted objects through the production store paths, reads them back, checks them."""

    def __init__(self, store: Store, now: int) -> None:
        self.store = store
        self.now = now

    async def keep(self, shape: Shape, objects: Sequence[Any]) -> int:
        """Rows written and checked for ``objects`` (raises :class:`Malformed` on a bad one)."""
        rows = 0
        candles = [o for o in objects if isinstance(o, Candle)]
        seen: set[str] = set()
        for o in objects:
            key = repr(o)  # a 10 MB answer repeats one record thousands of times: store it once
            if key in seen:
                continue
            seen.add(key)
            _finite(o, type(o).__name__)
            if isinstance(o, TokenInfo):
                rows += await self._token(o.mint, o.symbol, o.name, o.decimals, shape.target)
                _nonneg(o.usd_price, "TokenInfo.usd_price")
                _epoch(o.created_at, "TokenInfo.created_at")
            elif isinstance(o, PairSnapshot):
                rows += await self._token(o.base_mint, o.base_symbol, o.base_name, None, shape.target)
                rows += await self._pool(o.pair_address, o.base_mint, o.dex_id, o.quote_mint, o.quote_symbol,
                                         o.liquidity_usd, o.volume.h24, o.pair_created_at)
                _nonneg(o.price_usd, "PairSnapshot.price_usd")
            elif isinstance(o, PoolRef):
                rows += await self._pool(o.address, o.base_mint, o.dex_id, o.quote_mint, "", o.reserve_usd,
                                         o.volume_h24_usd, o.created_at)
            elif isinstance(o, DiscoveredToken):
                rows += await self._token(o.mint, o.symbol or "", o.name or "", None, o.source)
            elif isinstance(o, MintFacts):
                rows += await self._facts(o)
            elif isinstance(o, PriceQuote):
                _mint_text(o.mint, "PriceQuote.mint")
                _check(o.usd_price > 0, f"PriceQuote.usd_price = {o.usd_price!r}")
            elif isinstance(o, BirdeyeSecurity):
                _check(o.top10_holder_pct is None or 0 <= o.top10_holder_pct <= 100,
                       f"top10_holder_pct = {o.top10_holder_pct!r}")
                _epoch(o.creation_time, "BirdeyeSecurity.creation_time")
            elif isinstance(o, tuple):  # (token account, amount) of getTokenLargestAccounts
                _mint_text(o[0], "largest.address")
                _check(isinstance(o[1], int) and 0 <= o[1] <= _U64_MAX, f"largest amount = {o[1]!r}")
            elif type(o).__name__ == "Update":
                rows += await self._update_offset(o)
            elif isinstance(o, StoredOffset):
                _check(o.value is not None and re.fullmatch(r"-?\d+", o.value) is not None, f"offset {o.value!r}")
                rows += 1
            elif not isinstance(o, Candle):
                raise Malformed(f"unexpected object {type(o).__name__}")
        if candles:
            rows += await self._candles(shape.keys[0], candles)
        return rows

    async def _token(self, mint: str, symbol: str, name: str, decimals: int | None, source: str) -> int:
        _mint_text(mint, "token.mint")
        await self.store.upsert_token(mint, self.now, symbol=symbol, name=name, decimals=decimals, source=source)
        row = await self.store.token_row(mint)
        _check(row is not None, f"token {mint!r} not stored")
        assert row is not None
        _check(row["decimals"] is None or 0 <= row["decimals"] <= 255, f"decimals = {row['decimals']!r}")
        return 1

    async def _pool(self, address: str, mint: str, dex_id: str, quote_mint: str, quote_symbol: str,
                    liquidity: float | None, volume: float | None, created_at: int | None) -> int:
        _mint_text(address, "pool.address")
        _mint_text(mint, "pool.mint")
        await self.store.upsert_pool(address, mint, self.now, dex_id=dex_id, quote_mint=quote_mint,
                                     quote_symbol=quote_symbol, liquidity_usd=liquidity, volume_h24_usd=volume,
                                     pair_created_at=created_at)
        row = await self.store.pool_row(address)
        _check(row is not None, f"pool {address!r} not stored")
        assert row is not None
        _nonneg(row["liquidity_usd"], "pools.liquidity_usd")
        _nonneg(row["volume_h24_usd"], "pools.volume_h24_usd")
        _epoch(row["pair_created_at"], "pools.pair_created_at")
        return 1

    async def _candles(self, pool: str, candles: list[Candle]) -> int:
        await self.store.upsert_candles(pool, Timeframe.M5, candles)
        stored = await self.store.candles(pool, Timeframe.M5, min(c.ts for c in candles),
                                          max(c.ts for c in candles) + 1)
        for c in stored:
            problem = candle_problem(c)
            _check(problem is None, f"stored {problem}")
        return len(stored)

    async def _facts(self, f: MintFacts) -> int:
        _mint_text(f.mint, "MintFacts.mint")
        await self.store.save_mint_facts(f)
        back = await self.store.mint_facts(f.mint)
        _check(back is not None, f"mint facts of {f.mint} not stored")
        assert back is not None
        _check(back.supply is None or 0 <= back.supply <= _U64_MAX, f"supply = {back.supply!r}")
        _check(back.decimals is None or 0 <= back.decimals <= 255, f"decimals = {back.decimals!r}")
        _check(back.top10_share_pct is None or 0 <= back.top10_share_pct <= 100, "top10 share out of range")
        _check(not back.is_mint or back.exists, "a mint that does not exist")
        return 1

    async def _update_offset(self, update: Any) -> int:
        await self.store.kv_set(UpdatePoller.OFFSET_KEY, str(update.update_id + 1))
        stored = await self.store.kv_get(UpdatePoller.OFFSET_KEY)
        _check(stored is not None and re.fullmatch(r"-?\d+", stored) is not None, f"offset {stored!r}")
        return 1


async def _classify(tally: Tally, shape: Shape, notes: Sequence[str], run: Callable[[], Awaitable[list[Any]]],
                    checker: StoreCheck) -> None:
    """Run one parse, count its outcome, store what it accepted."""
    tally.mutations += 1
    what = f"{shape.target} {' '.join(notes)}"
    try:
        objects = await run()
    except Exception as exc:
        typed = typed_rejection(exc)
        if typed is None:
            tally.crashes += 1
            tally.note(f"crash: {what}: {type(exc).__name__}: {str(exc)[:200]}{_where(exc)}")
            return
        kind, where = typed
        tally.rejected[kind] += 1
        if where:
            tally.rejected_fields[f"{shape.target.split(':')[1]}:{where}"] += 1
        else:
            tally.fieldless += 1
            tally.note(f"no field: {what}: {kind}: {str(exc)[:200]}")
        return
    tally.accepted += 1
    tally.objects += len(objects)
    try:
        tally.stored_rows_checked += await checker.keep(shape, objects)
    except Malformed as exc:
        tally.malformed_stored += 1
        tally.note(f"malformed accepted: {what}: {exc}")
    except Exception as exc:
        tally.crashes += 1
        tally.note(f"store crash: {what}: {type(exc).__name__}: {str(exc)[:200]}{_where(exc)}")


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Skipped records are logged one line each; tens of thousands of them only slow the run."""
    loggers = [logging.getLogger(n) for n in ("dexscan", "aiogram", "aiohttp")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


async def run_corpus(shapes: Sequence[Shape], per_client: int, store: Store, seed: int = 7,
                     clients: Sequence[str] = CLIENTS) -> dict[str, Tally]:
    """Feed ``per_client`` mutations of the recorded shapes through each client's parser."""
    now = 1_760_000_000
    stub = _StubHttp(SimClock(now))
    bot = Bot(TELEGRAM_TOKEN)
    parsers = Parsers.over(stub, corpus_settings(), bot, now)
    checker = StoreCheck(store, now)
    tallies: dict[str, Tally] = {}
    try:
        with quiet_logs():
            for client in clients:
                mine = [s for s in shapes if s.client == client]
                if not mine:
                    raise ValueError(f"no recorded shapes for {client}")
                rng = random.Random(f"{seed}:{client}")
                tally = tallies[client] = Tally()
                for i in range(per_client):
                    shape = mine[i % len(mine)]
                    if shape.target == "rpc:getMultipleAccounts" and rng.random() < 0.5:
                        payload, notes = mutate_account_data(shape.payload, rng)
                    else:
                        payload, notes = mutate(shape.payload, rng)
                    stub.answer = payload
                    stub.skipped.clear()
                    run = _bound(TARGETS[shape.target], parsers, shape, payload)
                    await _classify(tally, shape, notes, run, checker)
                    tally.skipped_records.update({f"{shape.target.split(':')[1]}:{k}": v
                                                  for k, v in stub.skipped.items()})
    finally:
        await bot.session.close()
    return tallies


def _bound(target: Target, parsers: Parsers, shape: Shape, payload: Any) -> Callable[[], Awaitable[list[Any]]]:
    def run() -> Awaitable[list[Any]]:
        return target(parsers, shape, payload)
    return run


# ---------------------------------------------------------------------------------------------
# 4. Mutated bytes through the real HTTP layer
# ---------------------------------------------------------------------------------------------

_HTML = (b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad "
         b"Gateway</h1></center></body></html>\n")


def _into_first_string(text: bytes, piece: bytes) -> bytes:
    """``text`` with ``piece`` inserted just inside its first JSON string value."""
    m = re.search(rb'":\s*"', text)
    at = m.end() if m else 1
    return text[:at] + piece + text[at:]


def _with_number(text: bytes, literal: bytes) -> bytes:
    """``text`` with its first JSON number replaced by ``literal`` (or ``literal`` prepended to a list)."""
    m = re.search(rb'(?<=[:\[,] )-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?=[,\]}])', text)
    if m is None:
        return text[:1] + literal + b"," + text[1:] if text[:1] == b"[" else text
    return text[:m.start()] + literal + text[m.end():]


def _first_string(payload: Any, make: Callable[[str], str]) -> Any:
    for path in _paths(payload):
        if path and isinstance(_get(payload, path), str):
            return _replace(payload, path, make)
    return payload


def _ten_mb_records(payload: Any) -> Any:
    """``payload`` with its first list of records repeated to about 10 MB."""
    for path in _paths(payload):
        node = _get(payload, path)
        if isinstance(node, list) and node and isinstance(node[0], dict | list):
            n = max(1, TEN_MB // (len(json.dumps(node[0])) + 2))
            return _replace(payload, path, lambda v: (v * (n // len(v) + 1))[:n])  # noqa: B023
    return payload


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def _latin1(payload: Any) -> bytes:
    """JSON as a careless server in Latin-1 would send it (an ``é`` is one byte, not UTF-8)."""
    return json.dumps(payload, ensure_ascii=False).encode("latin-1", "replace")


#: Byte-level mutations of a recorded answer: name -> (payload, rng) -> body.
BODY_KINDS: dict[str, Callable[[Any, random.Random], bytes]] = {
    "non_utf8": lambda p, r: _into_first_string(_json_bytes(p), b"\xff\xfe\x80"),
    "latin1": lambda p, r: _latin1(_first_string(p, lambda v: "é" + v)),
    "utf16": lambda p, r: json.dumps(p).encode("utf-16"),
    "bom": lambda p, r: b"\xef\xbb\xbf" + _json_bytes(p),
    "truncated": lambda p, r: _json_bytes(p)[:r.randint(1, max(1, len(_json_bytes(p)) - 1))],
    "empty": lambda p, r: b"",
    "html": lambda p, r: _HTML,
    "nul": lambda p, r: _into_first_string(_json_bytes(p), b"\x00"),
    "nan_literal": lambda p, r: _with_number(_json_bytes(p), r.choice((b"NaN", b"Infinity", b"-Infinity"))),
    "huge_int_literal": lambda p, r: _with_number(_json_bytes(p), b"1" * 5000),
    "huge_float_literal": lambda p, r: _with_number(_json_bytes(p), b"1e999"),
    "deep_array": lambda p, r: b"[" * 100_000 + b"]" * 100_000,
    "deep_object": lambda p, r: b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "deep_in_record": lambda p, r: _with_number(_json_bytes(p), b"[" * 100_000 + b"]" * 100_000),
    "ten_mb_records": lambda p, r: _json_bytes(_ten_mb_records(p)),
    "ten_mb_string": lambda p, r: _json_bytes(_first_string(p, lambda _: "x" * TEN_MB)),
    "ten_mb_whitespace": lambda p, r: b" " * TEN_MB + _json_bytes(p),
    "ten_mb_garbage": lambda p, r: r.randbytes(TEN_MB),
}


def body_mutations(payload: Any, rng: random.Random, kinds: Sequence[str] | None = None
                   ) -> Iterator[tuple[str, bytes]]:
    """``(kind, body)`` for each byte-level mutation (all of :data:`BODY_KINDS` by default)."""
    for kind in kinds or BODY_KINDS:
        yield kind, BODY_KINDS[kind](payload, rng)


class BytesServer:
    """127.0.0.1, ephemeral port: every request (any method, any path) gets ``body`` with HTTP 200."""

    def __init__(self) -> None:
        self.body = b""
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> BytesServer:
        app = web.Application(client_max_size=TEN_MB * 2)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        await request.read()
        return web.Response(body=self.body, content_type="application/json")


async def run_http_corpus(shapes: Sequence[Shape], store: Store, seed: int = 7, *,
                          targets_per_client: int | None = None,
                          kinds: Sequence[str] | None = None) -> dict[str, Tally]:
    """Mutated *bytes* through the real HTTP layer (or RPC pool, or aiogram session) and clients."""
    now = 1_760_000_000
    clock = SimClock(now)
    tallies: dict[str, Tally] = {c: Tally() for c in CLIENTS}
    rng = random.Random(f"{seed}:http")
    checker = StoreCheck(store, now)
    async with BytesServer() as server:
        fast = {f"sources.{p}.{k}": v for p in ("jupiter", "geckoterminal") for k, v in
                (("base_url", server.url), ("requests_per_minute", 100_000))}
        settings = corpus_settings(**fast, **{
            "sources.dexscreener.base_url": server.url, "sources.dexscreener.pairs_per_minute": 100_000,
            "sources.dexscreener.profiles_per_minute": 100_000, "sources.birdeye.base_url": server.url,
            "sources.birdeye.requests_per_second": 10_000, "http.breaker_failures": 1000, "http.retries": 0,
            "rpc.breaker_failures": 1000, "rpc.requests_per_10s": 1_000_000,
            "rpc.method_requests_per_10s": 1_000_000, "telegram.base_url": server.url})
        bot = create_bot(settings, store, clock, token=TELEGRAM_TOKEN)
        poller = UpdatePoller(bot, Dispatcher(), store, clock)
        pool = RpcPool([server.url], settings.rpc, clock)
        try:
            async with HttpLayer(settings, clock) as http:
                parsers = Parsers.over(http, settings, bot, now)
                with quiet_logs():
                    for client in CLIENTS:
                        chosen: dict[str, Shape] = {}
                        for s in shapes:
                            if s.client == client:
                                chosen.setdefault(s.target, s)
                        for shape in list(chosen.values())[:targets_per_client]:
                            for kind, body in body_mutations(shape.payload, rng, kinds):
                                server.body = body
                                run = _http_call(shape, parsers, pool, poller)
                                await _classify(tallies[client], shape, [kind], run, checker)
        finally:
            await pool.close()
            await bot.session.close()
    return tallies


def _http_call(shape: Shape, parsers: Parsers, pool: RpcPool,
               poller: UpdatePoller) -> Callable[[], Awaitable[list[Any]]]:
    if shape.target == "rpc:getMultipleAccounts":
        async def accounts() -> list[Any]:
            served = await pool.get_multiple_accounts([Pubkey.from_string(k) for k in shape.keys])
            slot, accs = served.value
            if len(accs) != len(shape.keys):
                raise RpcBadAnswer("getMultipleAccounts", "result.value", "wrong number of accounts")
            return [mint_facts_from_account(m, a, parsers.now, slot, served.endpoint)
                    for m, a in zip(shape.keys, accs, strict=True)]
        return accounts
    if shape.target == "rpc:getTokenLargestAccounts":
        async def largest() -> list[Any]:
            return list((await pool.get_token_largest_accounts(Pubkey.from_string(shape.keys[0]))).value)
        return largest
    if shape.target == "telegram:getUpdates":
        async def updates() -> list[Any]:
            handled = await poller.poll_once(0)  # the production path: parse, dispatch, store the offset
            return [StoredOffset(await poller.store.kv_get(UpdatePoller.OFFSET_KEY))] if handled else []
        return updates
    return lambda: TARGETS[shape.target](parsers, shape, None)


# ---------------------------------------------------------------------------------------------
# 5. Config files and command lines
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CliCase:
    """One command line (and, for config cases, the file ``{config}`` in it stands for)."""

    description: str
    argv: tuple[str, ...]
    config: bytes | None = None


@dataclass(frozen=True, slots=True)
class CliOutcome:
    code: int
    stdout: str
    stderr: str

    @property
    def problem(self) -> str | None:
        """Why this is not a clean refusal (exit 2, one ``dexscan: error:`` line, no traceback)."""
        lines = self.stderr.splitlines()
        if self.code != 2:
            return f"exit code {self.code}"
        if len(lines) != 1:
            return f"{len(lines)} lines on stderr"
        if not lines[0].startswith("dexscan: error: "):
            return f"stderr does not start with 'dexscan: error: ': {lines[0][:80]!r}"
        if "Traceback" in self.stderr:
            return "traceback"
        return None


class LongRunningReached(Exception):
    """A fuzzed command line got past validation to the point of starting a long-running command."""


@contextlib.contextmanager
def no_long_running() -> Iterator[None]:
    """Replace every entry point that would start a scanner, bot, backfill, check or doctor run
    with one raising :class:`LongRunningReached`: fuzzed argv must be refused before any of them."""
    import dexscan.alerts.telegram.cli as telegram
    import dexscan.backfill as backfill
    import dexscan.check as check
    import dexscan.demo_entry as demo_entry
    import dexscan.doctor as doctor
    import dexscan.evaluate as evaluate
    import dexscan.scan_command as scan_command

    def refuse(name: str) -> Callable[..., Any]:
        def stub(*args: Any, **kwargs: Any) -> Any:
            raise LongRunningReached(name)
        return stub

    patches = [(scan_command, "scan"), (scan_command, "_run_demo"), (scan_command, "unreachable_sources"),
               (check, "check_mints"), (demo_entry, "DemoWorld"), (backfill, "backfill"), (backfill, "_demo_backfill"),
               (evaluate, "evaluate"), (evaluate, "replay_store"), (telegram, "run_telegram"),
               (doctor, "run_doctor")]
    saved = [(mod, name, getattr(mod, name)) for mod, name in patches]
    for mod, name in patches:
        setattr(mod, name, refuse(f"{mod.__name__}.{name}"))
    try:
        yield
    finally:
        for mod, name, value in saved:
            setattr(mod, name, value)


def run_cli_case(case: CliCase, workdir: Path) -> CliOutcome:
    """``dexscan.cli.main(argv)`` in-process; ``{config}`` in argv becomes a file with ``case.config``."""
    from dexscan import cli

    argv = list(case.argv)
    if case.config is not None:
        path = workdir / "fuzz.toml"
        path.write_bytes(case.config)
        argv = [str(path) if a == "{config}" else a for a in argv]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2 if exc.code else 0
        except LongRunningReached as exc:
            print(f"reached {exc}", file=err)
            code = -1
        except Exception:
            traceback.print_exc(file=err)
            code = -2
    return CliOutcome(code, out.getvalue(), err.getvalue())


def _settings_leaves() -> list[tuple[str, Any, dict[str, float]]]:
    """(dotted key, annotation, bounds) of every setting the config file may hold."""
    from pydantic import BaseModel

    from dexscan.config import Settings as Model

    out: list[tuple[str, Any, dict[str, float]]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            ann = info.annotation
            if prefix == "" and name == "secrets":
                continue
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{prefix}{name}.")
                continue
            bounds = {k: float(getattr(m, k)) for m in info.metadata for k in ("gt", "ge", "lt", "le")
                      if getattr(m, k, None) is not None}
            out.append((prefix + name, ann, bounds))

    walk(Model, "")
    return out


def _toml(value: Any) -> str:
    """A TOML literal for a Python value (strings JSON-escaped, which TOML basic strings accept)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def _setting(key: str, literal: str) -> bytes:
    section, _, leaf = key.rpartition(".")
    return (f"[{section}]\n{leaf} = {literal}\n" if section else f"{leaf} = {literal}\n").encode()


def _wrong_value(ann: Any, rng: random.Random) -> str:
    """A TOML literal that no setting of type ``ann`` accepts."""
    text = str(ann)
    if ann is bool:
        return rng.choice(('"maybe"', "2", "1.5", "[true]", "{a = 1}", "1979-05-27"))
    if ann is int:
        return rng.choice(('"abc"', "1.5", "[1]", "{a = 1}", '""', "1979-05-27T07:32:00Z"))
    if ann is float:
        return rng.choice(('"fast"', "[1.0]", "{a = 1}", '""', "1979-05-27", "nan", "inf", "-inf"))
    if ann is str:
        return rng.choice(("5", "1.5", "true", "[\"a\"]", "{a = 1}", "1979-05-27"))
    if text.startswith("typing.Literal"):
        return rng.choice(('"bogus"', "5", "[]", '""'))
    if text.startswith("list[str]"):
        return rng.choice(('"a string"', "5", "{a = 1}", "[1, 2]", "[[\"a\"]]"))
    if text.startswith("dict"):
        return rng.choice(('{a = "x"}', "5", "[1]", '"w"', "{a = nan}", "{a = inf}"))
    if "int" in text:  # list[int] with bounds
        return rng.choice(('["a"]', "[1.5]", '"x"', str([2**60]), "[nan]"))
    if "float" in text:  # ladder.tp_r
        return rng.choice(('["a"]', "[1, 2]", "[3.0, 2.0, 1.0]", "[nan, 1, 2]", "[0, 1, 2]", '"x"'))
    return rng.choice(("5", '"x"', "{a = 1}"))


def _out_of_range(bounds: dict[str, float], rng: random.Random, is_int: bool) -> str | None:
    choices: list[float] = []
    if "gt" in bounds:
        choices += [bounds["gt"], bounds["gt"] - 1]
    if "ge" in bounds:
        choices += [bounds["ge"] - 1, bounds["ge"] - 10**6]
    if "lt" in bounds:
        choices += [bounds["lt"], bounds["lt"] + 1]
    if "le" in bounds:
        choices += [bounds["le"] + 1, 1e300 if not is_int else 10**30]
    if not choices:
        return None
    v = rng.choice(choices)
    return str(int(v)) if is_int and float(v).is_integer() else repr(float(v))


_BAD_TOML: tuple[bytes, ...] = (
    b"[app\n", b"a = \n", b"= 5\n", b"[app]\nlog_level = 'INFO\n", b"[app]\nlog_level = \"a\\qb\"\n",
    b"[http]\nretries = 1\nretries = 2\n", b"[http]\n[http]\n", b"[app]\nlog_level = INFO\n", b"\x00\n",
    b"[scan]\nqueue_size = 1_\n", b"[scan]\nqueue_size = 0x\n", b"[[app]]\n", b"key = [1, \n", b"a.b.c = {\n",
    b"[rpc]\nendpoints = [\"http://x\"\n", b"\t= 1", b"[app]\ntimezone = \"UTC\" # ok\nx = \xff\n",
)


def config_cases(seed: int, n: int) -> list[CliCase]:
    """``n`` config files that must each be refused with one line and exit 2 (``config show``)."""
    rng = random.Random(f"{seed}:config")
    leaves = _settings_leaves()
    families = ("unknown_key", "unknown_section", "wrong_type", "out_of_range", "nan", "bad_toml", "huge",
                "nested", "non_utf8", "secrets", "section_type", "bad_url")
    cases: list[CliCase] = []
    for i in range(n):
        fam = families[i % len(families)]
        key, ann, bounds = rng.choice(leaves)
        body: bytes
        if fam == "unknown_key":
            section = key.rpartition(".")[0] or "app"
            name = rng.choice(("bogus", "timeout", "Log_Level", "enabled ", "a\nb", "é", "x" * 300))
            key = f"{section}.{name[:20]!r}"
            body = f"[{section}]\n{json.dumps(name)} = 1\n".encode()
        elif fam == "unknown_section":
            key = rng.choice(("nope.x", "sources.kraken.enabled", "detector.bogus.rise_pct"))
            body = _setting(key, "1")
        elif fam == "wrong_type":
            body = _setting(key, _wrong_value(ann, rng))
        elif fam == "out_of_range":
            numeric = [(k, a, b) for k, a, b in leaves if b and a in (int, float)]
            key, ann, bounds = rng.choice(numeric)
            literal = _out_of_range(bounds, rng, ann is int)
            body = _setting(key, literal or "-1")
        elif fam == "nan":
            key = rng.choice([k for k, a, _ in leaves if a in (int, float)])
            body = _setting(key, rng.choice(("nan", "inf", "-inf", "+nan", "1e999")))
        elif fam == "bad_toml":
            key = "-"
            body = rng.choice(_BAD_TOML)
        elif fam == "huge":
            key = rng.choice([k for k, a, b in leaves if a is int])
            body = _setting(key, rng.choice(("1" * 5000, "9" * 30, str(2**64), "-" + "9" * 30)))
        elif fam == "nested":
            depth = rng.choice((5, 50, 100_000))
            inner = "[" * depth + "1" + "]" * depth if rng.random() < 0.5 else "{a = " * depth + "1" + "}" * depth
            body = _setting(key, inner)
        elif fam == "non_utf8":
            key = "app.log_level"
            good = f"[app]\nlog_level = \"INFO\"\n# {rng.choice(('café', 'naïve'))}\n".encode("latin-1")
            body = rng.choice((good, b"\xff\xfe" + good, good.replace(b"INFO", b"IN\x80FO")))
        elif fam == "secrets":
            key = "secrets.telegram_token"
            body = b"[secrets]\ntelegram_token = \"123:abc\"\n"
        elif fam == "section_type":
            key = section = key.split(".")[0]
            literal = rng.choice(("5", '"x"', "[1, 2]", "true"))
            body = f"{section} = {literal}\n".encode()
        else:  # bad_url
            key = rng.choice([k for k, _, _ in leaves if k.endswith("_url")] + ["rpc.endpoints"])
            url = rng.choice(("ftp://x", "not a url", "", "javascript:alert(1)", "http//missing-colon"))
            body = _setting(key, json.dumps([url]) if key == "rpc.endpoints" else json.dumps(url))
        cases.append(CliCase(f"config:{fam}:{key}", ("--config", "{config}", "config", "show"), body))
    return cases


_NUMERIC_FLAGS = (("scan", "--speed"), ("scan", "--duration"), ("backfill", "--days"), ("bot", "--duration"),
                  ("doctor", "--timeout"))
_BAD_NUMBERS = ("abc", "-1", "0", "-0", "nan", "NaN", "inf", "-inf", "1e999", "", " ", "0x10", "1,5", "1e-400",
                "--", "½", "1.2.3", "9" * 400)
_BAD_SERVE = ("0.0.0.0:8787", "8.8.8.8:80", "example.com:80", "localhost.evil:80", ":::", "127.0.0.1:",
              "127.0.0.1:-1", "127.0.0.1:65536", "127.0.0.1:99999", "127.0.0.1:http", "[::1", "[::1]", "[::1]:x",
              "abc", "", " ", "::1:80a", "127.0.0.1:80:80", "[1.2.3.4]:80", "999.0.0.1:80")


def _bad_mint(rng: random.Random) -> str:
    kind = rng.randrange(9)
    if kind == 0:
        return "".join(rng.choice("0OIl") for _ in range(44))
    if kind == 1:
        return "1" * rng.choice((0, 1, 31, 45, 100))
    if kind == 2:
        return "So111111111111111111111111111111111111111" + rng.choice("0OIl")
    if kind == 3:
        return rng.choice(("' OR 1=1 --", "../../etc/passwd", "$(reboot)", "%00", "ÄÖÜ", "\U0001f600"))
    if kind == 4:
        return "A" * rng.choice((10_000, 50))
    if kind == 5:
        return "".join(rng.choice("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
                       for _ in range(rng.choice((10, 20, 30, 46, 50))))
    if kind == 6:
        return " "
    if kind == 7:
        return "abc\ndef"
    return "1" * 32 + "z" * 15  # 47 chars of base58: decodes to more than 32 bytes


def cli_cases(seed: int, n: int, workdir: Path) -> list[CliCase]:
    """``n`` command lines that must each be refused with one line and exit 2, never run."""
    rng = random.Random(f"{seed}:cli")
    good = "So11111111111111111111111111111111111111112"
    a_file = workdir / "a-file.txt"
    a_file.write_text("not a directory\n")
    families = ("unknown_flag", "unknown_command", "bad_number", "missing_value", "bad_choice", "bad_mint",
                "bad_tokens", "bad_serve", "missing_file", "bad_db")
    cases: list[CliCase] = []
    for i in range(n):
        fam = families[i % len(families)]
        argv: list[str]
        if fam == "unknown_flag":
            cmd = rng.choice(("scan", "backfill", "evaluate", "calibrate", "check", "bot", "config", "doctor"))
            argv = [cmd, rng.choice(("--bogus", "-x", "--demo=1", "--jsn", "--speed=", "---", "--db="))]
            if cmd == "check":
                argv.append("abc")
        elif fam == "unknown_command":
            argv = [rng.choice(("frobnicate", "Scan", "scna", "help", "-", "", "show"))]
        elif fam == "bad_number":
            cmd, flag = rng.choice(_NUMERIC_FLAGS)
            argv = [cmd, flag, rng.choice(_BAD_NUMBERS)]
        elif fam == "missing_value":
            argv = rng.choice((["scan", "--speed"], ["backfill", "--tokens"], ["check"], ["check", "--json"],
                               ["--config"], ["evaluate", "--out"], ["scan", "--serve"], ["bot", "--db"]))
        elif fam == "bad_choice":
            argv = rng.choice((["backfill", "--source", rng.choice(("kraken", "GeckoTerminal", ""))],
                               ["config", rng.choice(("dump", "SHOW", "set"))]))
        elif fam == "bad_mint":
            mints = [_bad_mint(rng)]
            if rng.random() < 0.5:
                mints.insert(rng.randrange(2), good)
            argv = ["check", *(["--json"] if rng.random() < 0.3 else []), *mints]
            if mints[0].startswith("-"):
                argv.insert(1, "--")
        elif fam == "bad_tokens":
            argv = [rng.choice(("scan", "backfill", "evaluate")), "--tokens", good, _bad_mint(rng)]
        elif fam == "bad_serve":
            argv = ["scan", "--serve", rng.choice(_BAD_SERVE)]
        elif fam == "missing_file":
            argv = rng.choice((["--config", str(workdir / "missing.toml"), "config"],
                               ["--config", str(workdir), "config"],
                               ["--config", str(a_file / "x.toml"), "config"],
                               ["backfill", "--from-files", str(workdir / "no-such-dir"), "--db",
                                str(workdir / "f.db")],
                               ["backfill", "--from-files", str(a_file), "--db", str(workdir / "f.db")]))
        else:  # bad_db
            command = rng.choice((["evaluate"], ["calibrate"], ["backfill", "--demo"], ["bot", "--demo"],
                                  ["scan", "--demo"]))
            argv = [*command, "--db", rng.choice((str(workdir), "/proc/dexscan-corpus/x.db", str(a_file / "x.db")))]
        cases.append(CliCase(f"cli:{fam}", tuple(argv)))
    return cases


@dataclass
class CliTally:
    cases: int = 0
    refused: int = 0  # exit 2 with one clean line
    failures: int = 0
    by_family: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"cases": self.cases, "refused_exit_2": self.refused, "failures": self.failures,
                "by_family": dict(sorted(self.by_family.items())),
                **({"samples": self.samples} if self.samples else {})}


def run_cli_cases(cases: Sequence[CliCase], workdir: Path) -> CliTally:
    tally = CliTally()
    with no_long_running():
        for case in cases:
            tally.cases += 1
            tally.by_family[case.description.split(":")[1]] += 1
            outcome = run_cli_case(case, workdir)
            problem = outcome.problem
            if problem is None:
                tally.refused += 1
            else:
                tally.failures += 1
                if len(tally.samples) < _SAMPLES:
                    shown = [a[:60] for a in case.argv]
                    tally.samples.append(f"{case.description} {shown} config={case.config[:80]!r}: {problem}: "
                                         f"{outcome.stderr[-300:]!r}" if case.config is not None else
                                         f"{case.description} {shown}: {problem}: {outcome.stderr[-300:]!r}")
    return tally


# ---------------------------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------------------------


@dataclass
class CorpusReport:
    seed: int
    shapes: dict[str, int]
    parsers: dict[str, Tally]
    http: dict[str, Tally]
    config: CliTally
    cli: CliTally
    elapsed_s: float

    @property
    def crashes(self) -> int:
        return sum(t.crashes for t in (*self.parsers.values(), *self.http.values()))

    @property
    def failures(self) -> int:
        return (sum(t.failures for t in (*self.parsers.values(), *self.http.values()))
                + self.config.failures + self.cli.failures)

    def as_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "shapes": self.shapes,
            "clients": {c: t.as_json() for c, t in self.parsers.items()},
            "http": {c: t.as_json(top_fields=6) for c, t in self.http.items()},
            "config": self.config.as_json(),
            "cli": self.cli.as_json(),
            "crashes": self.crashes,
            "failures": self.failures,
            "elapsed_s": round(self.elapsed_s, 1),
        }


async def _payload_corpus(workdir: Path, per_client: int, seed: int, http_targets: int | None,
                          http_kinds: Sequence[str] | None) -> tuple[list[Shape], dict[str, Tally], dict[str, Tally]]:
    shapes = await record_shapes(seed)
    store = await Store.open(workdir / "corpus.db")
    try:
        parsers = await run_corpus(shapes, per_client, store, seed)
        http = await run_http_corpus(shapes, store, seed, targets_per_client=http_targets, kinds=http_kinds)
    finally:
        await store.close()
    return shapes, parsers, http


def corpus_report(workdir: Path, per_client: int, seed: int = 7, *, http_targets: int | None = None,
                  http_kinds: Sequence[str] | None = None, config_n: int = 0, cli_n: int = 0) -> CorpusReport:
    """Record, mutate, feed: the numbers ``scripts/corpus_run.py`` prints. Not from a running event
    loop: the CLI cases run ``dexscan.cli.main``, which starts its own."""
    started = time.perf_counter()
    shapes, parsers, http = asyncio.run(_payload_corpus(workdir, per_client, seed, http_targets, http_kinds))
    config = run_cli_cases(config_cases(seed, config_n), workdir)
    cli = run_cli_cases(cli_cases(seed, cli_n, workdir), workdir)
    counts = Counter(s.client for s in shapes)
    return CorpusReport(seed, dict(sorted(counts.items())), parsers, http, config, cli,
                        time.perf_counter() - started)
